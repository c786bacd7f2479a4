//! The `room` table: one row per shared set of files.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "room")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub title: Option<String>,
    /// JSON array of `protocol::FileEntry`.
    #[sea_orm(column_type = "Text")]
    pub files: String,
    pub file_count: i32,
    pub total_size: i64,
    pub root_hash: Option<String>,
    pub piece_size: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The signed-in user who created the room; `None` for anonymous rooms.
    pub owner_id: Option<i64>,
    /// When the owner closed the room. A revoked room answers 410 Gone until it is purged.
    pub revoked_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
