//! Per-request context, the access log line, and the guarantee that every error response
//! has the API error shape.
//!
//! Why our own request id instead of trusting `X-Request-Id` from the client: the id ends up
//! in logs and error bodies, and a client-chosen value could forge or collide with another
//! request's trail. Every request gets a fresh UUID v4, returned as `X-Request-Id`.
//!
//! What is logged: one JSON line per request with request_id, method, route (the matched
//! template), path (no query string: filter values can be personal data), status,
//! latency_ms and the client IP. Never headers (Authorization, cookies), bodies, passwords,
//! tokens or TOTP codes.
//!
//! This middleware also resolves the client IP (for the rate limits, [`crate::rate_limit`],
//! whose 429 gets a request id and the error shape here like any error) and records the
//! request metrics ([`crate::metrics`]).
use crate::error::ApiError;
use crate::metrics::METRICS;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler may know about the request it serves.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    /// The TCP peer. `None` when served without a socket (router tests).
    pub client_addr: Option<SocketAddr>,
    /// The client: the peer, or what a `server.trusted_proxies` proxy recorded
    /// ([`crate::client_ip`]). Lockouts, rate limits and the audit log key on this.
    pub client_ip: Option<IpAddr>,
    /// The `User-Agent` (at most 256 characters), for the audit log.
    pub user_agent: Option<String>,
}

impl RequestContext {
    /// A context without a socket (tests).
    pub fn detached(request_id: &str) -> RequestContext {
        RequestContext {
            request_id: request_id.to_owned(),
            client_addr: None,
            client_ip: None,
            user_agent: None,
        }
    }
}

/// The matched route template of a response (set by [`remember_route`]).
#[derive(Debug, Clone)]
pub struct RouteTemplate(pub String);

/// Where [`remember_route`] also leaves the template for [`request_context`], as soon as the
/// route is matched: a request the timeout cuts off has no response from inside the router,
/// and was counted and logged as `unmatched` (found by a reviewer).
#[derive(Debug, Clone, Default)]
pub struct RouteSlot(Arc<OnceLock<String>>);

/// Route layer: copies the matched route template into the response, where the outer
/// request middleware (which runs before routing) can read it, and into the request's
/// [`RouteSlot`].
pub async fn remember_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    if let (Some(slot), Some(route)) = (req.extensions().get::<RouteSlot>(), &route) {
        let _ = slot.0.set(route.clone());
    }
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteTemplate(route));
    }
    response
}

/// Counts a request in flight until dropped (also when the client goes away mid-request).
struct InFlight;

impl InFlight {
    fn start() -> InFlight {
        METRICS.http_in_flight.inc();
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        METRICS.http_in_flight.dec();
    }
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

/// The outermost middleware: assigns the request id, resolves the client IP, runs the
/// request, finishes error bodies, sets `X-Request-Id`, records the metrics and logs the
/// access line.
pub async fn request_context(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let _in_flight = InFlight::start();
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client_ip = client_addr.map(|a| {
        crate::client_ip::resolve(
            a.ip(),
            req.headers(),
            &state.config().server.trusted_proxies,
            state.config().server.forwarded_header,
        )
    });
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(256).collect::<String>());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(RequestContext {
        request_id: request_id.clone(),
        client_addr,
        client_ip,
        user_agent,
    });
    let slot = RouteSlot::default();
    req.extensions_mut().insert(slot.clone());

    let response = next.run(req).await;
    if let Some(refused) = response.extensions().get::<crate::rate_limit::Refused>() {
        METRICS
            .rate_limit_rejections
            .with_label_values(&[refused.0.endpoint.as_str(), refused.0.scope])
            .inc();
    }
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map(|r| r.0.clone())
        .or_else(|| slot.0.get().cloned());
    let error_code = response
        .extensions()
        .get::<ApiError>()
        .map(|e| e.code.to_string());
    let mut response = finish_error(response, &request_id);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    let status = response.status();
    let elapsed = started.elapsed();
    let route_label = route.as_deref().unwrap_or("unmatched");
    record_metrics(&method, route_label, status, error_code, elapsed);
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let client_ip = client_ip.map(|ip| ip.to_string());
    tracing::info!(
        target: "fluxbase::request",
        request_id = %request_id,
        method = %method,
        route = route_label,
        path = %path,
        status = status.as_u16(),
        latency_ms,
        client_ip = client_ip.as_deref().unwrap_or(""),
        "request"
    );
    response
}

fn record_metrics(
    method: &axum::http::Method,
    route: &str,
    status: StatusCode,
    error_code: Option<String>,
    elapsed: std::time::Duration,
) {
    // Only standard methods as labels: a client may send any token as a method.
    let method = match *method {
        axum::http::Method::GET => "GET",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    };
    let status_text = status.as_str();
    let labels = [method, route, status_text];
    METRICS.http_requests.with_label_values(&labels).inc();
    METRICS
        .http_duration
        .with_label_values(&labels)
        .observe(elapsed.as_secs_f64());
    if status.is_client_error() || status.is_server_error() {
        let code = error_code.unwrap_or_else(|| error_for_status(status).code.to_string());
        METRICS
            .http_errors
            .with_label_values(&[route, status_text, code.as_str()])
            .inc();
    }
    if let Some(endpoint) = crate::metrics::auth_endpoint(route) {
        METRICS
            .auth_attempts
            .with_label_values(&[endpoint, crate::metrics::auth_outcome(status)])
            .inc();
    }
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

/// Installs the JSON log subscriber on stdout (in batches, `log_writer.rs`). The level is `logging.level`, unless
/// `FLUXBASE_LOG` is set (a `tracing_subscriber::EnvFilter`, e.g. `info,fluxbase_server=debug`),
/// which wins.
pub fn init_logging_at(level: &str) {
    let filter = std::env::var("FLUXBASE_LOG").unwrap_or_else(|_| level.to_owned());
    init_logging_with_writer(&filter, crate::log_writer::BatchedStdout);
}
/// Installs the JSON log subscriber writing to `writer`, at `filter` (EnvFilter syntax).
/// Whatever the filter says, the database driver and the pool log at `info` at most: at
/// `debug` tokio-postgres logs every statement *with its parameters*, which are passwords,
/// tokens and TOTP codes on the auth routes.
pub fn init_logging_with_writer<W>(filter: &str, writer: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let mut filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for directive in [
        "tokio_postgres=info",
        "postgres_protocol=info",
        "deadpool=info",
    ] {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    // try_init: a second call (tests) keeps the first subscriber instead of panicking.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(writer)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request the timeout cuts off (its body never comes) is counted and logged under its
    /// route, not `unmatched` (found by a reviewer).
    #[tokio::test]
    async fn a_timed_out_request_keeps_its_route() {
        use tower::ServiceExt;
        let config = crate::Config::from_yaml_str(
            "server: { host: 127.0.0.1, port: 0, request_timeout_seconds: 1 }\n\
             database: { url: \"postgres://fluxbase_server:unit-test-password@127.0.0.1:1/fluxbase\" }\n",
        )
        .expect("config");
        let router = crate::app(AppState::lazy(&config).expect("lazy state"));
        let counted = || {
            METRICS
                .http_requests
                .with_label_values(&["POST", "/api/v1/auth/signin", "503"])
                .get()
        };
        let before = counted();
        let (_sender, body) =
            http_body_util::channel::Channel::<axum::body::Bytes, std::convert::Infallible>::new(1);
        let request = axum::http::Request::builder()
            .method("POST")
            .uri("/api/v1/auth/signin")
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::new(body))
            .expect("request");
        let response = router.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(counted(), before + 1);
    }

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
