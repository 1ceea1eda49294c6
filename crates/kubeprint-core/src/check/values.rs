//! Helm values against their chart: `values.schema.json`, the default `values.yaml` keys,
//! and values that become a custom resource's `spec`. Embedded from `schemas/upstream/charts/`.

use std::collections::{BTreeMap, BTreeSet};

use super::errors;
use crate::yaml::{self, Value};

macro_rules! chart {
    ($name:literal, schema) => {
        (
            $name,
            include_str!(concat!(
                "../../../../schemas/upstream/charts/",
                $name,
                "/values.yaml"
            )),
            Some(include_str!(concat!(
                "../../../../schemas/upstream/charts/",
                $name,
                "/values.schema.json"
            ))),
        )
    };
    ($name:literal) => {
        (
            $name,
            include_str!(concat!(
                "../../../../schemas/upstream/charts/",
                $name,
                "/values.yaml"
            )),
            None,
        )
    };
}

/// (chart name, default values.yaml, values.schema.json) of every chart we have.
const CHARTS: &[(&str, &str, Option<&str>)] = &[
    chart!("cilium", schema),
    chart!("cert-manager", schema),
    chart!("metallb", schema),
    chart!("capsule", schema),
    chart!("loki", schema),
    chart!("ingress-nginx"),
    chart!("kube-prometheus-stack"),
    chart!("harbor"),
    chart!("opencost"),
    chart!("kyverno"),
    chart!("rook-ceph"),
    chart!("rook-ceph-cluster"),
    chart!("argo-cd"),
];

/// Sub-maps of chart values whose keys are fixed, checked one level deeper than the top.
///
/// Only maps whose every key is written out in the chart's default `values.yaml` are
/// listed: free-form maps (`controller.config`, `configs.cm`, `grafana.ini`, label and
/// annotation maps) would give false alarms, so they are never descended into.
const FIXED_SUBMAPS: &[(&str, &[&str])] = &[
    (
        "ingress-nginx",
        &[
            "controller",
            "controller.service",
            "controller.ingressClassResource",
        ],
    ),
    (
        "argo-cd",
        &[
            "configs",
            "server",
            "server.ingress",
            "controller",
            "repoServer",
            "applicationSet",
            "crds",
        ],
    ),
    (
        "harbor",
        &[
            "expose",
            "expose.ingress",
            "expose.tls",
            "persistence",
            "persistence.persistentVolumeClaim",
            "portal",
            "core",
            "jobservice",
            "registry",
            "trivy",
            "metrics",
        ],
    ),
    (
        "kube-prometheus-stack",
        &[
            "prometheus",
            "prometheus.prometheusSpec",
            "alertmanager",
            "alertmanager.alertmanagerSpec",
            "crds",
        ],
    ),
    (
        "opencost",
        &[
            "opencost",
            "opencost.ui",
            "opencost.ui.ingress",
            "opencost.prometheus",
            "opencost.exporter",
        ],
    ),
    (
        "kyverno",
        &[
            "admissionController",
            "backgroundController",
            "cleanupController",
            "reportsController",
        ],
    ),
    ("rook-ceph", &["crds", "monitoring"]),
    ("rook-ceph-cluster", &["toolbox", "cephClusterMetadata"]),
];

/// Chart values that are a custom resource's `spec` once the chart renders them:
/// (chart, values key, apiVersion, kind), checked against that CRD's `spec` schema.
const VALUES_AS_CRD_SPEC: &[(&str, &str, &str, &str)] = &[(
    "rook-ceph-cluster",
    "cephClusterSpec",
    "ceph.rook.io/v1",
    "CephCluster",
)];

pub(super) struct Chart {
    pub(super) defaults: Value,
    keys: BTreeSet<String>,
    schema: Option<jsonschema::Validator>,
    /// (values key, validator of the CRD `spec` that key becomes).
    crd_specs: Vec<(String, jsonschema::Validator)>,
}

/// The embedded charts, compiled: chart name → defaults, keys and schemas.
pub(super) fn compile() -> BTreeMap<String, Chart> {
    CHARTS
        .iter()
        .map(|(name, values, schema)| {
            let defaults = yaml::parse(name, values)
                .expect("embedded chart values parse")
                .value;
            let keys = defaults
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let schema = schema.map(|s| {
                let s: Value = serde_json::from_str(s).expect("embedded values schema is JSON");
                jsonschema::validator_for(&s).expect("embedded values schema compiles")
            });
            let crd_specs = VALUES_AS_CRD_SPEC
                .iter()
                .filter(|(chart, ..)| chart == name)
                .map(|(_, key, api, kind)| {
                    (key.to_string(), super::crds::crd_spec_validator(api, kind))
                })
                .collect();
            (
                name.to_string(),
                Chart {
                    defaults,
                    keys,
                    schema,
                    crd_specs,
                },
            )
        })
        .collect()
}

/// Checks Helm values against a chart: its schema and its top-level keys.
pub(super) fn check_values(c: &Chart, chart: &str, values: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(m) = values.as_object() {
        let known: Vec<String> = c.keys.iter().cloned().collect();
        for key in m.keys() {
            // `global` is Helm's own, valid in every chart.
            if !c.keys.contains(key) && key != "global" {
                let hint = yaml::did_you_mean(key, &known)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                out.push((
                    key.clone(),
                    format!(
                        "`{key}` is not a value of chart `{chart}`: Helm would ignore it{hint}"
                    ),
                ));
            }
        }
    }
    for path in FIXED_SUBMAPS
        .iter()
        .filter(|(name, _)| *name == chart)
        .flat_map(|(_, paths)| paths.iter())
    {
        out.extend(unknown_submap_keys(chart, path, &c.defaults, values));
    }
    // Helm validates the chart's defaults with the user's values merged over them.
    let mut merged = c.defaults.clone();
    helm_merge(&mut merged, values);
    if let Some(v) = &c.schema {
        out.extend(errors(v, &merged));
    }
    for (key, v) in &c.crd_specs {
        if let Some(spec) = merged.get(key) {
            out.extend(errors(v, spec).into_iter().map(|(p, msg)| {
                (
                    yaml::child_path(key, &p).trim_end_matches('.').to_string(),
                    msg,
                )
            }));
        }
    }
    out
}

/// The keys of `values` at `path` that the chart's default map at `path` does not have.
fn unknown_submap_keys(
    chart: &str,
    path: &str,
    defaults: &Value,
    values: &Value,
) -> Vec<(String, String)> {
    let pointer = format!("/{}", path.replace('.', "/"));
    let (Some(Value::Object(known)), Some(Value::Object(given))) =
        (defaults.pointer(&pointer), values.pointer(&pointer))
    else {
        return Vec::new();
    };
    if known.is_empty() {
        return Vec::new();
    }
    let names: Vec<String> = known.keys().cloned().collect();
    given
        .keys()
        .filter(|k| !known.contains_key(*k))
        .map(|key| {
            let hint = yaml::did_you_mean(key, &names)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            (
                yaml::child_path(path, key),
                format!(
                    "`{path}.{key}` is not a value of chart `{chart}`: Helm would ignore it{hint}"
                ),
            )
        })
        .collect()
}

/// Helm's merge of user values over chart defaults: maps merge, the rest replaces, null deletes.
fn helm_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.shift_remove(k);
                } else if let Some(bv) = b.get_mut(k).filter(|bv| bv.is_object() && v.is_object()) {
                    helm_merge(bv, v);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_sub_map_is_a_non_empty_map_of_its_chart() {
        // Guards the allowlist against typos: a path that is not a map would check nothing.
        let charts = compile();
        assert_eq!(charts.len(), CHARTS.len());
        for (chart, paths) in FIXED_SUBMAPS {
            let defaults = &charts.get(*chart).expect("a chart we embed").defaults;
            for path in *paths {
                let pointer = format!("/{}", path.replace('.', "/"));
                let m = defaults.pointer(&pointer).and_then(Value::as_object);
                assert!(m.is_some_and(|m| !m.is_empty()), "{chart}: `{path}`");
            }
        }
        for (chart, key, ..) in VALUES_AS_CRD_SPEC {
            assert!(
                charts[*chart].defaults.get(*key).is_some(),
                "{chart}: `{key}`"
            );
        }
    }
}
