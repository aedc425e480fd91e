//! The accept loop: TCP (or TLS) connections served by hyper with HTTP/1.1 (and HTTP/2 over TLS), with
//! the connection-level limits the router cannot apply, and a graceful shutdown.
//!
//! Why our own loop instead of `axum::serve`: axum's has no header read timeout, no TLS and
//! no limit on the request head. Here:
//! - `server.header_timeout_seconds` bounds the TLS handshake, the wait for a new
//!   connection's first byte ([`Deadlines`]) and the reading of each request head
//!   (hyper's `header_read_timeout`: a total deadline, so trickling one byte at a time does not
//!   extend it); the connection is then closed. Bodies are bounded by
//!   `server.request_timeout_seconds` in the router ([`crate::edge`]), and so is a client
//!   that stops reading: a write that can make no progress for that long fails and closes
//!   the connection ([`Deadlines`]; else a client that never reads held its connection and
//!   the unsent response for ever, found by a review).
//! - `server.max_header_bytes` is hyper's read buffer for HTTP/1.1 (a larger head gets 431)
//!   and the HTTP/2 header list limit. hyper answers 431 (and 400 for a malformed request
//!   line) itself, before any request exists, with an empty body and closes the connection:
//!   those two answers cannot carry the error shape or the security headers (hyper offers no
//!   hook for them), which is harmless as no browser renders them.
//! - TLS (`server.tls`): rustls with ALPN `h2`, `http/1.1`; versions from `min_version`.
//! - Idle connections: one with no request open for `server.header_timeout_seconds` is
//!   closed ([`Closing`]); a request is open until its response body is sent. HTTP/1.1 gets
//!   that from hyper's header timeout already; an HTTP/2 connection has no such deadline in
//!   hyper, and a client answering the server's keep-alive pings could otherwise hold it open
//!   for ever. It is closed gracefully (GOAWAY).
//! - Stalled bodies: a response body that has not moved for `server.request_timeout_seconds`
//!   (its client takes nothing: over HTTP/2 a stream granted no flow-control window, while
//!   other requests keep the connection busy) drops its connection ([`activity`]). At most 32
//!   HTTP/2 streams a connection (hyper's default is 200).
//! - Shutdown: once the signal future completes, the listener is closed at once (new
//!   connections are refused), every open connection is told to finish its in-flight requests
//!   and close (HTTP/1.1: after the current response; HTTP/2: GOAWAY), and the loop waits for
//!   them up to `server.shutdown_timeout_seconds`.
use crate::AppState;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

mod activity;
use activity::Activity;

/// Serves `state`'s application on `listener` until `shutdown` completes, then drains.
pub async fn serve_with_shutdown(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let server = &state.config().server;
    let tls = if server.tls.enabled {
        let (cert, key) = (
            server.tls.cert_file.as_deref().unwrap_or_default(),
            server.tls.key_file.as_deref().unwrap_or_default(),
        );
        let config = crate::tls::server_config(cert, key, server.tls.min_version())
            .map_err(|e| std::io::Error::other(format!("{}: {e}", e.key())))?;
        Some(tokio_rustls::TlsAcceptor::from(config))
    } else {
        None
    };
    let header_timeout = Duration::from_secs(server.header_timeout_seconds);
    let write_stall = Duration::from_secs(server.request_timeout_seconds);
    let shutdown_timeout = Duration::from_secs(server.shutdown_timeout_seconds);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(server.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(server.max_header_bytes).unwrap_or(u32::MAX))
        // hyper's default is 200: each stream can hold a whole response in memory.
        .max_concurrent_streams(32)
        // An HTTP/2 peer that stops answering pings is dropped.
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    // Plain-text connections speak HTTP/1.1 only: HTTP/2 is offered over TLS (ALPN), as
    // browsers use it; h2c by prior knowledge would bypass the idle and header deadlines that
    // guard HTTP/1.1 connections, and no client needs it.
    let plain_builder = Arc::new(builder.clone().http1_only());
    let builder = Arc::new(builder);
    let app = crate::app(state);
    // Told to every connection at shutdown (hyper-util's GracefulShutdown cannot be combined
    // with the idle close: its connection trait is sealed).
    let (stop, stopping) = watch::channel(false);
    // The connection tasks, so the ones still open after the shutdown timeout can be aborted.
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let activity = Activity::new();
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            // What axum's `into_make_service_with_connect_info` would record.
            request.extensions_mut().insert(ConnectInfo(peer));
            let open = requests.open_request();
            let response = app.clone().oneshot(request);
            let requests = requests.clone();
            async move {
                // Open until its body is sent (or the request is cancelled: `open` drops).
                let response = response.await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| requests.watch(body, open)))
            }
        });
        let builder = builder.clone();
        let plain_builder = plain_builder.clone();
        let stopping = stopping.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let closing = Closing {
                stopping,
                activity,
                idle_limit: header_timeout,
                stall_limit: write_stall,
            };
            let result = match tls {
                None => {
                    let stream = Deadlines::new(stream, header_timeout, write_stall);
                    let conn = plain_builder.serve_connection(TokioIo::new(stream), service);
                    closing.drive(conn, |conn| conn.graceful_shutdown()).await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                tracing::debug!(%error, %peer, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    // Idle from the end of the handshake, like the first-byte deadline.
                    closing.activity.touch();
                    let stream = Deadlines::new(stream, header_timeout, write_stall);
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    closing.drive(conn, |conn| conn.graceful_shutdown()).await
                }
            };
            match result {
                Some(Err(error)) => {
                    tracing::debug!(%error, %peer, "connection ended with an error")
                }
                None => tracing::debug!(%peer, "connection closed: a response body stalled"),
                Some(Ok(())) => {}
            }
        });
    }
    // Closing the listening socket refuses new connections from here on.
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        "shutting down: finishing in-flight requests"
    );
    let _ = stop.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(shutdown_timeout, drained)
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = shutdown_timeout.as_secs(),
            "shutdown: connections still open after server.shutdown_timeout_seconds, closing them"
        );
        connections.abort_all();
    }
    Ok(())
}

/// What ends a connection besides its peer: the server's shutdown or being idle too long
/// (shut down gracefully, then driven until its in-flight work is done), or a response body
/// that has not moved for the stall limit (dropped: its client takes nothing; see
/// [`activity`]).
struct Closing {
    stopping: watch::Receiver<bool>,
    activity: Arc<Activity>,
    idle_limit: Duration,
    stall_limit: Duration,
}

impl Closing {
    /// Drives `conn` to its end. None: it was dropped, a body having stalled.
    async fn drive<C: Future>(
        mut self,
        conn: C,
        graceful_shutdown: impl FnOnce(Pin<&mut C>),
    ) -> Option<C::Output> {
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            result = conn.as_mut() => return Some(result),
            () = self.activity.stalled_for(self.stall_limit) => return None,
            _ = self.stopping.wait_for(|stop| *stop) => {}
            () = self.activity.idle_for(self.idle_limit) => {}
        }
        graceful_shutdown(conn.as_mut());
        tokio::select! {
            result = conn => Some(result),
            () = self.activity.stalled_for(self.stall_limit) => None,
        }
    }
}

/// A stream with two deadlines: its first byte must arrive within one, and no write may
/// stall (the peer not reading) for longer than the other.
///
/// Why: hyper-util's `auto` builder first reads the start of the connection to tell HTTP/2's
/// preface from HTTP/1.1, and hyper's `header_read_timeout` only runs once hyper's HTTP/1.1
/// connection exists; a client that connects (or finishes a TLS handshake) and then sends
/// nothing would hold the connection forever. And neither hyper nor rustls bounds a write:
/// a client that stops reading a response kept the connection, and the response, for as long
/// as it liked. Neither crate has a setting for these, so this wrapper fails the first read
/// with `TimedOut` after its deadline (after the first byte it is a plain pass-through:
/// hyper's header timeout covers every later request head), and fails a write that has been
/// pending for the stall limit.
struct Deadlines<S> {
    inner: S,
    first_byte: Option<Pin<Box<tokio::time::Sleep>>>,
    write_stall_limit: Duration,
    /// Set while writes are pending: when the stall limit runs out.
    write_stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Deadlines<S> {
    fn new(inner: S, first_byte: Duration, write_stall_limit: Duration) -> Self {
        Self {
            inner,
            first_byte: Some(Box::pin(tokio::time::sleep(first_byte))),
            write_stall_limit,
            write_stalled: None,
        }
    }

    /// After a write-side poll: a stall has ended, or goes on (and may have run out).
    fn write_outcome<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.write_stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let limit = self.write_stall_limit;
                let stalled = self
                    .write_stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if stalled.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client read nothing for server.request_timeout_seconds",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadlines<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.first_byte = None;
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let expired = this
                    .first_byte
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no request within server.header_timeout_seconds",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadlines<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.write_outcome(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.write_outcome(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.write_outcome(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.write_outcome(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
