//! `kubeprint diff` on a git copy of the example fleet: one blueprint value changed.

use std::path::Path;

use crate::support::git::{Env, TODAY, edit, text};

/// The example fleet committed, then one blueprint value changed and committed.
fn two_revisions(env: &Env) -> (std::path::PathBuf, String, String) {
    let fleet = env.fleet_repo("fleet");
    let base = env
        .run_git(&fleet, &["rev-parse", "HEAD"])
        .trim()
        .to_string();
    edit(
        &fleet.join("blueprints/cilium/blueprint.yaml"),
        "    ui:\n      enabled: true",
        "    ui:\n      enabled: false",
    );
    let head = env.commit_all(&fleet, "Turn off the Hubble UI");
    (fleet, base, head)
}

fn diff(env: &Env, fleet: &Path, args: &[&str]) -> (String, String, i32) {
    let out = env
        .kubeprint(fleet)
        .args(["diff", "--today", TODAY])
        .args(args)
        .output()
        .unwrap();
    text(&out)
}

/// Commit ids depend on the example fleet's bytes: show them as `<base>` and `<head>`.
fn neutral(s: &str, base: &str, head: &str) -> String {
    s.replace(base, "<base>")
        .replace(head, "<head>")
        .replace(&base[..7], "<base>")
        .replace(&head[..7], "<head>")
}

#[test]
fn one_blueprint_value_changes_every_cluster_the_same_way() {
    let env = Env::new();
    let (fleet, base, head) = two_revisions(&env);

    let (stdout, stderr, code) = diff(&env, &fleet, &["--base", "main~1", "--head", "main"]);
    assert_eq!(code, 1, "{stderr}");
    insta::assert_snapshot!("text", neutral(&stdout, &base, &head));

    let (stdout, _, code) = diff(&env, &fleet, &["--base", "main~1", "--output", "markdown"]);
    assert_eq!(code, 1);
    insta::assert_snapshot!("markdown", neutral(&stdout, &base, &head));

    let (stdout, _, code) = diff(
        &env,
        &fleet,
        &["--base", &base, "--head", &head, "--output", "json"],
    );
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["summary"]["distinctChanges"], 1);
    assert_eq!(json["groups"][0]["clusters"].as_array().unwrap().len(), 3);
    insta::assert_snapshot!("json", neutral(&stdout, &base, &head));
}

#[test]
fn nothing_changed_exits_0() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    env.commit_all(&fleet, "Empty");
    let (stdout, stderr, code) = diff(&env, &fleet, &["--base", "main~1", "--output", "markdown"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("No cluster changes (3 cluster(s) compared)."),
        "{stdout}"
    );
}

#[test]
fn an_unknown_revision_is_bad_input() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let (_, stderr, code) = diff(&env, &fleet, &["--base", "no-such-branch"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("error: base `no-such-branch`"), "{stderr}");
    assert!(
        stderr.contains("hint: is `no-such-branch` a commit, branch or tag"),
        "{stderr}"
    );
}

#[test]
fn an_invalid_fleet_names_its_side() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    edit(
        &fleet.join("overlays/clusters/acme-prod.yaml"),
        "tier: production",
        "tier: platinum",
    );
    env.commit_all(&fleet, "Break it");
    let (_, stderr, code) = diff(&env, &fleet, &["--base", "main~1", "--head", "main"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("the fleet at head `main` cannot be rendered"),
        "{stderr}"
    );
    assert!(
        stderr.contains("overlays/clusters/acme-prod.yaml:"),
        "{stderr}"
    );
}

#[test]
fn the_pull_request_comment_is_cut_with_a_note() {
    let env = Env::new();
    let (fleet, _, _) = two_revisions(&env);
    edit(
        &fleet.join("blueprints/metallb/blueprint.yaml"),
        "syncWave: -80",
        "syncWave: -85",
    );
    env.commit_all(&fleet, "MetalLB earlier");
    let (full, _, _) = diff(&env, &fleet, &["--base", "main~2", "--output", "markdown"]);
    assert!(!full.contains("Truncated") && full.len() > 1500, "{full}");
    let (stdout, _, code) = diff(
        &env,
        &fleet,
        &[
            "--base",
            "main~2",
            "--output",
            "markdown",
            "--max-chars",
            "1500",
        ],
    );
    assert_eq!(code, 1);
    assert!(stdout.len() <= 1500, "{} chars", stdout.len());
    assert!(
        stdout.contains("> **Truncated**: the comment would pass 1500 characters"),
        "{stdout}"
    );
    assert!(
        stdout.contains("<details>") && stdout.contains("</details>"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| # | clusters |"),
        "the summary table comes first: {stdout}"
    );
}

/// A change to one cluster's spec re-renders that cluster only (the others have the same
/// inputs hash on both sides) and reports the others unchanged.
#[test]
fn a_change_to_one_cluster_shows_that_cluster_only() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    edit(
        &fleet.join("overlays/clusters/acme-prod.yaml"),
        "retention: 45d",
        "retention: 60d",
    );
    env.commit_all(&fleet, "acme-prod keeps metrics longer");
    let (stdout, stderr, code) = diff(&env, &fleet, &["--base", "main~1", "--output", "json"]);
    assert_eq!(code, 1, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let groups = json["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{stdout}");
    assert_eq!(groups[0]["clusters"], serde_json::json!(["acme-prod"]));
    let unchanged: Vec<&str> = json["unchanged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(unchanged, ["globex-dev", "initech-prod"], "{stdout}");
    assert!(stdout.contains("60d"), "{stdout}");
}

mod pair {
    //! `load::load_git_pair` shares what the head read with the base wherever the git ids
    //! are the same: its pair must be the two revisions read alone, for any edits, errors
    //! included.

    use std::path::Path;

    use kubeprint::load;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    use crate::support::git::Env;

    /// Edits that leave the fleet readable; 7 and 8 are errors, drawn more rarely.
    const EDITS: usize = 7;

    /// Edit `e` of the example fleet's working tree: a cluster spec, a file of a cluster's
    /// directory, a tier, a blueprint manifest, a cluster removed, a new cluster directory,
    /// a file that is no input, a file that is not text (an error), a link (an error).
    fn apply(dir: &Path, e: usize) {
        let append = |file: &str, line: &str| {
            let path = dir.join(file);
            let mut text = std::fs::read_to_string(&path).unwrap();
            text.push_str(line);
            std::fs::write(path, text).unwrap();
        };
        match e {
            0 => append("overlays/clusters/acme-prod.yaml", "# edited\n"),
            1 => append(
                "overlays/clusters/acme-prod/talos-secrets.sops.yaml",
                "# edited\n",
            ),
            2 => append("overlays/tiers/production.yaml", "# edited\n"),
            3 => append("blueprints/cilium/blueprint.yaml", "# edited\n"),
            4 => {
                std::fs::remove_dir_all(dir.join("overlays/clusters/globex-dev")).unwrap();
                std::fs::remove_file(dir.join("overlays/clusters/globex-dev.yaml")).unwrap();
            }
            5 => {
                std::fs::create_dir_all(dir.join("overlays/clusters/new-one")).unwrap();
                std::fs::write(dir.join("overlays/clusters/new-one/notes.yaml"), "a: 1\n").unwrap();
            }
            6 => std::fs::write(dir.join("overlays/README.md"), "not an input\n").unwrap(),
            7 => std::fs::write(dir.join("overlays/tiers/broken.yaml"), b"a: \xff\n").unwrap(),
            _ => std::os::unix::fs::symlink(
                "production.yaml",
                dir.join("overlays/tiers/linked.yaml"),
            )
            .unwrap(),
        }
    }

    /// The outcome of a load, comparable: the sources, or the error's text and kind.
    fn outcome(
        r: load::Result<kubeprint::model::Sources>,
    ) -> Result<kubeprint::model::Sources, String> {
        r.map_err(|e| format!("{e} / {e:?}"))
    }

    #[test]
    fn reading_both_revisions_at_once_is_reading_each_alone() {
        let env = Env::new();
        let pristine = env.fleet_repo("pristine");
        let config = Config {
            cases: 16,
            failure_persistence: None,
            ..Config::default()
        };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[3; 32]);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let case = std::cell::Cell::new(0);
        // Per side: the edits, and 0 (a non-text file) or 1 (a link) for an error, 1 in 4.
        let side = (0u32..(1 << EDITS), 0u32..8);
        let result = runner.run(&(side.clone(), side), |((b, be), (h, he))| {
            case.set(case.get() + 1);
            let repo = env.path().join(format!("case-{}", case.get()));
            let st = std::process::Command::new("cp")
                .arg("-a")
                .arg(&pristine)
                .arg(&repo)
                .status()
                .unwrap();
            assert!(st.success());
            let commit = |edits: u32, error: u32| {
                env.run_git(&repo, &["checkout", "-q", "--detach", "main"]);
                env.run_git(&repo, &["clean", "-qfdx"]);
                for e in 0..EDITS {
                    if edits & (1 << e) != 0 {
                        apply(&repo, e);
                    }
                }
                if error < 2 {
                    apply(&repo, 7 + error as usize);
                }
                env.commit_all(&repo, &format!("edits {edits:b}, error {error}"))
            };
            let (base, head) = (commit(b, be), commit(h, he));
            let (pb, ph) = load::load_git_pair(&repo, &base, &head, "");
            let (pb, ph) = (outcome(pb), outcome(ph));
            prop_assert_eq!(&pb, &outcome(load::load_git(&repo, &base, "")));
            prop_assert_eq!(&ph, &outcome(load::load_git(&repo, &head, "")));
            // An unknown base: its error, and the head read all the same.
            let (ub, uh) = load::load_git_pair(&repo, "no-such-rev", &head, "");
            prop_assert_eq!(
                outcome(ub),
                outcome(load::load_git(&repo, "no-such-rev", ""))
            );
            prop_assert_eq!(outcome(uh), ph);
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }
}
