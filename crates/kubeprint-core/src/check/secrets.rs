//! The secrets scan: a Secret anywhere in a rendered object (top level, inside a `List`'s
//! `items`, or embedded in another object, e.g. a policy that generates one) would put a
//! secret in Git in plaintext.

use crate::yaml::Value;

/// The message of a Secret found in a rendered tree.
pub(super) const MESSAGE: &str =
    "a Secret in the rendered repository would put a secret in Git in plaintext";

/// Whether `object` (a whole document) is a Secret.
pub(super) fn is_secret(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("Secret")
}

/// The span paths (`spec.rules[0].generate.data`) of every Secret embedded below the top
/// level of `object`: a mapping with `kind: Secret` that is a whole object (`metadata`) or
/// carries secret material (`data`, `stringData`). A reference such as
/// `{kind: Secret, name: x}` or Kasten's `{apiVersion: v1, kind: Secret, name: x,
/// namespace: y}` is not one.
pub(super) fn embedded(object: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(object, "", true, &mut out);
    out
}

fn walk(v: &Value, path: &str, top: bool, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if !top
                && m.get("kind").and_then(Value::as_str) == Some("Secret")
                && (m.contains_key("metadata")
                    || m.contains_key("data")
                    || m.contains_key("stringData"))
            {
                out.push(path.to_string());
                return;
            }
            for (k, child) in m {
                walk(child, &crate::yaml::child_path(path, k), false, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, &format!("{path}[{i}]"), false, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn embedded_secrets_are_found_at_any_depth_but_references_are_not() {
        let policy = json!({
            "kind": "ClusterPolicy",
            "spec": {"rules": [
                {"generate": {"data": {"kind": "Secret", "apiVersion": "v1", "data": {"k": "dg=="}}}},
                {"match": {"kinds": ["Secret"]}, "ref": {"kind": "Secret", "name": "x"}},
                {"credential": {"secret": {"apiVersion": "v1", "kind": "Secret", "name": "s3", "namespace": "kasten-io"}}},
            ]},
        });
        assert_eq!(embedded(&policy), vec!["spec.rules[0].generate.data"]);
        assert!(embedded(&json!({"kind": "Secret", "data": {}})).is_empty());
    }
}
