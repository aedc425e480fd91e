//! `fluxbase.reset_session()`: what the server runs on a connection after every request, before
//! the connection serves another one.
//!
//! Why a function: the same reset as seven SQL commands (`CLOSE ALL; SET SESSION AUTHORIZATION
//! DEFAULT; RESET ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD
//! SEQUENCES`, deadpool's `Clean` set) is parsed and run statement by statement on every
//! request and cost about as much database CPU as a small request itself. This one prepared call
//! runs the same internal routines those commands run, and can be pipelined behind the
//! request's COMMIT.
//!
//! Each step undoes session state that SQL a request ran (a function body, say) could leave:
//! a session-level `set_config`/`SET`, a session-level role, open cursors, `LISTEN`s, advisory
//! locks, temporary tables, cached sequence values.
use pgrx::pg_sys;

// Exported by PostgreSQL (commands/async.h, commands/sequence.h) but not in pgrx's bindings.
unsafe extern "C-unwind" {
    fn Async_UnlistenAll();
    fn ResetSequenceCaches();
}

/// The reset itself. Run outside the request's transaction (in its own), so each change
/// commits with it.
fn reset() {
    // SAFETY: the routines behind the SQL commands named beside each call, called in a
    // transaction as those commands are; the boundary guard turns a PostgreSQL error into a
    // Rust panic that pgrx reports as an ordinary error.
    unsafe {
        // CLOSE ALL (skips the portal running this very call).
        pg_sys::PortalHashTableDeleteAll();
        // SET SESSION AUTHORIZATION DEFAULT: the login role is no superuser, so its session
        // user can never have changed; what can is a session-level role, so set it back.
        pg_sys::SetConfigOption(
            c"role".as_ptr(),
            c"none".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
        );
        // RESET ALL.
        pg_sys::ResetAllOptions();
        // UNLISTEN *.
        pg_sys::ffi::pg_guard_ffi_boundary(|| Async_UnlistenAll());
        // SELECT pg_advisory_unlock_all().
        pg_sys::LockReleaseAll(pg_sys::USER_LOCKMETHOD as pg_sys::LOCKMETHODID, true);
        // DISCARD TEMP.
        pg_sys::ResetTempTableNamespace();
        // DISCARD SEQUENCES.
        pg_sys::ffi::pg_guard_ffi_boundary(|| ResetSequenceCaches());
    }
}

#[pgrx::pg_schema]
pub mod fluxbase {
    use pgrx::prelude::*;

    /// Undo the session state a request could leave on a pooled connection (see the module
    /// documentation). Granted to the server's login role.
    #[pg_extern(volatile, parallel_unsafe)]
    fn reset_session() {
        super::reset();
    }
}
