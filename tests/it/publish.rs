//! `kubeprint publish` against real Git servers: bare repositories over `file://`, `git
//! daemon` and a local `sshd` with key authentication.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::support::git::{Env, Server, TODAY, edit, free_port, text, wait_for_port};
use kubeprint::git::{DisplaySafeUrl, Identity};
use kubeprint::publish::{self, Options, Outcome, Target};

const CLUSTERS: [&str; 3] = ["acme-prod", "globex-dev", "initech-prod"];

fn publish_cmd(env: &Env, fleet: &Path, template: &str, extra: &[&str]) -> (String, String, i32) {
    let out = env
        .kubeprint(fleet)
        .args([
            "publish",
            "--today",
            TODAY,
            "--remote-template",
            template,
            "--cache",
        ])
        .arg(env.path().join("cache"))
        .args(extra)
        .output()
        .unwrap();
    text(&out)
}

fn log(env: &Env, bare: &Path) -> Vec<String> {
    env.run_git(bare, &["log", "--format=%H %s", "main"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn all_bares(env: &Env) -> Vec<PathBuf> {
    CLUSTERS.iter().map(|c| env.bare(c)).collect()
}

#[test]
fn file_remote_first_publish_noop_change_and_hand_edits() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let bares = all_bares(&env);
    let template = format!("file://{}/git/{{cluster}}.git", env.path().display());

    // First publish: one commit per cluster, with the blueprint revision and trailers.
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.matches(": pushed ").count(), 3, "{stdout}");
    let blueprint = env
        .run_git(&fleet, &["rev-parse", "HEAD"])
        .trim()
        .to_string();
    for bare in &bares {
        let msg = env.run_git(bare, &["log", "-1", "--format=%B", "main"]);
        assert!(
            msg.starts_with(&format!(
                "Render blueprint {}: Example fleet\n",
                &blueprint[..7]
            )),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("Blueprint-Commit: {blueprint}\n")),
            "{msg}"
        );
        assert!(
            msg.contains("Kubeprint-Version: ") && msg.contains("Inputs-Hash: "),
            "{msg}"
        );
        let author = env.run_git(bare, &["log", "-1", "--format=%an <%ae>", "main"]);
        assert_eq!(author.trim(), "kubeprint <kubeprint@localhost>");
        let files = env.run_git(bare, &["ls-tree", "-r", "--name-only", "main"]);
        assert!(
            files.lines().any(|f| f == "kubeprint.lock")
                && files.lines().any(|f| f == "apps/root.yaml")
        );
    }

    // Nothing changed: no commit, nothing pushed.
    let (stdout, _, code) = publish_cmd(&env, &fleet, &template, &["--output", "json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["summary"]["unchanged"], 3, "{stdout}");
    assert!(bares.iter().all(|b| log(&env, b).len() == 1));

    // A new blueprint commit that changes no rendered file: only the lock's revision would
    // differ, which is no change.
    env.commit_all(&fleet, "Touch nothing");
    let (stdout, _, code) = publish_cmd(&env, &fleet, &template, &[]);
    assert_eq!(
        (code, stdout.matches(": unchanged").count()),
        (0, 3),
        "{stdout}"
    );
    assert!(bares.iter().all(|b| log(&env, b).len() == 1));

    // A change to one cluster: one new commit there, the others untouched.
    let spec = fleet.join("overlays/clusters/acme-prod.yaml");
    edit(&spec, "retention: 45d", "retention: 60d");
    env.commit_all(&fleet, "Keep acme's metrics 60 days");
    let (stdout, stderr, code) = publish_cmd(
        &env,
        &fleet,
        &template,
        &["--author", "CI Bot <ci@example.net>"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("acme-prod: pushed ") && stdout.contains("globex-dev: unchanged"),
        "{stdout}"
    );
    let acme = &bares[0];
    let history = log(&env, acme);
    assert_eq!(history.len(), 2);
    assert!(
        history[0].ends_with(": Keep acme's metrics 60 days"),
        "{history:?}"
    );
    assert!(
        env.run_git(acme, &["log", "-1", "--format=%B", "main"])
            .contains("changed values/kube-prometheus-stack.yaml")
    );
    assert_eq!(
        env.run_git(acme, &["log", "-1", "--format=%an <%ae>", "main"])
            .trim(),
        "CI Bot <ci@example.net>"
    );
    assert_eq!(log(&env, &bares[1]).len(), 1);

    // Someone edits the rendered repository by hand.
    let clone = env.path().join("clone");
    env.run_git(
        env.path(),
        &[
            "clone",
            "-q",
            acme.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    edit(
        &clone.join("values/cilium.yaml"),
        "\n",
        "\n# tuned by hand\n",
    );
    env.commit_all(&clone, "Hand edit");
    env.run_git(&clone, &["push", "-q", "origin", "main"]);
    let target = Target {
        cluster: "acme-prod".into(),
        url: DisplaySafeUrl::new(format!("file://{}", acme.display())),
        branch: "main".into(),
    };
    // What the remote holds now, read as the watcher would: its head against its own lock.
    let opts = Options::new(env.path().join("drift-cache"));
    let cache = kubeprint::git::open_cache(&opts.cache_dir.join("acme-prod.git")).unwrap();
    let head = kubeprint::git::fetch(&cache, &target.url, &target.branch, &opts.credentials)
        .unwrap()
        .unwrap();
    let edits = publish::hand_edits(&kubeprint::git::read_commit(&cache, head).unwrap());
    assert_eq!(
        edits.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
        ["values/cilium.yaml"]
    );
    edit(&spec, "retention: 60d", "retention: 90d");
    env.commit_all(&fleet, "Keep acme's metrics 90 days");
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &[]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("acme-prod: refused (hand edits)"),
        "{stdout}"
    );
    assert!(stderr.contains("values/cilium.yaml (modified)"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(log(&env, acme).len(), 3, "kubeprint made no commit");

    // --force overwrites with a new commit: the hand edit stays in the history.
    let (stdout, stderr, code) =
        publish_cmd(&env, &fleet, &template, &["--force", "--output", "json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["clusters"]["acme-prod"]["result"], "pushed");
    assert_eq!(
        json["clusters"]["acme-prod"]["overwritten"][0]["path"],
        "values/cilium.yaml"
    );
    let history = log(&env, acme);
    assert_eq!(history.len(), 4);
    assert!(history[1].ends_with(" Hand edit"), "{history:?}");
    let cilium = env.run_git(acme, &["show", "main:values/cilium.yaml"]);
    assert!(!cilium.contains("tuned by hand"));
}

/// Starts `git daemon` on a free loopback port serving `<tmp>/git`.
fn git_daemon(env: &Env) -> (Server, u16) {
    let port = free_port();
    let base = env.path().join("git");
    let child = env
        .git(env.path())
        .args([
            "daemon",
            "--reuseaddr",
            "--enable=receive-pack",
            "--export-all",
            "--listen=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(&base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("`git daemon` must be installed (it is part of git)");
    let server = Server(child);
    wait_for_port(port);
    (server, port)
}

#[test]
fn git_daemon_first_publish_noop_and_change() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let bares = all_bares(&env);
    let (_daemon, port) = git_daemon(&env);
    let template = format!("git://127.0.0.1:{port}/{{cluster}}.git");

    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.matches(": pushed ").count(), 3, "{stdout}");
    let (stdout, _, code) = publish_cmd(&env, &fleet, &template, &[]);
    assert_eq!(
        (code, stdout.matches(": unchanged").count()),
        (0, 3),
        "{stdout}"
    );
    edit(
        &fleet.join("overlays/clusters/globex-dev.yaml"),
        "name: globex-dev",
        "name: globex-dev\n# a comment changes the inputs hash",
    );
    env.commit_all(&fleet, "Comment");
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &["--cluster", "globex-dev"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("globex-dev: pushed"), "{stdout}");
    assert_eq!(log(&env, &bares[1]).len(), 2);
    assert_eq!(log(&env, &bares[0]).len(), 1);
}

fn render(fleet: &Path, cluster: &str) -> kubeprint::tree::RenderedTree {
    let sources = kubeprint::load::load_dir(fleet).unwrap();
    let today: jiff::civil::Date = TODAY.parse().unwrap();
    let checked = kubeprint::fleet::check(&sources, today).unwrap();
    kubeprint::fleet::render_cluster(&checked, cluster).unwrap()
}

/// Another pipeline publishes between our fetch and our push: ours is rejected, fetched
/// again, rebuilt on the new head and pushed; both commits are in the history.
fn concurrent_push_is_retried(env: &Env, url: String, bare: &Path) {
    let fleet = env.fleet_repo("fleet");
    let ours = render(&fleet, "acme-prod");
    edit(
        &fleet.join("overlays/clusters/acme-prod.yaml"),
        "retention: 45d",
        "retention: 50d",
    );
    env.commit_all(&fleet, "The other pipeline's change");
    let theirs = render(&fleet, "acme-prod");
    assert_ne!(ours, theirs);

    let target = Target {
        cluster: "acme-prod".into(),
        url: DisplaySafeUrl::new(url),
        branch: "main".into(),
    };
    let time = Some(git2::Time::new(1_795_000_000, 0));
    let mut other = Options::new(env.path().join("other-cache"));
    other.time = time;
    other.author = Identity {
        name: "Other".into(),
        email: "other@example.net".into(),
    };
    other.committer = other.author.clone();
    let first = publish::publish(&target, &theirs, &other).unwrap();
    assert!(matches!(first, Outcome::Pushed { attempts: 1, .. }));

    let mut opts = Options::new(env.path().join("cache"));
    opts.time = time;
    let (hook_target, hook_tree, hook_opts) = (target.clone(), ours.clone(), other.clone());
    let hook_theirs = theirs.clone();
    opts.before_push = Some(Arc::new(move |_cluster, attempt| {
        if attempt == 1 {
            // The other pipeline lands a change first (here: its tree, then ours, then its
            // again, so that the remote truly moved).
            let r1 = publish::publish(&hook_target, &hook_tree, &hook_opts).unwrap();
            assert!(matches!(r1, Outcome::Pushed { .. }));
            let r2 = publish::publish(&hook_target, &hook_theirs, &hook_opts).unwrap();
            assert!(matches!(r2, Outcome::Pushed { .. }));
        }
    }));
    let outcome = publish::publish(&target, &ours, &opts).unwrap();
    let Outcome::Pushed {
        commit,
        attempts,
        overwritten,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!((attempts, overwritten.len()), (2, 0));
    let history = log(env, bare);
    assert_eq!(history.len(), 4, "{history:?}");
    assert!(history[0].starts_with(&commit));
    let authors = env.run_git(bare, &["log", "--format=%an", "main"]);
    assert_eq!(
        authors.lines().collect::<Vec<_>>(),
        ["kubeprint", "Other", "Other", "Other"]
    );
}

#[test]
fn concurrent_push_over_file_is_retried() {
    let env = Env::new();
    let bare = env.bare("acme-prod");
    concurrent_push_is_retried(&env, format!("file://{}", bare.display()), &bare);
}

#[test]
fn concurrent_push_over_git_daemon_is_retried() {
    let env = Env::new();
    let bare = env.bare("acme-prod");
    let (_daemon, port) = git_daemon(&env);
    concurrent_push_is_retried(&env, format!("git://127.0.0.1:{port}/acme-prod.git"), &bare);
}

#[test]
fn an_unreachable_remote_fails_alone() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let bares = all_bares(&env);
    // Per-spec URLs: two local repositories and one port where nothing listens.
    let dead = free_port();
    for (cluster, bare) in CLUSTERS.iter().zip(&bares) {
        let url = if *cluster == "globex-dev" {
            format!("git://127.0.0.1:{dead}/globex-dev.git")
        } else {
            format!("file://{}", bare.display())
        };
        let spec = fleet.join(format!("overlays/clusters/{cluster}.yaml"));
        let text = std::fs::read_to_string(&spec).unwrap();
        let start = text.find("repo:\n  url: ").unwrap() + "repo:\n  url: ".len();
        let end = start + text[start..].find('\n').unwrap();
        std::fs::write(&spec, format!("{}{url}{}", &text[..start], &text[end..])).unwrap();
    }
    env.commit_all(&fleet, "Local repositories");
    let out = env
        .kubeprint(&fleet)
        .args(["publish", "--today", TODAY, "--output", "json", "--cache"])
        .arg(env.path().join("cache"))
        .output()
        .unwrap();
    let (stdout, stderr, code) = text(&out);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["clusters"]["acme-prod"]["result"], "pushed");
    assert_eq!(json["clusters"]["initech-prod"]["result"], "pushed");
    assert_eq!(json["clusters"]["globex-dev"]["result"], "failed");
    let reason = json["clusters"]["globex-dev"]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!(
            "cannot reach `git://127.0.0.1:{dead}/globex-dev.git`"
        )),
        "{reason}"
    );
    assert!(stderr.contains("error: cluster `globex-dev`"), "{stderr}");
    assert!(
        stderr.contains("a re-run publishes what failed"),
        "{stderr}"
    );
    assert_eq!(log(&env, &bares[0]).len(), 1);
}

/// An HTTP server that answers every request with 401, asking for Basic credentials.
fn unauthorized_http_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    port
}

#[test]
fn a_wrong_token_is_refused_without_showing_it() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let port = unauthorized_http_server();
    let template = format!("http://bot:url-secret-123@127.0.0.1:{port}/{{cluster}}.git");
    let out = env
        .kubeprint(&fleet)
        .args([
            "publish",
            "--today",
            TODAY,
            "--cluster",
            "acme-prod",
            "--remote-template",
            &template,
            "--cache",
        ])
        .arg(env.path().join("cache"))
        .env("KUBEPRINT_GIT_TOKEN", "tok-very-secret-456")
        .env("KUBEPRINT_LOG", "trace")
        .output()
        .unwrap();
    let (stdout, stderr, code) = text(&out);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("authentication to `http://bot:***@127.0.0.1"),
        "{stderr}"
    );
    for secret in ["tok-very-secret-456", "url-secret-123"] {
        assert!(
            !out.stdout
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "stdout shows {secret}"
        );
        assert!(
            !out.stderr
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "stderr shows {secret}"
        );
    }
}

/// A `sshd` of the test's own on a free loopback port, as the current user, with a host key
/// and an authorized key in a temp directory; the host key goes into HOME's known_hosts.
struct Sshd {
    _server: Server,
    port: u16,
    user: String,
    key: PathBuf,
}

fn sshd(env: &Env) -> Sshd {
    let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "sshd is not installed: `.ci/run` must install the Debian package `openssh-server`"
            )
        });
    let dir = env.path().join("sshd");
    std::fs::create_dir_all(&dir).unwrap();
    let keygen = |file: &Path| {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
            .arg(file)
            .status()
            .expect("ssh-keygen (openssh-client) must be installed");
        assert!(st.success());
    };
    let host_key = dir.join("host_key");
    let client_key = dir.join("client_key");
    keygen(&host_key);
    keygen(&client_key);
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    let port = free_port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nLogLevel VERBOSE\n",
            hk = host_key.display(),
            d = dir.display()
        ),
    )
    .unwrap();
    // sshd refuses to start without its privilege separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let child = Command::new(&sshd)
        .arg("-D")
        .arg("-f")
        .arg(&config)
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    wait_for_port(port);
    let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
    let mut parts = host_pub.split_whitespace();
    let (kind, key) = (parts.next().unwrap(), parts.next().unwrap());
    std::fs::write(
        env.home().join(".ssh/known_hosts"),
        format!("[127.0.0.1]:{port} {kind} {key}\n"),
    )
    .unwrap();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    Sshd {
        _server: server,
        port,
        user,
        key: client_key,
    }
}

#[test]
fn ssh_with_a_key_file_and_a_wrong_key() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let bares = all_bares(&env);
    let server = sshd(&env);
    let template = format!(
        "ssh://{}@127.0.0.1:{}{}/git/{{cluster}}.git",
        server.user,
        server.port,
        env.path().display()
    );
    let key = server.key.to_str().unwrap();

    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &["--ssh-key", key]);
    let log_file = env.path().join("sshd/sshd.log");
    let sshd_log = std::fs::read_to_string(&log_file).unwrap_or_default();
    assert_eq!(code, 0, "{stdout}\n{stderr}\nsshd log:\n{sshd_log}");
    assert_eq!(stdout.matches(": pushed ").count(), 3, "{stdout}");
    assert!(bares.iter().all(|b| log(&env, b).len() == 1));

    // The key from the environment, nothing changed: no commit.
    let out = env
        .kubeprint(&fleet)
        .args([
            "publish",
            "--today",
            TODAY,
            "--remote-template",
            &template,
            "--cache",
        ])
        .arg(env.path().join("cache"))
        .env("KUBEPRINT_SSH_KEY", key)
        .output()
        .unwrap();
    let (stdout, stderr, code) = text(&out);
    assert_eq!(
        (code, stdout.matches(": unchanged").count()),
        (0, 3),
        "{stdout}\n{stderr}"
    );

    // A key the server does not accept: a clear error, and the key's path is never shown.
    let wrong = env.path().join("wrong-key-file-789");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&wrong)
        .status()
        .unwrap();
    assert!(st.success());
    edit(
        &fleet.join("overlays/clusters/acme-prod.yaml"),
        "retention: 45d",
        "retention: 46d",
    );
    env.commit_all(&fleet, "Change");
    let out = env
        .kubeprint(&fleet)
        .args([
            "publish",
            "--today",
            TODAY,
            "--cluster",
            "acme-prod",
            "--remote-template",
            &template,
            "--cache",
        ])
        .arg(env.path().join("cache"))
        .env("KUBEPRINT_SSH_KEY", &wrong)
        .env("KUBEPRINT_LOG", "trace")
        .output()
        .unwrap();
    let (stdout, stderr, code) = text(&out);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(stderr.contains("authentication to `ssh://"), "{stderr}");
    assert!(stderr.contains("tried: ssh key file"), "{stderr}");
    let secret = "wrong-key-file-789";
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "the key path leaked:\n{stdout}\n{stderr}"
    );
    assert_eq!(log(&env, &bares[0]).len(), 1);
}

/// The race on the server's side: a pre-receive hook lands another push after ours was
/// accepted for sending, so the server refuses to update the ref ("failed to update ref");
/// kubeprint fetches, finds no hand edit, rebuilds its commit on the new head and pushes.
#[test]
fn a_ref_update_refused_by_the_server_is_retried() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let bare = env.bare("acme-prod");
    let (_daemon, port) = git_daemon(&env);
    let template = format!("git://127.0.0.1:{port}/{{cluster}}.git");
    let (_, stderr, code) = publish_cmd(&env, &fleet, &template, &["--cluster", "acme-prod"]);
    assert_eq!(code, 0, "{stderr}");

    // Another writer's commit (no file changed, so no hand edit), pushed from inside our
    // push's pre-receive hook: our ref update then fails on the server.
    let clone = env.path().join("other");
    env.run_git(
        env.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    env.run_git(
        &clone,
        &["commit", "-q", "--allow-empty", "-m", "Another writer"],
    );
    let marker = env.path().join("hook-ran");
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ncat >/dev/null\nif [ ! -e '{marker}' ]; then\n  touch '{marker}'\n  env -i PATH=\"$PATH\" HOME='{home}' GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 git -C '{clone}' push -q origin HEAD:main >&2\nfi\nexit 0\n",
            marker = marker.display(),
            home = env.home().display(),
            clone = clone.display()
        ),
    )
    .unwrap();
    assert!(
        Command::new("chmod")
            .arg("755")
            .arg(&hook)
            .status()
            .unwrap()
            .success()
    );

    edit(
        &fleet.join("overlays/clusters/acme-prod.yaml"),
        "retention: 45d",
        "retention: 47d",
    );
    env.commit_all(&fleet, "Raced change");
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &["--cluster", "acme-prod"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(marker.exists(), "the hook ran");
    assert!(
        stdout.contains("acme-prod: pushed") && stdout.contains("after 2 attempts"),
        "{stdout}"
    );
    let history = log(&env, &bare);
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(
        history[0].ends_with(": Raced change") && history[1].ends_with(" Another writer"),
        "{history:?}"
    );
}

/// A server that declines the push (a hook, a protected branch) without anyone having
/// pushed: no endless retry, a clear error naming the refusal.
#[test]
fn a_push_declined_by_the_server_fails_clearly() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let bare = env.bare("acme-prod");
    let (_daemon, port) = git_daemon(&env);
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\ncat >/dev/null\necho 'this branch is protected' >&2\nexit 1\n",
    )
    .unwrap();
    assert!(
        Command::new("chmod")
            .arg("755")
            .arg(&hook)
            .status()
            .unwrap()
            .success()
    );
    let template = format!("git://127.0.0.1:{port}/{{cluster}}.git");
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &["--cluster", "acme-prod"]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "`git://127.0.0.1:{port}/acme-prod.git` refused the update of `refs/heads/main`"
        )),
        "{stderr}"
    );
    assert!(
        env.git(&bare)
            .args(["rev-parse", "--verify", "-q", "main"])
            .output()
            .unwrap()
            .stdout
            .is_empty()
    );
}
