//! Migrations on the embedded SQLite and on a real Postgres: apply, re-apply, roll back.

mod common;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

async fn check_roundtrip(db: &DatabaseConnection) {
    Migrator::up(db, None).await.unwrap();
    // Running again on an up-to-date schema is a no-op (what every restart does).
    Migrator::up(db, None).await.unwrap();
    assert!(
        Migrator::get_pending_migrations(db)
            .await
            .unwrap()
            .is_empty()
    );
    let applied = Migrator::get_applied_migrations(db).await.unwrap();
    assert_eq!(applied.len(), Migrator::migrations().len());
    db.execute_unprepared(
        "INSERT INTO room (id, title, files, file_count, total_size, root_hash, piece_size, created_at, expires_at) \
         VALUES ('AAAAAAAAAAAAAAAAAAAAAA', NULL, '[]', 0, 0, NULL, NULL, 1, 2)",
    )
    .await
    .unwrap();
    Migrator::down(db, None).await.unwrap();
    assert!(
        db.execute_unprepared("SELECT id FROM room").await.is_err(),
        "room table survived down()"
    );
    Migrator::up(db, None).await.unwrap();
    db.execute_unprepared("SELECT id, root_hash, piece_size, owner_id, revoked_at FROM room")
        .await
        .unwrap();
    db.execute_unprepared("SELECT id, provider, provider_user_id, session_key FROM app_user")
        .await
        .unwrap();
    db.execute_unprepared("SELECT room_id, ticket_hash FROM room_completion")
        .await
        .unwrap();
}

#[tokio::test]
async fn migrations_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    check_roundtrip(&Database::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn migrations_on_postgres() {
    let url = common::fresh_postgres_database().await;
    check_roundtrip(&Database::connect(&url).await.unwrap()).await;
}
