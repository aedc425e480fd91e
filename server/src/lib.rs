//! Fluxbase server: the thin HTTP layer in front of PostgreSQL and the `fluxbase` extension.
//!
//! Every API request becomes one short transaction that starts with
//! `auth.authenticate(<bearer token>)`; PostgreSQL (the extension, grants and RLS) decides
//! everything else. The server holds no user data and no signing secret.
//!
//! Modules, one concern each:
//! - [`config`]: `fluxbase.yaml` (interpolation, `_FILE` secrets, environment overrides,
//!   validation).
//! - [`transport`]: the accept loop (TLS, HTTP/1.1 and HTTP/2, header timeout, graceful
//!   shutdown); [`tls`]: the rustls configurations (server, database connections).
//! - [`edge`]: security headers, CORS, body limit, request timeout.
//! - [`db`]: the pool and [`db::with_request_tx`], the per-request transaction.
//! - [`error`]: the error shape and the SQLSTATE mapping.
//! - [`extract`]: extractors whose rejections use the error shape.
//! - [`mail`]: outgoing SMTP (password-reset links).
//! - [`observability`]: request ids, the access log, error-shape enforcement.
//! - [`routes`]: `/health`, `/api/v1/auth/…`, `/api/v1/tables/…`.
//! - [`rest`]: schema cache, query parsing and SQL building for the tables API.
//! - [`security_report`]: the extension's security report, logged at start.
//! - [`cli`]: the `fluxbase` command line; [`check`]: `fluxbase check`, the pre-production checks.
//!
//! For tests: [`app`] gives the router without a socket (use [`AppState::lazy`] when no
//! database is needed), [`serve`] runs it on a listener you bound (e.g. `127.0.0.1:0`).
use axum::Router;
use deadpool_postgres::Pool;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

pub mod audit_log;
pub mod check;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod db;
pub mod edge;
pub mod error;
pub mod extract;
pub mod log_writer;
pub mod mail;
pub mod metrics;
pub mod observability;
pub mod rate_limit;
pub mod rest;
pub mod routes;
pub mod security_report;
pub mod tls;
pub mod transport;

pub use config::{Config, ConfigError};
pub use error::ApiError;

use rest::functions::{FunctionCache, FunctionCacheHandle};
use rest::schema_cache::{SchemaCache, SchemaCacheHandle};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Pool(#[from] db::PoolSetupError),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("cannot load the schema cache: {0}")]
    SchemaCache(String),
    #[error(transparent)]
    Mail(#[from] mail::MailError),
    #[error("the database refused the auth: settings of the config: {0}")]
    Settings(String),
    #[error("logging.audit_log_file: cannot open it: {0}")]
    AuditLog(String),
}

/// Shared state of all requests: the configuration, the pool, the schema cache and the
/// mailer. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

struct StateInner {
    config: Config,
    pool: Pool,
    schema: Arc<SchemaCacheHandle>,
    functions: Arc<FunctionCacheHandle>,
    /// `None` when `auth.smtp` is not configured.
    mailer: Option<mail::Mailer>,
    /// `None` when `rate_limiting.enabled` is false.
    rate_limiter: Option<Arc<rate_limit::RateLimiter>>,
    audit: Arc<audit_log::AuditLog>,
}

impl AppState {
    /// A state whose pool has no connections yet and whose schema cache is empty (it loads
    /// on the first request that names a table). Needs no reachable database, so router tests
    /// use it. It does not apply the `auth:` settings (see [`build_state`]).
    pub fn lazy(config: &Config) -> Result<AppState, StartupError> {
        let pool = db::create_pool(
            &config.database,
            std::time::Duration::from_secs(config.server.request_timeout_seconds),
        )?;
        let mailer = config
            .auth
            .smtp
            .as_ref()
            .map(mail::Mailer::from_config)
            .transpose()?;
        let schema = Arc::new(SchemaCacheHandle::new(
            &config.api,
            SchemaCache::default(),
            false,
        ));
        let rate_limiter = rate_limit::RateLimiter::new(&config.rate_limiting, &pool);
        let audit = audit_log::AuditLog::open(&config.logging)
            .map_err(|e| StartupError::AuditLog(e.to_string()))?;
        Ok(AppState {
            inner: Arc::new(StateInner {
                config: config.clone(),
                rate_limiter,
                audit,
                pool,
                schema,
                functions: Arc::new(FunctionCacheHandle::new(
                    config.api.exposed_schemas.clone(),
                    FunctionCache::default(),
                    false,
                )),
                mailer,
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    pub fn schema(&self) -> &SchemaCacheHandle {
        &self.inner.schema
    }

    /// The functions `/rpc` can call.
    pub fn functions(&self) -> &FunctionCacheHandle {
        &self.inner.functions
    }

    pub fn mailer(&self) -> Option<&mail::Mailer> {
        self.inner.mailer.as_ref()
    }

    pub fn rate_limiter(&self) -> Option<&rate_limit::RateLimiter> {
        self.inner.rate_limiter.as_deref()
    }

    /// The audit log (and the security alerts).
    pub fn audit(&self) -> &audit_log::AuditLog {
        &self.inner.audit
    }
}

/// Builds the state for a real server: the pool, a first connection (so a wrong URL or
/// password stops the server at start), the `auth:` settings written to the database, and
/// the schema cache. Warns about every exposed table with row-level security off.
pub async fn build_state(config: &Config) -> Result<AppState, StartupError> {
    let state = AppState::lazy(config)?;
    let client = state
        .pool()
        .get()
        .await
        .map_err(|e| StartupError::Connect(error_chain(&e)))?;
    apply_auth_settings(&client, config).await?;
    check_server_functions(&client, config).await?;
    if config.auth.smtp.is_none() {
        tracing::warn!("auth.smtp is not configured: password-reset e-mails cannot be sent");
    }
    state
        .schema()
        .reload(&client)
        .await
        .map_err(|e| StartupError::SchemaCache(error_chain(&e)))?;
    state
        .functions()
        .reload(&client)
        .await
        .map_err(|e| StartupError::SchemaCache(error_chain(&e)))?;
    rest::functions::report_unpinned_definers(&state.functions().snapshot());
    // Keeps both caches fresh from now on (DDL notifications); the schema cache's load also
    // logged every exposed relation without RLS protection (security property 5).
    rest::listener::spawn(
        listener_config(config)?,
        tls::database_connector(&config.database)
            .map_err(|e| StartupError::Connect(format!("{}: {e}", e.key())))?,
        rest::listener::Caches {
            schema: Arc::downgrade(&state.inner.schema),
            functions: Arc::downgrade(&state.inner.functions),
            after_reload: {
                let inner = Arc::downgrade(&state.inner);
                Box::new(move || {
                    if let Some(inner) = inner.upgrade() {
                        inner.pool.manager().statement_caches.clear();
                    }
                })
            },
        },
    );
    security_report::log_security_report(&client, &config.api.exposed_schemas).await;
    audit_log::spawn_database_feed(&state.inner.audit, state.pool().clone());
    Ok(state)
}

/// With `rate_limiting.store: postgres` or the audit log on, the extension's functions for
/// them must be there (an older extension lacks them): better to stop at start than to let
/// every request through unlimited, or to write no administrator events.
async fn check_server_functions(
    client: &deadpool_postgres::Client,
    config: &Config,
) -> Result<(), StartupError> {
    let limits = &config.rate_limiting;
    if limits.enabled && limits.store == config::RateLimitStore::Postgres {
        client
            .execute(rate_limit::PURGE_SQL, &[])
            .await
            .map_err(|e| {
                StartupError::Connect(format!(
                    "rate_limiting.store is postgres, but fluxbase.rate_limit_purge() cannot run (is the extension up to date?): {}",
                    error_chain(&e)
                ))
            })?;
    }
    if config.logging.audit_enabled {
        client.execute(audit_log::HEAD_SQL, &[]).await.map_err(|e| {
            StartupError::Connect(format!(
                "logging.audit_enabled: fluxbase.security_events_head() cannot run (is the extension up to date?): {}",
                error_chain(&e)
            ))
        })?;
    }
    Ok(())
}

/// The SQL that writes the `auth:` rule keys to `auth.settings` (all or nothing). Runs as the
/// login role, which alone may call it: no `auth.authenticate` first.
pub const APPLY_SETTINGS_SQL: &str = "SELECT auth.apply_settings($1::text::jsonb)";

/// Writes the rule keys the config gives (none: nothing is written, the database keeps its
/// values). A refusal stops the start with the database's message, which names the key.
async fn apply_auth_settings(
    client: &deadpool_postgres::Client,
    config: &Config,
) -> Result<(), StartupError> {
    let settings = config.auth.database_settings();
    if settings.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = settings.keys().cloned().collect();
    let json = serde_json::Value::Object(settings).to_string();
    let refused = |e: tokio_postgres::Error| {
        StartupError::Settings(match e.as_db_error() {
            Some(db) => db.message().to_owned(),
            None => error_chain(&e),
        })
    };
    client
        .execute(APPLY_SETTINGS_SQL, &[&json])
        .await
        .map_err(refused)?;
    tracing::info!(keys = ?keys, "applied the auth: settings");
    Ok(())
}

/// An error and its causes, `: `-separated ("error connecting to server: Connection
/// refused"): the top-level messages of the database errors alone do not say what failed.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The schema listener's own connection: the server's URL, named so it can be told apart
/// in `pg_stat_activity`.
fn listener_config(config: &Config) -> Result<tokio_postgres::Config, StartupError> {
    let mut pg = config
        .database
        .connect_config()
        .map_err(|e| StartupError::Connect(format!("database.url: {e}")))?;
    pg.application_name("fluxbase-schema-listener");
    pg.connect_timeout(std::time::Duration::from_secs(5));
    Ok(pg)
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let config = state.config().clone();
    let router = Router::new()
        .route("/health", axum::routing::get(routes::health::health))
        .nest("/api/v1", routes::api_router())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        // Tells the request middleware which route template matched (metrics, access log).
        .route_layer(axum::middleware::from_fn(observability::remember_route))
        // Inside the request middleware, so a panic's 500 still gets a request id.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            observability::panic_response,
        ))
        // Inside CORS (a browser can read the 429) and the request middleware (client IP,
        // error shape); see `rate_limit::enforce`.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit::enforce,
        ));
    // See `edge` for the order of the layers and why.
    let router = edge::inner_layers(router, &config).layer(axum::middleware::from_fn_with_state(
        state.clone(),
        observability::request_context,
    ));
    edge::outer_layers(router, &config).with_state(state)
}

/// Serves the application on `listener` until the task is dropped. The peer address of each
/// connection is recorded (see [`observability::RequestContext`]).
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    serve_with_shutdown(listener, state, std::future::pending()).await
}

/// As [`serve`], finishing in-flight requests and returning once `shutdown` completes (see
/// [`transport`]: TLS, HTTP/2, header timeout, graceful shutdown).
pub async fn serve_with_shutdown(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    transport::serve_with_shutdown(listener, state, shutdown).await
}
