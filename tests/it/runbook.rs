//! `docs/runbook.md` stays true: every command of it is checked against what kubeprint
//! renders for the example clusters it uses (acme-prod, production; globex-dev, devtest).

use std::collections::{BTreeMap, BTreeSet};

use kubeprint::fleet;
use kubeprint::model::Role;
use kubeprint::tree::RenderedTree;
use kubeprint::yaml;

use crate::support::{TODAY, helm};

/// The shell lines of the runbook's `sh` blocks.
fn commands() -> Vec<String> {
    let text = std::fs::read_to_string(crate::support::repo().join("docs/runbook.md")).unwrap();
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("```") {
            inside = line == "```sh";
            continue;
        }
        if inside && !line.trim().is_empty() {
            out.push(line.trim().to_string());
        }
    }
    out
}

/// The value after `flag` in a command line.
fn flag<'a>(line: &'a str, flag: &str) -> Option<&'a str> {
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == flag {
            return words.next();
        }
    }
    None
}

#[test]
fn every_command_of_the_runbook_matches_the_rendered_clusters() {
    let sources = kubeprint::load::load_dir(crate::support::repo()).unwrap();
    let checked = fleet::check(&sources, TODAY.parse().unwrap()).unwrap();
    let names = fleet::select(&checked.fleet, &[]).unwrap();
    let trees: BTreeMap<String, RenderedTree> = fleet::render_all(&checked, &names).unwrap();
    let lines = commands();
    let runbook = std::fs::read_to_string(crate::support::repo().join("docs/runbook.md")).unwrap();
    for (cluster, tier) in [("acme-prod", "production"), ("globex-dev", "devtest")] {
        let spec = &checked.fleet.clusters[cluster].value;
        assert_eq!(
            checked.fleet.clusters[cluster].value.tier, tier,
            "the runbook shows {cluster} as {tier}"
        );
        assert!(
            runbook.contains(&format!("{} for {cluster}", spec.versions.talos)),
            "the runbook names {cluster}'s Talos version {}",
            spec.versions.talos
        );
        let mine: Vec<&String> = lines
            .iter()
            .filter(|l| {
                l.contains(&format!(" {cluster} "))
                    || l.contains(&format!("@{cluster} "))
                    || l.contains(&format!("--cluster {cluster}"))
            })
            .collect();
        assert!(
            mine.iter()
                .any(|l| **l == format!("kubeprint render --cluster {cluster}"))
        );
        assert!(
            mine.iter()
                .any(|l| **l == format!("kubeprint publish --cluster {cluster}"))
        );

        // Every node gets its config, at its address, control planes first.
        let mut applied = Vec::new();
        for l in mine
            .iter()
            .filter(|l| l.starts_with("kubeprint talos config"))
        {
            let words: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(words[3], cluster, "{l}");
            assert!(
                l.contains("| talosctl apply-config --insecure --nodes"),
                "{l}"
            );
            assert!(l.ends_with("--file /dev/stdin"), "{l}");
            applied.push((
                words[4].to_string(),
                flag(l, "--nodes").unwrap().to_string(),
            ));
        }
        let views = spec.node_views();
        let want: Vec<(String, String)> = views
            .iter()
            .map(|v| (v.host.name.clone(), v.host.address.clone()))
            .collect();
        assert_eq!(
            applied, want,
            "{cluster}: every node, in spec order (control planes first)"
        );
        let cps: Vec<&str> = views
            .iter()
            .filter(|v| v.role == Role::ControlPlane)
            .map(|v| v.host.address.as_str())
            .collect();

        // talosctl: the endpoint, the control planes as Talos API endpoints, bootstrap on one.
        let generate = mine
            .iter()
            .find(|l| l.starts_with("talosctl gen config"))
            .unwrap();
        let words: Vec<&str> = generate.split_whitespace().collect();
        assert_eq!(words[3], cluster);
        assert_eq!(words[4], spec.network.api_endpoint);
        assert!(generate.contains(&format!(
            "sops --decrypt {}",
            kubeprint::talos::secrets_path(cluster)
        )));
        let talosconfig = flag(generate, "--output").unwrap();
        let endpoint = lines
            .iter()
            .find(|l| {
                l.starts_with(&format!(
                    "talosctl --talosconfig {talosconfig} config endpoint"
                ))
            })
            .unwrap();
        let listed: Vec<&str> = endpoint.split_whitespace().skip(5).collect();
        assert_eq!(listed, cps, "{cluster}");
        let bootstrap = lines
            .iter()
            .find(|l| l.starts_with(&format!("talosctl --talosconfig {talosconfig} bootstrap")))
            .unwrap();
        assert_eq!(
            flag(bootstrap, "--nodes"),
            Some(cps[0]),
            "{cluster}: once, on the first control plane"
        );

        // kubectl reads the context talosctl merges: the spec's kubeContext.
        assert_eq!(spec.kube_context, format!("admin@{cluster}"));
        for l in lines
            .iter()
            .filter(|l| l.starts_with("kubectl") && l.contains(&format!("@{cluster} ")))
        {
            assert_eq!(
                flag(l, "--context"),
                Some(spec.kube_context.as_str()),
                "{l}"
            );
        }
        // The repository credential: where Argo CD looks for it, for the cluster's repository.
        let tree = &trees[cluster];
        let create = mine
            .iter()
            .find(|l| l.contains("create secret generic cluster-repository"))
            .unwrap_or_else(|| panic!("{cluster}: no repository credential"));
        assert!(create.contains("-n argocd"), "{create}");
        assert!(
            create.contains(&format!("--from-literal=url={}", spec.repo.url)),
            "{create}"
        );
        assert!(mine.iter().any(|l| l.contains(
            "-n argocd label secret cluster-repository argocd.argoproj.io/secret-type=repository"
        )));
        let root = yaml::parse(
            "root",
            std::str::from_utf8(tree.get("apps/root.yaml").unwrap()).unwrap(),
        )
        .unwrap()
        .value;
        assert_eq!(root["spec"]["source"]["repoURL"], spec.repo.url.as_str());
    }

    // Every Secret the rendered README of a cluster lists is created by step 6, with its
    // keys, in its namespace (step 6 is written for acme-prod; devtest reuses it).
    let readme = String::from_utf8(trees["acme-prod"].get("README.md").unwrap().to_vec()).unwrap();
    let mut listed = BTreeSet::new();
    for row in readme
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("| `"))
    {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        if cells.len() < 5 || !cells[2].starts_with('`') {
            continue;
        }
        let ns = cells[1].to_string();
        let name = cells[2].trim_matches('`').to_string();
        let keys: Vec<String> = cells[3]
            .split(", ")
            .map(|k| k.trim_matches('`').to_string())
            .collect();
        listed.insert((ns, name, keys));
    }
    assert!(listed.len() >= 10, "{listed:?}");
    for (ns, name, keys) in &listed {
        let line = lines
            .iter()
            .find(|l| {
                l.contains(&format!("-n {ns} create secret generic {name} "))
                    && l.contains("admin@acme-prod")
            })
            .unwrap_or_else(|| panic!("step 6 does not create {ns}/{name}"));
        for k in keys {
            assert!(
                line.contains(&format!("--from-literal={k}="))
                    || line.contains(&format!("--from-file={k}=")),
                "{ns}/{name}: key {k} in `{line}`"
            );
        }
    }
}

#[test]
fn the_runbook_waits_for_workloads_the_bootstrap_installs() {
    let sources = kubeprint::load::load_dir(crate::support::repo()).unwrap();
    let checked = fleet::check(&sources, TODAY.parse().unwrap()).unwrap();
    let tree = fleet::render_cluster(&checked, "acme-prod").unwrap();
    let lines = commands();
    let k8s = &checked.fleet.clusters["acme-prod"]
        .value
        .versions
        .kubernetes;
    let mut objects = BTreeSet::new();
    for app in helm::chart_apps(&tree)
        .iter()
        .filter(|a| a.name == "cilium" || a.name == "argo-cd")
    {
        for o in helm::objects(&helm::template(&tree, app, k8s)) {
            objects.insert(format!(
                "{}/{}/{}",
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(&app.namespace),
                o["kind"].as_str().unwrap().to_lowercase(),
                o["metadata"]["name"].as_str().unwrap()
            ));
        }
    }
    for l in lines
        .iter()
        .filter(|l| l.contains(" rollout status ") || l.contains(" port-forward "))
    {
        let ns = flag(l, "-n").unwrap();
        let target = l
            .split_whitespace()
            .find(|w| w.contains('/') && !w.starts_with("--"))
            .unwrap();
        let key = format!("{ns}/{target}");
        assert!(
            objects.contains(&key),
            "`{l}`: the bootstrap installs no {key}"
        );
    }
}
