//! Secrets files: every `*.sops.yaml` beside a cluster spec (its Talos bundle) is a SOPS
//! file whose every value is encrypted, or the fleet is refused (`sops::check_encrypted`).

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::{Fleet, paths};

pub(super) fn check(fleet: &Fleet, d: &mut Diagnostics) {
    for (cluster, files) in &fleet.cluster_files {
        for (name, text) in files {
            if !name.ends_with(".sops.yaml") {
                continue;
            }
            let file = format!("{}{cluster}/{name}", paths::CLUSTERS);
            if let Err(e) = crate::sops::check_encrypted(&file, text) {
                d.push(Diagnostic::error(
                    e.location,
                    e.message,
                    Some(e.hint.into()),
                ));
            }
        }
    }
}
