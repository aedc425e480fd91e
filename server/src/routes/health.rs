//! `GET /health`: is the server up, and can it reach the database?
use crate::observability::KeepBody;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A health check must answer fast even when the database hangs, so a load balancer can
/// take the instance out of rotation: after this long the database counts as unavailable.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 `{"status":"ok","services":{"database":"ok"},"timestamp":…}`, or 503 with
/// `"degraded"` / `"unavailable"` when `SELECT 1` fails or times out. Runs as the login role,
/// outside any request transaction: it touches no data.
pub async fn health(State(state): State<AppState>) -> Response {
    let database_ok = crate::db::ping(state.pool(), DATABASE_CHECK_TIMEOUT).await;
    let timestamp = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    let (status, overall, database) = if database_ok {
        (StatusCode::OK, "ok", "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "degraded", "unavailable")
    };
    let body =
        json!({ "status": overall, "services": { "database": database }, "timestamp": timestamp });
    let mut response = (status, Json(body)).into_response();
    // The 503 is a health report, not an API error: keep its shape.
    response.extensions_mut().insert(KeepBody);
    response
}
