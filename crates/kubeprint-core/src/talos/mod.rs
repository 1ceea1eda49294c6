//! Talos Linux: the secrets bundle, its SOPS file in the blueprint repo, and the complete
//! machine config of one node (base + secrets + node patch), assembled only on demand.
//!
//! Who holds what: the blueprint repository holds each cluster's bundle encrypted to the
//! age recipients of `fleet.yaml` (`overlays/clusters/<name>/talos-secrets.sops.yaml`);
//! rendered trees hold the same encrypted file and configs without secrets; only
//! [`node_config`], given an age identity, ever sees a secret, and it returns it in a
//! [`Secret`] for the caller to print on stdout.

pub mod assemble;
pub mod bootstrap;
pub mod schema;
pub mod secrets;

use crate::fleet::{self, Checked};
use crate::model::cluster::Role;
use crate::render::talos::{DIR, role_file};
use crate::secret::Secret;
use crate::sops::{self, Identities};
use crate::yaml;

pub use crate::model::paths::{SECRETS_FILE, secrets_path};

/// Errors of the Talos commands; none carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Sops(#[from] sops::Error),
    #[error(transparent)]
    Bundle(#[from] secrets::Error),
    #[error(transparent)]
    Assemble(#[from] assemble::Error),
    #[error(transparent)]
    Fleet(#[from] fleet::Error),
    #[error(transparent)]
    Yaml(#[from] yaml::Error),
    #[error(transparent)]
    Bootstrap(#[from] bootstrap::Error),
    #[error("cluster `{cluster}` has no node `{node}`")]
    UnknownNode {
        cluster: String,
        node: String,
        hint: Option<String>,
    },
    #[error("cluster `{cluster}` has no Talos secrets bundle `{path}`")]
    NoBundle { cluster: String, path: String },
    #[error("the assembled config of `{node}` breaks the Talos {minor} schema:\n  {}", problems.join("\n  "))]
    Schema {
        node: String,
        minor: String,
        problems: Vec<String>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A new bundle, encrypted to `recipients`: the text of `talos-secrets.sops.yaml`.
///
/// Every key, token and data key comes from `rng`: give it the operating system's
/// (`rand::rngs::OsRng`), or a seeded one in tests.
pub fn create_bundle(
    cluster: &str,
    recipients: &[String],
    now: jiff::Timestamp,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<String> {
    sops::check_recipients(recipients)?;
    let bundle = secrets::Bundle::generate(now, rng)?;
    Ok(sops::encrypt(
        &secrets_path(cluster),
        &bundle.to_value(),
        recipients,
        now,
        rng,
    )?)
}

/// The same secrets, re-encrypted (new data key) to `recipients`.
pub fn rekey(
    cluster: &str,
    text: &str,
    identities: &Identities,
    recipients: &[String],
    now: jiff::Timestamp,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<String> {
    let file = secrets_path(cluster);
    sops::check_recipients(recipients)?;
    let tree = sops::decrypt(&file, text, identities)?;
    // Refuse to re-encrypt something that is not a complete bundle.
    secrets::Bundle::from_value(&file, &tree)?;
    Ok(sops::encrypt(&file, &tree, recipients, now, rng)?)
}

/// Decrypts and reads a cluster's bundle.
pub fn open_bundle(
    checked: &Checked,
    cluster: &str,
    identities: &Identities,
) -> Result<secrets::Bundle> {
    let path = secrets_path(cluster);
    let text = checked
        .fleet
        .cluster_files
        .get(cluster)
        .and_then(|f| f.get(SECRETS_FILE))
        .ok_or_else(|| Error::NoBundle {
            cluster: cluster.into(),
            path: path.clone(),
        })?;
    let tree = sops::decrypt(&path, text, identities)?;
    Ok(secrets::Bundle::from_value(&path, &tree)?)
}

/// Hydrates the Applications of the bootstrap of a cluster (its name and rendered tree):
/// helm's output per Application name (the edge runs it as `kubeprint hydrate` does).
pub type Hydrate<'a> = dyn FnMut(
        &str,
        &crate::tree::RenderedTree,
        &[bootstrap::Request],
    ) -> bootstrap::Result<std::collections::BTreeMap<String, String>>
    + 'a;

/// The complete machine config of one node, as multi-document YAML, checked against the
/// schema of the cluster's Talos minor. A control plane's carries the bootstrap's inline
/// manifests (`talos/bootstrap.yaml`), whose charts `hydrate` renders; a worker's needs
/// no hydration.
pub fn node_config(
    checked: &Checked,
    cluster: &str,
    node: &str,
    identities: &Identities,
    hydrate: &mut Hydrate<'_>,
) -> Result<Secret<String>> {
    let names = fleet::select(&checked.fleet, &[cluster.to_string()])?;
    let spec = &checked.fleet.clusters[&names[0]].value;
    let views = spec.node_views();
    let Some(view) = views.iter().find(|v| v.host.name == node) else {
        let known: Vec<String> = views.iter().map(|v| v.host.name.clone()).collect();
        let hint = yaml::did_you_mean(node, &known)
            .map(|s| format!("did you mean `{s}`?"))
            .or_else(|| {
                Some(format!(
                    "the nodes of `{cluster}` are: {}",
                    known.join(", ")
                ))
            });
        return Err(Error::UnknownNode {
            cluster: cluster.into(),
            node: node.into(),
            hint,
        });
    };
    let role: Role = view.role;
    let bundle = open_bundle(checked, cluster, identities)?;
    let tree = fleet::render_cluster(checked, cluster)?;
    let base_path = format!("{DIR}/{}.yaml", role_file(role));
    let patch_path = format!("{DIR}/nodes/{node}.yaml");
    let read = |path: &str| -> Result<Vec<yaml::Value>> {
        let text = String::from_utf8_lossy(tree.get(path).unwrap_or_default()).into_owned();
        Ok(yaml::parse_all(path, &text)?
            .into_iter()
            .map(|d| d.value)
            .collect())
    };
    let mut patch = read(&patch_path)?;
    if role == Role::ControlPlane {
        let requests = bootstrap::requests(&tree)?;
        let hydrated = if requests.is_empty() {
            Default::default()
        } else {
            hydrate(&names[0], &tree, &requests)?
        };
        let manifests = bootstrap::inline_manifests(
            &tree,
            &hydrated,
            &checked.fleet.settings.value.argocd_namespace,
        )?;
        patch.push(serde_json::json!({"cluster": {"inlineManifests": manifests}}));
    }
    let docs = assemble::assemble(&base_path, &read(&base_path)?, &patch, &bundle, role)?;
    let minor = spec.talos_minor().unwrap_or_default();
    let problems = schema::validate(&minor, docs.expose());
    if !problems.is_empty() {
        return Err(Error::Schema {
            node: node.into(),
            minor,
            problems,
        });
    }
    Ok(Secret::new(yaml::to_multi_doc(docs.expose())))
}
