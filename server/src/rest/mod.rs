//! The REST layer: from a PostgREST-style request to one parameterised SQL statement.
//!
//! Stages, one module each: [`schema_cache`] (what exists), [`query`] (parse and resolve the
//! query string against it), [`sql`] (build the statement). The HTTP handlers that drive
//! them are in [`crate::routes::tables`].
pub mod functions;
pub mod query;
pub mod schema_cache;
pub mod sql;
