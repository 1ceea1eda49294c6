//! The overlay merge: blueprint defaults ◀ tier ◀ cluster, with the origin of every value.
//!
//! One rule set everywhere: mappings merge key by key, lists and scalars replace, and a
//! `null` removes the key. Each value remembers the layer and `file:line:column` that set
//! it, which `kubeprint explain` prints.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Component, Fleet, Sourced, Tier, cluster::ClusterSpec};
use crate::templates::Templates;
use crate::yaml::{self, Spans, Value, child_path};

/// Errors while planning a cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{location}: cluster `{cluster}`: tier `{tier}` does not exist")]
    UnknownTier {
        cluster: String,
        tier: String,
        location: String,
    },
    #[error("{location}: component `{component}` does not exist")]
    UnknownComponent {
        component: String,
        location: String,
        hint: Option<String>,
    },
    #[error(transparent)]
    Template(#[from] crate::templates::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The layer a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    Blueprint,
    BlueprintTemplate,
    Tier,
    Cluster,
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub layer: Layer,
    /// `file:line:column` (for templates, the line of the rendered output).
    pub location: String,
}

/// A merged value tree and the origin of each of its values, by path (`a.b[0]` style).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Merged {
    pub value: Value,
    /// Empty unless the tree was made to record them ([`Merged::new`], [`plan_with_origins`]).
    pub origins: BTreeMap<String, Origin>,
    /// Whether merges record origins.
    #[serde(skip)]
    track: bool,
}

impl Merged {
    /// An empty mapping that records the origin of every value merged into it.
    pub fn new() -> Self {
        Merged {
            value: Value::Object(Default::default()),
            origins: BTreeMap::new(),
            track: true,
        }
    }

    /// An empty mapping that only merges values: a render needs no origins, and recording
    /// them (a path and a location per value) was a fifth of a render's CPU time.
    pub fn untracked() -> Self {
        Merged {
            track: false,
            ..Merged::new()
        }
    }

    /// Merges `layer` over this tree. `spans` locate the layer's values in `file`, whose
    /// paths are `prefix` + the path inside the merged tree.
    pub fn merge(&mut self, layer: &Value, origin: Layer, file: &str, spans: &Spans, prefix: &str) {
        let at = |path: &str| Origin {
            layer: origin,
            location: format!("{file}:{}", spans.locate(&join(prefix, path))),
        };
        let mut track: Track = self
            .track
            .then_some((&mut self.origins, &at as &dyn Fn(&str) -> Origin));
        merge_into(&mut self.value, layer, "", &mut track);
    }

    /// The value at a path and its origin; `None` when the tree has no value there.
    pub fn lookup(&self, path: &ValuePath) -> Option<(&Value, Option<&Origin>)> {
        let mut v = &self.value;
        for seg in &path.0 {
            v = match seg {
                Segment::Key(k) => v.as_object()?.get(k)?,
                Segment::Index(i) => v.as_array()?.get(*i)?,
            };
        }
        // The origin of a value is its own, or that of the nearest ancestor that set it whole.
        let canonical = path.to_string();
        let mut p = canonical.as_str();
        loop {
            if let Some(o) = self.origins.get(p) {
                return Some((v, Some(o)));
            }
            match yaml::parent_path(p) {
                Some(parent) => p = parent,
                None => return Some((v, None)),
            }
        }
    }
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (_, true) => prefix.to_string(),
        _ if path.starts_with('[') => format!("{prefix}{path}"),
        _ => format!("{prefix}.{path}"),
    }
}

/// Where [`merge_into`] records origins (the map, and the origin of a path of the layer);
/// `None` merges values only.
type Track<'a> = Option<(&'a mut BTreeMap<String, Origin>, &'a dyn Fn(&str) -> Origin)>;

fn merge_into(base: &mut Value, layer: &Value, path: &str, track: &mut Track) {
    match (base, layer) {
        (Value::Object(base_map), Value::Object(layer_map)) => {
            for (key, lv) in layer_map {
                // Paths are built only when origins are recorded.
                let child = match track {
                    Some(_) => child_path(path, key),
                    None => String::new(),
                };
                if lv.is_null() {
                    base_map.shift_remove(key);
                    if let Some((origins, _)) = track {
                        remove_origins(origins, &child);
                    }
                    continue;
                }
                match base_map.get_mut(key) {
                    Some(bv) if bv.is_object() && lv.is_object() => {
                        merge_into(bv, lv, &child, track)
                    }
                    _ => {
                        let mut v = lv.clone();
                        strip_nulls(&mut v);
                        if let Some((origins, at)) = track {
                            remove_origins(origins, &child);
                            record_origins(&v, &child, origins, *at);
                        }
                        base_map.insert(key.clone(), v);
                    }
                }
            }
        }
        (base, layer) => {
            if let Some((origins, at)) = track {
                remove_origins(origins, path);
                record_origins(layer, path, origins, *at);
            }
            *base = layer.clone();
        }
    }
}

/// A null inside a newly added mapping removes nothing and means nothing: drop it.
fn strip_nulls(v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|_, v| !v.is_null());
        m.values_mut().for_each(strip_nulls);
    }
}

fn record_origins(
    v: &Value,
    path: &str,
    origins: &mut BTreeMap<String, Origin>,
    at: &dyn Fn(&str) -> Origin,
) {
    origins.insert(path.to_string(), at(path));
    if let Value::Object(m) = v {
        for (k, child) in m {
            record_origins(child, &child_path(path, k), origins, at);
        }
    }
}

fn remove_origins(origins: &mut BTreeMap<String, Origin>, path: &str) {
    let dotted = format!("{path}.");
    let indexed = format!("{path}[");
    origins.retain(|k, _| k != path && !k.starts_with(&dotted) && !k.starts_with(&indexed));
}

/// One step of a [`ValuePath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// A path to a value: keys separated by `.`, list items as `[N]` (`a.b[0].c`, `list[2][1]`).
/// The empty path is the whole tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValuePath(pub Vec<Segment>);

/// A path that does not parse, with the (1-based, in characters) column of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{path}`, column {column}: {message}")]
pub struct PathError {
    pub path: String,
    pub column: usize,
    pub message: String,
}

impl PathError {
    /// How paths are written.
    pub const HINT: &'static str = "a path is keys separated by `.`, with `[N]` for the N-th item of a list (from 0): `settings.ceph.mons`, `values.cilium.ipam.operator.clusterPoolIPv4PodCIDRList[0]`";
}

impl ValuePath {
    /// Parses `a.b[0].c`. Keys are any characters but `.`, `[` and `]`; an index is a
    /// decimal number in brackets; nothing may be empty (`a..b`, `a.`, `[]`).
    pub fn parse(path: &str) -> Result<ValuePath, PathError> {
        let fail = |at: usize, message: String| PathError {
            path: path.to_string(),
            column: path[..at].chars().count() + 1,
            message,
        };
        let mut segments = Vec::new();
        let bytes = path.as_bytes();
        let mut i = 0;
        // Whether a key may start here (at the start, or after a `.`).
        let mut key_expected = true;
        while i < bytes.len() {
            match bytes[i] {
                b'[' => {
                    if key_expected && i > 0 {
                        return Err(fail(i, "a key is missing after `.`".into()));
                    }
                    let close = path[i..]
                        .find(']')
                        .map(|n| i + n)
                        .ok_or_else(|| fail(i, "`[` is not closed by `]`".into()))?;
                    let digits = &path[i + 1..close];
                    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(fail(
                            i + 1,
                            format!("`[{digits}]` is not a list index (a number from 0)"),
                        ));
                    }
                    let index = digits
                        .parse()
                        .map_err(|_| fail(i + 1, format!("the index {digits} is too large")))?;
                    segments.push(Segment::Index(index));
                    i = close + 1;
                    key_expected = false;
                }
                b']' => return Err(fail(i, "`]` without a matching `[`".into())),
                b'.' => {
                    if key_expected {
                        return Err(fail(i, "an empty key (`..`, or `.` first)".into()));
                    }
                    key_expected = true;
                    i += 1;
                    if i == bytes.len() {
                        return Err(fail(i, "the path ends with `.`".into()));
                    }
                }
                _ => {
                    if !key_expected {
                        return Err(fail(i, "expected `.` or `[` after `]`".into()));
                    }
                    let end = path[i..]
                        .find(['.', '[', ']'])
                        .map_or(path.len(), |n| i + n);
                    segments.push(Segment::Key(path[i..end].to_string()));
                    i = end;
                    key_expected = false;
                }
            }
        }
        Ok(ValuePath(segments))
    }
}

impl std::fmt::Display for ValuePath {
    /// The path as [`Spans`] and origins key it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// One component as it will be deployed to one cluster.
#[derive(Debug, Clone)]
pub struct PlannedComponent<'f> {
    pub component: &'f Component,
    /// Helm values after every layer.
    pub values: Merged,
}

/// Everything render needs for one cluster.
#[derive(Debug, Clone)]
pub struct ClusterPlan<'f> {
    pub fleet: &'f Fleet,
    pub spec: &'f Sourced<ClusterSpec>,
    pub tier_name: &'f str,
    pub tier: &'f Sourced<Tier>,
    /// Tier settings ◀ cluster settings.
    pub settings: Merged,
    /// What every template of this cluster sees (see `Templates::cluster_context`).
    pub context: minijinja::Value,
    /// Enabled components, in (sync wave, name) order.
    pub components: Vec<PlannedComponent<'f>>,
    /// Components turned off, with the origin of that decision.
    pub disabled: Vec<(String, Origin)>,
}

impl ClusterPlan<'_> {
    pub fn name(&self) -> &str {
        &self.spec.value.name
    }
}

/// Plans one cluster: merges settings and every component's values. The values' origins
/// are not recorded (see [`plan_with_origins`]).
pub fn plan<'f>(fleet: &'f Fleet, templates: &Templates, cluster: &str) -> Result<ClusterPlan<'f>> {
    plan_tracking(fleet, templates, cluster, false, None)
}

/// [`plan`], the values templates' output parsed through `memo` (see [`yaml::Memo`]).
pub fn plan_remembering<'f>(
    fleet: &'f Fleet,
    templates: &Templates,
    cluster: &str,
    memo: &mut yaml::Memo,
) -> Result<ClusterPlan<'f>> {
    plan_tracking(fleet, templates, cluster, false, Some(memo))
}

/// [`plan`], recording where every merged value came from (`kubeprint explain`).
pub fn plan_with_origins<'f>(
    fleet: &'f Fleet,
    templates: &Templates,
    cluster: &str,
) -> Result<ClusterPlan<'f>> {
    plan_tracking(fleet, templates, cluster, true, None)
}

fn plan_tracking<'f>(
    fleet: &'f Fleet,
    templates: &Templates,
    cluster: &str,
    origins: bool,
    mut memo: Option<&mut yaml::Memo>,
) -> Result<ClusterPlan<'f>> {
    let new_merged = || {
        if origins {
            Merged::new()
        } else {
            Merged::untracked()
        }
    };
    let spec = &fleet.clusters[cluster];
    let tier_name = spec.value.tier.as_str();
    let Some(tier) = fleet.tiers.get(tier_name) else {
        return Err(Error::UnknownTier {
            cluster: cluster.to_string(),
            tier: tier_name.to_string(),
            location: spec.at("tier"),
        });
    };
    for (source, overrides) in [
        (&tier.file, &tier.value.components),
        (&spec.file, &spec.value.components),
    ] {
        let spans = if *source == tier.file {
            &tier.spans
        } else {
            &spec.spans
        };
        for name in overrides.keys() {
            if !fleet.components.contains_key(name) {
                let names: Vec<String> = fleet.components.keys().cloned().collect();
                return Err(Error::UnknownComponent {
                    component: name.clone(),
                    location: format!("{source}:{}", spans.locate(&format!("components.{name}"))),
                    hint: yaml::did_you_mean(name, &names).map(|s| format!("did you mean `{s}`?")),
                });
            }
        }
    }

    let mut settings = new_merged();
    if let Some(s) = &tier.value.settings {
        settings.merge(s, Layer::Tier, &tier.file, &tier.spans, "settings");
    }
    if let Some(s) = &spec.value.settings {
        settings.merge(s, Layer::Cluster, &spec.file, &spec.spans, "settings");
    }

    let context = templates.cluster_context(spec, tier_name, &settings.value);
    let mut components = Vec::new();
    let mut disabled = Vec::new();
    for (name, component) in &fleet.components {
        let tier_o = tier.value.components.get(name);
        let cluster_o = spec.value.components.get(name);
        let (mut enabled, mut why) = (
            component.spec.value.enabled,
            Origin {
                layer: Layer::Blueprint,
                location: component.spec.at("enabled"),
            },
        );
        if let Some(e) = tier_o.and_then(|o| o.enabled) {
            (enabled, why) = (
                e,
                Origin {
                    layer: Layer::Tier,
                    location: tier.at(&format!("components.{name}.enabled")),
                },
            );
        }
        if let Some(e) = cluster_o.and_then(|o| o.enabled) {
            (enabled, why) = (
                e,
                Origin {
                    layer: Layer::Cluster,
                    location: spec.at(&format!("components.{name}.enabled")),
                },
            );
        }
        if let Some(feature) = &component.spec.value.requires {
            let has = match feature.as_str() {
                "sso" => spec.value.sso.is_some(),
                "tenants" => !spec.value.tenants.is_empty(),
                _ => true,
            };
            if !has {
                (enabled, why) = (
                    false,
                    Origin {
                        layer: Layer::Blueprint,
                        location: component.spec.at("requires"),
                    },
                );
            }
        }
        if !enabled {
            disabled.push((name.clone(), why));
            continue;
        }

        let mut values = new_merged();
        if let Some(v) = &component.spec.value.values {
            values.merge(
                v,
                Layer::Blueprint,
                &component.spec.file,
                &component.spec.spans,
                "values",
            );
        }
        if let Some((file, _)) = &component.values_template {
            let text = templates.render_values(&context, &spec.value.name, component)?;
            let output_error = |e: yaml::Error| crate::templates::Error::Output {
                template: file.clone(),
                message: e.to_string(),
            };
            // Located only when the origins are wanted, or to report a second document.
            let unlocated = if origins {
                None
            } else {
                let mut docs = match memo.as_deref_mut() {
                    Some(memo) => memo.parse_all_unlocated(file, &text),
                    None => yaml::parse_all_unlocated(file, &text),
                }
                .map_err(output_error)?;
                match docs.len() {
                    0 => Some(Value::Null),
                    1 => docs.pop(),
                    _ => None,
                }
            };
            match unlocated {
                Some(value) => values.merge(
                    &value,
                    Layer::BlueprintTemplate,
                    file,
                    &Spans::default(),
                    "",
                ),
                None => {
                    let doc = yaml::parse(file, &text).map_err(output_error)?;
                    values.merge(&doc.value, Layer::BlueprintTemplate, file, &doc.spans, "");
                }
            }
        }
        if let Some(v) = tier_o.and_then(|o| o.values.as_ref()) {
            values.merge(
                v,
                Layer::Tier,
                &tier.file,
                &tier.spans,
                &format!("components.{name}.values"),
            );
        }
        if let Some(v) = cluster_o.and_then(|o| o.values.as_ref()) {
            values.merge(
                v,
                Layer::Cluster,
                &spec.file,
                &spec.spans,
                &format!("components.{name}.values"),
            );
        }
        components.push(PlannedComponent { component, values });
    }
    components.sort_by(|a, b| {
        (a.component.spec.value.sync_wave, &a.component.name)
            .cmp(&(b.component.spec.value.sync_wave, &b.component.name))
    });
    Ok(ClusterPlan {
        fleet,
        spec,
        tier_name,
        tier,
        settings,
        context,
        components,
        disabled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn merged(layers: &[Value]) -> Merged {
        let mut m = Merged::new();
        for (i, l) in layers.iter().enumerate() {
            m.merge(
                l,
                if i == 0 {
                    Layer::Blueprint
                } else {
                    Layer::Cluster
                },
                &format!("l{i}.yaml"),
                &Spans::default(),
                "",
            );
        }
        m
    }

    #[test]
    fn maps_merge_lists_replace_null_removes() {
        let m = merged(&[
            json!({"a": {"x": 1, "y": 2}, "l": [1, 2], "gone": {"deep": 1}}),
            json!({"a": {"y": 3, "z": null}, "l": [9], "gone": null}),
        ]);
        assert_eq!(m.value, json!({"a": {"x": 1, "y": 3}, "l": [9]}));
        let at = |p: &str| ValuePath::parse(p).unwrap();
        assert_eq!(
            m.lookup(&at("a.x")).unwrap().1.unwrap().location,
            "l0.yaml:1:1"
        );
        assert_eq!(
            m.lookup(&at("a.y")).unwrap().1.unwrap().layer,
            Layer::Cluster
        );
        assert_eq!(m.lookup(&at("l[0]")).unwrap().0, &json!(9));
        assert_eq!(m.lookup(&at("l[0].deeper")), None);
        assert_eq!(m.lookup(&at("l[1]")), None);
        assert!(m.origins.keys().all(|k| !k.starts_with("gone")));
    }

    #[test]
    fn paths_parse_or_say_where_they_are_wrong() {
        use Segment::{Index, Key};
        let ok = |p: &str| ValuePath::parse(p).unwrap().0;
        assert_eq!(ok(""), vec![]);
        assert_eq!(ok("a"), vec![Key("a".into())]);
        assert_eq!(
            ok("a.b[0][12].c-d"),
            vec![
                Key("a".into()),
                Key("b".into()),
                Index(0),
                Index(12),
                Key("c-d".into())
            ]
        );
        assert_eq!(ok("[3]"), vec![Index(3)]);
        assert_eq!(
            ValuePath::parse("a.b[0][12].c").unwrap().to_string(),
            "a.b[0][12].c"
        );
        let err = |p: &str| ValuePath::parse(p).unwrap_err();
        assert_eq!(err("a[0]]").column, 5);
        assert_eq!(
            err("a[0]]").to_string(),
            "`a[0]]`, column 5: `]` without a matching `[`"
        );
        assert_eq!(err("a[").column, 2);
        assert_eq!(err("a[x]").column, 3);
        assert_eq!(err("a[]").column, 3);
        assert_eq!(err("a[-1]").column, 3);
        assert_eq!(err("a..b").column, 3);
        assert_eq!(err(".a").column, 1);
        assert_eq!(err("a.").column, 3);
        assert_eq!(err("a[0]b").column, 5);
        assert_eq!(err("a.[0]").column, 3);
        assert!(
            err("a[99999999999999999999999]")
                .message
                .contains("too large")
        );
        assert_eq!(err("é]").column, 2);
    }

    proptest! {
        /// Any text: a path, or an error whose column is inside the text; never a panic.
        #[test]
        fn any_text_parses_or_fails_with_a_column(path in "[a-c.\\[\\]0-9é]{0,12}") {
            match ValuePath::parse(&path) {
                Ok(p) => prop_assert_eq!(ValuePath::parse(&p.to_string()).unwrap(), p),
                Err(e) => prop_assert!(e.column >= 1 && e.column <= path.chars().count() + 1),
            }
        }
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(|i| json!(i)),
            "[a-c]{1,2}".prop_map(Value::from)
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-d]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_map() -> impl Strategy<Value = Value> {
        prop::collection::btree_map("[a-d]", arb_value(), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    proptest! {
        #[test]
        fn merging_without_origins_gives_the_same_tree(
            layers in prop::collection::vec(arb_value(), 1..4),
        ) {
            let tracked = merged(&layers);
            let mut untracked = Merged::untracked();
            for l in &layers {
                untracked.merge(l, Layer::Cluster, "l.yaml", &Spans::default(), "");
            }
            prop_assert_eq!(&tracked.value, &untracked.value);
            prop_assert!(untracked.origins.is_empty());
        }

        #[test]
        fn an_empty_overlay_changes_nothing(base in arb_map()) {
            let once = merged(std::slice::from_ref(&base));
            let twice = merged(&[base, json!({})]);
            prop_assert_eq!(once.value, twice.value);
        }

        #[test]
        fn the_later_layer_wins(base in arb_map(), key in "[a-d]", v in any::<i64>()) {
            let m = merged(&[base, json!({ key.clone(): v })]);
            prop_assert_eq!(&m.value[&key], &json!(v));
        }
    }
}
