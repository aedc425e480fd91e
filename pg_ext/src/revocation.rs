//! When a remembered token check may be reused: the revocation epoch.
//!
//! Why: the database lookup of `auth.authenticate` (blacklist, session, user, issuer,
//! audience) gives the same answer until one of those tables changes. Every change to them
//! bumps a counter in shared memory, after its transaction commits (so every backend that
//! reads the new value also sees the change), and a counter local to the writing backend at
//! once (so its own transaction sees its own change). A backend reuses a check it made only
//! while both counters are what they were when it made it.
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, register_xact_callback, PgAtomic, PgXactCallbackEvent};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static EPOCH: PgAtomic<AtomicU64> = unsafe { PgAtomic::new(c"fluxbase_revocation_epoch") };

thread_local! {
    static LOCAL: Cell<u64> = const { Cell::new(0) };
}

/// Reserves the shared counter (called from `_PG_init`, which runs at preload).
pub fn init() {
    pg_shmem_init!(EPOCH);
}

/// The pair of counters a check is valid for.
pub fn current() -> (u64, u64) {
    (EPOCH.get().load(Ordering::Acquire), LOCAL.with(Cell::get))
}

/// Records that tokens, sessions, users or settings changed in this transaction.
pub fn note_change() {
    LOCAL.with(|l| l.set(l.get().wrapping_add(1)));
    register_xact_callback(PgXactCallbackEvent::Commit, || {
        EPOCH.get().fetch_add(1, Ordering::AcqRel);
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
