//! `auth.authenticate(token)`: the first statement of every API transaction.
use crate::errors::raise;
use crate::{claims, jwt, role_switch};
use pgrx::prelude::*;
use serde_json::{json, Value};

/// The issuer and audience a token must name, from `auth.settings`. Read through the
/// SECURITY DEFINER `auth.setting()`, so the caller needs no access to the table.
fn expected_issuer_and_audience() -> (String, String) {
    let row = Spi::get_two::<String, String>(
        "SELECT auth.setting('jwt_issuer'), auth.setting('jwt_audience')",
    );
    match row {
        Ok((Some(iss), Some(aud))) => (iss, aud),
        _ => raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "the settings jwt_issuer and jwt_audience are missing from auth.settings",
        ),
    }
}

/// Verifies `token` (NULL or empty means anonymous), or raises SQLSTATE 28000 with the reason.
fn verified_claims(token: Option<&str>) -> Value {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return json!({ "role": "anon" });
    };
    let (issuer, audience) = expected_issuer_and_audience();
    match jwt::verify(token, &issuer, &audience) {
        Ok(claims) => claims,
        Err(e) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            format!("invalid token: {}", e.message()),
        ),
    }
}

pub fn authenticate(token: Option<&str>) {
    let claims = verified_claims(token);
    let app_role = claims.get("role").and_then(Value::as_str).unwrap_or("anon");
    let role_oid = role_switch::switch_to(role_switch::database_role_for(app_role));
    // PostgREST-compatible, for policies written for it; the auth.* functions do not trust it.
    role_switch::set_local("request.jwt.claims", &claims.to_string());
    claims::publish(role_oid, claims);
}

#[pgrx::pg_schema]
pub mod auth {
    use pgrx::prelude::*;

    /// Verifies the bearer token and switches this transaction to its role.
    #[pg_extern(volatile, parallel_unsafe)]
    fn authenticate(token: Option<&str>) {
        super::authenticate(token)
    }
}
