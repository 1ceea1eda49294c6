//! Known chart default credentials in rendered Helm values: a chart whose default password
//! (or signing key) is in use because the values neither set a Secret reference that
//! replaces it nor override every consumer of it. Also any credential written into values
//! at all: credentials are Secret references, never values.
//!
//! The table holds what the stack's charts ship (harbor 1.19.1, kube-prometheus-stack
//! 88.5.3's Grafana); `check --hydrate` is to extend the same rule to hydrated objects
//! (a Secret or environment variable of a chart whose value is one of these defaults).

use crate::yaml::Value;

/// One known default credential of a chart.
struct Default {
    chart: &'static str,
    /// Values path of the credential (dot-separated).
    key: &'static str,
    /// The chart's default value.
    default: &'static str,
    /// Whether these values replace it by a Secret reference.
    replaced: fn(&Value) -> bool,
    /// What to set instead.
    hint: &'static str,
}

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn set(v: &Value, path: &str) -> bool {
    at(v, path)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

/// Whether the `extraEnvVars` list at `path` sets `name` from a Secret.
fn env_from_secret(v: &Value, path: &str, name: &str) -> bool {
    at(v, path)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|e| e["name"] == name && e.pointer("/valueFrom/secretKeyRef/name").is_some())
}

const DEFAULTS: &[Default] = &[
    Default {
        chart: "harbor",
        key: "harborAdminPassword",
        default: "Harbor12345",
        replaced: |v| set(v, "existingSecretAdminPassword"),
        hint: "set `existingSecretAdminPassword` (and its key)",
    },
    Default {
        chart: "harbor",
        key: "secretKey",
        default: "not-a-secure-key",
        replaced: |v| set(v, "existingSecretSecretKey"),
        hint: "set `existingSecretSecretKey`",
    },
    Default {
        chart: "harbor",
        key: "registry.credentials.password",
        default: "harbor_registry_password",
        replaced: |v| set(v, "registry.credentials.existingSecret"),
        hint: "set `registry.credentials.existingSecret` (keys REGISTRY_PASSWD, REGISTRY_HTPASSWD)",
    },
    Default {
        chart: "harbor",
        key: "database.internal.password",
        default: "changeit",
        // The internal database has no Secret reference of its own: every consumer of the
        // password (the database, core, the exporter) must read it from a Secret instead.
        replaced: |v| {
            at(v, "database.type").and_then(Value::as_str) == Some("external")
                && set(v, "database.external.existingSecret")
                || env_from_secret(v, "database.internal.extraEnvVars", "POSTGRES_PASSWORD")
                    && env_from_secret(v, "core.extraEnvVars", "POSTGRESQL_PASSWORD")
                    && (at(v, "metrics.enabled") != Some(&Value::Bool(true))
                        || env_from_secret(v, "exporter.extraEnvVars", "HARBOR_DATABASE_PASSWORD"))
        },
        hint: "read POSTGRES_PASSWORD (database), POSTGRESQL_PASSWORD (core) and HARBOR_DATABASE_PASSWORD (exporter) from a Secret through their `extraEnvVars`, or use an external database with `existingSecret`",
    },
    Default {
        chart: "kube-prometheus-stack",
        key: "grafana.adminPassword",
        default: "prom-operator",
        replaced: |v| {
            at(v, "grafana.enabled") == Some(&Value::Bool(false))
                || set(v, "grafana.admin.existingSecret")
        },
        hint: "set `grafana.admin.existingSecret`",
    },
];

/// (values path, message) of every default or literal credential in `values` of `chart`.
pub(super) fn check(chart: &str, values: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in DEFAULTS.iter().filter(|d| d.chart == chart) {
        match at(values, d.key).and_then(Value::as_str) {
            Some(s) if !s.is_empty() => out.push((
                d.key.to_string(),
                format!(
                    "a credential written into the values (`{}`); {}",
                    d.key, d.hint
                ),
            )),
            _ if !(d.replaced)(values) => out.push((
                d.key.to_string(),
                format!(
                    "the chart's default credential `{}` is in use (`{}`); {}",
                    d.default, d.key, d.hint
                ),
            )),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_in_use_are_found_and_secret_references_clear_them() {
        let bare = check("harbor", &json!({}));
        assert_eq!(bare.len(), 4, "{bare:?}");
        assert!(bare.iter().any(|(_, m)| m.contains("`changeit`")));
        let env = |name: &str| json!([{"name": name, "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]);
        let good = json!({
            "existingSecretAdminPassword": "harbor-admin",
            "existingSecretSecretKey": "harbor-secret-key",
            "registry": {"credentials": {"existingSecret": "harbor-registry-credentials"}},
            "metrics": {"enabled": true},
            "database": {"internal": {"extraEnvVars": env("POSTGRES_PASSWORD")}},
            "core": {"extraEnvVars": env("POSTGRESQL_PASSWORD")},
            "exporter": {"extraEnvVars": env("HARBOR_DATABASE_PASSWORD")},
        });
        assert_eq!(check("harbor", &good), vec![]);
        // The exporter still reads the default when metrics are on and it is not overridden.
        let mut partial = good.clone();
        partial["exporter"] = json!({});
        assert_eq!(check("harbor", &partial).len(), 1);
        // A password in the values is a finding even where it is not the default.
        let mut literal = good;
        literal["harborAdminPassword"] = json!("s3cret");
        assert!(
            check("harbor", &literal)[0]
                .1
                .contains("written into the values")
        );
        assert_eq!(check("kube-prometheus-stack", &json!({})).len(), 1);
        assert_eq!(
            check(
                "kube-prometheus-stack",
                &json!({"grafana": {"admin": {"existingSecret": "g"}}})
            ),
            vec![]
        );
        assert_eq!(check("cilium", &json!({})), vec![]);
    }
}
