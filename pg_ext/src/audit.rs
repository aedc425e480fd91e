//! The audit primitives that must be in Rust; the log itself, its triggers and `audit.*` are SQL
//! (`sql/extension/60_audit.sql`, which explains the design).
//!
//! The hash chain. The log is split into *lanes*, one per backend slot (`MyBackendId`): no two
//! live backends share a slot, so a lane has exactly one writer at a time and concurrent
//! writers never wait for one another (one global chain head would serialise every audited
//! commit, its WAL flush included). Each row's hash is
//! `sha256(previous hash of the lane || "<lane>:<seq>:" || canonical text)`.
//!
//! The head of this backend's lane (last seq and hash) is kept here, in backend memory, so that
//! writing a row costs no extra read or write: it is loaded once from the log (a backend that
//! takes a slot starts after the slot's previous owner has ended, so its rows are all committed
//! or gone), moved by every row written, and moved back when the transaction, or the
//! subtransaction that wrote, rolls back, so a rolled-back row leaves no hole. A transaction
//! that wrote audit rows cannot be prepared (two-phase commit): its rows would commit after the
//! lane had moved on.
//!
//! Also here: who the caller is beneath SECURITY DEFINER. The audit functions run as their
//! owner, so `current_user` there is the owner; the role the statement really runs as is the
//! "outer" user (the one `SET ROLE` / `auth.authenticate` chose).
use crate::errors::raise;
use pgrx::prelude::*;
use pgrx::{pg_sys, register_xact_callback, PgXactCallbackEvent};
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::ffi::CStr;

/// The id of a transaction's top level (`TopSubTransactionId`, a macro bindgen does not carry).
const TOP_SUBTRANSACTION: pg_sys::SubTransactionId = 1;

/// 32 zero bytes: the hash "before" the first row of a lane.
pub const GENESIS: [u8; 32] = [0; 32];

/// The hash of one row: sha256(previous hash || "<lane>:<seq>:" || canonical text).
pub fn link_hash(prev: &[u8], lane: i32, seq: i64, content: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(format!("{lane}:{seq}:").as_bytes());
    h.update(content.as_bytes());
    h.finalize().into()
}

#[derive(Clone, Copy, PartialEq, Debug)]
struct Head {
    seq: i64,
    hash: [u8; 32],
}

struct Lane {
    /// The oid of the audit.log this head belongs to (a re-created extension starts afresh).
    log: pg_sys::Oid,
    lane: i32,
    head: Head,
    /// The head when the current transaction first wrote (restored if it aborts).
    at_transaction_start: Option<Head>,
    /// Per subtransaction that wrote (ascending ids), the head when it first wrote.
    at_subtransaction_start: Vec<(pg_sys::SubTransactionId, Head)>,
}

thread_local! {
    static LANE: RefCell<Option<Lane>> = const { RefCell::new(None) };
    static SUBXACT_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

fn my_lane() -> i32 {
    // SAFETY: set once at backend start, read-only afterwards.
    unsafe { pg_sys::MyBackendId }
}

/// The last committed link of `lane`: its newest row, else the anchor a purge left, else genesis.
fn load_head(lane: i32) -> Head {
    let row = Spi::get_two::<i64, Vec<u8>>(&format!(
        "SELECT chain_seq, hash FROM audit.log WHERE chain_lane = {lane} ORDER BY chain_seq DESC LIMIT 1"
    ));
    let row = match row {
        Ok((Some(seq), Some(hash))) => Some((seq, hash)),
        _ => match Spi::get_two::<i64, Vec<u8>>(&format!(
            "SELECT seq, hash FROM audit.chain_anchors WHERE lane = {lane}"
        )) {
            Ok((Some(seq), Some(hash))) => Some((seq, hash)),
            _ => None,
        },
    };
    match row {
        Some((seq, hash)) => Head {
            seq,
            hash: hash.try_into().unwrap_or_else(|_| {
                raise(
                    PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                    format!("the last audit row of lane {lane} has a hash that is not 32 bytes"),
                )
            }),
        },
        None => Head {
            seq: 0,
            hash: GENESIS,
        },
    }
}

/// Undo bookkeeping for the current (sub)transaction, set up on its first audit row.
fn note_write(lane: &mut Lane) {
    if lane.at_transaction_start.is_none() {
        lane.at_transaction_start = Some(lane.head);
        register_xact_callback(PgXactCallbackEvent::Abort, || {
            LANE.with(|l| {
                if let Some(lane) = l.borrow_mut().as_mut() {
                    if let Some(start) = lane.at_transaction_start.take() {
                        lane.head = start;
                    }
                    lane.at_subtransaction_start.clear();
                }
            })
        });
        register_xact_callback(PgXactCallbackEvent::Commit, || {
            LANE.with(|l| {
                if let Some(lane) = l.borrow_mut().as_mut() {
                    lane.at_transaction_start = None;
                    lane.at_subtransaction_start.clear();
                }
            })
        });
        register_xact_callback(PgXactCallbackEvent::PrePrepare, || {
            pgrx::error!(
                "a transaction that wrote audit rows cannot be prepared (two-phase commit)"
            );
        });
    }
    // SAFETY: plain read of the transaction state.
    let sub = unsafe { pg_sys::GetCurrentSubTransactionId() };
    if sub > TOP_SUBTRANSACTION && lane.at_subtransaction_start.last().map(|(s, _)| *s) != Some(sub)
    {
        lane.at_subtransaction_start.push((sub, lane.head));
        if !SUBXACT_CALLBACK.with(|c| c.replace(true)) {
            // SAFETY: registered once per backend; the callback only touches LANE.
            unsafe {
                pg_sys::RegisterSubXactCallback(Some(on_subtransaction_end), std::ptr::null_mut())
            };
        }
    }
}

/// A subtransaction that wrote audit rows ended: on abort, its rows are gone, so the head goes
/// back to where it was when it first wrote; on commit, that start point now belongs to the
/// parent (unless the parent wrote first).
#[pg_guard]
unsafe extern "C-unwind" fn on_subtransaction_end(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    parent_subid: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    LANE.with(|l| {
        let mut l = l.borrow_mut();
        let Some(lane) = l.as_mut() else { return };
        let stack = &mut lane.at_subtransaction_start;
        match event {
            pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => {
                // Children have larger ids and ended first; anything at or above my_subid is undone.
                if let Some(i) = stack.iter().position(|(s, _)| *s >= my_subid) {
                    lane.head = stack[i].1;
                    stack.truncate(i);
                }
            }
            pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB => {
                if let Some(i) = stack.iter().position(|(s, _)| *s == my_subid) {
                    let parent_wrote = i > 0 && stack[i - 1].0 == parent_subid;
                    if parent_wrote || parent_subid == TOP_SUBTRANSACTION {
                        stack.remove(i);
                    } else {
                        stack[i].0 = parent_subid;
                    }
                }
            }
            _ => {}
        }
    })
}

/// Appends one row to this backend's lane: the next seq and the row's hash.
pub(crate) fn link(log: pg_sys::Oid, content: &str) -> (i32, i64, Vec<u8>) {
    let lane_id = my_lane();
    let stale = LANE
        .with(|l| !matches!(&*l.borrow(), Some(lane) if lane.log == log && lane.lane == lane_id));
    if stale {
        let head = load_head(lane_id);
        LANE.with(|l| {
            *l.borrow_mut() = Some(Lane {
                log,
                lane: lane_id,
                head,
                at_transaction_start: None,
                at_subtransaction_start: Vec::new(),
            })
        });
    }
    LANE.with(|l| {
        let mut l = l.borrow_mut();
        let lane = l.as_mut().expect("the lane was just loaded");
        note_write(lane);
        let seq = lane.head.seq + 1;
        let hash = link_hash(&lane.head.hash, lane_id, seq, content);
        lane.head = Head { seq, hash };
        (lane_id, seq, hash.to_vec())
    })
}

pub(crate) fn outer_role_name() -> String {
    // SAFETY: GetOuterUserId is a valid role while a statement runs; noerr=true turns a
    // (concurrently dropped) role into NULL instead of raising.
    unsafe {
        let name = pg_sys::GetUserNameFromId(pg_sys::GetOuterUserId(), true);
        if name.is_null() {
            return String::new();
        }
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

#[pgrx::pg_schema]
pub mod fluxbase {
    use pgrx::prelude::*;
    use pgrx::{name, pg_sys};

    /// Internal: chain one row onto this backend's lane of `log` (audit.log's oid): its lane,
    /// seq and hash. Called once per row, in order, by the audit triggers.
    #[pg_extern(volatile, parallel_unsafe)]
    fn audit_link(
        log: pg_sys::Oid,
        content: &str,
    ) -> TableIterator<'static, (name!(lane, i32), name!(seq, i64), name!(hash, Vec<u8>))> {
        TableIterator::once(super::link(log, content))
    }

    /// Internal: the hash a row must carry, given the previous hash of its lane (verify).
    #[pg_extern(immutable, parallel_safe)]
    fn audit_hash(prev: &[u8], lane: i32, seq: i64, content: &str) -> Vec<u8> {
        super::link_hash(prev, lane, seq, content).to_vec()
    }

    /// Internal: the role the current statement runs as, beneath any SECURITY DEFINER.
    #[pg_extern(stable, parallel_restricted)]
    fn audit_outer_role() -> String {
        super::outer_role_name()
    }

    /// Internal: whether that role is a superuser.
    #[pg_extern(stable, parallel_restricted)]
    fn audit_caller_is_superuser() -> bool {
        // SAFETY: a catalog lookup on a valid role oid.
        unsafe { pg_sys::superuser_arg(pg_sys::GetOuterUserId()) }
    }
}
