//! The drift rules on small desired/observed pairs.
use super::*;
use crate::lock::{LOCK_FILE, Lock};
use crate::model::{ClusterSpec, Role};
use jiff::SignedDuration;
use std::collections::BTreeMap;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-11-25T12:00:00Z";
const PUBLISHED: &str = "1111111111111111111111111111111111111111";

fn catalog() -> Catalog {
    crate::yaml::from_str::<Catalog>("versions.yaml", include_str!("../../../../versions.yaml"))
        .unwrap()
        .0
}

fn desired_cluster_fixture() -> DesiredCluster {
    let node = |role, zone: &str| DesiredNode {
        role,
        zone: zone.into(),
        max_pods: 110,
    };
    DesiredCluster {
        name: "acme-prod".into(),
        tier: "production".into(),
        kubernetes: "1.36.3".into(),
        talos: "v1.13.9".into(),
        apps: ["cilium", "root"].iter().map(|s| s.to_string()).collect(),
        nodes: [
            ("cp-1".to_string(), node(Role::ControlPlane, "AZ05")),
            ("st-1".to_string(), node(Role::Storage, "AZ06")),
            ("wk-1".to_string(), node(Role::Worker, "AZ07")),
        ]
        .into_iter()
        .collect(),
        published: Some(Published {
            commit: PUBLISHED.into(),
            at: Some(ts("2026-11-25T11:00:00Z")),
        }),
        hand_edits: Vec::new(),
    }
}

fn desired(cluster: DesiredCluster) -> Desired {
    Desired {
        clusters: [(cluster.name.clone(), cluster)].into_iter().collect(),
        catalog: catalog(),
        policy: Policy::default(),
    }
}

fn good_app() -> ObservedApp {
    ObservedApp {
        sync: "Synced".into(),
        revisions: vec![PUBLISHED.into()],
        health: "Healthy".into(),
        operation_phase: Some("Succeeded".into()),
        operation_message: Some("successfully synced (all tasks run)".into()),
        conditions: Vec::new(),
    }
}

fn good_node(role: Role, zone: &str) -> ObservedNode {
    ObservedNode {
        role: Some(role),
        zone: Some(zone.into()),
        ready: Some(true),
        os_image: "Talos (v1.13.9)".into(),
        kubelet_version: "v1.36.3".into(),
        allocatable_pods: Some(110),
    }
}

fn observed_cluster() -> ObservedCluster {
    ObservedCluster {
        at: Some(ts("2026-11-25T11:59:30Z")),
        error: None,
        apps_listed: true,
        nodes_listed: true,
        apps: [
            ("cilium".to_string(), good_app()),
            ("root".to_string(), good_app()),
        ]
        .into_iter()
        .collect(),
        nodes: [
            ("cp-1".to_string(), good_node(Role::ControlPlane, "AZ05")),
            ("st-1".to_string(), good_node(Role::Storage, "AZ06")),
            (
                "wk-1".to_string(),
                ObservedNode {
                    role: None,
                    ..good_node(Role::Worker, "AZ07")
                },
            ),
        ]
        .into_iter()
        .collect(),
    }
}

fn run(d: DesiredCluster, o: Option<ObservedCluster>, now: &str) -> ClusterReport {
    let desired = desired(d);
    let observed = Observed {
        clusters: o
            .map(|o| ("acme-prod".to_string(), o))
            .into_iter()
            .collect(),
    };
    let mut report = drift(&desired, &observed, ts(now));
    assert_eq!(report.clusters.len(), 1);
    report.clusters.remove(0)
}

fn kinds(r: &ClusterReport) -> Vec<(Kind, Severity, &str)> {
    r.findings
        .iter()
        .map(|f| (f.kind, f.severity, f.subject.as_str()))
        .collect()
}

#[test]
fn a_cluster_that_matches_is_in_sync() {
    let r = run(desired_cluster_fixture(), Some(observed_cluster()), NOW);
    assert_eq!(r.findings, vec![]);
    assert_eq!(r.state, ClusterState::InSync);
    assert!(r.reachable);
    assert_eq!(r.observation_age_seconds, Some(30));
    assert!(
        r.apps
            .iter()
            .all(|a| a.sync_check == Check::Ok && a.revision_check == Check::Ok)
    );
    assert!(
        r.nodes
            .iter()
            .all(|n| n.ready == Check::Ok && n.version == Check::Ok && n.zone == Check::Ok)
    );
}

#[test]
fn a_cluster_never_observed_is_unknown_never_healthy() {
    let r = run(desired_cluster_fixture(), None, NOW);
    assert_eq!(r.state, ClusterState::Unknown);
    assert!(!r.reachable);
    assert_eq!(
        kinds(&r),
        vec![(Kind::NotObserved, Severity::Error, "cluster")]
    );
    assert!(
        r.apps
            .iter()
            .all(|a| a.sync_check == Check::Unknown && a.health == "Unknown")
    );
    assert!(r.nodes.iter().all(|n| n.ready == Check::Unknown));
    let d = desired(desired_cluster_fixture());
    assert!(!drift(&d, &Observed::default(), ts(NOW)).in_sync());
}

#[test]
fn an_unreachable_cluster_is_unknown_even_with_old_good_data() {
    let o = ObservedCluster {
        error: Some("connection refused".into()),
        ..observed_cluster()
    };
    let r = run(desired_cluster_fixture(), Some(o), NOW);
    assert_eq!(r.state, ClusterState::Unknown);
    assert_eq!(r.findings[0].kind, Kind::Unreachable);
    assert!(
        r.findings[0].message.contains("connection refused"),
        "{}",
        r.findings[0].message
    );
    assert!(r.apps.iter().all(|a| a.sync_check == Check::Unknown));
}

#[test]
fn a_stale_observation_turns_unknown() {
    let o = ObservedCluster {
        at: Some(ts("2026-11-25T11:50:00Z")),
        ..observed_cluster()
    };
    let r = run(desired_cluster_fixture(), Some(o.clone()), NOW);
    assert_eq!(r.state, ClusterState::Unknown);
    assert_eq!(r.findings[0].kind, Kind::Stale);
    assert_eq!(
        r.findings[0].message,
        "the last observation is 10m 0s old, over the limit of 5m 0s"
    );
    // Within the limit it is judged normally.
    let r = run(desired_cluster_fixture(), Some(o), "2026-11-25T11:54:00Z");
    assert_eq!(r.state, ClusterState::InSync);
}

#[test]
fn a_cluster_whose_lists_are_incomplete_is_unknown() {
    let o = ObservedCluster {
        nodes_listed: false,
        ..observed_cluster()
    };
    let r = run(desired_cluster_fixture(), Some(o), NOW);
    assert_eq!(r.state, ClusterState::Unknown);
    assert_eq!(r.findings[0].kind, Kind::NotObserved);
}

#[test]
fn missing_and_extra_applications() {
    let mut o = observed_cluster();
    o.apps.remove("cilium");
    o.apps.insert("hand-made".into(), good_app());
    let r = run(desired_cluster_fixture(), Some(o), NOW);
    assert_eq!(
        kinds(&r),
        vec![
            (Kind::AppMissing, Severity::Error, "app/cilium"),
            (Kind::AppExtra, Severity::Warning, "app/hand-made")
        ]
    );
    assert_eq!(r.state, ClusterState::Drift);
    let cilium = r.apps.iter().find(|a| a.name == "cilium").unwrap();
    assert_eq!(
        (cilium.sync.as_str(), cilium.sync_check),
        ("Missing", Check::Drift)
    );
    let extra = r.apps.iter().find(|a| a.name == "hand-made").unwrap();
    assert_eq!(extra.sync_check, Check::Drift);
}

#[test]
fn out_of_sync_unhealthy_and_failed_applications() {
    let mut o = observed_cluster();
    let app = o.apps.get_mut("cilium").unwrap();
    app.sync = "OutOfSync".into();
    app.health = "Degraded".into();
    app.operation_phase = Some("Failed".into());
    app.operation_message = Some("one or more objects failed to apply (retried 5 times).".into());
    app.conditions = vec![("SyncError".into(), "Failed last sync attempt".into())];
    let root = o.apps.get_mut("root").unwrap();
    root.health = "Progressing".into();
    let r = run(desired_cluster_fixture(), Some(o), NOW);
    assert_eq!(
        kinds(&r),
        vec![
            (Kind::AppOutOfSync, Severity::Error, "app/cilium"),
            (Kind::AppUnhealthy, Severity::Error, "app/cilium"),
            (Kind::AppOperationFailed, Severity::Error, "app/cilium"),
            (Kind::AppCondition, Severity::Error, "app/cilium"),
            (Kind::AppUnhealthy, Severity::Warning, "app/root"),
        ]
    );
    assert_eq!(r.findings[1].message, "application `cilium` is Degraded");
    assert!(
        r.findings[2]
            .message
            .contains("the last sync Failed: one or more objects failed to apply")
    );
    let cilium = &r.apps[0];
    assert_eq!(
        (cilium.sync_check, cilium.health_check),
        (Check::Drift, Check::Drift)
    );
}

#[test]
fn unknown_sync_and_health_are_unknown_not_ok() {
    let mut o = observed_cluster();
    let app = o.apps.get_mut("cilium").unwrap();
    app.sync = "Unknown".into();
    app.health = HealthStatus::NotReported;
    let r = run(desired_cluster_fixture(), Some(o), NOW);
    assert_eq!(r.apps[0].sync_check, Check::Unknown);
    assert_eq!(r.apps[0].health_check, Check::Unknown);
    assert_eq!(r.apps[0].health, "Unknown");
    assert_eq!(r.state, ClusterState::Drift);
}

#[test]
fn an_application_behind_the_published_commit_says_for_how_long() {
    let old = "2222222222222222222222222222222222222222";
    let mut o = observed_cluster();
    o.apps.get_mut("cilium").unwrap().revisions = vec!["1.20.0".into(), old.into()];
    // Published 1 hour ago: past the 15 minute grace, an error.
    let r = run(desired_cluster_fixture(), Some(o.clone()), NOW);
    assert_eq!(
        kinds(&r),
        vec![(Kind::AppBehind, Severity::Error, "app/cilium")]
    );
    assert_eq!(
        r.findings[0].message,
        "application `cilium` is synced to 22222222, not to the last published commit 11111111, published 1h 0m ago"
    );
    assert_eq!(r.apps[0].revision_check, Check::Drift);
    // Five minutes after the publish it is only a warning.
    let r = run(
        desired_cluster_fixture(),
        Some(o.clone()),
        "2026-11-25T11:05:00Z",
    );
    assert_eq!(r.findings[0].severity, Severity::Warning);
    // Without a known published commit the revision is not judged.
    let mut d = desired_cluster_fixture();
    d.published = None;
    let r = run(d, Some(o), NOW);
    assert_eq!(r.findings, vec![]);
    assert_eq!(r.apps[0].revision_check, Check::Unknown);
}

#[test]
fn a_multi_source_application_on_the_published_commit_is_current() {
    let mut o = observed_cluster();
    o.apps.get_mut("cilium").unwrap().revisions = vec!["1.20.0".into(), PUBLISHED.to_uppercase()];
    let r = run(desired_cluster_fixture(), Some(o), NOW);
    assert_eq!(r.apps[0].revision_check, Check::Ok);
}

#[test]
fn missing_extra_and_not_ready_nodes() {
    let mut o = observed_cluster();
    o.nodes.remove("st-1");
    o.nodes
        .insert("wk-9".into(), good_node(Role::Worker, "AZ07"));
    o.nodes.get_mut("cp-1").unwrap().ready = Some(false);
    o.nodes.get_mut("wk-1").unwrap().ready = None;
    let r = run(desired_cluster_fixture(), Some(o), NOW);
    assert_eq!(
        kinds(&r),
        vec![
            (Kind::NodeNotReady, Severity::Error, "node/cp-1"),
            (Kind::NodeMissing, Severity::Error, "node/st-1"),
            (Kind::NodeNotReady, Severity::Warning, "node/wk-1"),
            (Kind::NodeExtra, Severity::Warning, "node/wk-9"),
        ]
    );
    assert_eq!(
        r.findings[1].message,
        "storage node `st-1` is in the spec but not in the cluster"
    );
    let wk1 = r.nodes.iter().find(|n| n.name == "wk-1").unwrap();
    assert_eq!(wk1.ready, Check::Unknown);
}

#[test]
fn nodes_in_the_wrong_zone_or_role_or_pods() {
    let mut o = observed_cluster();
    o.nodes.get_mut("st-1").unwrap().zone = Some("AZ05".into());
    o.nodes.get_mut("wk-1").unwrap().zone = None;
    o.nodes.get_mut("cp-1").unwrap().role = Some(Role::Worker);
    o.nodes.get_mut("cp-1").unwrap().allocatable_pods = Some(250);
    let r = run(desired_cluster_fixture(), Some(o), NOW);
    assert_eq!(
        kinds(&r),
        vec![
            (Kind::NodeWrongRole, Severity::Error, "node/cp-1"),
            (Kind::NodeMaxPods, Severity::Warning, "node/cp-1"),
            (Kind::NodeWrongZone, Severity::Error, "node/st-1"),
            (Kind::NodeWrongZone, Severity::Error, "node/wk-1"),
        ]
    );
    assert_eq!(
        r.findings[2].message,
        "storage node `st-1` is in zone AZ05, the spec places it in AZ06"
    );
    assert_eq!(
        r.findings[3].message,
        "worker node `wk-1` is in zone (no zone label), the spec places it in AZ07"
    );
}

#[test]
fn nodes_on_other_talos_or_kubernetes_versions() {
    let mut o = observed_cluster();
    let wk = o.nodes.get_mut("wk-1").unwrap();
    wk.os_image = "Talos (v1.12.11)".into();
    wk.kubelet_version = "v1.35.4".into();
    let r = run(desired_cluster_fixture(), Some(o), NOW);
    assert_eq!(
        kinds(&r),
        vec![
            (Kind::NodeTalosVersion, Severity::Warning, "node/wk-1"),
            (Kind::NodeKubernetesVersion, Severity::Warning, "node/wk-1"),
        ]
    );
    assert_eq!(
        r.findings[0].message,
        "node `wk-1` runs Talos (v1.12.11), the spec says Talos (v1.13.9)"
    );
    assert_eq!(r.nodes[2].version, Check::Drift);
}

#[test]
fn kubernetes_leaving_or_out_of_the_support_window() {
    // 1.34 leaves support on 2026-11-24 (90 days after 1.37).
    let mut d = desired_cluster_fixture();
    d.kubernetes = "1.34.1".into();
    let mut o = observed_cluster();
    for n in o.nodes.values_mut() {
        n.kubelet_version = "v1.34.1".into();
    }
    let r = run(d.clone(), Some(o.clone()), "2026-10-01T00:00:00Z");
    let support: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.subject == "cluster")
        .collect();
    assert_eq!(support.len(), 1);
    assert_eq!(support[0].kind, Kind::KubernetesSupportEnding);
    assert_eq!(
        support[0].message,
        "Kubernetes 1.34 leaves the support window on 2026-11-24; plan the upgrade"
    );
    let o2 = ObservedCluster {
        at: Some(ts(NOW)),
        ..o
    };
    let r = run(d.clone(), Some(o2), NOW);
    let support: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.subject == "cluster")
        .collect();
    assert_eq!(
        (support[0].kind, support[0].severity),
        (Kind::KubernetesSupportEnded, Severity::Error)
    );
    // An unknown cluster still reports the spec's support window.
    let r = run(d, None, NOW);
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == Kind::KubernetesSupportEnded)
    );
}

#[test]
fn the_oldest_running_kubelet_decides_the_support_window() {
    let mut o = observed_cluster();
    o.nodes.get_mut("wk-1").unwrap().kubelet_version = "v1.34.9".into();
    let r = run(desired_cluster_fixture(), Some(o), NOW);
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == Kind::KubernetesSupportEnded && f.message.contains("1.34"))
    );
}

#[test]
fn hand_edits_against_the_lock() {
    let lock = Lock {
        kubeprint: "0.1.0".into(),
        cluster: "acme-prod".into(),
        blueprint: None,
        inputs_hash: "x".into(),
        files: [
            ("apps/a.yaml".to_string(), crate::digest::sha256_hex(b"a")),
            ("apps/b.yaml".to_string(), crate::digest::sha256_hex(b"b")),
            (
                "README.md".to_string(),
                crate::digest::sha256_hex(b"readme"),
            ),
        ]
        .into_iter()
        .collect(),
    };
    let files: BTreeMap<String, Vec<u8>> = [
        (LOCK_FILE.to_string(), lock.to_yaml().into_bytes()),
        ("apps/a.yaml".to_string(), b"changed".to_vec()),
        ("README.md".to_string(), b"readme".to_vec()),
        ("apps/extra.yaml".to_string(), b"x".to_vec()),
        (".git/HEAD".to_string(), b"ref".to_vec()),
    ]
    .into_iter()
    .collect();
    let edits = hand_edits(&files);
    let expect = |p: &str, kind| HandEdit {
        path: p.into(),
        kind,
    };
    assert_eq!(
        edits,
        vec![
            expect("apps/a.yaml", HandEditKind::Modified),
            expect("apps/b.yaml", HandEditKind::Removed),
            expect("apps/extra.yaml", HandEditKind::Added),
        ]
    );
    let mut d = desired_cluster_fixture();
    d.hand_edits = edits;
    let r = run(d, Some(observed_cluster()), NOW);
    assert_eq!(r.state, ClusterState::Drift);
    assert_eq!(r.findings.len(), 3);
    assert!(
        r.findings
            .iter()
            .all(|f| f.kind == Kind::HandEdit && f.severity == Severity::Warning)
    );
    assert_eq!(
        r.findings[0].message,
        "`apps/a.yaml` in the cluster repository was changed by hand; the next publish will overwrite it"
    );
    assert!(hand_edits(&BTreeMap::new()).is_empty());
}

#[test]
fn desired_applications_come_from_the_apps_directory() {
    let spec = crate::yaml::from_str::<ClusterSpec>(
        "c.yaml",
        include_str!("../../../../overlays/clusters/acme-prod.yaml"),
    )
    .unwrap()
    .0;
    let files: BTreeMap<String, Vec<u8>> = [
        (
            "apps/cilium.yaml",
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: cilium}\n",
        ),
        (
            "apps/root.yaml",
            "kind: Application\nmetadata: {name: root}\n",
        ),
        (
            "apps/notes.txt",
            "kind: Application\nmetadata: {name: nope}\n",
        ),
        (
            "manifests/x/app.yaml",
            "kind: Application\nmetadata: {name: nested}\n",
        ),
        ("apps/cm.yaml", "kind: ConfigMap\nmetadata: {name: cm}\n"),
    ]
    .into_iter()
    .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
    .collect();
    let d = desired_cluster(&spec, &files, None);
    assert_eq!(
        d.apps.iter().map(String::as_str).collect::<Vec<_>>(),
        vec!["cilium", "root"]
    );
    assert_eq!(d.nodes.len(), 12);
    assert_eq!(
        d.nodes["acme-prod-st-2"],
        DesiredNode {
            role: Role::Storage,
            zone: "AZ06".into(),
            max_pods: 110
        }
    );
    assert_eq!(
        (d.kubernetes.as_str(), d.talos.as_str()),
        ("1.36.3", "v1.13.9")
    );
}

#[test]
fn fleet_counts_and_in_sync() {
    let d = desired(desired_cluster_fixture());
    let o = Observed {
        clusters: [("acme-prod".to_string(), observed_cluster())]
            .into_iter()
            .collect(),
    };
    let report = drift(&d, &o, ts(NOW));
    assert!(report.in_sync());
    assert_eq!(report.counts().values().sum::<usize>(), 0);
    let report = drift(&d, &Observed::default(), ts(NOW));
    assert_eq!(report.counts()[&Severity::Error], 1);
}

#[test]
fn human_durations() {
    assert_eq!(human(SignedDuration::from_secs(42)), "42s");
    assert_eq!(human(SignedDuration::from_secs(3 * 3600 + 5 * 60)), "3h 5m");
    assert_eq!(human(SignedDuration::from_secs(2 * 86_400 + 3600)), "2d 1h");
}

#[test]
fn argo_statuses_are_typed_and_nothing_reported_is_unknown() {
    assert_eq!(SyncStatus::parse("Synced"), SyncStatus::Synced);
    assert_eq!(SyncStatus::parse(""), SyncStatus::NotReported);
    assert_eq!(HealthStatus::parse("Healthy"), HealthStatus::Healthy);
    // A status a later Argo CD may add is kept as seen, never read as healthy.
    let weird = HealthStatus::parse("Hibernating");
    assert_eq!(weird, HealthStatus::Other("Hibernating".into()));
    assert_eq!(weird.as_str(), "Hibernating");
    assert!(OperationPhase::parse("Error").failed());
    assert!(!OperationPhase::parse("Running").failed());

    let mut o = observed_cluster();
    let app = o.apps.get_mut("cilium").unwrap();
    app.health = weird;
    app.sync = SyncStatus::NotReported;
    let r = run(desired_cluster_fixture(), Some(o), NOW);
    let cilium = r.apps.iter().find(|a| a.name == "cilium").unwrap();
    assert_eq!(cilium.health_check, Check::Drift);
    assert_eq!(cilium.sync, SyncStatus::Unknown);
    assert_eq!(cilium.sync_check, Check::Unknown);
    assert_eq!(
        serde_json::to_value(cilium).unwrap()["health"],
        "Hibernating"
    );
}

/// A cached judgement may be served until [`judged_until`], and not after: just before it
/// the report is the one made at `now` (apart from the age, which a cache recomputes),
/// and at it time alone has changed the report (staleness, a lag's wording or severity).
#[test]
fn a_judgement_holds_until_time_alone_would_change_it() {
    let old = "2222222222222222222222222222222222222222";
    let mut behind = observed_cluster();
    behind.apps.get_mut("cilium").unwrap().revisions = vec![old.into()];
    let stale = ObservedCluster {
        at: Some(ts("2026-11-25T11:50:00.250Z")),
        ..observed_cluster()
    };
    let cases = [
        ("in sync, fresh", observed_cluster(), NOW),
        (
            "in sync, going stale",
            observed_cluster(),
            "2026-11-25T12:04:29.5Z",
        ),
        ("stale: the age in the message", stale, NOW),
        (
            "behind, within the grace",
            behind.clone(),
            "2026-11-25T11:05:00.7Z",
        ),
        (
            "behind, at the grace",
            behind.clone(),
            "2026-11-25T11:14:59.9Z",
        ),
        ("behind, past the grace", behind, "2026-11-25T11:20:00Z"),
    ];
    let without_age = |mut r: ClusterReport| {
        r.observation_age_seconds = None;
        r
    };
    for (what, o, now) in cases {
        let d = desired_cluster_fixture();
        // The support window judged at today's date: it turns at midnight.
        let policy = Policy {
            stale_after: SignedDuration::from_secs(300),
            ..Policy::default()
        };
        let judge = |t: Timestamp| without_age(drift_cluster(&d, Some(&o), &catalog(), policy, t));
        let at = ts(now);
        let first = judge(at);
        let until = judged_until(&d, Some(&o), policy, at, &first);
        assert!(until > at, "{what}: {until} after {at}");
        assert!(
            until < ts("2026-11-26T00:00:00Z"),
            "{what}: {until} within the day"
        );
        let just_before = until.checked_sub(SignedDuration::from_nanos(1)).unwrap();
        assert_eq!(
            judge(just_before),
            first,
            "{what}: still {first:?} at {just_before}"
        );
        assert_ne!(judge(until), first, "{what}: changed at {until}");
    }
    // With the support date fixed and nothing else timed, a judgement holds indefinitely.
    let d = desired_cluster_fixture();
    let o = ObservedCluster {
        at: None,
        error: Some("connection refused".into()),
        ..observed_cluster()
    };
    let policy = Policy {
        support_date: Some("2026-11-25".parse().unwrap()),
        ..Policy::default()
    };
    let r = drift_cluster(&d, Some(&o), &catalog(), policy, ts(NOW));
    assert_eq!(
        judged_until(&d, Some(&o), policy, ts(NOW), &r),
        Timestamp::MAX
    );
}
