//! The query `auth.authenticate` runs on every request, prepared once per backend.
//!
//! Why not call SQL functions: a SECURITY DEFINER SQL function is planned anew on every call
//! (~50 µs here), which is most of a request. Instead one query (`sql/kernel/token_check.sql`)
//! is prepared once with `SPI_keepplan` and run as the bootstrap superuser, so the server's
//! login role needs no privilege on the auth tables. They name every table and operator
//! with its schema, so the caller's `search_path` cannot redirect them.
use crate::errors::raise;
use crate::revocation;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{pg_sys, PgOid};
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;

const TOKEN_CHECK: &str = include_str!("../../sql/kernel/token_check.sql");

thread_local! {
    static TOKEN_CHECK_PLAN: OnceCell<OwnedPreparedStatement> = const { OnceCell::new() };
    /// Positive answers, reusable while the revocation epoch is unchanged (see `revocation`).
    static REMEMBERED: RefCell<HashMap<CheckKey, Remembered>> = RefCell::new(HashMap::new());
}

/// At most this many answers are remembered; past it they are forgotten all at once.
const CAPACITY: usize = 512;

/// jti, session, user, and the oid of `auth.sessions` (so answers about the tables of a
/// dropped and re-created extension are never reused).
type CheckKey = (String, Option<[u8; 16]>, Option<[u8; 16]>, pg_sys::Oid);

struct Remembered {
    epoch: u64,
    issuer: String,
    audience: String,
    session_expires: Option<i64>,
}

/// When an answer may be remembered or reused:
/// - READ COMMITTED only: the lookup runs on a snapshot taken after the epoch was read (see
///   [`look_up`]), which under REPEATABLE READ would not be fresh;
/// - not once the transaction has written anything (it has an xid then): its own uncommitted
///   changes, or ones a rolled-back savepoint undid, must not be remembered or trusted;
/// - never on a standby, which replays changes without running triggers.
fn may_remember() -> bool {
    unsafe {
        pg_sys::XactIsoLevel == pg_sys::XACT_READ_COMMITTED as i32
            && pg_sys::GetTopTransactionIdIfAny() == pg_sys::InvalidTransactionId
            && !pg_sys::RecoveryInProgress()
    }
}

/// The oid of `auth.sessions` now (InvalidOid if missing).
fn sessions_table_oid() -> pg_sys::Oid {
    unsafe {
        let namespace = pg_sys::get_namespace_oid(c"auth".as_ptr(), true);
        if namespace == pg_sys::InvalidOid {
            return pg_sys::InvalidOid;
        }
        pg_sys::get_relname_relid(c"sessions".as_ptr(), namespace)
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What the database says about a token (see `sql/kernel/token_check.sql`).
pub struct TokenCheck {
    pub issuer: String,
    pub audience: String,
    pub active: bool,
}

/// Runs `f` with the current user switched to the bootstrap superuser, in a security-restricted
/// context (no SET, no temp objects). An error aborts the (sub)transaction, which restores the
/// user by itself; on success it is restored here.
pub(crate) fn as_owner<R>(f: impl FnOnce() -> R) -> R {
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context = 0;
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID),
            saved_context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
    }
    let result = f();
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    result
}

pub(crate) fn prepared<'a>(
    client: &pgrx::spi::SpiClient<'_>,
    cell: &'a OnceCell<OwnedPreparedStatement>,
    query: &str,
    args: &[PgOid],
) -> &'a OwnedPreparedStatement {
    cell.get_or_init(|| {
        client
            .prepare(query, args)
            .unwrap_or_else(|e| {
                raise(
                    PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                    format!("cannot prepare a kernel query: {e}"),
                )
            })
            .keep()
    })
}

/// The expected issuer and audience, and whether the token is still usable: jti not
/// blacklisted, and for a user token its session live and its user present and unbanned.
/// A positive answer is reused while the revocation epoch is unchanged and the session has
/// not run out (see `revocation`).
pub fn check_token(
    jti: &str,
    session_id: Option<pgrx::Uuid>,
    user_id: Option<pgrx::Uuid>,
    refresh_id: Option<i64>,
) -> TokenCheck {
    // The epoch is read before the lookup's snapshot is taken: a change committed in between
    // is then either seen by the lookup or bumps the epoch past what is remembered.
    let epoch = revocation::current();
    let remember = may_remember();
    let key: CheckKey = (
        jti.to_owned(),
        session_id.map(|u| *u.as_bytes()),
        user_id.map(|u| *u.as_bytes()),
        sessions_table_oid(),
    );
    if remember {
        let hit = REMEMBERED.with(|r| {
            r.borrow().get(&key).and_then(|m| {
                let live = m.epoch == epoch && m.session_expires.is_none_or(|end| now_secs() < end);
                live.then(|| TokenCheck {
                    issuer: m.issuer.clone(),
                    audience: m.audience.clone(),
                    active: true,
                })
            })
        });
        if let Some(check) = hit {
            return check;
        }
    }
    let (check, session_expires) = look_up(jti, session_id, user_id, refresh_id);
    if remember && check.active {
        REMEMBERED.with(|r| {
            let mut r = r.borrow_mut();
            if r.len() >= CAPACITY {
                r.clear();
            }
            let issuer = check.issuer.clone();
            let audience = check.audience.clone();
            r.insert(
                key,
                Remembered {
                    epoch,
                    issuer,
                    audience,
                    session_expires,
                },
            );
        });
    }
    check
}

/// The database lookup itself, and the session's end (epoch seconds) when there is a session.
/// It runs on a fresh snapshot: SPI would otherwise reuse the calling statement's, taken
/// before the epoch was read, and could remember an answer that a revocation committed in
/// between has already made wrong.
fn look_up(
    jti: &str,
    session_id: Option<pgrx::Uuid>,
    user_id: Option<pgrx::Uuid>,
    refresh_id: Option<i64>,
) -> (TokenCheck, Option<i64>) {
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
    let result = look_up_in_active_snapshot(jti, session_id, user_id, refresh_id);
    unsafe { pg_sys::PopActiveSnapshot() };
    result
}

fn look_up_in_active_snapshot(
    jti: &str,
    session_id: Option<pgrx::Uuid>,
    user_id: Option<pgrx::Uuid>,
    refresh_id: Option<i64>,
) -> (TokenCheck, Option<i64>) {
    let types = [
        PgOid::BuiltIn(PgBuiltInOids::TEXTOID),
        PgOid::BuiltIn(PgBuiltInOids::UUIDOID),
        PgOid::BuiltIn(PgBuiltInOids::UUIDOID),
        PgOid::BuiltIn(PgBuiltInOids::INT8OID),
    ];
    let row = as_owner(|| {
        Spi::connect(|client| {
            TOKEN_CHECK_PLAN.with(|cell| {
                let plan = prepared(client, cell, TOKEN_CHECK, &types);
                let table = client.select(
                    plan,
                    Some(1),
                    &[
                        jti.into(),
                        session_id.into(),
                        user_id.into(),
                        refresh_id.into(),
                    ],
                )?;
                let row = table.first();
                Ok::<_, pgrx::spi::Error>((
                    row.get::<String>(1)?,
                    row.get::<String>(2)?,
                    row.get::<bool>(3)?,
                    row.get::<i64>(4)?,
                ))
            })
        })
    });
    match row {
        Ok((Some(issuer), Some(audience), active, session_expires)) => (
            TokenCheck {
                issuer,
                audience,
                active: active == Some(true),
            },
            session_expires,
        ),
        _ => raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "the settings jwt_issuer and jwt_audience are missing from auth.settings",
        ),
    }
}
