//! The role guard: no statement runs as an API role that `auth.authenticate` did not pick.
//!
//! Why: the server's login role must be a member of `anon`, `authenticated` and
//! `service_role` for `auth.authenticate` to `SET LOCAL ROLE`, and PostgreSQL would then let
//! any SQL on that connection switch by hand too (`SET ROLE service_role`,
//! `set_config('role', …)`, a function's `SET role` clause) and so bypass RLS. No setting
//! can forbid that, so two executor hooks check, before every statement (nested ones in
//! functions included), that the current outer role is either not an API role or exactly
//! the one `auth.authenticate` verified in this transaction, and that a transaction that has
//! authenticated does not drop back to the login role. Superuser sessions are exempt.
use crate::claims;
use crate::errors::raise;
use crate::role_switch::{role_oid, API_ROLES};
use pgrx::pg_sys;
use pgrx::prelude::*;

static mut PREV_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREV_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

pub fn install() {
    unsafe {
        PREV_EXECUTOR_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREV_PROCESS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

/// Raises 42501 when the current role is an API role that was not verified.
fn check_current_role() {
    let session_user = unsafe { pg_sys::GetSessionUserId() };
    if unsafe { pg_sys::superuser_arg(session_user) } {
        return;
    }
    let outer = unsafe { pg_sys::GetOuterUserId() };
    if claims::is_verified_role(outer) {
        return;
    }
    if outer == session_user {
        // `RESET ROLE` after authenticating would hand injected SQL the server role's own
        // grants; once a request has authenticated, it stays the role it was given.
        if claims::authenticated_in_this_transaction() {
            raise(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                "the role cannot be reset after auth.authenticate() in the same transaction",
            );
        }
        return;
    }
    if let Some(name) = API_ROLES.iter().find(|r| role_oid(r) == outer) {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("the role \"{name}\" can only be assumed through auth.authenticate()"),
        );
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn executor_start(query_desc: *mut pg_sys::QueryDesc, eflags: i32) {
    check_current_role();
    match PREV_EXECUTOR_START {
        Some(prev) => prev(query_desc, eflags),
        None => pg_sys::standard_ExecutorStart(query_desc, eflags),
    }
}

/// Transaction control, `SET`/`RESET` and `DISCARD` pass unchecked: they cannot read or write
/// data, and they are how a connection with a forged role gets back to a clean state.
unsafe fn is_harmless_utility(stmt: *mut pg_sys::PlannedStmt) -> bool {
    let node = (*stmt).utilityStmt;
    !node.is_null()
        && matches!(
            (*node).type_,
            pg_sys::NodeTag::T_TransactionStmt
                | pg_sys::NodeTag::T_VariableSetStmt
                | pg_sys::NodeTag::T_DiscardStmt
        )
}

#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    if !is_harmless_utility(pstmt) {
        check_current_role();
    }
    match PREV_PROCESS_UTILITY {
        Some(prev) => prev(
            pstmt,
            query_string,
            read_only_tree,
            context,
            params,
            query_env,
            dest,
            qc,
        ),
        None => pg_sys::standard_ProcessUtility(
            pstmt,
            query_string,
            read_only_tree,
            context,
            params,
            query_env,
            dest,
            qc,
        ),
    }
}
