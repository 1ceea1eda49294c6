//! A fleet generator: N realistic cluster specs, for benchmarks and scale tests.
//!
//! Deterministic: the same `n` gives the same specs. Two in three clusters are production
//! (three zones, 6 to 15 workers, some with SSO and tenants), one in three devtest.

use crate::model::{Sources, paths};

/// The spec file (path, YAML text) of generated cluster number `i`.
pub fn cluster(i: usize) -> (String, String) {
    let name = format!("gen-{i:05}");
    let production = i % 3 != 2;
    // 10.<a>.<b>.0/24 per cluster, unique for i < 65,536.
    let (a, b) = (16 + (i / 256) % 200, i % 256);
    let subnet = format!("10.{a}.{b}");
    let zones: Vec<&str> = if production {
        vec!["AZ05", "AZ06", "AZ07"]
    } else {
        vec!["AZ05"]
    };
    let workers = if production {
        6 + 3 * (i % 4)
    } else {
        3 + i % 4
    };
    let mut s = format!(
        "name: {name}\nclient: client-{c}\ntier: {tier}\nzones: [{zones}]\nversions:\n  kubernetes: \"{k8s}\"\n  talos: {talos}\nnodes:\n",
        c = i / 2,
        tier = if production { "production" } else { "devtest" },
        zones = zones.join(", "),
        k8s = if production { "1.36.3" } else { "1.35.4" },
        talos = if production { "v1.13.9" } else { "v1.12.11" },
    );
    let host = |role: &str, n: usize, base: usize| -> String {
        (0..n)
            .map(|k| {
                format!(
                    "      - {{name: {name}-{role}-{}, zone: {}, address: {subnet}.{}}}\n",
                    k + 1,
                    zones[k % zones.len()],
                    base + k
                )
            })
            .collect()
    };
    s += &format!(
        "  controlPlane:\n    size: {{vcpu: 8, memoryGiB: 12, osDiskGiB: 64}}\n    hosts:\n{}",
        host("cp", if production { 3 } else { 1 }, 11)
    );
    if production {
        s += &format!(
            "  storage:\n    size: {{vcpu: 12, memoryGiB: 24, osDiskGiB: 64, cephDiskGiB: 500}}\n    hosts:\n{}",
            host("st", 3, 21)
        );
        s += &format!(
            "  workers:\n    size: {{vcpu: 16, memoryGiB: 32, osDiskGiB: 64}}\n    hosts:\n{}",
            host("wk", workers, 31)
        );
    } else {
        s += &format!(
            "  workers:\n    size: {{vcpu: 12, memoryGiB: 24, osDiskGiB: 64, cephDiskGiB: 300}}\n    hosts:\n{}",
            host("wk", workers, 31)
        );
    }
    s += &format!(
        "  gitRunner: {{name: {name}-runner, zone: {z}, address: {subnet}.9, size: {{vcpu: 4, memoryGiB: 8, osDiskGiB: 30}}}}\n",
        z = zones[zones.len() - 1]
    );
    s += &format!(
        "network:\n  apiEndpoint: https://{subnet}.10:6443\n  nodeSubnet: {subnet}.0/24\n  gateway: {subnet}.1\n  nameservers: [{subnet}.2]\n  podCidr: 10.244.0.0/16\n  serviceCidr: 10.96.0.0/12\n  pools:\n    internal: 172.16.{b}.0/28\n    externalSecured: 198.18.{a}.{e}/32\n    external: 198.18.{a}.{f}/32\n",
        e = (2 * b) % 256,
        f = (2 * b + 1) % 256,
    );
    s += &format!(
        "ingress:\n  domain: {name}.k8s.example.net\n  securedAllowlist: [198.51.100.0/24]\n"
    );
    if production && i.is_multiple_of(2) {
        s += &format!(
            "sso:\n  issuer: https://login.example.com/{name}\n  clientId: kubernetes\n  adminGroup: {name}-admins\n"
        );
        // Grafana's OAuth does not read the issuer's discovery document (docs/stack.md).
        s += &format!(
            "settings:\n  oidc:\n    authUrl: https://login.example.com/{name}/authorize\n    tokenUrl: https://login.example.com/{name}/token\n    userInfoUrl: https://login.example.com/{name}/userinfo\n"
        );
    }
    if production {
        s += &format!(
            "tenants:\n  - name: shop\n    owners: [\"group:{name}-shop\"]\n    namespaces: 10\n    ingressClasses: [nginx-external]\n  - name: data\n    owners: [\"group:{name}-data\"]\n    namespaces: 4\n    ingressClasses: [nginx-internal]\n"
        );
    }
    s += &format!(
        "s3:\n  endpoint: https://s3.example.net\n  logsBucket: {name}-logs\n  backupBucket: {name}-backup\nrepo:\n  url: https://git.example.net/clusters/{name}.git\nkubeContext: admin@{name}\n"
    );
    (format!("{}{name}.yaml", paths::CLUSTERS), s)
}

/// `base` (a blueprint repository's sources) with its clusters replaced by `n` generated ones.
pub fn fleet(base: &Sources, n: usize) -> Sources {
    let mut sources = base.clone();
    // Every cluster renders its Talos configs and needs an (encrypted) secrets bundle, which
    // render copies unread: the generated clusters share one of the base fleet's.
    let bundle = base
        .files
        .iter()
        .find(|(p, _)| {
            p.starts_with(paths::CLUSTERS) && p.ends_with(crate::model::paths::SECRETS_FILE)
        })
        .map(|(_, t)| t.clone())
        .unwrap_or_else(|| "# generated fleet: no Talos secrets\n".to_string());
    sources.files.retain(|p, _| !p.starts_with(paths::CLUSTERS));
    for i in 0..n {
        let (path, text) = cluster(i);
        let name = path
            .trim_start_matches(paths::CLUSTERS)
            .trim_end_matches(".yaml")
            .to_string();
        sources.files.insert(path, text);
        sources
            .files
            .insert(crate::model::paths::secrets_path(&name), bundle.clone());
    }
    sources
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_clusters_are_valid_specs() {
        for i in 0..12 {
            let (path, text) = super::cluster(i);
            let (spec, _) =
                crate::yaml::from_str::<crate::model::ClusterSpec>(&path, &text).unwrap();
            assert_eq!(path, format!("overlays/clusters/{}.yaml", spec.name));
        }
    }
}
