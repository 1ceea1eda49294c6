//! The template engine: minijinja, configured once per fleet, shared by every cluster.
//!
//! Escaping is off on purpose: templates write YAML, and values that need quoting go
//! through the `quote` or `toyaml` filters. Undefined values are errors, so that a typo in
//! a template fails the render instead of writing an empty string.

use std::collections::BTreeMap;

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::model::{Component, Fleet, Sourced, cluster::ClusterSpec};
use crate::yaml::{self, Value};

/// Template errors, each naming the template file and line.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{template}:{line}: template syntax error: {message}")]
    Syntax {
        template: String,
        line: usize,
        message: String,
    },
    #[error("{template}:{line}: rendering for cluster `{cluster}` failed: {message}")]
    Render {
        template: String,
        line: usize,
        cluster: String,
        message: String,
    },
    #[error("{template}: the rendered output is not valid YAML: {message}")]
    Output { template: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The work one template render may do, in minijinja's fuel (one per instruction, and
/// one per 64 bytes produced): 30 times what the largest template uses for a cluster of
/// 200 tenants (67,153), so that a loop that does not end fails within a second or two,
/// and a template writes at most 128 MB.
pub const FUEL: u64 = 2_000_000;

/// Every template of the fleet, compiled.
pub struct Templates {
    env: Environment<'static>,
    catalog: crate::model::Catalog,
    catalog_value: minijinja::Value,
    fleet_settings: minijinja::Value,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

impl Templates {
    /// Compiles the values and manifest templates of every component.
    pub fn new(fleet: &Fleet) -> Result<Templates> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .expect("the default delimiters are valid"),
        );
        env.set_fuel(Some(FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("toyaml", to_yaml);
        env.add_filter("quote", quote);
        for c in fleet.components.values() {
            for (name, source) in c.values_template.iter().chain(c.manifest_templates.iter()) {
                if !name.ends_with(".j2") {
                    continue;
                }
                env.add_template_owned(name.clone(), source.clone())
                    .map_err(|e| Error::Syntax {
                        template: name.clone(),
                        line: e.line().unwrap_or(0),
                        message: e.detail().unwrap_or("invalid template").to_string(),
                    })?;
            }
        }
        Ok(Templates {
            env,
            catalog: fleet.catalog.value.clone(),
            catalog_value: minijinja::Value::from(Serde(&fleet.catalog.value)),
            fleet_settings: minijinja::Value::from(Serde(&fleet.settings.value)),
        })
    }

    /// Renders a component's values template with the cluster's context.
    pub fn render_values(
        &self,
        cluster_ctx: &minijinja::Value,
        cluster: &str,
        component: &Component,
    ) -> Result<String> {
        let (name, _) = component.values_template.as_ref().expect("caller checked");
        self.render(
            name,
            cluster,
            component_context(cluster_ctx, &self.catalog, component, None),
        )
    }

    /// What every template of one cluster sees, built once per cluster: `cluster` (the
    /// spec), `nodes`, `settings`, `fleet`, `tier` (its name) and `catalog`.
    pub fn cluster_context(
        &self,
        spec: &Sourced<ClusterSpec>,
        tier: &str,
        settings: &Value,
    ) -> minijinja::Value {
        let nodes: Vec<TemplateNode> = spec
            .value
            .node_views()
            .into_iter()
            .map(|n| TemplateNode {
                name: &n.host.name,
                role: n.role.as_str(),
                zone: &n.host.zone,
                address: &n.host.address,
                install_disk: n.install_disk,
                max_pods: n.max_pods,
                vcpu: n.size.vcpu,
                memory_gib: n.size.memory_gib,
                ceph_disk_gib: n.size.ceph_disk_gib,
            })
            .collect();
        let mut ctx: BTreeMap<&str, minijinja::Value> = BTreeMap::new();
        ctx.insert("cluster", minijinja::Value::from(Serde(&spec.value)));
        ctx.insert("nodes", minijinja::Value::from(Serde(&nodes)));
        ctx.insert("settings", minijinja::Value::from(Serde(settings)));
        ctx.insert("fleet", self.fleet_settings.clone());
        ctx.insert("tier", minijinja::Value::from(tier));
        ctx.insert("catalog", self.catalog_value.clone());
        minijinja::Value::from(ctx)
    }

    /// The catalog, for component contexts.
    pub fn catalog(&self) -> &crate::model::Catalog {
        &self.catalog
    }

    /// Renders one template with a prepared context.
    pub fn render(&self, name: &str, cluster: &str, ctx: minijinja::Value) -> Result<String> {
        let tmpl = self.env.get_template(name).map_err(|e| Error::Syntax {
            template: name.to_string(),
            line: 0,
            message: e.to_string(),
        })?;
        tmpl.render(ctx).map_err(|e| Error::Render {
            template: name.to_string(),
            line: e.line().unwrap_or(0),
            cluster: cluster.to_string(),
            message: if e.kind() == minijinja::ErrorKind::OutOfFuel {
                format!(
                    "the template did more than its bound of work ({FUEL} units of minijinja fuel): a loop that does not end, or one over far too much data"
                )
            } else {
                e.detail()
                    .map(str::to_string)
                    .unwrap_or_else(|| e.kind().to_string())
            },
        })
    }
}

/// A node as templates see it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TemplateNode<'a> {
    name: &'a str,
    role: &'static str,
    zone: &'a str,
    address: &'a str,
    install_disk: &'a str,
    max_pods: u32,
    vcpu: u32,
    #[serde(rename = "memoryGiB")]
    memory_gib: u32,
    #[serde(rename = "cephDiskGiB")]
    ceph_disk_gib: Option<u32>,
}

/// A component's template context: the cluster's, plus `component` (name, namespace,
/// release name, chart) and, for manifest templates, `values` (its merged Helm values).
pub fn component_context(
    cluster_ctx: &minijinja::Value,
    catalog: &crate::model::Catalog,
    component: &Component,
    values: Option<&Value>,
) -> minijinja::Value {
    let c = &component.spec.value;
    let chart = c.chart.as_ref().and_then(|k| catalog.charts.get(k));
    let component_value = serde_json::json!({
        "name": component.name,
        "namespace": c.namespace,
        "releaseName": c.release_name.as_deref().unwrap_or(&component.name),
        "chart": chart,
    });
    let component_value = minijinja::Value::from(Serde(&component_value));
    match values {
        Some(v) => {
            minijinja::context! { component => component_value, values => Serde(v), ..cluster_ctx.clone() }
        }
        None => minijinja::context! { component => component_value, ..cluster_ctx.clone() },
    }
}

/// `{{ x | toyaml }}`: the value as YAML (block style, no trailing newline).
fn to_yaml(value: minijinja::Value) -> std::result::Result<String, minijinja::Error> {
    let v: Value = serde_json::to_value(&value).map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
    })?;
    Ok(yaml::to_string(&v).trim_end().to_string())
}

/// `{{ x | quote }}`: the value as a double-quoted YAML string.
fn quote(value: minijinja::Value) -> String {
    let s = if let Some(s) = value.as_str() {
        s.to_string()
    } else {
        value.to_string()
    };
    serde_json::to_string(&s).expect("strings always serialise")
}
