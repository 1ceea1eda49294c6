//! Talos machine config documents of a rendered tree, against the Talos schema of their version.

use std::collections::BTreeMap;

use super::{Problem, Report};
use crate::yaml::{self, Value};

/// The Talos minor of a tree, from the installer image of a base config (`...installer:v1.13.9`).
pub(super) fn minor(parsed: &BTreeMap<&str, Vec<yaml::Document>>) -> Option<String> {
    parsed
        .iter()
        .filter(|(p, _)| p.starts_with("talos/"))
        .flat_map(|(_, docs)| docs.iter())
        .find_map(|d| {
            d.value
                .pointer("/machine/install/image")
                .and_then(Value::as_str)
        })
        .and_then(|image| image.rsplit(':').next())
        .and_then(|tag| crate::model::cluster::minor_of(tag.trim_start_matches('v')))
}

/// Checks the documents of one `talos/` file.
pub(super) fn check_file(
    path: &str,
    docs: &[yaml::Document],
    minor: Option<&str>,
    report: &mut Report,
) {
    let values: Vec<Value> = docs.iter().map(|d| d.value.clone()).collect();
    report.talos_documents += values.len();
    let problems = match minor {
        Some(minor) => crate::talos::schema::validate(minor, &values),
        None => vec![
            "no base config names the Talos installer image, so the Talos version is unknown"
                .into(),
        ],
    };
    for message in problems {
        report.problems.push(Problem {
            location: path.to_string(),
            object: None,
            message,
        });
    }
}
