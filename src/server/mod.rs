//! The server side: configuration, database, room service and the HTTP router.

pub mod api_guard;
pub mod config;
pub mod db;
pub mod entity;
pub mod rooms;
pub mod state;
pub mod ticket;

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
    app.route("/healthz", get(|| async { "ok" }))
        .layer(axum::middleware::from_fn(api_guard::guard))
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
