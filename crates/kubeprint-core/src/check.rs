//! Checks a rendered tree against upstream schemas: custom resources against their CRD,
//! Helm values against the chart's `values.schema.json` and default `values.yaml` keys,
//! core objects for the fields they need. Pure: the schemas are embedded in the binary.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::Serialize;

use crate::yaml::{self, Value};

/// One problem in a rendered tree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    /// The file, relative to the tree, with `:line:column` when known.
    pub location: String,
    /// `Kind namespace/name` of the object, when the problem is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.object {
            Some(o) => write!(f, "{}: {o}: {}", self.location, self.message),
            None => write!(f, "{}: {}", self.location, self.message),
        }
    }
}

/// What a check looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub problems: Vec<Problem>,
    /// Objects checked against a CRD schema.
    pub custom_resources: usize,
    /// Core objects checked for their required fields.
    pub core_objects: usize,
    /// Values files checked against their chart.
    pub values_files: usize,
    /// Talos machine config documents checked against the Talos schema of their version.
    pub talos_documents: usize,
    /// Kinds found that no schema here covers, with their count.
    pub unchecked_kinds: BTreeMap<String, usize>,
}

macro_rules! crd {
    ($api:literal, $kind:literal, $file:literal) => {
        (
            $api,
            $kind,
            include_str!(concat!("../../../schemas/upstream/", $file)),
        )
    };
}

/// (apiVersion, kind, openAPIV3Schema as JSON) of every CRD we have.
const CRDS: &[(&str, &str, &str)] = &[
    crd!(
        "argoproj.io/v1alpha1",
        "Application",
        "argo-cd/crds/openapi-json/applications.argoproj.io_v1alpha1.json"
    ),
    crd!(
        "argoproj.io/v1alpha1",
        "AppProject",
        "argo-cd/crds/openapi-json/appprojects.argoproj.io_v1alpha1.json"
    ),
    crd!(
        "argoproj.io/v1alpha1",
        "ApplicationSet",
        "argo-cd/crds/openapi-json/applicationsets.argoproj.io_v1alpha1.json"
    ),
    crd!(
        "kyverno.io/v1",
        "ClusterPolicy",
        "kyverno/crds/openapi-json/clusterpolicies.kyverno.io_v1.json"
    ),
    crd!(
        "kyverno.io/v2beta1",
        "ClusterPolicy",
        "kyverno/crds/openapi-json/clusterpolicies.kyverno.io_v2beta1.json"
    ),
    crd!(
        "policies.kyverno.io/v1",
        "ValidatingPolicy",
        "kyverno/crds/openapi-json/validatingpolicies.policies.kyverno.io_v1.json"
    ),
    crd!(
        "policies.kyverno.io/v1beta1",
        "ValidatingPolicy",
        "kyverno/crds/openapi-json/validatingpolicies.policies.kyverno.io_v1beta1.json"
    ),
    crd!(
        "policies.kyverno.io/v1alpha1",
        "ValidatingPolicy",
        "kyverno/crds/openapi-json/validatingpolicies.policies.kyverno.io_v1alpha1.json"
    ),
    crd!(
        "capsule.clastix.io/v1beta2",
        "Tenant",
        "capsule/crds/openapi-json/tenants.capsule.clastix.io_v1beta2.json"
    ),
    crd!(
        "capsule.clastix.io/v1beta1",
        "Tenant",
        "capsule/crds/openapi-json/tenants.capsule.clastix.io_v1beta1.json"
    ),
    crd!(
        "cert-manager.io/v1",
        "ClusterIssuer",
        "cert-manager/crds/openapi-json/clusterissuers.cert-manager.io_v1.json"
    ),
    crd!(
        "metallb.io/v1beta1",
        "IPAddressPool",
        "metallb/crds/openapi-json/ipaddresspools.metallb.io_v1beta1.json"
    ),
    crd!(
        "metallb.io/v1beta1",
        "L2Advertisement",
        "metallb/crds/openapi-json/l2advertisements.metallb.io_v1beta1.json"
    ),
    crd!(
        "ceph.rook.io/v1",
        "CephCluster",
        "rook/crds/openapi-json/cephclusters.ceph.rook.io_v1.json"
    ),
];

macro_rules! chart {
    ($name:literal, schema) => {
        (
            $name,
            include_str!(concat!(
                "../../../schemas/upstream/charts/",
                $name,
                "/values.yaml"
            )),
            Some(include_str!(concat!(
                "../../../schemas/upstream/charts/",
                $name,
                "/values.schema.json"
            ))),
        )
    };
    ($name:literal) => {
        (
            $name,
            include_str!(concat!(
                "../../../schemas/upstream/charts/",
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

/// Core kinds and the fields each needs besides `metadata.name`.
const CORE: &[(&str, &str, &[&str])] = &[
    ("v1", "Namespace", &[]),
    ("v1", "ConfigMap", &[]),
    ("v1", "Service", &["spec"]),
    ("v1", "ServiceAccount", &[]),
    ("v1", "ResourceQuota", &["spec.hard"]),
    ("v1", "LimitRange", &["spec.limits"]),
    ("storage.k8s.io/v1", "StorageClass", &["provisioner"]),
    ("networking.k8s.io/v1", "IngressClass", &["spec.controller"]),
    (
        "networking.k8s.io/v1",
        "Ingress",
        &["spec.ingressClassName", "spec.rules"],
    ),
    ("networking.k8s.io/v1", "NetworkPolicy", &["spec"]),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", &[]),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &["roleRef", "subjects"],
    ),
    ("rbac.authorization.k8s.io/v1", "Role", &[]),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        &["roleRef", "subjects"],
    ),
];

struct Chart {
    defaults: Value,
    keys: BTreeSet<String>,
    schema: Option<jsonschema::Validator>,
    /// (values key, validator of the CRD `spec` that key becomes).
    crd_specs: Vec<(String, jsonschema::Validator)>,
}

/// The compiled schemas.
pub struct Schemas {
    crds: BTreeMap<(String, String), jsonschema::Validator>,
    charts: BTreeMap<String, Chart>,
}

impl Schemas {
    /// The schemas embedded in the binary, compiled once.
    pub fn embedded() -> &'static Schemas {
        static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
        SCHEMAS.get_or_init(|| {
            let crds = CRDS
                .iter()
                .map(|(api, kind, text)| {
                    let mut schema: Value =
                        serde_json::from_str(text).expect("embedded CRD schema is JSON");
                    structural_to_json_schema(&mut schema);
                    let v =
                        jsonschema::validator_for(&schema).expect("embedded CRD schema compiles");
                    ((api.to_string(), kind.to_string()), v)
                })
                .collect();
            let charts = CHARTS
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
                        let s: Value =
                            serde_json::from_str(s).expect("embedded values schema is JSON");
                        jsonschema::validator_for(&s).expect("embedded values schema compiles")
                    });
                    let crd_specs = VALUES_AS_CRD_SPEC
                        .iter()
                        .filter(|(chart, ..)| chart == name)
                        .map(|(_, key, api, kind)| (key.to_string(), crd_spec_validator(api, kind)))
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
                .collect();
            Schemas { crds, charts }
        })
    }

    /// Whether a CRD schema covers `apiVersion`/`kind`.
    pub fn has_crd(&self, api_version: &str, kind: &str) -> bool {
        self.crds
            .contains_key(&(api_version.to_string(), kind.to_string()))
    }

    /// Checks one object against its CRD schema; `None` when no schema covers it.
    pub fn check_custom_resource(&self, object: &Value) -> Option<Vec<(String, String)>> {
        let api = object.get("apiVersion")?.as_str()?;
        let kind = object.get("kind")?.as_str()?;
        let v = self.crds.get(&(api.to_string(), kind.to_string()))?;
        Some(errors(v, object))
    }

    /// Checks Helm values against a chart: its schema and its top-level keys.
    pub fn check_values(&self, chart: &str, values: &Value) -> Option<Vec<(String, String)>> {
        let c = self.charts.get(chart)?;
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
        Some(out)
    }
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

/// A validator of the `spec` of one embedded CRD, as strict as the whole-object one.
fn crd_spec_validator(api: &str, kind: &str) -> jsonschema::Validator {
    let (_, _, text) = CRDS
        .iter()
        .find(|(a, k, _)| *a == api && *k == kind)
        .expect("VALUES_AS_CRD_SPEC names an embedded CRD");
    let mut schema: Value = serde_json::from_str(text).expect("embedded CRD schema is JSON");
    structural_to_json_schema(&mut schema);
    let spec = schema
        .pointer("/properties/spec")
        .cloned()
        .expect("the CRD schema has a spec");
    jsonschema::validator_for(&spec).expect("embedded CRD spec schema compiles")
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

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<(String, String)> {
    v.iter_errors(instance)
        .map(|e| {
            (
                span_path(instance, &e.instance_path().to_string()),
                e.to_string(),
            )
        })
        .collect()
}

/// A JSON pointer (`/spec/items/0/name`) as a span path (`spec.items[0].name`).
fn span_path(instance: &Value, pointer: &str) -> String {
    let mut out = String::new();
    let mut v = Some(instance);
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        match v {
            Some(Value::Array(items)) => {
                out.push_str(&format!("[{seg}]"));
                v = seg.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            _ => {
                out = yaml::child_path(&out, &seg);
                v = v.and_then(|x| x.get(&seg));
            }
        }
    }
    out
}

/// Turns a Kubernetes structural schema into a strict JSON Schema: `nullable` allows
/// null, `x-kubernetes-int-or-string` allows both, and objects that list their
/// properties (and do not preserve unknown fields) reject any other property.
pub fn structural_to_json_schema(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if obj.remove("nullable") == Some(Value::Bool(true))
        && let Some(t) = obj.get("type").cloned()
    {
        obj.insert("type".into(), serde_json::json!([t, "null"]));
    }
    if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        obj.remove("type");
        obj.entry("anyOf")
            .or_insert_with(|| serde_json::json!([{"type": "integer"}, {"type": "string"}]));
    }
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if obj.contains_key("properties") && !obj.contains_key("additionalProperties") && !preserve {
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    for key in ["properties", "patternProperties", "$defs", "definitions"] {
        if let Some(Value::Object(props)) = obj.get_mut(key) {
            props.values_mut().for_each(structural_to_json_schema);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(v) = obj.get_mut(key) {
            structural_to_json_schema(v);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = obj.get_mut(key) {
            list.iter_mut().for_each(structural_to_json_schema);
        }
    }
}

/// Checks every YAML file of a rendered tree (`path → bytes`).
pub fn check_tree(files: &BTreeMap<String, Vec<u8>>, schemas: &Schemas) -> Report {
    let mut report = Report::default();
    let mut parsed: BTreeMap<&str, Vec<yaml::Document>> = BTreeMap::new();
    for (path, bytes) in files {
        if !(path.ends_with(".yaml") || path.ends_with(".yml")) || path.ends_with(".sops.yaml") {
            continue;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            report.problems.push(Problem {
                location: path.clone(),
                object: None,
                message: "not UTF-8 text".into(),
            });
            continue;
        };
        match yaml::parse_all(path, text) {
            Ok(docs) => {
                parsed.insert(path, docs);
            }
            Err(e) => report.problems.push(Problem {
                location: path.clone(),
                object: None,
                message: e.to_string(),
            }),
        }
    }

    // Which chart each values file belongs to, from the Applications that use it.
    let mut values_chart: BTreeMap<String, String> = BTreeMap::new();
    for docs in parsed.values() {
        for d in docs {
            if d.value.get("kind").and_then(Value::as_str) != Some("Application") {
                continue;
            }
            let sources = d
                .value
                .pointer("/spec/sources")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for s in sources.iter().chain(d.value.pointer("/spec/source")) {
                let (Some(chart), Some(files)) = (
                    s.get("chart").and_then(Value::as_str),
                    s.pointer("/helm/valueFiles").and_then(Value::as_array),
                ) else {
                    continue;
                };
                for f in files.iter().filter_map(Value::as_str) {
                    let path = f
                        .split_once('/')
                        .map(|(r, p)| if r.starts_with('$') { p } else { f })
                        .unwrap_or(f);
                    values_chart.insert(path.to_string(), chart.to_string());
                }
            }
        }
    }

    // The Talos version, from the installer image of a base config (`...installer:v1.13.9`).
    let talos_minor = parsed
        .iter()
        .filter(|(p, _)| p.starts_with("talos/"))
        .flat_map(|(_, docs)| docs.iter())
        .find_map(|d| {
            d.value
                .pointer("/machine/install/image")
                .and_then(Value::as_str)
        })
        .and_then(|image| image.rsplit(':').next())
        .and_then(|tag| crate::model::cluster::minor_of(tag.trim_start_matches('v')));

    for (path, docs) in &parsed {
        if path.starts_with("talos/") {
            let values: Vec<Value> = docs.iter().map(|d| d.value.clone()).collect();
            report.talos_documents += values.len();
            let problems = match &talos_minor {
                Some(minor) => crate::talos::schema::validate(minor, &values),
                None => vec!["no base config names the Talos installer image, so the Talos version is unknown".into()],
            };
            for message in problems {
                report.problems.push(Problem {
                    location: path.to_string(),
                    object: None,
                    message,
                });
            }
            continue;
        }
        if let Some(chart) = values_chart.get(*path) {
            let doc = docs.first();
            let empty = Value::Object(Default::default());
            let values = doc.map(|d| &d.value).unwrap_or(&empty);
            if let Some(errs) = schemas.check_values(chart, values) {
                report.values_files += 1;
                for (p, msg) in errs {
                    let at = doc.map(|d| d.spans.locate(&p)).unwrap_or_default();
                    report.problems.push(Problem {
                        location: format!("{path}:{at}"),
                        object: None,
                        message: msg,
                    });
                }
            }
            continue;
        }
        if path.starts_with("values/") {
            continue;
        }
        for doc in docs {
            check_object(path, doc, schemas, &mut report);
        }
    }
    report.problems.sort();
    report
}

fn check_object(path: &str, doc: &yaml::Document, schemas: &Schemas, report: &mut Report) {
    let v = &doc.value;
    let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let ns = v.pointer("/metadata/namespace").and_then(Value::as_str);
    let object = Some(match ns {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    });
    let mut problem = |p: &str, message: String| {
        report.problems.push(Problem {
            location: format!("{path}:{}", doc.spans.locate(p)),
            object: object.clone(),
            message,
        });
    };
    if api.is_empty() || kind.is_empty() {
        problem(
            "",
            "not a Kubernetes object: `apiVersion` and `kind` are required".into(),
        );
        return;
    }
    if name.is_empty() {
        problem("metadata", "`metadata.name` is required".into());
    } else if !crate::model::net::is_dns_name(name) {
        problem(
            "metadata.name",
            format!("`{name}` is not a valid object name (lowercase DNS subdomain)"),
        );
    }
    if kind == "Secret" {
        problem(
            "",
            "a Secret in the rendered repository would put a secret in Git in plaintext".into(),
        );
        return;
    }
    if let Some(errs) = schemas.check_custom_resource(v) {
        report.custom_resources += 1;
        for (p, msg) in errs {
            problem(&p, msg);
        }
        return;
    }
    if let Some((_, _, required)) = CORE.iter().find(|(a, k, _)| *a == api && *k == kind) {
        report.core_objects += 1;
        for field in *required {
            if v.pointer(&format!("/{}", field.replace('.', "/")))
                .is_none()
            {
                problem("", format!("`{field}` is required"));
            }
        }
        return;
    }
    *report
        .unchecked_kinds
        .entry(format!("{api}/{kind}"))
        .or_default() += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tree(files: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn every_embedded_schema_compiles() {
        let s = Schemas::embedded();
        assert_eq!(s.crds.len(), CRDS.len());
        assert_eq!(s.charts.len(), CHARTS.len());
    }

    #[test]
    fn a_misspelt_application_field_is_caught_with_its_line() {
        let app = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: x\n  namespace: argocd\nspec:\n  project: default\n  destination: {server: https://kubernetes.default.svc}\n  source: {repoURL: https://e.x/r.git, path: apps, targetRevison: main}\n";
        let report = check_tree(&tree(&[("apps/x.yaml", app)]), Schemas::embedded());
        assert_eq!(report.custom_resources, 1);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        let p = &report.problems[0];
        assert!(p.location.starts_with("apps/x.yaml:9:"), "{p}");
        assert!(p.message.contains("targetRevison"), "{p}");
    }

    #[test]
    fn values_keys_are_checked_against_the_chart() {
        let app = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: cilium, namespace: argocd}\nspec:\n  project: default\n  destination: {server: https://kubernetes.default.svc}\n  sources:\n  - {repoURL: https://helm.cilium.io/, chart: cilium, targetRevision: 1.20.0, helm: {valueFiles: [$values/values/cilium.yaml]}}\n  - {repoURL: https://e.x/r.git, targetRevision: main, ref: values}\n";
        let values = "hubble:\n  enabled: true\nkubeProxyReplacment: true\n";
        let report = check_tree(
            &tree(&[("apps/cilium.yaml", app), ("values/cilium.yaml", values)]),
            Schemas::embedded(),
        );
        assert_eq!(report.values_files, 1);
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.location == "values/cilium.yaml:3:1"
                    && p.message.contains("did you mean `kubeProxyReplacement`")),
            "{:?}",
            report.problems
        );
    }

    /// An Application (chart `chart`, values file `values/x.yaml`) and that values file.
    fn chart_tree(chart: &str, values: &str) -> BTreeMap<String, Vec<u8>> {
        let app = format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {{name: x, namespace: argocd}}\nspec:\n  project: default\n  destination: {{server: https://kubernetes.default.svc, namespace: x}}\n  sources:\n  - {{repoURL: https://charts.example, chart: {chart}, targetRevision: 1.0.0, helm: {{valueFiles: [$values/values/x.yaml]}}}}\n  - {{repoURL: https://e.x/r.git, targetRevision: main, ref: values}}\n"
        );
        tree(&[("apps/x.yaml", &app), ("values/x.yaml", values)])
    }

    #[test]
    fn every_fixed_sub_map_is_a_non_empty_map_of_its_chart() {
        // Guards the allowlist against typos: a path that is not a map would check nothing.
        let s = Schemas::embedded();
        for (chart, paths) in FIXED_SUBMAPS {
            let defaults = &s.charts.get(*chart).expect("a chart we embed").defaults;
            for path in *paths {
                let pointer = format!("/{}", path.replace('.', "/"));
                let m = defaults.pointer(&pointer).and_then(Value::as_object);
                assert!(m.is_some_and(|m| !m.is_empty()), "{chart}: `{path}`");
            }
        }
        for (chart, key, ..) in VALUES_AS_CRD_SPEC {
            assert!(
                s.charts[*chart].defaults.get(*key).is_some(),
                "{chart}: `{key}`"
            );
        }
    }

    #[test]
    fn an_application_without_destination_is_caught() {
        let app = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: x, namespace: argocd}\nspec:\n  project: default\n  source: {repoURL: https://e.x/r.git, path: apps, targetRevision: main}\n";
        let report = check_tree(&tree(&[("apps/x.yaml", app)]), Schemas::embedded());
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.message.contains("destination")),
            "{:?}",
            report.problems
        );
    }

    #[test]
    fn fixed_sub_maps_are_checked_one_level_deeper() {
        let values = "controller:\n  replicaCont: 2\n  config: {anything-goes: \"1\"}\n  service:\n    externalTraficPolicy: Local\n";
        let report = check_tree(&chart_tree("ingress-nginx", values), Schemas::embedded());
        let messages: Vec<&str> = report.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{:?}", report.problems);
        assert!(
            messages[0].contains("`controller.replicaCont`")
                && messages[0].contains("did you mean `replicaCount`")
        );
        assert!(messages[1].contains("`controller.service.externalTraficPolicy`"));
        assert_eq!(report.problems[0].location, "values/x.yaml:2:3");
        // A free-form map under a checked one is not descended into.
        assert!(!messages.iter().any(|m| m.contains("anything-goes")));
    }

    #[test]
    fn a_free_form_map_is_not_checked() {
        let values = "controller:\n  config:\n    whitelist-source-range: 10.0.0.0/8\n";
        let report = check_tree(&chart_tree("ingress-nginx", values), Schemas::embedded());
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    #[test]
    fn the_ceph_cluster_spec_in_values_is_checked_against_the_crd() {
        let values = "cephClusterSpec:\n  mon:\n    count: 3\n  storage:\n    useAllNodes: false\n    nodes:\n    - name: n1\n      devics: [{name: sdb}]\n";
        let report = check_tree(
            &chart_tree("rook-ceph-cluster", values),
            Schemas::embedded(),
        );
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        let p = &report.problems[0];
        assert!(p.message.contains("devics"), "{p}");
        assert!(p.location.starts_with("values/x.yaml:7:"), "{p}");
        let ok = "cephClusterSpec:\n  storage:\n    nodes:\n    - name: n1\n      devices: [{name: sdb}]\n";
        let report = check_tree(&chart_tree("rook-ceph-cluster", ok), Schemas::embedded());
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    #[test]
    fn a_values_schema_violation_is_caught() {
        // cilium's schema types `kubeProxyReplacement` (boolean or string), not a list.
        let report = check_tree(
            &chart_tree("cilium", "kubeProxyReplacement: [true]\n"),
            Schemas::embedded(),
        );
        assert!(!report.problems.is_empty());
        assert!(
            report
                .problems
                .iter()
                .all(|p| p.location.starts_with("values/x.yaml:1:")),
            "{:?}",
            report.problems
        );
    }

    #[test]
    fn an_ingress_needs_its_class_and_rules() {
        let report = check_tree(
            &tree(&[(
                "manifests/i.yaml",
                "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec: {}\n",
            )]),
            Schemas::embedded(),
        );
        assert_eq!(report.core_objects, 1);
        assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    }

    #[test]
    fn secrets_and_nameless_objects_are_problems() {
        let report = check_tree(
            &tree(&[(
                "manifests/a.yaml",
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {}\n",
            )]),
            Schemas::embedded(),
        );
        assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    }

    #[test]
    fn structural_schemas_become_strict() {
        let mut s = json!({"type": "object", "properties": {"a": {"type": "string", "nullable": true}, "p": {"x-kubernetes-int-or-string": true}, "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"k": {"type": "string"}}}}});
        structural_to_json_schema(&mut s);
        let v = jsonschema::validator_for(&s).unwrap();
        assert!(v.is_valid(&json!({"a": null, "p": 3, "free": {"other": 1}})));
        assert!(v.is_valid(&json!({"p": "50%"})));
        assert!(!v.is_valid(&json!({"b": 1})));
    }

    #[test]
    fn talos_documents_are_checked_against_their_version() {
        let base = "version: v1alpha1\nmachine:\n  type: worker\n  install:\n    image: ghcr.io/siderolabs/installer:v1.13.9\n    disk: /dev/sda\n";
        let good = check_tree(&tree(&[("talos/worker.yaml", base)]), Schemas::embedded());
        assert_eq!(good.talos_documents, 1);
        assert!(good.problems.is_empty(), "{:?}", good.problems);
        let bad = format!(
            "{base}  instal: {{}}\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: x\nauto: nope\n"
        );
        let report = check_tree(&tree(&[("talos/worker.yaml", &bad)]), Schemas::embedded());
        assert_eq!(report.talos_documents, 2);
        assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
        assert!(
            report
                .problems
                .iter()
                .all(|p| p.location == "talos/worker.yaml")
        );
    }
}
