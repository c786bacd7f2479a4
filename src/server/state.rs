//! Everything a request handler needs, built once at start-up and shared.

use super::config::Settings;
use super::ticket::Tickets;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub tickets: Arc<Tickets>,
}

impl AppState {
    /// Connects to the database, runs migrations and prepares the ticket keys.
    pub async fn init(settings: Settings) -> anyhow::Result<Self> {
        let db = super::db::connect_and_migrate(&settings.database).await?;
        let tickets = Arc::new(Tickets::new(&settings.jwt_secret));
        Ok(Self {
            settings: Arc::new(settings),
            db,
            tickets,
        })
    }
}
