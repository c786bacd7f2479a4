//! The server over real HTTP: room creation, room pages, status codes and input limits,
//! on SQLite (the embedded default) and on a real Postgres.

mod common;

use common::{Backend, TestApp, spawn_app};
use meshdrop::protocol::limits::{MAX_FILE_NAME_BYTES, MAX_FILES_PER_ROOM};
use meshdrop::protocol::{CreatedRoom, RoomView};
use meshdrop::server::entity::room;
use meshdrop::server::ticket::Tickets;
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, Set};
use serde_json::{Value, json};

async fn create(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/rooms"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn room_count(app: &TestApp) -> u64 {
    room::Entity::find().count(&app.state.db).await.unwrap()
}

async fn creates_a_room_and_reads_it_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = create(
        &app,
        json!({"title": "  Holiday  ", "files": [
            {"name": "photo <1>.jpg", "size": 123456, "mime": "image/jpeg"},
            {"name": "notes.txt", "size": 0, "mime": ""}
        ]}),
    )
    .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let created: CreatedRoom = response.json().await.unwrap();
    assert_eq!(room_count(&app).await, 1);

    // The ticket is a valid HS256 JWT for this room, signed with the configured secret.
    let claims = Tickets::new(&app.state.settings.jwt_secret)
        .verify(&created.ticket)
        .unwrap();
    assert_eq!(claims.room, created.id);
    assert!(claims.creator);
    assert!(claims.exp <= created.expires_at);

    let view: RoomView = app
        .get(&format!("/api/rooms/{}", created.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view.id, created.id);
    assert_eq!(view.title.as_deref(), Some("Holiday"));
    assert_eq!(view.files.len(), 2);
    assert_eq!(view.files[0].name, "photo <1>.jpg");
    assert_eq!(view.total_size(), 123456);

    // The page is server-rendered: names and sizes are in the first response, HTML-escaped.
    let page = app.get(&created.id.path()).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("photo &#60;1&#62;.jpg") || html.contains("photo &lt;1&gt;.jpg"),
        "{html}"
    );
    assert!(!html.contains("photo <1>"), "file names must be escaped");
    assert!(html.contains("notes.txt"));
    assert!(html.contains("120.6 KiB"));
    assert!(html.contains("Holiday"));
}

async fn unknown_expired_and_malformed_rooms(backend: Backend) {
    let app = spawn_app(backend).await;
    let unknown = "AAAAAAAAAAAAAAAAAAAAAA";
    let page = app.get(&format!("/room/{unknown}")).await;
    assert_eq!(page.status(), 404);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("does not exist or has expired")
    );
    let api = app.get(&format!("/api/rooms/{unknown}")).await;
    assert_eq!(api.status(), 404);

    // An expired room answers exactly like a missing one.
    let created: CreatedRoom = create(&app, json!({"files": [{"name": "old.bin", "size": 1}]}))
        .await
        .json()
        .await
        .unwrap();
    let row = room::Entity::find_by_id(created.id.to_string())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let mut expired: room::ActiveModel = row.into();
    expired.expires_at = Set(1);
    expired.update(&app.state.db).await.unwrap();
    let page = app.get(&created.id.path()).await;
    assert_eq!(page.status(), 404);
    let html = page.text().await.unwrap();
    assert!(html.contains("does not exist or has expired") && !html.contains("old.bin"));

    for bad in [
        "short",
        "AAAAAAAAAAAAAAAAAAAA%2BA",
        "AAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let page = app.get(&format!("/room/{bad}")).await;
        assert_eq!(page.status(), 400, "/room/{bad}");
        assert!(page.text().await.unwrap().contains("not a room link"));
        let api = app.get(&format!("/api/rooms/{bad}")).await;
        assert_eq!(api.status(), 400, "/api/rooms/{bad}");
    }
    let missing = app.get("/no/such/page").await;
    assert_eq!(missing.status(), 404);
}

async fn bad_payloads_get_clear_4xx_and_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let long_name = "x".repeat(MAX_FILE_NAME_BYTES + 1);
    let too_many: Vec<Value> = (0..=MAX_FILES_PER_ROOM)
        .map(|i| json!({"name": format!("f{i}"), "size": 1}))
        .collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"files": []}), "at least one file"),
        (json!({"files": too_many}), "at most 1000 files"),
        (
            json!({"files": [{"name": long_name, "size": 1}]}),
            "the limit is 255",
        ),
        (
            json!({"files": [{"name": "../etc/passwd", "size": 1}]}),
            "may not contain '/'",
        ),
        (
            json!({"files": [{"name": "a\\b", "size": 1}]}),
            "may not contain '/'",
        ),
        (
            json!({"files": [{"name": "bell\u{7}", "size": 1}]}),
            "control characters",
        ),
        (
            json!({"files": [{"name": "huge", "size": 1u64 << 50}]}),
            "larger than",
        ),
        (json!({"files": [{"name": "neg", "size": -5}]}), "-5"),
        (json!({"files": [{"name": "float", "size": 1.5}]}), "1.5"),
        (json!({"files": "not a list"}), "invalid type"),
        (json!({"nothing": true}), "files"),
    ];
    for (body, expected) in cases {
        let response = create(&app, body.clone()).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 400, "{body}: {text}");
        assert!(
            text.contains(expected),
            "{body}: expected {expected:?} in {text}"
        );
    }
    let not_json = app
        .client
        .post(app.url("/api/rooms"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert!(not_json.status().is_client_error(), "{}", not_json.status());

    // A body above the limit is refused before it is read whole.
    let padding = "p".repeat(2 * 1024 * 1024);
    let huge = create(
        &app,
        json!({"title": padding, "files": [{"name": "a", "size": 1}]}),
    )
    .await;
    assert_eq!(huge.status(), 413);

    assert_eq!(room_count(&app).await, 0, "a refused request stored a room");
}

macro_rules! on_both_backends {
    ($($name:ident),*) => {
        mod sqlite { $( #[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await } )* }
    };
}

on_both_backends!(
    creates_a_room_and_reads_it_back,
    unknown_expired_and_malformed_rooms,
    bad_payloads_get_clear_4xx_and_store_nothing
);

#[tokio::test]
async fn health_check_answers() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
}
