//! `/api/v1/auth/…`: sessions, passwords and 2FA.
//!
//! The server only forwards: hashing, token signing, lockout and the "does this account
//! exist" decisions all happen in the `auth.*` SQL functions, which return the JSON sent
//! back. What the server adds: the client's IP (the TCP peer; `X-Forwarded-For` only from a
//! `server.trusted_proxies` proxy, see [`crate::client_ip`]), the
//! QR code of a TOTP enrolment, the reset e-mail, and the mapping of failure objects.
//!
//! Which role calls what (sql/extension/90_grants.sql): the anonymous steps (sign-up,
//! sign-in, refresh, 2FA verify, reset confirm, expired-password change, config) authenticate
//! with no token whatever `Authorization` header the client sends, since SDKs send their
//! anon key on every call; the account steps (user, sign-out, 2FA setup/enable/disable/
//! status) need the user's bearer token; starting a reset runs as the server's login role.
//!
//! Modules: [`session`] (sign-up/in/out, refresh, user, config), [`password`] (reset,
//! expired-password change), [`mfa`] (TOTP).
use crate::db::{with_request_tx, Access};
use crate::error::{from_failure_object, ApiError};
use crate::observability::RequestContext;
use crate::routes::json_text;
use crate::AppState;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio_postgres::types::ToSql;

pub mod mfa;
pub mod password;
pub mod session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", post(session::sign_up))
        .route("/auth/signin", post(session::sign_in))
        .route("/auth/login", post(session::sign_in))
        .route("/auth/refresh", post(session::refresh))
        .route("/auth/signout", post(session::sign_out))
        .route("/auth/logout", post(session::sign_out))
        .route(
            "/auth/user",
            get(session::current_user).patch(session::update_user),
        )
        .route("/auth/config", get(session::public_config))
        .route("/auth/password/reset", post(password::request_reset))
        .route(
            "/auth/password/reset/confirm",
            post(password::confirm_reset),
        )
        .route("/auth/password/change", post(password::change_expired))
        .route("/auth/2fa/setup", post(mfa::setup))
        .route("/auth/2fa/enable", post(mfa::enable))
        .route("/auth/2fa/disable", post(mfa::disable))
        .route("/auth/2fa/status", get(mfa::status))
        .route("/auth/2fa/verify", post(mfa::verify))
}

/// The client address as the functions' `client_ip inet` parameter (`$n::text::inet`):
/// the TCP peer, IPv4-mapped IPv6 written as IPv4 so lockout keys do not depend on the
/// listening socket. `None` (SQL NULL) when there is no socket (router tests).
pub fn client_ip(ctx: &RequestContext) -> Option<String> {
    ctx.client_ip.map(|ip| ip.to_canonical().to_string())
}

/// Runs `sql` (one `SELECT auth.fn(…)::text`) in the request transaction and returns its
/// single text value. The transaction commits whenever the statement succeeds, including
/// when the value is a failure object (see [`json_outcome`]).
pub async fn call_text(
    state: &AppState,
    ctx: &RequestContext,
    access: Access,
    token: Option<&str>,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<String>, ApiError> {
    with_request_tx(state.pool(), access, token, &ctx.request_id, async |tx| {
        let statement = tx.prepare_cached(sql).await?;
        let row = tx.query_one(&statement, params).await?;
        Ok(row.try_get::<_, Option<String>>(0)?)
    })
    .await
}

/// [`call_text`] and [`json_outcome`]: the usual auth endpoint. A NULL result is a 500 (the
/// functions called this way always return a value).
pub async fn call_json(
    state: &AppState,
    ctx: &RequestContext,
    access: Access,
    token: Option<&str>,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Response, ApiError> {
    let text = call_text(state, ctx, access, token, sql, params).await?;
    json_outcome(ctx, text.ok_or_else(ApiError::internal)?)
}

/// What an auth handler tells the audit log about its request.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditSpec<'a> {
    /// `auth.login`, `auth.signup`, …
    pub event: &'static str,
    /// The e-mail the attempt named, if any.
    pub email: Option<&'a str>,
    /// The bearer token the request was authenticated with: on success the database has
    /// verified it, so its `sub` is the actor.
    pub token: Option<&'a str>,
    /// `details.step` (e.g. `2fa` for the second sign-in step).
    pub step: Option<&'static str>,
}

/// [`call_json`], and the outcome written to the audit log (with the user id of a token
/// response as the actor).
#[allow(clippy::too_many_arguments)]
pub async fn call_json_audited(
    state: &AppState,
    ctx: &RequestContext,
    access: Access,
    token: Option<&str>,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
    spec: AuditSpec<'_>,
) -> Result<Response, ApiError> {
    let text = call_text(state, ctx, access, token, sql, params).await;
    let mut actor = None;
    let mut outcome = None;
    if let Ok(Some(text)) = &text {
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            actor = value["user"]["id"].as_str().map(str::to_owned);
            if value["requires_2fa"] == Value::Bool(true) {
                outcome = Some("mfa_required");
            } else if value["requires_password_change"] == Value::Bool(true) {
                outcome = Some("password_change_required");
            }
        }
    }
    let result = text.and_then(|t| json_outcome(ctx, t.ok_or_else(ApiError::internal)?));
    record_auth_event(state, ctx, spec, &result, actor, outcome);
    result
}

/// Writes one HTTP auth event to the audit log. The outcome comes from the result: success
/// (or `outcome` when given), `failure` (401), `rejected` (other 4xx), `error` (5xx).
pub fn record_auth_event<T>(
    state: &AppState,
    ctx: &RequestContext,
    spec: AuditSpec<'_>,
    result: &Result<T, ApiError>,
    actor: Option<String>,
    outcome: Option<&'static str>,
) {
    let mut details = serde_json::Map::new();
    if let Some(step) = spec.step {
        details.insert("step".to_owned(), Value::from(step));
    }
    let outcome = match result {
        Ok(_) => outcome.unwrap_or("success"),
        Err(e) => {
            details.insert("code".to_owned(), Value::from(e.code.as_ref()));
            match e.status.as_u16() {
                401 => "failure",
                400..=499 => "rejected",
                _ => "error",
            }
        }
    };
    let actor = actor.or_else(|| {
        result
            .is_ok()
            .then(|| spec.token.and_then(verified_subject))
            .flatten()
    });
    state.audit().record(crate::audit_log::AuditEvent {
        event: spec.event.to_owned(),
        outcome: outcome.to_owned(),
        actor_id: actor,
        email: spec.email.map(|e| {
            e.trim()
                .chars()
                .take(320)
                .collect::<String>()
                .to_lowercase()
        }),
        ip: client_ip(ctx),
        user_agent: ctx.user_agent.clone(),
        request_id: Some(ctx.request_id.clone()),
        source: "http",
        details: Value::Object(details),
        ..Default::default()
    });
}

/// The `sub` of a token the database has just accepted (so its claims are verified; never
/// call this on a token that was not).
fn verified_subject(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["sub"].as_str().map(str::to_owned)
}

/// The response for a function's (committed) JSON result: a failure object
/// `{"error": {"code", "message"}}` becomes that error in the API shape; anything else is
/// sent as it is with 200.
pub fn json_outcome(ctx: &RequestContext, text: String) -> Result<Response, ApiError> {
    let value: Value = serde_json::from_str(&text).map_err(|_| ApiError::internal())?;
    if let Some(err) = refused(ctx, &value) {
        return Err(err);
    }
    Ok(json_text(StatusCode::OK, text))
}

/// The error of a failure object, logged (its code only) with the request id.
pub fn refused(ctx: &RequestContext, value: &Value) -> Option<ApiError> {
    let err = from_failure_object(value)?;
    tracing::info!(
        request_id = %ctx.request_id,
        code = %err.code,
        "auth request refused"
    );
    Some(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(addr: Option<&str>) -> RequestContext {
        let client_addr: Option<std::net::SocketAddr> = addr.map(|a| a.parse().unwrap());
        RequestContext {
            client_addr,
            client_ip: client_addr.map(|a| a.ip()),
            ..RequestContext::detached("rid")
        }
    }

    #[test]
    fn client_ip_is_the_peer() {
        assert_eq!(client_ip(&ctx(None)), None);
        assert_eq!(
            client_ip(&ctx(Some("203.0.113.7:5555"))).as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(
            client_ip(&ctx(Some("[::ffff:203.0.113.7]:5555"))).as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(
            client_ip(&ctx(Some("[2001:db8::1]:443"))).as_deref(),
            Some("2001:db8::1")
        );
    }

    #[test]
    fn outcomes() {
        let ok = json_outcome(&ctx(None), r#"{"access_token":"a"}"#.to_owned()).unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        let err = json_outcome(
            &ctx(None),
            r#"{"error":{"code":"INVALID_REFRESH_TOKEN","message":"invalid refresh token"}}"#
                .to_owned(),
        )
        .unwrap_err();
        assert_eq!(
            (err.status, err.code.as_ref()),
            (StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN")
        );
        let err = json_outcome(&ctx(None), "not json".to_owned()).unwrap_err();
        assert_eq!(err.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
