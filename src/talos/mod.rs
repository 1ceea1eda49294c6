//! Talos Linux: the secrets bundle, its SOPS file in the blueprint repo, and the complete
//! machine config of one node (base + secrets + node patch), assembled only on demand.

pub mod assemble;
pub mod schema;
pub mod secrets;

/// The secrets bundle of cluster `NAME`: `overlays/clusters/NAME/` + this file name.
pub const SECRETS_FILE: &str = "talos-secrets.sops.yaml";

/// The repository path of a cluster's encrypted secrets bundle.
pub fn secrets_path(cluster: &str) -> String {
    format!("{}{cluster}/{SECRETS_FILE}", crate::model::paths::CLUSTERS)
}
