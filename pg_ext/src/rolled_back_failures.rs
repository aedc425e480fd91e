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
//! the database and the lockout key; each entry lasts one lockout window. When its probe run
//! is full, the entry whose window ends first is replaced. It is not kept across a restart:
//! what it guards against is a run of guesses, which a restart interrupts.
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};

/// Slots in the ledger (~100 KB of shared memory).
const SLOTS: usize = 4096;
/// How many slots from a key's home slot it may land in.
const PROBE: usize = 16;

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
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            slots: [Slot::default(); SLOTS],
        }
    }
}

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
    fn home(key: u64) -> usize {
        (key % SLOTS as u64) as usize
    }

    fn failures(&self, key: u64, now: i64) -> u32 {
        (0..PROBE)
            .map(|i| &self.slots[(Self::home(key) + i) % SLOTS])
            .find(|s| s.key == key && s.window_end > now)
            .map_or(0, |s| s.failures)
    }

    fn add(&mut self, key: u64, window: i64, now: i64) {
        let home = Self::home(key);
        let mut reuse: Option<usize> = None;
        for i in 0..PROBE {
            let at = (home + i) % SLOTS;
            let slot = &mut self.slots[at];
            if slot.key == key {
                if slot.window_end <= now {
                    *slot = Slot {
                        key,
                        failures: 1,
                        window_end: now + window,
                    };
                } else {
                    slot.failures = slot.failures.saturating_add(1);
                }
                return;
            }
            // A free or expired slot, else the one whose window ends first.
            let better = match reuse {
                None => true,
                Some(r) => {
                    let current = self.slots[r];
                    let free = |s: &Slot| s.key == 0 || s.window_end <= now;
                    let candidate = self.slots[at];
                    (free(&candidate) && !free(&current))
                        || (!free(&current) && candidate.window_end < current.window_end)
                }
            };
            if better {
                reuse = Some(at);
            }
        }
        if let Some(at) = reuse {
            self.slots[at] = Slot {
                key,
                failures: 1,
                window_end: now + window,
            };
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

    /// Internal (auth.lock_attempt_keys): failures against `key` whose transaction rolled
    /// back, within their window.
    #[pg_extern(volatile, parallel_unsafe)]
    fn rolled_back_login_failures(key: &str) -> i32 {
        let failures = LEDGER.share().failures(super::hash(key), super::now());
        i32::try_from(failures).unwrap_or(i32::MAX)
    }
}
