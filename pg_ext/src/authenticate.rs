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

/// The string claim `name`, which must be a UUID when present.
fn uuid_claim(claims: &Value, name: &str) -> Option<String> {
    let value = claims.get(name)?.as_str();
    match value.map(uuid::Uuid::parse_str) {
        Some(Ok(id)) => Some(id.to_string()),
        _ => raise(
            PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            format!("invalid token: {}", jwt::TokenError::MissingClaim(name.into()).message()),
        ),
    }
}

/// Refuses a verified token that was signed out, whose session was revoked or expired, or
/// whose user was deleted or banned (auth.token_is_active).
fn ensure_still_active(claims: &Value) {
    if claims.get("jti").is_none() {
        return; // the anonymous claims of a request without a token
    }
    let jti = claims["jti"].as_str().map(str::to_owned);
    let session_id = uuid_claim(claims, "session_id");
    let user_id = uuid_claim(claims, "sub");
    let active = Spi::get_one_with_args::<bool>(
        "SELECT auth.token_is_active($1, $2::uuid, $3::uuid)",
        &[jti.into(), session_id.into(), user_id.into()],
    );
    if !matches!(active, Ok(Some(true))) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            format!("invalid token: {}", jwt::TokenError::Revoked.message()),
        );
    }
}

pub fn authenticate(token: Option<&str>) {
    let claims = verified_claims(token);
    ensure_still_active(&claims);
    let app_role = claims.get("role").and_then(Value::as_str).unwrap_or("anon");
    let enrollment_only = claims.get("mfa_enrollment_required").and_then(Value::as_bool).unwrap_or(false);
    let role_oid = role_switch::switch_to(role_switch::database_role_for(app_role, enrollment_only));
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
