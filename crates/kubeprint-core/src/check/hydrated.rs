//! Hydrated clusters against what a real apply and sync would check: custom resources
//! against the CRDs the stack itself installs (taken from the hydrated charts), objects too
//! large for client-side apply, references that must resolve inside the cluster's own
//! objects (IngressClass, StorageClass, MetalLB pools, ClusterIssuers, CRD kinds,
//! namespaces, values files and refs), charts that fail to template; and the Secrets the
//! stack expects to exist, listed and never rendered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde::Serialize;

use super::builtin::{BuiltinSchemas, Lookup, without_nulls};
use super::{crds::structural_to_json_schema, errors};
use crate::hydrate::{App, HydratedCluster, ObjectId, Unresolved, object_id, objects};
use crate::yaml::{self, Value};

/// What kind of fault a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A chart failed to template (or its output is not YAML).
    Template,
    /// A values file or `ref` of a multi-source Application does not resolve.
    Source,
    /// A custom resource does not match the schema of the CRD that defines it.
    CustomResource,
    /// A custom resource of a kind that no CRD of the cluster defines.
    MissingCrd,
    /// An object whose last-applied annotation would pass the 262,144-byte limit.
    TooLarge,
    /// A reference to an IngressClass, StorageClass, MetalLB pool or issuer that no object
    /// of the cluster is.
    Reference,
    /// An object in a namespace that nothing creates.
    Namespace,
    /// A built-in object against the OpenAPI schema of the cluster's Kubernetes version.
    Schema,
}

/// One finding of `check --hydrate`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    pub cluster: String,
    pub app: String,
    /// `Kind namespace/name` of the object, when the finding is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    pub kind: Kind,
    pub message: String,
    pub fix: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: app {}", self.cluster, self.app)?;
        if let Some(o) = &self.object {
            write!(f, ": {o}")?;
        }
        write!(f, ": {}\n  fix: {}", self.message, self.fix)
    }
}

/// The size limit of all annotations of an object, which holds the last-applied copy of
/// client-side apply (`kubectl.kubernetes.io/last-applied-configuration`).
pub const ANNOTATIONS_LIMIT: usize = 262_144;

/// Namespaces every cluster has.
const BUILTIN_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Compiled CRD schemas, shared between clusters: the same CRD compiles once.
#[derive(Default)]
pub struct CrdSchemas {
    compiled: Mutex<BTreeMap<String, std::sync::Arc<Option<jsonschema::Validator>>>>,
}

impl CrdSchemas {
    fn validator(&self, schema: &Value) -> std::sync::Arc<Option<jsonschema::Validator>> {
        let key = crate::digest::sha256_hex(schema.to_string().as_bytes());
        if let Some(v) = self.compiled.lock().expect("not poisoned").get(&key) {
            return v.clone();
        }
        let mut s = schema.clone();
        structural_to_json_schema(&mut s);
        let v = std::sync::Arc::new(jsonschema::validator_for(&s).ok());
        self.compiled
            .lock()
            .expect("not poisoned")
            .insert(key, v.clone());
        v
    }
}

struct Obj<'a> {
    app: &'a App,
    id: ObjectId,
    value: &'a Value,
}

/// Checks one hydrated cluster. `apps` and `unresolved` are what hydration planned;
/// `hydrated.apps` are in the same order as `apps`.
///
/// `kubernetes` is the cluster's Kubernetes version (`1.36.3`): built-in objects are held
/// against the OpenAPI schema of its minor ([`super::builtin`]); a minor without a kept
/// schema is not checked (the caller says so: [`super::builtin::MINORS`]).
pub fn check(
    cluster: &str,
    kubernetes: &str,
    apps: &[App],
    unresolved: &[Unresolved],
    hydrated: &HydratedCluster,
    crds: &CrdSchemas,
    builtin: &BuiltinSchemas,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut finding =
        |app: &str, object: Option<&ObjectId>, kind: Kind, message: String, fix: String| {
            out.push(Finding {
                cluster: cluster.to_string(),
                app: app.to_string(),
                object: object.map(|o| o.to_string()),
                kind,
                message,
                fix,
            })
        };
    for u in unresolved {
        finding(
            &u.app,
            None,
            Kind::Source,
            format!("{}: {}", u.location, u.message),
            u.fix.clone(),
        );
    }
    let mut all: Vec<Obj<'_>> = Vec::new();
    for (app, h) in apps.iter().zip(&hydrated.apps) {
        if let Some(e) = &h.error {
            finding(
                &app.name,
                None,
                Kind::Template,
                e.clone(),
                "fix the values (or the chart version) so that `helm template` succeeds; Argo CD fails to generate this Application's manifests".into(),
            );
        }
        for v in &h.objects {
            all.push(Obj {
                app,
                id: object_id(v),
                value: v,
            });
        }
    }

    // The CRDs of the cluster: (group, version, kind) → the served version's schema.
    let mut crd_schema: BTreeMap<(String, String, String), &Value> = BTreeMap::new();
    let mut crd_kinds: BTreeSet<(String, String)> = BTreeSet::new();
    for o in all
        .iter()
        .filter(|o| o.id.kind == "CustomResourceDefinition")
    {
        let v = o.value;
        let (Some(group), Some(kind)) = (
            v.pointer("/spec/group").and_then(Value::as_str),
            v.pointer("/spec/names/kind").and_then(Value::as_str),
        ) else {
            continue;
        };
        crd_kinds.insert((group.to_string(), kind.to_string()));
        for ver in v
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(name), Some(schema)) = (
                ver.get("name").and_then(Value::as_str),
                ver.pointer("/schema/openAPIV3Schema"),
            ) {
                crd_schema.insert((group.into(), name.into(), kind.into()), schema);
            }
        }
    }

    // Components whose chart was not hydrated (no archive): the CRDs it installs are not
    // known, so their manifests' custom resources cannot be held against them.
    let unavailable: BTreeSet<&str> = apps
        .iter()
        .zip(&hydrated.apps)
        .filter(|(_, h)| h.unavailable.is_some())
        .map(|(a, _)| a.name.as_str())
        .collect();
    // Custom resources against their CRD; kinds nothing installs.
    for o in &all {
        let group = o.id.group();
        if objects::is_builtin_group(group) || o.id.kind.is_empty() {
            continue;
        }
        let version =
            o.id.api_version
                .rsplit_once('/')
                .map(|(_, v)| v)
                .unwrap_or("");
        match crd_schema.get(&(group.to_string(), version.to_string(), o.id.kind.clone())) {
            Some(schema) => {
                if let Some(v) = crds.validator(schema).as_ref() {
                    let mut object = o.value.clone();
                    // The API server fills these; a CRD schema rarely lists them.
                    if let Some(m) = object.as_object_mut() {
                        m.remove("status");
                    }
                    let errs = errors(v, &object);
                    if !errs.is_empty() {
                        finding(
                            &o.app.name,
                            Some(&o.id),
                            Kind::CustomResource,
                            format!(
                                "does not match the schema of its CRD ({} {}): {}",
                                o.id.api_version,
                                o.id.kind,
                                first_errors(&errs),
                            ),
                            "fix the fields named (in the values or manifest that produce the object); the API server rejects it".into(),
                        );
                    }
                }
            }
            None if unavailable.contains(o.app.name.trim_end_matches("-manifests")) => {}
            None => {
                let what = if crd_kinds.contains(&(group.to_string(), o.id.kind.clone())) {
                    format!(
                        "no CRD of the cluster serves `{}` for kind {}",
                        o.id.api_version, o.id.kind
                    )
                } else {
                    format!(
                        "no CRD of the cluster defines {} ({}): nothing the stack installs provides this kind, so the sync fails",
                        o.id.kind, o.id.api_version
                    )
                };
                finding(
                    &o.app.name,
                    Some(&o.id),
                    Kind::MissingCrd,
                    what,
                    format!(
                        "install the chart that provides the `{group}` CRDs before this Application, or turn this object off in its values"
                    ),
                );
            }
        }
    }

    // Built-in objects against the OpenAPI schema of the cluster's Kubernetes minor.
    let minor = super::builtin::minor_of(kubernetes).unwrap_or_default();
    for o in &all {
        let group = o.id.group();
        // A `v1 List` (or `ConfigMapList`, ...) is unwrapped by kubectl and Argo CD before
        // anything is sent: not an object of the API.
        if !objects::is_builtin_group(group) || o.id.kind.is_empty() || o.id.kind.ends_with("List")
        {
            continue;
        }
        match builtin.lookup(&minor, &o.id.api_version, &o.id.kind) {
            Lookup::NoMinor => break,
            Lookup::NotBuiltin => {}
            Lookup::NotServed => {
                if crd_kinds.contains(&(group.to_string(), o.id.kind.clone())) {
                    continue;
                }
                finding(
                    &o.app.name,
                    Some(&o.id),
                    Kind::Schema,
                    format!(
                        "Kubernetes {minor} does not serve {} {}: the apply fails with \"no matches for kind\"",
                        o.id.api_version, o.id.kind
                    ),
                    format!(
                        "use an apiVersion of {} that Kubernetes {minor} serves (often a newer chart version does)",
                        o.id.kind
                    ),
                );
            }
            Lookup::Schema(v) => {
                let object = without_nulls(o.value);
                let errs = errors(&v, &object);
                if errs.is_empty() {
                    continue;
                }
                finding(
                    &o.app.name,
                    Some(&o.id),
                    Kind::Schema,
                    format!(
                        "does not match the OpenAPI schema of Kubernetes {minor} ({} {}): {}",
                        o.id.api_version,
                        o.id.kind,
                        first_errors(&errs),
                    ),
                    "fix the fields named (in the values or manifest that produce the object); a strict apply rejects unknown fields and wrong types".into(),
                );
            }
        }
    }

    // Too large for client-side apply.
    for o in &all {
        let size = serde_json::to_vec(o.value).map(|b| b.len()).unwrap_or(0);
        if size <= ANNOTATIONS_LIMIT || o.app.server_side_apply() {
            continue;
        }
        let per_object = o
            .value
            .pointer("/metadata/annotations/argocd.argoproj.io~1sync-options")
            .and_then(Value::as_str)
            .is_some_and(|s| s.split(',').any(|p| p.trim() == "ServerSideApply=true"));
        if per_object {
            continue;
        }
        finding(
            &o.app.name,
            Some(&o.id),
            Kind::TooLarge,
            format!(
                "is {size} bytes: client-side apply keeps a copy in the last-applied annotation, whose limit is {ANNOTATIONS_LIMIT} bytes (\"metadata.annotations: Too long\"), and the Application does not sync with ServerSideApply=true"
            ),
            "add `ServerSideApply=true` to the blueprint's `syncOptions` (or the annotation `argocd.argoproj.io/sync-options: ServerSideApply=true` to the object)".into(),
        );
    }

    references(&all, apps, &mut finding);
    out.sort();
    out.dedup();
    out
}

fn names_of<'a>(all: &'a [Obj<'a>], kind: &str) -> BTreeSet<&'a str> {
    all.iter()
        .filter(|o| o.id.kind == kind)
        .map(|o| o.id.name.as_str())
        .collect()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn annotation<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.pointer("/metadata/annotations")
        .and_then(|a| a.get(name))
        .and_then(Value::as_str)
}

fn hint(word: &str, known: &BTreeSet<&str>) -> String {
    let known: Vec<String> = known.iter().map(|s| s.to_string()).collect();
    let mut s = format!(
        "the cluster has {}",
        if known.is_empty() {
            "none".to_string()
        } else {
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if let Some(m) = yaml::did_you_mean(word, &known) {
        s = format!("did you mean `{m}`? {s}");
    }
    s
}

/// The pod template spec of a workload, or the spec of a Pod.
fn pod_spec(v: &Value) -> Option<&Value> {
    match v.get("kind").and_then(Value::as_str)? {
        "Pod" => v.get("spec"),
        "CronJob" => v.pointer("/spec/jobTemplate/spec/template/spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            v.pointer("/spec/template/spec")
        }
        _ => None,
    }
}

fn references(
    all: &[Obj<'_>],
    apps: &[App],
    finding: &mut impl FnMut(&str, Option<&ObjectId>, Kind, String, String),
) {
    let ingress_classes = names_of(all, "IngressClass");
    let storage_classes = names_of(all, "StorageClass");
    let pools = names_of(all, "IPAddressPool");
    let cluster_issuers = names_of(all, "ClusterIssuer");
    let default_storage = all.iter().any(|o| {
        o.id.kind == "StorageClass"
            && annotation(o.value, "storageclass.kubernetes.io/is-default-class") == Some("true")
    });
    let mut namespaces: BTreeSet<&str> = names_of(all, "Namespace");
    namespaces.extend(BUILTIN_NAMESPACES);
    for a in apps.iter().filter(|a| a.creates_namespace()) {
        namespaces.insert(&a.namespace);
    }
    let issuers: BTreeSet<(&str, &str)> = all
        .iter()
        .filter(|o| o.id.kind == "Issuer")
        .map(|o| (o.id.namespace.as_str(), o.id.name.as_str()))
        .collect();

    for o in all {
        let v = o.value;
        let app = &o.app.name;
        let id = Some(&o.id);
        if !o.id.namespace.is_empty() && !namespaces.contains(o.id.namespace.as_str()) {
            finding(
                app,
                id,
                Kind::Namespace,
                format!(
                    "namespace `{}` is not created by any Namespace object or Application of the cluster (the Application's own is `{}`)",
                    o.id.namespace, o.app.namespace
                ),
                format!(
                    "add a Namespace `{}` to the component's manifests, or deploy the object in `{}`",
                    o.id.namespace, o.app.namespace
                ),
            );
        }
        let mut class = |field: &str, name: &str, known: &BTreeSet<&str>, what: &str, fix: &str| {
            if !known.contains(name) {
                finding(
                    app,
                    id,
                    Kind::Reference,
                    format!(
                        "`{field}: {name}` names no {what} of the cluster ({})",
                        hint(name, known)
                    ),
                    fix.to_string(),
                );
            }
        };
        match o.id.kind.as_str() {
            "Ingress" => {
                if let Some(c) = str_at(v, "/spec/ingressClassName") {
                    class("spec.ingressClassName", c, &ingress_classes, "IngressClass", "use an IngressClass an ingress controller of the stack creates (`nginx-external-secured`, `nginx-external`, `nginx-internal`)");
                }
                if let Some(i) = annotation(v, "cert-manager.io/cluster-issuer") {
                    class("cert-manager.io/cluster-issuer", i, &cluster_issuers, "ClusterIssuer", "use a ClusterIssuer of the cert-manager component (`letsencrypt`, `internal-ca`)");
                }
            }
            "Certificate" => {
                if let Some(n) = str_at(v, "/spec/issuerRef/name") {
                    match str_at(v, "/spec/issuerRef/kind").unwrap_or("Issuer") {
                        "ClusterIssuer" => class("spec.issuerRef.name", n, &cluster_issuers, "ClusterIssuer", "use a ClusterIssuer of the cert-manager component"),
                        "Issuer" if !issuers.contains(&(o.id.namespace.as_str(), n)) => finding(
                            app,
                            id,
                            Kind::Reference,
                            format!("`spec.issuerRef.name: {n}` names no Issuer in namespace `{}`", o.id.namespace),
                            "create the Issuer in the Certificate's namespace or use a ClusterIssuer".into(),
                        ),
                        _ => {}
                    }
                }
            }
            "PersistentVolumeClaim" => match str_at(v, "/spec/storageClassName") {
                Some(c) if !c.is_empty() => class("spec.storageClassName", c, &storage_classes, "StorageClass", "use a StorageClass of the Ceph cluster (`ceph-block`, `ceph-filesystem`, `ceph-bucket`)"),
                _ if !default_storage => finding(app, id, Kind::Reference, "the claim names no StorageClass and no StorageClass of the cluster is the default".into(), "mark a StorageClass default or name one".into()),
                _ => {}
            },
            "StatefulSet" => {
                for (i, t) in v
                    .pointer("/spec/volumeClaimTemplates")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    if let Some(c) = str_at(t, "/spec/storageClassName").filter(|c| !c.is_empty()) {
                        class(&format!("spec.volumeClaimTemplates[{i}].spec.storageClassName"), c, &storage_classes, "StorageClass", "use a StorageClass of the Ceph cluster (`ceph-block`, `ceph-filesystem`, `ceph-bucket`)");
                    }
                }
            }
            "Service" => {
                for key in ["metallb.io/address-pool", "metallb.universe.tf/address-pool"] {
                    if let Some(p) = annotation(v, key) {
                        class(key, p, &pools, "MetalLB IPAddressPool", "use a pool of the metallb component (`internal`, `external-secured`, `external`)");
                    }
                }
            }
            "L2Advertisement" | "BGPAdvertisement" => {
                for p in v
                    .pointer("/spec/ipAddressPools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    class("spec.ipAddressPools", p, &pools, "MetalLB IPAddressPool", "name a pool of the metallb component");
                }
            }
            _ => {}
        }
    }
}

/// One Secret the stack expects to exist in a cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
pub struct ExpectedSecret {
    pub namespace: String,
    pub name: String,
    /// The keys read from it (empty: the whole Secret, e.g. `envFrom` or a TLS volume).
    pub keys: BTreeSet<String>,
    /// Every reference is optional.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    /// `app: Kind namespace/name` of each object that reads it.
    #[serde(rename = "usedBy")]
    pub used_by: BTreeSet<String>,
}

/// The Secrets one cluster expects, by (namespace, name).
pub type ExpectedSecrets = BTreeMap<(String, String), ExpectedSecret>;

/// The Secrets a hydrated cluster reads that none of its objects creates: referenced from
/// pods (env, envFrom, volumes, image pull secrets), Ingress TLS without cert-manager,
/// cert-manager issuers (a CA's key pair, a DNS-01 solver's credentials; a ClusterIssuer's
/// in cert-manager's own namespace), and `secretRef`/`existingSecret`-style fields of other
/// objects; Secrets that a chart renders, that a cert-manager Certificate or an annotated
/// Ingress produces, or that cert-manager creates itself (an ACME account key), are not
/// expected.
pub fn expected_secrets(cluster: &HydratedCluster) -> ExpectedSecrets {
    let mut created: BTreeSet<(String, String)> = BTreeSet::new();
    let objects: Vec<(&str, ObjectId, &Value)> = cluster
        .apps
        .iter()
        .flat_map(|a| {
            a.objects
                .iter()
                .map(move |v| (a.name.as_str(), object_id(v), v))
        })
        .collect();
    for (_, id, v) in &objects {
        match id.kind.as_str() {
            "Secret" => {
                created.insert((id.namespace.clone(), id.name.clone()));
            }
            "Certificate" => {
                if let Some(s) = str_at(v, "/spec/secretName") {
                    created.insert((id.namespace.clone(), s.to_string()));
                }
            }
            "Ingress"
                if annotation(v, "cert-manager.io/cluster-issuer").is_some()
                    || annotation(v, "cert-manager.io/issuer").is_some() =>
            {
                for t in v
                    .pointer("/spec/tls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(s) = str_at(t, "/secretName") {
                        created.insert((id.namespace.clone(), s.to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    // Where cert-manager reads a ClusterIssuer's Secrets: its cluster resource namespace,
    // by default the namespace it runs in.
    let cert_manager_ns = objects
        .iter()
        .find(|(_, id, v)| {
            id.kind == "Deployment"
                && str_at(v, "/metadata/labels/app.kubernetes.io~1name") == Some("cert-manager")
                && str_at(v, "/metadata/labels/app.kubernetes.io~1component") == Some("controller")
        })
        .map_or("cert-manager", |(_, id, _)| id.namespace.as_str())
        .to_string();
    let mut out = ExpectedSecrets::new();
    let mut add = |ns: &str, name: &str, key: Option<&str>, optional: bool, by: String| {
        if name.is_empty()
            || name.contains("{{")
            || created.contains(&(ns.to_string(), name.to_string()))
        {
            return;
        }
        let e = out
            .entry((ns.to_string(), name.to_string()))
            .or_insert_with(|| ExpectedSecret {
                namespace: ns.into(),
                name: name.into(),
                optional: true,
                ..Default::default()
            });
        if let Some(k) = key {
            e.keys.insert(k.to_string());
        }
        e.optional &= optional;
        e.used_by.insert(by);
    };
    for (app, id, v) in &objects {
        let by = format!("{app}: {id}");
        let ns = id.namespace.as_str();
        if let Some(spec) = pod_spec(v) {
            for c in ["containers", "initContainers"]
                .iter()
                .flat_map(|k| spec.get(*k).and_then(Value::as_array).into_iter().flatten())
            {
                for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(r) = e.pointer("/valueFrom/secretKeyRef") {
                        let opt = r.get("optional").and_then(Value::as_bool).unwrap_or(false);
                        add(
                            ns,
                            str_at(r, "/name").unwrap_or(""),
                            str_at(r, "/key"),
                            opt,
                            by.clone(),
                        );
                    }
                }
                for e in c
                    .get("envFrom")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(r) = e.get("secretRef") {
                        let opt = r.get("optional").and_then(Value::as_bool).unwrap_or(false);
                        add(ns, str_at(r, "/name").unwrap_or(""), None, opt, by.clone());
                    }
                }
            }
            for vol in spec
                .get("volumes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let mut secret_volume = |s: &Value, name_key: &str| {
                    let opt = s.get("optional").and_then(Value::as_bool).unwrap_or(false);
                    let name = str_at(s, &format!("/{name_key}")).unwrap_or("");
                    let items: Vec<&str> = s
                        .get("items")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|i| str_at(i, "/key"))
                        .collect();
                    if items.is_empty() {
                        add(ns, name, None, opt, by.clone());
                    }
                    for k in items {
                        add(ns, name, Some(k), opt, by.clone());
                    }
                };
                if let Some(s) = vol.get("secret") {
                    secret_volume(s, "secretName");
                }
                for src in vol
                    .pointer("/projected/sources")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(s) = src.get("secret") {
                        secret_volume(s, "name");
                    }
                }
            }
            for p in spec
                .get("imagePullSecrets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                add(
                    ns,
                    str_at(p, "/name").unwrap_or(""),
                    Some(".dockerconfigjson"),
                    false,
                    by.clone(),
                );
            }
            continue;
        }
        match id.kind.as_str() {
            "Ingress" => {
                for t in v
                    .pointer("/spec/tls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(s) = str_at(t, "/secretName") {
                        add(ns, s, Some("tls.crt"), false, by.clone());
                        add(ns, s, Some("tls.key"), false, by.clone());
                    }
                }
            }
            // Argo CD reads `$<secret>:<key>` from its own namespace.
            "ConfigMap" => {
                for value in v
                    .get("data")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flat_map(|m| m.values())
                {
                    for (secret, key) in dollar_refs(value.as_str().unwrap_or("")) {
                        add(ns, &secret, Some(&key), false, by.clone());
                    }
                }
            }
            "Issuer" | "ClusterIssuer" if id.api_version.starts_with("cert-manager.io/") => {
                let ns = if id.kind == "ClusterIssuer" {
                    cert_manager_ns.as_str()
                } else {
                    ns
                };
                if let Some(s) = str_at(v, "/spec/ca/secretName") {
                    add(ns, s, Some("tls.crt"), false, by.clone());
                    add(ns, s, Some("tls.key"), false, by.clone());
                }
                // The solvers' credentials; the ACME account key is cert-manager's own.
                if let Some(solvers) = v.pointer("/spec/acme/solvers") {
                    generic_refs(solvers, "", &mut |name, key| {
                        add(ns, name, key, false, by.clone());
                    });
                }
            }
            "Secret" | "CustomResourceDefinition" => {}
            _ if !ns.is_empty() => generic_refs(v, "", &mut |name, key| {
                add(ns, name, key, false, by.clone());
            }),
            _ => {}
        }
    }
    out
}

/// `$name:key` references of Argo CD's `argocd-cm` values.
fn dollar_refs(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in text.split('$').skip(1) {
        let token: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
            .collect();
        if let Some((name, key)) = token.split_once(':')
            && !name.is_empty()
            && !key.is_empty()
        {
            out.push((name.to_string(), key.to_string()));
        }
    }
    out
}

/// Fields of custom resources that name a Secret: `*SecretRef: {name, key}`,
/// `credentialsSecret: {name}`, `existingSecret: NAME`.
fn generic_refs(v: &Value, key: &str, add: &mut impl FnMut(&str, Option<&str>)) {
    match v {
        Value::Object(m) => {
            let k = key.to_ascii_lowercase();
            if (k.ends_with("secretref") || k.ends_with("secret"))
                && k != "secret"
                && let Some(name) = m.get("name").and_then(Value::as_str)
            {
                add(name, m.get("key").and_then(Value::as_str));
                return;
            }
            for (ck, cv) in m {
                generic_refs(cv, ck, add);
            }
        }
        Value::String(s) if key == "existingSecret" => add(s, None),
        Value::Array(items) => items.iter().for_each(|i| generic_refs(i, key, add)),
        _ => {}
    }
}

/// The one generated file that lists the expected Secrets of every cluster.
pub fn expected_secrets_yaml(per_cluster: &BTreeMap<String, ExpectedSecrets>) -> String {
    let mut clusters = serde_json::Map::new();
    for (name, secrets) in per_cluster {
        let list: Vec<&ExpectedSecret> = secrets.values().collect();
        clusters.insert(
            name.clone(),
            serde_json::to_value(list).expect("serialisable"),
        );
    }
    let doc = serde_json::json!({ "clusters": clusters });
    format!(
        "# The Secrets the stack expects to exist, per cluster: namespace, name and the keys read.\n# Generated by `kubeprint hydrate` from the hydrated objects; create them out of band\n# (never in the rendered repositories). `optional: true`: every reference may be absent.\n{}",
        yaml::value_to_string(&doc)
    )
}

/// The first five schema errors (`path`: message), and how many more there are.
fn first_errors(errs: &[(String, String)]) -> String {
    let list: Vec<String> = errs
        .iter()
        .take(5)
        .map(|(p, m)| format!("`{p}`: {m}"))
        .collect();
    let more = if errs.len() > 5 {
        format!("; and {} more", errs.len() - 5)
    } else {
        String::new()
    };
    format!("{}{more}", list.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argo_cd_dollar_references_are_secrets() {
        assert_eq!(
            dollar_refs("clientSecret: $oidc-client:clientSecret\nx: $y"),
            vec![("oidc-client".to_string(), "clientSecret".to_string())]
        );
    }

    #[test]
    fn secrets_created_by_the_stack_are_not_expected() {
        let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "env": [
                {"name": "A", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "made", "key": "k"}}}]}],
                "volumes": [{"name": "v", "secret": {"secretName": "tls", "optional": true}}]}}}});
        let made = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "made", "namespace": "n"}});
        let cluster = HydratedCluster {
            apps: vec![crate::hydrate::HydratedApp {
                name: "a".into(),
                objects: vec![dep, made],
                error: None,
                unavailable: None,
            }],
        };
        let e = expected_secrets(&cluster);
        let names: Vec<&str> = e.values().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["creds", "tls"]);
        assert_eq!(
            e[&("n".into(), "creds".into())]
                .keys
                .iter()
                .collect::<Vec<_>>(),
            vec!["password"]
        );
        assert!(e[&("n".into(), "tls".into())].optional);
    }

    #[test]
    fn an_issuers_ca_and_dns01_credentials_are_expected_in_cert_managers_namespace() {
        let issuer = json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "le"},
            "spec": {"acme": {"privateKeySecretRef": {"name": "le-account-key"}, "solvers": [
                {"dns01": {"rfc2136": {"nameserver": "192.0.2.53:53", "tsigSecretSecretRef": {"name": "tsig", "key": "tsig-secret"}}}},
                {"http01": {"ingress": {"ingressClassName": "nginx-external"}}}]}}});
        let ca = json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "internal-ca"},
            "spec": {"ca": {"secretName": "internal-ca"}}});
        let controller = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "cm", "namespace": "certs", "labels": {
                "app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/component": "controller"}},
            "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}});
        let cluster = HydratedCluster {
            apps: vec![crate::hydrate::HydratedApp {
                name: "cert-manager".into(),
                objects: vec![issuer, ca, controller],
                error: None,
                unavailable: None,
            }],
        };
        let e = expected_secrets(&cluster);
        let found: Vec<(&str, &str, Vec<&String>)> = e
            .values()
            .map(|s| {
                (
                    s.namespace.as_str(),
                    s.name.as_str(),
                    s.keys.iter().collect(),
                )
            })
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "certs",
                    "internal-ca",
                    vec![&"tls.crt".to_string(), &"tls.key".to_string()]
                ),
                ("certs", "tsig", vec![&"tsig-secret".to_string()]),
            ]
        );
    }
}
