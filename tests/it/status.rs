//! `kubeprint status` against the in-process API server double: the real kube client over
//! HTTP, a kubeconfig per test, every kind of finding, unreachable clusters and exit codes.

use crate::support::kube as support;

use std::path::Path;
use std::process::Output;

use crate::support::TODAY;
use serde_json::{Value, json};
use support::{ApiServer, Fault, Kind};

const CLUSTER: &str = "acme-prod";
const REV: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Runs the binary hermetically (cleared environment, no colour) in a blocking thread.
async fn kubeprint(args: &[&str], home: &Path) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let home = home.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_kubeprint"))
            .args(&args)
            .env_clear()
            .env("NO_COLOR", "1")
            .env("HOME", &home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(support::fleet_dir())
            .output()
            .expect("runs")
    })
    .await
    .unwrap()
}

async fn status_json(kubeconfig: &Path, home: &Path, extra: &[&str]) -> (i32, Value, String) {
    let kc = kubeconfig.to_str().unwrap();
    let mut args = vec![
        "status",
        "--today",
        TODAY,
        "--kubeconfig",
        kc,
        "--output",
        "json",
        "--timeout",
        "5",
    ];
    args.extend_from_slice(extra);
    let out = kubeprint(&args, home).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout} stderr {stderr}"));
    (out.status.code().unwrap(), json, stderr)
}

fn findings(report: &Value, cluster: &str) -> Vec<(String, String, String)> {
    let c = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == cluster)
        .unwrap();
    c["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().into(),
                f["subject"].as_str().unwrap().into(),
                f["severity"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn state(report: &Value, cluster: &str) -> String {
    let c = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == cluster)
        .unwrap();
    c["state"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_runs_what_was_rendered_is_in_sync() {
    let server = ApiServer::start().await;
    let desired = support::desired(CLUSTER);
    support::serve_in_sync(&server, &desired, REV);
    let tmp = tempfile::tempdir().unwrap();
    let kc = support::write_kubeconfig(&server, tmp.path(), &[CLUSTER]);

    let (code, report, stderr) = status_json(&kc, tmp.path(), &["--cluster", CLUSTER]).await;
    assert_eq!(code, 0, "{report:#} {stderr}");
    assert_eq!(state(&report, CLUSTER), "in-sync");
    assert_eq!(findings(&report, CLUSTER), vec![]);
    assert_eq!(
        report["clusters"][0]["apps"].as_array().unwrap().len(),
        desired.apps.len()
    );

    // The table on a terminal (text) says the same.
    let out = kubeprint(
        &[
            "status",
            "--today",
            TODAY,
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--cluster",
            CLUSTER,
        ],
        tmp.path(),
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.starts_with("CLUSTER    STATE    REACHABLE  APPS OK  NODES READY  ERRORS  WARNINGS\nacme-prod  in-sync  yes        25/25    12/12        0       0\n"), "{text}");
    // Markdown too.
    let out = kubeprint(
        &[
            "status",
            "--today",
            TODAY,
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--cluster",
            CLUSTER,
            "--output",
            "markdown",
        ],
        tmp.path(),
    )
    .await;
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("| acme-prod | in-sync | yes | 25/25 | 12/12 | 0 | 0 |"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_application_and_node_finding_is_reported() {
    let server = ApiServer::start().await;
    let desired = support::desired(CLUSTER);
    support::serve_in_sync(&server, &desired, REV);
    // Applications: one missing, one extra, one OutOfSync + Degraded + failed sync.
    server.delete(CLUSTER, Kind::Application, "cilium");
    server.apply(CLUSTER, Kind::Application, support::app("hand-made", REV));
    server.apply(CLUSTER, Kind::Application, support::failed_app("metallb"));
    server.modify(CLUSTER, Kind::Application, "loki", |a| {
        a["status"]["health"]["status"] = json!("Progressing")
    });
    // Nodes: one missing, one extra, one NotReady, one in the wrong zone, one on old versions.
    server.delete(CLUSTER, Kind::Node, "acme-prod-wk-6");
    server.apply(
        CLUSTER,
        Kind::Node,
        support::node("acme-prod-wk-7", "worker", "AZ05", "v1.13.9", "v1.36.3"),
    );
    server.modify(CLUSTER, Kind::Node, "acme-prod-cp-1", |n| {
        support::set_ready(n, false)
    });
    server.modify(CLUSTER, Kind::Node, "acme-prod-st-2", |n| {
        n["metadata"]["labels"]["topology.kubernetes.io/zone"] = json!("AZ05");
    });
    server.modify(CLUSTER, Kind::Node, "acme-prod-wk-1", |n| {
        n["status"]["nodeInfo"]["osImage"] = json!("Talos (v1.12.11)");
        n["status"]["nodeInfo"]["kubeletVersion"] = json!("v1.34.1");
    });
    let tmp = tempfile::tempdir().unwrap();
    let kc = support::write_kubeconfig(&server, tmp.path(), &[CLUSTER]);

    let (code, report, _) = status_json(&kc, tmp.path(), &["--cluster", CLUSTER]).await;
    assert_eq!(code, 1);
    assert_eq!(state(&report, CLUSTER), "drift");
    let got = findings(&report, CLUSTER);
    let expect = |kind: &str, subject: &str, severity: &str| {
        assert!(
            got.contains(&(kind.to_string(), subject.to_string(), severity.to_string())),
            "missing ({kind}, {subject}, {severity}) in {got:#?}"
        );
    };
    expect("app-missing", "app/cilium", "error");
    expect("app-extra", "app/hand-made", "warning");
    expect("app-out-of-sync", "app/metallb", "error");
    expect("app-unhealthy", "app/metallb", "error");
    expect("app-operation-failed", "app/metallb", "error");
    expect("app-condition", "app/metallb", "error");
    expect("app-unhealthy", "app/loki", "warning");
    expect("node-missing", "node/acme-prod-wk-6", "error");
    expect("node-extra", "node/acme-prod-wk-7", "warning");
    expect("node-not-ready", "node/acme-prod-cp-1", "error");
    expect("node-wrong-zone", "node/acme-prod-st-2", "error");
    expect("node-talos-version", "node/acme-prod-wk-1", "warning");
    expect("node-kubernetes-version", "node/acme-prod-wk-1", "warning");
    // The oldest kubelet (1.34) left the support window on 2026-11-24.
    expect("kubernetes-support-ended", "cluster", "error");
    assert_eq!(got.len(), 14, "{got:#?}");
    let messages: Vec<&str> = report["clusters"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .contains(&"storage node `acme-prod-st-2` is in zone AZ05, the spec places it in AZ06"),
        "{messages:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_leaving_the_support_window_within_90_days_is_a_warning() {
    let server = ApiServer::start().await;
    let desired = support::desired(CLUSTER);
    support::serve_in_sync(&server, &desired, REV);
    for name in desired.nodes.keys() {
        server.modify(CLUSTER, Kind::Node, name, |n| {
            n["status"]["nodeInfo"]["kubeletVersion"] = json!("v1.34.1")
        });
    }
    let tmp = tempfile::tempdir().unwrap();
    let kc = support::write_kubeconfig(&server, tmp.path(), &[CLUSTER]);
    // On 2026-10-01, 1.34 is still supported until 2026-11-24: within 90 days. The fleet
    // itself is checked at --today, so pass the later date through --today only for drift.
    let kc_s = kc.to_str().unwrap();
    let out = kubeprint(
        &[
            "status",
            "--today",
            "2026-10-01",
            "--kubeconfig",
            kc_s,
            "--cluster",
            CLUSTER,
            "--output",
            "json",
        ],
        tmp.path(),
    )
    .await;
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let got = findings(&report, CLUSTER);
    assert!(
        got.contains(&(
            "kubernetes-support-ending".into(),
            "cluster".into(),
            "warning".into()
        )),
        "{got:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_unknown_and_counts_as_drift() {
    let server = ApiServer::start().await;
    let desired = support::desired(CLUSTER);
    support::serve_in_sync(&server, &desired, REV);
    // 500, not 503: the kube client retries 503 itself, which would only slow this down.
    server.set_fault(
        CLUSTER,
        Fault {
            status: Some(500),
            ..Fault::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    // globex-dev points at a closed port; initech-prod has no context at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let kubeconfig = server
        .kubeconfig(&[
            ("admin@acme-prod", CLUSTER),
            ("admin@globex-dev", "globex-dev"),
        ])
        .replace(&server.url("globex-dev"), &format!("http://{closed}"));
    let kc = tmp.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig).unwrap();

    let (code, report, _) = status_json(&kc, tmp.path(), &[]).await;
    assert_eq!(code, 1);
    for cluster in ["acme-prod", "globex-dev", "initech-prod"] {
        assert_eq!(state(&report, cluster), "unknown", "{cluster}");
        let c = report["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["cluster"] == cluster)
            .unwrap();
        assert_eq!(c["reachable"], false);
        assert!(
            c["apps"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["syncCheck"] == "unknown" && a["healthCheck"] == "unknown")
        );
        assert!(
            c["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["ready"] == "unknown")
        );
    }
    assert_eq!(
        findings(&report, "acme-prod")[0],
        ("unreachable".into(), "cluster".into(), "error".into())
    );
    let msg = report["clusters"][0]["findings"][0]["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("injected failure"), "{msg}");
    let msg = report["clusters"][2]["findings"][0]["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("admin@initech-prod"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_cluster_times_out_as_unknown() {
    let server = ApiServer::start().await;
    let desired = support::desired(CLUSTER);
    support::serve_in_sync(&server, &desired, REV);
    server.set_fault(
        CLUSTER,
        Fault {
            delay: Some(std::time::Duration::from_secs(5)),
            ..Fault::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let kc = support::write_kubeconfig(&server, tmp.path(), &[CLUSTER]);
    let kc_s = kc.to_str().unwrap();
    let out = kubeprint(
        &[
            "status",
            "--today",
            TODAY,
            "--kubeconfig",
            kc_s,
            "--cluster",
            CLUSTER,
            "--output",
            "json",
            "--timeout",
            "1",
        ],
        tmp.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let msg = report["clusters"][0]["findings"][0]["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("did not answer within 1s"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_for_bad_input_and_no_kubeconfig() {
    let tmp = tempfile::tempdir().unwrap();
    // No --kubeconfig, no KUBECONFIG, no ~/.kube/config, not in a pod: cannot run.
    let out = kubeprint(&["status", "--today", TODAY], tmp.path()).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: no kubeconfig found"));
    // An unknown cluster is bad input.
    let out = kubeprint(
        &["status", "--today", TODAY, "--cluster", "acme-prd"],
        tmp.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `acme-prod`?"));
    // --context needs exactly one cluster.
    let out = kubeprint(&["status", "--today", TODAY, "--context", "x"], tmp.path()).await;
    assert_eq!(out.status.code(), Some(2));
    // A missing rendered tree is bad input.
    let out = kubeprint(
        &[
            "status",
            "--today",
            TODAY,
            "--rendered",
            tmp.path().to_str().unwrap(),
        ],
        tmp.path(),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_override_points_one_cluster_elsewhere() {
    let server = ApiServer::start().await;
    let desired = support::desired(CLUSTER);
    support::serve_in_sync(&server, &desired, REV);
    let tmp = tempfile::tempdir().unwrap();
    let kc = tmp.path().join("kubeconfig");
    std::fs::write(&kc, server.kubeconfig(&[("elsewhere", CLUSTER)])).unwrap();
    let (code, report, _) = status_json(
        &kc,
        tmp.path(),
        &["--cluster", CLUSTER, "--context", "elsewhere"],
    )
    .await;
    assert_eq!(code, 0, "{report:#}");
    // KUBECONFIG is honoured like kubectl does.
    let home = tmp.path().to_path_buf();
    let kc2 = kc.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_kubeprint"))
            .args([
                "status",
                "--today",
                TODAY,
                "--cluster",
                CLUSTER,
                "--context",
                "elsewhere",
            ])
            .env_clear()
            .env("HOME", &home)
            .env("KUBECONFIG", &kc2)
            .current_dir(support::fleet_dir())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Commits every file of `dir` (a fresh repository on the first call); returns the commit id.
fn commit_all(dir: &Path, message: &str, time: i64) -> String {
    let repo = git2::Repository::open(dir)
        .or_else(|_| git2::Repository::init(dir))
        .unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig =
        git2::Signature::new("test", "test@example.invalid", &git2::Time::new(time, 0)).unwrap();
    let parents: Vec<git2::Commit> = repo
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .into_iter()
        .collect();
    let parents: Vec<&git2::Commit> = parents.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_behind_the_published_commit_and_hand_edits() {
    let server = ApiServer::start().await;
    let desired = support::desired(CLUSTER);
    let tmp = tempfile::tempdir().unwrap();
    let rendered = tmp.path().join("rendered");
    let out = kubeprint(
        &[
            "render",
            "--today",
            TODAY,
            "--cluster",
            CLUSTER,
            "--out",
            rendered.to_str().unwrap(),
        ],
        tmp.path(),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let repo = rendered.join(CLUSTER);
    let now = jiff::Timestamp::now().as_second();
    let old = commit_all(&repo, "first publish", now - 7200);
    std::fs::write(repo.join("notes.txt"), "published later\n").unwrap();
    let published = commit_all(&repo, "second publish", now - 3600);
    // Argo CD still runs the first commit everywhere but on root.
    support::serve_in_sync(&server, &desired, &old);
    server.modify(CLUSTER, Kind::Application, "root", |a| {
        a["status"]["sync"]["revision"] = json!(published)
    });
    // A hand edit in the work tree.
    let values = repo.join("values/cilium.yaml");
    let mut text = std::fs::read_to_string(&values).unwrap();
    text.push_str("# edited by hand\n");
    std::fs::write(&values, text).unwrap();
    let kc = support::write_kubeconfig(&server, tmp.path(), &[CLUSTER]);

    let (code, report, stderr) = status_json(
        &kc,
        tmp.path(),
        &[
            "--cluster",
            CLUSTER,
            "--rendered",
            rendered.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
    let got = findings(&report, CLUSTER);
    assert!(
        got.contains(&("app-behind".into(), "app/cilium".into(), "error".into())),
        "{got:#?}"
    );
    assert!(!got.iter().any(|f| f.1 == "app/root"), "{got:#?}");
    assert!(
        got.contains(&(
            "hand-edit".into(),
            "file/values/cilium.yaml".into(),
            "warning".into()
        )),
        "{got:#?}"
    );
    assert!(
        got.contains(&(
            "hand-edit".into(),
            "file/notes.txt".into(),
            "warning".into()
        )),
        "{got:#?}"
    );
    let behind: Vec<&str> = report["clusters"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["subject"] == "app/cilium")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(behind.len(), 1);
    assert!(
        behind[0].contains(&format!("synced to {}", &old[..8])),
        "{}",
        behind[0]
    );
    assert!(
        behind[0].contains(&format!(
            "last published commit {}, published 1h 0m ago",
            &published[..8]
        )),
        "{}",
        behind[0]
    );
    let root = report["clusters"][0]["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "root")
        .unwrap();
    assert_eq!(root["revisionCheck"], "ok");
}
