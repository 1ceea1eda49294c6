//! The watch command's HTTP edge: `/metrics` (Prometheus), `/status` (JSON findings), `/healthz`.
//!
//! Every request reads the drift at the time of the request
//! ([`SharedObserved::report`]: each cluster's cached judgement while its observation is
//! unchanged and time has not changed it, a new one otherwise), so a cluster that went
//! quiet turns stale, then `Unknown`, without any event arriving.
//!
//! The server faces a network, so it is bounded ([`Limits`]): a request's headers must
//! arrive within 10 s (which also closes idle keep-alive connections), a connection on
//! which a read or a write makes no progress for 30 s is closed, and at most 512
//! connections are served at once, so that held connections cannot use up the file
//! descriptors the cluster watches need. Past that, 32 more are answered at once and
//! closed within a second: `/healthz` with 200 (the process is alive and serving; a
//! liveness probe must not restart it because someone holds its connections), anything
//! else with 503; further ones are closed as soon as they are accepted.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use jiff::Timestamp;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tracing::{debug, warn};

use crate::drift::{Desired, DriftReport};
use crate::metrics;
use crate::observe::SharedObserved;

/// The bounds of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request's headers must arrive within this time from when the server starts
    /// waiting for them: a half-sent request, and an idle keep-alive connection, are
    /// closed after it.
    pub header_timeout: Duration,
    /// A connection on which a read or a write waits this long without progress is closed
    /// (a request body sent byte by byte, a client that does not read its response).
    pub io_timeout: Duration,
    /// Connections served at once.
    pub max_connections: u32,
    /// Connections past `max_connections` answered at once (`/healthz` 200, anything else
    /// 503) and closed within `spare_timeout`; further ones are closed as soon as accepted.
    pub spare_connections: u32,
    /// How long a spare connection may take to send its request line.
    pub spare_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            max_connections: 512,
            spare_connections: 32,
            spare_timeout: Duration::from_secs(1),
        }
    }
}

/// What the server reads: the desired state and the live observations.
#[derive(Clone)]
pub struct ServeState {
    pub desired: Arc<Desired>,
    pub observed: SharedObserved,
}

impl ServeState {
    /// The fleet's drift now.
    pub fn report(&self) -> DriftReport {
        self.observed.report(&self.desired, Timestamp::now())
    }
}

/// The routes.
pub fn router(state: ServeState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/status", get(status_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}

/// Serves until `shutdown` completes, then finishes the requests in flight; within the
/// default [`Limits`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ServeState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, Limits::default(), shutdown).await
}

/// [`serve`] within `limits`.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: ServeState,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = TowerToHyperService::new(router(state));
    let permits = Arc::new(Semaphore::new(limits.max_connections as usize));
    let spare = Arc::new(Semaphore::new(limits.spare_connections as usize));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut shutdown = pin!(shutdown);
    // Whether the last connection was refused for the limit (logged once per episode).
    let mut at_limit = false;
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to be freed.
                    warn!(error = %e, "cannot accept a connection; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if !at_limit {
                warn!(
                    limit = limits.max_connections,
                    "connection limit reached: answering /healthz only until some end"
                );
                at_limit = true;
            }
            if let Ok(permit) = spare.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    let _permit = permit;
                    answer_at_limit(stream, limits.spare_timeout).await;
                });
            }
            continue;
        };
        at_limit = false;
        let service = service.clone();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let io = TokioIo::new(Deadlines::new(stream, limits.io_timeout));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            let mut conn = pin!(builder.serve_connection(io, service));
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = stopping.changed() => {
                    // Finishes the request in flight (within the timeouts), then closes.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "connection closed");
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a permit until it ends.
    let _ = permits.acquire_many(limits.max_connections).await;
    Ok(())
}

/// A connection past the limit: `/healthz` is answered (the process is alive), anything
/// else is told to come back (503), and the connection is closed, all within `wait` per
/// step, so that it holds its descriptor for a moment only.
async fn answer_at_limit(mut stream: TcpStream, wait: Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = [0u8; 256];
    let mut len = 0;
    let request_line = tokio::time::timeout(wait, async {
        while len < head.len() && !head[..len].contains(&b'\n') {
            match stream.read(&mut head[len..]).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => len += n,
            }
        }
        true
    })
    .await;
    let line = &head[..len];
    let healthz = matches!(request_line, Ok(true))
        && (line.starts_with(b"GET /healthz ") || line.starts_with(b"GET /healthz?"));
    let response: &[u8] = if healthz {
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n"
    } else {
        b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    };
    let _ = tokio::time::timeout(wait, async {
        let _ = stream.write_all(response).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Errors of one connection that leave the listener usable.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// A TCP stream whose reads and writes fail with `TimedOut` after waiting `timeout`
/// without progress.
struct Deadlines {
    inner: TcpStream,
    timeout: Duration,
    read: Option<Pin<Box<Sleep>>>,
    write: Option<Pin<Box<Sleep>>>,
}

impl Deadlines {
    fn new(inner: TcpStream, timeout: Duration) -> Self {
        Deadlines {
            inner,
            timeout,
            read: None,
            write: None,
        }
    }
}

/// After an operation returned `Pending`: the wait goes on, or has lasted `timeout`.
fn waited<T>(
    deadline: &mut Option<Pin<Box<Sleep>>>,
    timeout: Duration,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<T>> {
    let sleep = deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
    match sleep.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no progress for {} s", timeout.as_secs()),
        ))),
        Poll::Pending => Poll::Pending,
    }
}

/// Passes a read or write result on, and clears or keeps its deadline.
fn progressed<T>(
    poll: Poll<std::io::Result<T>>,
    deadline: &mut Option<Pin<Box<Sleep>>>,
    timeout: Duration,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<T>> {
    match poll {
        Poll::Ready(r) => {
            *deadline = None;
            Poll::Ready(r)
        }
        Poll::Pending => waited(deadline, timeout, cx),
    }
}

impl AsyncRead for Deadlines {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        progressed(poll, &mut this.read, this.timeout, cx)
    }
}

impl AsyncWrite for Deadlines {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        progressed(poll, &mut this.write, this.timeout, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        progressed(poll, &mut this.write, this.timeout, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        progressed(poll, &mut this.write, this.timeout, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        progressed(poll, &mut this.write, this.timeout, cx)
    }
}

async fn metrics_handler(State(state): State<ServeState>) -> Response {
    let text = tokio::task::spawn_blocking(move || {
        metrics::render_with(&state.report(), state.observed.metrics_detail())
    })
    .await;
    match text {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn status_handler(State(state): State<ServeState>) -> Response {
    let mut report = serde_json::to_value(state.report()).unwrap_or_default();
    if let Some(map) = report.as_object_mut() {
        map.insert("watcher".into(), state.observed.status_json());
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
        .into_response()
}
