//! `/api/v1/auth/…`: sign-up, sign-in and the current user.
//!
//! The server only forwards: hashing, token signing and the "does this account exist"
//! decisions all happen in the `auth.*` SQL functions, which return the JSON sent back.
//! Sign-up and sign-in authenticate the transaction with no token (role `anon`, the only
//! role allowed to call them) whatever `Authorization` header the client sends, since
//! SDKs send their anon key on every call.
use crate::db::{with_request_tx, Access};
use crate::error::ApiError;
use crate::extract::{ApiJson, BearerToken};
use crate::observability::RequestContext;
use crate::routes::json_text;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::Value;

pub const SIGN_UP_SQL: &str = "SELECT auth.sign_up($1::text, $2::text, $3::text::jsonb)::text";
pub const SIGN_IN_SQL: &str = "SELECT auth.sign_in($1::text, $2::text)::text";
pub const ME_SQL: &str = "SELECT auth.me()::text";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", post(sign_up))
        .route("/auth/signin", post(sign_in))
        .route("/auth/login", post(sign_in))
        .route("/auth/user", get(current_user))
}

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

/// `POST /auth/signup` → 200 with the token response (200 rather than 201 so sign-up and
/// sign-in answer alike, as Supabase's GoTrue does).
async fn sign_up(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<SignUpBody>,
) -> Result<Response, ApiError> {
    let metadata = body.user_metadata.as_ref().map(Value::to_string);
    let text = with_request_tx(
        state.pool(),
        Access::ReadWrite,
        None,
        &ctx.request_id,
        async |tx| {
            let stmt = tx.prepare_cached(SIGN_UP_SQL).await?;
            let row = tx
                .query_one(&stmt, &[&body.email, &body.password, &metadata])
                .await?;
            Ok(row.try_get::<_, Option<String>>(0)?)
        },
    )
    .await?;
    text.map(|t| json_text(StatusCode::OK, t))
        .ok_or_else(ApiError::internal)
}

/// `POST /auth/signin` (alias `/auth/login`) → 200 with the token response; any failure is
/// the same 401 `INVALID_CREDENTIALS`.
async fn sign_in(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<SignInBody>,
) -> Result<Response, ApiError> {
    let text = with_request_tx(
        state.pool(),
        Access::ReadWrite,
        None,
        &ctx.request_id,
        async |tx| {
            let stmt = tx.prepare_cached(SIGN_IN_SQL).await?;
            let row = tx.query_one(&stmt, &[&body.email, &body.password]).await?;
            Ok(row.try_get::<_, Option<String>>(0)?)
        },
    )
    .await?;
    text.map(|t| json_text(StatusCode::OK, t))
        .ok_or_else(ApiError::internal)
}

/// `GET /auth/user` → the verified user of the bearer token; 401 without one.
async fn current_user(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
) -> Result<Response, ApiError> {
    let token = token.ok_or_else(ApiError::unauthorized)?;
    let text = with_request_tx(
        state.pool(),
        Access::ReadOnly,
        Some(&token),
        &ctx.request_id,
        async |tx| {
            let stmt = tx.prepare_cached(ME_SQL).await?;
            let row = tx.query_one(&stmt, &[]).await?;
            Ok(row.try_get::<_, Option<String>>(0)?)
        },
    )
    .await?;
    // A valid token whose account is gone.
    text.map(|t| json_text(StatusCode::OK, t))
        .ok_or_else(ApiError::unauthorized)
}
