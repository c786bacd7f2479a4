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
    pub hub: super::hub::Hub,
    pub room_quota: Arc<super::api_guard::RoomQuota>,
}

impl AppState {
    /// Connects to the database, runs migrations and prepares the ticket keys.
    pub async fn init(settings: Settings) -> anyhow::Result<Self> {
        let db = super::db::connect_and_migrate(&settings.database).await?;
        let tickets = Arc::new(Tickets::new(&settings.jwt_secret));
        let hub = super::hub::Hub::start(
            settings.hub.clone(),
            settings.ice.clone(),
            settings.redis_url.as_ref().map(|u| u.expose_secret()),
        )
        .await?;
        Ok(Self {
            hub,
            room_quota: Arc::default(),
            settings: Arc::new(settings),
            db,
            tickets,
        })
    }
}
