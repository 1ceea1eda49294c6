//! `kubeprint talos`: create, rotate and rekey a cluster's secrets bundle; print a node's
//! complete machine config.

use std::path::Path;

use std::collections::BTreeMap;

use kubeprint::helm::Helm;
use kubeprint::helm::hydrate::{self as run, BootstrapError};
use kubeprint::sops::Identities;
use kubeprint::talos::{self, bootstrap, secrets_path};
use kubeprint::tree::RenderedTree;

use super::{CommandError, ExitStatus, Printer, Result, load_checked};
use crate::cli::{
    HydrationArgs, TalosArgs, TalosCommand, TalosConfigArgs, TalosSecretsCommand,
    TalosSecretsCreateArgs, TalosSecretsRekeyArgs,
};

pub fn run(args: TalosArgs, printer: &Printer) -> Result {
    match args.command {
        TalosCommand::Secrets(TalosSecretsCommand::Create(a)) => create(a, printer),
        TalosCommand::Secrets(TalosSecretsCommand::Rekey(a)) => rekey(a, printer),
        TalosCommand::Config(a) => config(a, printer),
    }
}

impl From<talos::Error> for CommandError {
    fn from(err: talos::Error) -> Self {
        use kubeprint::sops::Error as S;
        let hint = match &err {
            talos::Error::UnknownNode { hint, .. } => hint.clone(),
            talos::Error::NoBundle { cluster, .. } => Some(format!("run `kubeprint talos secrets create {cluster}`")),
            talos::Error::Sops(S::NoMatchingIdentity { .. } | S::Identity { .. }) => {
                Some("pass `--identity FILE` with an age key whose public key is in fleet.yaml `ageRecipients`".into())
            }
            talos::Error::Sops(S::NoRecipients | S::Recipient { .. }) => {
                Some("list the age public keys (`age1…`) in fleet.yaml `ageRecipients`".into())
            }
            _ => None,
        };
        let hint = match &err {
            talos::Error::Bootstrap(bootstrap::Error::Hydrate { hint: Some(h), .. }) => {
                Some(h.clone())
            }
            _ => hint,
        };
        match err {
            talos::Error::Fleet(e) => e.into(),
            talos::Error::Sops(S::Age(e)) => CommandError::environment(e),
            talos::Error::Bootstrap(
                e @ bootstrap::Error::Hydrate {
                    environment: true, ..
                },
            ) => CommandError {
                hint,
                ..CommandError::environment(e)
            },
            other => CommandError::bad_input(other, hint),
        }
    }
}

fn read_identity(path: &Path) -> Result<Identities> {
    let text = fs_err::read_to_string(path).map_err(|e| {
        CommandError::bad_input(
            anyhow::Error::new(e).context("cannot read the age identity file"),
            Some(
                "pass `--identity FILE` (or set SOPS_AGE_KEY_FILE) with an `age-keygen` key file"
                    .into(),
            ),
        )
    })?;
    Identities::parse(&path.display().to_string(), &text).map_err(|e| talos::Error::from(e).into())
}

/// Writes a file atomically (temporary file beside it, then rename).
fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().expect("a file in a directory");
    fs_err::create_dir_all(dir).map_err(CommandError::environment)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(CommandError::environment)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(CommandError::environment)?;
    tmp.persist(path)
        .map_err(|e| CommandError::environment(e.error))?;
    Ok(())
}

fn create(args: TalosSecretsCreateArgs, printer: &Printer) -> Result {
    let checked = load_checked(&args.fleet, printer)?;
    let names = kubeprint::fleet::select(&checked.fleet, std::slice::from_ref(&args.cluster))?;
    let cluster = &names[0];
    let rel = secrets_path(cluster);
    let path = args.fleet.fleet.join(&rel);
    if path.exists() && !args.force {
        return Err(CommandError::bad_input(
            anyhow::anyhow!("`{rel}` exists: cluster `{cluster}` already has its Talos secrets"),
            Some(format!(
                "to re-encrypt it to new recipients run `kubeprint talos secrets rekey {cluster} --identity FILE`; to replace every secret (a full rotation) add `--force`"
            )),
        ));
    }
    if path.exists() {
        printer.status(&format!(
            "WARNING: replacing every Talos secret of `{cluster}` (CAs, keys, tokens).\n\
             WARNING: nodes installed with the old secrets will not trust configs made from the new ones;\n\
             WARNING: the old bundle stays in git history: rotate on a cluster you are rebuilding, or follow docs/talos.md."
        ));
    }
    let text = talos::create_bundle(
        cluster,
        &checked.fleet.settings.value.age_recipients,
        jiff::Timestamp::now(),
        &mut rand::rngs::OsRng,
    )?;
    write_atomic(&path, &text)?;
    printer.status(&format!(
        "wrote {rel}: encrypted to {} age recipient(s); commit it",
        checked.fleet.settings.value.age_recipients.len()
    ));
    Ok(ExitStatus::Success)
}

fn rekey(args: TalosSecretsRekeyArgs, printer: &Printer) -> Result {
    let ids = read_identity(&args.identity)?;
    let checked = load_checked(&args.fleet, printer)?;
    let names = if args.clusters.is_empty() {
        checked
            .fleet
            .cluster_files
            .iter()
            .filter(|(n, f)| {
                f.contains_key(talos::SECRETS_FILE) && checked.fleet.clusters.contains_key(*n)
            })
            .map(|(n, _)| n.clone())
            .collect()
    } else {
        kubeprint::fleet::select(&checked.fleet, &args.clusters)?
    };
    let recipients = &checked.fleet.settings.value.age_recipients;
    let mut texts = Vec::new();
    // Every bundle is re-encrypted in memory first: one that fails leaves all files as they were.
    for cluster in &names {
        let Some(text) = checked
            .fleet
            .cluster_files
            .get(cluster)
            .and_then(|f| f.get(talos::SECRETS_FILE))
        else {
            return Err(talos::Error::NoBundle {
                cluster: cluster.clone(),
                path: secrets_path(cluster),
            }
            .into());
        };
        texts.push((
            cluster,
            talos::rekey(
                cluster,
                text,
                &ids,
                recipients,
                jiff::Timestamp::now(),
                &mut rand::rngs::OsRng,
            )?,
        ));
    }
    for (cluster, text) in texts {
        write_atomic(&args.fleet.fleet.join(secrets_path(cluster)), &text)?;
        printer.status(&format!(
            "re-encrypted {} to {} recipient(s)",
            secrets_path(cluster),
            recipients.len()
        ));
    }
    Ok(ExitStatus::Success)
}

fn config(args: TalosConfigArgs, printer: &Printer) -> Result {
    let ids = read_identity(&args.identity)?;
    let checked = load_checked(&args.fleet, printer)?;
    let fleet_dir = args.fleet.fleet.clone();
    let spec = checked
        .fleet
        .clusters
        .get(&args.cluster)
        .map(|c| c.value.clone());
    // Only a control plane's config calls it: a worker's needs no helm.
    let mut hydrate = |_: &str, tree: &RenderedTree, requests: &[bootstrap::Request]| {
        let spec = spec.as_ref().expect("a known cluster");
        hydrate_bootstrap(&checked, &fleet_dir, &args.hydration, spec, tree, requests)
    };
    let text = talos::node_config(&checked, &args.cluster, &args.node, &ids, &mut hydrate)?;
    let mut stdout = std::io::stdout().lock();
    std::io::Write::write_all(&mut stdout, text.expose().as_bytes())
        .map_err(CommandError::environment)?;
    Ok(ExitStatus::Success)
}

/// The bootstrap's Applications, hydrated as `kubeprint hydrate` does it (the vendored or
/// cached chart verified against its digest in versions.yaml, the same helm home and cache).
fn hydrate_bootstrap(
    checked: &kubeprint::fleet::Checked,
    fleet_dir: &Path,
    args: &HydrationArgs,
    spec: &kubeprint::model::ClusterSpec,
    tree: &RenderedTree,
    requests: &[bootstrap::Request],
) -> bootstrap::Result<BTreeMap<String, String>> {
    let first = requests.first().map(|r| r.app.clone()).unwrap_or_default();
    let fail = |app: &str, message: String, environment: bool, hint: Option<String>| {
        bootstrap::Error::Hydrate {
            app: app.to_string(),
            message,
            environment,
            hint,
        }
    };
    let cache_root = super::hydrate::cache_dir(args)
        .map_err(|e| fail(&first, e.error.to_string(), false, e.hint))?;
    let helm = Helm::find(args.helm.as_deref(), &cache_root.join("helm")).map_err(|e| {
        fail(
            &first,
            e.to_string(),
            !e.is_user_error(),
            Some(e.hint().to_string()),
        )
    })?;
    let apps: Vec<String> = requests.iter().map(|r| r.app.clone()).collect();
    run::bootstrap(
        &helm,
        &fleet_dir.join("charts"),
        &cache_root,
        &checked.fleet.catalog.value,
        spec,
        &tree.files,
        &apps,
        super::hydrate::jobs(args),
    )
    .map_err(|e| {
        let app = match &e {
            BootstrapError::NoChart(a) => a.clone(),
            _ => first.clone(),
        };
        match &e {
            BootstrapError::Hydrate(run::Error::Chart(c)) => {
                fail(&app, e.to_string(), !c.is_user_error(), Some(c.hint()))
            }
            BootstrapError::Hydrate(run::Error::Io { .. }) => fail(&app, e.to_string(), true, None),
            _ => fail(&app, e.to_string(), false, None),
        }
    })
}
