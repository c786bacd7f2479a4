//! The server side: configuration, database, room service and the HTTP router.

pub mod config;
pub mod db;
pub mod entity;
pub mod rooms;
pub mod state;
pub mod ticket;

use crate::protocol::limits::MAX_REQUEST_BODY_BYTES;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use config::Settings;
use state::AppState;

/// The whole HTTP surface: pages, server functions, static files and health check.
pub fn router(state: AppState) -> axum::Router {
    dioxus::server::router(crate::app::App)
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY_BYTES))
        .layer(axum::Extension(state))
}

/// Starts the server: settings from the environment, then `dioxus::serve` (which reads IP/PORT).
pub fn main() {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("meshdrop: configuration error: {e}");
            std::process::exit(2);
        }
    };
    dioxus::serve(move || {
        let settings = settings.clone();
        async move {
            if settings.jwt_secret_generated {
                tracing::warn!(
                    data_dir = %settings.data_dir.display(),
                    "MESHDROP_JWT_SECRET is not set: using a generated development secret kept in the data directory"
                );
            }
            tracing::info!(database = settings.database.kind(), public_url = %settings.public_url, "starting meshdrop");
            let state = AppState::init(settings).await?;
            Ok(router(state))
        }
    });
}
