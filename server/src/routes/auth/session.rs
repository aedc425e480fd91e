//! Sign-up, sign-in, refresh, sign-out, the current user and the public auth config.
use super::{
    call_json, call_json_audited, call_text, client_ip, json_outcome, record_auth_event, AuditSpec,
};
use crate::db::{with_request_tx, Access};
use crate::error::ApiError;
use crate::extract::{ApiJson, BearerToken, OptionalJson, RawJson};
use crate::observability::RequestContext;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

pub const SIGN_UP_SQL: &str =
    "SELECT auth.sign_up($1::text, $2::text, $3::text::jsonb, $4::text::inet)::text";
pub const SIGN_IN_SQL: &str = "SELECT auth.sign_in($1::text, $2::text, $3::text::inet)::text";
pub const REFRESH_SQL: &str = "SELECT auth.refresh($1::text, $2::text::inet)::text";
pub const SIGN_OUT_SQL: &str = "SELECT auth.sign_out(coalesce($1::text, 'local'))";
pub const ME_SQL: &str = "SELECT auth.me()::text";
pub const UPDATE_USER_SQL: &str = "SELECT auth.update_user($1::text::jsonb)::text";
pub const PUBLIC_CONFIG_SQL: &str = "SELECT auth.public_config()::text";

/// Missing fields are passed on as NULL so the SQL function gives its own precise message
/// (`a valid email address is required`); unknown fields are refused (400).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignUpBody {
    pub email: Option<String>,
    pub password: Option<String>,
    pub user_metadata: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInBody {
    pub email: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    pub refresh_token: Option<String>,
}

/// `scope`: `local` (default: this session), `global` (every session of the user) or
/// `others` (every other session). The function checks the value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignOutParams {
    pub scope: Option<String>,
}

/// `POST /auth/signup` → 200 with the token response (200 rather than 201 so sign-up and
/// sign-in answer alike, as Supabase's GoTrue does).
pub async fn sign_up(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<SignUpBody>,
) -> Result<Response, ApiError> {
    let metadata = body.user_metadata.as_ref().map(Value::to_string);
    let ip = client_ip(&ctx);
    call_json_audited(
        &state,
        &ctx,
        Access::ReadWrite,
        None,
        SIGN_UP_SQL,
        &[&body.email, &body.password, &metadata, &ip],
        AuditSpec {
            event: "auth.signup",
            email: body.email.as_deref(),
            ..AuditSpec::default()
        },
    )
    .await
}

/// `POST /auth/signin` (alias `/auth/login`) → 200 with the token response, a 2FA challenge
/// `{requires_2fa, mfa_token, expires_in}` or a password-change demand
/// `{requires_password_change, password_change_token, expires_in}`. Any failure (wrong
/// password, unknown e-mail, locked, banned) is the same 401 `INVALID_CREDENTIALS`, after
/// the failure counter has been committed.
pub async fn sign_in(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<SignInBody>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ctx);
    call_json_audited(
        &state,
        &ctx,
        Access::ReadWrite,
        None,
        SIGN_IN_SQL,
        &[&body.email, &body.password, &ip],
        AuditSpec {
            event: "auth.login",
            email: body.email.as_deref(),
            ..AuditSpec::default()
        },
    )
    .await
}

/// `POST /auth/refresh` `{refresh_token}` → a new token pair, or 401
/// `INVALID_REFRESH_TOKEN` (a reused token has revoked its session by then).
pub async fn refresh(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ctx);
    call_json_audited(
        &state,
        &ctx,
        Access::ReadWrite,
        None,
        REFRESH_SQL,
        &[&body.refresh_token, &ip],
        AuditSpec {
            event: "auth.refresh",
            ..AuditSpec::default()
        },
    )
    .await
}

/// `POST /auth/signout` (alias `/auth/logout`) with the user's token → 204. The access
/// token is blacklisted at once and the session(s) revoked. The scope comes from
/// `?scope=` or the optional body `{scope}`; both given and different is a 400.
pub async fn sign_out(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
    RawQuery(query): RawQuery,
    OptionalJson(body): OptionalJson<SignOutParams>,
) -> Result<Response, ApiError> {
    let token = token.ok_or_else(ApiError::unauthorized)?;
    let scope = sign_out_scope(query.as_deref(), body)?;
    let result = with_request_tx(
        state.pool(),
        Access::ReadWrite,
        Some(&token),
        &ctx.request_id,
        async |tx| {
            let statement = tx.prepare_cached(SIGN_OUT_SQL).await?;
            tx.execute(&statement, &[&scope]).await?;
            Ok(())
        },
    )
    .await;
    let spec = AuditSpec {
        event: "auth.logout",
        token: Some(&token),
        ..AuditSpec::default()
    };
    record_auth_event(&state, &ctx, spec, &result, None, None);
    result?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The sign-out scope from the query string and the body.
pub fn sign_out_scope(
    query: Option<&str>,
    body: Option<SignOutParams>,
) -> Result<Option<String>, ApiError> {
    let from_query = match query {
        Some(q) if !q.is_empty() => {
            serde_urlencoded::from_str::<SignOutParams>(q)
                .map_err(|e| {
                    ApiError::bad_request("INVALID_PARAMETER", format!("Invalid query string: {e}"))
                })?
                .scope
        }
        _ => None,
    };
    let from_body = body.and_then(|b| b.scope);
    match (from_query, from_body) {
        (Some(q), Some(b)) if q != b => Err(ApiError::bad_request(
            "VALIDATION_ERROR",
            "scope is given twice (query and body) with different values",
        )),
        (q, b) => Ok(q.or(b)),
    }
}

/// `GET /auth/user` → the verified user of the bearer token; 401 without one.
pub async fn current_user(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
) -> Result<Response, ApiError> {
    let token = token.ok_or_else(ApiError::unauthorized)?;
    let text = call_text(&state, &ctx, Access::ReadOnly, Some(&token), ME_SQL, &[]).await?;
    // A valid token whose account is gone.
    json_outcome(&ctx, text.ok_or_else(ApiError::unauthorized)?)
}

/// `PATCH /auth/user` with the user's token: the body (a JSON object) goes to
/// `auth.update_user` whole, which accepts only `user_metadata`, `email`, `password` and
/// `current_password` and refuses anything else (e.g. `role`) with 400, changing nothing.
pub async fn update_user(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
    body: RawJson,
) -> Result<Response, ApiError> {
    let token = token.ok_or_else(ApiError::unauthorized)?;
    if !body.value.is_object() {
        return Err(ApiError::bad_request(
            "VALIDATION_ERROR",
            "The body must be a JSON object",
        ));
    }
    let text = call_text(
        &state,
        &ctx,
        Access::ReadWrite,
        Some(&token),
        UPDATE_USER_SQL,
        &[&body.text],
    )
    .await?;
    json_outcome(&ctx, text.ok_or_else(ApiError::unauthorized)?)
}

/// `GET /auth/config` → the password rules and 2FA requirements a client may show before
/// signing in.
pub async fn public_config(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Response, ApiError> {
    call_json(&state, &ctx, Access::ReadOnly, None, PUBLIC_CONFIG_SQL, &[]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(scope: &str) -> Option<SignOutParams> {
        Some(SignOutParams {
            scope: Some(scope.to_owned()),
        })
    }

    #[test]
    fn sign_out_scope_sources() {
        assert_eq!(sign_out_scope(None, None).unwrap(), None);
        assert_eq!(sign_out_scope(Some(""), None).unwrap(), None);
        assert_eq!(
            sign_out_scope(Some("scope=global"), None)
                .unwrap()
                .as_deref(),
            Some("global")
        );
        assert_eq!(
            sign_out_scope(None, body("others")).unwrap().as_deref(),
            Some("others")
        );
        assert_eq!(
            sign_out_scope(Some("scope=local"), body("local"))
                .unwrap()
                .as_deref(),
            Some("local")
        );
        let err = sign_out_scope(Some("scope=local"), body("global")).unwrap_err();
        assert_eq!(err.code, "VALIDATION_ERROR");
        let err = sign_out_scope(Some("scope=local&x=1"), None).unwrap_err();
        assert_eq!(
            (err.status, err.code.as_ref()),
            (StatusCode::BAD_REQUEST, "INVALID_PARAMETER")
        );
    }
}
