//! The offering's rules (`OFFERING.md`) over a typed fleet: every problem, at once.
//!
//! Errors stop a render; warnings (workers not in batches of three, unequal worker
//! sizes, a version close to the end of its support) are reported and let it go on.
//! The support window is computed against the date given, never the clock.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use jiff::civil::Date;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::catalog::Support;
use crate::model::cluster::{ClusterSpec, Role, Size, minor_of};
use crate::model::net::{
    Cidr, check_endpoint, endpoint_host, is_dns_label, is_dns_name, parse_cidr,
};
use crate::model::{Fleet, Sourced, TierKind};

/// The ingress classes of the offering.
pub const INGRESS_CLASSES: [&str; 3] =
    ["nginx-external-secured", "nginx-external", "nginx-internal"];
/// The storage classes of the offering.
pub const STORAGE_CLASSES: [&str; 3] = ["ceph-block", "ceph-bucket", "ceph-filesystem"];

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

const MAX_PODS: u32 = 110;
const CONTROL_PLANE_MIN: (u32, u32, u32) = (8, 12, 64);
const STORAGE_MIN: (u32, u32, u32) = (12, 24, 64);
const WORKER_MIN: (u32, u32, u32) = (12, 24, 64);
const WORKER_MAX: (u32, u32) = (112, 1536);
const GIT_RUNNER_MIN: (u32, u32, u32) = (4, 8, 30);

/// Checks every cluster of the fleet (and the fleet's own files) against the offering.
pub fn validate(fleet: &Fleet, today: Date) -> Diagnostics {
    let mut d = Diagnostics::default();
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
    let mut v = Checker {
        spec,
        d: Diagnostics::default(),
    };
    let c = &spec.value;
    if !is_dns_label(&c.name) {
        v.error(
            "name",
            format!("`{}` is not a valid cluster name", c.name),
            "use lowercase letters, digits and `-`, at most 63 characters",
        );
    }
    let Some(tier) = fleet.tiers.get(&c.tier) else {
        let names: Vec<String> = fleet.tiers.keys().cloned().collect();
        let hint = crate::yaml::did_you_mean(&c.tier, &names)
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| format!("the tiers are: {}", names.join(", ")));
        v.error("tier", format!("tier `{}` does not exist", c.tier), &hint);
        return v.d;
    };
    let rules = match tier.value.kind {
        TierKind::Production => PRODUCTION,
        TierKind::Devtest => DEVTEST,
    };
    let kind = match tier.value.kind {
        TierKind::Production => "production",
        TierKind::Devtest => "devtest",
    };

    // Zones.
    let zones: BTreeSet<&str> = c.zones.iter().map(String::as_str).collect();
    if zones.len() != c.zones.len() {
        v.error(
            "zones",
            "a zone is listed twice".into(),
            "list each availability zone once",
        );
    }
    if c.zones.len() != rules.zones {
        v.error(
            "zones",
            format!(
                "a {kind} cluster runs in {} availability zone(s), not {}",
                rules.zones,
                c.zones.len()
            ),
            "fix `zones`, or choose the other tier",
        );
    }

    // Node counts per role and zone.
    let cp = &c.nodes.control_plane;
    if cp.hosts.len() != rules.control_planes {
        v.error(
            "nodes.controlPlane.hosts",
            format!(
                "a {kind} cluster has {} control-plane node(s), not {}",
                rules.control_planes,
                cp.hosts.len()
            ),
            "the offering fixes the control plane size",
        );
    }
    match (&c.nodes.storage, rules.storage_nodes) {
        (None, n) if n > 0 => v.error(
            "nodes",
            format!("a {kind} cluster needs {n} dedicated storage nodes (`nodes.storage`)"),
            "add `nodes.storage` with one host per zone",
        ),
        (Some(_), 0) => v.error(
            "nodes.storage",
            format!("a {kind} cluster has no dedicated storage nodes: Ceph runs on the workers"),
            "remove `nodes.storage` and give the workers `cephDiskGiB`",
        ),
        (Some(st), n) if st.hosts.len() != n => v.error(
            "nodes.storage.hosts",
            format!(
                "a {kind} cluster has {n} storage nodes, not {}",
                st.hosts.len()
            ),
            "one dedicated storage node per zone",
        ),
        _ => {}
    }
    let workers = c.nodes.workers.hosts.len();
    if workers < rules.min_workers {
        v.error(
            "nodes.workers.hosts",
            format!(
                "a {kind} cluster needs at least {} workers, this one has {workers}",
                rules.min_workers
            ),
            "add workers (the minimum keeps one per zone and Ceph's three replicas)",
        );
    }
    if workers > rules.max_workers {
        v.error(
            "nodes.workers.hosts",
            format!(
                "a {kind} cluster has at most {} workers, this one has {workers}",
                rules.max_workers
            ),
            "split the workload over two clusters",
        );
    }
    if rules.zones > 1 {
        for (role, pool, path) in [
            ("control-plane", Some(cp), "nodes.controlPlane.hosts"),
            ("storage", c.nodes.storage.as_ref(), "nodes.storage.hosts"),
        ] {
            let Some(pool) = pool else { continue };
            let per_zone = count_per_zone(c, pool.hosts.iter().map(|h| h.zone.as_str()));
            if per_zone.values().any(|n| *n != 1) && pool.hosts.len() == rules.zones {
                v.error(
                    path,
                    format!("{role} nodes must be one per zone"),
                    "give each host a different zone",
                );
            }
        }
        let per_zone = count_per_zone(c, c.nodes.workers.hosts.iter().map(|h| h.zone.as_str()));
        if per_zone.values().any(|n| *n == 0) && workers >= rules.min_workers {
            let empty: Vec<&str> = per_zone
                .iter()
                .filter(|(_, n)| **n == 0)
                .map(|(z, _)| *z)
                .collect();
            v.error(
                "nodes.workers.hosts",
                format!(
                    "every zone needs at least one worker; none in {}",
                    empty.join(", ")
                ),
                "spread the workers over the zones",
            );
        } else if !workers.is_multiple_of(3) || per_zone.values().collect::<BTreeSet<_>>().len() > 1
        {
            v.warning(
                "nodes.workers.hosts",
                format!("{workers} workers are not in balanced batches of three across the zones"),
                "add workers three at a time, one per zone",
            );
        }
    }

    // Sizes.
    for node in c.node_views() {
        let (min, what) = match node.role {
            Role::ControlPlane => (CONTROL_PLANE_MIN, "control-plane node"),
            Role::Storage => (STORAGE_MIN, "storage node"),
            Role::Worker => (WORKER_MIN, "worker"),
        };
        let size_path = if node.host.size.is_some() {
            format!("{}.size", node.path)
        } else {
            pool_path(&node.path) + ".size"
        };
        v.check_min(&size_path, what, node.size, min);
        if node.role == Role::Worker
            && (node.size.vcpu > WORKER_MAX.0 || node.size.memory_gib > WORKER_MAX.1)
        {
            v.error(
                &size_path,
                format!(
                    "a worker has at most {} vCPU and {} GiB (the hypervisor size), not {} vCPU and {} GiB",
                    WORKER_MAX.0, WORKER_MAX.1, node.size.vcpu, node.size.memory_gib
                ),
                "use more workers instead",
            );
        }
        let ceph_min = match (node.role, tier.value.kind) {
            (Role::Storage, TierKind::Production) | (Role::Worker, TierKind::Devtest) => {
                Some(rules.min_ceph_gib)
            }
            _ => None,
        };
        if let Some(min) = ceph_min {
            match node.size.ceph_disk_gib {
                None => v.error(
                    &size_path,
                    format!(
                        "a {kind} {what} holds Ceph data and needs `cephDiskGiB` (at least {min})"
                    ),
                    "add `cephDiskGiB`",
                ),
                Some(g) if g < min => v.error(
                    &format!("{size_path}.cephDiskGiB"),
                    format!("a {kind} {what} needs at least {min} GiB of Ceph disk, not {g}"),
                    &format!("set `cephDiskGiB: {min}` or more"),
                ),
                _ => {}
            }
        }
    }
    let mut worker_sizes: BTreeSet<(u32, u32)> = BTreeSet::new();
    for node in c
        .node_views()
        .into_iter()
        .filter(|n| n.role == Role::Worker)
    {
        worker_sizes.insert((node.size.vcpu, node.size.memory_gib));
    }
    if worker_sizes.len() > 1 {
        v.warning(
            "nodes.workers",
            format!("workers have {} different sizes", worker_sizes.len()),
            "CNCF recommends identical worker sizes",
        );
    }
    for (pool, path) in [
        (Some(cp), "nodes.controlPlane"),
        (c.nodes.storage.as_ref(), "nodes.storage"),
        (Some(&c.nodes.workers), "nodes.workers"),
    ] {
        if let Some(pool) = pool
            && pool.max_pods > MAX_PODS
        {
            v.error(
                &format!("{path}.maxPods"),
                format!("at most {MAX_PODS} pods per node, not {}", pool.max_pods),
                "add nodes rather than pods per node",
            );
        }
    }
    v.check_min(
        "nodes.gitRunner.size",
        "Git runner",
        &c.nodes.git_runner.size,
        GIT_RUNNER_MIN,
    );
    if tier.value.kind == TierKind::Production
        && c.zones.len() == 3
        && c.nodes.git_runner.zone != c.zones[2]
    {
        v.error(
            "nodes.gitRunner.zone",
            format!("the Git runner runs in the third zone, `{}`", c.zones[2]),
            &format!("set `zone: {}`", c.zones[2]),
        );
    }

    // Hosts: zones, names and addresses.
    let subnet = parse_cidr(&c.network.node_subnet);
    if subnet.is_none() {
        v.error(
            "network.nodeSubnet",
            format!("`{}` is not an IPv4 CIDR", c.network.node_subnet),
            "write it as `10.20.5.0/24`",
        );
    }
    let mut names: BTreeMap<&str, String> = BTreeMap::new();
    let mut addresses: BTreeMap<&str, String> = BTreeMap::new();
    let git_runner = (
        &c.nodes.git_runner.name,
        &c.nodes.git_runner.zone,
        &c.nodes.git_runner.address,
        "nodes.gitRunner".to_string(),
    );
    let hosts = c
        .node_views()
        .into_iter()
        .map(|n| (&n.host.name, &n.host.zone, &n.host.address, n.path))
        .chain([git_runner]);
    for (name, zone, address, path) in hosts {
        if !zones.contains(zone.as_str()) {
            v.error(
                &format!("{path}.zone"),
                format!("`{name}` is in zone `{zone}`, which the cluster does not have"),
                &format!("use one of: {}", c.zones.join(", ")),
            );
        }
        if !is_dns_label(name) {
            v.error(
                &format!("{path}.name"),
                format!("`{name}` is not a valid hostname"),
                "use lowercase letters, digits and `-`",
            );
        }
        if let Some(first) = names.insert(name, path.clone()) {
            v.error(
                &format!("{path}.name"),
                format!("hostname `{name}` is used twice (first at `{first}`)"),
                "give every node its own name",
            );
        }
        match address.parse::<Ipv4Addr>() {
            Err(_) => v.error(
                &format!("{path}.address"),
                format!("`{address}` is not an IPv4 address"),
                "write it as `10.20.5.11`",
            ),
            Ok(ip) => {
                if let Some(first) = addresses.insert(address, path.clone()) {
                    v.error(
                        &format!("{path}.address"),
                        format!("address {address} is used twice (first at `{first}`)"),
                        "give every node its own address",
                    );
                }
                if let Some(net) = subnet
                    && !net.contains(ip)
                {
                    v.error(
                        &format!("{path}.address"),
                        format!(
                            "address {address} is outside the node subnet {}",
                            c.network.node_subnet
                        ),
                        "use an address of `network.nodeSubnet`",
                    );
                }
            }
        }
    }

    // Network.
    let net = &c.network;
    if let Err(msg) = check_endpoint(&net.api_endpoint) {
        v.error(
            "network.apiEndpoint",
            msg,
            "write it as `https://10.20.5.10:6443` or `https://api.example.net:6443`",
        );
    } else if let Some(first) = addresses.get(endpoint_host(&net.api_endpoint)) {
        // The endpoint is the control planes' shared (virtual) address: no node may hold it.
        v.error(
            "network.apiEndpoint",
            format!("the API endpoint address is also the address of `{first}`"),
            "give the API endpoint its own (virtual) address of the node subnet",
        );
    }
    if net
        .gateway
        .parse::<Ipv4Addr>()
        .map(|g| subnet.is_none_or(|s| s.contains(g)))
        != Ok(true)
    {
        v.error(
            "network.gateway",
            format!("`{}` is not an address of the node subnet", net.gateway),
            "use the subnet's router",
        );
    }
    for (i, ns) in net.nameservers.iter().enumerate() {
        if ns.parse::<std::net::IpAddr>().is_err() {
            v.error(
                &format!("network.nameservers[{i}]"),
                format!("`{ns}` is not an IP address"),
                "list DNS servers by address",
            );
        }
    }
    // The node subnet may hold MetalLB pools (L2 mode announces on the nodes' segment),
    // but never pod or service addresses.
    let mut ranges: Vec<(String, Cidr)> = Vec::new();
    let node_ranges: Vec<(String, Cidr)> = subnet
        .map(|s| ("network.nodeSubnet".to_string(), s))
        .into_iter()
        .collect();
    for (path, value) in [
        ("network.podCidr", &net.pod_cidr),
        ("network.serviceCidr", &net.service_cidr),
        ("network.pools.internal", &net.pools.internal),
        ("network.pools.externalSecured", &net.pools.external_secured),
        ("network.pools.external", &net.pools.external),
    ] {
        match parse_cidr(value) {
            None => v.error(
                path,
                format!("`{value}` is not an IPv4 CIDR"),
                "write it as `10.244.0.0/16`",
            ),
            Some(cidr) => {
                let pod_or_service = path == "network.podCidr" || path == "network.serviceCidr";
                let against = ranges
                    .iter()
                    .chain(node_ranges.iter().filter(|_| pod_or_service));
                for (other_path, other) in against {
                    if cidr.overlaps(other) {
                        v.error(
                            path,
                            format!("{value} overlaps `{other_path}`"),
                            "the ranges must be disjoint",
                        );
                    }
                }
                ranges.push((path.to_string(), cidr));
            }
        }
    }
    for (i, cidr) in c.ingress.secured_allowlist.iter().enumerate() {
        if parse_cidr(cidr).is_none() {
            v.error(
                &format!("ingress.securedAllowlist[{i}]"),
                format!("`{cidr}` is not an IPv4 CIDR"),
                "write it as `198.51.100.0/24`",
            );
        }
    }
    if !is_dns_name(&c.ingress.domain) {
        v.error(
            "ingress.domain",
            format!("`{}` is not a DNS name", c.ingress.domain),
            "write it as `acme-prod.example.net`",
        );
    }
    if let Some(sso) = &c.sso
        && !sso.issuer.starts_with("https://")
    {
        v.error(
            "sso.issuer",
            format!("the OIDC issuer `{}` is not an https URL", sso.issuer),
            "OIDC issuers are https URLs",
        );
    }
    if !c.s3.endpoint.starts_with("https://") {
        v.error(
            "s3.endpoint",
            format!("`{}` is not an https URL", c.s3.endpoint),
            "the provider's S3 is reached over https",
        );
    }

    // Versions.
    v.check_versions(fleet, today);

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
            let ok = o
                .strip_prefix("group:")
                .or_else(|| o.strip_prefix("user:"))
                .is_some_and(|n| !n.is_empty());
            if !ok {
                v.error(
                    &format!("{path}.owners[{k}]"),
                    format!("owner `{o}` is neither `group:NAME` nor `user:NAME`"),
                    "prefix it with `group:` or `user:`",
                );
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

    check_tenant_rights(&mut v, fleet, &tier.value);

    // Component overrides must name components.
    let known: Vec<String> = fleet.components.keys().cloned().collect();
    for name in c.components.keys() {
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
    v.d
}

struct Checker<'a> {
    spec: &'a Sourced<ClusterSpec>,
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

    fn check_min(
        &mut self,
        path: &str,
        what: &str,
        size: &Size,
        (cpu, mem, disk): (u32, u32, u32),
    ) {
        if size.vcpu < cpu || size.memory_gib < mem {
            self.error(
                path,
                format!(
                    "a {what} needs at least {cpu} vCPU and {mem} GiB of memory, not {} vCPU and {} GiB",
                    size.vcpu, size.memory_gib
                ),
                &format!("set `vcpu: {}` and `memoryGiB: {}` or more", cpu.max(size.vcpu), mem.max(size.memory_gib)),
            );
        }
        if size.os_disk_gib < disk {
            self.error(
                &format!("{path}.osDiskGiB"),
                format!(
                    "a {what} needs an OS disk of at least {disk} GiB, not {}",
                    size.os_disk_gib
                ),
                &format!("set `osDiskGiB: {disk}`"),
            );
        }
    }

    fn check_versions(&mut self, fleet: &Fleet, today: Date) {
        let c = &self.spec.value;
        let catalog = &fleet.catalog.value;
        let Some(k8s_minor) = minor_of(&c.versions.kubernetes) else {
            self.error(
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
                    self.warning(
                        "versions.kubernetes",
                        format!("Kubernetes {k8s_minor} leaves the support window on {end} (in {days} days)"),
                        "plan the upgrade to a newer minor",
                    );
                }
            }
            Support::Supported { until: None } => {}
            Support::Ended { since } => self.error(
                "versions.kubernetes",
                format!(
                    "Kubernetes {k8s_minor} is outside the supported window (N-{}) since {since} (as of {today})",
                    catalog.policy.supported_minors - 1
                ),
                &format!("upgrade to one of: {}", supported_minors(fleet, today).join(", ")),
            ),
            Support::Unreleased => self.error(
                "versions.kubernetes",
                format!("Kubernetes {k8s_minor} is not released as of {today}"),
                &format!("use one of: {}", supported_minors(fleet, today).join(", ")),
            ),
            Support::Unknown => self.error(
                "versions.kubernetes",
                format!("Kubernetes {k8s_minor} is not in the catalog (`versions.yaml`)"),
                &format!("use one of: {}", supported_minors(fleet, today).join(", ")),
            ),
        }
        let talos = &c.versions.talos;
        let Some(talos_minor) = talos.strip_prefix('v').and_then(minor_of) else {
            self.error(
                "versions.talos",
                format!("`{talos}` is not a Talos version"),
                "write it as `v1.13.9`",
            );
            return;
        };
        let Some(branch) = catalog.talos.get(&talos_minor) else {
            let known: Vec<&str> = catalog.talos.keys().map(String::as_str).collect();
            self.error(
                "versions.talos",
                format!("Talos {talos_minor} is not in the catalog"),
                &format!("the catalog has Talos {}", known.join(", ")),
            );
            return;
        };
        if !branch.installers.contains(talos) {
            self.error(
                "versions.talos",
                format!("the catalog has no installer for Talos {talos}"),
                &format!("use one of: {}", branch.installers.join(", ")),
            );
        }
        if !branch.kubernetes.contains(&k8s_minor) {
            self.error(
                "versions.talos",
                format!(
                    "Talos {talos} does not support Kubernetes {k8s_minor} (it supports {})",
                    branch.kubernetes.join(", ")
                ),
                "choose a Talos version that supports the cluster's Kubernetes minor",
            );
        }
    }
}

/// Namespaces every cluster has besides the components' own.
const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-node-lease", "kube-public", "kube-system"];

/// The tenants' rights and what the policies and Capsule need from the rest of the spec:
/// references between tenants, quantities, registries, prefixes that would reach the
/// platform's namespaces, Capsule's user list, and the policy action.
fn check_tenant_rights(v: &mut Checker, fleet: &Fleet, tier: &crate::model::Tier) {
    let c = &v.spec.value;
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
fn capsule_users(fleet: &Fleet, tier: &crate::model::Tier, c: &ClusterSpec) -> CapsuleUsers {
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

fn pool_path(host_path: &str) -> String {
    host_path
        .split(".hosts[")
        .next()
        .unwrap_or(host_path)
        .to_string()
}

fn count_per_zone<'a>(
    c: &'a ClusterSpec,
    zones: impl Iterator<Item = &'a str>,
) -> BTreeMap<&'a str, usize> {
    let mut m: BTreeMap<&str, usize> = c.zones.iter().map(|z| (z.as_str(), 0)).collect();
    for z in zones {
        if let Some(n) = m.get_mut(z) {
            *n += 1;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for q in ["500m", "4", "16Gi", "1Ti", "1.5", ".5", "1e3", "+2", "64Mi"] {
            assert!(is_quantity(q), "{q}");
        }
        for q in ["", "Gi", "16GB", "1.2.3", "abc", "1e", "1Gii", "."] {
            assert!(!is_quantity(q), "{q}");
        }
    }

    #[test]
    fn registry_hosts() {
        assert!(is_registry_host("ghcr.io"));
        assert!(is_registry_host("registry.globex.example:5000"));
        assert!(is_registry_host("10.0.0.5:5000"));
        assert!(!is_registry_host("https://ghcr.io"));
        assert!(!is_registry_host("ghcr.io/team"));
        assert!(!is_registry_host("ghcr.io:0"));
        assert!(!is_registry_host("Docker.io"));
    }
}
