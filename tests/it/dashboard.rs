//! The Grafana dashboard is valid JSON and queries exactly the metrics `watch` exports.

use std::collections::BTreeSet;

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("kubeprint_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end] == b'_'
                || bytes[end].is_ascii_digit())
        {
            end += 1;
        }
        out.insert(text[start..end].to_string());
        i = end;
    }
    out
}

fn queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if let (true, Some(s)) =
                    (k == "expr" || k == "query" || k == "definition", v.as_str())
                {
                    out.push(s.to_string());
                }
                queries(v, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

#[test]
fn the_dashboard_uses_exactly_the_exported_metrics() {
    let text = include_str!("../../dashboards/kubeprint-fleet.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(text).expect("the dashboard is valid JSON");
    assert!(
        dashboard["panels"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
    let mut exprs = Vec::new();
    queries(&dashboard, &mut exprs);
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    let exported: BTreeSet<String> = kubeprint::metrics::METRICS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    let unknown: Vec<_> = used.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics nobody exports: {unknown:?}"
    );
    let unused: Vec<_> = exported.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "exported metrics without a panel: {unused:?}"
    );
    // Every panel id is unique, and every panel has a query.
    let panels = dashboard["panels"].as_array().unwrap();
    let ids: BTreeSet<i64> = panels.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len());
    assert!(
        panels
            .iter()
            .all(|p| p["targets"].as_array().is_some_and(|t| !t.is_empty()))
    );
}

/// The management cluster's `kubeprint-watch` component provisions this very dashboard.
#[test]
fn the_watch_blueprint_provisions_the_dashboard() {
    let template = include_str!("../../blueprints/kubeprint-watch/manifests/dashboard.yaml.j2");
    let raw = template
        .split_once("{% raw %}")
        .and_then(|(_, rest)| rest.split_once("{% endraw %}"))
        .map(|(body, _)| body)
        .expect("the dashboard is between raw markers");
    let unindented: String = raw
        .trim_matches('\n')
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let file = include_str!("../../dashboards/kubeprint-fleet.json");
    assert_eq!(
        unindented.trim_end(),
        file.trim_end(),
        "re-copy dashboards/kubeprint-fleet.json into the blueprint"
    );
}
