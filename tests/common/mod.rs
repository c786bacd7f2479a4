//! Test helpers: a real server on 127.0.0.1:0 over SQLite or a fresh Postgres database.

#![allow(dead_code)]

pub mod fake_oauth;
pub mod ws;

use meshdrop::server::config::Settings;
use meshdrop::server::state::AppState;
use std::collections::HashMap;

pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret!";

/// Which database a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    server: tokio::task::JoinHandle<()>,
    _data_dir: tempfile::TempDir,
}

impl TestApp {
    /// Stops this instance as a crash or restart would: its listener closes and everything
    /// it kept in memory is gone. Returns once the port refuses connections.
    pub async fn stop(self) {
        let base = self.base.clone();
        self.server.abort();
        let _ = self.server.await;
        drop(self.state);
        let refused = reqwest::Client::new().get(&base).send().await.is_err();
        assert!(refused, "{base} still answers after stopping");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }
}

/// The Postgres server the test command started. Every test gets its own database in it.
pub fn postgres_admin_url() -> String {
    std::env::var("MESHDROP_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "MESHDROP_TEST_POSTGRES is not set: run the tests with scripts/test.sh, \
             which starts Postgres on 127.0.0.1 and sets it"
        )
    })
}

/// The Redis server the test command started.
pub fn redis_url() -> String {
    std::env::var("MESHDROP_TEST_REDIS").unwrap_or_else(|_| {
        panic!(
            "MESHDROP_TEST_REDIS is not set: run the tests with scripts/test.sh, which starts Redis"
        )
    })
}

/// Creates an empty database with a unique name and returns its URL.
pub async fn fresh_postgres_database() -> String {
    use sea_orm::{ConnectionTrait, Database};
    let admin = postgres_admin_url();
    let name = format!("meshdrop_test_{:016x}", rand_u64());
    let conn = Database::connect(&admin)
        .await
        .expect("connecting to the test Postgres");
    conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("creating a test database");
    conn.close().await.ok();
    let (base, _) = admin
        .rsplit_once('/')
        .expect("admin URL ends with /database");
    format!("{base}/{name}")
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

pub async fn settings_for(
    backend: Backend,
    data_dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> Settings {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("MESHDROP_DATA_DIR".into(), data_dir.display().to_string());
    vars.insert("MESHDROP_JWT_SECRET".into(), TEST_SECRET.into());
    if let Backend::Postgres = backend {
        vars.insert("DATABASE_URL".into(), fresh_postgres_database().await);
    }
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Settings::from_lookup(|k| vars.get(k).cloned()).expect("test settings are valid")
}

/// Starts the full router (pages, server functions) on an ephemeral port.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

/// The same, with extra configuration variables.
pub async fn spawn_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Sign-in callbacks are built from the public URL: it must be this listener's.
    let public_url = format!("http://{addr}");
    let mut extra = extra.to_vec();
    if !extra.iter().any(|(k, _)| *k == "MESHDROP_PUBLIC_URL") {
        extra.push(("MESHDROP_PUBLIC_URL", &public_url));
    }
    let settings = settings_for(backend, dir.path(), &extra).await;
    let state = AppState::init(settings)
        .await
        .expect("server state initialises");
    let router = meshdrop::server::router(state.clone());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        server,
        _data_dir: dir,
    }
}
