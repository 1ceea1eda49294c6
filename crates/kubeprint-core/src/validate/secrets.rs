//! Secrets files: every `*.sops.yaml` beside a cluster spec (its Talos bundle) is a SOPS
//! file whose every value is encrypted, or the fleet is refused (`sops::check_encrypted`).

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::{Fleet, paths};

pub(super) fn check(fleet: &Fleet, d: &mut Diagnostics) {
    use rayon::prelude::*;
    // A fleet's bundles are most of its bytes (about 9 KB of YAML per cluster): check
    // them in parallel, report in path order as before.
    let files: Vec<(&String, &String, &String)> = fleet
        .cluster_files
        .iter()
        .flat_map(|(cluster, files)| files.iter().map(move |(name, text)| (cluster, name, text)))
        .filter(|(_, name, _)| name.ends_with(".sops.yaml"))
        .collect();
    let found: Vec<Diagnostic> = files
        .par_iter()
        .filter_map(|(cluster, name, text)| {
            let file = format!("{}{cluster}/{name}", paths::CLUSTERS);
            crate::sops::check_encrypted(&file, text)
                .err()
                .map(|e| Diagnostic::error(e.location, e.message, Some(e.hint.into())))
        })
        .collect();
    for diagnostic in found {
        d.push(diagnostic);
    }
}
