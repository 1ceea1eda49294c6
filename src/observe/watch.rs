//! Watchers: one task per cluster keeps its observation current (Applications, Nodes, a liveness probe) in [`SharedObserved`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::watcher;
use tracing::{Instrument, debug, warn};

use super::access::Access;
use super::argo::{Application, observed_app};
use super::nodes::observed_node;
use super::pool::Pool;
use super::{Target, error_chain};
use crate::drift::ObservedCluster;

/// The observations of the fleet, shared between the watchers and the HTTP server.
#[derive(Debug, Clone, Default)]
pub struct SharedObserved(Arc<Mutex<BTreeMap<String, Watched>>>);

/// A watched cluster: what was seen, and the last error of each source (applications,
/// nodes, probe); the cluster counts as failing while any of them fails.
#[derive(Debug, Clone, Default)]
struct Watched {
    observed: ObservedCluster,
    errors: [Option<String>; 3],
}

impl SharedObserved {
    /// A copy of the current observations, for [`crate::drift::drift`].
    pub fn snapshot(&self) -> crate::drift::Observed {
        let all = self.0.lock().expect("observations lock");
        crate::drift::Observed {
            clusters: all
                .iter()
                .map(|(k, w)| (k.clone(), w.observed.clone()))
                .collect(),
        }
    }

    /// A copy of one cluster's observation.
    pub fn cluster(&self, name: &str) -> Option<ObservedCluster> {
        self.0
            .lock()
            .expect("observations lock")
            .get(name)
            .map(|w| w.observed.clone())
    }

    fn update(
        &self,
        cluster: &str,
        source: Source,
        f: impl FnOnce(&mut ObservedCluster),
        error: Option<String>,
    ) {
        let mut all = self.0.lock().expect("observations lock");
        let entry = all.entry(cluster.to_string()).or_default();
        f(&mut entry.observed);
        let ok = error.is_none();
        entry.errors[source as usize] = error;
        if ok {
            entry.observed.at = Some(Timestamp::now());
        }
        entry.observed.error = entry.errors.iter().flatten().next().cloned();
    }
}

/// Timing of a watched cluster.
#[derive(Debug, Clone, Copy)]
pub struct WatchTiming {
    /// How often the API is probed (`GET /version`) to tell a quiet cluster from a dead one.
    pub probe_interval: Duration,
    /// How long a probe may take.
    pub probe_timeout: Duration,
    /// `timeoutSeconds` of each watch request: the server ends the watch after it and the
    /// watcher resumes from the last resourceVersion.
    pub watch_timeout: u32,
}

impl Default for WatchTiming {
    fn default() -> Self {
        WatchTiming {
            probe_interval: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(10),
            watch_timeout: 290,
        }
    }
}

#[derive(Clone, Copy)]
enum Source {
    Apps = 0,
    Nodes = 1,
    Probe = 2,
}

/// Watches one cluster until the task is dropped: Applications and Nodes through
/// `kube::runtime::watcher` (with back-off; a `410 Gone` restarts with a re-list) and a
/// liveness probe. Every change lands in `shared[target.cluster]`; `on_change` is called
/// after each (the watch command uses it to log state transitions).
pub async fn watch_cluster(
    access: Access,
    pool: Pool,
    target: Target,
    timing: WatchTiming,
    shared: SharedObserved,
    on_change: Arc<dyn Fn(&str) + Send + Sync>,
) {
    let cluster = target.cluster.clone();
    let span = tracing::info_span!("cluster", cluster = %cluster);
    async move {
        let client = loop {
            match access.client(&pool, &cluster, &target.context).await {
                Ok(c) => break c,
                Err(err) => {
                    let msg = error_chain(&err);
                    warn!(error = %msg, "no client for the cluster; retrying in 60s");
                    shared.update(&cluster, Source::Probe, |_| {}, Some(msg));
                    on_change(&cluster);
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            }
        };
        let config = watcher::Config::default().timeout(timing.watch_timeout);
        let apps_api: Api<Application> = Api::namespaced(client.clone(), &target.argocd_namespace);
        let nodes_api: Api<Node> = Api::all(client.clone());

        let apps = follow(
            apps_api,
            config.clone(),
            FollowCtx {
                pool: pool.clone(),
                shared: shared.clone(),
                cluster: cluster.clone(),
                source: Source::Apps,
                on_change: on_change.clone(),
            },
            |a: &Application| Some((a.metadata.name.clone()?, observed_app(a))),
            |o: &mut ObservedCluster| (&mut o.apps, &mut o.apps_listed),
        );
        let nodes = follow(
            nodes_api,
            config,
            FollowCtx {
                pool: pool.clone(),
                shared: shared.clone(),
                cluster: cluster.clone(),
                source: Source::Nodes,
                on_change: on_change.clone(),
            },
            |n: &Node| Some((n.metadata.name.clone()?, observed_node(n))),
            |o: &mut ObservedCluster| (&mut o.nodes, &mut o.nodes_listed),
        );
        // The first probe opens the cluster's connection before the watches start, so that
        // over HTTP/2 they share it rather than race to open one each.
        probe(&client, timing, &shared, &cluster, on_change.as_ref()).await;
        let probes = {
            let (shared, cluster, on_change) = (shared.clone(), cluster.clone(), on_change.clone());
            async move {
                loop {
                    tokio::time::sleep(timing.probe_interval).await;
                    probe(&client, timing, &shared, &cluster, on_change.as_ref()).await;
                }
            }
        };
        debug!("watching");
        futures::join!(apps, nodes, probes);
    }
    .instrument(span)
    .await
}

/// One liveness probe (`GET /version`) within the probe timeout, recorded as the probe's
/// state of the cluster.
async fn probe(
    client: &kube::Client,
    timing: WatchTiming,
    shared: &SharedObserved,
    cluster: &str,
    on_change: &(dyn Fn(&str) + Send + Sync),
) {
    let result = tokio::time::timeout(timing.probe_timeout, client.apiserver_version()).await;
    let error = match result {
        Ok(Ok(_)) => None,
        Ok(Err(err)) => Some(format!("probing the API: {}", error_chain(&err))),
        Err(_) => Some(format!(
            "probing the API: no answer within {}s",
            timing.probe_timeout.as_secs()
        )),
    };
    if let Some(e) = &error {
        debug!(error = %e, "probe failed");
    }
    shared.update(cluster, Source::Probe, |_| {}, error);
    on_change(cluster);
}

struct FollowCtx {
    pool: Pool,
    shared: SharedObserved,
    cluster: String,
    source: Source,
    on_change: Arc<dyn Fn(&str) + Send + Sync>,
}

/// Follows one kind with `kube::runtime::watcher` into the shared observations.
///
/// A `410 Gone` is left to the watcher, which re-lists. Any other error marks the cluster
/// failing and restarts the watcher after a back-off (0.5 s doubling to 30 s, reset on
/// success): the restart lists again, and only that list (not a silent resumed watch)
/// clears the error, so a cluster is known again only once it was really read.
async fn follow<K, V>(
    api: Api<K>,
    config: watcher::Config,
    ctx: FollowCtx,
    convert: impl Fn(&K) -> Option<(String, V)>,
    slot: impl Fn(&mut ObservedCluster) -> (&mut BTreeMap<String, V>, &mut bool),
) where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let what = match ctx.source {
        Source::Apps => "Argo CD applications",
        _ => "nodes",
    };
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut stream = std::pin::pin!(watcher(api.clone(), config.clone()));
        let mut pending: BTreeMap<String, V> = BTreeMap::new();
        // Lists of a whole fleet starting together would hold every response body at
        // once: a few lists run at a time (see `Pool::list_permit`), each until its InitDone.
        let mut permit = Some(ctx.pool.list_permit().await);
        while let Some(event) = stream.next().await {
            if matches!(event, Ok(watcher::Event::InitDone) | Err(_)) {
                drop(permit.take());
            }
            match event {
                // Sent before the list is even requested: proves nothing about the cluster.
                Ok(watcher::Event::Init) => {
                    pending.clear();
                    continue;
                }
                Ok(event) => {
                    backoff = Duration::from_millis(500);
                    ctx.shared.update(
                        &ctx.cluster,
                        ctx.source,
                        |o| {
                            let (map, listed) = slot(o);
                            apply_event(event, &mut pending, map, listed, &convert)
                        },
                        None,
                    );
                }
                Err(err) if is_gone(&err) => {
                    debug!(what, "watch expired (410 Gone); re-listing");
                    continue;
                }
                Err(err) => {
                    let msg = format!("watching {what}: {}", error_chain(&err));
                    warn!(error = %msg, retry_in_ms = backoff.as_millis() as u64, "watch failed");
                    ctx.shared
                        .update(&ctx.cluster, ctx.source, |_| {}, Some(msg));
                    (ctx.on_change)(&ctx.cluster);
                    break;
                }
            }
            (ctx.on_change)(&ctx.cluster);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// `410 Gone`: the resourceVersion expired; the watcher re-lists, nothing failed.
fn is_gone(err: &watcher::Error) -> bool {
    matches!(err, watcher::Error::WatchError(status) if status.code == 410)
}

/// Applies one watcher event to a map of observed objects; `Init`..`InitDone` replace the
/// whole map at once, so a re-list after `410 Gone` drops objects deleted meanwhile.
fn apply_event<K, V>(
    event: watcher::Event<K>,
    pending: &mut BTreeMap<String, V>,
    map: &mut BTreeMap<String, V>,
    listed: &mut bool,
    convert: &impl Fn(&K) -> Option<(String, V)>,
) {
    match event {
        watcher::Event::Init => pending.clear(),
        watcher::Event::InitApply(k) => {
            if let Some((name, v)) = convert(&k) {
                pending.insert(name, v);
            }
        }
        watcher::Event::InitDone => {
            *map = std::mem::take(pending);
            *listed = true;
        }
        watcher::Event::Apply(k) => {
            if let Some((name, v)) = convert(&k) {
                map.insert(name, v);
            }
        }
        watcher::Event::Delete(k) => {
            if let Some((name, _)) = convert(&k) {
                map.remove(&name);
            }
        }
    }
}
