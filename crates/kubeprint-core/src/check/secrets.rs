//! The secrets scan: a Secret in a rendered tree would put a secret in Git in plaintext.

use crate::yaml::Value;

/// The message of a Secret found in a rendered tree.
pub(super) const MESSAGE: &str =
    "a Secret in the rendered repository would put a secret in Git in plaintext";

/// Whether `object` (a whole document) is a Secret.
pub(super) fn is_secret(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("Secret")
}
