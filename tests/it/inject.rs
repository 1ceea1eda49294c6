//! Spec values that would become YAML, CSV, JMESPath or a Git ref (issue 11, items 4 and
//! 9): `validate`, and so `render`, refuse each at its `file:line:column`
//! with a hint, and nothing is written. The templates' side (what a value can do when
//! validation is bypassed) is tested in kubeprint-core (`render::inject_tests`).

use crate::support::{Fixture, TODAY};

const INITECH: &str = "overlays/clusters/initech-prod.yaml";

/// `file:line:` of the line of `needle` in the fixture's `file`.
fn line_of(f: &Fixture, file: &str, needle: &str) -> String {
    let text = f.read(file);
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in {file}"));
    format!("{file}:{}:", text[..at].matches('\n').count() + 1)
}

/// `validate` and `render` refuse the fixture: exit 2, an error at `at` whose message
/// contains `message`, a hint, and no output.
fn assert_refused(f: &Fixture, at: &str, message: &str) {
    let out = f.run(&["validate", "--today", TODAY]);
    assert_eq!(out.code, 2, "validate passed:\n{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .position(|l| l.starts_with(&format!("error: {at}")) && l.contains(message))
        .unwrap_or_else(|| panic!("no `error: {at}…{message}` in:\n{}", out.stderr));
    let next = out.stderr.lines().nth(line + 1).unwrap_or_default();
    assert!(next.starts_with("  hint: "), "no hint:\n{}", out.stderr);
    let out = f.run(&["render", "--today", TODAY]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!f.out().exists(), "a refused render wrote files");
}

#[test]
fn a_groups_claim_that_writes_a_cluster_admin_binding_is_refused() {
    let f = Fixture::example();
    // With Argo CD off (its values template broke on the value), this rendered
    // `manifests/sso-rbac/pwn.yaml` binding `system:unauthenticated` to cluster-admin.
    let evil = r#"groups\n#! file: pwn.yaml\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: pwn}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: \"system:unauthenticated\"}]\n---\n#"#;
    f.edit(
        INITECH,
        "  adminGroup: initech-platform-admins\n",
        &format!("  adminGroup: initech-platform-admins\n  groupsClaim: \"{evil}\"\n"),
    );
    f.edit(
        INITECH,
        "kubeContext: admin@initech-prod\n",
        "kubeContext: admin@initech-prod\ncomponents:\n  argo-cd:\n    enabled: false\n",
    );
    let at = line_of(&f, INITECH, "groupsClaim:");
    assert_refused(&f, &at, "is not a claim name");
}

#[test]
fn an_issuer_that_turns_on_anonymous_access_in_argo_cd_is_refused() {
    let f = Fixture::example();
    f.edit(
        INITECH,
        "  issuer: https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0\n",
        "  issuer: \"https://login.example.net/v2.0\\n    users.anonymous.enabled: \\\"true\\\"\\n    x: |\"\n",
    );
    let at = line_of(&f, INITECH, "issuer:");
    assert_refused(&f, &at, "OIDC issuer");
}

#[test]
fn an_admin_group_that_adds_an_allow_all_line_to_argo_cds_policy_is_refused() {
    let f = Fixture::example();
    f.edit(
        INITECH,
        "  adminGroup: initech-platform-admins\n",
        "  adminGroup: \"initech-platform-admins, role:admin\\n      p, role:readonly, *, *, *, allow\\n      #\"\n",
    );
    let at = line_of(&f, INITECH, "adminGroup:");
    assert_refused(&f, &at, "is not a group name");
}

#[test]
fn an_admin_group_that_makes_everybody_a_grafana_admin_is_refused() {
    let f = Fixture::example();
    f.edit(
        INITECH,
        "  adminGroup: initech-platform-admins\n",
        "  adminGroup: \"x') || contains(['a'], 'a\"\n",
    );
    let at = line_of(&f, INITECH, "adminGroup:");
    assert_refused(&f, &at, "is not a group name");
}

#[test]
fn branch_names_git_would_refuse_are_refused_by_validate() {
    for branch in [
        "\"a b\"",
        "\"main:refs/tags/x\"",
        "\"*\"",
        "\"-main\"",
        "main.lock",
    ] {
        let f = Fixture::example();
        f.edit(
            INITECH,
            "  branch: main\n",
            &format!("  branch: {branch}\n"),
        );
        let at = line_of(&f, INITECH, "  branch:");
        assert_refused(&f, &at, "is not a valid branch name");
    }
    // A name git takes passes.
    let f = Fixture::example();
    f.edit(INITECH, "  branch: main\n", "  branch: release/2026-11\n");
    let out = f.run(&["validate", "--today", TODAY]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// Item 5: a plaintext Talos bundle

const BUNDLE: &str = "overlays/clusters/acme-prod/talos-secrets.sops.yaml";

/// The example bundle's structure with clear-text values and no `sops` metadata, as a
/// careless `sops --decrypt --in-place` leaves it.
fn plaintext_bundle() -> String {
    // A made-up value of a token's shape; no real secret.
    "cluster:\n  id: aWQtbm90LWEtc2VjcmV0\n  secret: not-a-secret-but-plain\nsecrets:\n  bootstraptoken: abcdef.0123456789abcdef\n".into()
}

#[test]
fn a_plaintext_talos_bundle_is_refused_by_validate_render_and_check() {
    let f = Fixture::example();
    // Render first, to have a tree for `check`.
    assert_eq!(f.run(&["render", "--today", TODAY]).code, 0);
    f.write(BUNDLE, &plaintext_bundle());
    let out = f.run(&["validate", "--today", TODAY]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "error: {BUNDLE}:2:3: `{BUNDLE}` has no `sops` metadata: it is not encrypted, `cluster.id` is in clear text\n  hint: "
        )),
        "{}",
        out.stderr
    );
    for value in [
        "aWQtbm90LWEtc2VjcmV0",
        "not-a-secret-but-plain",
        "abcdef.0123456789abcdef",
    ] {
        assert!(!out.stderr.contains(value) && !out.stdout.contains(value));
    }
    // Render refuses and leaves the previous tree as it was.
    let before = f.read("rendered/acme-prod/talos/secrets.sops.yaml");
    let out = f.run(&["render", "--today", TODAY]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(f.read("rendered/acme-prod/talos/secrets.sops.yaml"), before);
    // `check` of a rendered tree no longer skips `*.sops.yaml`.
    f.write(
        "rendered/acme-prod/talos/secrets.sops.yaml",
        &plaintext_bundle(),
    );
    let out = f.run(&["check", "rendered"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains(
            "talos/secrets.sops.yaml:2:3: `talos/secrets.sops.yaml` has no `sops` metadata"
        ),
        "{all}"
    );
    assert!(!all.contains("not-a-secret-but-plain"));
}

#[test]
fn one_value_left_in_clear_text_is_named_by_its_key_path() {
    let f = Fixture::example();
    let bundle = f.read(BUNDLE);
    let at = bundle.find("  secret: ENC[").unwrap();
    let end = at + bundle[at..].find('\n').unwrap();
    f.write(
        BUNDLE,
        &format!("{}  secret: plain-value{}", &bundle[..at], &bundle[end..]),
    );
    let out = f.run(&["validate", "--today", TODAY]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "error: {BUNDLE}:3:3: `{BUNDLE}` holds a value in clear text at `cluster.secret`"
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("plain-value"));
}

#[test]
fn publish_refuses_a_plaintext_bundle_before_it_reaches_a_remote() {
    let f = Fixture::example();
    f.write(BUNDLE, &plaintext_bundle());
    let remotes = f.path().join("remotes");
    let template = format!("file://{}/{{cluster}}.git", remotes.display());
    let cache = f.path().join("cache");
    let out = f.run(&[
        "publish",
        "--today",
        TODAY,
        "--remote-template",
        &template,
        "--cache",
        cache.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("error: {BUNDLE}:2:3:")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("not-a-secret-but-plain"));
    assert!(!remotes.exists(), "publish reached a remote");
}
