//! The offering's rules (`OFFERING.md`) over a typed fleet: every problem, at once.
//!
//! Errors stop a render; warnings (workers not in batches of three, unequal worker
//! sizes, a version close to the end of its support) are reported and let it go on.
//! The support window is computed against the date given, never the clock.

use jiff::civil::Date;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::cluster::ClusterSpec;
use crate::model::net::is_dns_label;
use crate::model::{Fleet, Sourced, Tier, TierKind};

mod network;
mod secrets;
mod services;
mod sizes;
mod sso;
mod tenants;
#[cfg(test)]
mod tests;
mod text;
mod topology;
mod versions;

pub use tenants::{INGRESS_CLASSES, STORAGE_CLASSES, is_quantity, is_registry_host};

/// The numbers of the offering, per tier.
struct Rules {
    zones: usize,
    control_planes: usize,
    storage_nodes: usize,
    min_workers: usize,
    max_workers: usize,
    min_ceph_gib: u32,
}

const PRODUCTION: Rules = Rules {
    zones: 3,
    control_planes: 3,
    storage_nodes: 3,
    min_workers: 3,
    max_workers: 100,
    min_ceph_gib: 500,
};
const DEVTEST: Rules = Rules {
    zones: 1,
    control_planes: 1,
    storage_nodes: 0,
    min_workers: 3,
    max_workers: 250,
    min_ceph_gib: 300,
};

/// Checks every cluster of the fleet (and the fleet's own files) against the offering.
pub fn validate(fleet: &Fleet, today: Date) -> Diagnostics {
    let mut d = Diagnostics::default();
    versions::check_catalog(fleet, today, &mut d);
    secrets::check(fleet, &mut d);
    for (name, component) in &fleet.components {
        if let Some(chart) = &component.spec.value.chart
            && !fleet.catalog.value.charts.contains_key(chart)
        {
            d.push(Diagnostic::error(
                component.spec.at("chart"),
                format!(
                    "blueprint `{name}` uses chart `{chart}`, which `versions.yaml` does not pin"
                ),
                Some("add it under `charts:` in versions.yaml".into()),
            ));
        }
    }
    // Clusters are independent: check them in parallel, collect in name order.
    let per_cluster: Vec<Diagnostics> = {
        use rayon::prelude::*;
        let specs: Vec<&Sourced<ClusterSpec>> = fleet.clusters.values().collect();
        specs
            .par_iter()
            .map(|spec| validate_cluster(fleet, spec, today))
            .collect()
    };
    for cluster in per_cluster {
        d.extend(cluster);
    }
    d.sorted()
}

/// Checks one cluster.
pub fn validate_cluster(fleet: &Fleet, spec: &Sourced<ClusterSpec>, today: Date) -> Diagnostics {
    let c = &spec.value;
    let mut d = Diagnostics::default();
    if !is_dns_label(&c.name) {
        d.push(Diagnostic::error(
            spec.at("name"),
            format!("`{}` is not a valid cluster name", c.name),
            Some("use lowercase letters, digits and `-`, at most 63 characters".into()),
        ));
    }
    let Some(tier) = fleet.tiers.get(&c.tier) else {
        let names: Vec<String> = fleet.tiers.keys().cloned().collect();
        let hint = crate::yaml::did_you_mean(&c.tier, &names)
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| format!("the tiers are: {}", names.join(", ")));
        d.push(Diagnostic::error(
            spec.at("tier"),
            format!("tier `{}` does not exist", c.tier),
            Some(hint),
        ));
        return d;
    };
    let mut v = Checker {
        fleet,
        spec,
        tier: &tier.value,
        rules: match tier.value.kind {
            TierKind::Production => &PRODUCTION,
            TierKind::Devtest => &DEVTEST,
        },
        kind: match tier.value.kind {
            TierKind::Production => "production",
            TierKind::Devtest => "devtest",
        },
        d,
    };
    topology::check(&mut v);
    sizes::check(&mut v);
    network::check(&mut v);
    services::check(&mut v);
    sso::check(&mut v);
    versions::check(&mut v, today);
    tenants::check(&mut v);
    check_component_names(&mut v);
    // Last: it leaves out the fields another rule refused.
    text::check(&mut v);
    v.d
}

/// Component overrides must name components.
fn check_component_names(v: &mut Checker) {
    let (fleet, spec) = (v.fleet, v.spec);
    let known: Vec<String> = fleet.components.keys().cloned().collect();
    for name in spec.value.components.keys() {
        if !fleet.components.contains_key(name) {
            let hint = crate::yaml::did_you_mean(name, &known)
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| "see `blueprints/` for the components".into());
            v.error(
                &format!("components.{name}"),
                format!("component `{name}` does not exist"),
                &hint,
            );
        }
    }
}

/// One cluster being checked, with what every rule family reads, and its findings.
struct Checker<'a> {
    fleet: &'a Fleet,
    spec: &'a Sourced<ClusterSpec>,
    tier: &'a Tier,
    rules: &'static Rules,
    /// `production` or `devtest`, for messages.
    kind: &'static str,
    d: Diagnostics,
}

impl Checker<'_> {
    fn error(&mut self, path: &str, message: String, hint: &str) {
        self.d.push(Diagnostic::error(
            self.spec.at(path),
            message,
            Some(hint.to_string()),
        ));
    }

    fn warning(&mut self, path: &str, message: String, hint: &str) {
        self.d.push(Diagnostic::warning(
            self.spec.at(path),
            message,
            Some(hint.to_string()),
        ));
    }

    fn unknown(&mut self, path: &str, what: &str, got: &str, known: &[&str]) {
        let names: Vec<String> = known.iter().map(|s| s.to_string()).collect();
        let hint = crate::yaml::did_you_mean(got, &names)
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| format!("the {what}es are: {}", known.join(", ")));
        self.error(path, format!("unknown {what} `{got}`"), &hint);
    }
}
