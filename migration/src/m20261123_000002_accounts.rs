//! Accounts: people who signed in with GitHub or Google, the rooms they own, and who finished
//! downloading a room.
//!
//! - `app_user`: one row per provider identity. The same email on two providers stays two
//!   users: accounts are never merged by email. `session_key` is mixed into every session's
//!   auth hash, so changing it signs that user out everywhere.
//! - `room.owner_id` (null for anonymous rooms) and `room.revoked_at` (set when the owner
//!   closes the room; its link then answers 410 Gone until the purge job removes it).
//! - `room_completion`: one row per ticket that reported a finished download, so the owner's
//!   count cannot be inflated by repeating a report.

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
                    .table(AppUser::Table)
                    .if_not_exists()
                    .col(big_integer(AppUser::Id).auto_increment().primary_key())
                    .col(string_len(AppUser::Provider, 16))
                    .col(string_len(AppUser::ProviderUserId, 64))
                    .col(string_len(AppUser::DisplayName, 200))
                    .col(string_len_null(AppUser::AvatarUrl, 500))
                    .col(string_len_null(AppUser::Email, 320))
                    .col(string_len(AppUser::SessionKey, 64))
                    .col(big_integer(AppUser::CreatedAt))
                    .col(big_integer(AppUser::LastLoginAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_app_user_identity")
                    .table(AppUser::Table)
                    .col(AppUser::Provider)
                    .col(AppUser::ProviderUserId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // SQLite changes one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Room::Table)
                    .add_column(big_integer_null(Room::OwnerId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Room::Table)
                    .add_column(big_integer_null(Room::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_room_owner")
                    .table(Room::Table)
                    .col(Room::OwnerId)
                    .col(Room::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoomCompletion::Table)
                    .if_not_exists()
                    .col(string_len(RoomCompletion::RoomId, 22))
                    // Hex SHA-256 of the reporting ticket.
                    .col(string_len(RoomCompletion::TicketHash, 64))
                    .col(big_integer(RoomCompletion::CompletedAt))
                    .primary_key(
                        Index::create()
                            .col(RoomCompletion::RoomId)
                            .col(RoomCompletion::TicketHash),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RoomCompletion::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_room_owner")
                    .table(Room::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Room::RevokedAt, Room::OwnerId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Room::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(AppUser::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AppUser {
    Table,
    Id,
    Provider,
    ProviderUserId,
    DisplayName,
    AvatarUrl,
    Email,
    SessionKey,
    CreatedAt,
    LastLoginAt,
}

#[derive(DeriveIden)]
enum Room {
    Table,
    OwnerId,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RoomCompletion {
    Table,
    RoomId,
    TicketHash,
    CompletedAt,
}
