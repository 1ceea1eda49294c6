//! No value of the cluster spec becomes structure (issue 11, item 4): whatever a string
//! field holds, either validate refuses it at its `file:line:column`, or the rendered
//! objects have the same files, kinds, names and key paths as with the example's own
//! value, and the value shows only in leaves where the example's value was. The
//! templates' side is also tested without validation, on the four known exploits.

use std::collections::BTreeMap;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;

use crate::model::example::{self, TODAY};
use crate::model::{Fleet, Sources};
use crate::templates::Templates;

const INITECH: &str = "overlays/clusters/initech-prod.yaml";

/// Renders one cluster of `sources` without validating it.
fn render_unvalidated(
    sources: &Sources,
    cluster: &str,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let fleet = Fleet::from_sources(sources).map_err(|d| format!("{:?}", d.items))?;
    let templates = Templates::new(&fleet).map_err(|e| e.to_string())?;
    let plan = crate::plan::plan(&fleet, &templates, cluster).map_err(|e| e.to_string())?;
    let tree = super::render(&plan, &templates).map_err(|e| e.to_string())?;
    Ok(tree.files)
}

/// The example fleet with initech-prod's spec (defaults filled in) changed by `edit`.
fn with_spec(edit: impl FnOnce(&mut Value)) -> Sources {
    let mut sources = example::sources();
    let (spec, _) =
        crate::yaml::from_str::<crate::model::ClusterSpec>(INITECH, &sources.files[INITECH])
            .expect("the example spec reads");
    let mut value = serde_json::to_value(&spec).expect("a spec serialises");
    edit(&mut value);
    sources
        .files
        .insert(INITECH.to_string(), crate::yaml::to_string(&value));
    sources
}

/// A leaf of a rendered file: (file, document, key path) → scalar. Strings that are
/// documents of another language are opened: Argo CD's `oidc.config` (YAML) and
/// `policy.csv` (lines of CSV fields).
fn leaves(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (path, bytes) in files {
        // Not objects: the README (prose), the lock (digests), the encrypted bundle.
        if path == "README.md" || path == "kubeprint.lock" || path.ends_with(".sops.yaml") {
            continue;
        }
        let text = String::from_utf8_lossy(bytes);
        let docs = crate::yaml::parse_all_unlocated(path, &text).expect("rendered YAML parses");
        for (i, doc) in docs.iter().enumerate() {
            walk(&format!("{path}#{i}"), doc, &mut out);
        }
    }
    out
}

fn walk(at: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, item) in m {
                walk(&format!("{at}/{k}"), item, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(&format!("{at}[{i}]"), item, out);
            }
        }
        Value::String(s) if at.ends_with("/oidc.config") => {
            match crate::yaml::parse_all_unlocated("oidc.config", s) {
                Ok(docs) => {
                    for (i, d) in docs.iter().enumerate() {
                        walk(&format!("{at}#{i}"), d, out);
                    }
                }
                Err(_) => {
                    out.insert(format!("{at}!unparsable"), s.clone());
                }
            }
        }
        Value::String(s) if at.ends_with("/policy.csv") => {
            for (i, line) in s.lines().enumerate() {
                for (j, field) in csv_fields(line).into_iter().enumerate() {
                    out.insert(format!("{at}:{i}:{j}"), field);
                }
            }
        }
        other => {
            out.insert(at.to_string(), other.to_string());
        }
    }
}

/// The fields of one line of CSV as Go's reader with `TrimLeadingSpace` reads them.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        break;
                    }
                } else {
                    field.push(c);
                }
            }
            while chars.peek().is_some_and(|c| *c != ',') {
                chars.next();
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return fields;
        }
    }
}

/// Checks that `hostile` (rendered with `value` at a field) has the benign render's
/// shape, and differs only in leaves where the benign render held `original`.
fn same_shape(
    benign: &BTreeMap<String, String>,
    hostile: &BTreeMap<String, String>,
    original: &str,
    value: &str,
) -> Result<(), String> {
    // Where the value is a key (the groups claim in Argo CD's `requestedIDTokenClaims`),
    // it belongs there: compare the key paths with the original in its place.
    // Where it names a file (a tenant's `capsule-tenants/<t>.yaml`, its AppProject
    // `apps/project-tenant-<t>.yaml`), likewise.
    let hostile: BTreeMap<String, String> = hostile
        .iter()
        .map(|(k, v)| {
            let key = k.replace(&format!("/{value}/"), &format!("/{original}/"));
            let (path, rest) = key.split_once('#').unwrap_or((&key, ""));
            let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
            let file = match file.strip_suffix(".yaml") {
                Some(stem) if stem == value => format!("{original}.yaml"),
                Some(stem) if stem.ends_with(&format!("-{value}")) => {
                    format!("{}-{original}.yaml", &stem[..stem.len() - value.len() - 1])
                }
                _ => file.to_string(),
            };
            let path = if dir.is_empty() {
                file
            } else {
                format!("{dir}/{file}")
            };
            (format!("{path}#{rest}"), v.clone())
        })
        .collect();
    let hostile = &hostile;
    let b: Vec<&String> = benign.keys().collect();
    let h: Vec<&String> = hostile.keys().collect();
    if b != h {
        let extra: Vec<_> = h
            .iter()
            .filter(|k| !benign.contains_key(**k))
            .take(5)
            .collect();
        let missing: Vec<_> = b
            .iter()
            .filter(|k| !hostile.contains_key(**k))
            .take(5)
            .collect();
        return Err(format!(
            "the shape changed: extra {extra:?}, missing {missing:?}"
        ));
    }
    for (k, v) in hostile {
        let before = &benign[k];
        // A tenant owner `user:NAME` lands as NAME.
        let name = original.split_once(':').map_or(original, |(_, n)| n);
        if v != before && !before.contains(original) && !before.contains(name) {
            return Err(format!(
                "`{k}` changed from {before:?} to {v:?}, where the value does not belong"
            ));
        }
    }
    Ok(())
}

/// Every plain string of initech-prod's spec (the one with SSO and tenants): (span
/// path, JSON pointer, value).
fn string_fields(spec: &Value) -> Vec<(String, String, String)> {
    fn go(span: &str, pointer: &str, v: &Value, out: &mut Vec<(String, String, String)>) {
        match v {
            Value::String(s) => out.push((span.to_string(), pointer.to_string(), s.clone())),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    go(
                        &format!("{span}[{i}]"),
                        &format!("{pointer}/{i}"),
                        item,
                        out,
                    );
                }
            }
            Value::Object(m) => {
                for (k, item) in m {
                    let child = if span.is_empty() {
                        k.clone()
                    } else {
                        format!("{span}.{k}")
                    };
                    go(&child, &format!("{pointer}/{k}"), item, out);
                }
            }
            _ => {}
        }
    }
    let mut spec = spec.clone();
    if let Some(m) = spec.as_object_mut() {
        m.remove("settings");
        m.remove("components");
    }
    let mut out = Vec::new();
    go("", "", &spec, &mut out);
    out
}

/// What became of a case that holds.
#[derive(Debug, PartialEq)]
enum Outcome {
    Refused,
    Rendered,
}

/// One case: `value` at `pointer` of initech-prod. Ok when validate refuses it with a
/// location in the spec, or the render has the benign shape.
fn check_case(
    benign: &BTreeMap<String, String>,
    field: &(String, String, String),
    value: &str,
) -> Result<Outcome, String> {
    let (span, pointer, original) = field;
    let sources = with_spec(|spec| {
        *spec.pointer_mut(pointer).expect("the field exists") = Value::String(value.to_string());
    });
    let diags = match Fleet::from_sources(&sources) {
        Ok(fleet) => crate::validate::validate(&fleet, TODAY.parse().expect("a date")),
        Err(d) => d,
    };
    if diags.has_errors() {
        let located = diags.errors().all(|d| {
            let mut parts = d.location.rsplitn(3, ':');
            let (c, l) = (parts.next(), parts.next());
            c.is_some_and(|c| c.parse::<u32>().is_ok())
                && l.is_some_and(|l| l.parse::<u32>().is_ok())
        });
        let at_spec = diags.errors().any(|d| d.location.starts_with(INITECH));
        return if located && at_spec {
            Ok(Outcome::Refused)
        } else {
            Err(format!(
                "`{span}` = {value:?} refused without a location in the spec: {:?}",
                diags.items
            ))
        };
    }
    let files = render_unvalidated(&sources, "initech-prod")
        .map_err(|e| format!("`{span}` = {value:?} passed validate but did not render: {e}"))?;
    same_shape(benign, &leaves(&files), original, value)
        .map(|()| Outcome::Rendered)
        .map_err(|e| format!("`{span}` = {value:?}: {e}"))
}

/// Pieces a hostile value is made of: YAML, CSV, JMESPath, CEL and Jinja syntax, file
/// directives, line breaks of every kind, quotes, Unicode.
const PIECES: &[&str] = &[
    "\n",
    "\r\n",
    "\u{85}",
    "\u{2028}",
    "\t",
    " ",
    "#! file: pwn.yaml\n",
    "\n---\n",
    "'",
    "\"",
    "\\",
    ",",
    "#",
    ": ",
    "- ",
    "? ",
    "[",
    "]",
    "{",
    "}",
    "{{ cluster.name }}",
    "{% if %}",
    "&a",
    "*a",
    "!!binary",
    "|",
    ">",
    "%",
    "@",
    "`",
    "') || true || ('",
    "\"[*]",
    "é",
    "\u{1F512}",
    "kind: ClusterRoleBinding",
    "system:unauthenticated",
    "a",
    "Z",
    "0",
    "-",
    ".",
    "/",
    "_",
];

fn hostile_value(original: &'static str) -> impl Strategy<Value = String> {
    hostile_value_keeping(original, proptest::bool::ANY)
}

/// A hostile value; `keep` says whether it starts with the original (so that what the
/// render derives from its start, such as a tenant owner's `group:` kind, stays).
fn hostile_value_keeping(
    original: &'static str,
    keep: impl Strategy<Value = bool>,
) -> impl Strategy<Value = String> {
    let pieces = proptest::collection::vec(proptest::sample::select(PIECES), 1..6);
    (keep, pieces).prop_map(move |(keep, pieces)| {
        let tail: String = pieces.concat();
        if keep {
            format!("{original}{tail}")
        } else {
            tail
        }
    })
}

#[test]
fn no_spec_value_becomes_structure() {
    let spec_sources = example::sources();
    let (spec, _) =
        crate::yaml::from_str::<crate::model::ClusterSpec>(INITECH, &spec_sources.files[INITECH])
            .expect("the example spec reads");
    let fields = string_fields(&serde_json::to_value(&spec).expect("serialises"));
    assert!(fields.len() > 60, "{}", fields.len());
    let benign = leaves(&render_unvalidated(&with_spec(|_| {}), "initech-prod").expect("renders"));

    // A fixed seed and a bounded number of cases: the same values on every run, in seconds.
    let config = Config {
        cases: 160,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let fields: &'static [(String, String, String)] = Box::leak(fields.into_boxed_slice());
    let strategy = proptest::sample::select(fields).prop_flat_map(|field| {
        let original: &'static str = Box::leak(field.2.clone().into_boxed_str());
        (proptest::strategy::Just(field), hostile_value(original))
    });
    let mut failures = Vec::new();
    let mut rendered = Vec::new();
    for _ in 0..160 {
        let tree = strategy.new_tree(&mut runner).expect("a value");
        let (field, value) = tree.current();
        match check_case(&benign, &field, &value) {
            Ok(Outcome::Rendered) => rendered.push(field.0.clone()),
            Ok(Outcome::Refused) => {}
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Most hostile values are refused by validate; the templates' end is the next test.
    assert!(!rendered.is_empty());
}

/// Renders initech-prod of `sources` without validating it, with templates compiled once
/// (they depend on the blueprints only).
fn render_with(
    sources: &Sources,
    templates: &Templates,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let fleet = Fleet::from_sources(sources).map_err(|d| format!("{:?}", d.items))?;
    let plan = crate::plan::plan(&fleet, templates, "initech-prod").map_err(|e| e.to_string())?;
    let tree = super::render(&plan, templates).map_err(|e| e.to_string())?;
    Ok(tree.files)
}

/// The templates' end alone: the same values rendered without validation either make the
/// render fail (a filter refuses them) or render as data, with the benign shape. Fewer
/// cases than above: every one is a whole render.
#[test]
fn unvalidated_values_render_as_data_or_not_at_all() {
    const CASES: usize = 32;
    let spec_sources = example::sources();
    let (spec, _) =
        crate::yaml::from_str::<crate::model::ClusterSpec>(INITECH, &spec_sources.files[INITECH])
            .expect("the example spec reads");
    // Fields the templates write as data. Left out: those the renderer parses or names
    // files and objects by (network, versions, zones, node and tenant names), whose
    // refusal is validate's (the property above).
    let fields: Vec<_> = string_fields(&serde_json::to_value(&spec).expect("serialises"))
        .into_iter()
        .filter(|(span, _, _)| {
            !(span.starts_with("network.")
                || span.starts_with("versions.")
                || span.starts_with("zones")
                || span.starts_with("nodes.")
                || span.starts_with("name")
                || span.starts_with("tier")
                || (span.starts_with("tenants[") && span.ends_with("].name")))
        })
        .collect();
    assert!(fields.len() > 25, "{}", fields.len());
    let benign = leaves(&render_unvalidated(&with_spec(|_| {}), "initech-prod").expect("renders"));
    let templates = Templates::new(&Fleet::from_sources(&example::sources()).expect("reads"))
        .expect("compiles");
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[11; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let fields: &'static [(String, String, String)] = Box::leak(fields.into_boxed_slice());
    let strategy = proptest::sample::select(fields).prop_flat_map(|field| {
        let original: &'static str = Box::leak(field.2.clone().into_boxed_str());
        (
            proptest::strategy::Just(field),
            hostile_value_keeping(original, proptest::strategy::Just(true)),
        )
    });
    let mut failures = Vec::new();
    let mut rendered = 0;
    for _ in 0..CASES {
        let tree = strategy.new_tree(&mut runner).expect("a value");
        let ((span, pointer, original), value) = tree.current();
        let sources = with_spec(|spec| {
            *spec.pointer_mut(&pointer).expect("the field exists") = Value::String(value.clone());
        });
        let Ok(files) = render_with(&sources, &templates) else {
            continue;
        };
        rendered += 1;
        // A value may name files and keys (a tenant's file, a node's patch, the claim
        // key): put the original back where it stands for a whole or part of a key.
        let hostile: BTreeMap<String, String> = leaves(&files)
            .into_iter()
            .map(|(k, v)| {
                let fresh = !value.is_empty() && !benign.keys().any(|b| b.contains(value.as_str()));
                let k = if fresh {
                    k.replace(value.as_str(), &original)
                } else {
                    k
                };
                (k, v)
            })
            .collect();
        if let Err(e) = same_shape(&benign, &hostile, &original, &value) {
            failures.push(format!("`{span}` = {value:?}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(rendered >= CASES / 4, "only {rendered} of {CASES} rendered");
}

/// Values validate accepts that still hold the characters the templates must escape.
#[test]
fn valid_values_with_spaces_and_punctuation_render_as_data() {
    let benign = leaves(&render_unvalidated(&with_spec(|_| {}), "initech-prod").expect("renders"));
    let spec_sources = example::sources();
    let (spec, _) =
        crate::yaml::from_str::<crate::model::ClusterSpec>(INITECH, &spec_sources.files[INITECH])
            .expect("the example spec reads");
    let fields = string_fields(&serde_json::to_value(&spec).expect("serialises"));
    let field = |span: &str| {
        fields
            .iter()
            .find(|f| f.0 == span)
            .expect("a field")
            .clone()
    };
    for (span, value) in [
        ("sso.adminGroup", "Platform Admins: ops=1+2 @/x"),
        ("sso.groupsClaim", "https://example.net/groups"),
        ("sso.clientId", "client:a/b+c=d@e"),
        (
            "sso.issuer",
            "https://login.example.net:8443/a,b+c=d@e:f/%41",
        ),
        (
            "client",
            "Initech, Inc. #1 — \"the\" {{ client }} 'x' [y] & *z",
        ),
        ("kubeContext", "admin@initech: {{ x }} #y"),
        ("tenants[1].owners[1]", "user:Jane Doe: x=1"),
    ] {
        let outcome = check_case(&benign, &field(span), value).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(outcome, Outcome::Rendered, "{span}");
    }
}

/// With validation bypassed, the four exploits of the issue render as data.
#[test]
fn the_known_exploits_render_as_data_even_unvalidated() {
    let benign = leaves(&render_unvalidated(&with_spec(|_| {}), "initech-prod").expect("renders"));
    let cases = [
        (
            "/sso/groupsClaim",
            "groups",
            "groups\n#! file: pwn.yaml\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: pwn}\n---\n#",
        ),
        (
            "/sso/issuer",
            "https://login.microsoftonline.com",
            "https://login.example.net/v2.0\n    users.anonymous.enabled: \"true\"\n    x: |",
        ),
        (
            "/sso/adminGroup",
            "initech-platform-admins",
            "x') || contains(['a'], 'a",
        ),
    ];
    for (pointer, original, value) in cases {
        let sources = with_spec(|spec| {
            *spec.pointer_mut(pointer).expect("a field") = Value::String(value.into());
        });
        let files = render_unvalidated(&sources, "initech-prod").expect("renders");
        assert!(!files.contains_key("manifests/sso-rbac/pwn.yaml"));
        same_shape(&benign, &leaves(&files), original, value)
            .unwrap_or_else(|e| panic!("{pointer}: {e}"));
    }
    // The adminGroup in Grafana's rule is one JMESPath raw string literal.
    let sources = with_spec(|spec| {
        spec["sso"]["adminGroup"] = Value::String("x') || contains(['a'], 'a".into());
    });
    let files = render_unvalidated(&sources, "initech-prod").expect("renders");
    let values: Value = crate::yaml::parse(
        "v",
        std::str::from_utf8(&files["values/kube-prometheus-stack.yaml"]).unwrap(),
    )
    .unwrap()
    .value;
    assert_eq!(
        values["grafana"]["grafana.ini"]["auth.generic_oauth"]["role_attribute_path"],
        r#"contains("groups"[*], 'x\') || contains([\'a\'], \'a') && 'Admin' || 'Viewer'"#
    );
    // A line break in the admin group cannot reach policy.csv: the render refuses it.
    let sources = with_spec(|spec| {
        spec["sso"]["adminGroup"] =
            Value::String("a, role:admin\np, role:readonly, *, *, *, allow".into());
    });
    let err = render_unvalidated(&sources, "initech-prod").unwrap_err();
    assert!(
        err.contains("policy.csv field cannot hold a line break"),
        "{err}"
    );
}
