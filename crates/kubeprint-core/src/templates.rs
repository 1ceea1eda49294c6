//! The template engine: minijinja, configured once per fleet, shared by every cluster.
//!
//! HTML escaping is off: templates write YAML, and every value goes through a filter that
//! writes it as data of the language it lands in, so that no value can become structure:
//! `quote` (a YAML double-quoted string) and `tojson` (any value as one line of JSON, which
//! YAML reads as the same value) in YAML; `csv_field` in Argo CD's `policy.csv`;
//! `jmespath_str` and `jmespath_id` in JMESPath (Grafana); `cel_string` in CEL (Kyverno).
//! Every escape writes control characters, line and paragraph separators as `\uXXXX`, so
//! a value never starts a line. A `#! file: PATH` line of a manifest template becomes a
//! call to the `kubeprint_file` filter when the template is compiled: only the template's
//! own directives split its output (see `render`), never a line a value wrote. Undefined
//! values are errors, so that a typo in a template fails the render instead of writing an
//! empty string.

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
        env.add_filter("tojson", to_json);
        env.add_filter("csv_field", csv_field);
        env.add_filter("jmespath_str", jmespath_str);
        env.add_filter("jmespath_id", jmespath_id);
        env.add_filter("cel_string", cel_string);
        env.add_filter("kubeprint_file", file_directive);
        for c in fleet.components.values() {
            for (name, source) in c.values_template.iter().chain(c.manifest_templates.iter()) {
                if !name.ends_with(".j2") {
                    continue;
                }
                let source = if name.contains("/manifests/") {
                    directives_to_filters(source)
                } else {
                    source.clone()
                };
                env.add_template_owned(name.clone(), source)
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
    install_disk: Option<&'a str>,
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
    Ok(yaml::value_to_string(&v).trim_end().to_string())
}

/// The context variable holding the marker of a render's file directives (see `render`).
pub const FILE_MARKER_VAR: &str = "__kubeprint_file_marker";

/// Rewrites each `#! file: PATH` line of a manifest template into a `kubeprint_file`
/// filter over PATH (which may hold expressions), so that the directive is written by the
/// template, with the render's marker, and a value can never write one.
fn directives_to_filters(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.split_inclusive('\n') {
        match line.trim_start().strip_prefix(crate::model::FILE_DIRECTIVE) {
            Some(path) => {
                out.push_str("{% filter kubeprint_file %}");
                out.push_str(path.trim());
                out.push_str("{% endfilter %}");
                if line.ends_with('\n') {
                    out.push('\n');
                }
            }
            None => out.push_str(line),
        }
    }
    out
}

/// `{% filter kubeprint_file %}PATH{% endfilter %}`: the line that starts a new output
/// file, `MARKER"PATH"` (PATH as JSON) on a line of its own.
fn file_directive(
    state: &minijinja::State,
    path: String,
) -> std::result::Result<String, minijinja::Error> {
    let marker = state.lookup(FILE_MARKER_VAR).ok_or_else(|| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            "`#! file:` is for manifest templates only",
        )
    })?;
    Ok(format!("\n{marker}{}\n", json_string(path.trim())))
}

/// `s` as a JSON string that is also a YAML double-quoted scalar and a CEL string
/// literal: `"` and `\` escaped, and every character that is not printable on one line
/// (controls, DEL, C1, U+2028, U+2029, U+FEFF) as `\uXXXX`.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The value as text; an undefined value is an error, as it is when printed, so that a
/// typo fails the render rather than writing `""`.
fn as_text(value: &minijinja::Value) -> std::result::Result<String, minijinja::Error> {
    defined(value)?;
    Ok(match value.as_str() {
        Some(s) => s.to_string(),
        None => value.to_string(),
    })
}

fn defined(value: &minijinja::Value) -> std::result::Result<(), minijinja::Error> {
    if value.is_undefined() {
        Err(minijinja::Error::new(
            minijinja::ErrorKind::UndefinedError,
            "an undefined value reached a filter (a misspelt or missing name)",
        ))
    } else {
        Ok(())
    }
}

/// `{{ x | quote }}`: the value as a double-quoted YAML string.
fn quote(value: minijinja::Value) -> std::result::Result<String, minijinja::Error> {
    Ok(json_string(&as_text(&value)?))
}

/// `{{ x | tojson }}`: the value (a string, number, boolean, list or map) as one line of
/// JSON, strings escaped as [`json_string`] does; YAML reads it as the same value.
fn to_json(value: minijinja::Value) -> std::result::Result<String, minijinja::Error> {
    defined(&value)?;
    let v: Value = serde_json::to_value(&value).map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
    })?;
    Ok(json_line(&v))
}

fn json_line(v: &Value) -> String {
    match v {
        Value::String(s) => json_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(json_line).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", json_string(k), json_line(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// `{{ x | csv_field }}`: a field of Argo CD's `policy.csv`, which Argo CD reads line by
/// line with Go's CSV reader (leading spaces trimmed, `#` a comment): a field holding
/// `,`, `"`, `#` or an outer space is double-quoted with `""` for `"`; a line break can
/// never be in a field, so it is an error.
fn csv_field(value: minijinja::Value) -> std::result::Result<String, minijinja::Error> {
    let s = as_text(&value)?;
    if s.chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}'))
    {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            "a policy.csv field cannot hold a line break or control character",
        ));
    }
    if s.is_empty() || s.contains([',', '"', '#']) || s.starts_with(' ') || s.ends_with(' ') {
        Ok(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Ok(s)
    }
}

/// `{{ x | jmespath_str }}`: a JMESPath raw string literal, `'...'` with `\'` and `\\`;
/// control characters are refused by validate and written as they are here (a raw
/// string has no other escape), so the whole expression still goes through `quote`.
fn jmespath_str(value: minijinja::Value) -> std::result::Result<String, minijinja::Error> {
    let s = as_text(&value)?;
    Ok(format!(
        "'{}'",
        s.replace('\\', "\\\\").replace('\'', "\\'")
    ))
}

/// `{{ x | jmespath_id }}`: a JMESPath quoted identifier (a JSON string).
fn jmespath_id(value: minijinja::Value) -> std::result::Result<String, minijinja::Error> {
    Ok(json_string(&as_text(&value)?))
}

/// `{{ x | cel_string }}`: a CEL double-quoted string literal.
fn cel_string(value: minijinja::Value) -> std::result::Result<String, minijinja::Error> {
    Ok(json_string(&as_text(&value)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_for_yaml_json_and_cel() {
        assert_eq!(json_string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(json_string("a\n#! file: x"), r#""a\u000a#! file: x""#);
        assert_eq!(
            json_string("\u{85}\u{2028}\u{feff}é"),
            r#""\u0085\u2028\ufeffé""#
        );
        for s in [
            "x\ny: 1",
            "'",
            "\"",
            "{{ a }}",
            "- a",
            "? x",
            "& a * b",
            "#c",
            "é\u{2029}",
        ] {
            let quoted = json_string(s);
            assert!(!quoted.contains('\n'));
            let back: String = crate::yaml::parse("t.yaml", &format!("k: {quoted}\n"))
                .unwrap()
                .value["k"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(back, s);
            assert_eq!(serde_json::from_str::<String>(&quoted).unwrap(), s);
        }
    }

    #[test]
    fn csv_fields_are_quoted_and_line_breaks_refused() {
        let f = |s: &str| csv_field(minijinja::Value::from(s));
        assert_eq!(f("admins").unwrap(), "admins");
        assert_eq!(f("a, role:admin").unwrap(), "\"a, role:admin\"");
        assert_eq!(f("a\"b").unwrap(), "\"a\"\"b\"");
        assert_eq!(f(" a#").unwrap(), "\" a#\"");
        assert!(f("a\np, *, *, *, *, allow").is_err());
    }

    #[test]
    fn jmespath_literals_hold_their_value() {
        let s = jmespath_str(minijinja::Value::from("x') || contains(['a'], 'a")).unwrap();
        assert_eq!(s, r"'x\') || contains([\'a\'], \'a'");
        assert_eq!(
            jmespath_id(minijinja::Value::from("groups")).unwrap(),
            "\"groups\""
        );
    }

    #[test]
    fn file_directives_become_filters() {
        assert_eq!(
            directives_to_filters("a: 1\n  #! file: {{ t.name }}.yaml\nb: 2\n"),
            "a: 1\n{% filter kubeprint_file %}{{ t.name }}.yaml{% endfilter %}\nb: 2\n"
        );
    }

    /// Every `{{ }}` of the blueprints ends in a filter that writes its value as data, or
    /// calls a macro (whose own `{{ }}` are checked the same way).
    #[test]
    fn every_expression_of_the_blueprints_is_escaped() {
        const SAFE: [&str; 5] = [
            "quote",
            "tojson",
            "cel_string",
            "jmespath_id",
            "jmespath_str",
        ];
        let mut unsafe_ones = Vec::new();
        for (path, text) in crate::model::example::FILES {
            if !path.ends_with(".j2") {
                continue;
            }
            // Text between `{% raw %}` and `{% endraw %}` is copied as is (a Grafana
            // dashboard's own `{{label}}` legends): no expression there.
            let mut raw = false;
            for (line_no, line) in text.lines().enumerate() {
                let mut rest = line;
                if raw || line.contains("{% raw %}") {
                    raw = !line.contains("{% endraw %}");
                    continue;
                }
                while let Some(start) = rest.find("{{") {
                    let end = rest[start..].find("}}").map_or(rest.len(), |e| start + e);
                    let expr = rest[start + 2..end].trim();
                    rest = &rest[(end + 2).min(rest.len())..];
                    let last_filter = expr.rsplit('|').next().unwrap_or("").trim();
                    let filter_name = last_filter.split('(').next().unwrap_or("").trim();
                    let macro_call = expr.split(['(', '|']).next().is_some_and(|head| {
                        let head = head.trim();
                        ["spread", "meta", "common", "flow"].contains(&head)
                    });
                    let directive = line.trim_start().starts_with(crate::model::FILE_DIRECTIVE);
                    if !(SAFE.contains(&filter_name) && expr.contains('|')
                        || macro_call
                        || directive)
                    {
                        unsafe_ones.push(format!("{path}:{}: {{{{ {expr} }}}}", line_no + 1));
                    }
                }
            }
        }
        assert!(
            unsafe_ones.is_empty(),
            "unescaped values:\n{}",
            unsafe_ones.join("\n")
        );
    }
}
