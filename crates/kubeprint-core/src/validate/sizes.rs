//! Sizes: the minimum and maximum VM of each role, the Ceph disks, pods per node, the
//! Git runner.

use std::collections::BTreeSet;

use super::Checker;
use crate::model::TierKind;
use crate::model::cluster::{Role, Size};

const MAX_PODS: u32 = 110;
const CONTROL_PLANE_MIN: (u32, u32, u32) = (8, 12, 64);
const STORAGE_MIN: (u32, u32, u32) = (12, 24, 64);
const WORKER_MIN: (u32, u32, u32) = (12, 24, 64);
const WORKER_MAX: (u32, u32) = (112, 1536);
const GIT_RUNNER_MIN: (u32, u32, u32) = (4, 8, 30);

pub(super) fn check(v: &mut Checker) {
    let spec = v.spec;
    let c = &spec.value;
    let rules = v.rules;
    let kind = v.kind;
    let cp = &c.nodes.control_plane;
    // Sizes.
    for node in c.node_views() {
        let disk_path = if node.host.install_disk.is_some() {
            format!("{}.installDisk", node.path)
        } else {
            pool_path(&node.path) + ".installDisk"
        };
        let mut disk_ok = true;
        if let Some(disk) = node.install_disk
            && let Err(e) = crate::model::names::check_install_disk(disk)
        {
            v.error(&disk_path, e.message, e.hint);
            disk_ok = false;
        }
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
        check_min(v, &size_path, what, node.size, min);
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
        // The install disk: a stable path, or selected by size (Talos `diskSelector`).
        match node.install_disk {
            Some(disk) if disk_ok && !disk.starts_with("/dev/disk/by-") => {
                v.error(
                    &disk_path,
                    format!(
                        "`{disk}` is a kernel name, which follows the order the disks are probed in and can change between boots"
                    ),
                    "leave `installDisk` out (the disk of `osDiskGiB` is selected by its size) or give a stable `/dev/disk/by-id/...` or `/dev/disk/by-path/...` path",
                );
            }
            None if node.size.ceph_disk_gib == Some(node.size.os_disk_gib) => v.error(
                &size_path,
                format!(
                    "the install disk is selected by its size, and the Ceph disk has the same size ({} GiB)",
                    node.size.os_disk_gib
                ),
                "make the two disks differ in size, or give `installDisk` as a stable `/dev/disk/by-id/...` path",
            ),
            _ => {}
        }
        let ceph_min = match (node.role, v.tier.kind) {
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
    check_min(
        v,
        "nodes.gitRunner.size",
        "Git runner",
        &c.nodes.git_runner.size,
        GIT_RUNNER_MIN,
    );
}

fn pool_path(host_path: &str) -> String {
    host_path
        .split(".hosts[")
        .next()
        .unwrap_or(host_path)
        .to_string()
}

fn check_min(
    v: &mut Checker,
    path: &str,
    what: &str,
    size: &Size,
    (cpu, mem, disk): (u32, u32, u32),
) {
    if size.vcpu < cpu || size.memory_gib < mem {
        v.error(
            path,
            format!(
                "a {what} needs at least {cpu} vCPU and {mem} GiB of memory, not {} vCPU and {} GiB",
                size.vcpu, size.memory_gib
            ),
            &format!("set `vcpu: {}` and `memoryGiB: {}` or more", cpu.max(size.vcpu), mem.max(size.memory_gib)),
        );
    }
    if size.os_disk_gib < disk {
        v.error(
            &format!("{path}.osDiskGiB"),
            format!(
                "a {what} needs an OS disk of at least {disk} GiB, not {}",
                size.os_disk_gib
            ),
            &format!("set `osDiskGiB: {disk}`"),
        );
    }
}
