//! The verified claims of the current transaction, and the `auth.*` functions that read them.
//!
//! Why not read `request.jwt.claims` like PostgREST does: any SQL can `set_config()` that
//! setting, so trusting it lets an injected statement impersonate anyone. The claims that
//! `auth.authenticate()` verified are kept here, in backend memory no SQL can write, tagged
//! with the transaction and the role they belong to. They count only while both still hold:
//! a new transaction, or a role changed by any other means, makes every `auth.*` reader NULL.
use pgrx::pg_sys;
use serde_json::Value;
use std::cell::RefCell;

pub struct Verified {
    /// The local transaction id this was verified in.
    lxid: u32,
    /// The database role `auth.authenticate` switched to.
    role_oid: pg_sys::Oid,
    pub claims: Value,
    /// An admin's session that may only enrol 2FA: it runs as `anon`, and the readers say so
    /// (see [`with_visible`]).
    enrollment_only: bool,
}

thread_local! {
    static CURRENT: RefCell<Option<Verified>> = const { RefCell::new(None) };
}

fn current_lxid() -> u32 {
    // SAFETY: MyProc is set for every backend that runs SQL.
    unsafe { (*pg_sys::MyProc).lxid }
}

/// Records the claims just verified for this transaction and role.
pub fn publish(role_oid: pg_sys::Oid, claims: Value, enrollment_only: bool) {
    let v = Verified {
        lxid: current_lxid(),
        role_oid,
        claims,
        enrollment_only,
    };
    CURRENT.with(|c| *c.borrow_mut() = Some(v));
}

/// Applies `f` to the current claims (and whether the session is enrolment-only) when they
/// are still valid for this transaction and role.
fn with_verified<R>(f: impl FnOnce(&Value, bool) -> Option<R>) -> Option<R> {
    let lxid = current_lxid();
    // GetOuterUserId is the role chosen by SET ROLE, unaffected by SECURITY DEFINER, so
    // auth.uid() inside a definer function still sees the caller.
    let outer = unsafe { pg_sys::GetOuterUserId() };
    CURRENT.with(|c| match &*c.borrow() {
        Some(v) if v.lxid == lxid && v.role_oid == outer => f(&v.claims, v.enrollment_only),
        _ => None,
    })
}

/// Applies `f` to the current claims when they are still valid for this transaction and role.
pub fn with_current<R>(f: impl FnOnce(&Value) -> Option<R>) -> Option<R> {
    with_verified(|claims, _| f(claims))
}

/// As [`with_current`], but nothing in an enrolment-only session: it runs as `anon`, and
/// were its user's id, e-mail or claims visible, every policy that reads `auth.uid()` without
/// a `TO` clause would hand it that user's rows (found by a red-team review). The 2FA
/// enrolment functions read the user through `fluxbase.enrolment_claims()` instead.
fn with_visible<R>(f: impl FnOnce(&Value) -> Option<R>) -> Option<R> {
    with_verified(|claims, enrollment_only| if enrollment_only { None } else { f(claims) })
}

/// Whether `role_oid` is the role `auth.authenticate` switched to in this transaction.
pub fn is_verified_role(role_oid: pg_sys::Oid) -> bool {
    let lxid = current_lxid();
    CURRENT.with(|c| matches!(&*c.borrow(), Some(v) if v.lxid == lxid && v.role_oid == role_oid))
}

/// Whether `auth.authenticate` ran in this transaction (whatever role is current now).
pub fn authenticated_in_this_transaction() -> bool {
    let lxid = current_lxid();
    CURRENT.with(|c| matches!(&*c.borrow(), Some(v) if v.lxid == lxid))
}

fn claim_str(name: &str) -> Option<String> {
    with_current(|c| c.get(name).and_then(Value::as_str).map(str::to_owned))
}

/// A claim readers may see (not in an enrolment-only session).
fn visible_claim_str(name: &str) -> Option<String> {
    with_visible(|c| c.get(name).and_then(Value::as_str).map(str::to_owned))
}

fn claim_uuid(name: &str) -> Option<pgrx::Uuid> {
    uuid_of(claim_str(name)?)
}

fn uuid_of(text: String) -> Option<pgrx::Uuid> {
    let parsed = uuid::Uuid::parse_str(&text).ok()?;
    Some(pgrx::Uuid::from_bytes(*parsed.as_bytes()))
}

/// `auth.uid()`: the verified user id (`sub`), for Rust callers (the audit trigger). NULL
/// in an enrolment-only session.
pub fn verified_uid() -> Option<pgrx::Uuid> {
    uuid_of(visible_claim_str("sub")?)
}

/// `auth.role()`: the verified application role claim; `anon` in an enrolment-only session
/// (the role it runs as: its `admin` claim must open nothing).
pub fn verified_role() -> Option<String> {
    with_verified(|c, enrollment_only| {
        if enrollment_only {
            Some("anon".to_owned())
        } else {
            c.get("role").and_then(Value::as_str).map(str::to_owned)
        }
    })
}

/// `auth.session_id()`: the verified session id.
pub fn verified_session_id() -> Option<pgrx::Uuid> {
    claim_uuid("session_id")
}

#[pgrx::pg_schema]
pub mod auth {
    use pgrx::prelude::*;
    use pgrx::{JsonB, Uuid};

    // All readers are PARALLEL RESTRICTED: the claims live in the leader backend's memory,
    // which a parallel worker does not have.

    /// The verified user id (`sub`) of this request, or NULL.
    #[pg_extern(stable, parallel_restricted)]
    fn uid() -> Option<Uuid> {
        super::verified_uid()
    }

    /// The application role claim of this request (`anon` when unauthenticated).
    #[pg_extern(stable, parallel_restricted)]
    fn role() -> Option<String> {
        super::verified_role()
    }

    /// The verified e-mail claim of this request, or NULL (also in an enrolment-only session).
    #[pg_extern(stable, parallel_restricted)]
    fn email() -> Option<String> {
        super::visible_claim_str("email")
    }

    /// All verified claims of this request as jsonb, or NULL (also in an enrolment-only session).
    #[pg_extern(stable, parallel_restricted)]
    fn jwt() -> Option<JsonB> {
        super::with_visible(|c| Some(JsonB(c.clone())))
    }

    /// The session id claim of this request, or NULL.
    #[pg_extern(stable, parallel_restricted)]
    fn session_id() -> Option<Uuid> {
        super::verified_session_id()
    }

    /// The authenticator assurance level of this request (`aal1`, `aal2`), or NULL.
    #[pg_extern(stable, parallel_restricted)]
    fn aal() -> Option<String> {
        super::claim_str("aal")
    }
}

#[pgrx::pg_schema]
pub mod fluxbase {
    use pgrx::prelude::*;
    use pgrx::JsonB;

    /// Internal (no API role may call it; the 2FA enrolment functions do): the verified claims
    /// of an enrolment-only session, whose `auth.uid()` is NULL; NULL in any other session.
    #[pg_extern(stable, parallel_restricted)]
    fn enrolment_claims() -> Option<JsonB> {
        super::with_verified(|c, enrollment_only| enrollment_only.then(|| JsonB(c.clone())))
    }
}
