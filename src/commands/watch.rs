//! `kubeprint watch`: watch every cluster, serve `/metrics`, `/status` and `/healthz` until SIGTERM/SIGINT.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use kubeprint::drift::{self, ClusterState};
use kubeprint::observe::{self, SharedObserved, WatchTiming};
use kubeprint::serve::{self, ServeState};
use tracing::{debug, info, warn};

use super::status::{access, desired, runtime};
use super::{CommandError, ExitStatus, Printer, Result};
use crate::cli::WatchArgs;

pub fn run(args: WatchArgs, printer: &Printer) -> Result {
    // First, before any descriptor is opened: as Go programs do.
    let limit = observe::fds::raise_soft_limit();
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
        let desired = Arc::new(desired);
        let observed = SharedObserved::default();
        observed.set_status(|s| s.metrics_detail = args.metrics_detail);
        let settled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let on_change = transition_logger(desired.clone(), observed.clone(), settled.clone());
        let pool = observe::Pool::default();
        let (access_for_leases, pool_for_leases) = (access.clone(), pool.clone());
        let mut watchers = observe::watch::Watchers::new(
            access,
            pool,
            timing,
            observed.clone(),
            on_change,
            limit,
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = if args.shards > 0 {
            let shards = shards(&args, &access_for_leases, &pool_for_leases).await?;
            printer.status(&format!(
                "replica {} of a fleet of {} cluster(s) in {} shard(s) (Leases in namespace {}); serving http://{local}/metrics; file descriptors: {}{}",
                shards.config().replica,
                targets.len(),
                args.shards,
                args.lease_namespace,
                fmt_limit(limit.soft),
                raised(limit),
            ));
            tokio::spawn(observe::shards::run(
                shards,
                watchers,
                targets,
                observed.clone(),
                stopped,
            ))
        } else {
            let budget = watchers.watch(&targets);
            // One line at a healthy start: what is watched, where, the descriptors.
            printer.status(&format!(
                "watching {} cluster(s); serving http://{local}/metrics; file descriptors: about {} needed of {}{}",
                budget.watched,
                budget.needed,
                fmt_limit(limit.soft),
                raised(limit),
            ));
            if let Some(problem) = &budget.problem {
                warn!(problem = %problem, "not every cluster can be watched");
                printer.status(&format!("warning: {problem}"));
            }
            let mut stopped = stopped;
            tokio::spawn(async move {
                let _ = stopped.changed().await;
                watchers.shutdown().await;
            })
        };
        tokio::spawn(start_summary(desired.clone(), observed.clone(), timing, settled));
        let state = ServeState { desired, observed };
        let served = serve::serve(listener, state, shutdown_signal()).await;
        info!("stopping the watchers");
        let _ = stop.send(true);
        let _ = worker.await;
        served.map_err(CommandError::environment)?;
        printer.status("stopped");
        Ok(ExitStatus::Success)
    })
}

/// ", soft limit raised from N" when it was.
fn raised(limit: observe::fds::Limit) -> String {
    if limit.soft > limit.soft_at_start {
        format!(
            ", soft limit raised from {}",
            fmt_limit(limit.soft_at_start)
        )
    } else {
        String::new()
    }
}

/// The Lease client of a sharded replica: its identity, the management cluster's client.
async fn shards(
    args: &WatchArgs,
    access: &observe::Access,
    pool: &observe::Pool,
) -> Result<observe::shards::Shards> {
    let replica = args
        .replica_id
        .clone()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            CommandError::bad_input(
                anyhow::anyhow!("`--shards` needs this replica's identity"),
                Some("pass `--replica-id ID` or set `POD_NAME` (the Deployment does, from the pod's name)".into()),
            )
        })?;
    let context = args
        .lease_context
        .clone()
        .or_else(|| access.current_context())
        .unwrap_or_default();
    let client = access
        .client(pool, "management", &context)
        .await
        .map_err(|e| CommandError {
            hint: Some(
                "pass `--lease-context NAME`: the kubeconfig context of the management cluster"
                    .into(),
            ),
            ..CommandError::environment(e)
        })?;
    Ok(observe::shards::Shards::new(
        observe::shards::Config {
            shards: args.shards,
            replica,
            namespace: args.lease_namespace.clone(),
            prefix: "kubeprint".into(),
            lease_duration: Duration::from_secs(args.lease_duration.max(1)),
        },
        client,
    ))
}

/// An `RLIMIT_NOFILE` value for people: `unlimited` for infinity.
fn fmt_limit(n: u64) -> String {
    if n == u64::MAX {
        "unlimited".into()
    } else {
        n.to_string()
    }
}

/// Logs each cluster's state when it changes (in-sync, drift, unknown), once the start
/// settled: until then every cluster goes from `unknown` to what it is, and those are debug
/// lines, so that the start of a large fleet logs one line ([`start_summary`]), not one per
/// cluster.
fn transition_logger(
    desired: Arc<drift::Desired>,
    observed: SharedObserved,
    settled: Arc<std::sync::atomic::AtomicBool>,
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
        if last.get(cluster) == Some(&report.state) {
            return;
        }
        let findings = report.findings.len();
        let state = report.state.as_str();
        if !settled.load(std::sync::atomic::Ordering::Relaxed) {
            debug!(cluster, state, findings, "cluster state changed");
        } else if report.state == ClusterState::InSync {
            info!(cluster, state, "cluster state changed");
        } else {
            warn!(cluster, state, findings, "cluster state changed");
        }
        last.insert(cluster.to_string(), report.state);
    })
}

/// One line once the start settled: every reported cluster known, or the staleness limit
/// passed. Names (up to ten) the clusters still unknown then.
async fn start_summary(
    desired: Arc<drift::Desired>,
    observed: SharedObserved,
    timing: WatchTiming,
    settled: Arc<std::sync::atomic::AtomicBool>,
) {
    let started = tokio::time::Instant::now();
    let patience = desired
        .policy
        .stale_after
        .unsigned_abs()
        .max(timing.probe_interval * 2);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let report = observed.report(&desired, Timestamp::now());
        let count = |s: ClusterState| report.clusters.iter().filter(|c| c.state == s).count();
        let (in_sync, drifting, unknown) = (
            count(ClusterState::InSync),
            count(ClusterState::Drift),
            count(ClusterState::Unknown),
        );
        let waited = started.elapsed();
        let first = |s: ClusterState| {
            report
                .clusters
                .iter()
                .filter(|c| c.state == s)
                .take(10)
                .map(|c| c.cluster.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        if unknown == 0 && drifting == 0 {
            info!(
                clusters = report.clusters.len(),
                in_sync,
                seconds = waited.as_secs_f64(),
                "every cluster observed, in sync"
            );
        } else if unknown == 0 {
            warn!(
                clusters = report.clusters.len(),
                in_sync,
                drift = drifting,
                first_drifting = %first(ClusterState::Drift),
                seconds = waited.as_secs_f64(),
                "every cluster observed, some drift"
            );
        } else if waited >= patience {
            warn!(
                clusters = report.clusters.len(),
                in_sync,
                drift = drifting,
                unknown,
                first_unknown = %first(ClusterState::Unknown),
                "not every cluster could be observed"
            );
        } else {
            continue;
        }
        settled.store(true, std::sync::atomic::Ordering::Relaxed);
        return;
    }
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
