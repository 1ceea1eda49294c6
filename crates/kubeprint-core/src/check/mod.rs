//! Checks a rendered tree against upstream schemas, one module per schema source:
//! [`crds`] (custom resources against their CRD), [`values`] (Helm values against the
//! chart's `values.schema.json` and default keys), [`core_kinds`] (core objects for the
//! fields they need), [`talos`] (machine configs against the Talos schema of their
//! version), [`secrets`] (no Secret anywhere) and [`credentials`] (no chart default
//! credential in use, no credential in values). Pure: the schemas are embedded.
//! [`hydrated`] checks the objects of hydrated clusters (`check --hydrate`), built-in ones
//! against the OpenAPI schema of the cluster's Kubernetes minor ([`builtin`]).

pub mod builtin;
mod core_kinds;
mod crds;
mod credentials;
pub mod hydrated;
mod secrets;
mod talos;
mod values;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Serialize;

pub use crds::structural_to_json_schema;

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

/// The compiled schemas.
pub struct Schemas {
    crds: BTreeMap<(String, String), jsonschema::Validator>,
    charts: BTreeMap<String, values::Chart>,
}

impl Schemas {
    /// The schemas embedded in the binary, compiled once.
    pub fn embedded() -> &'static Schemas {
        static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
        SCHEMAS.get_or_init(|| Schemas {
            crds: crds::compile(),
            charts: values::compile(),
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
        Some(values::check_values(c, chart, values))
    }
}

/// Every error of `instance` against `v`: (span path, message).
pub(crate) fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<(String, String)> {
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
pub(crate) fn span_path(instance: &Value, pointer: &str) -> String {
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

/// Checks every YAML file of a rendered tree (`path → bytes`).
pub fn check_tree(files: &BTreeMap<String, Vec<u8>>, schemas: &Schemas) -> Report {
    let mut report = Report::default();
    let mut parsed: BTreeMap<&str, Vec<yaml::Document>> = BTreeMap::new();
    for (path, bytes) in files {
        if path.ends_with(".sops.yaml") {
            // Not checked against a schema; refused unless every value is encrypted.
            if let Err(e) = crate::sops::check_encrypted(path, &String::from_utf8_lossy(bytes)) {
                report.problems.push(Problem {
                    location: e.location,
                    object: None,
                    message: e.message,
                });
            }
            continue;
        }
        if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
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

    let talos_minor = talos::minor(&parsed);

    for (path, docs) in &parsed {
        if path.starts_with("talos/") {
            talos::check_file(path, docs, talos_minor.as_deref(), &mut report);
            continue;
        }
        if let Some(chart) = values_chart.get(*path) {
            let doc = docs.first();
            let empty = Value::Object(Default::default());
            let values = doc.map(|d| &d.value).unwrap_or(&empty);
            for (p, msg) in credentials::check(chart, values) {
                let at = doc.map(|d| d.spans.locate(&p)).unwrap_or_default();
                report.problems.push(Problem {
                    location: format!("{path}:{at}"),
                    object: None,
                    message: msg,
                });
            }
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
            check_object(path, doc, "", &doc.value, schemas, &mut report);
        }
    }
    report.problems.sort();
    report
}

/// `prefix` and a span path below it as one span path.
fn join(prefix: &str, path: &str) -> String {
    if path.is_empty() {
        prefix.to_string()
    } else if prefix.is_empty() || path.starts_with('[') {
        format!("{prefix}{path}")
    } else {
        yaml::child_path(prefix, path)
    }
}

/// Checks one object `v` of `doc`, found at span path `at` (`""` for the whole document,
/// `items[3]` inside a `List`).
fn check_object(
    path: &str,
    doc: &yaml::Document,
    at: &str,
    v: &Value,
    schemas: &Schemas,
    report: &mut Report,
) {
    let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    // `List`, `ConfigMapList`, ...: each item is an object of its own.
    if kind.ends_with("List")
        && let Some(items) = v.get("items").and_then(Value::as_array)
    {
        for (i, item) in items.iter().enumerate() {
            check_object(
                path,
                doc,
                &join(at, &format!("items[{i}]")),
                item,
                schemas,
                report,
            );
        }
        return;
    }
    let ns = v.pointer("/metadata/namespace").and_then(Value::as_str);
    let object = Some(match ns {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    });
    let mut problem = |p: &str, message: String| {
        report.problems.push(Problem {
            location: format!("{path}:{}", doc.spans.locate(&join(at, p))),
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
    if secrets::is_secret(v) {
        problem("", secrets::MESSAGE.into());
        return;
    }
    for p in secrets::embedded(v) {
        problem(&p, format!("{} (embedded at `{p}`)", secrets::MESSAGE));
    }
    if let Some(errs) = schemas.check_custom_resource(v) {
        report.custom_resources += 1;
        for (p, msg) in errs {
            problem(&p, msg);
        }
        return;
    }
    if let Some(missing) = core_kinds::missing_fields(api, kind, v) {
        report.core_objects += 1;
        for field in missing {
            problem("", format!("`{field}` is required"));
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

    fn tree(files: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
            .collect()
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
    fn a_secret_inside_a_list_or_embedded_in_an_object_is_found() {
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s, namespace: x}\n  stringData: {password: hunter2}\n";
        let nested = "apiVersion: v1\nkind: ConfigMapList\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  - {apiVersion: v1, kind: Secret, metadata: {name: deep}}\n";
        let policy = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: r\n    match: {any: [{resources: {kinds: [Namespace]}}]}\n    generate:\n      apiVersion: v1\n      kind: Secret\n      name: s\n      namespace: x\n      data:\n        type: Opaque\n        data: {token: aHVudGVyMg==}\n";
        let report = check_tree(
            &tree(&[
                ("manifests/list.yaml", list),
                ("manifests/nested.yaml", nested),
                ("manifests/policy.yaml", policy),
            ]),
            Schemas::embedded(),
        );
        let secrets: Vec<&Problem> = report
            .problems
            .iter()
            .filter(|p| p.message.contains("a Secret in the rendered repository"))
            .collect();
        assert_eq!(secrets.len(), 3, "{:?}", report.problems);
        assert!(
            secrets[0].location.starts_with("manifests/list.yaml:7:"),
            "{}",
            secrets[0]
        );
        assert_eq!(secrets[0].object.as_deref(), Some("Secret x/s"));
        assert_eq!(secrets[1].object.as_deref(), Some("Secret deep"));
        assert!(
            secrets[2].location.starts_with("manifests/policy.yaml:8:"),
            "{}",
            secrets[2]
        );
        // The ConfigMap inside the List is checked as an object of its own.
        assert_eq!(report.core_objects, 1);
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
