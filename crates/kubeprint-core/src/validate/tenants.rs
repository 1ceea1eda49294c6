//! Tenants: names and namespace prefixes, owners, classes, registries, quantities,
//! references between tenants, Capsule's user list and the policy action.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::Checker;
use crate::model::cluster::ClusterSpec;
use crate::model::names::GroupName;
use crate::model::net::{is_dns_label, is_dns_name};
use crate::model::{Fleet, Tier};

/// The ingress classes of the offering.
pub const INGRESS_CLASSES: [&str; 3] =
    ["nginx-external-secured", "nginx-external", "nginx-internal"];
/// The storage classes of the offering.
pub const STORAGE_CLASSES: [&str; 3] = ["ceph-block", "ceph-bucket", "ceph-filesystem"];

pub(super) fn check(v: &mut Checker) {
    let spec = v.spec;
    let c = &spec.value;
    // Tenants.
    let mut tenant_names: Vec<(&str, usize)> = Vec::new();
    for (i, t) in c.tenants.iter().enumerate() {
        let path = format!("tenants[{i}]");
        if !is_dns_label(&t.name) {
            v.error(
                &format!("{path}.name"),
                format!("`{}` is not a valid tenant name", t.name),
                "use lowercase letters, digits and `-`",
            );
        }
        for &(other, j) in &tenant_names {
            let clash = other == t.name
                || t.name.starts_with(&format!("{other}-"))
                || other.starts_with(&format!("{}-", t.name));
            if clash {
                v.error(
                    &format!("{path}.name"),
                    format!(
                        "tenants `{other}` and `{}` claim the same namespace prefix (`{}-*`)",
                        t.name,
                        other.min(&t.name)
                    ),
                    &format!("rename one of them (the other is `tenants[{j}]`)"),
                );
            }
        }
        tenant_names.push((&t.name, i));
        if t.owners.is_empty() {
            v.error(
                &format!("{path}.owners"),
                format!("tenant `{}` has no owner", t.name),
                "add `group:NAME` or `user:NAME`",
            );
        }
        for (k, o) in t.owners.iter().enumerate() {
            let named = match (o.strip_prefix("group:"), o.strip_prefix("user:")) {
                (Some(g), _) if !g.is_empty() => Some(GroupName::parse(g)),
                (_, Some(u)) if !u.is_empty() => Some(GroupName::parse_user(u)),
                _ => None,
            };
            match named {
                None => v.error(
                    &format!("{path}.owners[{k}]"),
                    format!("owner `{o}` is neither `group:NAME` nor `user:NAME`"),
                    "prefix it with `group:` or `user:`",
                ),
                Some(Err(e)) => v.error(&format!("{path}.owners[{k}]"), e.message, e.hint),
                Some(Ok(_)) => {}
            }
        }
        if t.namespaces == 0 {
            v.error(
                &format!("{path}.namespaces"),
                format!("tenant `{}` may create no namespace", t.name),
                "allow at least one",
            );
        }
        for (k, class) in t.ingress_classes.iter().enumerate() {
            if !INGRESS_CLASSES.contains(&class.as_str()) {
                v.unknown(
                    &format!("{path}.ingressClasses[{k}]"),
                    "ingress class",
                    class,
                    &INGRESS_CLASSES,
                );
            }
        }
        for (k, class) in t.storage_classes.iter().flatten().enumerate() {
            if !STORAGE_CLASSES.contains(&class.as_str()) {
                v.unknown(
                    &format!("{path}.storageClasses[{k}]"),
                    "storage class",
                    class,
                    &STORAGE_CLASSES,
                );
            }
        }
    }
    check_rights(v);
}

/// Namespaces every cluster has besides the components' own.
const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-node-lease", "kube-public", "kube-system"];

/// The tenants' rights and what the policies and Capsule need from the rest of the spec:
/// references between tenants, quantities, registries, prefixes that would reach the
/// platform's namespaces, Capsule's user list, and the policy action.
fn check_rights(v: &mut Checker) {
    let (fleet, tier) = (v.fleet, v.tier);
    let spec = v.spec;
    let c = &spec.value;
    let names: Vec<String> = c.tenants.iter().map(|t| t.name.clone()).collect();
    let mut platform: BTreeSet<&str> = fleet
        .components
        .values()
        .map(|comp| comp.spec.value.namespace.as_str())
        .collect();
    platform.insert(&fleet.settings.value.argocd_namespace);
    platform.extend(SYSTEM_NAMESPACES);
    let capsule_users = capsule_users(fleet, tier, c);
    for (i, t) in c.tenants.iter().enumerate() {
        let path = format!("tenants[{i}]");
        if let Some(ns) = platform
            .iter()
            .find(|ns| **ns == t.name || ns.starts_with(&format!("{}-", t.name)))
        {
            v.error(
                &format!("{path}.name"),
                format!(
                    "tenant `{}` claims the prefix `{}-*` of the platform namespace `{ns}`",
                    t.name, t.name
                ),
                "rename the tenant: the platform's namespaces belong to no tenant",
            );
        }
        for (k, other) in t.allow_from_tenants.iter().enumerate() {
            let at = format!("{path}.allowFromTenants[{k}]");
            if *other == t.name {
                v.error(
                    &at,
                    format!("tenant `{other}` lists itself in `allowFromTenants`"),
                    "a tenant's own namespaces always reach each other; remove the entry",
                );
            } else if !names.contains(other) {
                let hint = crate::yaml::did_you_mean(other, &names)
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("the tenants are: {}", names.join(", ")));
                v.error(&at, format!("unknown tenant `{other}`"), &hint);
            }
        }
        for (k, registry) in t.registries.iter().enumerate() {
            if !is_registry_host(registry) {
                v.error(
                    &format!("{path}.registries[{k}]"),
                    format!("`{registry}` is not a registry host"),
                    "write the host name, with its port if any (`registry.example.net:5000`), without scheme or path",
                );
            }
        }
        let mut quantities: Vec<(String, &str)> = Vec::new();
        if let Some(q) = &t.quota {
            quantities.push((format!("{path}.quota.cpu"), &q.cpu));
            quantities.push((format!("{path}.quota.memory"), &q.memory));
            if let Some(st) = &q.storage {
                quantities.push((format!("{path}.quota.storage"), st));
            }
        }
        if let Some(d) = &t.container_defaults {
            for (what, r) in [("request", &d.request), ("limit", &d.limit)] {
                quantities.push((format!("{path}.containerDefaults.{what}.cpu"), &r.cpu));
                quantities.push((format!("{path}.containerDefaults.{what}.memory"), &r.memory));
            }
        }
        for (at, q) in quantities {
            if !is_quantity(q) {
                v.error(
                    &at,
                    format!("`{q}` is not a Kubernetes quantity"),
                    "write it as `500m`, `4`, `16Gi` or `1Ti`",
                );
            }
        }
        if let CapsuleUsers::Known(users) = &capsule_users {
            for (k, owner) in t.owners.iter().enumerate() {
                let Some((kind, name)) = owner
                    .strip_prefix("group:")
                    .map(|n| ("Group", n))
                    .or_else(|| owner.strip_prefix("user:").map(|n| ("User", n)))
                else {
                    continue; // reported above
                };
                if !users.contains(&(kind.to_string(), name.to_string())) {
                    v.error(
                        &format!("{path}.owners[{k}]"),
                        format!(
                            "tenant owner `{owner}` is not a Capsule user, so Capsule would ignore its requests"
                        ),
                        &format!(
                            "add `{{kind: {kind}, name: {name}}}` to `components.capsule.values.manager.options.users`"
                        ),
                    );
                }
            }
        }
    }
    if !c.tenants.is_empty() && matches!(capsule_users, CapsuleUsers::Off) {
        v.error(
            "tenants",
            "the cluster has tenants but the `capsule` component is off".into(),
            "enable `capsule` (tenants are Capsule Tenants), or remove the tenants",
        );
    }
    let (action, at) = match c.settings.as_ref().and_then(|s| s.get("policyAction")) {
        Some(a) => (Some(a), Some("settings.policyAction")),
        None => (
            tier.settings.as_ref().and_then(|s| s.get("policyAction")),
            None,
        ),
    };
    if let Some(action) = action
        && !matches!(action.as_str(), Some("Enforce" | "Audit"))
    {
        let message = format!(
            "`settings.policyAction` is {action}, neither `Enforce` nor `Audit` (tier `{}`)",
            c.tier
        );
        let hint = "production enforces (`Enforce`), devtest audits (`Audit`)";
        match at {
            Some(at) => v.error(at, message, hint),
            None => v.error("tier", message, hint),
        }
    }
}

/// What validation knows of the users and groups Capsule acts for.
enum CapsuleUsers {
    /// The `capsule` component is absent or off.
    Off,
    /// Set by the blueprint's values template, which only the render evaluates.
    Templated,
    /// `manager.options.users` as (kind, name).
    Known(BTreeSet<(String, String)>),
}

/// The users and groups Capsule acts for: `manager.options.users` of the `capsule`
/// component's values (cluster ◀ tier ◀ blueprint; the chart's default group when no
/// layer sets it).
fn capsule_users(fleet: &Fleet, tier: &Tier, c: &ClusterSpec) -> CapsuleUsers {
    let Some(component) = fleet.components.get("capsule") else {
        return CapsuleUsers::Off;
    };
    let layers = [tier.components.get("capsule"), c.components.get("capsule")];
    let enabled = layers
        .iter()
        .flatten()
        .filter_map(|o| o.enabled)
        .next_back()
        .unwrap_or(component.spec.value.enabled);
    if !enabled {
        return CapsuleUsers::Off;
    }
    let pointer = "/manager/options/users";
    let overrides = [
        layers[0].and_then(|o| o.values.as_ref()),
        layers[1].and_then(|o| o.values.as_ref()),
    ];
    let overridden = overrides
        .iter()
        .flatten()
        .filter_map(|values| values.pointer(pointer))
        .next_back();
    if overridden.is_none() && component.values_template.is_some() {
        return CapsuleUsers::Templated;
    }
    let users = overridden.or_else(|| {
        component
            .spec
            .value
            .values
            .as_ref()
            .and_then(|v| v.pointer(pointer))
    });
    let default = serde_json::json!([{ "kind": "Group", "name": "projectcapsule.dev" }]);
    let users = match users {
        Some(u) if !u.is_null() => u,
        _ => &default,
    };
    CapsuleUsers::Known(
        users
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| {
                Some((
                    u.get("kind")?.as_str()?.to_string(),
                    u.get("name")?.as_str()?.to_string(),
                ))
            })
            .collect(),
    )
}

/// Whether `s` is a registry host: a DNS name, optionally with `:PORT`.
pub fn is_registry_host(s: &str) -> bool {
    let (host, port) = s.rsplit_once(':').unwrap_or((s, "1"));
    port.parse::<u16>().is_ok_and(|p| p > 0)
        && (is_dns_name(host) || host.parse::<Ipv4Addr>().is_ok())
}

/// Whether `s` is a Kubernetes quantity (`500m`, `16Gi`, `1.5`, `1e3`).
pub fn is_quantity(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let number_end = s
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    let number_ok = match number.split_once('.') {
        Some((int, frac)) => (!int.is_empty() || !frac.is_empty()) && !frac.contains('.'),
        None => !number.is_empty(),
    };
    let suffix_ok = matches!(
        suffix,
        "" | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
            | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|exp| exp.strip_prefix(['+', '-']).unwrap_or(exp))
        .is_some_and(|exp| !exp.is_empty() && exp.bytes().all(|b| b.is_ascii_digit()));
    number_ok && suffix_ok
}
