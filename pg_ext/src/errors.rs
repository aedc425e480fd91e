//! Raising a PostgreSQL ERROR from Rust with a precise SQLSTATE and one sentence.
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Raises an ERROR (aborting the statement) and never returns.
pub fn raise(code: PgSqlErrorCode, message: impl Into<String>) -> ! {
    ErrorReport::new(code, message.into(), "fluxbase").report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}
