//! The server side: configuration, database, room service and the HTTP router.

pub mod api_guard;
pub mod auth;
pub mod client_addr;
pub mod config;
pub mod db;
pub mod entity;
pub mod hub;
pub mod rooms;
pub mod signal;
pub mod state;
pub mod ticket;
pub mod turn;

use axum::routing::get;
use config::Settings;
use state::AppState;

/// The whole HTTP surface: pages, server functions, static files and health check.
pub fn router(state: AppState) -> axum::Router {
    let app = if has_public_dir() {
        dioxus::server::router(crate::app::App)
    } else {
        // Native test binaries and plain `cargo run` have no bundle next to them: render pages
        // and serve server functions, without the browser build's static files.
        use dioxus::server::DioxusRouterExt;
        axum::Router::new()
            .serve_api_application(dioxus::server::ServeConfig::new(), crate::app::App)
    };
    let auth_layer = auth::layer(
        state.auth.clone(),
        state.sessions.clone(),
        &state.settings.public_url,
    );
    app.route("/healthz", get(|| async { "ok" }))
        .route("/api/rooms/{id}/signal", get(signal::upgrade))
        .route("/auth/{provider}/login", get(auth::login))
        .route("/auth/{provider}/callback", get(auth::callback))
        .route("/auth/logout", axum::routing::post(auth::logout))
        .layer(axum::middleware::from_fn(auth::guard))
        .layer(axum::middleware::from_fn(api_guard::guard))
        .layer(auth_layer)
        .layer(axum::Extension(state))
}

/// Whether a `dx bundle` public directory sits where dioxus looks for it.
fn has_public_dir() -> bool {
    if std::env::var_os("DIOXUS_PUBLIC_PATH").is_some() {
        return true;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("public").is_dir()))
        .unwrap_or(false)
}

/// Starts the server: settings from the environment, state, then axum on IP:PORT.
///
/// We serve with axum directly (not `dioxus::serve`) because the hub needs each socket's
/// peer address for its per-address limit.
pub fn main() {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("meshdrop: configuration error: {e}");
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new().expect("starting the async runtime");
    if let Err(e) = runtime.block_on(serve(settings)) {
        tracing::error!("{e:#}");
        std::process::exit(1);
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    if settings.jwt_secret_generated {
        tracing::warn!(
            data_dir = %settings.data_dir.display(),
            "MESHDROP_JWT_SECRET is not set: using a generated development secret kept in the data directory"
        );
    }
    let addr = std::net::SocketAddr::new(settings.ip, settings.port);
    tracing::info!(
        database = settings.database.kind(),
        redis = settings.redis_url.is_some(),
        public_url = %settings.public_url,
        "starting meshdrop"
    );
    let state = AppState::init(settings).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("listening on {addr}: {e}"))?;
    tracing::info!(%addr, "listening");
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await?;
    Ok(())
}
