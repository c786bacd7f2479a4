//! The `app_user` table: one row per GitHub or Google identity that signed in.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "app_user")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `github` or `google`.
    pub provider: String,
    /// The provider's stable id for the person (GitHub numeric id, Google `sub`).
    pub provider_user_id: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub email: Option<String>,
    /// Random; part of every session's auth hash (rotate it to sign out everywhere).
    pub session_key: String,
    pub created_at: i64,
    pub last_login_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
