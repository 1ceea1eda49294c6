//! Counts per tier and zone: zones, control planes, storage nodes, workers and their
//! spread, the Git runner's zone.

use std::collections::{BTreeMap, BTreeSet};

use super::Checker;
use crate::model::TierKind;
use crate::model::cluster::ClusterSpec;

pub(super) fn check(v: &mut Checker) {
    let spec = v.spec;
    let c = &spec.value;
    let rules = v.rules;
    let kind = v.kind;
    // Zones.
    let zones: BTreeSet<&str> = c.zones.iter().map(String::as_str).collect();
    for (i, zone) in c.zones.iter().enumerate() {
        if let Err(e) = crate::model::names::check_label_value(zone) {
            v.error(&format!("zones[{i}]"), e.message, e.hint);
        }
    }
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
    if v.tier.kind == TierKind::Production
        && c.zones.len() == 3
        && c.nodes.git_runner.zone != c.zones[2]
    {
        v.error(
            "nodes.gitRunner.zone",
            format!("the Git runner runs in the third zone, `{}`", c.zones[2]),
            &format!("set `zone: {}`", c.zones[2]),
        );
    }
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
