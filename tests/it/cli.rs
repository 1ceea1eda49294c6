//! The binary on fixture fleets: validate, render, --check, explain, schema, and every
//! kind of bad input, each with its exact error and nothing written.

use crate::support::{Fixture, TODAY};

fn files_under(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            out.push((
                e.path().strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    out
}

#[test]
fn the_example_fleet_validates_with_one_warning() {
    let f = Fixture::example();
    let out = f.run(&["validate", "--today", TODAY]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("chart `ingress-nginx` 4.15.1 is no longer maintained upstream"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("3 cluster(s) valid as of 2026-11-25"),
        "{}",
        out.stderr
    );
}

#[test]
fn validate_json_is_machine_readable() {
    let f = Fixture::example();
    f.edit(
        "overlays/clusters/acme-prod.yaml",
        "maxPods: 110",
        "maxPods: 250",
    );
    let out = f.run(&["validate", "--today", TODAY, "--output", "json"]);
    assert_eq!(out.code, 2);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 1);
    let d = &v["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["location"], "overlays/clusters/acme-prod.yaml:24:5");
    assert_eq!(d["message"], "at most 110 pods per node, not 250");
}

#[test]
fn render_writes_each_cluster_then_nothing_when_nothing_changed() {
    let f = Fixture::example();
    let out = f.run(&["render", "--today", TODAY]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("rendered 3 cluster(s) into rendered: 3 created, 0 updated, 0 unchanged"),
        "{}",
        out.stderr
    );
    for c in ["acme-prod", "globex-dev", "initech-prod"] {
        assert!(f.out().join(c).join("kubeprint.lock").is_file());
        assert!(f.out().join(c).join("apps/root.yaml").is_file());
    }
    let before = files_under(&f.out());
    let out = f.run(&["render", "--today", TODAY]);
    assert!(
        out.stderr.contains("0 created, 0 updated, 3 unchanged"),
        "{}",
        out.stderr
    );
    assert_eq!(files_under(&f.out()), before);
}

#[test]
fn render_check_names_the_files_that_differ() {
    let f = Fixture::example();
    assert_eq!(f.run(&["render", "--today", TODAY]).code, 0);
    let out = f.run(&["render", "--today", TODAY, "--check"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    f.write("rendered/acme-prod/values/cilium.yaml", "edited: by hand\n");
    f.write("rendered/acme-prod/notes.txt", "stale\n");
    std::fs::remove_file(f.out().join("globex-dev/apps/root.yaml")).unwrap();
    let out = f.run(&["render", "--today", TODAY, "--check"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "acme-prod: differs: values/cilium.yaml\nacme-prod: stale: notes.txt\nglobex-dev: missing: apps/root.yaml\n"
    );
    // --check writes nothing.
    assert_eq!(
        f.read("rendered/acme-prod/values/cilium.yaml"),
        "edited: by hand\n"
    );
    // A render repairs the tree and removes the stale file.
    let out = f.run(&["render", "--today", TODAY]);
    assert!(
        out.stderr.contains("0 created, 2 updated, 1 unchanged"),
        "{}",
        out.stderr
    );
    assert!(!f.out().join("acme-prod/notes.txt").exists());
    assert_eq!(f.run(&["render", "--today", TODAY, "--check"]).code, 0);
}

#[test]
fn a_cluster_removed_from_the_fleet_is_removed_from_the_output() {
    let f = Fixture::example();
    assert_eq!(f.run(&["render", "--today", TODAY]).code, 0);
    std::fs::remove_file(f.path().join("overlays/clusters/globex-dev.yaml")).unwrap();
    let check = f.run(&["render", "--today", TODAY, "--check"]);
    assert_eq!(check.code, 1);
    assert!(
        check
            .stdout
            .contains("stale: globex-dev/ (no longer in the fleet)"),
        "{}",
        check.stdout
    );
    let out = f.run(&["render", "--today", TODAY]);
    assert!(out.stderr.contains("removed globex-dev"), "{}", out.stderr);
    assert!(!f.out().join("globex-dev").exists());
}

#[test]
fn a_failed_render_leaves_the_previous_tree_untouched() {
    let f = Fixture::example();
    assert_eq!(f.run(&["render", "--today", TODAY]).code, 0);
    let before = files_under(&f.out());
    f.edit(
        "blueprints/cilium/values.yaml.j2",
        "{{ settings.replicas | tojson }}",
        "{{ settings.replicaz | tojson }}",
    );
    let out = f.run(&["render", "--today", TODAY]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("blueprints/cilium/values.yaml.j2:5: rendering for cluster `acme-prod` failed: an undefined value reached a filter (a misspelt or missing name)"),
        "{}",
        out.stderr
    );
    assert_eq!(files_under(&f.out()), before);
}

#[test]
fn renders_are_identical_whatever_the_thread_count() {
    let f = Fixture::example();
    assert_eq!(
        f.run(&["render", "--today", TODAY, "-j", "1", "--out", "one"])
            .code,
        0
    );
    assert_eq!(
        f.run(&["render", "--today", TODAY, "-j", "2", "--out", "two"])
            .code,
        0
    );
    assert_eq!(
        f.run(&["render", "--today", TODAY, "-j", "8", "--out", "eight"])
            .code,
        0
    );
    let one = files_under(&f.path().join("one"));
    assert!(one.len() > 40);
    assert_eq!(one, files_under(&f.path().join("two")));
    assert_eq!(one, files_under(&f.path().join("eight")));
}

#[test]
fn render_of_selected_clusters_only() {
    let f = Fixture::example();
    let out = f.run(&["render", "--today", TODAY, "--cluster", "globex-dev"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(f.out().join("globex-dev").is_dir());
    assert!(!f.out().join("acme-prod").exists());
    let out = f.run(&["render", "--today", TODAY, "--cluster", "acme-prd"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("error: cluster `acme-prd` is not in the fleet"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: did you mean `acme-prod`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn explain_names_the_layer_file_and_line() {
    let f = Fixture::example();
    let out = f.run(&[
        "explain",
        "acme-prod",
        "values.kube-prometheus-stack.prometheus.prometheusSpec.retention",
        "--today",
        TODAY,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains(": 45d\n  from cluster at overlays/clusters/acme-prod.yaml:"),
        "{}",
        out.stdout
    );
    let out = f.run(&[
        "explain",
        "globex-dev",
        "values.kube-prometheus-stack.prometheus.prometheusSpec.retention",
        "--today",
        TODAY,
    ]);
    assert!(
        out.stdout.contains(
            ": 7d\n  from blueprint-template at blueprints/kube-prometheus-stack/values.yaml.j2:"
        ),
        "{}",
        out.stdout
    );
    let out = f.run(&[
        "explain",
        "globex-dev",
        "settings.policyAction",
        "--today",
        TODAY,
        "--output",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["value"], "Audit");
    assert_eq!(v["origin"]["layer"], "tier");
    assert!(
        v["origin"]["location"]
            .as_str()
            .unwrap()
            .starts_with("overlays/tiers/devtest.yaml:")
    );
}

#[test]
fn the_committed_cluster_schema_is_current_and_specs_reference_it() {
    let f = Fixture::example();
    let out = f.run(&["schema"]);
    assert_eq!(out.code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(schema["title"], "ClusterSpec");
    let committed =
        std::fs::read_to_string(crate::support::repo().join("schemas/cluster.schema.json"))
            .unwrap();
    assert_eq!(
        committed, out.stdout,
        "run `cargo run -- schema > schemas/cluster.schema.json`"
    );
    for c in ["acme-prod", "globex-dev", "initech-prod"] {
        let spec = f.read(&format!("overlays/clusters/{c}.yaml"));
        assert!(
            spec.starts_with("# yaml-language-server: $schema=../../schemas/cluster.schema.json\n")
        );
    }
}

/// Runs `render` on a broken fixture; asserts exit 2, the exact diagnostic and no output.
fn assert_rejected(f: &Fixture, expected: &str) {
    let out = f.run(&["render", "--today", TODAY]);
    assert_eq!(out.code, 2, "stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains(expected),
        "expected `{expected}` in:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
    assert!(
        !f.out().exists(),
        "a rejected render wrote {:?}",
        files_under(&f.out())
    );
}

#[test]
fn malformed_yaml() {
    let f = Fixture::example();
    f.edit(
        "overlays/clusters/acme-prod.yaml",
        "zones: [AZ05, AZ06, AZ07]",
        "zones: [AZ05, AZ06, AZ07",
    );
    assert_rejected(&f, "error: overlays/clusters/acme-prod.yaml:6:");
    assert_rejected(&f, "invalid YAML");
}

#[test]
fn an_unknown_field_suggests_the_right_one() {
    let f = Fixture::example();
    f.edit(
        "overlays/clusters/acme-prod.yaml",
        "  gitRunner:",
        "  gitRuner:",
    );
    assert_rejected(
        &f,
        "error: overlays/clusters/acme-prod.yaml:32:3: unknown field `gitRuner`",
    );
    assert_rejected(&f, "hint: did you mean `gitRunner`?");
}

#[test]
fn an_eight_core_worker() {
    let f = Fixture::example();
    f.edit(
        "overlays/clusters/acme-prod.yaml",
        "size: {vcpu: 16, memoryGiB: 32",
        "size: {vcpu: 8, memoryGiB: 32",
    );
    assert_rejected(
        &f,
        "error: overlays/clusters/acme-prod.yaml:23:5: a worker needs at least 12 vCPU and 24 GiB of memory, not 8 vCPU and 32 GiB",
    );
}

#[test]
fn a_template_that_writes_outside_its_directory() {
    let f = Fixture::example();
    f.write(
        "blueprints/metallb/manifests/escape.yaml.j2",
        "#! file: ../../talos/controlplane.yaml\nkind: Evil\n",
    );
    assert_rejected(
        &f,
        "error: blueprints/metallb/manifests/escape.yaml.j2: output path `../../talos/controlplane.yaml` leaves `manifests/metallb` (cluster `acme-prod`)",
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let f = Fixture::example();
    f.edit(
        "overlays/clusters/acme-prod.yaml",
        "maxPods: 110",
        "maxPods: 111",
    );
    f.edit(
        "overlays/clusters/globex-dev.yaml",
        "talos: v1.12.11",
        "talos: v1.12.99",
    );
    f.edit(
        "overlays/clusters/initech-prod.yaml",
        "zone: AZ07, address: 10.40.1.13",
        "zone: AZ09, address: 10.40.1.13",
    );
    let out = f.run(&["validate", "--today", TODAY]);
    assert_eq!(out.code, 2);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: overlays"))
        .collect();
    assert_eq!(
        errors,
        [
            "error: overlays/clusters/acme-prod.yaml:24:5: at most 110 pods per node, not 111",
            "error: overlays/clusters/globex-dev.yaml:8:3: the catalog has no installer for Talos v1.12.99",
            "error: overlays/clusters/initech-prod.yaml:12:5: control-plane nodes must be one per zone",
            "error: overlays/clusters/initech-prod.yaml:15:35: `initech-prod-cp-3` is in zone `AZ09`, which the cluster does not have",
        ]
    );
    assert!(
        out.stderr.contains("error: 4 error(s), 1 warning(s)"),
        "{}",
        out.stderr
    );
}

#[test]
fn help_documents_the_exit_codes() {
    let out = crate::support::run_in(crate::support::repo(), &["render", "--help"]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains("3  the environment failed"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_change_to_one_cluster_rewrites_only_that_cluster() {
    let f = Fixture::example();
    assert_eq!(f.run(&["render", "--today", TODAY]).code, 0);
    f.edit(
        "overlays/clusters/globex-dev.yaml",
        "kubeContext: admin@globex-dev",
        "kubeContext: admin@globex-dev\nsettings: {replicas: 1}",
    );
    let out = f.run(&["render", "--today", TODAY]);
    assert!(
        out.stderr.contains("0 created, 1 updated, 2 unchanged"),
        "{}",
        out.stderr
    );
    // A change to a tier rewrites the clusters of that tier only (both production ones:
    // the inputs hash in the lock of acme-prod changes even where its values do not).
    f.edit(
        "overlays/tiers/production.yaml",
        "retention: 30d",
        "retention: 31d",
    );
    let out = f.run(&["render", "--today", TODAY]);
    assert!(
        out.stderr.contains("0 created, 2 updated, 1 unchanged"),
        "{}",
        out.stderr
    );
    assert!(
        f.read("rendered/globex-dev/kubeprint.lock")
            .contains("cluster: globex-dev")
    );
}

/// kubeprint-core's tests read the example fleet compiled in (the core reads no file):
/// its list must name every input file of the example fleet.
#[test]
fn every_file_of_the_example_fleet_is_listed_for_the_core_tests() {
    let root = crate::support::repo();
    let listed =
        std::fs::read_to_string(root.join("crates/kubeprint-core/src/model/example.rs")).unwrap();
    let mut missing = Vec::new();
    for top in ["fleet.yaml", "versions.yaml", "blueprints", "overlays"] {
        for e in walkdir::WalkDir::new(root.join(top)).sort_by_file_name() {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                if !listed.contains(&format!("example_file!(\"{rel}\")")) {
                    missing.push(rel);
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "add to crates/kubeprint-core/src/model/example.rs: {missing:?}"
    );
}
