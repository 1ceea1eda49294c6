//! The pure render: one cluster plan in, one [`RenderedTree`] out.
//!
//! No file system, network, clock, randomness or hash-map order: the same plan gives the
//! same bytes on every machine and thread count. Fails fast on the first problem.

pub mod argo;
#[cfg(test)]
mod inject_tests;

pub mod talos;

use serde_json::json;

use crate::lock;
pub use crate::lock::{LOCK_FILE, Lock};
use crate::plan::{ClusterPlan, PlannedComponent};
use crate::templates::{self, Templates};
use crate::tree::{RenderedTree, safe_join};
use crate::yaml::{self, Value};

/// Render errors, each naming the cluster and the template or component.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Template(#[from] templates::Error),
    #[error("{template}: output path {message} (cluster `{cluster}`)")]
    PathEscape {
        cluster: String,
        template: String,
        message: String,
    },
    #[error("{template}: `{path}` is written twice (cluster `{cluster}`)")]
    DuplicatePath {
        cluster: String,
        template: String,
        path: String,
    },
    #[error("blueprint `{component}`: chart `{chart}` is not in the catalog")]
    UnknownChart {
        component: String,
        chart: String,
        location: String,
    },
    #[error(transparent)]
    Plan(#[from] crate::plan::Error),
    #[error(transparent)]
    Talos(#[from] talos::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The line that starts a new output file in a manifest template (see [`split_files`]).
pub use crate::model::FILE_DIRECTIVE;

/// Renders one planned cluster into its repository tree.
pub fn render(plan: &ClusterPlan, templates: &Templates) -> Result<RenderedTree> {
    let inputs_hash = lock::inputs_hash(plan.fleet, plan.name(), plan.tier_name);
    let mut tree = render_tree(plan, templates, &inputs_hash, None)?;
    let lock = Lock::for_tree(plan, &tree, inputs_hash);
    tree.insert(LOCK_FILE.into(), lock.to_yaml().into_bytes());
    Ok(tree)
}

/// [`render`] without the lock file: what a comparison of two renders reads (the lock
/// holds the digest of every file, a tenth of a render's time, and differs whenever they
/// do). With a `memo` (see [`yaml::Memo`]) the templates' output is parsed and written back
/// through it: the same tree.
pub fn render_files(
    plan: &ClusterPlan,
    templates: &Templates,
    memo: Option<&mut yaml::Memo>,
) -> Result<RenderedTree> {
    let inputs_hash = lock::inputs_hash(plan.fleet, plan.name(), plan.tier_name);
    render_tree(plan, templates, &inputs_hash, memo)
}

fn render_tree(
    plan: &ClusterPlan,
    templates: &Templates,
    inputs_hash: &str,
    mut memo: Option<&mut yaml::Memo>,
) -> Result<RenderedTree> {
    let mut tree = RenderedTree::default();
    let cluster = plan.name().to_string();
    let mut apps = Vec::new();
    for pc in &plan.components {
        let component = pc.component;
        let spec = &component.spec.value;
        if let Some(key) = &spec.chart {
            let chart =
                plan.fleet
                    .catalog
                    .value
                    .charts
                    .get(key)
                    .ok_or_else(|| Error::UnknownChart {
                        component: component.name.clone(),
                        chart: key.clone(),
                        location: component.spec.at("chart"),
                    })?;
            let values_path = format!("values/{}.yaml", component.name);
            put(
                &mut tree,
                &cluster,
                &component.spec.file,
                values_path.clone(),
                values_file(pc).into_bytes(),
            )?;
            apps.push((
                format!("apps/{}.yaml", component.name),
                argo::chart_application(plan, component, chart, &values_path),
            ));
        }
        let manifest_dir = format!("manifests/{}", component.name);
        let wrote = render_manifests(
            plan,
            pc,
            templates,
            &manifest_dir,
            inputs_hash,
            memo.as_deref_mut(),
            &mut tree,
        )?;
        if wrote {
            apps.push((
                format!("apps/{}-manifests.yaml", component.name),
                argo::manifests_application(plan, component, &manifest_dir),
            ));
        }
    }
    apps.push(("apps/root.yaml".to_string(), argo::root_application(plan)));
    apps.push((
        format!(
            "apps/project-{}.yaml",
            plan.fleet.settings.value.argocd_project
        ),
        argo::platform_project(plan),
    ));
    apps.extend(argo::tenant_projects(plan));
    for (path, app) in apps {
        put(
            &mut tree,
            &cluster,
            "apps",
            path,
            yaml::value_to_string(&app).into_bytes(),
        )?;
    }
    for (path, bytes) in talos::render(plan)? {
        put(&mut tree, &cluster, "talos", path, bytes)?;
    }
    tree.insert("README.md".into(), readme(plan).into_bytes());
    Ok(tree)
}

fn put(
    tree: &mut RenderedTree,
    cluster: &str,
    template: &str,
    path: String,
    bytes: Vec<u8>,
) -> Result<()> {
    if tree.files.contains_key(&path) {
        return Err(Error::DuplicatePath {
            cluster: cluster.into(),
            template: template.into(),
            path,
        });
    }
    tree.insert(path, bytes);
    Ok(())
}

fn values_file(pc: &PlannedComponent) -> String {
    let header = format!(
        "# Helm values of `{}`, merged: blueprint ◀ tier ◀ cluster.\n# Generated by kubeprint; `kubeprint explain CLUSTER values.{}.<path>` says where a value came from.\n",
        pc.component.name, pc.component.name
    );
    let body = match &pc.values.value {
        Value::Object(m) if m.is_empty() => "{}\n".to_string(),
        v => yaml::value_to_string(v),
    };
    header + &body
}

/// Renders a component's manifest templates; returns whether any file was written.
fn render_manifests(
    plan: &ClusterPlan,
    pc: &PlannedComponent,
    templates: &Templates,
    dir: &str,
    inputs_hash: &str,
    mut memo: Option<&mut yaml::Memo>,
    tree: &mut RenderedTree,
) -> Result<bool> {
    let component = pc.component;
    if component.manifest_templates.is_empty() {
        return Ok(false);
    }
    let cluster = plan.name();
    let ctx = templates::component_context(
        &plan.context,
        templates.catalog(),
        component,
        Some(&pc.values.value),
    );
    let marker = file_marker(inputs_hash, &component.name);
    // The name is templates::FILE_MARKER_VAR.
    let ctx = minijinja::context! { __kubeprint_file_marker => marker.clone(), ..ctx };
    let mut wrote = false;
    for (name, source) in &component.manifest_templates {
        let (text, marker) = if name.ends_with(".j2") {
            (
                templates.render(name, cluster, ctx.clone())?,
                marker.as_str(),
            )
        } else {
            // A plain manifest holds no value: its own `#! file:` lines split it.
            (source.clone(), FILE_DIRECTIVE)
        };
        let default_file = name
            .rsplit('/')
            .next()
            .unwrap_or(name)
            .trim_end_matches(".j2")
            .to_string();
        for (file, body) in split_files(&default_file, &text, marker) {
            let path = safe_join(dir, &file).map_err(|message| Error::PathEscape {
                cluster: cluster.into(),
                template: name.clone(),
                message,
            })?;
            let canonical = match memo.as_deref_mut() {
                Some(memo) => memo.canonical(&path, &body),
                None => yaml::canonical(&path, &body),
            }
            .map_err(|e| templates::Error::Output {
                template: name.clone(),
                message: format!("{e} (cluster `{cluster}`)"),
            })?;
            if canonical.is_empty() {
                continue;
            }
            put(tree, cluster, name, path, canonical.into_bytes())?;
            wrote = true;
        }
    }
    Ok(wrote)
}

/// The marker of the file directives of one render: `#!kubeprint-file:<sha256 of the
/// cluster's inputs hash and the component>:`. The templates write it (their `#! file:`
/// lines become the `kubeprint_file` filter); a value cannot, since every value comes
/// from the input files the inputs hash covers ([`lock::inputs_hash`]: render is a pure
/// function of them), so it would have to hold the digest of a file that holds it. So a
/// value that writes `#! file:` on a line of its own (which the templates' quoting already
/// prevents) writes a YAML comment, never a new file. (It was the digest of the template
/// context's JSON, the same argument at 6% of a render's CPU time.)
fn file_marker(inputs_hash: &str, component: &str) -> String {
    format!(
        "#!kubeprint-file:{}:",
        crate::digest::sha256_of_parts([
            ("inputs", inputs_hash.as_bytes()),
            ("component", component.as_bytes()),
        ])
    )
}

/// Splits a template's output at the lines that start with `marker` (followed by the
/// path, as JSON after a render's marker, as text after a plain file's `#! file:`) into
/// (path, text) parts.
fn split_files(default: &str, text: &str, marker: &str) -> Vec<(String, String)> {
    let mut parts = vec![(default.to_string(), String::new())];
    for line in text.lines() {
        let directive = if marker == FILE_DIRECTIVE {
            line.trim_start()
                .strip_prefix(marker)
                .map(|p| p.trim().to_string())
        } else {
            line.strip_prefix(marker)
                .map(|p| serde_json::from_str::<String>(p).unwrap_or_else(|_| p.to_string()))
        };
        match directive {
            Some(path) => parts.push((path, String::new())),
            None => {
                let body = &mut parts.last_mut().expect("never empty").1;
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    parts.retain(|(_, body)| !body.trim().is_empty());
    parts
}

fn readme(plan: &ClusterPlan) -> String {
    let spec = &plan.spec.value;
    let mut out = format!(
        "# {name}\n\nThe platform of cluster `{name}` (client `{client}`, tier `{tier}`), rendered by kubeprint\nfrom the blueprint repository of {provider}. **Do not edit by hand**: change the blueprints or\n`overlays/clusters/{name}.yaml` and let the pipeline publish. Hand edits are reported as drift\nand refused by the next publish.\n\n",
        name = spec.name,
        client = spec.client,
        tier = plan.tier_name,
        provider = plan.fleet.settings.value.provider,
    );
    out.push_str("| component | namespace | chart | sync wave |\n| --- | --- | --- | --- |\n");
    for pc in &plan.components {
        let c = &pc.component.spec.value;
        let chart = c
            .chart
            .as_ref()
            .and_then(|k| plan.fleet.catalog.value.charts.get(k))
            .map(|ch| format!("{} {}", ch.name, ch.version))
            .unwrap_or_else(|| "manifests".into());
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            pc.component.name, c.namespace, chart, c.sync_wave
        ));
    }
    let secrets: Vec<(&str, &crate::model::RequiredSecret)> = plan
        .components
        .iter()
        .flat_map(|pc| {
            let c = &pc.component.spec.value;
            c.secrets.iter().map(move |s| (c.namespace.as_str(), s))
        })
        .collect();
    if !secrets.is_empty() {
        out.push_str("\n## Secrets this cluster must hold\n\nNever in this repository: create them in the cluster (the components read them by name).\n\n| namespace | Secret | keys | labels | what for |\n| --- | --- | --- | --- | --- |\n");
        for (ns, s) in secrets {
            let keys: Vec<String> = s.keys.iter().map(|k| format!("`{k}`")).collect();
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("`{k}: {v}`"))
                .collect();
            out.push_str(&format!(
                "| {ns} | `{}` | {} | {} | {} |\n",
                s.name,
                keys.join(", "),
                labels.join(", "),
                s.description
            ));
        }
    }
    out.push_str(
        "\nLayout: `apps/` Argo CD Applications (`root.yaml` is the app of apps), `values/` Helm values,\n`manifests/<component>/` raw manifests, `kubeprint.lock` provenance and the sha256 of every file.\n",
    );
    out
}

/// A JSON view of a planned cluster's values, for `explain` and tests.
pub fn values_json(plan: &ClusterPlan) -> Value {
    let mut m = serde_json::Map::new();
    for pc in &plan.components {
        m.insert(pc.component.name.clone(), pc.values.value.clone());
    }
    json!({ "settings": plan.settings.value, "values": m })
}

#[cfg(test)]
mod tests {
    use super::{FILE_DIRECTIVE, split_files};

    #[test]
    fn file_directives_split_the_output() {
        let parts = split_files(
            "a.yaml",
            "x: 1\n#! file: b.yaml\ny: 2\n#! file: empty.yaml\n\n",
            FILE_DIRECTIVE,
        );
        assert_eq!(
            parts,
            vec![
                ("a.yaml".into(), "x: 1\n".into()),
                ("b.yaml".into(), "y: 2\n".into())
            ]
        );
    }
}
