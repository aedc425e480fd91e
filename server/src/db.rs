//! The connection pool and the one way API requests use it: [`with_request_tx`].
//!
//! Why one transaction per request, opened by `auth.authenticate`: the server's login role
//! has no privileges of its own. `auth.authenticate($token)` verifies the token inside
//! PostgreSQL and switches *this transaction* to `anon`, `authenticated` or `service_role`
//! (`SET LOCAL ROLE`), publishing the verified claims for RLS. Everything the request does
//! runs after that, and COMMIT/ROLLBACK undoes the switch, so nothing leaks to the next
//! request on the pooled connection.
//!
//! Why nothing can leak even on a dropped request: `tokio_postgres::Transaction` sends a
//! ROLLBACK when dropped unfinished (a client that disconnects cancels the handler future),
//! and the pool recycles with [`RecyclingMethod::Clean`] (`RESET ALL`, `SET SESSION
//! AUTHORIZATION DEFAULT`, …) before handing a connection out again.
use crate::config::DatabaseConfig;
use crate::error::{from_db_error, from_pool_error, ApiError};
use deadpool_postgres::{
    Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts, Transaction,
};
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// How long a request waits for a free pooled connection before answering 503.
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening a new database connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum PoolSetupError {
    #[error("database.url: {0}")]
    Url(String),
    #[error("cannot build the connection pool: {0}")]
    Build(String),
}

/// Builds the pool. Connections are opened lazily, on first use, so this succeeds for an
/// unreachable database (tests rely on that).
///
/// `statement_timeout`: every statement on these connections is cancelled by PostgreSQL
/// after it (the request timeout, `server.request_timeout_seconds`). Why: when the edge
/// answers 503 to a slow request, dropping the handler does not stop the query inside
/// PostgreSQL; a hostile `select` (embeds fanning out level after level, a count over a
/// huge table) would keep a backend and its pooled connection busy for as long as it
/// likes. Set in the startup packet, so it is the connection's default and survives the
/// pool's `RESET ALL`; a setting in the URL's `options` is kept (it comes later and wins).
pub fn create_pool(
    config: &DatabaseConfig,
    statement_timeout: Duration,
) -> Result<Pool, PoolSetupError> {
    let mut pg: tokio_postgres::Config = config
        .url
        .parse()
        .map_err(|e| PoolSetupError::Url(format!("{e}")))?;
    if pg.get_application_name().is_none() {
        pg.application_name("fluxbase");
    }
    let timeout = format!("-c statement_timeout={}", statement_timeout.as_millis());
    let options = match pg.get_options() {
        Some(given) => format!("{timeout} {given}"),
        None => timeout,
    };
    pg.options(&options);
    pg.connect_timeout(CONNECT_TIMEOUT);
    // TODO(tls): connections to the database are plain TCP for now.
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Clean,
        },
    );
    Pool::builder(manager)
        .max_size(config.max_connections)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(WAIT_TIMEOUT),
            create: Some(CONNECT_TIMEOUT),
            recycle: Some(CONNECT_TIMEOUT),
        })
        .build()
        .map_err(|e| PoolSetupError::Build(e.to_string()))
}

/// Whether the request may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `BEGIN READ ONLY`, for GET: a GET cannot change data even through a volatile function.
    ReadOnly,
    ReadWrite,
}

/// An error inside a request transaction: either the database's (mapped with the request's
/// context by [`with_request_tx`]) or one the handler decided itself.
#[derive(Debug)]
pub enum TxError {
    Db(tokio_postgres::Error),
    Api(ApiError),
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> Self {
        TxError::Db(e)
    }
}

impl From<ApiError> for TxError {
    fn from(e: ApiError) -> Self {
        TxError::Api(e)
    }
}

/// How many prepared statements one pooled connection keeps (see [`CachedQueries`]).
/// Request shapes are chosen by clients, so the cache must not grow without bound: past this
/// size it is emptied (dropping a statement closes it on the server too).
pub const STATEMENT_CACHE_LIMIT: usize = 256;

/// Running a request's generated statement through the connection's prepared-statement cache.
///
/// Why: a statement prepared anew for each request costs a Parse/Describe round trip and a
/// full plan every time; a cached one is bound and executed at once, and PostgreSQL may reuse
/// its plan. The SQL text is generated from the schema cache with every value a bind
/// parameter, so the same request shape gives the same text. Every generated statement
/// returns a fixed row type (JSON text and counts), so a cached plan survives DDL; the DDL
/// listener empties all caches anyway ([`crate::rest::listener`]).
pub(crate) trait CachedQueries {
    async fn query_one_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, tokio_postgres::Error>;
    async fn query_opt_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error>;
    async fn execute_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error>;
}

impl CachedQueries for Transaction<'_> {
    async fn query_one_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, tokio_postgres::Error> {
        let statement = self.prepare_cached(sql).await?;
        self.query_one(&statement, params).await
    }

    async fn query_opt_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let statement = self.prepare_cached(sql).await?;
        self.query_opt(&statement, params).await
    }

    async fn execute_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        let statement = self.prepare_cached(sql).await?;
        self.execute(&statement, params).await
    }
}

/// The first statement of every request transaction.
pub const AUTHENTICATE_SQL: &str = "SELECT auth.authenticate($1::text)";

/// Runs `body` in one transaction that starts with `auth.authenticate(token)`:
/// take a connection, `BEGIN [READ ONLY]`, authenticate, run `body`, `COMMIT`. Any error
/// rolls back (explicitly, or by dropping the transaction) and is mapped to the API shape;
/// `token` being present decides 401 vs 403 for privilege errors.
pub async fn with_request_tx<T, F>(
    pool: &Pool,
    access: Access,
    token: Option<&str>,
    request_id: &str,
    body: F,
) -> Result<T, ApiError>
where
    F: AsyncFnOnce(&Transaction<'_>) -> Result<T, TxError>,
{
    run_tx(pool, access, Some(token), request_id, body).await
}

/// Runs `body` in one read-write transaction as the server's own login role, *without*
/// `auth.authenticate`.
///
/// Only for the few functions granted to that role alone (`auth.create_password_reset`,
/// `auth.apply_settings`): authenticating would switch to `anon`, which may not call them
/// (a reset token must never reach an anonymous caller). Never run client-chosen SQL here.
pub async fn with_server_tx<T, F>(pool: &Pool, request_id: &str, body: F) -> Result<T, ApiError>
where
    F: AsyncFnOnce(&Transaction<'_>) -> Result<T, TxError>,
{
    run_tx(pool, Access::ReadWrite, None, request_id, body).await
}

/// The transaction of [`with_request_tx`] (`authenticate: Some(token)`) and
/// [`with_server_tx`] (`None`).
async fn run_tx<T, F>(
    pool: &Pool,
    access: Access,
    authenticate: Option<Option<&str>>,
    request_id: &str,
    body: F,
) -> Result<T, ApiError>
where
    F: AsyncFnOnce(&Transaction<'_>) -> Result<T, TxError>,
{
    let token_given = matches!(authenticate, Some(Some(_)));
    let db_err = |e: tokio_postgres::Error| from_db_error(&e, token_given, request_id);
    let mut client = pool
        .get()
        .await
        .map_err(|e| from_pool_error(&e, token_given, request_id))?;
    let tx = client
        .build_transaction()
        .read_only(access == Access::ReadOnly)
        .start()
        .await
        .map_err(db_err)?;
    if let Some(token) = authenticate {
        let statement = tx.prepare_cached(AUTHENTICATE_SQL).await.map_err(db_err)?;
        tx.execute(&statement, &[&token]).await.map_err(db_err)?;
    }
    let outcome = body(&tx).await;
    let result = finish(tx, outcome, request_id, db_err).await;
    if client.statement_cache.size() > STATEMENT_CACHE_LIMIT {
        client.statement_cache.clear();
    }
    result
}

/// COMMIT after success, ROLLBACK after an error (which is the one reported).
async fn finish<T>(
    tx: Transaction<'_>,
    outcome: Result<T, TxError>,
    request_id: &str,
    db_err: impl Fn(tokio_postgres::Error) -> ApiError,
) -> Result<T, ApiError> {
    match outcome {
        Ok(value) => {
            tx.commit().await.map_err(db_err)?;
            Ok(value)
        }
        Err(e) => {
            // Best effort: if the rollback itself fails the connection is broken and the pool
            // will discard it; the original error is the one worth reporting.
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(request_id, error = %rollback, "rollback failed");
            }
            Err(match e {
                TxError::Db(e) => db_err(e),
                TxError::Api(e) => e,
            })
        }
    }
}

/// `SELECT 1` within `timeout` (connection included): the health check.
pub async fn ping(pool: &Pool, timeout: Duration) -> bool {
    let check = async {
        let client = pool.get().await.ok()?;
        client.simple_query("SELECT 1").await.ok()
    };
    matches!(tokio::time::timeout(timeout, check).await, Ok(Some(_)))
}
