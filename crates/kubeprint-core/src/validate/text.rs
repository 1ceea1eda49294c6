//! Every plain string of the spec is one line of printable text: no newline or other
//! control character can reach a template or a message. Settings and component values
//! are data of any shape (a Helm value may be a file's text) and are left to the
//! templates, which write them as data.

use super::Checker;
use crate::diagnostics::Severity;
use crate::model::names;

pub(super) fn check(v: &mut Checker) {
    let spec = v.spec;
    let mut value = serde_json::to_value(&spec.value).expect("the spec serialises");
    if let Some(m) = value.as_object_mut() {
        m.remove("settings");
        m.remove("components");
    }
    let mut strings = Vec::new();
    collect("", &value, &mut strings);
    for (path, s) in strings {
        if names::is_one_line(s) {
            continue;
        }
        // A field whose own rule already refused it is not reported twice.
        let at = spec.at(&path);
        if v.d
            .items
            .iter()
            .any(|d| d.severity == Severity::Error && d.location == at)
        {
            continue;
        }
        v.error(
            &path,
            format!(
                "`{path}` holds a line break or another control character: {}",
                names::shown(s)
            ),
            "write the value on one line, without control characters",
        );
    }
}

fn collect<'a>(path: &str, value: &'a serde_json::Value, out: &mut Vec<(String, &'a str)>) {
    match value {
        serde_json::Value::String(s) => out.push((path.to_string(), s)),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect(&format!("{path}[{i}]"), item, out);
            }
        }
        serde_json::Value::Object(m) => {
            for (k, item) in m {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                collect(&child, item, out);
            }
        }
        _ => {}
    }
}
