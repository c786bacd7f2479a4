//! sea-orm entities, one module per table (schema in the `migration` crate).

pub mod room;
