//! Per-request context, the access log line, and the guarantee that every error response
//! has the API error shape.
//!
//! Why our own request id instead of trusting `X-Request-Id` from the client: the id ends up
//! in logs and error bodies, and a client-chosen value could forge or collide with another
//! request's trail. Every request gets a fresh UUID v4, returned as `X-Request-Id`.
//!
//! What is logged: one JSON line per request with request_id, method, path (no query string:
//! filter values can be personal data), status, latency_ms and the peer address. Never
//! headers (Authorization), bodies, passwords or tokens.
use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::time::Instant;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler may know about the request it serves.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    /// The TCP peer. `X-Forwarded-For` is deliberately not trusted (no trusted-proxy setting
    /// exists yet), so this is the only client address. `None` when served without a socket
    /// (router tests).
    pub client_addr: Option<SocketAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .ok_or_else(ApiError::internal)
    }
}

/// Marks a non-2xx response whose body is deliberately not the error shape (the health
/// check's 503 keeps its own shape).
#[derive(Debug, Clone, Copy)]
pub struct KeepBody;

/// The outermost middleware: assigns the request id, runs the request, finishes error
/// bodies, sets `X-Request-Id` and logs the access line.
pub async fn request_context(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(RequestContext {
        request_id: request_id.clone(),
        client_addr,
    });

    let mut response = finish_error(next.run(req).await, &request_id);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let client_ip = client_addr.map(|a| a.ip().to_string());
    tracing::info!(
        target: "fluxbase::request",
        request_id = %request_id,
        method = %method,
        path = %path,
        status,
        latency_ms,
        client_ip = client_ip.as_deref().unwrap_or(""),
        "request"
    );
    response
}

/// Renders an [`ApiError`] response with the request id, and replaces any other error
/// response (axum's plain-text rejections, an empty 405) by the error shape.
fn finish_error(mut response: Response, request_id: &str) -> Response {
    if let Some(err) = response.extensions_mut().remove::<ApiError>() {
        let mut rendered = err.to_response(request_id);
        carry_headers(&response, &mut rendered);
        return rendered;
    }
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<KeepBody>().is_some()
    {
        return response;
    }
    let mut rendered = error_for_status(status).to_response(request_id);
    carry_headers(&response, &mut rendered);
    rendered
}

/// Keeps headers such as `Allow` or the CORS ones from the original response, every value of
/// each; the body headers are the new one's.
fn carry_headers(from: &Response, to: &mut Response) {
    for name in from.headers().keys() {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !to.headers().contains_key(name)
        {
            for value in from.headers().get_all(name) {
                to.headers_mut().append(name.clone(), value.clone());
            }
        }
    }
}

/// The error for a bare status code.
pub fn error_for_status(status: StatusCode) -> ApiError {
    let code = match status {
        StatusCode::BAD_REQUEST => "BAD_REQUEST",
        StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        // tower-http's body limit answers a too-large Content-Length with a bare 413.
        StatusCode::PAYLOAD_TOO_LARGE => return ApiError::payload_too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        StatusCode::REQUEST_TIMEOUT => "REQUEST_TIMEOUT",
        StatusCode::TOO_MANY_REQUESTS => "TOO_MANY_REQUESTS",
        StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
        s if s.is_server_error() => return ApiError::internal(),
        _ => "BAD_REQUEST",
    };
    let message = status.canonical_reason().unwrap_or("Request failed");
    ApiError::new(status, code, message)
}

/// Turns a handler panic into a 500 in the error shape (the middleware adds the id).
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %what, "request handler panicked");
    ApiError::internal().into_response()
}

/// Installs the JSON log subscriber at `info` (before a config is loaded).
pub fn init_logging() {
    init_logging_at("info");
}

/// Installs the JSON log subscriber. The level is `logging.level`, unless `FLUXBASE_LOG` is set
/// (a `tracing_subscriber::EnvFilter`, e.g. `info,fluxbase_server=debug`), which wins.
pub fn init_logging_at(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLUXBASE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // try_init: a second call (tests) keeps the first subscriber instead of panicking.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_statuses_get_codes() {
        assert_eq!(error_for_status(StatusCode::NOT_FOUND).code, "NOT_FOUND");
        assert_eq!(
            error_for_status(StatusCode::METHOD_NOT_ALLOWED).code,
            "METHOD_NOT_ALLOWED"
        );
        assert_eq!(
            error_for_status(StatusCode::BAD_GATEWAY).code,
            "INTERNAL_ERROR"
        );
        assert_eq!(
            error_for_status(StatusCode::IM_A_TEAPOT).status,
            StatusCode::IM_A_TEAPOT
        );
    }

    #[test]
    fn api_errors_get_the_request_id() {
        let response = finish_error(ApiError::not_found().into_response(), "rid-1");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(response.extensions().get::<ApiError>().is_none());
        let plain = (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET")],
            "nope",
        )
            .into_response();
        let response = finish_error(plain, "rid-2");
        assert_eq!(response.headers().get(header::ALLOW).unwrap(), "GET");
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        let mut kept = (StatusCode::SERVICE_UNAVAILABLE, "degraded").into_response();
        kept.extensions_mut().insert(KeepBody);
        let kept = finish_error(kept, "x");
        assert_eq!(
            kept.headers().get(header::CONTENT_TYPE).unwrap(),
            "text/plain; charset=utf-8"
        );
    }
}
