//! `kubeprint talos`: create, rotate and rekey a cluster's secrets bundle; print a node's
//! complete machine config.

use std::path::Path;

use kubeprint::sops::Identities;
use kubeprint::talos::{self, bootstrap, secrets_path};

use super::{CommandError, ExitStatus, Printer, Result, load_checked};
use crate::cli::{
    TalosArgs, TalosCommand, TalosConfigArgs, TalosSecretsCommand, TalosSecretsCreateArgs,
    TalosSecretsRekeyArgs,
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
    let helm = args.helm.clone().unwrap_or_else(|| "helm".into());
    let charts = args.fleet.fleet.join("charts");
    let mut hydrate = |r: &bootstrap::Request| hydrate_bootstrap(&helm, &charts, r);
    let text = talos::node_config(&checked, &args.cluster, &args.node, &ids, &mut hydrate)?;
    let mut stdout = std::io::stdout().lock();
    std::io::Write::write_all(&mut stdout, text.expose().as_bytes())
        .map_err(CommandError::environment)?;
    Ok(ExitStatus::Success)
}

/// `helm template` of one bootstrap Application, from the chart archive vendored in the
/// blueprint repository (`charts/NAME-VERSION.tgz`, checked against `charts/SHA256SUMS`
/// when it lists it), in a scratch Helm home: helm's output.
fn hydrate_bootstrap(
    helm: &Path,
    charts: &Path,
    r: &bootstrap::Request,
) -> bootstrap::Result<String> {
    let fail =
        |message: String, environment: bool, hint: Option<String>| bootstrap::Error::Hydrate {
            app: r.app.clone(),
            message,
            environment,
            hint,
        };
    let file = format!("{}-{}.tgz", r.chart, r.version);
    let archive = charts.join(&file);
    let bytes = std::fs::read(&archive).map_err(|e| {
        fail(
            format!("chart archive `charts/{file}`: {e}"),
            false,
            Some(format!(
                "vendor the chart: `helm pull {} --repo {} --version {} -d charts/`, and pin its sha256 in charts/SHA256SUMS",
                r.chart, r.repo, r.version
            )),
        )
    })?;
    if let Ok(sums) = std::fs::read_to_string(charts.join("SHA256SUMS"))
        && let Some(want) = sums.lines().find_map(|l| {
            let (sum, name) = l.split_once(char::is_whitespace)?;
            (name.trim().trim_start_matches('*') == file).then(|| sum.to_string())
        })
    {
        use sha2::Digest;
        let got = hex::encode(sha2::Sha256::digest(&bytes));
        if got != want {
            return Err(fail(
                format!("`charts/{file}` has sha256 {got}, charts/SHA256SUMS pins {want}"),
                false,
                Some("the archive is not the pinned chart: fetch it again".into()),
            ));
        }
    }
    let home = tempfile::tempdir().map_err(|e| fail(e.to_string(), true, None))?;
    let values = home.path().join("values.yaml");
    std::fs::write(&values, &r.values).map_err(|e| fail(e.to_string(), true, None))?;
    let out = std::process::Command::new(helm)
        .args(["template", &r.release])
        .arg(&archive)
        .args([
            "--namespace",
            &r.namespace,
            "--kube-version",
            &r.kube_version,
        ])
        .arg("--include-crds")
        .arg("--values")
        .arg(&values)
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .output()
        .map_err(|e| {
            fail(
                format!("cannot run `{}`: {e}", helm.display()),
                true,
                Some("install helm (scripts/install-helm.sh) or pass `--helm PATH`".into()),
            )
        })?;
    if !out.status.success() {
        return Err(fail(
            format!(
                "helm template failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            false,
            None,
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| fail(e.to_string(), false, None))
}
