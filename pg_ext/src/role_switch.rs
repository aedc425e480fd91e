//! Switching the current transaction to one of the API roles, and publishing settings that
//! last until the transaction ends.
use crate::errors::raise;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CString;

/// The three roles a request can run as. The server's login role is a member of all three
/// (like PostgREST's authenticator) so that `auth.authenticate` can `SET LOCAL ROLE`; the
/// guard in [`crate::guard`] refuses any statement run as one of them that
/// `auth.authenticate` did not switch to.
pub const API_ROLES: [&str; 3] = ["anon", "authenticated", "service_role"];

/// The database role a token's application `role` claim maps to. The claim itself is kept
/// (it is what `auth.role()` returns); only the three API roles are ever switched to. A token
/// of an enrolment-only session (an admin who must set up 2FA first) runs as `anon`.
pub fn database_role_for(app_role: &str, enrollment_only: bool) -> &'static str {
    if enrollment_only {
        return "anon";
    }
    match app_role {
        "service_role" | "dashboard_admin" => "service_role",
        "" | "anon" => "anon",
        _ => "authenticated",
    }
}

/// The oid of a role, or InvalidOid when it does not exist.
pub fn role_oid(name: &str) -> pg_sys::Oid {
    let name = CString::new(name).expect("role names have no NUL");
    unsafe { pg_sys::get_role_oid(name.as_ptr(), true) }
}

/// `SET LOCAL <name> = <value>`: the value is undone when the transaction ends, so nothing
/// leaks to the next request on a pooled connection.
pub fn set_local(name: &str, value: &str) {
    let name = CString::new(name).expect("setting names have no NUL");
    let Ok(value) = CString::new(value) else {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "a claim contains a NUL character",
        );
    };
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            PgLogLevel::ERROR as i32,
            false,
        );
    }
}

/// Switches the transaction to `role` (one of [`API_ROLES`]) and returns its oid.
pub fn switch_to(role: &'static str) -> pg_sys::Oid {
    debug_assert!(API_ROLES.contains(&role));
    let oid = role_oid(role);
    if oid == pg_sys::InvalidOid {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("the role \"{role}\" is missing; reinstall the fluxbase extension"),
        );
    }
    crate::guard::as_authenticate_switch(|| set_local("role", role));
    oid
}
