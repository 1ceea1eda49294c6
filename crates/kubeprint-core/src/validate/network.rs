//! Addresses and ranges: host names, zones and addresses, the node subnet, the API
//! endpoint, the gateway, nameservers, pod and service CIDRs, MetalLB pools, the ingress
//! domain and allowlist.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::Checker;
use crate::model::net::{
    Cidr, check_endpoint, endpoint_host, is_dns_label, is_dns_name, parse_cidr,
};

pub(super) fn check(v: &mut Checker) {
    let spec = v.spec;
    let c = &spec.value;
    let zones: BTreeSet<&str> = c.zones.iter().map(String::as_str).collect();
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
}
