//! Rooms: metadata only. File content never reaches the server.
//!
//! The manifest columns (`root_hash`, `piece_size`) are nullable so a room can be allocated
//! before its files are hashed, and so swarm integrity needs no schema rewrite: what the
//! server keeps stays a few hundred bytes per file however large the files are.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Room::Table)
                    .if_not_exists()
                    .col(string_len(Room::Id, 22).primary_key())
                    .col(string_len_null(Room::Title, 200))
                    // JSON array of {name, size, mime}; bounded by the request limits.
                    .col(text(Room::Files))
                    .col(integer(Room::FileCount))
                    .col(big_integer(Room::TotalSize))
                    // Hex SHA-256 Merkle root of the piece hashes, and the piece size in bytes.
                    .col(string_len_null(Room::RootHash, 64))
                    .col(big_integer_null(Room::PieceSize))
                    .col(big_integer(Room::CreatedAt))
                    .col(big_integer(Room::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_room_expires_at")
                    .table(Room::Table)
                    .col(Room::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Room::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Room {
    Table,
    Id,
    Title,
    Files,
    FileCount,
    TotalSize,
    RootHash,
    PieceSize,
    CreatedAt,
    ExpiresAt,
}
