//! Database schema of meshdrop, as sea-orm migrations. The server runs them on start-up.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_room;
mod m20261123_000002_accounts;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_room::Migration),
            Box::new(m20261123_000002_accounts::Migration),
        ]
    }
}
