//! Sharding the fleet over replicas with `coordination.k8s.io/v1` Leases: a stable hash of the cluster name picks its shard, a Lease per shard says which replica watches it.
//!
//! Each replica renews a Lease of its own (`<prefix>-replica-<id>`) so that the others know
//! it is alive, and holds the Leases (`<prefix>-shard-<i>`) of the shards that rendezvous
//! hashing gives it among the live replicas: a shard goes to the replica with the highest
//! `sha256(shard, replica)`, so a replica that joins or leaves moves only its share. A
//! replica takes a shard whose Lease is free or expired (its `renewTime` plus
//! `leaseDurationSeconds` passed), renews the ones it holds, releases those that now
//! belong to another live replica, and releases all on SIGTERM. Every write is an update
//! with the `resourceVersion` read (a create for a Lease not there): of two replicas
//! racing, the API server lets one win (409 Conflict for the other).
//!
//! A replica stops watching a shard as soon as it sees another holder, and at the latest
//! when its own hold runs out unrenewed (it could not reach the management cluster), which
//! is when another replica may take it: a cluster is never watched twice for longer than
//! the time a replica needs to notice, and never left unwatched longer than a lease
//! duration plus one renewal round while any replica lives.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use serde::Serialize;
use tracing::{debug, info, warn};

/// The shard of a cluster among `shards`: the first eight bytes of `sha256(name)`, modulo.
/// Stable across replicas, restarts and versions.
pub fn shard_of(cluster: &str, shards: u32) -> u32 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(cluster.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(shards.max(1))) as u32
}

/// The replica that shard `shard` prefers among `live` (rendezvous hashing).
pub fn preferred(shard: u32, live: &BTreeSet<String>) -> Option<&str> {
    use sha2::Digest as _;
    live.iter()
        .max_by_key(|replica| {
            let digest = sha2::Sha256::digest(format!("{shard}/{replica}").as_bytes());
            let mut first = [0u8; 8];
            first.copy_from_slice(&digest[..8]);
            (u64::from_be_bytes(first), (*replica).clone())
        })
        .map(String::as_str)
}

/// How a sharded replica runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// How many shards the fleet is split into.
    pub shards: u32,
    /// This replica's identity (`--replica-id`, else `POD_NAME`).
    pub replica: String,
    /// Where the Leases are, in the management cluster.
    pub namespace: String,
    /// Lease names start with this (`kubeprint` -> `kubeprint-shard-0`).
    pub prefix: String,
    /// `leaseDurationSeconds`; Leases are renewed three times per duration.
    pub lease_duration: Duration,
}

impl Config {
    fn shard_lease(&self, shard: u32) -> String {
        format!("{}-shard-{shard}", self.prefix)
    }

    fn replica_lease(&self, replica: &str) -> String {
        format!("{}-replica-{replica}", self.prefix)
    }

    fn replica_prefix(&self) -> String {
        format!("{}-replica-", self.prefix)
    }

    fn renew_every(&self) -> Duration {
        self.lease_duration / 3
    }
}

/// What one round read of the Leases: who holds each shard, who is alive.
#[derive(Debug, Clone, Default, Serialize)]
pub struct View {
    /// The replica whose `/status` this is.
    pub replica: String,
    pub shards: u32,
    /// The live replicas (unexpired replica Leases).
    pub replicas: BTreeSet<String>,
    /// The holder of each shard, `None` when free or expired.
    pub holders: BTreeMap<u32, Option<String>>,
    /// The shards this replica watches.
    pub owned: BTreeSet<u32>,
}

impl View {
    /// Which replica watches each cluster (`None`: nobody now), for `/status`.
    pub fn owners(
        &self,
        clusters: impl Iterator<Item = String>,
    ) -> BTreeMap<String, Option<String>> {
        clusters
            .map(|c| {
                let owner = self
                    .holders
                    .get(&shard_of(&c, self.shards))
                    .cloned()
                    .flatten();
                (c, owner)
            })
            .collect()
    }
}

/// A Lease as read: holder, when it runs out, and the resourceVersion to update it with.
#[derive(Debug, Clone)]
struct Held {
    lease: Lease,
    holder: Option<String>,
    expires: Option<Timestamp>,
}

impl Held {
    fn of(lease: Lease) -> Held {
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.filter(|h| !h.is_empty());
        let expires = match (
            spec.renew_time.or(spec.acquire_time),
            spec.lease_duration_seconds,
        ) {
            (Some(at), Some(secs)) => {
                Some(from_micro(&at) + jiff::SignedDuration::from_secs(i64::from(secs)))
            }
            _ => None,
        };
        Held {
            lease,
            holder,
            expires,
        }
    }

    /// The holder, if the hold has not run out at `now`.
    fn live_holder(&self, now: Timestamp) -> Option<&str> {
        match (&self.holder, self.expires) {
            (Some(h), Some(until)) if until > now => Some(h),
            _ => None,
        }
    }
}

/// Why a round failed (the management cluster's API).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("listing the Leases in namespace `{namespace}`")]
    List {
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

/// The Lease client of one replica, and what it holds.
pub struct Shards {
    config: Config,
    api: Api<Lease>,
    /// The shards held, with the time each hold runs out unless renewed.
    held: BTreeMap<u32, Timestamp>,
}

impl Shards {
    pub fn new(config: Config, client: kube::Client) -> Shards {
        let api = Api::namespaced(client, &config.namespace);
        Shards {
            config,
            api,
            held: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The shards whose hold has not run out at `now`: the ones to watch.
    pub fn owned(&self, now: Timestamp) -> BTreeSet<u32> {
        self.held
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(s, _)| *s)
            .collect()
    }

    /// How long to wait between rounds.
    pub fn renew_every(&self) -> Duration {
        self.config.renew_every()
    }

    /// One round: renew this replica's own Lease, read every Lease, then take, renew or
    /// release each shard. On an API failure the holds are kept until they run out.
    pub async fn round(&mut self) -> Result<View, Error> {
        let now = Timestamp::now();
        if let Err(err) = self.heartbeat(now).await {
            debug!(error = %super::error_chain(&err), "renewing the replica Lease failed");
        }
        let list = self
            .api
            .list(&Default::default())
            .await
            .map_err(|source| Error::List {
                namespace: self.config.namespace.clone(),
                source,
            })?;
        let mut leases: BTreeMap<String, Held> = BTreeMap::new();
        for lease in list.items {
            if let Some(name) = lease.metadata.name.clone() {
                leases.insert(name, Held::of(lease));
            }
        }
        let prefix = self.config.replica_prefix();
        let mut live: BTreeSet<String> = leases
            .iter()
            .filter(|(name, _)| name.starts_with(&prefix))
            .filter_map(|(_, held)| held.live_holder(now).map(str::to_string))
            .collect();
        live.insert(self.config.replica.clone());

        let mut view = View {
            replica: self.config.replica.clone(),
            shards: self.config.shards,
            replicas: live.clone(),
            ..Default::default()
        };
        for shard in 0..self.config.shards {
            let name = self.config.shard_lease(shard);
            let held = leases.get(&name);
            let holder = held.and_then(|h| h.live_holder(now)).map(str::to_string);
            let mine = preferred(shard, &live) == Some(self.config.replica.as_str());
            let me = self.config.replica.clone();
            let me = me.as_str();
            let outcome = match (held, holder.as_deref()) {
                // Free, expired or never created: the preferred replica takes it; any
                // replica does once it has stayed free for a whole lease duration (the
                // preferred one is gone but not yet expired in everyone's view).
                (None, _) if mine => self.create(shard, now).await,
                (Some(h), None) if mine || free_for_long(h, now, self.config.lease_duration) => {
                    self.update(shard, h, Some(me), now).await
                }
                // Ours: renew, or hand over to the replica it prefers now.
                (Some(h), Some(holder)) if holder == me => {
                    if mine {
                        self.update(shard, h, Some(me), now).await
                    } else {
                        self.release(shard, h).await;
                        None
                    }
                }
                (_, other) => {
                    // Another replica's (or not ours to take yet).
                    self.held.remove(&shard);
                    other.map(str::to_string)
                }
            };
            view.holders.insert(shard, outcome);
        }
        view.owned = self.owned(now);
        Ok(view)
    }

    /// Releases every shard held (SIGTERM): the others take them at their next round.
    pub async fn release_all(&mut self) {
        let held: Vec<u32> = self.held.keys().copied().collect();
        for shard in held {
            if let Ok(lease) = self.api.get(&self.config.shard_lease(shard)).await {
                let h = Held::of(lease);
                if h.holder.as_deref() == Some(self.config.replica.as_str()) {
                    self.release(shard, &h).await;
                }
            }
        }
        self.held.clear();
        let own = self.config.replica_lease(&self.config.replica);
        if let Ok(lease) = self.api.get(&own).await {
            let mut lease = lease;
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
            }
            let _ = self.api.replace(&own, &PostParams::default(), &lease).await;
        }
        info!(replica = %self.config.replica, "released every shard");
    }

    /// Renews (or creates) this replica's own Lease: the proof that it is alive.
    async fn heartbeat(&self, now: Timestamp) -> Result<(), kube::Error> {
        let name = self.config.replica_lease(&self.config.replica);
        match self.api.get_opt(&name).await? {
            Some(mut lease) => {
                lease.spec = Some(self.spec(now, lease.spec.as_ref(), true));
                self.api
                    .replace(&name, &PostParams::default(), &lease)
                    .await?;
            }
            None => {
                self.api
                    .create(&PostParams::default(), &self.new_lease(&name, now))
                    .await?;
            }
        }
        Ok(())
    }

    fn spec(&self, now: Timestamp, old: Option<&LeaseSpec>, keep_acquired: bool) -> LeaseSpec {
        let old = old.cloned().unwrap_or_default();
        let same_holder = old.holder_identity.as_deref() == Some(self.config.replica.as_str());
        LeaseSpec {
            holder_identity: Some(self.config.replica.clone()),
            lease_duration_seconds: Some(self.config.lease_duration.as_secs().max(1) as i32),
            acquire_time: if same_holder && keep_acquired {
                old.acquire_time
            } else {
                Some(micro(now))
            },
            renew_time: Some(micro(now)),
            lease_transitions: Some(
                old.lease_transitions.unwrap_or(0)
                    + i32::from(!same_holder && old.holder_identity.is_some()),
            ),
            ..old
        }
    }

    fn new_lease(&self, name: &str, now: Timestamp) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(self.config.namespace.clone()),
                labels: Some(
                    [(
                        "app.kubernetes.io/name".to_string(),
                        "kubeprint".to_string(),
                    )]
                    .into_iter()
                    .collect(),
                ),
                ..Default::default()
            },
            spec: Some(self.spec(now, None, false)),
        }
    }

    /// Creates the Lease of a shard never held; `Some(me)` when it worked.
    async fn create(&mut self, shard: u32, now: Timestamp) -> Option<String> {
        let name = self.config.shard_lease(shard);
        match self
            .api
            .create(&PostParams::default(), &self.new_lease(&name, now))
            .await
        {
            Ok(_) => {
                self.hold(shard, now);
                Some(self.config.replica.clone())
            }
            Err(err) => {
                debug!(shard, error = %super::error_chain(&err), "creating the shard Lease failed");
                self.held.remove(&shard);
                None
            }
        }
    }

    /// Takes or renews a shard's Lease with the resourceVersion read; a conflict means
    /// another replica wrote it first.
    async fn update(
        &mut self,
        shard: u32,
        held: &Held,
        holder: Option<&str>,
        now: Timestamp,
    ) -> Option<String> {
        let name = self.config.shard_lease(shard);
        let mut lease = held.lease.clone();
        lease.spec = Some(self.spec(now, held.lease.spec.as_ref(), true));
        match self
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                if !self.held.contains_key(&shard) {
                    info!(shard, replica = %self.config.replica, "took the shard");
                }
                self.hold(shard, now);
                holder.map(str::to_string)
            }
            Err(err) => {
                let conflict = matches!(&err, kube::Error::Api(s) if s.code == 409);
                if conflict {
                    debug!(shard, "another replica wrote the shard Lease first");
                    self.held.remove(&shard);
                } else {
                    // Keep the hold until it runs out: the next round tries again.
                    warn!(shard, error = %super::error_chain(&err), "renewing the shard Lease failed");
                }
                None
            }
        }
    }

    /// Gives a shard up: the holder is cleared, so another replica takes it at once.
    async fn release(&mut self, shard: u32, held: &Held) {
        self.held.remove(&shard);
        let name = self.config.shard_lease(shard);
        let mut lease = held.lease.clone();
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
        }
        match self
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => info!(shard, replica = %self.config.replica, "released the shard"),
            Err(err) => {
                debug!(shard, error = %super::error_chain(&err), "releasing the shard Lease failed")
            }
        }
    }

    fn hold(&mut self, shard: u32, now: Timestamp) {
        let until =
            now + jiff::SignedDuration::try_from(self.config.lease_duration).unwrap_or_default();
        self.held.insert(shard, until);
    }
}

/// Runs a sharded replica until `stop` turns true: a round of Leases every third of the
/// lease duration, the watchers following the shards held, `/status` told the shards and
/// the owner of every cluster; then stops the watchers and releases the shards.
pub async fn run(
    mut shards: Shards,
    mut watchers: super::watch::Watchers,
    targets: Vec<super::Target>,
    shared: super::SharedObserved,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let n = shards.config.shards;
    let mut watching: Option<BTreeSet<u32>> = None;
    let mut view = View {
        replica: shards.config.replica.clone(),
        shards: n,
        ..Default::default()
    };
    loop {
        match tokio::time::timeout(shards.renew_every(), shards.round()).await {
            Ok(Ok(v)) => view = v,
            Ok(Err(err)) => {
                warn!(error = %super::error_chain(&err), "reading the shard Leases failed")
            }
            Err(_) => warn!("the management cluster did not answer within a renewal period"),
        }
        // Holds that ran out unrenewed are dropped here even when the round failed.
        let owned = shards.owned(Timestamp::now());
        view.owned = owned.clone();
        if watching.as_ref() != Some(&owned) {
            let mine: Vec<super::Target> = targets
                .iter()
                .filter(|t| owned.contains(&shard_of(&t.cluster, n)))
                .cloned()
                .collect();
            let budget = watchers.watch(&mine);
            info!(
                replica = %view.replica,
                shards = ?owned,
                clusters = budget.watched,
                "watching the shards held"
            );
            if let Some(problem) = &budget.problem {
                warn!(problem = %problem, "not every cluster of the shards can be watched");
            }
            watching = Some(owned);
        }
        let owners = view.owners(targets.iter().map(|t| t.cluster.clone()));
        let mut status = serde_json::to_value(&view).unwrap_or_default();
        if let Some(map) = status.as_object_mut() {
            map.insert(
                "clusters".into(),
                serde_json::to_value(owners).unwrap_or_default(),
            );
        }
        shared.set_status(|s| s.shards = Some(status));
        tokio::select! {
            _ = tokio::time::sleep(shards.renew_every()) => {}
            _ = stop.changed() => break,
        }
    }
    watchers.shutdown().await;
    shards.release_all().await;
}

/// A Kubernetes `MicroTime` (k8s-openapi's own jiff) of a timestamp.
fn micro(at: Timestamp) -> MicroTime {
    MicroTime(
        k8s_openapi::jiff::Timestamp::from_microsecond(at.as_microsecond())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

/// The timestamp of a Kubernetes `MicroTime`.
fn from_micro(at: &MicroTime) -> Timestamp {
    Timestamp::from_microsecond(at.0.as_microsecond()).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Whether a free or expired Lease has been so for a whole lease duration: free since its
/// last renewal when released (no holder), since it ran out when it expired.
fn free_for_long(held: &Held, now: Timestamp, duration: Duration) -> bool {
    let duration = jiff::SignedDuration::try_from(duration).unwrap_or_default();
    let renewed = held
        .lease
        .spec
        .as_ref()
        .and_then(|s| s.renew_time.as_ref().or(s.acquire_time.as_ref()))
        .map(from_micro);
    let free_since = if held.holder.is_none() {
        renewed
    } else {
        held.expires
    };
    free_since.is_none_or(|since| since + duration <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_of_a_cluster_is_stable_and_spread() {
        assert_eq!(shard_of("acme-prod", 4), shard_of("acme-prod", 4));
        let mut counts = [0; 4];
        for i in 0..4000 {
            counts[shard_of(&format!("gen-{i:05}"), 4) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (900..1100).contains(c)), "{counts:?}");
        assert_eq!(shard_of("x", 1), 0);
    }

    #[test]
    fn rendezvous_moves_only_the_shards_of_a_replica_that_leaves() {
        let three: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let two: BTreeSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let mut per = BTreeMap::new();
        for shard in 0..30 {
            let before = preferred(shard, &three).unwrap();
            let after = preferred(shard, &two).unwrap();
            if before != "c" {
                assert_eq!(before, after, "shard {shard} moved without cause");
            }
            *per.entry(before).or_insert(0) += 1;
        }
        assert_eq!(per.len(), 3, "every replica gets shards: {per:?}");
    }
}
