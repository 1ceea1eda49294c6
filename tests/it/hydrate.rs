//! `kubeprint hydrate`, `check --hydrate` and `diff --hydrate` with the real `helm` and the
//! vendored charts; and `check`'s secrets scan through the binary.

use crate::support::{Fixture, TODAY};

#[test]
fn check_finds_a_secret_inside_a_list() {
    let f = Fixture::example();
    f.write(
        "blueprints/metallb/manifests/extra.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: leaked, namespace: metallb-system}\n  stringData: {password: hunter2}\n",
    );
    let render = f.run(&["render", "--today", TODAY]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    let out = f.run(&["check", "rendered"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("manifests/metallb/extra.yaml:")
                && l.contains("Secret metallb-system/leaked")
                && l.contains("plaintext")),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("hunter2"));
}
