//! Connecting to the metadata database and bringing its schema up to date.

use super::config::DatabaseUrl;
use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

/// Connects (creating the SQLite file if needed) and runs pending migrations.
pub async fn connect_and_migrate(url: &DatabaseUrl) -> anyhow::Result<DatabaseConnection> {
    if let DatabaseUrl::Sqlite(sqlite) = url
        && let Some(dir) = sqlite_parent_dir(sqlite)
    {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = ConnectOptions::new(url.expose().to_owned());
    // Statement logging would be noisy at info level; keep it for debugging only.
    options.sqlx_logging(false);
    if matches!(url, DatabaseUrl::Sqlite(_)) {
        // SQLite allows one writer; a small pool avoids "database is locked" under load.
        options.max_connections(4);
    }
    let db = Database::connect(options)
        .await
        .with_context(|| format!("connecting to the {} database", url.kind()))?;
    Migrator::up(&db, None)
        .await
        .context("running database migrations")?;
    Ok(db)
}

fn sqlite_parent_dir(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Into::into)
}
