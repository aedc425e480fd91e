//! Reloads the schema cache when the schema changes.
//!
//! The extension's DDL event trigger runs `pg_notify('fluxbase_schema', <command tag>)`
//! after every DDL statement. A dedicated connection (not from the pool: a pooled one would
//! be recycled, which `UNLISTEN`s, and LISTEN must outlive requests) does `LISTEN
//! fluxbase_schema`, waits for notifications, lets a burst settle ([`DEBOUNCE`]: a migration
//! is many statements) and reloads the cache once.
//!
//! Why reload after every (re)connect too: notifications sent while the connection was down
//! are lost, so the only safe assumption after a gap is that something changed. The
//! connection is retried with exponential backoff, up to [`MAX_BACKOFF`].
use super::functions::FunctionCacheHandle;
use super::schema_cache::SchemaCacheHandle;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The channel the DDL event trigger notifies.
pub const CHANNEL: &str = "fluxbase_schema";
/// How long after a notification more may arrive before the reload.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often an idle listener checks that the server it serves still exists.
const IDLE_CHECK: Duration = Duration::from_secs(30);

/// The caches one notification refreshes: tables (with their relationships) and functions.
/// Held weakly, so the listener never keeps a finished server's state alive.
pub struct Caches {
    pub schema: Weak<SchemaCacheHandle>,
    pub functions: Weak<FunctionCacheHandle>,
    /// Run after every reload: the server empties the pooled connections' prepared-statement
    /// caches, so no statement prepared against the old schema is reused.
    pub after_reload: Box<dyn Fn() + Send + Sync>,
}

impl Caches {
    fn strong_count(&self) -> usize {
        self.schema.strong_count()
    }

    fn upgrade(&self) -> Option<Strong<'_>> {
        Some(Strong {
            schema: self.schema.upgrade()?,
            functions: self.functions.upgrade()?,
            after_reload: &self.after_reload,
        })
    }
}

struct Strong<'c> {
    schema: Arc<SchemaCacheHandle>,
    functions: Arc<FunctionCacheHandle>,
    after_reload: &'c (dyn Fn() + Send + Sync),
}

impl Strong<'_> {
    async fn reload(&self, client: &tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
        self.schema.reload(client).await?;
        self.functions.reload(client).await?;
        (self.after_reload)();
        Ok(())
    }
}

/// Starts the listener task. It ends by itself once the caches are dropped (the server's
/// state is gone).
pub fn spawn(pg: tokio_postgres::Config, tls: MakeRustlsConnect, cache: Caches) {
    tokio::spawn(run(pg, tls, cache));
}

async fn run(pg: tokio_postgres::Config, tls: MakeRustlsConnect, cache: Caches) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if cache.strong_count() == 0 {
            return;
        }
        match session(&pg, &tls, &cache, &mut backoff).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "schema listener: connection lost");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: LISTEN, reload (anything may have changed while we were away),
/// then reload after every burst of notifications. `Ok` when the cache is gone; `Err` when
/// the connection failed.
async fn session(
    pg: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    cache: &Caches,
    backoff: &mut Duration,
) -> Result<(), String> {
    let (client, mut connection) = pg.connect(tls.clone()).await.map_err(|e| e.to_string())?;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    // The connection must be polled for queries to progress and for notifications to
    // arrive; this task does both and forwards the notifications. It ends with the
    // connection, which closes the channel.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) if n.channel() == CHANNEL => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::debug!(%error, "schema listener connection ended");
                    return;
                }
                None => return,
            }
        }
    });
    let result = listen_loop(&client, cache, &mut rx, backoff).await;
    driver.abort();
    result
}

async fn listen_loop(
    client: &tokio_postgres::Client,
    cache: &Caches,
    rx: &mut mpsc::UnboundedReceiver<String>,
    backoff: &mut Duration,
) -> Result<(), String> {
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| e.to_string())?;
    let Some(handle) = cache.upgrade() else {
        return Ok(());
    };
    handle.reload(client).await.map_err(|e| e.to_string())?;
    drop(handle);
    *backoff = FIRST_BACKOFF;
    tracing::info!("schema listener: listening for DDL notifications");
    loop {
        let tag = match tokio::time::timeout(IDLE_CHECK, rx.recv()).await {
            Err(_) if cache.strong_count() == 0 => return Ok(()),
            Err(_) => continue,
            Ok(None) => return Err("the connection closed".to_owned()),
            Ok(Some(tag)) => tag,
        };
        let mut burst = 1usize;
        let settle = tokio::time::sleep(DEBOUNCE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                _ = &mut settle => break,
                more = rx.recv() => match more {
                    Some(_) => burst += 1,
                    None => return Err("the connection closed".to_owned()),
                },
            }
        }
        let Some(handle) = cache.upgrade() else {
            return Ok(());
        };
        tracing::info!(command = %tag, notifications = burst, "schema changed: reloading the schema cache");
        handle.reload(client).await.map_err(|e| e.to_string())?;
    }
}
