//! Comparing two renders of the fleet: clusters, files, Kubernetes objects and fields.
//!
//! [`diff`] is pure: two maps of rendered trees in, a [`ChangeSet`] out. Clusters whose
//! changes are the same (up to their own name) are grouped, so that a change to 300
//! clusters reads as one change. [`report`] turns a change set into text, markdown or JSON.

pub mod report;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::fleet::{self, Checked};
use crate::model::{Fleet, Sources, paths};
use crate::render::LOCK_FILE;
use crate::tree::RenderedTree;
use crate::yaml::{self, Value};

/// One cluster's render at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRender {
    pub tier: String,
    pub tree: RenderedTree,
}

/// Every cluster's render at one revision, by name.
pub type FleetRender = BTreeMap<String, ClusterRender>;

/// What changed between two renders of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeSet {
    /// The clusters that changed (added, removed or with changed files), by name.
    pub clusters: BTreeMap<String, ClusterChange>,
    /// Clusters in both renders with the same files (the lock file left out).
    pub unchanged: Vec<String>,
    /// Distinct changes: clusters with the same change share a group. Largest first.
    pub groups: Vec<Group>,
    pub summary: Summary,
}

impl ChangeSet {
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }
}

/// What happened to one cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterChange {
    pub tier: String,
    pub status: Status,
    /// The changed files, in path order (for an added or removed cluster: every file).
    pub files: Vec<FileChange>,
}

/// Added, removed or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Added,
    Removed,
    Changed,
}

impl Status {
    pub fn sign(self) -> char {
        match self {
            Status::Added => '+',
            Status::Removed => '-',
            Status::Changed => '~',
        }
    }
}

/// One file's change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileChange {
    pub path: String,
    pub status: Status,
    /// For files of Kubernetes objects: the objects added, removed or changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectChange>,
    /// For other YAML files (Helm values) that changed: the changed fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
    /// For the rest of the changed files: a unified diff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A Kubernetes object's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectKey {
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {} {ns}/{}", self.api_version, self.kind, self.name),
            None => write!(f, "{} {} {}", self.api_version, self.kind, self.name),
        }
    }
}

/// One object's change; `fields` for a changed one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectChange {
    pub key: ObjectKey,
    pub status: Status,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

/// A field that changed: its dotted path, old and new values (absent when added/removed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// Clusters with the same change; `example` is the one whose change is shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub clusters: Vec<String>,
    pub example: String,
}

/// Counts for the review's first lines.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub total: usize,
    pub changed: usize,
    pub added: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub distinct_changes: usize,
    /// Changed (or added, or removed) clusters per tier.
    pub per_tier: BTreeMap<String, usize>,
    /// Object changes per Kubernetes kind over the fleet; Helm values files count as
    /// `HelmValues`, other files as `File`.
    pub per_kind: BTreeMap<String, KindCount>,
}

/// How many objects of a kind were added, changed and removed, fleet-wide.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KindCount {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
}

impl KindCount {
    fn count(&mut self, status: Status) {
        match status {
            Status::Added => self.added += 1,
            Status::Changed => self.changed += 1,
            Status::Removed => self.removed += 1,
        }
    }
}

/// Compares two renders of the fleet.
pub fn diff(base: &FleetRender, head: &FleetRender) -> ChangeSet {
    let mut clusters = BTreeMap::new();
    let mut unchanged = Vec::new();
    let names: std::collections::BTreeSet<&String> = base.keys().chain(head.keys()).collect();
    for name in names {
        match cluster_change(base.get(name), head.get(name)) {
            Some(c) => {
                clusters.insert(name.clone(), c);
            }
            None => unchanged.push(name.clone()),
        }
    }
    assemble(clusters, unchanged)
}

/// One cluster's change between its render at the base (`None`: not in the base fleet)
/// and at the head; `None` when nothing changed.
pub fn cluster_change(
    base: Option<&ClusterRender>,
    head: Option<&ClusterRender>,
) -> Option<ClusterChange> {
    match (base, head) {
        (None, Some(h)) => Some(ClusterChange {
            tier: h.tier.clone(),
            status: Status::Added,
            files: whole_tree(&h.tree, Status::Added),
        }),
        (Some(b), None) => Some(ClusterChange {
            tier: b.tier.clone(),
            status: Status::Removed,
            files: whole_tree(&b.tree, Status::Removed),
        }),
        (Some(b), Some(h)) => {
            let files = diff_trees(&b.tree, &h.tree);
            (!files.is_empty()).then(|| ClusterChange {
                tier: h.tier.clone(),
                status: Status::Changed,
                files,
            })
        }
        (None, None) => None,
    }
}

/// The change set of the clusters that changed and those that did not.
pub fn assemble(clusters: BTreeMap<String, ClusterChange>, unchanged: Vec<String>) -> ChangeSet {
    let groups = group(&clusters);
    let summary = summarise(&clusters, &unchanged, groups.len());
    ChangeSet {
        clusters,
        unchanged,
        groups,
        summary,
    }
}

/// Which revision a failure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Base,
    Head,
}

/// What a fleet diff took: the figures the benchmarks report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Work {
    /// Clusters rendered, both sides counted.
    pub renders: usize,
    /// Clusters in both fleets whose inputs hash is the same: not rendered at all.
    pub same_inputs: usize,
}

/// Whether the inputs every cluster shares (all but the cluster and tier files) are the
/// same in both fleets: with [`own_inputs`], what [`crate::lock::inputs_hash`] covers, compared by the
/// digests of the files rather than by hashing them again per cluster.
fn shared_inputs_equal(a: &Fleet, b: &Fleet) -> bool {
    fn shared(f: &Fleet) -> impl Iterator<Item = (&String, &String)> {
        f.input_digests
            .iter()
            .filter(|(p, _)| !p.starts_with(paths::CLUSTERS) && !p.starts_with(paths::TIERS))
    }
    shared(a).eq(shared(b))
}

/// The digests of the inputs of cluster `name` that are its own: its tier's file, its spec
/// and the files of its directory (see [`crate::lock::inputs_hash`]).
fn own_inputs<'f>(f: &'f Fleet, name: &str, tier: &str) -> Vec<(&'f str, &'f str)> {
    let spec = format!("{}{name}.yaml", paths::CLUSTERS);
    let dir = format!("{}{name}/", paths::CLUSTERS);
    let tier = format!("{}{tier}.yaml", paths::TIERS);
    let mut out: Vec<(&str, &str)> = [tier, spec]
        .iter()
        .filter_map(|p| f.input_digests.get_key_value(p))
        .map(|(p, d)| (p.as_str(), d.as_str()))
        .collect();
    out.extend(
        f.input_digests
            .range(dir.clone()..)
            .take_while(|(p, _)| p.starts_with(&dir))
            .map(|(p, d)| (p.as_str(), d.as_str())),
    );
    out
}

/// Diffs two checked fleets with the least work: a cluster whose inputs hash (tool
/// version, shared inputs, tier, own files) is the same on both sides is unchanged
/// without being rendered (render is pure); the others are rendered, one cluster's two
/// sides at a time, compared file by file on their bytes before any file is parsed, and
/// dropped: memory holds the changes, never the fleet's trees. `only` limits the clusters
/// (empty: all). A render failure is the first of the base in name order, else the head's.
pub fn diff_checked(
    base: &Checked,
    head: &Checked,
    only: &[String],
) -> Result<(ChangeSet, Work), (Side, fleet::Error)> {
    diff_checked_known(base, head, only, &BTreeSet::new())
}

/// The base's sources without the clusters whose inputs are, byte for byte, those of the
/// head (`head` is checked from `head_sources`): the shared files (all but the cluster and
/// tier files) equal, and the cluster's spec, its directory's files and its tier's file
/// equal. Such a cluster renders the same tree on both sides (render is pure) and
/// validates the same way (validation is per cluster, from those same files), so the base
/// needs neither parsing nor validating it: the head's check covered it. Returns the
/// reduced sources and those clusters' names, for [`diff_checked_known`].
pub fn without_same_clusters(
    base: &Sources,
    head_sources: &Sources,
    head: &Fleet,
) -> (Sources, BTreeSet<String>) {
    fn shared(s: &Sources) -> impl Iterator<Item = (&String, &String)> {
        s.files
            .iter()
            .filter(|(p, _)| !p.starts_with(paths::CLUSTERS) && !p.starts_with(paths::TIERS))
    }
    if !shared(base).eq(shared(head_sources)) {
        return (base.clone(), BTreeSet::new());
    }
    fn own<'s>(s: &'s Sources, name: &str, tier: &str) -> Vec<(String, Option<&'s String>)> {
        let spec = format!("{}{name}.yaml", paths::CLUSTERS);
        let dir = format!("{}{name}/", paths::CLUSTERS);
        let tier = format!("{}{tier}.yaml", paths::TIERS);
        let mut out: Vec<(String, Option<&String>)> = [tier, spec]
            .into_iter()
            .map(|p| {
                let t = s.files.get(&p);
                (p, t)
            })
            .collect();
        out.extend(
            s.files
                .range(dir.clone()..)
                .take_while(|(p, _)| p.starts_with(&dir))
                .map(|(p, t)| (p.clone(), Some(t))),
        );
        out
    }
    let same: BTreeSet<String> = head
        .clusters
        .iter()
        .filter(|(name, spec)| {
            let spec_path = format!("{}{name}.yaml", paths::CLUSTERS);
            base.files.contains_key(&spec_path)
                && own(base, name, &spec.value.tier) == own(head_sources, name, &spec.value.tier)
        })
        .map(|(name, _)| name.clone())
        .collect();
    // Copy only what is kept: a one-cluster change keeps a few files of thousands.
    let kept = |p: &String| {
        let Some(rest) = p.strip_prefix(paths::CLUSTERS) else {
            return true;
        };
        let name = match rest.split_once('/') {
            Some((dir, _)) => dir,
            None => rest.strip_suffix(".yaml").unwrap_or(rest),
        };
        !same.contains(name)
    };
    let reduced = Sources {
        files: base
            .files
            .iter()
            .filter(|(p, _)| kept(p))
            .map(|(p, t)| (p.clone(), t.clone()))
            .collect(),
        revision: base.revision.clone(),
    };
    (reduced, same)
}

/// [`diff_checked`], the clusters of `same` known unchanged (from
/// [`without_same_clusters`]: absent from `base`, present in `head`).
pub fn diff_checked_known(
    base: &Checked,
    head: &Checked,
    only: &[String],
    same: &BTreeSet<String>,
) -> Result<(ChangeSet, Work), (Side, fleet::Error)> {
    use rayon::prelude::*;
    let names: std::collections::BTreeSet<&String> = base
        .fleet
        .clusters
        .keys()
        .chain(head.fleet.clusters.keys())
        .filter(|n| only.is_empty() || only.contains(n))
        .collect();
    let names: Vec<&String> = names.into_iter().collect();
    let shared = shared_inputs_equal(&base.fleet, &head.fleet);
    // Both sides of a cluster share one memo of the templates' parsed output: most of it is
    // the same text on both.
    let render = |checked: &Checked,
                  name: &str,
                  memo: &mut crate::yaml::Memo|
     -> Result<Option<ClusterRender>, fleet::Error> {
        match checked.fleet.clusters.get(name) {
            None => Ok(None),
            Some(spec) => Ok(Some(ClusterRender {
                tier: spec.value.tier.clone(),
                tree: fleet::render_cluster_files(checked, name, memo)?,
            })),
        }
    };
    type One = (
        Option<ClusterChange>,
        Work,
        Option<fleet::Error>,
        Option<fleet::Error>,
    );
    let results: Vec<One> = names
        .par_iter()
        .map(|name| {
            let mut work = Work::default();
            if same.contains(*name) {
                work.same_inputs += 1;
                return (None, work, None, None);
            }
            if let (Some(b), Some(h)) = (
                base.fleet.clusters.get(*name),
                head.fleet.clusters.get(*name),
            ) && b.value.tier == h.value.tier
                && shared
                && own_inputs(&base.fleet, name, &b.value.tier)
                    == own_inputs(&head.fleet, name, &h.value.tier)
            {
                work.same_inputs += 1;
                return (None, work, None, None);
            }
            let mut memo = crate::yaml::Memo::default();
            let (b, h) = (render(base, name, &mut memo), render(head, name, &mut memo));
            work.renders +=
                usize::from(matches!(b, Ok(Some(_)))) + usize::from(matches!(h, Ok(Some(_))));
            match (b, h) {
                (Ok(b), Ok(h)) => (cluster_change(b.as_ref(), h.as_ref()), work, None, None),
                (b, h) => (None, work, b.err(), h.err()),
            }
        })
        .collect();
    let mut work = Work::default();
    let mut clusters = BTreeMap::new();
    let mut unchanged = Vec::new();
    let (mut base_err, mut head_err) = (None, None);
    for (name, (change, w, be, he)) in names.into_iter().zip(results) {
        work.renders += w.renders;
        work.same_inputs += w.same_inputs;
        if base_err.is_none() {
            base_err = be;
        }
        if head_err.is_none() {
            head_err = he;
        }
        match change {
            Some(c) => {
                clusters.insert(name.clone(), c);
            }
            None => unchanged.push(name.clone()),
        }
    }
    if let Some(e) = base_err {
        return Err((Side::Base, e));
    }
    if let Some(e) = head_err {
        return Err((Side::Head, e));
    }
    Ok((assemble(clusters, unchanged), work))
}

fn whole_tree(tree: &RenderedTree, status: Status) -> Vec<FileChange> {
    tree.files
        .iter()
        .filter(|(p, _)| p.as_str() != LOCK_FILE)
        .map(|(path, bytes)| added_or_removed(path, bytes, status))
        .collect()
}

/// The files that differ between two trees of one cluster, lock file left out.
pub fn diff_trees(base: &RenderedTree, head: &RenderedTree) -> Vec<FileChange> {
    let paths: std::collections::BTreeSet<&String> =
        base.files.keys().chain(head.files.keys()).collect();
    let mut out = Vec::new();
    for path in paths {
        if path == LOCK_FILE {
            continue;
        }
        match (base.files.get(path), head.files.get(path)) {
            (Some(b), Some(h)) if b == h => {}
            (Some(b), Some(h)) => out.push(diff_file(path, b, h)),
            (None, Some(h)) => out.push(added_or_removed(path, h, Status::Added)),
            (Some(b), None) => out.push(added_or_removed(path, b, Status::Removed)),
            (None, None) => {}
        }
    }
    out
}

fn added_or_removed(path: &str, bytes: &[u8], status: Status) -> FileChange {
    let objects = match k8s_objects(path, bytes) {
        Some(objs) => objs
            .into_keys()
            .map(|key| ObjectChange {
                key,
                status,
                fields: Vec::new(),
            })
            .collect(),
        None => Vec::new(),
    };
    FileChange {
        path: path.to_string(),
        status,
        objects,
        fields: Vec::new(),
        text: None,
    }
}

fn is_yaml(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

/// The Kubernetes objects of a YAML file by key; `None` when it is not (only) objects or
/// two documents share a key.
fn k8s_objects(path: &str, bytes: &[u8]) -> Option<BTreeMap<ObjectKey, Value>> {
    if !is_yaml(path) {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let docs = yaml::parse_all(path, text).ok()?;
    if docs.is_empty() {
        return None;
    }
    let mut out = BTreeMap::new();
    for doc in docs {
        let key = object_key(&doc.value)?;
        if out.insert(key, doc.value).is_some() {
            return None;
        }
    }
    Some(out)
}

fn object_key(v: &Value) -> Option<ObjectKey> {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    Some(ObjectKey {
        api_version: s(v.get("apiVersion"))?,
        kind: s(v.get("kind"))?,
        namespace: s(v.pointer("/metadata/namespace")),
        name: s(v.pointer("/metadata/name"))?,
    })
}

fn diff_file(path: &str, base: &[u8], head: &[u8]) -> FileChange {
    let mut change = FileChange {
        path: path.to_string(),
        status: Status::Changed,
        objects: Vec::new(),
        fields: Vec::new(),
        text: None,
    };
    if let (Some(b), Some(h)) = (k8s_objects(path, base), k8s_objects(path, head)) {
        let keys: std::collections::BTreeSet<&ObjectKey> = b.keys().chain(h.keys()).collect();
        for key in keys {
            let (status, fields) = match (b.get(key), h.get(key)) {
                (Some(x), Some(y)) if x == y => continue,
                (Some(x), Some(y)) => {
                    let mut fields = Vec::new();
                    diff_values("", Some(x), Some(y), &mut fields);
                    (Status::Changed, fields)
                }
                (None, Some(_)) => (Status::Added, Vec::new()),
                (Some(_), None) => (Status::Removed, Vec::new()),
                (None, None) => continue,
            };
            change.objects.push(ObjectChange {
                key: key.clone(),
                status,
                fields,
            });
        }
        if !change.objects.is_empty() {
            return change;
        }
    }
    if is_yaml(path)
        && let (Some(b), Some(h)) = (single_doc(path, base), single_doc(path, head))
    {
        diff_values("", Some(&b), Some(&h), &mut change.fields);
        if !change.fields.is_empty() {
            return change;
        }
    }
    let old = String::from_utf8_lossy(base);
    let new = String::from_utf8_lossy(head);
    let text = similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string();
    change.text = Some(text);
    change
}

fn single_doc(path: &str, bytes: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut docs = yaml::parse_all(path, text).ok()?;
    (docs.len() == 1).then(|| docs.remove(0).value)
}

/// Appends the changed leaves between two values: maps key by key, lists item by item
/// when their lengths agree, anything else as a whole.
fn diff_values(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<FieldChange>) {
    match (old, new) {
        (Some(a), Some(b)) if a == b => {}
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            for (k, va) in a {
                diff_values(&field_path(path, k), Some(va), b.get(k), out);
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    diff_values(&field_path(path, k), None, Some(vb), out);
                }
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_values(&format!("{path}[{i}]"), Some(x), Some(y), out);
            }
        }
        _ => out.push(FieldChange {
            path: if path.is_empty() {
                "(document)".into()
            } else {
                path.to_string()
            },
            old: old.cloned(),
            new: new.cloned(),
        }),
    }
}

/// `parent.key`, or `parent["key"]` when the key has dots (annotations, labels).
fn field_path(parent: &str, key: &str) -> String {
    if key.contains(['.', '[', ' ']) {
        format!(
            "{parent}[{}]",
            serde_json::to_string(key).expect("a string")
        )
    } else {
        yaml::child_path(parent, key)
    }
}

/// Groups clusters whose change is the same once each one's own name is neutralised.
fn group(clusters: &BTreeMap<String, ClusterChange>) -> Vec<Group> {
    let mut by_print: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, change) in clusters {
        let print = serde_json::to_string(&(change.status, &change.files)).expect("serialisable");
        by_print
            .entry(print.replace(name.as_str(), "\u{0}cluster\u{0}"))
            .or_default()
            .push(name.clone());
    }
    let mut groups: Vec<Group> = by_print
        .into_values()
        .map(|clusters| Group {
            example: clusters[0].clone(),
            clusters,
        })
        .collect();
    groups.sort_by(|a, b| {
        b.clusters
            .len()
            .cmp(&a.clusters.len())
            .then_with(|| a.example.cmp(&b.example))
    });
    groups
}

fn summarise(
    clusters: &BTreeMap<String, ClusterChange>,
    unchanged: &[String],
    distinct: usize,
) -> Summary {
    let mut s = Summary {
        unchanged: unchanged.len(),
        distinct_changes: distinct,
        ..Default::default()
    };
    s.total = clusters.len() + unchanged.len();
    for change in clusters.values() {
        match change.status {
            Status::Added => s.added += 1,
            Status::Removed => s.removed += 1,
            Status::Changed => s.changed += 1,
        }
        *s.per_tier.entry(change.tier.clone()).or_default() += 1;
        for file in &change.files {
            if !file.objects.is_empty() {
                for o in &file.objects {
                    s.per_kind
                        .entry(o.key.kind.clone())
                        .or_default()
                        .count(o.status);
                }
            } else if file.path.starts_with("values/") {
                s.per_kind
                    .entry("HelmValues".into())
                    .or_default()
                    .count(file.status);
            } else {
                s.per_kind
                    .entry("File".into())
                    .or_default()
                    .count(file.status);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(tier: &str, files: &[(&str, &str)]) -> ClusterRender {
        let mut tree = RenderedTree::default();
        for (p, t) in files {
            tree.insert(p.to_string(), t.as_bytes().to_vec());
        }
        ClusterRender {
            tier: tier.into(),
            tree,
        }
    }

    const APP_OLD: &str = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: cilium\n  namespace: argocd\nspec:\n  source:\n    targetRevision: 1.19.0\n";
    const APP_NEW: &str = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: cilium\n  namespace: argocd\nspec:\n  source:\n    targetRevision: 1.20.0\n";

    #[test]
    fn nothing_changed_is_empty_and_the_lock_is_ignored() {
        let a = BTreeMap::from([(
            "c".to_string(),
            render(
                "production",
                &[("x.yaml", "a: 1\n"), (LOCK_FILE, "rev: 1\n")],
            ),
        )]);
        let b = BTreeMap::from([(
            "c".to_string(),
            render(
                "production",
                &[("x.yaml", "a: 1\n"), (LOCK_FILE, "rev: 2\n")],
            ),
        )]);
        let cs = diff(&a, &b);
        assert!(cs.is_empty());
        assert_eq!(cs.unchanged, vec!["c"]);
    }

    #[test]
    fn objects_fields_and_text_are_compared() {
        let a = BTreeMap::from([(
            "c".to_string(),
            render(
                "production",
                &[
                    ("apps/cilium.yaml", APP_OLD),
                    ("values/cilium.yaml", "a:\n  b: 1\n  c: [1, 2]\n"),
                    ("README.md", "one\ntwo\n"),
                ],
            ),
        )]);
        let b = BTreeMap::from([(
            "c".to_string(),
            render(
                "production",
                &[
                    ("apps/cilium.yaml", APP_NEW),
                    ("values/cilium.yaml", "a:\n  b: 2\n  c: [1, 3]\n  d: x\n"),
                    ("README.md", "one\nthree\n"),
                ],
            ),
        )]);
        let cs = diff(&a, &b);
        let files = &cs.clusters["c"].files;
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].path, "README.md");
        assert!(files[0].text.as_deref().unwrap().contains("-two\n+three\n"));
        let app = &files[1].objects[0];
        assert_eq!(
            app.key.to_string(),
            "argoproj.io/v1alpha1 Application argocd/cilium"
        );
        assert_eq!(app.fields[0].path, "spec.source.targetRevision");
        assert_eq!(
            (app.fields[0].old.clone(), app.fields[0].new.clone()),
            (Some("1.19.0".into()), Some("1.20.0".into()))
        );
        let paths: Vec<&str> = files[2].fields.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a.b", "a.c[1]", "a.d"]);
        assert_eq!(cs.summary.per_kind["Application"].changed, 1);
        assert_eq!(cs.summary.per_kind["HelmValues"].changed, 1);
    }

    #[test]
    fn the_same_change_to_many_clusters_is_one_group() {
        let mut a = BTreeMap::new();
        let mut b = BTreeMap::new();
        for i in 0..5 {
            let name = format!("c{i}");
            let readme_old = format!("# {name}\nversion 1\n");
            let readme_new = format!("# {name}\nversion 2\n");
            a.insert(
                name.clone(),
                render(
                    "production",
                    &[("apps/cilium.yaml", APP_OLD), ("README.md", &readme_old)],
                ),
            );
            b.insert(
                name.clone(),
                render(
                    "production",
                    &[("apps/cilium.yaml", APP_NEW), ("README.md", &readme_new)],
                ),
            );
        }
        a.insert(
            "odd".into(),
            render("devtest", &[("apps/cilium.yaml", APP_OLD)]),
        );
        b.insert(
            "odd".into(),
            render(
                "devtest",
                &[("apps/cilium.yaml", APP_OLD), ("extra.txt", "x")],
            ),
        );
        b.insert(
            "new".into(),
            render("devtest", &[("apps/cilium.yaml", APP_NEW)]),
        );
        let cs = diff(&a, &b);
        assert_eq!(cs.groups.len(), 3);
        assert_eq!(cs.groups[0].clusters, ["c0", "c1", "c2", "c3", "c4"]);
        assert_eq!(cs.summary.per_tier["production"], 5);
        assert_eq!(cs.summary.per_tier["devtest"], 2);
        assert_eq!((cs.summary.changed, cs.summary.added), (6, 1));
        assert_eq!(cs.clusters["new"].status, Status::Added);
    }
}

/// [`diff_checked`] skips clusters whose inputs are the same on both sides and renders the
/// rest a cluster at a time: its change set must be exactly that of rendering both whole
/// fleets and comparing them ([`diff`]), whatever changed and whichever clusters are asked for.
#[cfg(test)]
mod skip_tests {
    use super::*;
    use crate::model::{Sources, example};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    const CLUSTERS: usize = 5;

    /// Edits of a generated fleet: one cluster's spec (output changes), one cluster's spec
    /// (a comment: inputs change, output does not), each tier, a blueprint (every
    /// cluster), a shared file (a comment: every input hash, no output), a cluster removed.
    fn apply(sources: &mut Sources, edit: usize) {
        let mut replace = |file: &str, from: &str, to: &str| {
            let text = sources.files.get_mut(file).expect("a file of the fleet");
            assert!(text.contains(from), "`{from}` not in {file}");
            *text = text.replacen(from, to, 1);
        };
        match edit {
            0 => replace(
                "overlays/clusters/gen-00000.yaml",
                "memoryGiB: 32, osDiskGiB: 64}",
                "memoryGiB: 48, osDiskGiB: 64}",
            ),
            1 => replace("overlays/clusters/gen-00001.yaml", "\n", "\n# a comment\n"),
            2 => replace(
                "overlays/tiers/production.yaml",
                "retention: 30d",
                "retention: 31d",
            ),
            3 => replace(
                "overlays/tiers/devtest.yaml",
                "failurePolicy: Ignore",
                "failurePolicy: Fail",
            ),
            4 => replace(
                "blueprints/cilium/blueprint.yaml",
                "    ui:\n      enabled: true",
                "    ui:\n      enabled: false",
            ),
            5 => replace("versions.yaml", "\n", "\n# a comment\n"),
            _ => sources
                .files
                .retain(|p, _| !p.starts_with("overlays/clusters/gen-00003")),
        }
    }

    const EDITS: usize = 7;

    fn sources(edits: u32) -> Sources {
        let mut sources = crate::generate::fleet(&example::sources(), CLUSTERS);
        for e in 0..EDITS {
            if edits & (1 << e) != 0 {
                apply(&mut sources, e);
            }
        }
        sources
    }

    fn check(sources: &Sources) -> Checked {
        fleet::check(sources, example::TODAY.parse().expect("a date")).expect("a valid fleet")
    }

    fn side(edits: u32) -> Checked {
        check(&sources(edits))
    }

    /// What the command does: the base checked without the clusters whose files are the
    /// head's, those known unchanged.
    fn as_the_command(base: u32, head: u32, only: &[String]) -> (ChangeSet, Work) {
        let (base, head_sources) = (sources(base), sources(head));
        let head = check(&head_sources);
        let (reduced, same) = without_same_clusters(&base, &head_sources, &head.fleet);
        diff_checked_known(&check(&reduced), &head, only, &same).expect("renders")
    }

    /// What the command did before: render every selected cluster of each side, compare.
    fn full(checked: &Checked, only: &[String]) -> FleetRender {
        let names: Vec<String> = checked
            .fleet
            .clusters
            .keys()
            .filter(|n| only.is_empty() || only.contains(n))
            .cloned()
            .collect();
        fleet::render_all(checked, &names)
            .expect("renders")
            .into_iter()
            .map(|(name, tree)| {
                let tier = checked.fleet.clusters[&name].value.tier.clone();
                (name, ClusterRender { tier, tree })
            })
            .collect()
    }

    #[test]
    fn skipping_clusters_gives_the_full_diff() {
        // A fixed seed and a few cases: the same fleets on every run, in seconds.
        let config = Config {
            cases: 12,
            failure_persistence: None,
            ..Config::default()
        };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[16; 32]);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let strategy = (
            0u32..(1 << EDITS),
            0u32..(1 << EDITS),
            0u32..(1 << CLUSTERS),
        );
        let result = runner.run(&strategy, |(base_edits, head_edits, only_mask)| {
            let (base, head) = (side(base_edits), side(head_edits));
            let only: Vec<String> = (0..CLUSTERS)
                .filter(|i| only_mask & (1 << i) != 0)
                .map(|i| format!("gen-{i:05}"))
                .collect();
            let (fast, work) = diff_checked(&base, &head, &only).expect("renders");
            let slow = diff(&full(&base, &only), &full(&head, &only));
            prop_assert_eq!(&fast, &slow);
            let (command, command_work) = as_the_command(base_edits, head_edits, &only);
            prop_assert_eq!(&command, &slow);
            // Same edits on both sides: nothing rendered at all.
            if base_edits == head_edits {
                prop_assert_eq!(work.renders, 0);
                prop_assert_eq!(command_work.renders, 0);
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }

    /// The fixed cases the property may not draw: each edit alone against the untouched
    /// fleet, and everything at once.
    #[test]
    fn each_edit_alone_gives_the_full_diff() {
        let base = side(0);
        for edits in (0..EDITS).map(|e| 1u32 << e).chain([(1 << EDITS) - 1]) {
            let head = side(edits);
            let (fast, _) = diff_checked(&base, &head, &[]).expect("renders");
            assert_eq!(
                fast,
                diff(&full(&base, &[]), &full(&head, &[])),
                "edits {edits:#b}"
            );
            let (back, _) = diff_checked(&head, &base, &[]).expect("renders");
            assert_eq!(
                back,
                diff(&full(&head, &[]), &full(&base, &[])),
                "edits {edits:#b} reversed"
            );
            let slow = diff(&full(&base, &[]), &full(&head, &[]));
            assert_eq!(
                as_the_command(0, edits, &[]).0,
                slow,
                "edits {edits:#b}, as the command"
            );
            let slow = diff(&full(&head, &[]), &full(&base, &[]));
            assert_eq!(
                as_the_command(edits, 0, &[]).0,
                slow,
                "edits {edits:#b} reversed, as the command"
            );
        }
    }
}
