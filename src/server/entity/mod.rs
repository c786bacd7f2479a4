//! sea-orm entities, one module per table (schema in the `migration` crate).

pub mod app_user;
pub mod room;
pub mod room_completion;
