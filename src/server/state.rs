//! Everything a request handler needs, built once at start-up and shared.

use super::config::Settings;
use super::ticket::Tickets;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub tickets: Arc<Tickets>,
    pub hub: super::hub::SignalingHub,
    pub room_quota: Arc<super::api_guard::HourlyQuota>,
    pub signin_quota: Arc<super::api_guard::HourlyQuota>,
    pub completion_quota: Arc<super::api_guard::HourlyQuota>,
    /// Sign-in providers and user lookup (axum-login's backend).
    pub auth: super::auth::Backend,
    /// Where sessions are kept: Redis when configured, else memory.
    pub sessions: super::auth::session_store::Sessions,
}

impl AppState {
    /// Connects to the database, runs migrations, prepares the ticket keys and sign-in,
    /// and starts the job that purges expired rooms.
    pub async fn init(settings: Settings) -> anyhow::Result<Self> {
        let db = super::db::connect_and_migrate(&settings.database).await?;
        let tickets = Arc::new(Tickets::new(&settings.jwt_secret));
        let hub = super::hub::SignalingHub::start(
            settings.hub.clone(),
            settings.ice.clone(),
            settings.redis_url.as_ref().map(|u| u.expose_secret()),
        )
        .await?;
        let auth =
            super::auth::Backend::new(db.clone(), &settings.providers, &settings.public_url)?;
        let sessions = match &settings.redis_url {
            Some(url) => super::auth::session_store::Sessions::redis(url.expose_secret())?,
            None => super::auth::session_store::Sessions::memory(),
        };
        let purge_every = std::time::Duration::from_secs(settings.purge_interval_secs);
        let state = Self {
            hub,
            room_quota: Arc::default(),
            signin_quota: Arc::default(),
            completion_quota: Arc::default(),
            settings: Arc::new(settings),
            db,
            tickets,
            auth,
            sessions,
        };
        super::rooms::spawn_purge_job(state.clone(), purge_every);
        Ok(state)
    }
}
