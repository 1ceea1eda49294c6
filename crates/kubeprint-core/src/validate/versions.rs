//! Versions: Kubernetes in the support window as of the date given, Talos in the
//! catalog with an installer and supporting the Kubernetes minor; charts past their end
//! of life.

use jiff::civil::Date;

use super::Checker;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::Fleet;
use crate::model::catalog::Support;
use crate::model::cluster::minor_of;

/// Charts of the catalog no longer maintained upstream (warnings).
pub(super) fn check_catalog(fleet: &Fleet, today: Date, d: &mut Diagnostics) {
    for chart_key in fleet.catalog.value.charts.keys() {
        let chart = &fleet.catalog.value.charts[chart_key];
        if let Some(eol) = chart.end_of_life
            && eol <= today
        {
            d.push(Diagnostic::warning(
                fleet.catalog.at(&format!("charts.{chart_key}")),
                format!(
                    "chart `{}` {} is no longer maintained upstream since {eol}",
                    chart.name, chart.version
                ),
                Some("plan the move to a maintained replacement (see the README)".into()),
            ));
        }
    }
}

pub(super) fn check(v: &mut Checker, today: Date) {
    let fleet = v.fleet;
    let spec = v.spec;
    let c = &spec.value;
    let catalog = &fleet.catalog.value;
    let Some(k8s_minor) = minor_of(&c.versions.kubernetes) else {
        v.error(
            "versions.kubernetes",
            format!("`{}` is not a Kubernetes version", c.versions.kubernetes),
            "write it as `1.36.3` (no `v`)",
        );
        return;
    };
    match catalog.kubernetes_support(&k8s_minor, today) {
        Support::Supported { until: Some(end) } => {
            let days = (end - today).get_days();
            if days <= catalog.policy.warn_days as i32 {
                v.warning(
                    "versions.kubernetes",
                    format!("Kubernetes {k8s_minor} leaves the support window on {end} (in {days} days)"),
                    "plan the upgrade to a newer minor",
                );
            }
        }
        Support::Supported { until: None } => {}
        Support::Ended { since } => v.error(
            "versions.kubernetes",
            format!(
                "Kubernetes {k8s_minor} is outside the supported window (N-{}) since {since} (as of {today})",
                catalog.policy.supported_minors - 1
            ),
            &format!("upgrade to one of: {}", supported_minors(fleet, today).join(", ")),
        ),
        Support::Unreleased => v.error(
            "versions.kubernetes",
            format!("Kubernetes {k8s_minor} is not released as of {today}"),
            &format!("use one of: {}", supported_minors(fleet, today).join(", ")),
        ),
        Support::Unknown => v.error(
            "versions.kubernetes",
            format!("Kubernetes {k8s_minor} is not in the catalog (`versions.yaml`)"),
            &format!("use one of: {}", supported_minors(fleet, today).join(", ")),
        ),
    }
    let talos = &c.versions.talos;
    let Some(talos_minor) = talos.strip_prefix('v').and_then(minor_of) else {
        v.error(
            "versions.talos",
            format!("`{talos}` is not a Talos version"),
            "write it as `v1.13.9`",
        );
        return;
    };
    let Some(branch) = catalog.talos.get(&talos_minor) else {
        let known: Vec<&str> = catalog.talos.keys().map(String::as_str).collect();
        v.error(
            "versions.talos",
            format!("Talos {talos_minor} is not in the catalog"),
            &format!("the catalog has Talos {}", known.join(", ")),
        );
        return;
    };
    if !branch.installers.contains(talos) {
        v.error(
            "versions.talos",
            format!("the catalog has no installer for Talos {talos}"),
            &format!("use one of: {}", branch.installers.join(", ")),
        );
    }
    if !branch.kubernetes.contains(&k8s_minor) {
        v.error(
            "versions.talos",
            format!(
                "Talos {talos} does not support Kubernetes {k8s_minor} (it supports {})",
                branch.kubernetes.join(", ")
            ),
            "choose a Talos version that supports the cluster's Kubernetes minor",
        );
    }
}

fn supported_minors(fleet: &Fleet, today: Date) -> Vec<String> {
    let catalog = &fleet.catalog.value;
    catalog
        .kubernetes_minors()
        .into_iter()
        .filter(|(m, _)| {
            matches!(
                catalog.kubernetes_support(m, today),
                Support::Supported { .. }
            )
        })
        .map(|(m, _)| m.to_string())
        .collect()
}
