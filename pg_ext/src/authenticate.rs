//! `auth.authenticate(token)`: the first statement of every API transaction.
use crate::errors::raise;
use crate::{claims, jwt, kernel_queries, role_switch, session_reset, token_cache};
use pgrx::prelude::*;
use serde_json::{json, Value};

fn refuse(reason: jwt::TokenError) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
        format!("invalid token: {}", reason.message()),
    )
}

/// The string claim `name`, which must be a UUID when present.
fn uuid_claim(claims: &Value, name: &str) -> Option<pgrx::Uuid> {
    let value = claims.get(name)?.as_str();
    match value.map(uuid::Uuid::parse_str) {
        Some(Ok(id)) => Some(pgrx::Uuid::from_bytes(*id.as_bytes())),
        _ => refuse(jwt::TokenError::MissingClaim(name.into())),
    }
}

/// Verifies `token` (NULL or empty means anonymous), or raises SQLSTATE 28000 with the reason:
/// signature, algorithm, key and times in Rust; then issuer, audience and revocation (the
/// token was signed out, its session revoked or expired, its user deleted or banned) from
/// one database round.
fn verified_claims(token: Option<&str>) -> token_cache::Verified {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        let claims = json!({ "role": "anon" });
        return token_cache::Verified {
            json: claims.to_string(),
            claims,
        };
    };
    let verified = token_cache::verify(token).unwrap_or_else(|e| refuse(e));
    let claims = &verified.claims;
    let jti = claims["jti"].as_str().unwrap_or_default();
    let check = kernel_queries::check_token(
        jti,
        uuid_claim(claims, "session_id"),
        uuid_claim(claims, "sub"),
        claims.get("rt").and_then(Value::as_i64),
    );
    jwt::check_issuer_and_audience(claims, &check.issuer, &check.audience)
        .unwrap_or_else(|e| refuse(e));
    if !check.active {
        refuse(jwt::TokenError::Revoked);
    }
    verified
}

pub fn authenticate(token: Option<&str>) {
    // First, so that even a refused token's ROLLBACK leaves a clean session behind.
    session_reset::reset_when_transaction_ends();
    let token_cache::Verified { claims, json } = verified_claims(token);
    let app_role = claims.get("role").and_then(Value::as_str).unwrap_or("anon");
    let enrollment_only = claims
        .get("mfa_enrollment_required")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let role_oid =
        role_switch::switch_to(role_switch::database_role_for(app_role, enrollment_only));
    // PostgREST-compatible, for policies written for it; the auth.* functions do not trust it.
    // An enrolment-only session shows policies nothing but the role it runs as (see
    // claims::with_visible).
    if enrollment_only {
        role_switch::set_local(
            "request.jwt.claims",
            r#"{"role": "anon", "mfa_enrollment_required": true}"#,
        );
    } else {
        role_switch::set_local("request.jwt.claims", &json);
    }
    claims::publish(role_oid, claims, enrollment_only);
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
