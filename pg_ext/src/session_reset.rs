//! The reset of a pooled connection's session between two requests.
//!
//! Each step undoes session state that SQL a request ran (a function body, say) could leave:
//! a session-level `set_config`/`SET`, a session-level role, open (holdable) cursors,
//! `LISTEN`s, advisory locks, temporary tables, cached sequence values.
//!
//! Two ways in, one set of steps:
//! - [`reset_when_transaction_ends`], called by `auth.authenticate`: the reset runs *inside the request's own COMMIT* (a pre-commit callback, so
//!   each change commits with it), and a ROLLBACK releases what an abort does not undo by
//!   itself (session advisory locks, cached sequence values). Why: a separate reset statement
//!   after every request cost a round of its own in PostgreSQL — parse/bind/execute, a Sync
//!   and a flushed answer — about a tenth of a small read's database time.
//! - `fluxbase.reset_session()`, for a connection that ran SQL outside such a transaction
//!   (the server's own transactions, which do not authenticate, and a statement refused before
//!   `BEGIN`).
//!
//! Why a function and not SQL: the same reset as seven SQL commands (`CLOSE ALL; SET SESSION
//! AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP;
//! DISCARD SEQUENCES`, deadpool's `Clean` set) is parsed and run statement by statement and
//! cost about as much database CPU as a small request itself; these are the internal routines
//! those commands run.
use pgrx::{pg_sys, register_xact_callback, PgXactCallbackEvent};
use std::cell::Cell;

// Exported by PostgreSQL (commands/async.h, commands/sequence.h, utils/fmgrprotos.h).
unsafe extern "C-unwind" {
    fn Async_UnlistenAll();
    fn ResetSequenceCaches();
    // The C function behind SQL `setseed(float8)` (utils/fmgrprotos.h), called directly by
    // DirectFunctionCall1Coll (pgrx wraps pg_sys's in a Rust function).
    fn setseed(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
}

/// The reset itself, in a transaction whose commit makes each change stick: the one
/// `fluxbase.reset_session()` runs in, or the request's own, just before it commits.
fn reset() {
    // SAFETY: the routines behind the SQL commands named beside each call, called in a
    // transaction as those commands are; the boundary guard turns a PostgreSQL error into a
    // Rust panic that pgrx reports as an ordinary error.
    unsafe {
        // CLOSE ALL (skips the portal running this very call).
        pg_sys::PortalHashTableDeleteAll();
        // SET SESSION AUTHORIZATION DEFAULT: the login role is no superuser, so its session
        // user can never have changed; what can is a session-level role, so set it back. At
        // the end of an authenticated transaction the role guard would refuse this as a
        // change of the verified role: it is the extension's own switch.
        crate::guard::as_authenticate_switch(|| {
            pg_sys::SetConfigOption(
                c"role".as_ptr(),
                c"none".as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
            )
        });
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
    reseed_random();
}

/// `setseed()` with a value nobody can know, so `random()` never continues from a seed a
/// previous request chose (no SQL command resets it; found by the red-team tests).
fn reseed_random() {
    let mut bytes = [0u8; 8];
    // SAFETY: pg_strong_random fills the buffer it is given; setseed takes one float8 in
    // [-1, 1], which this is, and raises nothing for it.
    unsafe {
        if pg_sys::pg_strong_random(bytes.as_mut_ptr().cast(), bytes.len()) {
            let seed = (u64::from_le_bytes(bytes) as f64 / u64::MAX as f64) * 2.0 - 1.0;
            let seed = seed.clamp(-1.0, 1.0);
            pg_sys::DirectFunctionCall1Coll(
                Some(setseed),
                pg_sys::InvalidOid,
                pg_sys::Datum::from(seed.to_bits() as usize),
            );
        }
    }
}

/// What a ROLLBACK leaves of a request's session state (advisory locks, cached sequence
/// values, the `random()` seed): everything else it set up (settings, role, temporary tables,
/// `LISTEN`, cursors) is undone by the abort itself.
fn release_what_an_abort_keeps() {
    // SAFETY: plain cleanup routines (`pg_advisory_unlock_all()`, `DISCARD SEQUENCES`) that
    // raise no error; run from the abort callback, where the lock manager is still usable.
    unsafe {
        pg_sys::LockReleaseAll(pg_sys::USER_LOCKMETHOD as pg_sys::LOCKMETHODID, true);
        pg_sys::ffi::pg_guard_ffi_boundary(|| ResetSequenceCaches());
    }
    reseed_random();
}

thread_local! {
    /// The local transaction id the end-of-transaction reset is registered for, so that a
    /// second `auth.authenticate` in one transaction does not register it twice.
    static REGISTERED_FOR: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Reset the session when this transaction ends (see the module documentation). Called first
/// thing by `auth.authenticate`, before the token is checked, so a refused token's ROLLBACK
/// cleans up too. For every caller, not only the server's login: whether a connection is
/// pooled is not the extension's to guess (a server logging in as a role outside
/// `fluxbase_authenticator`, or as a superuser, must not leak either), and a psql session
/// that authenticates is one request's worth of session too.
pub fn reset_when_transaction_ends() {
    // SAFETY: MyProc is set in every backend that runs SQL.
    let lxid = unsafe { (*pg_sys::MyProc).lxid };
    if REGISTERED_FOR.get() == Some(lxid) {
        return;
    }
    REGISTERED_FOR.set(Some(lxid));
    // Pre-commit: still a normal transaction (after deferred triggers, before the commit
    // record), so the reset commits with the request; pgrx drops both callbacks when the
    // transaction ends, whichever way.
    register_xact_callback(PgXactCallbackEvent::PreCommit, reset);
    register_xact_callback(PgXactCallbackEvent::Abort, release_what_an_abort_keeps);
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
