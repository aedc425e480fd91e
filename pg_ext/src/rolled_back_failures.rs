//! Failed sign-in attempts whose transaction rolled back still count toward the lockout.
//!
//! Why: the lockout counters (`auth.login_attempts`) are rows, written in the caller's
//! transaction. The server commits it; but SQL run with the server's login role could call
//! `auth.sign_in` (or a 2FA or password check) in a transaction, a savepoint or an exception
//! block that it then rolls back, read the answer, and guess without end (found by a red-team
//! review). So each failure is also noted here for the transaction; if the (sub)transaction
//! that counted it aborts, the failure moves into a ledger in shared memory, which no rollback
//! undoes, and `auth.lock_attempt_keys` adds the ledger's count to the table's.
//!
//! The ledger is a fixed table of slots (no allocation in shared memory), keyed by a hash of
//! the database and the lockout key; each entry lasts one lockout window, and no entry is
//! ever replaced inside its window (a review pushed a victim's entry out by failing on keys
//! that hashed near it, when entries could be evicted). Every lookup scans the whole table
//! (~100 KB, a few µs: nothing beside an argon2 check). Should it fill with live entries —
//! thousands of rolled-back failures inside one window, which the server never causes — it
//! fails closed: until entries expire, every key it does not hold counts as locked. Sign-in
//! successes, password resets and `auth.unlock` clear a key's entry
//! (`auth.clear_login_failures`). It is not kept across a restart: what it guards against is
//! a run of guesses, which a restart interrupts.
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};

/// Slots in the ledger (~100 KB of shared memory).
const SLOTS: usize = 4096;

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Slot {
    /// The key's hash (never 0); 0: free.
    key: u64,
    failures: u32,
    /// When the window of these failures ends (PostgreSQL timestamp, µs since 2000).
    window_end: i64,
}

#[derive(Clone, Copy)]
#[repr(C)]
pub struct Ledger {
    slots: [Slot; SLOTS],
    /// Until when a failure found no free slot (0: never): until then, keys the ledger
    /// does not hold count as locked.
    full_until: i64,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            slots: [Slot::default(); SLOTS],
            full_until: 0,
        }
    }
}

/// What `Ledger::failures` answers for a key it could not record while full: locked.
const FAILED_CLOSED: u32 = 1_000_000;

// SAFETY: plain data (integers in an array), the same in every backend.
unsafe impl PGRXSharedMemory for Ledger {}

static LEDGER: PgLwLock<Ledger> = unsafe { PgLwLock::new(c"fluxbase_rolled_back_failures") };

/// Reserves the ledger (called from `_PG_init`, which runs at preload).
pub fn init() {
    pg_shmem_init!(LEDGER);
}

/// The ledger key of `key` in this database (lockout keys are per database).
fn hash(key: &str) -> u64 {
    // SAFETY: MyDatabaseId is set for every backend that runs SQL.
    let database = u32::from(unsafe { pg_sys::MyDatabaseId });
    let digest = Sha256::new()
        .chain_update(database.to_be_bytes())
        .chain_update(key.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first).max(1)
}

impl Ledger {
    fn failures(&self, key: u64, now: i64) -> u32 {
        match self.slots.iter().find(|s| s.key == key) {
            Some(slot) if slot.window_end > now => slot.failures,
            _ if self.full_until > now => FAILED_CLOSED,
            _ => 0,
        }
    }

    fn add(&mut self, key: u64, window: i64, now: i64) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.key == key) {
            if slot.window_end <= now {
                slot.failures = 1;
                slot.window_end = now + window;
            } else {
                slot.failures = slot.failures.saturating_add(1);
            }
            return;
        }
        match self
            .slots
            .iter_mut()
            .find(|s| s.key == 0 || s.window_end <= now)
        {
            Some(slot) => {
                *slot = Slot {
                    key,
                    failures: 1,
                    window_end: now + window,
                }
            }
            None => self.full_until = self.full_until.max(now + window),
        }
    }

    /// Forgets `key`; whether it was held.
    fn forget(&mut self, key: u64) -> bool {
        match self.slots.iter_mut().find(|s| s.key == key) {
            Some(slot) => {
                *slot = Slot::default();
                true
            }
            None => false,
        }
    }
}

thread_local! {
    /// The failures counted in the current transaction: key hash, window (µs), and the
    /// subtransaction that counted it.
    static PENDING: RefCell<Vec<(u64, i64, pg_sys::SubTransactionId)>> = const { RefCell::new(Vec::new()) };
    static CALLBACKS: Cell<bool> = const { Cell::new(false) };
}

fn now() -> i64 {
    // SAFETY: reads the clock.
    unsafe { pg_sys::GetCurrentTimestamp() }
}

/// Moves the pending failures `which` selects into the ledger. Runs in abort callbacks: no
/// error may escape (taking an LWLock and writing integers cannot fail).
fn flush(which: impl Fn(pg_sys::SubTransactionId) -> bool) {
    let moved: Vec<(u64, i64)> = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let (gone, kept): (Vec<_>, Vec<_>) = p.drain(..).partition(|(_, _, sub)| which(*sub));
        *p = kept;
        gone.into_iter().map(|(k, w, _)| (k, w)).collect()
    });
    if moved.is_empty() {
        return;
    }
    let now = now();
    let mut ledger = LEDGER.exclusive();
    for (key, window) in moved {
        ledger.add(key, window, now);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT => {
            flush(|_| true)
        }
        // Its rollback would happen in another session, out of this one's sight.
        pg_sys::XactEvent::XACT_EVENT_PRE_PREPARE if PENDING.with(|p| !p.borrow().is_empty()) => {
            error!(
                "a transaction that counted a failed sign-in cannot be prepared (two-phase commit)"
            );
        }
        pg_sys::XactEvent::XACT_EVENT_COMMIT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT => {
            // The table holds them now.
            PENDING.with(|p| p.borrow_mut().clear())
        }
        _ => {}
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subtransaction_end(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    _parent_subid: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        // Children have larger ids and ended first: whatever was counted at or below this
        // subtransaction is undone in the table.
        flush(|sub| sub >= my_subid);
    }
}

/// Notes failures just counted against `keys` (their window: `window_seconds`). Not in a
/// superuser's session: a superuser can change the counters outright anyway, and the
/// extension's own tests (which roll every test back) run as one.
fn note(keys: &[String], window_seconds: i64) {
    // SAFETY: plain reads of the session's role.
    if unsafe { pg_sys::superuser_arg(pg_sys::GetSessionUserId()) } {
        return;
    }
    if !CALLBACKS.with(|c| c.replace(true)) {
        // SAFETY: registered once per backend; the callbacks only touch PENDING and LEDGER.
        unsafe {
            pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut());
            pg_sys::RegisterSubXactCallback(Some(on_subtransaction_end), std::ptr::null_mut());
        }
    }
    // SAFETY: plain read of the transaction state.
    let sub = unsafe { pg_sys::GetCurrentSubTransactionId() };
    let window = window_seconds.saturating_mul(1_000_000);
    PENDING.with(|p| {
        p.borrow_mut()
            .extend(keys.iter().map(|k| (hash(k), window, sub)))
    });
}

#[pg_schema]
pub mod fluxbase {
    use super::*;

    /// Internal (auth.record_login_failure): failures just counted against `keys`; if the
    /// transaction that counted them rolls back, they count all the same.
    #[pg_extern(volatile, parallel_unsafe)]
    fn note_login_failures(keys: Vec<String>, window_seconds: i64) {
        super::note(&keys, window_seconds);
    }

    /// Internal (auth.lock_attempt_keys; also for administrators): failures against `key`
    /// whose transaction rolled back, within their window.
    #[pg_extern(volatile, parallel_unsafe)]
    fn rolled_back_login_failures(key: &str) -> i32 {
        let failures = LEDGER.share().failures(super::hash(key), super::now());
        i32::try_from(failures).unwrap_or(i32::MAX)
    }

    /// Internal (auth.clear_login_failures): forgets what rolled-back failures `keys` left;
    /// how many keys were held.
    #[pg_extern(volatile, parallel_unsafe)]
    fn forget_rolled_back_login_failures(keys: Vec<String>) -> i32 {
        let mut ledger = LEDGER.exclusive();
        let forgotten = keys
            .iter()
            .filter(|k| ledger.forget(super::hash(k)))
            .count();
        i32::try_from(forgotten).unwrap_or(i32::MAX)
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::{Ledger, FAILED_CLOSED, SLOTS};
    use pgrx::prelude::*;

    const WINDOW: i64 = 900 * 1_000_000;

    /// No entry is replaced inside its window, however many other keys fail (a review pushed
    /// a victim's count out by failing on keys near it); a full ledger fails closed for the
    /// keys it does not hold; expired entries make room again; a cleared key starts at zero.
    #[pg_test]
    fn the_ledger_never_loses_a_live_count() {
        let mut ledger = Box::new(Ledger::default());
        let now = 1_000_000_000;
        for _ in 0..5 {
            ledger.add(42, WINDOW, now);
        }
        assert_eq!(ledger.failures(42, now), 5);
        for key in 1_000..(1_000 + 2 * SLOTS as u64) {
            ledger.add(key, WINDOW, now + 1);
        }
        assert_eq!(
            ledger.failures(42, now + 2),
            5,
            "the victim's count was evicted"
        );
        assert_eq!(
            ledger.failures(7, now + 2),
            FAILED_CLOSED,
            "a full ledger must fail closed"
        );
        let later = now + WINDOW + 10;
        assert_eq!(ledger.failures(42, later), 0, "a count outlived its window");
        assert_eq!(ledger.failures(7, later), 0);
        ledger.add(7, WINDOW, later);
        assert_eq!(ledger.failures(7, later), 1);
        assert!(ledger.forget(7));
        assert_eq!(ledger.failures(7, later), 0);
        assert!(!ledger.forget(7));
    }
}
