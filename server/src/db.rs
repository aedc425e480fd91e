//! The connection pool and the one way API requests use it: [`with_request_tx`].
//!
//! Why one transaction per request, opened by `auth.authenticate`: the server's login role
//! has no privileges of its own. `auth.authenticate($token)` verifies the token inside
//! PostgreSQL and switches *this transaction* to `anon`, `authenticated` or `service_role`
//! (`SET LOCAL ROLE`), publishing the verified claims for RLS. Everything the request does
//! runs after that, and COMMIT/ROLLBACK undoes the switch, so nothing leaks to the next
//! request on the pooled connection.
//!
//! Why nothing can leak even on a dropped request or a function that changes session state:
//! a connection goes back to the pool only after its transaction ended with a COMMIT or
//! ROLLBACK that PostgreSQL answered, and with its session reset (what deadpool's `Clean`
//! recycling runs — `RESET ALL`, `DISCARD TEMP`, … —: `auth.authenticate` has the extension
//! do it inside the request's own COMMIT or ROLLBACK, and a transaction that does not
//! authenticate is followed by [`SESSION_RESET_SQL`], pipelined behind it). A request
//! dropped halfway (a client that disconnects cancels the handler future), a failed
//! COMMIT/ROLLBACK or a failed reset detaches the connection from the pool and closes it, so
//! PostgreSQL rolls the transaction back ([`InTransaction`]).
//!
//! Why `BEGIN` and `auth.authenticate` go out together: they are pipelined (sent before any
//! answer is read), so a request costs one round trip for both, then one for its statement and
//! one for `COMMIT`; a plain read ([`read_one`]) sends all four in a single round trip.
use crate::config::DatabaseConfig;
use crate::error::{from_db_error, from_pool_error, ApiError};
use deadpool_postgres::{
    ClientWrapper, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts,
};
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// How long a request waits for a free pooled connection before answering 503.
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening a new database connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum PoolSetupError {
    #[error("database.url: {0}")]
    Url(String),
    #[error("{0}")]
    Tls(String),
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
    let mut pg = config.connect_config().map_err(PoolSetupError::Url)?;
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
    // database.ssl_mode: see config/database.rs and tls.rs.
    let tls = crate::tls::database_connector(config)
        .map_err(|e| PoolSetupError::Tls(format!("{}: {e}", e.key())))?;
    let manager = Manager::from_config(
        pg,
        tls,
        ManagerConfig {
            // Each connection resets its session itself after every request, before it goes
            // back to the pool (see the module comment), so recycling only checks that the
            // connection is open.
            recycling_method: RecyclingMethod::Fast,
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

impl CachedQueries for ClientWrapper {
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
    F: AsyncFnOnce(&ClientWrapper) -> Result<T, TxError>,
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
    F: AsyncFnOnce(&ClientWrapper) -> Result<T, TxError>,
{
    run_tx(pool, Access::ReadWrite, None, request_id, body).await
}

/// What a connection runs after SQL outside an authenticated transaction, before it may serve
/// another request: deadpool's `Clean` recycling set (`CLOSE ALL`, the role, `RESET ALL`,
/// `UNLISTEN *`, advisory locks, `DISCARD TEMP`, `DISCARD SEQUENCES`) in one call of the
/// extension, so session state SQL left behind (a `set_config(…, false)`, temporary tables, …)
/// never reaches the next request. Run outside any transaction: it is sent right behind the
/// COMMIT or ROLLBACK of a transaction without `auth.authenticate`, in the same round trip.
/// (An authenticated transaction needs none: `auth.authenticate` makes its COMMIT or ROLLBACK
/// reset the session, `pg_ext/src/session_reset.rs`.)
pub const SESSION_RESET_SQL: &str = "SELECT fluxbase.reset_session()";

/// A statement of the connection's cache is gone (SQLSTATE 26000, as after a `DEALLOCATE`):
/// the cache no longer matches the connection, so it must not serve another request. (The
/// extension refuses `DEALLOCATE` in request transactions; this is the second line.)
fn lost_a_prepared_statement(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::INVALID_SQL_STATEMENT_NAME)
}

/// Whether a connection is still in step after `result`: an error PostgreSQL answered (a
/// refused statement, a COMMIT refused by a deferred constraint) leaves it idle and usable;
/// only a broken one (no answer) must not be reused.
fn in_step<T>(result: &Result<T, tokio_postgres::Error>) -> bool {
    match result {
        Ok(_) => true,
        Err(e) => e.as_db_error().is_some(),
    }
}

/// A pooled connection while its request transaction is open. Dropped before [`Self::ended`]
/// (a cancelled request, a failed COMMIT or ROLLBACK), it takes the connection out of the
/// pool and closes it: PostgreSQL then rolls the transaction back, and no later request can
/// ever see it open (or its `SET LOCAL ROLE`).
struct InTransaction {
    client: Option<deadpool_postgres::Client>,
}

impl InTransaction {
    /// A connection from the pool (503 in the error shape when none comes in time).
    async fn checkout(
        pool: &Pool,
        token_given: bool,
        request_id: &str,
    ) -> Result<InTransaction, ApiError> {
        let waiting = std::time::Instant::now();
        let got = pool.get().await;
        crate::metrics::METRICS
            .db_pool_wait
            .with_label_values(&[if got.is_ok() { "ok" } else { "failed" }])
            .observe(waiting.elapsed().as_secs_f64());
        let client = got.map_err(|e| from_pool_error(&e, token_given, request_id))?;
        Ok(InTransaction {
            client: Some(client),
        })
    }

    fn client(&self) -> &ClientWrapper {
        // Present until `ended` or drop, both of which consume or end `self`.
        self.client
            .as_deref()
            .unwrap_or_else(|| unreachable!("used after it ended"))
    }

    /// No transaction is open (a statement was refused before BEGIN): the session is reset
    /// ([`SESSION_RESET_SQL`]) in the background, and only then does the connection go back
    /// to the pool (as PgBouncer's `server_reset_query`). A failed reset closes it instead.
    fn ended(mut self) {
        if let Some(client) = self.client.take() {
            tokio::spawn(async move {
                let resetting = InTransaction {
                    client: Some(client),
                };
                if resetting
                    .client()
                    .batch_execute(SESSION_RESET_SQL)
                    .await
                    .is_ok()
                {
                    resetting.release();
                }
            });
        }
    }

    /// Back to the pool as it is (its session is clean).
    fn release(mut self) {
        if let Some(client) = self.client.take() {
            if client.statement_cache.size() > STATEMENT_CACHE_LIMIT {
                client.statement_cache.clear();
            }
            drop(client);
        }
    }

    /// The end of a request: back to the pool only when PostgreSQL answered its COMMIT or
    /// ROLLBACK (`ended`, see [`in_step`]) and the session was reset (`reset_done`: by that
    /// very COMMIT or ROLLBACK, or by the reset sent behind it); otherwise the connection is
    /// closed.
    fn finish<T>(self, ended: &Result<T, tokio_postgres::Error>, reset_done: bool) {
        if in_step(ended) && reset_done {
            self.release();
        }
    }
}

impl Drop for InTransaction {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Detached from the pool; dropping the raw client closes the connection.
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// A read of exactly one statement (a `GET` or `HEAD` of the tables API without an estimate):
/// `BEGIN READ ONLY`, `auth.authenticate`, the statement and `COMMIT`, all
/// pipelined in ONE round trip. PostgreSQL still runs them strictly in order, inside one
/// transaction: a refused token aborts the transaction, so the statement fails without
/// running (25P02) and the token's error is the one reported; COMMIT of an aborted
/// transaction is a ROLLBACK. Committing or rolling back a read-only transaction is the same,
/// and either resets the session (`auth.authenticate` arranged it).
pub async fn read_one(
    pool: &Pool,
    token: Option<&str>,
    request_id: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, ApiError> {
    let token_given = token.is_some();
    let db_err = |e: tokio_postgres::Error| from_db_error(&e, token_given, request_id);
    let tx = InTransaction::checkout(pool, token_given, request_id).await?;
    let started = std::time::Instant::now();
    let client = tx.client();
    // Cached after a connection's first request; no transaction is open yet, so a refused
    // statement (answered by PostgreSQL) leaves the connection fit for the pool.
    let prepared = async {
        let authenticate = client.prepare_cached(AUTHENTICATE_SQL).await?;
        let statement = client.prepare_cached(sql).await?;
        Ok::<_, tokio_postgres::Error>((authenticate, statement))
    }
    .await;
    let (authenticate, statement) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            if e.as_db_error().is_some() {
                tx.ended();
            }
            return Err(db_err(e));
        }
    };
    let token_param: [&(dyn ToSql + Sync); 1] = [&token];
    let (begun, authenticated, row, ended) = tokio::join!(
        client.batch_execute("START TRANSACTION READ ONLY"),
        client.execute(&authenticate, &token_param),
        client.query_one(&statement, params),
        client.batch_execute("COMMIT"),
    );
    // As in `run_tx`: only an answered COMMIT (which reset the session) returns the
    // connection to the pool. The session reset was arranged before anything else ran:
    // BEGIN cannot fail in a way that skips authenticate and still lets COMMIT succeed.
    let cache_intact = !authenticated.as_ref().is_err_and(lost_a_prepared_statement)
        && !row.as_ref().is_err_and(lost_a_prepared_statement);
    tx.finish(&ended, begun.is_ok() && cache_intact);
    let result = begun
        .and(authenticated.map(drop))
        .and(row)
        .and_then(|row| ended.map(|()| row))
        .map_err(db_err);
    observe_transaction(started, result.is_ok());
    result
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
    F: AsyncFnOnce(&ClientWrapper) -> Result<T, TxError>,
{
    let token_given = matches!(authenticate, Some(Some(_)));
    let db_err = |e: tokio_postgres::Error| from_db_error(&e, token_given, request_id);
    let tx = InTransaction::checkout(pool, token_given, request_id).await?;
    let started = std::time::Instant::now();
    let client = tx.client();
    // A transaction without auth.authenticate is followed by the session reset, prepared
    // before the transaction (cached after a connection's first request) so that it is sent
    // behind COMMIT/ROLLBACK below without waiting for their answer.
    let reset = match authenticate {
        Some(_) => None,
        None => Some(
            client
                .prepare_cached(SESSION_RESET_SQL)
                .await
                .map_err(db_err)?,
        ),
    };
    let begin = match access {
        Access::ReadOnly => "START TRANSACTION READ ONLY",
        Access::ReadWrite => "START TRANSACTION READ WRITE",
    };
    // Pipelined: tokio-postgres sends requests in the order their futures are first polled
    // and answers them in that order, so all go out at once and run one after the other.
    // A failed BEGIN returns at once (dropping `tx` closes the connection); a
    // refused token is an ordinary outcome, rolled back below like any other error, so bad
    // tokens cannot make the server reconnect.
    let authenticated = match authenticate {
        Some(token) => {
            let statement = client
                .prepare_cached(AUTHENTICATE_SQL)
                .await
                .map_err(db_err)?;
            let params: [&(dyn ToSql + Sync); 1] = [&token];
            let (begun, authenticated) = tokio::join!(
                client.batch_execute(begin),
                client.execute(&statement, &params),
            );
            begun.map_err(db_err)?;
            authenticated.map(drop)
        }
        None => {
            client.batch_execute(begin).await.map_err(db_err)?;
            Ok(())
        }
    };
    let outcome = match authenticated {
        Ok(()) => body(client).await,
        Err(e) => Err(TxError::Db(e)),
    };
    let ending = if outcome.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    let (ended, reset_done) = match &reset {
        // auth.authenticate ran first in this transaction: its COMMIT or ROLLBACK resets the
        // session.
        None => (client.batch_execute(ending).await, true),
        Some(reset) => {
            let (ended, reset) =
                tokio::join!(client.batch_execute(ending), client.execute(reset, &[]));
            (ended, reset.is_ok())
        }
    };
    // Only a transaction that ended (COMMIT or ROLLBACK answered) with its session reset
    // returns the connection to the pool; any early return above drops `tx`, which closes the
    // connection instead.
    let cache_intact = !matches!(&outcome, Err(TxError::Db(e)) if lost_a_prepared_statement(e));
    tx.finish(&ended, reset_done && cache_intact);
    let result = match (outcome, ended) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(e)) => Err(db_err(e)),
        (Err(e), ended) => {
            if let Err(rollback) = ended {
                tracing::warn!(request_id, error = %rollback, "rollback failed");
            }
            Err(match e {
                TxError::Db(e) => db_err(e),
                TxError::Api(e) => e,
            })
        }
    };
    observe_transaction(started, result.is_ok());
    result
}

/// Records a request transaction's time in the database (`committed`: it succeeded).
fn observe_transaction(started: std::time::Instant, committed: bool) {
    crate::metrics::METRICS
        .db_transaction_duration
        .with_label_values(&[if committed { "commit" } else { "rollback" }])
        .observe(started.elapsed().as_secs_f64());
}

/// `SELECT 1` within `timeout` (connection included): the health check.
pub async fn ping(pool: &Pool, timeout: Duration) -> bool {
    let check = async {
        let client = pool.get().await.ok()?;
        client.simple_query("SELECT 1").await.ok()
    };
    matches!(tokio::time::timeout(timeout, check).await, Ok(Some(_)))
}
