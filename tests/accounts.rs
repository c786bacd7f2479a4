//! Accounts against a fake OAuth provider on 127.0.0.1, on real Postgres (and Redis where
//! sessions or revocation cross instances): the sign-in flows of both provider shapes,
//! sessions, room ownership, the owner's actions, revocation over the hub, and the purge job.

mod common;

use common::fake_oauth::{FakeProvider, Mode, Person};
use common::ws::{closed, join, join_ticket, recv, signal_request, try_connect};
use common::{Backend, TestApp, fresh_postgres_database, redis_url, spawn_app_with};
use meshdrop::protocol::signal::ServerMessage;
use meshdrop::protocol::{CreatedRoom, Me, OwnedRoom, RoomId};
use meshdrop::server::auth::SESSION_COOKIE;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};

/// A browser: its own cookie jar, redirects followed by hand so each hop can be checked.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn app_with_provider(extra: &[(&str, &str)]) -> (TestApp, FakeProvider) {
    let fake = FakeProvider::start().await;
    let env = fake.env();
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.extend_from_slice(extra);
    (spawn_app_with(Backend::Postgres, &vars).await, fake)
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("a redirect, got {}", r.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{SESSION_COOKIE}=")))
}

/// The hops of one sign-in: our login → provider authorize → our callback.
struct Flow {
    /// The callback URL the provider sent the browser to.
    callback: String,
    /// Where our callback sent the browser (a path).
    landed: String,
    login_cookie: Option<String>,
    callback_cookie: Option<String>,
}

async fn start(app: &TestApp, b: &reqwest::Client, provider: &str) -> (String, Option<String>) {
    let r = b
        .get(app.url(&format!("/auth/{provider}/login?next=/rooms")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = session_cookie(&r);
    let authorize = location(&r);
    let r = b.get(&authorize).send().await.unwrap();
    assert!(
        r.status().is_redirection(),
        "provider answered {}",
        r.status()
    );
    (location(&r), cookie)
}

async fn finish(app: &TestApp, b: &reqwest::Client, callback: &str) -> (String, Option<String>) {
    assert!(
        callback.starts_with(&app.base),
        "callback goes back to us: {callback}"
    );
    let r = b.get(callback).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "callback answers with a redirect"
    );
    (location(&r), session_cookie(&r))
}

async fn sign_in(app: &TestApp, b: &reqwest::Client, provider: &str) -> Flow {
    let (callback, login_cookie) = start(app, b, provider).await;
    let (landed, callback_cookie) = finish(app, b, &callback).await;
    Flow {
        callback,
        landed,
        login_cookie,
        callback_cookie,
    }
}

async fn me(app: &TestApp, b: &reqwest::Client) -> Me {
    let r = b.get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// `name=value` of a `Set-Cookie` header.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// `/api/me` as seen by a fresh client that sends only `cookie` (a `name=value` pair).
async fn me_with_cookie(app: &TestApp, cookie: &str) -> Me {
    reqwest::Client::new()
        .get(app.url("/api/me"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn replace_query(url: &str, key: &str, value: &str) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.into()
}

#[tokio::test]
async fn sign_in_succeeds_for_both_provider_shapes_and_rotates_the_session() {
    let (app, _fake) = app_with_provider(&[]).await;
    for (provider, expect_email) in [("github", "ada@example.com"), ("google", "ada@example.com")] {
        let b = browser();
        let before = me(&app, &b).await;
        assert!(before.account.is_none());
        assert_eq!(before.providers, ["github", "google"]);
        let flow = sign_in(&app, &b, provider).await;
        assert_eq!(
            flow.landed, "/rooms",
            "{provider}: back where the sign-in started"
        );
        let account = me(&app, &b).await.account.expect("signed in");
        assert_eq!(account.name, "Ada Lovelace");
        assert_eq!(account.provider, provider);
        // The session cookie: HttpOnly, SameSite=Lax, not Secure on plain http, and a new
        // session id once signed in (no session fixation).
        let login_cookie = flow.login_cookie.expect("login sets the session cookie");
        let signed_cookie = flow.callback_cookie.expect("sign-in sets a new cookie");
        for c in [&login_cookie, &signed_cookie] {
            assert!(c.contains("HttpOnly"), "{c}");
            assert!(c.contains("SameSite=Lax"), "{c}");
            assert!(!c.contains("Secure"), "{c}");
        }
        // A sign-in in progress lives 10 minutes; a signed-in session 14 days of inactivity.
        assert!(login_cookie.contains("Max-Age=600"), "{login_cookie}");
        assert!(signed_cookie.contains("Max-Age=1209600"), "{signed_cookie}");
        assert_ne!(
            cookie_pair(&login_cookie),
            cookie_pair(&signed_cookie),
            "session id rotated on sign-in"
        );
        // The stored email is the verified primary one.
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let user = meshdrop::server::entity::app_user::Entity::find()
            .filter(meshdrop::server::entity::app_user::Column::Provider.eq(provider))
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.email.as_deref(), Some(expect_email));
    }
    // Same person, same email, two providers: two users, never merged by email.
    use sea_orm::{EntityTrait, PaginatorTrait};
    let users = meshdrop::server::entity::app_user::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(users, 2);
}

/// The stored row for one identity; there must be exactly one.
async fn user_row(
    app: &TestApp,
    provider: &str,
    provider_user_id: &str,
) -> meshdrop::server::entity::app_user::Model {
    use meshdrop::server::entity::app_user::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let mut rows = Entity::find()
        .filter(Column::Provider.eq(provider))
        .filter(Column::ProviderUserId.eq(provider_user_id))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one user for {provider}/{provider_user_id}");
    rows.pop().unwrap()
}

#[tokio::test]
async fn unverified_emails_are_not_stored() {
    let (app, fake) = app_with_provider(&[]).await;
    // Google says email_verified=false; GitHub's only primary address is unverified.
    fake.set_mode(Mode::UnverifiedEmail);
    for provider in ["github", "google"] {
        let b = browser();
        assert_eq!(sign_in(&app, &b, provider).await.landed, "/rooms");
        let account = me(&app, &b).await.account.expect("signed in all the same");
        assert_eq!(account.name, "Ada Lovelace");
        let user = user_row(&app, provider, "4242").await;
        assert_eq!(
            user.email, None,
            "{provider}: an unverified email is dropped"
        );
    }
}

#[tokio::test]
async fn session_cookie_is_secure_behind_https() {
    let (app, _fake) =
        app_with_provider(&[("MESHDROP_PUBLIC_URL", "https://drop.example.com")]).await;
    let r = browser()
        .get(app.url("/auth/github/login"))
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&r).unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(
        location(&r)
            .contains("redirect_uri=https%3A%2F%2Fdrop.example.com%2Fauth%2Fgithub%2Fcallback"),
        "the callback is on the public URL"
    );
}

#[tokio::test]
async fn denied_consent_and_provider_errors_explain_themselves() {
    let (app, fake) = app_with_provider(&[]).await;
    for provider in ["github", "google"] {
        fake.set_mode(Mode::Deny);
        let b = browser();
        let flow = sign_in(&app, &b, provider).await;
        assert_eq!(
            flow.landed,
            format!("/signin?error=denied&provider={provider}")
        );
        assert!(me(&app, &b).await.account.is_none());

        fake.set_mode(Mode::AuthorizeError);
        let flow = sign_in(&app, &b, provider).await;
        assert_eq!(
            flow.landed,
            format!("/signin?error=provider&provider={provider}&detail=server_error")
        );

        fake.set_mode(Mode::ProfileError);
        let flow = sign_in(&app, &b, provider).await;
        assert_eq!(
            flow.landed,
            format!("/signin?error=provider&provider={provider}&detail=profile_http_500")
        );
        assert!(me(&app, &b).await.account.is_none());
    }
    // The sign-in page turns each code it was sent to into a sentence.
    fake.set_mode(Mode::Approve);
    for (landed, sentence) in [
        (
            "/signin?error=denied&provider=github",
            "You declined the sign-in at GitHub",
        ),
        (
            "/signin?error=provider&provider=github&detail=server_error",
            "GitHub returned an error (server_error). Please try again in a moment.",
        ),
        (
            "/signin?error=provider&provider=google&detail=profile_http_500",
            "Google returned an error (profile_http_500). Please try again in a moment.",
        ),
        (
            "/signin?error=state&provider=google",
            "does not belong to a sign-in started in this browser",
        ),
        (
            "/signin?error=code&provider=github&detail=bad_verification_code",
            "GitHub did not accept the sign-in code (bad_verification_code); it may have been used already.",
        ),
        (
            "/signin?error=code&provider=google&detail=invalid_grant",
            "Google did not accept the sign-in code (invalid_grant)",
        ),
    ] {
        let page = browser()
            .get(app.url(landed))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains(sentence), "{landed}: {page}");
    }
}

#[tokio::test]
async fn a_wrong_or_foreign_state_is_rejected() {
    let (app, _fake) = app_with_provider(&[]).await;
    for provider in ["github", "google"] {
        // Tampered state in the same browser.
        let b = browser();
        let (callback, _) = start(&app, &b, provider).await;
        let forged = replace_query(&callback, "state", "forged-state");
        let (landed, _) = finish(&app, &b, &forged).await;
        assert_eq!(landed, format!("/signin?error=state&provider={provider}"));
        assert!(me(&app, &b).await.account.is_none());
        // The right state, but in a browser that never started a sign-in (login CSRF).
        let b1 = browser();
        let (callback, _) = start(&app, &b1, provider).await;
        let b2 = browser();
        let (landed, _) = finish(&app, &b2, &callback).await;
        assert_eq!(landed, format!("/signin?error=state&provider={provider}"));
        assert!(me(&app, &b2).await.account.is_none());
    }
}

#[tokio::test]
async fn a_replayed_code_is_rejected() {
    let (app, _fake) = app_with_provider(&[]).await;
    for (provider, provider_code) in [
        ("github", "bad_verification_code"),
        ("google", "invalid_grant"),
    ] {
        let b = browser();
        let flow = sign_in(&app, &b, provider).await;
        assert_eq!(flow.landed, "/rooms");
        // The same callback URL again: this session's pending sign-in is used up.
        let (landed, _) = finish(&app, &b, &flow.callback).await;
        assert_eq!(landed, format!("/signin?error=state&provider={provider}"));
        // The old code under a fresh, valid state: the provider refuses it.
        let attacker = browser();
        let (fresh_callback, _) = start(&app, &attacker, provider).await;
        let old_code = reqwest::Url::parse(&flow.callback)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let replay = replace_query(&fresh_callback, "code", &old_code);
        let (landed, _) = finish(&app, &attacker, &replay).await;
        assert_eq!(
            landed,
            format!("/signin?error=code&provider={provider}&detail={provider_code}")
        );
        assert!(me(&app, &attacker).await.account.is_none());
    }
}

#[tokio::test]
async fn unconfigured_providers_are_hidden_and_refused() {
    let app = spawn_app_with(Backend::Sqlite, &[]).await;
    let b = browser();
    assert!(me(&app, &b).await.providers.is_empty());
    let r = b.get(app.url("/auth/github/login")).send().await.unwrap();
    assert_eq!(location(&r), "/signin?error=unavailable&provider=github");
    let page = b
        .get(app.url("/signin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign-in is not available here"));
    assert!(!page.contains("Sign in with GitHub"));
}

#[tokio::test]
async fn a_single_missing_provider_is_hidden_and_refused() {
    let fake = FakeProvider::start().await;
    let env = fake.env();
    let vars: Vec<(&str, &str)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("MESHDROP_GITHUB_"))
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let app = spawn_app_with(Backend::Postgres, &vars).await;
    let b = browser();
    assert_eq!(me(&app, &b).await.providers, ["github"]);
    let page = b
        .get(app.url("/signin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign in with GitHub"), "{page}");
    assert!(page.contains("/auth/github/login"), "{page}");
    assert!(!page.contains("Sign in with Google"), "{page}");
    assert!(!page.contains("/auth/google/login"), "{page}");
    assert!(!page.contains("Sign-in is not available here"), "{page}");
    // Google's login refuses to start a flow: no trip to a provider, no pending sign-in.
    let r = b.get(app.url("/auth/google/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/signin?error=unavailable&provider=google");
    // GitHub still works.
    assert_eq!(sign_in(&app, &b, "github").await.landed, "/rooms");
    assert_eq!(
        me(&app, &b).await.account.map(|a| a.provider).as_deref(),
        Some("github")
    );
}

#[tokio::test]
async fn sign_out_ends_the_session_for_good() {
    let (app, _fake) = app_with_provider(&[]).await;
    let b = browser();
    let flow = sign_in(&app, &b, "github").await;
    let cookie = flow.callback_cookie.unwrap();
    let pair = cookie_pair(&cookie);
    let r = b.post(app.url("/auth/logout")).send().await.unwrap();
    assert_eq!(location(&r), "/");
    assert!(me(&app, &b).await.account.is_none());
    // Replaying the old cookie does not bring the session back: it was deleted.
    assert!(me_with_cookie(&app, &pair).await.account.is_none());
}

/// Two server instances sharing one Postgres database and Redis, with the fake provider.
async fn two_instances() -> (TestApp, TestApp, FakeProvider) {
    let database = fresh_postgres_database().await;
    let redis = redis_url();
    let fake = FakeProvider::start().await;
    let env = fake.env();
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("DATABASE_URL", &database));
    vars.push(("REDIS_URL", &redis));
    let first = spawn_app_with(Backend::Sqlite, &vars).await;
    let second = spawn_app_with(Backend::Sqlite, &vars).await;
    (first, second, fake)
}

#[tokio::test]
async fn redis_sessions_work_across_instances_and_restarts() {
    let (first, second, fake) = two_instances().await;
    let b = browser();
    let flow = sign_in(&first, &b, "google").await;
    assert_eq!(flow.landed, "/rooms");
    let cookie = flow.callback_cookie.expect("signed-in session cookie");
    let pair = cookie_pair(&cookie);
    // Another instance knows the session: it lives in Redis.
    let seen = me_with_cookie(&second, &pair).await;
    assert_eq!(
        seen.account.map(|a| a.name).as_deref(),
        Some("Ada Lovelace")
    );
    // A restart: the instance that signed the person in goes away with all it kept in
    // memory, and a new process on the same database and Redis still knows them.
    let database = first.state.settings.database.expose().to_string();
    first.stop().await;
    let env = fake.env();
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let redis = redis_url();
    vars.push(("DATABASE_URL", &database));
    vars.push(("REDIS_URL", &redis));
    let restarted = spawn_app_with(Backend::Sqlite, &vars).await;
    let seen = me_with_cookie(&restarted, &pair).await;
    assert_eq!(
        seen.account.map(|a| a.name).as_deref(),
        Some("Ada Lovelace")
    );
    // Signing out on the second instance ends it on the restarted one as well.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(second.url("/auth/logout"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(me_with_cookie(&restarted, &pair).await.account.is_none());
}

async fn session_in_redis(conn: &mut deadpool_redis::Connection, id: &str) -> bool {
    use deadpool_redis::redis::AsyncCommands;
    conn.exists(format!("meshdrop:session:{id}")).await.unwrap()
}

#[tokio::test]
async fn redis_sessions_rotate_on_sign_in() {
    let redis = redis_url();
    let (app, _fake) = app_with_provider(&[("REDIS_URL", &redis)]).await;
    let pool = deadpool_redis::Config::from_url(&redis)
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    let b = browser();
    let (callback, login_cookie) = start(&app, &b, "github").await;
    let before = cookie_pair(&login_cookie.expect("login sets the session cookie"));
    let before_id = before.split_once('=').unwrap().1.to_owned();
    let stored = session_in_redis(&mut conn, &before_id).await;
    assert!(stored, "the pending sign-in lives in Redis");

    let (landed, signed_cookie) = finish(&app, &b, &callback).await;
    assert_eq!(landed, "/rooms");
    let after = cookie_pair(&signed_cookie.expect("sign-in sets a new cookie"));
    let after_id = after.split_once('=').unwrap().1.to_owned();
    assert_ne!(before_id, after_id, "session id rotated on sign-in");
    assert!(me(&app, &b).await.account.is_some());
    let old = session_in_redis(&mut conn, &before_id).await;
    let new = session_in_redis(&mut conn, &after_id).await;
    assert!(!old, "the pre-login session is gone from Redis");
    assert!(new, "the signed-in session is in Redis");
    // Someone holding the pre-login cookie (session fixation) gets no account.
    assert!(me_with_cookie(&app, &before).await.account.is_none());
    // Signing out deletes the session from the store, not just the account from it.
    let r = b.post(app.url("/auth/logout")).send().await.unwrap();
    assert_eq!(location(&r), "/");
    let kept = session_in_redis(&mut conn, &after_id).await;
    assert!(!kept, "signing out deletes the session from Redis");
    assert!(me_with_cookie(&app, &after).await.account.is_none());
}

// ---- Rooms and their owners ----

async fn create_room_as(app: &TestApp, b: &reqwest::Client, name: &str) -> CreatedRoom {
    let r = b
        .post(app.url("/api/rooms"))
        .json(&serde_json::json!({"title": null, "files": [{"name": name, "size": 1000, "mime": ""}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn my_rooms(app: &TestApp, b: &reqwest::Client) -> Vec<OwnedRoom> {
    let r = b.get(app.url("/api/my/rooms")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn act(
    app: &TestApp,
    b: &reqwest::Client,
    room: RoomId,
    action: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    b.post(app.url(&format!("/api/my/rooms/{room}/{action}")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Two signed-in people (different GitHub accounts) and an anonymous visitor.
async fn two_owners() -> (TestApp, FakeProvider, reqwest::Client, reqwest::Client) {
    let (app, fake) = app_with_provider(&[]).await;
    let ada = browser();
    assert_eq!(sign_in(&app, &ada, "github").await.landed, "/rooms");
    fake.set_person(Person {
        id: "777".into(),
        name: "Grace Hopper".into(),
        email: "grace@example.com".into(),
        avatar_url: "https://avatars.example/grace.png".into(),
    });
    let grace = browser();
    assert_eq!(sign_in(&app, &grace, "github").await.landed, "/rooms");
    (app, fake, ada, grace)
}

#[tokio::test]
async fn rooms_belong_to_their_creator_and_only_they_can_act() {
    let (app, _fake, ada, grace) = two_owners().await;
    let anonymous = browser();
    let first = create_room_as(&app, &ada, "first.bin").await;
    // Creation times are whole seconds: make "newest first" unambiguous by creating the
    // second room once the clock has left the first one's second.
    let created = my_rooms(&app, &ada).await[0].created_at;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while meshdrop::server::rooms::now_secs() <= created {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock stands still"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let second = create_room_as(&app, &ada, "second.bin").await;
    let anon_room = create_room_as(&app, &anonymous, "anon.bin").await;

    // Newest first, only Ada's own.
    let listed = my_rooms(&app, &ada).await;
    let ids: Vec<RoomId> = listed.iter().map(|r| r.id).collect();
    assert_eq!(ids, [second.id, first.id]);
    assert_eq!(listed[0].files[0].name, "second.bin");
    assert_eq!(listed[0].total_size, 1000);
    assert!(!listed[0].revoked);
    assert!(
        my_rooms(&app, &grace).await.is_empty(),
        "Grace sees none of Ada's rooms"
    );
    use sea_orm::EntityTrait;
    let anon_row = meshdrop::server::entity::room::Entity::find_by_id(anon_room.id.to_string())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(anon_row.owner_id, None, "anonymous rooms belong to no one");

    // Grace cannot revoke, re-time or rename Ada's room.
    for (action, body) in [
        ("revoke", serde_json::json!({})),
        ("expiry", serde_json::json!({"hours": 1})),
        ("title", serde_json::json!({"title": "mine now"})),
    ] {
        let r = act(&app, &grace, first.id, action, body.clone()).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{action}");
        // Nor can anyone act on an anonymous room, or without signing in.
        let r = act(&app, &ada, anon_room.id, action, body.clone()).await;
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{action} on an anonymous room"
        );
        let r = act(&app, &anonymous, first.id, action, body).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{action} signed out");
    }
    // A page on another site cannot act for Ada, even where her cookie would be sent.
    for (header, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "http://evil.example"),
    ] {
        let r = ada
            .post(app.url(&format!("/api/my/rooms/{}/revoke", first.id)))
            .header(header, value)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{header}: {value}");
    }
    let r = act(
        &app,
        &ada,
        RoomId::from_bytes([7; 16]),
        "revoke",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Nothing changed.
    let page = app.get(&format!("/api/rooms/{}", first.id)).await;
    assert_eq!(page.status(), 200);

    // Anonymous visitors: 401 from the API, and /rooms sends them to sign in and back.
    let r = anonymous
        .get(app.url("/api/my/rooms"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = anonymous.get(app.url("/rooms")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/signin?next=/rooms");
    // Signed in, /rooms renders the list on the server.
    let page = ada.get(app.url("/rooms")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("second.bin") && html.contains("first.bin"),
        "{html}"
    );
}

#[tokio::test]
async fn signing_in_again_updates_the_same_user() {
    let (app, fake) = app_with_provider(&[]).await;
    let ada = fake.person();
    for provider in ["github", "google"] {
        fake.set_person(ada.clone());
        let first = browser();
        assert_eq!(sign_in(&app, &first, provider).await.landed, "/rooms");
        let before = user_row(&app, provider, &ada.id).await;
        assert_eq!(before.display_name, "Ada Lovelace");
        let room = create_room_as(&app, &first, "kept.bin").await;

        // Same provider user id, new name and avatar, on another device.
        fake.set_person(Person {
            name: "Ada King".into(),
            avatar_url: "https://avatars.example/ada-2.png".into(),
            ..ada.clone()
        });
        let second = browser();
        assert_eq!(sign_in(&app, &second, provider).await.landed, "/rooms");
        let account = me(&app, &second).await.account.expect("signed in");
        assert_eq!(account.name, "Ada King");
        assert_eq!(
            account.avatar_url.as_deref(),
            Some("https://avatars.example/ada-2.png")
        );
        let after = user_row(&app, provider, &ada.id).await;
        assert_eq!(after.id, before.id, "{provider}: the same user, updated");
        assert_eq!(after.provider_user_id, ada.id);
        assert_eq!(after.display_name, "Ada King");
        assert_eq!(
            after.avatar_url.as_deref(),
            Some("https://avatars.example/ada-2.png")
        );
        assert_eq!(after.created_at, before.created_at);
        // The room made before is still theirs.
        let listed = my_rooms(&app, &second).await;
        assert_eq!(
            listed.iter().map(|r| r.id).collect::<Vec<_>>(),
            [room.id],
            "{provider}"
        );
    }
    use sea_orm::{EntityTrait, PaginatorTrait};
    let users = meshdrop::server::entity::app_user::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(users, 2, "one user per provider identity");
}

#[tokio::test]
async fn owners_rename_and_move_the_expiry_within_limits() {
    let (app, _fake, ada, _grace) = two_owners().await;
    let room = create_room_as(&app, &ada, "a.bin").await;
    let r = act(
        &app,
        &ada,
        room.id,
        "title",
        serde_json::json!({"title": "  Holiday photos "}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let renamed: OwnedRoom = r.json().await.unwrap();
    assert_eq!(renamed.title.as_deref(), Some("Holiday photos"));
    let view: meshdrop::protocol::RoomView = app
        .get(&format!("/api/rooms/{}", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view.title.as_deref(), Some("Holiday photos"));
    let r = act(
        &app,
        &ada,
        room.id,
        "title",
        serde_json::json!({"title": "bad\u{7}title"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let now = meshdrop::server::rooms::now_secs();
    let r = act(
        &app,
        &ada,
        room.id,
        "expiry",
        serde_json::json!({"hours": 1}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let shorter: OwnedRoom = r.json().await.unwrap();
    assert!(
        (shorter.expires_at - (now + 3600)).abs() <= 5,
        "expires in an hour"
    );
    let r = act(
        &app,
        &ada,
        room.id,
        "expiry",
        serde_json::json!({"hours": 2160}),
    )
    .await;
    let longer: OwnedRoom = r.json().await.unwrap();
    assert!(
        (longer.expires_at - (now + 2160 * 3600)).abs() <= 5,
        "expires in 90 days"
    );
    for hours in [0, 2161] {
        let r = act(
            &app,
            &ada,
            room.id,
            "expiry",
            serde_json::json!({"hours": hours}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{hours} h");
        let body = r.text().await.unwrap();
        assert!(body.contains("between 1 and 2160 hours"), "{body}");
    }
}

#[tokio::test]
async fn a_revoked_room_cannot_be_re_timed_or_renamed() {
    let (app, _fake, ada, _grace) = two_owners().await;
    let room = create_room_as(&app, &ada, "a.bin").await;
    let r = act(&app, &ada, room.id, "revoke", serde_json::json!({})).await;
    assert_eq!(r.status(), 200);
    let revoked: OwnedRoom = r.json().await.unwrap();
    for (action, body) in [
        ("expiry", serde_json::json!({"hours": 2160})),
        ("title", serde_json::json!({"title": "back from the dead"})),
    ] {
        let r = act(&app, &ada, room.id, action, body).await;
        assert_eq!(r.status(), StatusCode::GONE, "{action}");
        let text = r.text().await.unwrap();
        assert!(text.contains("closed by its owner"), "{action}: {text}");
    }
    // Nothing changed.
    let listed = my_rooms(&app, &ada).await;
    assert!(listed[0].revoked);
    assert_eq!(listed[0].expires_at, revoked.expires_at);
    assert_eq!(listed[0].title, revoked.title);
}

#[tokio::test]
async fn completed_and_online_counts_reach_the_owner() {
    let (app, _fake, ada, _grace) = two_owners().await;
    let room = create_room_as(&app, &ada, "a.bin").await;
    let ticket = join_ticket(&app.client, &app.base, room.id).await.ticket;
    let report = |ticket: String| {
        let client = app.client.clone();
        let url = app.url(&format!("/api/rooms/{}/completed", room.id));
        async move {
            client
                .post(url)
                .json(&serde_json::json!({"ticket": ticket}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Reported twice, counted once; the creator's ticket and forged tickets do not count.
    assert_eq!(report(ticket.clone()).await, 200);
    assert_eq!(report(ticket.clone()).await, 200);
    assert_eq!(report(room.ticket.clone()).await, 200);
    assert_eq!(report("not-a-ticket".into()).await, StatusCode::BAD_REQUEST);
    let other = join_ticket(&app.client, &app.base, room.id).await.ticket;
    assert_eq!(report(other).await, 200);
    let _peer1 = join(&app.base, room.id, &ticket).await;
    let _peer2 = join(&app.base, room.id, &room.ticket).await;
    let listed = my_rooms(&app, &ada).await;
    assert_eq!(listed[0].completed, 2);
    assert_eq!(listed[0].online, 2);
}

/// Anyone with the link can get tickets, and each ticket's report is a row: one address may
/// report only so many finished downloads per hour, so a loop of `/join` and `/completed`
/// cannot grow the table without bound.
#[tokio::test]
async fn finished_downloads_reported_are_limited_per_address() {
    let (app, _fake) =
        app_with_provider(&[("MESHDROP_MAX_COMPLETIONS_PER_IP_PER_HOUR", "2")]).await;
    let ada = browser();
    sign_in(&app, &ada, "github").await;
    let room = create_room_as(&app, &ada, "a.bin").await;
    let mut statuses = Vec::new();
    let mut refusal = String::new();
    for _ in 0..4 {
        let ticket = join_ticket(&app.client, &app.base, room.id).await.ticket;
        let r = app
            .client
            .post(app.url(&format!("/api/rooms/{}/completed", room.id)))
            .json(&serde_json::json!({"ticket": ticket}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status());
        refusal = r.text().await.unwrap();
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert!(
        refusal.contains("at most 2 reports of finished downloads per hour"),
        "{refusal}"
    );
    let listed = my_rooms(&app, &ada).await;
    assert_eq!(listed[0].completed, 2, "refused reports add no rows");
    // Joining the room is not limited by it.
    join_ticket(&app.client, &app.base, room.id).await;
}

#[tokio::test]
async fn revoking_closes_the_room_for_everyone_at_once() {
    let (app, _fake, ada, _grace) = two_owners().await;
    let room = create_room_as(&app, &ada, "a.bin").await;
    let ticket = join_ticket(&app.client, &app.base, room.id).await.ticket;
    let mut seeder = join(&app.base, room.id, &room.ticket).await;
    let mut leecher = join(&app.base, room.id, &ticket).await;
    assert!(matches!(
        recv(&mut seeder.ws).await,
        ServerMessage::PeerJoined { .. }
    ));

    let r = act(&app, &ada, room.id, "revoke", serde_json::json!({})).await;
    assert_eq!(r.status(), 200);
    assert!(r.json::<OwnedRoom>().await.unwrap().revoked);
    // Connected peers are told, then disconnected with "room closed".
    for peer in [&mut seeder, &mut leecher] {
        assert_eq!(
            recv(&mut peer.ws).await,
            ServerMessage::RoomClosed {
                reason: "the owner closed this room".into()
            }
        );
        let (code, reason) = closed(&mut peer.ws).await;
        assert_eq!(code, meshdrop::protocol::signal::close::ROOM_CLOSED);
        assert_eq!(reason, "the owner closed this room");
    }
    // New tickets are refused, old ones cannot reconnect, and the link says it is gone.
    let r = app
        .client
        .post(app.url(&format!("/api/rooms/{}/join", room.id)))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    let refused = try_connect(signal_request(&app.base, room.id, &ticket)).await;
    assert_eq!(refused.err().map(|(s, _)| s.as_u16()), Some(410));
    assert_eq!(
        app.get(&format!("/api/rooms/{}", room.id)).await.status(),
        StatusCode::GONE
    );
    let page = app.get(&format!("/room/{}", room.id)).await;
    assert_eq!(page.status(), StatusCode::GONE);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("This room was closed by its owner")
    );
    // The owner still sees it, marked closed, until it expires.
    let listed = my_rooms(&app, &ada).await;
    assert!(listed[0].revoked);
    // The hub let go of both sockets.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while app.state.hub.online(room.id).await > 0 {
        assert!(std::time::Instant::now() < deadline, "sockets left the hub");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // And it refuses any socket that slipped past the room check before the revocation.
    let refused = app
        .state
        .hub
        .join(room.id, "127.0.0.1".parse().unwrap(), i64::MAX, 0)
        .await;
    assert_eq!(
        refused.err().map(|r| r.code),
        Some(meshdrop::protocol::signal::close::ROOM_CLOSED)
    );
}

#[tokio::test]
async fn revocation_reaches_peers_on_another_instance_over_redis() {
    let (a, b, _fake) = two_instances().await;
    let ada = browser();
    assert_eq!(sign_in(&a, &ada, "github").await.landed, "/rooms");
    let room = create_room_as(&a, &ada, "a.bin").await;
    let ticket = join_ticket(&b.client, &b.base, room.id).await.ticket;
    // The peer is connected to instance B; the owner revokes through instance A.
    let mut far = join(&b.base, room.id, &ticket).await;
    let listed = my_rooms(&a, &ada).await;
    assert_eq!(listed[0].online, 1, "presence is shared over Redis");
    assert_eq!(
        act(&a, &ada, room.id, "revoke", serde_json::json!({}))
            .await
            .status(),
        200
    );
    assert!(matches!(
        recv(&mut far.ws).await,
        ServerMessage::RoomClosed { .. }
    ));
    assert_eq!(
        closed(&mut far.ws).await.0,
        meshdrop::protocol::signal::close::ROOM_CLOSED
    );
    assert_eq!(
        b.get(&format!("/api/rooms/{}", room.id)).await.status(),
        StatusCode::GONE
    );
}

#[tokio::test]
async fn expired_rooms_are_purged_by_the_periodic_job() {
    let (app, _fake) = app_with_provider(&[("MESHDROP_PURGE_INTERVAL_SECS", "1")]).await;
    let ada = browser();
    sign_in(&app, &ada, "github").await;
    let old = create_room_as(&app, &ada, "old.bin").await;
    let fresh = create_room_as(&app, &ada, "fresh.bin").await;
    for id in [old.id, fresh.id] {
        let ticket = join_ticket(&app.client, &app.base, id).await.ticket;
        let r = app
            .client
            .post(app.url(&format!("/api/rooms/{id}/completed")))
            .json(&serde_json::json!({"ticket": ticket}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    use meshdrop::server::entity::{room, room_completion};
    use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, Set};
    let row = room::Entity::find_by_id(old.id.to_string())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    // A peer is still connected to the room that is about to expire.
    let mut lingering = join(&app.base, old.id, &old.ticket).await;
    let mut expired: room::ActiveModel = row.into();
    expired.expires_at = Set(meshdrop::server::rooms::now_secs() - 1);
    expired.update(&app.state.db).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let gone = room::Entity::find_by_id(old.id.to_string())
            .one(&app.state.db)
            .await
            .unwrap()
            .is_none();
        if gone {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the purge job ran within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The peer still connected was told and disconnected.
    assert_eq!(
        recv(&mut lingering.ws).await,
        ServerMessage::RoomClosed {
            reason: "this room expired".into()
        }
    );
    assert_eq!(
        closed(&mut lingering.ws).await.0,
        meshdrop::protocol::signal::close::ROOM_CLOSED
    );
    // The expired room's completion went with it; the live room's stays.
    assert_eq!(
        room_completion::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        1
    );
    let left = my_rooms(&app, &ada).await;
    assert_eq!(left.iter().map(|r| r.id).collect::<Vec<_>>(), [fresh.id]);
    assert_eq!(left[0].completed, 1);
}

/// Every sign-in started holds a pending session for 10 minutes, so one address may start
/// only so many per hour: past that it gets 429 with a reason, and no session is stored.
#[tokio::test]
async fn sign_ins_started_are_limited_per_address() {
    let (app, _fake) = app_with_provider(&[("MESHDROP_MAX_SIGNINS_PER_IP_PER_HOUR", "3")]).await;
    for _ in 0..3 {
        let r = browser()
            .get(app.url("/auth/github/login"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection(), "{}", r.status());
        assert!(r.headers().get(SET_COOKIE).is_some(), "a pending session");
    }
    let r = browser()
        .get(app.url("/auth/google/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.headers().get(SET_COOKIE).is_none(),
        "no session for a refused start"
    );
    let body = r.text().await.unwrap();
    assert!(body.contains("sign-ins per hour"), "{body}");
    // Signed-in use of the site is not affected.
    let r = browser().get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
