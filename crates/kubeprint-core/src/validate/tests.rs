//! The offering's rules, in process: each test edits the example fleet and snapshots the
//! diagnostics the edit adds (`file:line:column`, message and hint, as printed).

use crate::model::example::{self, TODAY};
use crate::model::{Fleet, Sources};

/// Every diagnostic of a fleet, as `kubeprint validate` prints them: loading problems
/// when the fleet does not load, else the rules' findings.
fn diagnostics(sources: &Sources) -> Vec<String> {
    let diags = match Fleet::from_sources(sources) {
        Ok(fleet) => super::validate(&fleet, TODAY.parse().expect("a date")),
        Err(d) => d.sorted(),
    };
    diags.items.iter().map(ToString::to_string).collect()
}

/// The diagnostics an edit adds to the example fleet's, one per paragraph.
fn added(sources: &Sources) -> String {
    let before = diagnostics(&example::sources());
    diagnostics(sources)
        .into_iter()
        .filter(|d| !before.contains(d))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The diagnostics of the example fleet with one edit.
fn edit(file: &str, from: &str, to: &str) -> String {
    added(&example::edited(file, from, to))
}

const ACME: &str = "overlays/clusters/acme-prod.yaml";
const GLOBEX: &str = "overlays/clusters/globex-dev.yaml";
const INITECH: &str = "overlays/clusters/initech-prod.yaml";

/// The example cluster spec with `n` workers (for counts that the offering forbids).
///
/// Worker addresses are `<two_octets>.<100 + k / 200>.<k % 200 + 1>` in the /16.
fn with_workers(file: &str, prefix: &str, zones: &[&str], n: usize, two_octets: &str) -> Sources {
    let mut sources = example::sources();
    let spec = sources.files.get_mut(file).expect("an example cluster");
    let start = spec.find("  workers:").expect("workers");
    let hosts_at =
        start + spec[start..].find("    hosts:\n").expect("hosts") + "    hosts:\n".len();
    let end = hosts_at + spec[hosts_at..].find("  gitRunner:").expect("gitRunner");
    let hosts: String = (0..n)
        .map(|k| {
            format!(
                "      - {{name: {prefix}-wk-{}, zone: {}, address: {two_octets}.{}.{}}}\n",
                k + 1,
                zones[k % zones.len()],
                100 + k / 200,
                k % 200 + 1
            )
        })
        .collect();
    let subnet_24 = format!("nodeSubnet: {two_octets}.");
    let widened = format!("{}{}{}", &spec[..hosts_at], hosts, &spec[end..]);
    let at = widened.find(&subnet_24).expect("a node subnet");
    let line_end = at + widened[at..].find('\n').expect("a line");
    *spec = format!(
        "{}nodeSubnet: {two_octets}.0.0/16{}",
        &widened[..at],
        &widened[line_end..]
    );
    sources
}

#[test]
fn the_example_fleet_has_one_warning_and_no_error() {
    insta::assert_snapshot!(diagnostics(&example::sources()).join("\n"), @"
    warning: versions.yaml:51:3: chart `ingress-nginx` 4.15.1 is no longer maintained upstream since 2026-03-31
      hint: plan the move to a maintained replacement (see the README)
    ");
}

#[test]
fn more_pods_per_node_than_the_offering_allows() {
    insta::assert_snapshot!(edit(ACME, "maxPods: 110", "maxPods: 250"), @"
    error: overlays/clusters/acme-prod.yaml:24:5: at most 110 pods per node, not 250
      hint: add nodes rather than pods per node
    ");
}

#[test]
fn two_devtest_workers() {
    let s = with_workers(GLOBEX, "globex-dev", &["AZ05"], 2, "10.30");
    insta::assert_snapshot!(added(&s), @"
    error: overlays/clusters/globex-dev.yaml:17:5: a devtest cluster needs at least 3 workers, this one has 2
      hint: add workers (the minimum keeps one per zone and Ceph's three replicas)
    ");
}

#[test]
fn a_hundred_and_one_production_workers() {
    let s = with_workers(ACME, "acme-prod", &["AZ05", "AZ06", "AZ07"], 101, "10.20");
    insta::assert_snapshot!(added(&s), @"
    error: overlays/clusters/acme-prod.yaml:25:5: a production cluster has at most 100 workers, this one has 101
      hint: split the workload over two clusters
    warning: overlays/clusters/acme-prod.yaml:25:5: 101 workers are not in balanced batches of three across the zones
      hint: add workers three at a time, one per zone
    ");
}

#[test]
fn two_hundred_and_fifty_one_devtest_workers_but_two_hundred_and_fifty_pass() {
    let s = with_workers(GLOBEX, "globex-dev", &["AZ05"], 251, "10.30");
    insta::assert_snapshot!(added(&s), @"
    error: overlays/clusters/globex-dev.yaml:17:5: a devtest cluster has at most 250 workers, this one has 251
      hint: split the workload over two clusters
    ");
    let s = with_workers(GLOBEX, "globex-dev", &["AZ05"], 250, "10.30");
    insta::assert_snapshot!(added(&s), @"");
}

#[test]
fn an_eight_core_worker() {
    insta::assert_snapshot!(
        edit(ACME, "size: {vcpu: 16, memoryGiB: 32", "size: {vcpu: 8, memoryGiB: 32"),
        @"
    error: overlays/clusters/acme-prod.yaml:23:5: a worker needs at least 12 vCPU and 24 GiB of memory, not 8 vCPU and 32 GiB
      hint: set `vcpu: 12` and `memoryGiB: 32` or more
    "
    );
}

#[test]
fn a_kubernetes_version_outside_the_support_window() {
    insta::assert_snapshot!(
        edit(ACME, "kubernetes: \"1.36.3\"", "kubernetes: \"1.33.5\""),
        @"
    error: overlays/clusters/acme-prod.yaml:7:3: Kubernetes 1.33 is outside the supported window (N-2) since 2026-07-21 (as of 2026-11-25)
      hint: upgrade to one of: 1.35, 1.36, 1.37
    "
    );
}

#[test]
fn a_talos_version_that_does_not_support_the_kubernetes_version() {
    insta::assert_snapshot!(edit(ACME, "talos: v1.13.9", "talos: v1.12.11"), @"
    error: overlays/clusters/acme-prod.yaml:8:3: Talos v1.12.11 does not support Kubernetes 1.36 (it supports 1.30, 1.31, 1.32, 1.33, 1.34, 1.35)
      hint: choose a Talos version that supports the cluster's Kubernetes minor
    ");
}

#[test]
fn a_talos_version_without_an_installer() {
    insta::assert_snapshot!(edit(ACME, "talos: v1.13.9", "talos: v1.13.8"), @"
    error: overlays/clusters/acme-prod.yaml:8:3: the catalog has no installer for Talos v1.13.8
      hint: use one of: v1.13.9
    ");
    insta::assert_snapshot!(edit(ACME, "talos: v1.13.9", "talos: v1.9.0"), @"
    error: overlays/clusters/acme-prod.yaml:8:3: Talos 1.9 is not in the catalog
      hint: the catalog has Talos 1.11, 1.12, 1.13
    ");
}

#[test]
fn an_install_disk_by_kernel_name() {
    // `/dev/sdb` may be the Ceph disk after the next boot: kernel names follow probe order.
    insta::assert_snapshot!(
        edit(
            ACME,
            "    size: {vcpu: 12, memoryGiB: 24, osDiskGiB: 64, cephDiskGiB: 500}\n",
            "    size: {vcpu: 12, memoryGiB: 24, osDiskGiB: 64, cephDiskGiB: 500}\n    installDisk: /dev/sda\n",
        ),
        @"
    error: overlays/clusters/acme-prod.yaml:18:5: `/dev/sda` is a kernel name, which follows the order the disks are probed in and can change between boots
      hint: leave `installDisk` out (the disk of `osDiskGiB` is selected by its size) or give a stable `/dev/disk/by-id/...` or `/dev/disk/by-path/...` path
    "
    );
}

#[test]
fn an_install_disk_selected_by_a_size_the_ceph_disk_shares() {
    insta::assert_snapshot!(
        edit(
            GLOBEX,
            "osDiskGiB: 64, cephDiskGiB: 300}",
            "osDiskGiB: 300, cephDiskGiB: 300}",
        ),
        @"
    error: overlays/clusters/globex-dev.yaml:15:5: the install disk is selected by its size, and the Ceph disk has the same size (300 GiB)
      hint: make the two disks differ in size, or give `installDisk` as a stable `/dev/disk/by-id/...` path
    "
    );
}

#[test]
fn a_duplicate_node_address() {
    insta::assert_snapshot!(
        edit(ACME, "address: 10.20.5.32}", "address: 10.20.5.31}"),
        @"
    error: overlays/clusters/acme-prod.yaml:27:44: address 10.20.5.31 is used twice (first at `nodes.workers.hosts[0]`)
      hint: give every node its own address
    "
    );
}

#[test]
fn a_node_in_a_zone_the_cluster_does_not_have() {
    insta::assert_snapshot!(
        edit(
            ACME,
            "{name: acme-prod-wk-4, zone: AZ05",
            "{name: acme-prod-wk-4, zone: AZ09"
        ),
        @"
    warning: overlays/clusters/acme-prod.yaml:25:5: 6 workers are not in balanced batches of three across the zones
      hint: add workers three at a time, one per zone
    error: overlays/clusters/acme-prod.yaml:29:32: `acme-prod-wk-4` is in zone `AZ09`, which the cluster does not have
      hint: use one of: AZ05, AZ06, AZ07
    "
    );
}

#[test]
fn a_control_plane_endpoint_that_is_no_address_or_dns_name() {
    let from = "apiEndpoint: https://10.20.5.10:6443";
    insta::assert_snapshot!(edit(ACME, from, "apiEndpoint: https://not_a_host:6443"), @"
    error: overlays/clusters/acme-prod.yaml:34:3: the API endpoint host `not_a_host` is neither an IPv4 address nor a DNS name
      hint: write it as `https://10.20.5.10:6443` or `https://api.example.net:6443`
    ");
    insta::assert_snapshot!(edit(ACME, from, "apiEndpoint: 10.20.5.10"), @"
    error: overlays/clusters/acme-prod.yaml:34:3: the API endpoint `10.20.5.10` is not an https URL
      hint: write it as `https://10.20.5.10:6443` or `https://api.example.net:6443`
    ");
}

#[test]
fn an_endpoint_that_is_also_a_node_address() {
    insta::assert_snapshot!(
        edit(
            ACME,
            "apiEndpoint: https://10.20.5.10:6443",
            "apiEndpoint: https://10.20.5.11:6443"
        ),
        @"
    error: overlays/clusters/acme-prod.yaml:34:3: the API endpoint address is also the address of `nodes.controlPlane.hosts[0]`
      hint: give the API endpoint its own (virtual) address of the node subnet
    "
    );
}

#[test]
fn pod_addresses_may_not_overlap_the_nodes() {
    insta::assert_snapshot!(
        edit(ACME, "podCidr: 10.244.0.0/16", "podCidr: 10.20.0.0/16"),
        @"
    error: overlays/clusters/acme-prod.yaml:38:3: 10.20.0.0/16 overlaps `network.nodeSubnet`
      hint: the ranges must be disjoint
    error: overlays/clusters/acme-prod.yaml:41:5: 10.20.6.0/28 overlaps `network.podCidr`
      hint: the ranges must be disjoint
    "
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut s = example::edited(ACME, "maxPods: 110", "maxPods: 111");
    for (file, from, to) in [
        (GLOBEX, "talos: v1.12.11", "talos: v1.12.99"),
        (
            INITECH,
            "zone: AZ07, address: 10.40.1.13",
            "zone: AZ09, address: 10.40.1.13",
        ),
    ] {
        let text = s.files.get_mut(file).expect("an example cluster");
        assert!(text.contains(from));
        *text = text.replacen(from, to, 1);
    }
    insta::assert_snapshot!(added(&s), @"
    error: overlays/clusters/acme-prod.yaml:24:5: at most 110 pods per node, not 111
      hint: add nodes rather than pods per node
    error: overlays/clusters/globex-dev.yaml:8:3: the catalog has no installer for Talos v1.12.99
      hint: use one of: v1.12.11
    error: overlays/clusters/initech-prod.yaml:12:5: control-plane nodes must be one per zone
      hint: give each host a different zone
    error: overlays/clusters/initech-prod.yaml:15:35: `initech-prod-cp-3` is in zone `AZ09`, which the cluster does not have
      hint: use one of: AZ05, AZ06, AZ07
    ");
}

#[test]
fn an_unknown_ingress_class() {
    insta::assert_snapshot!(
        edit(
            INITECH,
            "    ingressClasses: [nginx-external]\n",
            "    ingressClasses: [nginx-externl]\n"
        ),
        @"
    error: overlays/clusters/initech-prod.yaml:86:22: unknown ingress class `nginx-externl`
      hint: did you mean `nginx-external`?
    "
    );
}

#[test]
fn an_unknown_storage_class() {
    insta::assert_snapshot!(
        edit(
            INITECH,
            "storageClasses: [ceph-block, ceph-filesystem, ceph-bucket]",
            "storageClasses: [ceph-block, ceph-filesystem, ceph-nfs]"
        ),
        @"
    error: overlays/clusters/initech-prod.yaml:77:51: unknown storage class `ceph-nfs`
      hint: did you mean `ceph-filesystem`?
    "
    );
}

#[test]
fn two_tenants_claiming_one_prefix() {
    insta::assert_snapshot!(
        edit(INITECH, "  - name: analytics\n", "  - name: payments-analytics\n"),
        @"
    error: overlays/clusters/initech-prod.yaml:73:5: tenants `payments` and `payments-analytics` claim the same namespace prefix (`payments-*`)
      hint: rename one of them (the other is `tenants[0]`)
    "
    );
}

#[test]
fn tenant_rights_are_checked_against_the_rest_of_the_spec() {
    let mut s = example::sources();
    let text = s.files.get_mut(INITECH).expect("initech-prod");
    for (from, to) in [
        ("allowFromTenants: [web]", "allowFromTenants: [wbe]"),
        (
            "registries: [registry.initech.example]",
            "registries: [https://registry.initech.example]",
        ),
        (
            "quota: {cpu: \"48\", memory: 192Gi}",
            "quota: {cpu: \"48\", memory: 192GB}",
        ),
        ("  - name: web\n", "  - name: kube\n"),
    ] {
        assert!(text.contains(from), "{from}");
        *text = text.replace(from, to);
    }
    insta::assert_snapshot!(added(&s), @"
    error: overlays/clusters/initech-prod.yaml:67:18: `https://registry.initech.example` is not a registry host
      hint: write the host name, with its port if any (`registry.example.net:5000`), without scheme or path
    error: overlays/clusters/initech-prod.yaml:72:24: unknown tenant `wbe`
      hint: the tenants are: payments, analytics, kube
    error: overlays/clusters/initech-prod.yaml:78:24: `192GB` is not a Kubernetes quantity
      hint: write it as `500m`, `4`, `16Gi` or `1Ti`
    error: overlays/clusters/initech-prod.yaml:83:5: tenant `kube` claims the prefix `kube-*` of the platform namespace `kube-node-lease`
      hint: rename the tenant: the platform's namespaces belong to no tenant
    ");
}

#[test]
fn a_policy_action_other_than_enforce_or_audit() {
    insta::assert_snapshot!(
        edit(
            ACME,
            "\nsettings:\n",
            "\nsettings:\n  policyAction: Deny\n"
        ),
        @r#"
    error: overlays/clusters/acme-prod.yaml:68:3: `settings.policyAction` is "Deny", neither `Enforce` nor `Audit` (tier `production`)
      hint: production enforces (`Enforce`), devtest audits (`Audit`)
    "#
    );
}

#[test]
fn tenants_without_capsule() {
    let mut s = example::sources();
    let text = s.files.get_mut(INITECH).expect("initech-prod");
    text.push_str("components:\n  capsule:\n    enabled: false\n");
    insta::assert_snapshot!(added(&s), @"
    error: overlays/clusters/initech-prod.yaml:61:1: the cluster has tenants but the `capsule` component is off
      hint: enable `capsule` (tenants are Capsule Tenants), or remove the tenants
    ");
}

#[test]
fn quantities() {
    use super::is_quantity;
    for q in ["500m", "4", "16Gi", "1Ti", "1.5", ".5", "1e3", "+2", "64Mi"] {
        assert!(is_quantity(q), "{q}");
    }
    for q in ["", "Gi", "16GB", "1.2.3", "abc", "1e", "1Gii", "."] {
        assert!(!is_quantity(q), "{q}");
    }
}

#[test]
fn registry_hosts() {
    use super::is_registry_host;
    assert!(is_registry_host("ghcr.io"));
    assert!(is_registry_host("registry.globex.example:5000"));
    assert!(is_registry_host("10.0.0.5:5000"));
    assert!(!is_registry_host("https://ghcr.io"));
    assert!(!is_registry_host("ghcr.io/team"));
    assert!(!is_registry_host("ghcr.io:0"));
    assert!(!is_registry_host("Docker.io"));
}

/// The example fleet with several edits of one file.
fn edits(file: &str, pairs: &[(&str, &str)]) -> String {
    let mut s = example::sources();
    let text = s.files.get_mut(file).expect("an example file");
    for (from, to) in pairs {
        assert!(text.contains(from), "{from}");
        *text = text.replacen(from, to, 1);
    }
    added(&s)
}

#[test]
fn sso_values_that_would_become_yaml_csv_or_jmespath() {
    insta::assert_snapshot!(
        edits(INITECH, &[(
            "  issuer: https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0\n",
            "  issuer: \"https://login.example.net/v2.0\\n    users.anonymous.enabled: \\\"true\\\"\"\n",
        )]),
        @r#"
    error: overlays/clusters/initech-prod.yaml:51:3: the OIDC issuer `https://login.example.net/v2.0\n    users.anonymous.enabled: "true"` has a path with characters a URL path does not hold (`/v2.0\n    users.anonymous.enabled: "true"`)
      hint: OIDC issuers are https URLs without query or fragment, e.g. `https://login.example.net/realms/x`
    "#
    );
    insta::assert_snapshot!(
        edits(INITECH, &[
            ("  adminGroup: initech-platform-admins\n", "  adminGroup: \"x') || contains(['a'], 'a\"\n  groupsClaim: \"groups\\n#! file: pwn.yaml\"\n  clientSecretRef: Oidc_Client\n"),
            ("  clientId: kubernetes-initech\n", "  clientId: \"a b\"\n"),
        ]),
        @r"
    error: overlays/clusters/initech-prod.yaml:52:3: `a b` is not an OIDC client id
      hint: use the id the identity provider gave: letters, digits and `_ . : @ / + = -`
    error: overlays/clusters/initech-prod.yaml:53:3: `x') || contains(['a'], 'a` is not a group name
      hint: use letters, digits, spaces and `_ . @ / : = + -` (no quote, comma, `#` or backslash), at most 256 characters
    error: overlays/clusters/initech-prod.yaml:54:3: `groups\n#! file: pwn.yaml` is not a claim name
      hint: a claim name is letters, digits and `_ . : / -` (e.g. `groups`), at most 128 characters
    error: overlays/clusters/initech-prod.yaml:55:3: `Oidc_Client` is not a Kubernetes object name
      hint: use lowercase letters, digits, `-` and `.`, e.g. `oidc-client`
    "
    );
    insta::assert_snapshot!(
        edits(INITECH, &[("  adminGroup: initech-platform-admins\n", "  adminGroup: system:authenticated\n")]),
        @"
    error: overlays/clusters/initech-prod.yaml:53:3: `system:authenticated` is a group of the API server itself
      hint: name a group of the identity provider: `system:` groups are Kubernetes' own
    "
    );
}

#[test]
fn services_and_names_of_the_spec() {
    insta::assert_snapshot!(
        edits(ACME, &[
            ("endpoint: https://s3.example.net", "endpoint: \"https://s3.example.net/?x\""),
            ("  branch: main", "  branch: \"main:refs/tags/x\""),
            ("client: acme", "client: \"acme\\n#! file: x\""),
            ("logsBucket: acme-prod-logs", "logsBucket: Acme_Logs"),
        ]),
        @r"
    error: overlays/clusters/acme-prod.yaml:3:1: `client` holds a line break or another control character: `acme\n#! file: x`
      hint: write the value on one line, without control characters
    error: overlays/clusters/acme-prod.yaml:54:3: the S3 endpoint `https://s3.example.net/?x` has a path with characters a URL path does not hold (`/?x`)
      hint: the provider's S3 is reached over https: `https://HOST[:PORT]`
    error: overlays/clusters/acme-prod.yaml:55:3: `Acme_Logs` is not an S3 bucket name
      hint: use 3 to 63 lowercase letters, digits, `-` and `.`
    error: overlays/clusters/acme-prod.yaml:59:3: `main:refs/tags/x` is not a valid branch name
      hint: git refuses it (see `git check-ref-format --branch`): use letters, digits and `- _ . /`, e.g. `main` or `release/2026-11`
    "
    );
}
