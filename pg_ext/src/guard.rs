//! The role guard: nothing runs as an API role that `auth.authenticate` did not pick.
//!
//! Why: the server's login role must be a member of `anon`, `authenticated` and
//! `service_role` for `auth.authenticate` to `SET LOCAL ROLE`, and PostgreSQL would then let
//! any SQL on that connection switch by hand too (`SET ROLE service_role`,
//! `set_config('role', …)`, a function's `SET role` clause) and so bypass RLS. No setting
//! can forbid that, so the guard works at two depths:
//! 1. It wraps the check hook of the built-in `role` setting: outside `auth.authenticate`, a
//!    switch to an API role is refused, and once a transaction has authenticated, any other
//!    role change (`RESET ROLE`, `SET ROLE fluxbase_authenticator`, …) is refused too.
//! 2. Defence in depth, two executor hooks check before every statement (nested ones in
//!    functions included) that the current role is the verified one, or, before any
//!    authentication, not an API role — neither the session's role nor the one a
//!    SECURITY DEFINER function runs as.
//! 3. Membership also lets the login role give objects to the API roles (`ALTER ... OWNER
//!    TO service_role`, `CREATE SCHEMA ... AUTHORIZATION`, `REASSIGN OWNED ... TO`): a view
//!    or a SECURITY DEFINER function it handed to `service_role` would run as that role
//!    with no token at all (found by a red-team review). So no session but a superuser's
//!    can make an API role the owner of anything ([`gives_to_api_role`]).
//!
//! Superuser sessions are exempt.
use crate::claims;
use crate::errors::raise;
use crate::role_switch::{role_oid, API_ROLES};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgList;
use std::cell::Cell;
use std::ffi::CStr;

static mut PREV_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;
static mut ORIGINAL_ROLE_CHECK: pg_sys::GucStringCheckHook = None;

thread_local! {
    /// True only while `auth.authenticate` itself sets the role.
    static SWITCHING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (which sets the `role` setting) as `auth.authenticate`'s own, permitted switch.
pub fn as_authenticate_switch(f: impl FnOnce() + std::panic::UnwindSafe) {
    SWITCHING.with(|s| s.set(true));
    PgTryBuilder::new(f)
        .finally(|| SWITCHING.with(|s| s.set(false)))
        .execute();
}
static mut PREV_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

pub fn install() {
    unsafe {
        install_role_check();
        PREV_EXECUTOR_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREV_PROCESS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

/// Why switching to `target` must be refused now, if it must (see the module comment).
fn refusal(target: pg_sys::Oid) -> Option<String> {
    if claims::authenticated_in_this_transaction() {
        // `RESET ROLE` or any other switch after authenticating would hand injected SQL
        // another role's grants; a request stays the role it was given.
        return (!claims::is_verified_role(target)).then(|| {
            "the role cannot change after auth.authenticate() in the same transaction".to_owned()
        });
    }
    // Fast path for the common case (every statement before a request authenticates).
    if target == unsafe { pg_sys::GetSessionUserId() } {
        return None;
    }
    api_role_name(target)
        .map(|name| format!("the role \"{name}\" can only be assumed through auth.authenticate()"))
}

fn session_is_superuser() -> bool {
    unsafe { pg_sys::superuser_arg(pg_sys::GetSessionUserId()) }
}

/// The name of the API role `role` is, if it is one.
fn api_role_name(role: pg_sys::Oid) -> Option<&'static str> {
    API_ROLES.iter().copied().find(|r| role_oid(r) == role)
}

/// Raises 42501 when the current role is not one the guard allows.
fn check_current_role() {
    if session_is_superuser() {
        return;
    }
    let outer = unsafe { pg_sys::GetOuterUserId() };
    if let Some(why) = refusal(outer) {
        raise(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, why);
    }
    // Inside a SECURITY DEFINER function the current role is its owner's. After
    // authenticating that is the function author's design; before, an API role here means
    // code running with that role's rights and no token.
    let current = unsafe { pg_sys::GetUserId() };
    if current != outer && !claims::authenticated_in_this_transaction() {
        if let Some(name) = api_role_name(current) {
            raise(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!("code owned by the role \"{name}\" cannot run before auth.authenticate()"),
            );
        }
    }
}

/// The API role `stmt` would make the owner of something, if any (see the module notes,
/// depth 3): `ALTER ... OWNER TO`, `CREATE SCHEMA ... AUTHORIZATION`, `REASSIGN OWNED BY
/// ... TO`; and `ALTER DEFAULT PRIVILEGES FOR ROLE <api role>`, which decides who may use
/// what that role creates later (membership is all PostgreSQL asks for it; found by a review).
unsafe fn gives_to_api_role(stmt: *mut pg_sys::PlannedStmt) -> Option<&'static str> {
    let node = (*stmt).utilityStmt;
    if node.is_null() {
        return None;
    }
    let owner = |spec: *mut pg_sys::RoleSpec| {
        if spec.is_null() {
            return None;
        }
        api_role_name(pg_sys::get_rolespec_oid(spec, true))
    };
    match (*node).type_ {
        pg_sys::NodeTag::T_AlterOwnerStmt => {
            owner((*node.cast::<pg_sys::AlterOwnerStmt>()).newowner)
        }
        pg_sys::NodeTag::T_CreateSchemaStmt => {
            owner((*node.cast::<pg_sys::CreateSchemaStmt>()).authrole)
        }
        pg_sys::NodeTag::T_ReassignOwnedStmt => {
            owner((*node.cast::<pg_sys::ReassignOwnedStmt>()).newrole)
        }
        pg_sys::NodeTag::T_AlterDefaultPrivilegesStmt => {
            let options = (*node.cast::<pg_sys::AlterDefaultPrivilegesStmt>()).options;
            PgList::<pg_sys::DefElem>::from_pg(options)
                .iter_ptr()
                .filter(|option| {
                    !(**option).defname.is_null() && CStr::from_ptr((**option).defname) == c"roles"
                })
                .find_map(|option| {
                    PgList::<pg_sys::RoleSpec>::from_pg((*option).arg.cast())
                        .iter_ptr()
                        .find_map(owner)
                })
        }
        pg_sys::NodeTag::T_AlterTableStmt => {
            let cmds = (*node.cast::<pg_sys::AlterTableStmt>()).cmds;
            PgList::<pg_sys::AlterTableCmd>::from_pg(cmds)
                .iter_ptr()
                .filter(|cmd| (**cmd).subtype == pg_sys::AlterTableType::AT_ChangeOwner)
                .find_map(|cmd| owner((*cmd).newowner))
        }
        _ => None,
    }
}

/// Replaces the check hook of the built-in `role` setting with [`check_role`], which calls
/// the original first.
unsafe fn install_role_check() {
    let vars = pg_sys::get_guc_variables();
    for i in 0..pg_sys::GetNumConfigOptions() as usize {
        let var = *vars.add(i);
        if (*var).vartype == pg_sys::config_type::PGC_STRING
            && CStr::from_ptr((*var).name) == c"role"
        {
            let string_var = var.cast::<pg_sys::config_string>();
            ORIGINAL_ROLE_CHECK = (*string_var).check_hook;
            (*string_var).check_hook = Some(check_role);
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_role(
    newval: *mut *mut std::ffi::c_char,
    extra: *mut *mut std::ffi::c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    if let Some(original) = ORIGINAL_ROLE_CHECK {
        if !original(newval, extra, source) {
            return false;
        }
    }
    if SWITCHING.with(Cell::get)
        || !pg_sys::IsTransactionState()
        || session_is_superuser()
        || (*newval).is_null()
    {
        return true;
    }
    let name = CStr::from_ptr(*newval).to_string_lossy();
    let target = if name == "none" {
        pg_sys::GetSessionUserId()
    } else {
        role_oid(&name)
    };
    match refusal(target) {
        None => true,
        Some(why) => {
            pg_sys::GUC_check_errcode(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE as i32);
            let message = std::ffi::CString::new(why).unwrap_or_default();
            pg_sys::GUC_check_errmsg_string = pg_sys::pstrdup(message.as_ptr());
            false
        }
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

/// Why `stmt` may not run in a transaction that authenticated, if it may not:
/// - `PREPARE`, `EXECUTE`, `DEALLOCATE`: SQL-level prepared statements share one namespace
///   with the protocol-level ones the server caches per connection, so a request could swap
///   the server's own `auth.authenticate` statement for its own (and read the next user's
///   token), `DEALLOCATE ALL` the connection's statements, or leave statements for the next
///   request; no request needs them (found by the red-team tests in `rpc_attacks.rs`).
/// - `RESET ROLE` (and a `SET ... TO DEFAULT` form, should the grammar ever allow it for
///   `role`): PostgreSQL applies a reset value without calling the
///   setting's check hook, so the role guard's first depth never sees them.
unsafe fn refused_after_authenticating(stmt: *mut pg_sys::PlannedStmt) -> Option<&'static str> {
    let node = (*stmt).utilityStmt;
    if node.is_null() {
        return None;
    }
    match (*node).type_ {
        pg_sys::NodeTag::T_PrepareStmt
        | pg_sys::NodeTag::T_ExecuteStmt
        | pg_sys::NodeTag::T_DeallocateStmt => {
            Some("prepared statements cannot be created, run or removed by an API request")
        }
        pg_sys::NodeTag::T_VariableSetStmt => {
            let set = node.cast::<pg_sys::VariableSetStmt>();
            let resets = matches!(
                (*set).kind,
                pg_sys::VariableSetKind::VAR_RESET | pg_sys::VariableSetKind::VAR_SET_DEFAULT
            );
            let is_role = !(*set).name.is_null() && CStr::from_ptr((*set).name) == c"role";
            (resets && is_role).then_some(
                "the role cannot change after auth.authenticate() in the same transaction",
            )
        }
        _ => None,
    }
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
    if let Some(why) = refused_after_authenticating(pstmt) {
        if claims::authenticated_in_this_transaction() && !session_is_superuser() {
            raise(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, why);
        }
    }
    if let Some(role) = gives_to_api_role(pstmt) {
        if !session_is_superuser() {
            raise(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!("only a superuser can make the role \"{role}\" the owner of an object or set its default privileges"),
            );
        }
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
