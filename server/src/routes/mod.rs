//! HTTP routes, one module per concern. Everything but `/health` is under `/api/v1`.
use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

pub mod auth;
pub mod health;
pub mod rpc;
pub mod tables;

/// The `/api/v1` routes.
pub fn api_router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(tables::router())
        .merge(rpc::router())
}

/// Unknown route: 404 in the error shape.
pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// Known route, wrong method: 405 in the error shape.
pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// A response whose body is JSON text produced by PostgreSQL (passed through unparsed).
pub fn json_text(status: StatusCode, text: String) -> Response {
    let mut response = (status, Body::from(text)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
