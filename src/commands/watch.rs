//! `kubeprint watch`: watch every cluster, serve `/metrics`, `/status` and `/healthz` until SIGTERM/SIGINT.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use kubeprint::drift::{self, ClusterState};
use kubeprint::observe::{self, SharedObserved, WatchTiming};
use kubeprint::serve::{self, ServeState};
use tracing::{info, warn};

use super::status::{access, desired, runtime};
use super::{CommandError, ExitStatus, Printer, Result};
use crate::cli::WatchArgs;

pub fn run(args: WatchArgs, printer: &Printer) -> Result {
    let (desired, targets) = desired(&args.observe, printer)?;
    let access = access(&args.observe, targets.len())?;
    let timing = WatchTiming {
        probe_interval: Duration::from_secs(args.probe_interval.max(1)),
        probe_timeout: Duration::from_secs(args.probe_interval.clamp(1, 10)),
        watch_timeout: args.watch_timeout.max(1),
    };
    let runtime = runtime()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| CommandError {
                hint: Some("choose another `--listen ADDRESS:PORT`".into()),
                ..CommandError::environment(
                    anyhow::Error::new(e).context(format!("cannot listen on {}", args.listen)),
                )
            })?;
        let local = listener.local_addr().map_err(CommandError::environment)?;
        printer.status(&format!(
            "watching {} cluster(s); serving http://{local}/metrics",
            targets.len()
        ));

        let desired = Arc::new(desired);
        let observed = SharedObserved::default();
        let on_change = transition_logger(desired.clone(), observed.clone());
        let pool = observe::Pool::default();
        let mut tasks = tokio::task::JoinSet::new();
        for target in targets {
            tasks.spawn(observe::watch_cluster(
                access.clone(),
                pool.clone(),
                target,
                timing,
                observed.clone(),
                on_change.clone(),
            ));
        }
        let state = ServeState { desired, observed };
        serve::serve(listener, state, shutdown_signal())
            .await
            .map_err(CommandError::environment)?;
        info!("stopping the watchers");
        tasks.shutdown().await;
        printer.status("stopped");
        Ok(ExitStatus::Success)
    })
}

/// Logs each cluster's state when it changes (in-sync, drift, unknown).
fn transition_logger(
    desired: Arc<drift::Desired>,
    observed: SharedObserved,
) -> Arc<dyn Fn(&str) + Send + Sync> {
    let last: Mutex<BTreeMap<String, ClusterState>> = Mutex::new(BTreeMap::new());
    Arc::new(move |cluster: &str| {
        let Some(d) = desired.clusters.get(cluster) else {
            return;
        };
        let o = observed.cluster(cluster);
        let report = drift::drift_cluster(
            d,
            o.as_ref(),
            &desired.catalog,
            desired.policy,
            Timestamp::now(),
        );
        let mut last = last.lock().expect("state lock");
        if last.get(cluster) != Some(&report.state) {
            let findings = report.findings.len();
            match report.state {
                ClusterState::InSync => info!(
                    cluster,
                    state = report.state.as_str(),
                    "cluster state changed"
                ),
                _ => warn!(
                    cluster,
                    state = report.state.as_str(),
                    findings,
                    "cluster state changed"
                ),
            }
            last.insert(cluster.to_string(), report.state);
        }
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    info!("signal received; shutting down");
}
