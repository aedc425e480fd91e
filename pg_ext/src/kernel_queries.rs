//! The query `auth.authenticate` runs on every request, prepared once per backend.
//!
//! Why not call SQL functions: a SECURITY DEFINER SQL function is planned anew on every call
//! (~50 µs here), which is most of a request. Instead one query (`sql/kernel/token_check.sql`)
//! is prepared once with `SPI_keepplan` and run as the bootstrap superuser, so the server's
//! login role needs no privilege on the auth tables. They name every table and operator
//! with its schema, so the caller's `search_path` cannot redirect them.
use crate::errors::raise;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{pg_sys, PgOid};
use std::cell::OnceCell;

const TOKEN_CHECK: &str = include_str!("../../sql/kernel/token_check.sql");

thread_local! {
    static TOKEN_CHECK_PLAN: OnceCell<OwnedPreparedStatement> = const { OnceCell::new() };
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
fn as_owner<R>(f: impl FnOnce() -> R) -> R {
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

fn prepared<'a>(
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
pub fn check_token(
    jti: &str,
    session_id: Option<pgrx::Uuid>,
    user_id: Option<pgrx::Uuid>,
) -> TokenCheck {
    let types = [
        PgOid::BuiltIn(PgBuiltInOids::TEXTOID),
        PgOid::BuiltIn(PgBuiltInOids::UUIDOID),
        PgOid::BuiltIn(PgBuiltInOids::UUIDOID),
    ];
    let row = as_owner(|| {
        Spi::connect(|client| {
            TOKEN_CHECK_PLAN.with(|cell| {
                let plan = prepared(&client, cell, TOKEN_CHECK, &types);
                client
                    .select(
                        plan,
                        Some(1),
                        &[jti.into(), session_id.into(), user_id.into()],
                    )?
                    .first()
                    .get_three::<String, String, bool>()
            })
        })
    });
    match row {
        Ok((Some(issuer), Some(audience), active)) => TokenCheck {
            issuer,
            audience,
            active: active == Some(true),
        },
        _ => raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "the settings jwt_issuer and jwt_audience are missing from auth.settings",
        ),
    }
}
