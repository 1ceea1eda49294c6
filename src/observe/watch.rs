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

/// The observations of the fleet, shared between the watchers and the HTTP server, and
/// what the watcher says of itself on `/status` (descriptors, shards).
#[derive(Debug, Clone, Default)]
pub struct SharedObserved {
    clusters: Arc<Mutex<BTreeMap<String, Watched>>>,
    status: Arc<Mutex<WatcherStatus>>,
    /// Each cluster's last judgement, served again while its observation is unchanged
    /// and time has not changed it (see [`SharedObserved::report`]).
    judged: Arc<Mutex<BTreeMap<String, Judged>>>,
}

/// Every change of an observation takes the next number: a cached judgement is current
/// while it carries the number of the observation it judged. Numbers are never reused
/// (a cluster forgotten and watched again starts anew), and 0 is "not observed".
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_generation() -> u64 {
    GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A cluster's judgement, and what it holds for.
#[derive(Debug, Clone)]
struct Judged {
    /// The [`Desired`](crate::drift::Desired) it judged against (its address: the watcher
    /// keeps one for its lifetime).
    desired: usize,
    /// The generation of the observation it judged (0: none).
    generation: u64,
    /// Until when time alone leaves it unchanged ([`crate::drift::judged_until`]).
    until: Timestamp,
    report: crate::drift::ClusterReport,
}

/// What `/status` says of the watcher beside the report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WatcherStatus {
    /// The descriptor budget: limits, what the fleet needs, how many clusters are watched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub descriptors: Option<super::fds::Budget>,
    /// Descriptors open when `/status` was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_descriptors: Option<u64>,
    /// Sharding: this replica, its shards, and the owner of every cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<serde_json::Value>,
    /// The clusters this process reports on (its shards' clusters); `None`: all of them.
    #[serde(skip)]
    pub scope: Option<std::collections::BTreeSet<String>>,
    /// Which clusters get a series per application and per node on `/metrics`.
    #[serde(skip)]
    pub metrics_detail: crate::metrics::Detail,
}

/// A watched cluster: what was seen, and the last error of each source (applications,
/// nodes, probe); the cluster counts as failing while any of them fails.
#[derive(Debug, Clone, Default)]
struct Watched {
    observed: ObservedCluster,
    errors: [Option<String>; 3],
    /// Taken from [`next_generation`] on every change of `observed` other than a
    /// successful probe's new `at`.
    generation: u64,
}

impl SharedObserved {
    /// A copy of the current observations, for [`crate::drift::drift`].
    pub fn snapshot(&self) -> crate::drift::Observed {
        let all = self.clusters.lock().expect("observations lock");
        crate::drift::Observed {
            clusters: all
                .iter()
                .map(|(k, w)| (k.clone(), w.observed.clone()))
                .collect(),
        }
    }

    /// The drift of the clusters this process reports on (all of `desired`, or those of
    /// its shards), at `now`.
    ///
    /// A cluster is judged again only when its observation changed since its last
    /// judgement, or when time alone changes it ([`crate::drift::judged_until`]: the
    /// staleness limit, a lag's wording, the date); otherwise its cached report is served
    /// with its observation age brought to `now`. So a scrape of a large fleet costs the
    /// clusters that changed, and a cluster that goes quiet still turns `Unknown` on time.
    pub fn report(
        &self,
        desired: &crate::drift::Desired,
        now: Timestamp,
    ) -> crate::drift::DriftReport {
        let scope = self.status.lock().expect("status lock").scope.clone();
        let desired_id = std::ptr::from_ref(desired) as usize;
        let in_scope: Vec<&crate::drift::DesiredCluster> = desired
            .clusters
            .values()
            .filter(|d| scope.as_ref().is_none_or(|s| s.contains(&d.name)))
            .collect();
        // What each cluster's observation is now: (generation, at).
        let current: Vec<(u64, Option<Timestamp>)> = {
            let all = self.clusters.lock().expect("observations lock");
            in_scope
                .iter()
                .map(|d| {
                    all.get(&d.name)
                        .map_or((0, None), |w| (w.generation, w.observed.at))
                })
                .collect()
        };
        let mut reports: Vec<Option<crate::drift::ClusterReport>> = {
            let judged = self.judged.lock().expect("judgements lock");
            in_scope
                .iter()
                .zip(&current)
                .map(|(d, &(generation, at))| {
                    let j = judged.get(&d.name)?;
                    let current =
                        j.desired == desired_id && j.generation == generation && now < j.until;
                    current.then(|| {
                        let mut report = j.report.clone();
                        report.observation_age_seconds =
                            at.map(|at| now.duration_since(at).as_secs());
                        report
                    })
                })
                .collect()
        };
        let stale: Vec<usize> = (0..in_scope.len())
            .filter(|&i| reports[i].is_none())
            .collect();
        if !stale.is_empty() {
            let observations: Vec<(u64, Option<ObservedCluster>)> = {
                let all = self.clusters.lock().expect("observations lock");
                stale
                    .iter()
                    .map(|&i| {
                        all.get(&in_scope[i].name)
                            .map_or((0, None), |w| (w.generation, Some(w.observed.clone())))
                    })
                    .collect()
            };
            let mut fresh = Vec::with_capacity(stale.len());
            for (&i, (generation, observed)) in stale.iter().zip(observations) {
                let d = in_scope[i];
                let report = crate::drift::drift_cluster(
                    d,
                    observed.as_ref(),
                    &desired.catalog,
                    desired.policy,
                    now,
                );
                let until =
                    crate::drift::judged_until(d, observed.as_ref(), desired.policy, now, &report);
                fresh.push((
                    d.name.clone(),
                    Judged {
                        desired: desired_id,
                        generation,
                        until,
                        report: report.clone(),
                    },
                ));
                reports[i] = Some(report);
            }
            let mut judged = self.judged.lock().expect("judgements lock");
            for (name, j) in fresh {
                judged.insert(name, j);
            }
        }
        let clusters = reports
            .into_iter()
            .map(|r| r.expect("every cluster in scope was judged"))
            .collect();
        crate::drift::DriftReport { at: now, clusters }
    }

    /// Changes what the watcher says of itself.
    pub fn set_status(&self, f: impl FnOnce(&mut WatcherStatus)) {
        f(&mut self.status.lock().expect("status lock"));
    }

    /// The clusters this process reports on (`None`: every cluster of the fleet).
    pub fn scope(&self) -> Option<std::collections::BTreeSet<String>> {
        self.status.lock().expect("status lock").scope.clone()
    }

    /// Which clusters get a series per application and per node on `/metrics`.
    pub fn metrics_detail(&self) -> crate::metrics::Detail {
        self.status.lock().expect("status lock").metrics_detail
    }

    /// What the watcher says of itself, as JSON for `/status`.
    pub fn status_json(&self) -> serde_json::Value {
        let mut status = self.status.lock().expect("status lock").clone();
        if status.descriptors.is_some() {
            status.open_descriptors = super::fds::open_now();
        }
        serde_json::to_value(&status).unwrap_or_default()
    }

    /// Marks a cluster as not watched, for `reason` (it reads `Unknown` with it).
    pub fn not_watched(&self, cluster: &str, reason: &str) {
        self.update(cluster, Source::Probe, |_| {}, Some(reason.to_string()));
    }

    /// Forgets a cluster (its shard moved to another replica).
    pub fn forget(&self, cluster: &str) {
        self.clusters
            .lock()
            .expect("observations lock")
            .remove(cluster);
    }

    /// A copy of one cluster's observation.
    pub fn cluster(&self, name: &str) -> Option<ObservedCluster> {
        self.clusters
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
        let mut all = self.clusters.lock().expect("observations lock");
        let entry = all.entry(cluster.to_string()).or_default();
        let (had_at, had_error) = (entry.observed.at.is_some(), entry.observed.error.clone());
        f(&mut entry.observed);
        let ok = error.is_none();
        entry.errors[source as usize] = error;
        if ok {
            entry.observed.at = Some(Timestamp::now());
        }
        entry.observed.error = entry.errors.iter().flatten().next().cloned();
        // A probe that only says "still there" moves `at` forward: the judgement of the
        // older `at` turns stale earlier, never later, so it need not be judged again.
        let only_newer = matches!(source, Source::Probe)
            && had_at
            && entry.observed.at.is_some()
            && had_error == entry.observed.error;
        if !only_newer || entry.generation == 0 {
            entry.generation = next_generation();
        }
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
    /// A liveness probe: it changes the observation's `at` and errors, never its objects.
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

/// The watchers of one process: a task per watched cluster, started and stopped as the
/// set of clusters to watch changes (a shard gained or lost), within the descriptor budget.
pub struct Watchers {
    access: Access,
    pool: Pool,
    timing: WatchTiming,
    shared: SharedObserved,
    on_change: Arc<dyn Fn(&str) + Send + Sync>,
    limit: super::fds::Limit,
    running: BTreeMap<String, tokio::task::AbortHandle>,
    tasks: tokio::task::JoinSet<()>,
}

impl Watchers {
    pub fn new(
        access: Access,
        pool: Pool,
        timing: WatchTiming,
        shared: SharedObserved,
        on_change: Arc<dyn Fn(&str) + Send + Sync>,
        limit: super::fds::Limit,
    ) -> Watchers {
        Watchers {
            access,
            pool,
            timing,
            shared,
            on_change,
            limit,
            running: BTreeMap::new(),
            tasks: tokio::task::JoinSet::new(),
        }
    }

    /// Watches exactly `targets` (in their order, as many as the descriptor budget allows):
    /// stops the watchers of clusters no longer there and forgets what they saw, starts the
    /// new ones, and marks those over the budget not watched, with the reason. Returns the
    /// budget, which `/status` shows too.
    pub fn watch(&mut self, targets: &[Target]) -> super::fds::Budget {
        let transports: Vec<super::fds::Transport> = targets
            .iter()
            .map(|t| {
                let url = self.access.server_url(&t.context).unwrap_or_default();
                super::fds::Transport::of(&url, self.pool.http2())
            })
            .collect();
        let budget = super::fds::Budget::plan(self.limit, &transports);
        let keep: std::collections::BTreeSet<&str> = targets[..budget.watched]
            .iter()
            .map(|t| t.cluster.as_str())
            .collect();
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|c| !keep.contains(c.as_str()))
            .cloned()
            .collect();
        for cluster in gone {
            if let Some(task) = self.running.remove(&cluster) {
                task.abort();
            }
            self.shared.forget(&cluster);
        }
        for target in &targets[..budget.watched] {
            if self.running.contains_key(&target.cluster) {
                continue;
            }
            let task = self.tasks.spawn(watch_cluster(
                self.access.clone(),
                self.pool.clone(),
                target.clone(),
                self.timing,
                self.shared.clone(),
                self.on_change.clone(),
            ));
            self.running.insert(target.cluster.clone(), task);
        }
        if let Some(problem) = &budget.problem {
            for target in &targets[budget.watched..] {
                self.shared
                    .not_watched(&target.cluster, &format!("not watched: {problem}"));
            }
        }
        let scope = targets.iter().map(|t| t.cluster.clone()).collect();
        let status = budget.clone();
        self.shared.set_status(|s| {
            s.descriptors = Some(status);
            s.scope = Some(scope);
        });
        // Reap the tasks that were aborted.
        while self.tasks.try_join_next().is_some() {}
        budget
    }

    /// The clusters watched now.
    pub fn running(&self) -> impl Iterator<Item = &str> {
        self.running.keys().map(String::as_str)
    }

    /// Stops every watcher.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}
