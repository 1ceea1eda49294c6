//! The example fleet of this repository as [`Sources`], compiled in, for the core's
//! tests (the core reads no file): validate's rules, the render, the injection property.

use super::Sources;

macro_rules! example_file {
    ($path:literal) => {
        ($path, include_str!(concat!("../../../../", $path)))
    };
}

/// Every input file of the example fleet (`fleet.yaml`, `versions.yaml`, `blueprints/`,
/// `overlays/`); `every_file_of_the_example_fleet_is_listed` keeps the list whole.
pub const FILES: &[(&str, &str)] = &[
    example_file!("fleet.yaml"),
    example_file!("versions.yaml"),
    example_file!("blueprints/argo-cd/blueprint.yaml"),
    example_file!("blueprints/argo-cd/values.yaml.j2"),
    example_file!("blueprints/capsule-tenants/blueprint.yaml"),
    example_file!("blueprints/capsule-tenants/manifests/tenants.yaml.j2"),
    example_file!("blueprints/capsule/blueprint.yaml"),
    example_file!("blueprints/capsule/values.yaml.j2"),
    example_file!("blueprints/cert-manager/blueprint.yaml"),
    example_file!("blueprints/cert-manager/manifests/cluster-issuers.yaml.j2"),
    example_file!("blueprints/cert-manager/values.yaml.j2"),
    example_file!("blueprints/cilium/blueprint.yaml"),
    example_file!("blueprints/cilium/manifests/hubble-ui-ingress.yaml.j2"),
    example_file!("blueprints/cilium/manifests/monitors.yaml.j2"),
    example_file!("blueprints/cilium/values.yaml.j2"),
    example_file!("blueprints/harbor/blueprint.yaml"),
    example_file!("blueprints/harbor/values.yaml.j2"),
    example_file!("blueprints/ingress-nginx-external-secured/blueprint.yaml"),
    example_file!("blueprints/ingress-nginx-external-secured/values.yaml.j2"),
    example_file!("blueprints/ingress-nginx-external/blueprint.yaml"),
    example_file!("blueprints/ingress-nginx-external/values.yaml.j2"),
    example_file!("blueprints/ingress-nginx-internal/blueprint.yaml"),
    example_file!("blueprints/ingress-nginx-internal/values.yaml.j2"),
    example_file!("blueprints/kasten/blueprint.yaml"),
    example_file!("blueprints/kasten/manifests/location-profile.yaml.j2"),
    example_file!("blueprints/kasten/values.yaml.j2"),
    example_file!("blueprints/kube-prometheus-stack/blueprint.yaml"),
    example_file!("blueprints/kube-prometheus-stack/values.yaml.j2"),
    example_file!("blueprints/kubeprint-watch/blueprint.yaml"),
    example_file!("blueprints/kubeprint-watch/manifests/dashboard.yaml.j2"),
    example_file!("blueprints/kubeprint-watch/manifests/watch.yaml.j2"),
    example_file!("blueprints/kyverno-policies/blueprint.yaml"),
    example_file!("blueprints/kyverno-policies/manifests/exceptions.yaml.j2"),
    example_file!("blueprints/kyverno-policies/manifests/per-tenant.yaml.j2"),
    example_file!("blueprints/kyverno-policies/manifests/tenant-policies.yaml.j2"),
    example_file!("blueprints/kyverno/blueprint.yaml"),
    example_file!("blueprints/kyverno/values.yaml.j2"),
    example_file!("blueprints/loki/blueprint.yaml"),
    example_file!("blueprints/loki/values.yaml.j2"),
    example_file!("blueprints/metallb/blueprint.yaml"),
    example_file!("blueprints/metallb/manifests/pools.yaml.j2"),
    example_file!("blueprints/network-policies/blueprint.yaml"),
    example_file!("blueprints/network-policies/manifests/platform.yaml.j2"),
    example_file!("blueprints/opencost/blueprint.yaml"),
    example_file!("blueprints/opencost/values.yaml.j2"),
    example_file!("blueprints/prometheus-crds/blueprint.yaml"),
    example_file!("blueprints/rook-ceph-cluster/blueprint.yaml"),
    example_file!("blueprints/rook-ceph-cluster/values.yaml.j2"),
    example_file!("blueprints/rook-ceph/blueprint.yaml"),
    example_file!("blueprints/sso-rbac/blueprint.yaml"),
    example_file!("blueprints/sso-rbac/manifests/admin-group.yaml.j2"),
    example_file!("overlays/clusters/acme-prod.yaml"),
    example_file!("overlays/clusters/acme-prod/talos-secrets.sops.yaml"),
    example_file!("overlays/clusters/globex-dev.yaml"),
    example_file!("overlays/clusters/globex-dev/talos-secrets.sops.yaml"),
    example_file!("overlays/clusters/initech-prod.yaml"),
    example_file!("overlays/clusters/initech-prod/talos-secrets.sops.yaml"),
    example_file!("overlays/tiers/devtest.yaml"),
    example_file!("overlays/tiers/production.yaml"),
];

/// The date the example fleet is checked against (as `crate::support::TODAY` in tests/it).
pub const TODAY: &str = "2026-11-25";

/// The example fleet's files.
pub fn sources() -> Sources {
    Sources {
        files: FILES
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect(),
        revision: None,
    }
}

/// The example fleet with `from` replaced by `to` (once) in `file`; panics when `from`
/// is absent, so that an edit that no longer applies fails its test.
pub fn edited(file: &str, from: &str, to: &str) -> Sources {
    let mut s = sources();
    let text = s.files.get_mut(file).expect("a file of the example fleet");
    assert!(text.contains(from), "`{from}` not in {file}");
    *text = text.replacen(from, to, 1);
    s
}
