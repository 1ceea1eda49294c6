//! Validation of Talos config documents against the upstream JSON schema of a Talos minor.
//!
//! The schemas are copies of siderolabs/talos `config.schema.json` (MPL-2.0, see
//! `schemas/upstream/README.md`), embedded in the binary. Each document is checked on its
//! own against the definition of its kind (`v1alpha1.Config` for the document without
//! `kind`, `network.LinkConfigV1Alpha1` for `kind: LinkConfig`, ...). Messages name the
//! document and the instance path, never an instance value, so that a problem in an
//! assembled config cannot print a secret.

use serde_json::{Map, Value};

const V1_12: &str = include_str!("../../../../schemas/upstream/talos/v1.12.11/config.schema.json");
const V1_13: &str = include_str!("../../../../schemas/upstream/talos/v1.13.9/config.schema.json");

/// The Talos minors a schema is kept for.
pub const MINORS: [&str; 2] = ["1.12", "1.13"];

/// The upstream schema of a Talos minor (`1.13`), when kept.
pub fn schema_of(minor: &str) -> Option<Value> {
    let text = match minor {
        "1.12" => V1_12,
        "1.13" => V1_13,
        _ => return None,
    };
    Some(serde_json::from_str(text).expect("the embedded Talos schemas are JSON"))
}

/// Checks every document; returns one message per problem (empty: all valid).
///
/// # Errors
/// A message for a minor without a schema, a document of an unknown kind, or each place
/// a document breaks its definition.
pub fn validate(minor: &str, docs: &[Value]) -> Vec<String> {
    let Some(schema) = schema_of(minor) else {
        return vec![format!(
            "no Talos schema is kept for Talos {minor} (kept: {})",
            MINORS.join(", ")
        )];
    };
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut problems = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let kind = doc.get("kind").and_then(Value::as_str);
        let def = match kind {
            None => Some("v1alpha1.Config".to_string()),
            Some(k) => defs
                .keys()
                .find(|d| {
                    d.split_once('.')
                        .is_some_and(|(_, n)| n == format!("{k}V1Alpha1"))
                })
                .cloned(),
        };
        let label = kind.unwrap_or("v1alpha1");
        let Some(def) = def else {
            problems.push(format!(
                "document {} (`{label}`): Talos {minor} has no document kind `{label}`",
                i + 1
            ));
            continue;
        };
        let mut root = Map::new();
        root.insert("$schema".into(), schema["$schema"].clone());
        root.insert("$ref".into(), Value::String(format!("#/$defs/{def}")));
        root.insert("$defs".into(), Value::Object(defs.clone()));
        let validator = match jsonschema::validator_for(&Value::Object(root)) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("the Talos {minor} schema does not compile: {e}"));
                return problems;
            }
        };
        for err in validator.iter_errors(doc) {
            problems.push(format!(
                "document {} (`{label}`): at `{}`: {}",
                i + 1,
                err.instance_path(),
                describe(err.kind())
            ));
        }
    }
    problems
}

/// A short reason without the instance value.
fn describe(kind: &jsonschema::error::ValidationErrorKind) -> String {
    use jsonschema::error::ValidationErrorKind as K;
    match kind {
        K::AdditionalProperties { unexpected } => {
            format!("unknown field(s) {}", unexpected.join(", "))
        }
        K::Required { property } => format!("missing required field {property}"),
        K::Type { kind } => format!("wrong type (expected {kind:?})"),
        K::Enum { options } => format!("not one of {options}"),
        K::Pattern { pattern } => format!("does not match `{pattern}`"),
        _ => "does not match the schema".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_each_document_against_its_kind() {
        let good = vec![
            json!({"version": "v1alpha1", "machine": {"type": "worker"}}),
            json!({"apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": "a"}),
        ];
        for minor in MINORS {
            assert_eq!(validate(minor, &good), Vec::<String>::new());
        }
        let bad = vec![
            json!({"machine": {"type": "worker", "network": {"hostname": "secret-ish"}}}),
            json!({"apiVersion": "v1alpha1", "kind": "NoSuchConfig"}),
        ];
        let problems = validate("1.13", &bad);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("/machine") && problems[0].contains("network"),
            "{problems:?}"
        );
        assert!(!problems.iter().any(|p| p.contains("secret-ish")));
        assert!(problems[1].contains("no document kind `NoSuchConfig`"));
        assert_eq!(validate("1.9", &good).len(), 1);
    }
}
