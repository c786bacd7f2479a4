//! A fake OAuth2 provider on 127.0.0.1 speaking both shapes meshdrop signs in with:
//!
//! - GitHub: `/github/authorize`, `/github/token` (a bad code is HTTP 200 with
//!   `{"error":"bad_verification_code"}`, as GitHub does), `/github/api/user` and
//!   `/github/api/user/emails`.
//! - Google: `/google/authorize`, `/google/token` (a bad code is HTTP 400 `invalid_grant`),
//!   `/google/userinfo` (OpenID Connect).
//!
//! It checks what a real provider checks: client id and secret, the redirect URI, PKCE
//! (S256), and that a code is used once. Its behaviour is switched per test with `set_mode`.

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const CLIENT_ID: &str = "fake-client-id";
pub const CLIENT_SECRET: &str = "fake-client-secret-do-not-log";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The person approves.
    Approve,
    /// The person clicks "cancel" (`error=access_denied`).
    Deny,
    /// The provider fails at the authorize step (`error=server_error`).
    AuthorizeError,
    /// Token exchange works; the profile endpoint answers 500.
    ProfileError,
    /// The person approves, but their email is not verified: Google says
    /// `email_verified: false` and GitHub's primary address is unverified.
    UnverifiedEmail,
}

#[derive(Clone, Debug)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub email: String,
    pub avatar_url: String,
}

struct Grant {
    redirect_uri: String,
    challenge: String,
    used: bool,
    person: Person,
}

struct Inner {
    mode: Mode,
    person: Person,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Person>,
    next: u64,
}

#[derive(Clone)]
pub struct FakeProvider {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeProvider {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            mode: Mode::Approve,
            person: Person {
                id: "4242".into(),
                name: "Ada Lovelace".into(),
                email: "ada@example.com".into(),
                avatar_url: "https://avatars.example/ada.png".into(),
            },
            codes: HashMap::new(),
            tokens: HashMap::new(),
            next: 1,
        }));
        let app = axum::Router::new()
            .route("/{shape}/authorize", get(authorize))
            .route("/{shape}/token", post(token))
            .route("/github/api/user", get(github_user))
            .route("/github/api/user/emails", get(github_emails))
            .route("/google/userinfo", get(google_userinfo))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base: format!("http://{addr}"),
            inner,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }

    /// Who approves the next sign-in.
    pub fn set_person(&self, person: Person) {
        self.inner.lock().unwrap().person = person;
    }

    /// Who approves the next sign-in, as now set.
    pub fn person(&self) -> Person {
        self.inner.lock().unwrap().person.clone()
    }

    /// Server variables pointing both providers at this fake.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let b = &self.base;
        vec![
            ("MESHDROP_GITHUB_CLIENT_ID", CLIENT_ID.into()),
            ("MESHDROP_GITHUB_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("MESHDROP_GITHUB_AUTH_URL", format!("{b}/github/authorize")),
            ("MESHDROP_GITHUB_TOKEN_URL", format!("{b}/github/token")),
            ("MESHDROP_GITHUB_API_URL", format!("{b}/github/api")),
            ("MESHDROP_GOOGLE_CLIENT_ID", CLIENT_ID.into()),
            ("MESHDROP_GOOGLE_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("MESHDROP_GOOGLE_AUTH_URL", format!("{b}/google/authorize")),
            ("MESHDROP_GOOGLE_TOKEN_URL", format!("{b}/google/token")),
            (
                "MESHDROP_GOOGLE_USERINFO_URL",
                format!("{b}/google/userinfo"),
            ),
        ]
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse(url).expect("redirect_uri is a URL");
    url.query_pairs_mut().extend_pairs(pairs);
    url.into()
}

async fn authorize(
    State(inner): Shared,
    Path(_shape): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let field = |k: &str| q.get(k).cloned().unwrap_or_default();
    if field("client_id") != CLIENT_ID || field("response_type") != "code" {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    if field("code_challenge_method") != "S256" || field("code_challenge").is_empty() {
        return (StatusCode::BAD_REQUEST, "PKCE S256 is required").into_response();
    }
    let (redirect_uri, state) = (field("redirect_uri"), field("state"));
    let mut inner = inner.lock().unwrap();
    let target = match inner.mode {
        Mode::Deny => with_query(
            &redirect_uri,
            &[("error", "access_denied"), ("state", &state)],
        ),
        Mode::AuthorizeError => with_query(
            &redirect_uri,
            &[("error", "server_error"), ("state", &state)],
        ),
        Mode::Approve | Mode::ProfileError | Mode::UnverifiedEmail => {
            let code = format!("code-{}", inner.next);
            inner.next += 1;
            let person = inner.person.clone();
            inner.codes.insert(
                code.clone(),
                Grant {
                    redirect_uri: redirect_uri.clone(),
                    challenge: field("code_challenge"),
                    used: false,
                    person,
                },
            );
            with_query(&redirect_uri, &[("code", &code), ("state", &state)])
        }
    };
    Redirect::to(&target).into_response()
}

/// HTTP Basic client authentication (oauth2's default).
fn client_ok(headers: &HeaderMap) -> bool {
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Basic {expected}"))
}

async fn token(
    State(inner): Shared,
    Path(shape): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let bad_code = || {
        if shape == "github" {
            // GitHub: HTTP 200 with an error body.
            axum::Json(serde_json::json!({"error": "bad_verification_code",
                "error_description": "The code passed is incorrect or expired."}))
            .into_response()
        } else {
            (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": "invalid_grant"})),
            )
                .into_response()
        }
    };
    if !client_ok(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    if field("grant_type") != "authorization_code" {
        return bad_code();
    }
    let mut inner = inner.lock().unwrap();
    let Some(grant) = inner.codes.get_mut(&field("code")) else {
        return bad_code();
    };
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(field("code_verifier").as_bytes()));
    if grant.used || grant.redirect_uri != field("redirect_uri") || grant.challenge != challenge {
        grant.used = true;
        return bad_code();
    }
    grant.used = true;
    let person = grant.person.clone();
    let access = format!("token-{}", inner.next);
    inner.next += 1;
    inner.tokens.insert(access.clone(), person);
    axum::Json(
        serde_json::json!({"access_token": access, "token_type": "bearer",
        "scope": "read:user user:email"}),
    )
    .into_response()
}

fn bearer(inner: &Inner, headers: &HeaderMap) -> Option<Person> {
    let token = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    inner.tokens.get(token).cloned()
}

async fn github_user(State(inner): Shared, headers: HeaderMap) -> Response {
    let inner = inner.lock().unwrap();
    if inner.mode == Mode::ProfileError {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    match bearer(&inner, &headers) {
        Some(p) => axum::Json(serde_json::json!({"id": p.id.parse::<u64>().unwrap_or(1),
            "login": "ada", "name": p.name, "avatar_url": p.avatar_url, "email": null}))
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn github_emails(State(inner): Shared, headers: HeaderMap) -> Response {
    let inner = inner.lock().unwrap();
    let verified = inner.mode != Mode::UnverifiedEmail;
    match bearer(&inner, &headers) {
        Some(p) => axum::Json(serde_json::json!([
            {"email": "unverified@example.com", "primary": false, "verified": false},
            {"email": p.email, "primary": true, "verified": verified},
        ]))
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn google_userinfo(State(inner): Shared, headers: HeaderMap) -> Response {
    let inner = inner.lock().unwrap();
    if inner.mode == Mode::ProfileError {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let verified = inner.mode != Mode::UnverifiedEmail;
    match bearer(&inner, &headers) {
        Some(p) => axum::Json(serde_json::json!({"sub": p.id, "name": p.name,
            "picture": p.avatar_url, "email": p.email, "email_verified": verified}))
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
