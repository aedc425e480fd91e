//! Prometheus metrics, served on their own listener (`monitoring:`), never on the public port.
//!
//! Labels are chosen from fixed sets only, so a client can neither blow up the number of
//! series nor get personal data into them: the route is the matched route *template*
//! (`/api/v1/tables/{table}`; `unmatched` for 404s), never the raw path; the status is the
//! code; rate-limit rejections are labelled by the endpoint's configured path (or `global`)
//! and the scope (`ip` or `user`), never by an address or a user.
//!
//! One process-wide registry: one process serves one server (tests that start several in one
//! process share it, which only adds up their counts).
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::LazyLock;
use tokio::net::TcpListener;

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub http_errors: IntCounterVec,
    pub http_in_flight: IntGauge,
    pub db_pool_connections: IntGaugeVec,
    pub db_pool_waiting: IntGauge,
    pub db_pool_wait: HistogramVec,
    pub db_transaction_duration: HistogramVec,
    pub auth_attempts: IntCounterVec,
    pub rate_limit_rejections: IntCounterVec,
}

/// The metrics of this process.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Latency buckets (seconds) from 1 ms to 10 s: requests are mostly a few ms; sign-ins take an
/// argon2 hash (~50-500 ms).
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
                labels,
            )
            .unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
            let _ = registry.register(Box::new(h.clone()));
            h
        };
        let gauge = |name: &str, help: &str| {
            let g =
                IntGauge::new(name, help).unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
            let _ = registry.register(Box::new(g.clone()));
            g
        };
        let db_pool_connections = IntGaugeVec::new(
            Opts::new(
                "fluxbase_db_pool_connections",
                "Database pool connections by state: size (open), idle (available), max.",
            ),
            &["state"],
        )
        .unwrap_or_else(|e| unreachable!("pool metric: {e}"));
        let _ = registry.register(Box::new(db_pool_connections.clone()));
        Metrics {
            http_requests: counter(
                "fluxbase_http_requests_total",
                "HTTP requests by method, route template and status.",
                &["method", "route", "status"],
            ),
            http_duration: histogram(
                "fluxbase_http_request_duration_seconds",
                "HTTP request duration by method, route template and status.",
                &["method", "route", "status"],
            ),
            http_errors: counter(
                "fluxbase_http_errors_total",
                "HTTP responses with a 4xx or 5xx status, by route template and error code.",
                &["route", "status", "code"],
            ),
            http_in_flight: gauge(
                "fluxbase_http_requests_in_flight",
                "HTTP requests being served now.",
            ),
            db_pool_connections,
            db_pool_waiting: gauge(
                "fluxbase_db_pool_waiting",
                "Requests waiting for a pooled database connection now.",
            ),
            db_pool_wait: histogram(
                "fluxbase_db_pool_wait_seconds",
                "Time spent waiting for a pooled database connection, by outcome.",
                &["outcome"],
            ),
            db_transaction_duration: histogram(
                "fluxbase_db_transaction_duration_seconds",
                "Duration of request transactions in the database (BEGIN to COMMIT/ROLLBACK), by outcome.",
                &["outcome"],
            ),
            auth_attempts: counter(
                "fluxbase_auth_attempts_total",
                "Authentication attempts by endpoint (login, signup, refresh, 2fa_verify, password_reset, password_reset_confirm) and outcome.",
                &["endpoint", "outcome"],
            ),
            rate_limit_rejections: counter(
                "fluxbase_rate_limit_rejections_total",
                "Requests refused by the rate limiter, by endpoint (its configured path, or global) and scope (ip, user).",
                &["endpoint", "scope"],
            ),
            registry,
        }
    }

    /// The Prometheus text exposition, with the pool gauges read now.
    pub fn render(&self, pool: &deadpool_postgres::Pool) -> Result<String, String> {
        let status = pool.status();
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.db_pool_connections
            .with_label_values(&["size"])
            .set(as_i64(status.size));
        self.db_pool_connections
            .with_label_values(&["idle"])
            .set(as_i64(status.available));
        self.db_pool_connections
            .with_label_values(&["max"])
            .set(as_i64(status.max_size));
        self.db_pool_waiting.set(as_i64(status.waiting));
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .map_err(|e| e.to_string())?;
        String::from_utf8(buffer).map_err(|e| e.to_string())
    }
}

/// The auth endpoint a route template is, for `fluxbase_auth_attempts_total`.
pub fn auth_endpoint(route: &str) -> Option<&'static str> {
    Some(match route {
        "/api/v1/auth/signin" | "/api/v1/auth/login" => "login",
        "/api/v1/auth/signup" => "signup",
        "/api/v1/auth/refresh" => "refresh",
        "/api/v1/auth/2fa/verify" => "2fa_verify",
        "/api/v1/auth/password/reset" => "password_reset",
        "/api/v1/auth/password/reset/confirm" => "password_reset_confirm",
        _ => return None,
    })
}

/// The outcome label of an auth attempt from its status.
pub fn auth_outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "success",
        401 => "failure",
        429 => "rate_limited",
        400..=499 => "rejected",
        _ => "error",
    }
}

/// The router of the monitoring listener: `GET <path>` and nothing else.
pub fn router(state: AppState) -> Router {
    let path = state.config().monitoring.path.clone();
    Router::new()
        .route(&path, axum::routing::get(metrics_handler))
        .with_state(state)
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    match METRICS.render(state.pool()) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Serves the metrics on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}
