//! When a remembered token check may be reused: the revocation epoch.
//!
//! Why: the database lookup of `auth.authenticate` (blacklist, session, user, issuer,
//! audience) gives the same answer until one of those tables changes. Every change to them
//! bumps a counter in shared memory after its transaction commits, so every backend that reads
//! the new value also sees the change. A backend reuses a check it made only while the counter
//! is what it was when it made it (and only in transactions that have written nothing, see
//! `kernel_queries::may_remember`). A transaction that changed these tables cannot be prepared
//! for two-phase commit: `COMMIT PREPARED` would never bump the counter.
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, register_xact_callback, PgAtomic, PgXactCallbackEvent};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static EPOCH: PgAtomic<AtomicU64> = unsafe { PgAtomic::new(c"fluxbase_revocation_epoch") };

/// Reserves the shared counter (called from `_PG_init`, which runs at preload).
pub fn init() {
    pg_shmem_init!(EPOCH);
}

/// The counter a check is valid for.
pub fn current() -> u64 {
    EPOCH.get().load(Ordering::Acquire)
}

thread_local! {
    /// The local transaction id the callbacks below are registered for: once per transaction
    /// is enough, however many statements change the tables.
    static REGISTERED_FOR: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Records that tokens, sessions, users or settings changed in this transaction.
pub fn note_change() {
    // SAFETY: MyProc is set for every backend that runs SQL.
    let lxid = unsafe { (*pgrx::pg_sys::MyProc).lxid };
    if REGISTERED_FOR.with(|r| r.replace(Some(lxid))) == Some(lxid) {
        return;
    }
    register_xact_callback(PgXactCallbackEvent::Commit, || {
        EPOCH.get().fetch_add(1, Ordering::AcqRel);
    });
    register_xact_callback(PgXactCallbackEvent::PrePrepare, || {
        pgrx::error!("a transaction that changes Fluxbase tokens, sessions, users or settings cannot be prepared (two-phase commit)");
    });
}

#[pgrx::pg_schema]
pub mod fluxbase {
    use pgrx::prelude::*;

    /// Internal: called by the statement triggers on the tables auth.authenticate reads.
    #[pg_extern(volatile, parallel_unsafe)]
    fn note_revocation_change() {
        super::note_change();
    }
}
