//! The watch command's HTTP edge: `/metrics` (Prometheus), `/status` (JSON findings), `/healthz`.
//!
//! Every request judges the current observations afresh ([`drift::drift`] at the time of
//! the request), so a cluster that went quiet turns stale, then `Unknown`, without any
//! event arriving.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;

use crate::drift::{self, Desired, DriftReport};
use crate::metrics;
use crate::observe::SharedObserved;

/// What the server reads: the desired state and the live observations.
#[derive(Clone)]
pub struct ServeState {
    pub desired: Arc<Desired>,
    pub observed: SharedObserved,
}

impl ServeState {
    /// The fleet's drift now.
    pub fn report(&self) -> DriftReport {
        drift::drift(&self.desired, &self.observed.snapshot(), Timestamp::now())
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

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ServeState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics_handler(State(state): State<ServeState>) -> Response {
    let text = tokio::task::spawn_blocking(move || metrics::render(&state.report())).await;
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
    let report = state.report();
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
        .into_response()
}
