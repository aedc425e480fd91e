//! What one connection is doing, for closing it when it does nothing or stops moving: the
//! requests it has open (a request stays open until its response body is sent or dropped)
//! and, per response body, when it last moved.
//!
//! Why bodies count: a connection closed for being idle while a body is still going out cut
//! a slow but steady download (found by a review); and over HTTP/2 a client that grants a
//! stream no flow-control window keeps its body from moving while other requests keep the
//! connection busy, holding the unsent response in memory for ever (found by the same
//! review). So a body is watched on its own: one that has not moved for the stall limit
//! closes its connection.
use axum::body::{Body, Bytes};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// The most a body hands over at once: a large response (built whole) is passed on in pieces
/// of this size, so that each piece the connection takes is a sign the body moves.
const PIECE: usize = 64 * 1024;

pub struct Activity {
    open: AtomicUsize,
    changed: Mutex<Instant>,
    /// Per open response body, when it last moved.
    bodies: Mutex<HashMap<u64, Instant>>,
    next_body: AtomicU64,
}

/// One open request: open until dropped (with the response body, or when it is cancelled).
pub struct OpenRequest(Arc<Activity>);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            changed: Mutex::new(Instant::now()),
            bodies: Mutex::new(HashMap::new()),
            next_body: AtomicU64::new(0),
        })
    }

    pub fn open_request(self: &Arc<Self>) -> OpenRequest {
        self.open.fetch_add(1, Ordering::SeqCst);
        self.touch();
        OpenRequest(self.clone())
    }

    /// Now counts as the last change (e.g. the end of a TLS handshake).
    pub fn touch(&self) {
        *self.changed.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn last_change(&self) -> Instant {
        *self.changed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Completes once no request has been open for `limit`.
    pub async fn idle_for(&self, limit: Duration) {
        loop {
            let idle_since = self.last_change();
            if self.open.load(Ordering::SeqCst) == 0 && idle_since.elapsed() >= limit {
                return;
            }
            // Look again when the current quiet spell would reach the limit (or, with a
            // request open, one limit from now).
            let next = if self.open.load(Ordering::SeqCst) == 0 {
                idle_since + limit
            } else {
                Instant::now() + limit
            };
            tokio::time::sleep_until(next).await;
        }
    }

    /// Completes once some response body has not moved for `limit`.
    pub async fn stalled_for(&self, limit: Duration) {
        loop {
            let oldest = self
                .bodies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .min()
                .copied();
            match oldest {
                Some(moved) if moved.elapsed() >= limit => return,
                Some(moved) => tokio::time::sleep_until(moved + limit).await,
                None => tokio::time::sleep(limit).await,
            }
        }
    }

    fn moved(&self, body: u64) {
        if let Some(at) = self
            .bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&body)
        {
            *at = Instant::now();
        }
    }

    /// `body`, watched: it keeps `open` open until it is sent or dropped, and reports each
    /// piece it hands over.
    pub fn watch(self: &Arc<Self>, body: Body, open: OpenRequest) -> Body {
        let id = self.next_body.fetch_add(1, Ordering::Relaxed);
        self.bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Instant::now());
        Body::new(WatchedBody {
            inner: body,
            rest: Bytes::new(),
            id,
            activity: self.clone(),
            _open: open,
        })
    }
}

struct WatchedBody {
    inner: Body,
    /// What is left of a data frame larger than [`PIECE`].
    rest: Bytes,
    id: u64,
    activity: Arc<Activity>,
    _open: OpenRequest,
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        self.activity
            .bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl WatchedBody {
    fn piece(&mut self) -> Frame<Bytes> {
        let piece = self.rest.split_to(self.rest.len().min(PIECE));
        self.activity.moved(self.id);
        Frame::data(piece)
    }
}

impl HttpBody for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if !self.rest.is_empty() {
            return Poll::Ready(Some(Ok(self.piece())));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    self.rest = data;
                    Poll::Ready(Some(Ok(self.piece())))
                }
                Err(frame) => {
                    self.activity.moved(self.id);
                    Poll::Ready(Some(Ok(frame)))
                }
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let rest = self.rest.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + rest);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + rest);
        }
        hint
    }
}
