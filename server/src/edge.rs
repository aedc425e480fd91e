//! The edge rules every request passes before any route: security headers, CORS, the body
//! limit and the request timeout. All of them are tower / tower-http layers; this module only
//! turns the configuration into layers and adds them to the router in the right order.
//!
//! Order, outermost first, and why:
//! 1. security headers: outermost, so every response carries them, including the ones the
//!    layers below produce themselves (preflight answers, 413, timeouts, 404/405, panics);
//! 2. the request middleware ([`crate::observability::request_context`], added by
//!    [`crate::app`]): request id, access log, error shape;
//! 3. CORS: preflights are answered here (logged, with a request id); CORS headers are added
//!    to every other response, errors included, so a browser can read the error body;
//! 4. the timeout: covers body reading and the handler (a slow-loris body counts);
//! 5. the body limit: refuses a too-large `Content-Length` at once and stops a chunked body at
//!    the limit; the extractors turn the latter into the error shape, the request middleware
//!    the former.
//!
//! HSTS: `security.headers.hsts` is sent only when the server itself speaks TLS
//! (`server.tls.enabled`; one listener, so then every response went over TLS). Over plain
//! HTTP a browser ignores it, and behind a TLS-terminating proxy it is that proxy's job.
use crate::config::Config;
use crate::error::ApiError;
use crate::AppState;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::cors::{AllowCredentials, AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

/// The security headers and their values from `security.headers`.
pub fn security_headers(config: &Config) -> Vec<(HeaderName, HeaderValue)> {
    let h = &config.security.headers;
    // Validated by Config::validate, so the conversions cannot fail for a loaded config.
    let value = |text: &str| HeaderValue::from_str(text).expect("validated header value");
    let mut headers = vec![
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::REFERRER_POLICY, value(&h.referrer_policy)),
        (header::X_FRAME_OPTIONS, value(&h.x_frame_options)),
        (
            header::CONTENT_SECURITY_POLICY,
            value(&h.content_security_policy),
        ),
    ];
    if let Some(hsts) = h.hsts.as_ref().filter(|_| config.server.tls.enabled) {
        headers.push((
            header::STRICT_TRANSPORT_SECURITY,
            value(&hsts.header_value()),
        ));
    }
    headers
}

/// The CORS layer for `server.cors`; `None` when no origin is allowed (no CORS headers at all).
pub fn cors_layer(config: &Config) -> Option<CorsLayer> {
    let cors = &config.server.cors;
    if !cors.enabled() {
        return None;
    }
    // Exact matching only: a list, never a predicate or the request's own origin mirrored.
    let listed = cors.origins();
    let origins = if cors.allows_any_origin() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(listed.clone())
    };
    // `Access-Control-Allow-Credentials: true` only beside an allowed origin (tower-http would
    // send it to every caller; harmless, as browsers also need the origin, but misleading).
    // Config validation keeps credentials and "*" apart.
    let credentials = if cors.allow_credentials {
        AllowCredentials::predicate(move |origin, _| listed.contains(origin))
    } else {
        AllowCredentials::from(false)
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods(cors.methods())
            .allow_headers(cors.headers())
            .allow_credentials(credentials)
            .max_age(Duration::from_secs(cors.max_age))
            .expose_headers([
                crate::observability::X_REQUEST_ID.clone(),
                header::CONTENT_RANGE,
            ]),
    )
}

/// The error for a request over `server.request_timeout_seconds`. 503 rather than 408:
/// browsers silently retry a 408, which would repeat a POST the server gave up on.
pub fn request_timeout() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "REQUEST_TIMEOUT",
        "The request took too long",
    )
}

async fn timeout_error(err: tower::BoxError) -> Response {
    if err.is::<tower::timeout::error::Elapsed>() {
        request_timeout().into_response()
    } else {
        tracing::error!(error = %err, "request middleware failed");
        ApiError::internal().into_response()
    }
}

/// The layers that sit inside the request middleware: CORS, timeout, body limit.
pub fn inner_layers(router: Router<AppState>, config: &Config) -> Router<AppState> {
    let limit = config.server.max_body_bytes;
    let router = router
        // The extractors' own limit (axum's default is 2 MB) and tower-http's, which also
        // covers anything that reads the body without axum's extractors.
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(timeout_error))
                .timeout(Duration::from_secs(config.server.request_timeout_seconds)),
        );
    match cors_layer(config) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The layers outside the request middleware: the security headers.
pub fn outer_layers(router: Router<AppState>, config: &Config) -> Router<AppState> {
    security_headers(config)
        .into_iter()
        .fold(router, |router, (name, value)| {
            // Overriding: no handler can weaken them by accident.
            router.layer(SetResponseHeaderLayer::overriding(name, value))
        })
}
