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
//! connections are served at once; more are closed as soon as they are accepted, so that
//! held connections cannot use up the file descriptors the cluster watches need.

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
    /// Connections served at once; further ones are closed as soon as accepted.
    pub max_connections: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            max_connections: 512,
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
                    "connection limit reached: closing new connections until some end"
                );
                at_limit = true;
            }
            drop(stream);
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
