//! `kubeprint publish` against real Git servers: bare repositories over `file://`, `git
//! daemon` and a local `sshd` with key authentication.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::support::git::{Env, Server, TODAY, edit, free_port, text, wait_for_port};
use kubeprint::git::{DisplaySafeUrl, Identity};
use kubeprint::publish::{self, Options, Outcome, Target};

const CLUSTERS: [&str; 3] = ["acme-prod", "globex-dev", "initech-prod"];

/// `kubeprint publish --today TODAY --remote-template TEMPLATE --cache <env>/cache`, for the
/// test to complete.
fn publish_command(env: &Env, fleet: &Path, template: &str) -> Command {
    let mut cmd = env.kubeprint(fleet);
    cmd.args([
        "publish",
        "--today",
        TODAY,
        "--remote-template",
        template,
        "--cache",
    ])
    .arg(env.path().join("cache"));
    cmd
}

fn publish_cmd(env: &Env, fleet: &Path, template: &str, extra: &[&str]) -> (String, String, i32) {
    text(
        &publish_command(env, fleet, template)
            .args(extra)
            .output()
            .unwrap(),
    )
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
    std::fs::create_dir_all(&base).unwrap();
    // `git-daemon` itself: `git daemon` runs it as a child, which would outlive the kill
    // of `git` (SIGKILL leaves git no time to stop it) and keep listening.
    let exec_path = env.run_git(env.path(), &["--exec-path"]);
    let child = std::process::Command::new(Path::new(exec_path.trim()).join("git-daemon"))
        .current_dir(env.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.home())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args([
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
    let out = publish_command(&env, &fleet, &template)
        .args(["--cluster", "acme-prod"])
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
    let out = publish_command(&env, &fleet, &template)
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
    let out = publish_command(&env, &fleet, &template)
        .args(["--cluster", "acme-prod"])
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

// ---------------------------------------------------------------------------------------
// Issue 11: every transport updates the remote by compare-and-swap with its hooks run, a
// killed publish leaves nothing locked, a shared cache never lies, tokens stay on HTTPS.

/// Writes an executable hook into a bare repository.
fn hook(bare: &Path, name: &str, script: &str) {
    let path = bare.join("hooks").join(name);
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Whether `commit` is `main` of `bare` or one of its ancestors (false when the remote
/// does not even have it).
fn is_ancestor(env: &Env, bare: &Path, commit: &str) -> bool {
    env.git(bare)
        .args(["merge-base", "--is-ancestor", commit, "main"])
        .status()
        .unwrap()
        .success()
}

fn remote_main(env: &Env, bare: &Path) -> Option<String> {
    let out = env
        .git(bare)
        .args(["ls-remote", ".", "refs/heads/main"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .map(str::to_string)
}

/// The three transports the tests start servers for, as remote templates.
struct Transports {
    _daemon: Server,
    _sshd: Sshd,
    key: PathBuf,
    templates: Vec<(&'static str, String)>,
}

fn transports(env: &Env) -> Transports {
    let (daemon, port) = git_daemon(env);
    let ssh = sshd(env);
    let templates = vec![
        (
            "file",
            format!("file://{}/git/{{cluster}}.git", env.path().display()),
        ),
        ("git", format!("git://127.0.0.1:{port}/{{cluster}}.git")),
        (
            "ssh",
            format!(
                "ssh://{}@127.0.0.1:{}{}/git/{{cluster}}.git",
                ssh.user,
                ssh.port,
                env.path().display()
            ),
        ),
    ];
    Transports {
        key: ssh.key.clone(),
        _daemon: daemon,
        _sshd: ssh,
        templates,
    }
}

/// A `pre-receive` hook that refuses: publish fails (exit 3) and reports nothing pushed,
/// over `file://` (where libgit2 once wrote the ref itself and skipped the hook), `git
/// daemon` and SSH alike.
#[test]
fn a_refusing_pre_receive_hook_fails_the_publish_on_every_transport() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let bare = env.bare("acme-prod");
    hook(
        &bare,
        "pre-receive",
        "#!/bin/sh\ncat >/dev/null\necho 'refused by the policy hook' >&2\nexit 1\n",
    );
    let t = transports(&env);
    for (name, template) in &t.templates {
        let (stdout, stderr, code) = publish_cmd(
            &env,
            &fleet,
            template,
            &[
                "--cluster",
                "acme-prod",
                "--output",
                "json",
                "--ssh-key",
                t.key.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 3, "{name}: {stdout}\n{stderr}");
        let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(json["summary"]["pushed"], 0, "{name}: {stdout}");
        assert_eq!(json["clusters"]["acme-prod"]["result"], "failed", "{name}");
        assert!(
            stderr.contains("refused the update of `refs/heads/main`")
                && stderr.contains("refused by the policy hook"),
            "{name}: {stderr}"
        );
        assert_eq!(remote_main(&env, &bare), None, "{name}: the ref moved");
    }
}

/// How the human clone of [`race`] pushes.
#[derive(Clone, Copy)]
enum Pace {
    Tight,
    Bursts(Duration),
}

/// One round of [`race`]: what each writer claims to have pushed.
#[derive(Default)]
struct Claims {
    human: Vec<String>,
    kubeprint: Vec<String>,
    rounds: usize,
}

/// Publishes from two blueprint clones (own caches, or one shared `--cache`) at the same
/// time while a third clone pushes bursts of plain commits, for up to 20 rounds or 60 s.
/// Every commit that git reported pushed and every commit kubeprint reported `pushed` must
/// be in the final history: nothing lost, nothing dangling, nothing the remote lacks.
fn race(env: &Env, template: &str, key: Option<&Path>, shared_cache: bool, pace: Pace) -> Claims {
    use std::sync::atomic::{AtomicBool, Ordering};
    let bare = env.bare("acme-prod");
    let fleets = [env.fleet_repo("fleet-a"), env.fleet_repo("fleet-b")];
    let caches = if shared_cache {
        [env.path().join("cache"), env.path().join("cache")]
    } else {
        [env.path().join("cache-a"), env.path().join("cache-b")]
    };
    let key_args: Vec<String> = key
        .map(|k| vec!["--ssh-key".to_string(), k.display().to_string()])
        .unwrap_or_default();
    let publish = |i: usize| {
        let mut cmd = env.kubeprint(&fleets[i]);
        // Enough attempts to outlast the human's pushes: a publish that gives up ("kept
        // moving") is allowed, but one that never gets through proves nothing.
        cmd.args(["publish", "--today", TODAY, "--cluster", "acme-prod"])
            .args(["--attempts", "30"])
            .args(["--remote-template", template, "--output", "json", "--cache"])
            .arg(&caches[i])
            .args(&key_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let out = publish(0).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    let human = env.path().join("human");
    env.run_git(
        env.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            human.to_str().unwrap(),
        ],
    );

    let mut claims = Claims::default();
    let start = std::time::Instant::now();
    let mut retention = [45u32, 45u32];
    for round in 0..20 {
        if start.elapsed() > std::time::Duration::from_secs(60) {
            break;
        }
        for (i, fleet) in fleets.iter().enumerate() {
            let next = 100 + round as u32 * 2 + i as u32;
            edit(
                &fleet.join("overlays/clusters/acme-prod.yaml"),
                &format!("retention: {}d", retention[i]),
                &format!("retention: {next}d"),
            );
            retention[i] = next;
            env.commit_all(fleet, &format!("Round {round}"));
        }
        let done = AtomicBool::new(false);
        let (human_pushed, results) = std::thread::scope(|s| {
            let pusher = s.spawn(|| {
                let mut pushed = Vec::new();
                // Tight: pushes one after the other until the publishes end. In bursts:
                // a burst that starts a little later each round, so that over the rounds
                // it sweeps across the publishes' fetch-commit-push windows, and stops,
                // so that a slow transport's publishes are not starved.
                // Tight also leaves every third round quiet (from the second on), so that
                // a publish gets through however slow the transport: a run in which
                // kubeprint never pushed would prove nothing.
                let (wait, most) = match pace {
                    Pace::Tight if round % 3 == 1 => (Duration::ZERO, 0),
                    Pace::Tight => (Duration::ZERO, 60),
                    Pace::Bursts(sweep) => (sweep * (round as u32 % 5), 8),
                };
                let start = std::time::Instant::now();
                while start.elapsed() < wait && !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let mut j = 0;
                while !done.load(Ordering::SeqCst) && j < most {
                    j += 1;
                    let _ = env.git(&human).args(["fetch", "-q", "origin"]).status();
                    env.run_git(&human, &["reset", "-q", "--hard", "origin/main"]);
                    env.run_git(
                        &human,
                        &[
                            "commit",
                            "-q",
                            "--allow-empty",
                            "-m",
                            &format!("Human {round}-{j}"),
                        ],
                    );
                    let sha = env
                        .run_git(&human, &["rev-parse", "HEAD"])
                        .trim()
                        .to_string();
                    let ok = env
                        .git(&human)
                        .args(["push", "-q", "origin", "HEAD:main"])
                        .stderr(Stdio::null())
                        .status()
                        .unwrap()
                        .success();
                    if ok {
                        pushed.push(sha);
                    }
                }
                pushed
            });
            let children = [publish(0), publish(1)];
            let results: Vec<_> = children
                .into_iter()
                .map(|c| c.wait_with_output().unwrap())
                .collect();
            done.store(true, Ordering::SeqCst);
            (pusher.join().unwrap(), results)
        });
        claims.human.extend(human_pushed);
        for out in results {
            let (stdout, stderr, code) = text(&out);
            let json: serde_json::Value = serde_json::from_str(&stdout)
                .unwrap_or_else(|_| panic!("round {round}: {stdout}\n{stderr}"));
            let cluster = &json["clusters"]["acme-prod"];
            match (code, cluster["result"].as_str()) {
                (0, Some("pushed")) => claims
                    .kubeprint
                    .push(cluster["commit"].as_str().unwrap().to_string()),
                (0, Some("unchanged")) => {}
                // The branch kept moving through every attempt: allowed, nothing claimed.
                (3, Some("failed"))
                    if cluster["reason"].as_str().unwrap().contains("kept moving") => {}
                other => panic!("round {round}: {other:?}\n{stdout}\n{stderr}"),
            }
        }
        claims.rounds += 1;
    }
    for sha in &claims.human {
        assert!(
            is_ancestor(env, &bare, sha),
            "a human commit reported pushed was lost: {sha}"
        );
    }
    for sha in &claims.kubeprint {
        assert!(
            is_ancestor(env, &bare, sha),
            "kubeprint reported `pushed {sha}`, which is not in the remote's history"
        );
    }
    assert!(
        claims.rounds >= 3,
        "only {} round(s) in 60 s",
        claims.rounds
    );
    claims
}

#[test]
fn publish_racing_plain_pushes_loses_nothing_over_file() {
    let env = Env::new();
    let template = format!("file://{}/git/{{cluster}}.git", env.path().display());
    let claims = race(&env, &template, None, false, Pace::Tight);
    assert!(!claims.human.is_empty() && !claims.kubeprint.is_empty());
}

#[test]
fn publish_racing_plain_pushes_loses_nothing_over_git_daemon() {
    let env = Env::new();
    let (_daemon, port) = git_daemon(&env);
    let template = format!("git://127.0.0.1:{port}/{{cluster}}.git");
    let claims = race(&env, &template, None, false, Pace::Tight);
    assert!(!claims.human.is_empty() && !claims.kubeprint.is_empty());
}

#[test]
fn publish_racing_plain_pushes_loses_nothing_over_ssh() {
    let env = Env::new();
    let ssh = sshd(&env);
    let template = format!(
        "ssh://{}@127.0.0.1:{}{}/git/{{cluster}}.git",
        ssh.user,
        ssh.port,
        env.path().display()
    );
    let claims = race(
        &env,
        &template,
        Some(&ssh.key),
        false,
        Pace::Bursts(Duration::from_millis(300)),
    );
    assert!(
        !claims.human.is_empty() && !claims.kubeprint.is_empty(),
        "{} round(s), {} human and {} kubeprint push(es)",
        claims.rounds,
        claims.human.len(),
        claims.kubeprint.len()
    );
}

/// Two publishes on one `--cache` wait for each other: each `pushed` it reports is a
/// commit the remote has, in its history.
#[test]
fn publishes_sharing_a_cache_never_report_a_commit_the_remote_lacks() {
    let env = Env::new();
    let template = format!("file://{}/git/{{cluster}}.git", env.path().display());
    let claims = race(&env, &template, None, true, Pace::Tight);
    assert!(!claims.kubeprint.is_empty());
}

/// A `refs/heads/main.lock` left on a `file://` remote by a git process that was killed
/// blocks every writer until someone removes it: publish says so and what to do (exit 3),
/// and publishes once it is gone.
#[test]
fn a_stale_ref_lock_on_the_remote_is_reported_with_what_to_do() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let bare = env.bare("acme-prod");
    let template = format!("file://{}/git/{{cluster}}.git", env.path().display());
    let (_, stderr, code) = publish_cmd(&env, &fleet, &template, &["--cluster", "acme-prod"]);
    assert_eq!(code, 0, "{stderr}");
    let lock = bare.join("refs/heads/main.lock");
    std::fs::write(&lock, "0000000000000000000000000000000000000000\n").unwrap();
    edit(
        &fleet.join("overlays/clusters/acme-prod.yaml"),
        "retention: 45d",
        "retention: 52d",
    );
    env.commit_all(&fleet, "Change");
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &["--cluster", "acme-prod"]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(!stdout.contains("pushed"), "{stdout}");
    assert!(
        stderr.contains("refs/heads/main.lock") && stderr.contains("delete"),
        "{stderr}"
    );
    std::fs::remove_file(&lock).unwrap();
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &["--cluster", "acme-prod"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("acme-prod: pushed"), "{stdout}");
}

/// A publish killed (SIGKILL) while its push is under way leaves the remote unlocked and
/// consistent: the next publish succeeds.
#[test]
fn a_killed_publish_does_not_block_the_next() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let bare = env.bare("acme-prod");
    let template = format!("file://{}/git/{{cluster}}.git", env.path().display());
    let marker = env.path().join("hook-started");
    hook(
        &bare,
        "pre-receive",
        &format!(
            "#!/bin/sh\ncat >/dev/null\nif [ ! -e '{m}' ]; then touch '{m}'; sleep 2; fi\nexit 0\n",
            m = marker.display()
        ),
    );
    let mut child = env
        .kubeprint(&fleet)
        .args(["publish", "--today", TODAY, "--cluster", "acme-prod"])
        .args(["--remote-template", &template, "--cache"])
        .arg(env.path().join("cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the push never ran the remote's pre-receive hook"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &["--cluster", "acme-prod"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("acme-prod: pushed") || stdout.contains("acme-prod: unchanged"),
        "{stdout}"
    );
    // Whatever the killed run's push did, no lock is left and main is a commit of ours.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(!bare.join("refs/heads/main.lock").exists());
    let files = env.run_git(&bare, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(files.lines().any(|f| f == "kubeprint.lock"), "{files}");
}

/// The default cache lives in the blueprint repository: `git status` must not offer it.
#[test]
fn the_default_cache_is_ignored_by_git() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    env.bare("acme-prod");
    let template = format!("file://{}/git/{{cluster}}.git", env.path().display());
    let out = env
        .kubeprint(&fleet)
        .args(["publish", "--today", TODAY, "--cluster", "acme-prod"])
        .args(["--remote-template", &template])
        .output()
        .unwrap();
    let (stdout, stderr, code) = text(&out);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(fleet.join(".kubeprint/cache/acme-prod.git").is_dir());
    assert_eq!(env.run_git(&fleet, &["status", "--porcelain"]), "");
}

/// An HTTP(S) server on 127.0.0.1 that records the `Authorization` header of every request
/// and answers with `respond(request line, authorization)`.
struct Recorder {
    port: u16,
    seen: Seen,
}

/// Each request line with its `Authorization` header.
type Seen = Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;

type Respond = Arc<dyn Fn(&str, Option<&str>) -> String + Send + Sync>;

fn recorder(tls: Option<Arc<rustls::ServerConfig>>, respond: Respond) -> Recorder {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { continue };
            let (tls, respond, log) = (tls.clone(), respond.clone(), log.clone());
            std::thread::spawn(move || {
                let mut io: Box<dyn ReadWrite> = match tls {
                    Some(config) => {
                        let conn = rustls::ServerConnection::new(config).unwrap();
                        Box::new(rustls::StreamOwned::new(conn, tcp))
                    }
                    None => Box::new(tcp),
                };
                let mut reader = BufReader::new(&mut io);
                let mut request = String::new();
                if reader.read_line(&mut request).unwrap_or(0) == 0 {
                    return;
                }
                let mut auth = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        auth = Some(value.trim().to_string());
                    }
                }
                drop(reader);
                let request = request.trim().to_string();
                let response = respond(&request, auth.as_deref());
                log.lock().unwrap().push((request, auth));
                let _ = io.write_all(response.as_bytes());
                let _ = io.flush();
            });
        }
    });
    Recorder { port, seen }
}

trait ReadWrite: std::io::Read + std::io::Write + Send {}
impl<T: std::io::Read + std::io::Write + Send> ReadWrite for T {}

const UNAUTHORIZED: &str = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// A CA, and a server config for `127.0.0.1` and `localhost` signed by it.
fn tls_server_config() -> (Arc<rustls::ServerConfig>, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    (Arc::new(config), ca.pem())
}

fn publish_with_token(
    env: &Env,
    fleet: &Path,
    url: &str,
    ca: Option<&Path>,
) -> (String, String, i32) {
    let mut cmd = env.kubeprint(fleet);
    cmd.args(["publish", "--today", TODAY, "--cluster", "acme-prod"])
        .args(["--remote-template", url, "--cache"])
        .arg(env.path().join("cache"))
        .env("KUBEPRINT_GIT_TOKEN", "tok-never-leaves-https-789");
    if let Some(ca) = ca {
        cmd.env("GIT_SSL_CAINFO", ca);
    }
    text(&cmd.output().unwrap())
}

/// `KUBEPRINT_GIT_TOKEN` is never sent over plain `http://`.
#[test]
fn the_token_is_never_sent_over_plain_http() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let server = recorder(None, Arc::new(|_, _| UNAUTHORIZED.to_string()));
    let url = format!("http://127.0.0.1:{}/{{cluster}}.git", server.port);
    let (stdout, stderr, code) = publish_with_token(&env, &fleet, &url, None);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    let seen = server.seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the server was asked");
    assert!(
        seen.iter().all(|(_, auth)| auth.is_none()),
        "credentials went over plain http: {seen:?}"
    );
    assert!(!stderr.contains("tok-never-leaves-https-789"), "{stderr}");
}

/// Over HTTPS the token goes to the URL's host, and not along a redirect to another
/// host or port.
#[test]
fn the_token_does_not_follow_a_redirect_to_another_host() {
    use base64::Engine as _;
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let (config, ca_pem) = tls_server_config();
    let ca = env.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let token_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode("x-access-token:tok-never-leaves-https-789")
    );
    // The other host: another port, and another name for it (`localhost`).
    let elsewhere = recorder(
        Some(config.clone()),
        Arc::new(|_, _| UNAUTHORIZED.to_string()),
    );
    for target_host in ["127.0.0.1", "localhost"] {
        let to = format!("https://{target_host}:{}", elsewhere.port);
        let origin = recorder(
            Some(config.clone()),
            Arc::new(move |request, auth| match auth {
                None => UNAUTHORIZED.to_string(),
                Some(_) => {
                    let path = request.split_whitespace().nth(1).unwrap_or("/");
                    format!(
                        "HTTP/1.1 302 Found\r\nLocation: {to}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                }
            }),
        );
        let url = format!("https://127.0.0.1:{}/{{cluster}}.git", origin.port);
        let (stdout, stderr, code) = publish_with_token(&env, &fleet, &url, Some(&ca));
        assert_eq!(code, 3, "{stdout}\n{stderr}");
        let at_origin = origin.seen.lock().unwrap().clone();
        assert!(
            at_origin
                .iter()
                .any(|(_, a)| a.as_deref() == Some(token_auth.as_str())),
            "the origin got the token over HTTPS: {at_origin:?}\n{stderr}"
        );
        assert!(!stderr.contains("tok-never-leaves-https-789"), "{stderr}");
    }
    let at_other = elsewhere.seen.lock().unwrap().clone();
    assert!(!at_other.is_empty(), "the redirect was followed");
    assert!(
        at_other.iter().all(|(_, a)| a.is_none()),
        "the token followed the redirect: {at_other:?}"
    );
}

/// A key with a passphrase (`KUBEPRINT_SSH_KEY_PASSPHRASE`, handed to ssh through its
/// environment), and a server whose host key is not in `~/.ssh/known_hosts`: refused.
#[test]
fn ssh_with_a_passphrase_and_an_unknown_host() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let bare = env.bare("acme-prod");
    let server = sshd(&env);
    let key = env.path().join("key-with-passphrase");
    let st = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "pass-phrase-321",
            "-C",
            "t",
            "-f",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let authorized = env.path().join("sshd/authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized).unwrap();
    keys.push_str(&std::fs::read_to_string(key.with_extension("pub")).unwrap());
    std::fs::write(&authorized, keys).unwrap();
    let template = format!(
        "ssh://{}@127.0.0.1:{}{}/git/{{cluster}}.git",
        server.user,
        server.port,
        env.path().display()
    );
    let run = |passphrase: &str| {
        let out = env
            .kubeprint(&fleet)
            .args(["publish", "--today", TODAY, "--cluster", "acme-prod"])
            .args(["--remote-template", &template, "--cache"])
            .arg(env.path().join("cache"))
            .env("KUBEPRINT_SSH_KEY", &key)
            .env("KUBEPRINT_SSH_KEY_PASSPHRASE", passphrase)
            .output()
            .unwrap();
        text(&out)
    };
    let (stdout, stderr, code) = run("pass-phrase-321");
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("acme-prod: pushed"), "{stdout}");
    assert_eq!(log(&env, &bare).len(), 1);

    // The wrong passphrase: an authentication failure that shows neither secret.
    edit(
        &fleet.join("overlays/clusters/acme-prod.yaml"),
        "retention: 45d",
        "retention: 46d",
    );
    env.commit_all(&fleet, "Change");
    let (stdout, stderr, code) = run("not-the-phrase-654");
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(stderr.contains("authentication to `ssh://"), "{stderr}");
    for secret in ["not-the-phrase-654", "key-with-passphrase"] {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "{stderr}"
        );
    }

    // A host key kubeprint has never seen is refused, not trusted on first use.
    std::fs::write(env.home().join(".ssh/known_hosts"), "").unwrap();
    let (stdout, stderr, code) = run("pass-phrase-321");
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(stderr.contains("Host key verification failed"), "{stderr}");
    assert_eq!(log(&env, &bare).len(), 1);
}

/// A publish with nothing to render (the inputs are what the remote's lock records) still
/// sees every hand edit: a plain one is refused; one that also rewrote the lock's sha256
/// to match is not trusted either, and is replaced by the render. An empty commit on top
/// of ours changes nothing.
#[test]
fn a_publish_with_unchanged_inputs_still_sees_hand_edits() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let bare = env.bare("acme-prod");
    let template = format!("file://{}/git/{{cluster}}.git", env.path().display());
    let args = ["--cluster", "acme-prod", "--output", "json"];
    let result = |stdout: &str| {
        let json: serde_json::Value = serde_json::from_str(stdout).unwrap();
        json["clusters"]["acme-prod"]["result"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &args);
    assert_eq!((code, result(&stdout)), (0, "pushed".into()), "{stderr}");

    let clone = env.path().join("clone");
    env.run_git(
        env.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    env.run_git(&clone, &["commit", "-q", "--allow-empty", "-m", "Empty"]);
    env.run_git(&clone, &["push", "-q", "origin", "main"]);
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &args);
    assert_eq!((code, result(&stdout)), (0, "unchanged".into()), "{stderr}");

    // A hand edit, nothing changed in the blueprints: refused.
    edit(
        &clone.join("values/cilium.yaml"),
        "\n",
        "\n# tuned by hand\n",
    );
    env.commit_all(&clone, "Hand edit");
    env.run_git(&clone, &["push", "-q", "origin", "main"]);
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &args);
    assert_eq!((code, result(&stdout)), (1, "refused".into()), "{stderr}");

    // The same edit with the lock's sha256 rewritten to match: rendered and replaced.
    let text = std::fs::read_to_string(clone.join("values/cilium.yaml")).unwrap();
    let lock_path = clone.join("kubeprint.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    let old_sum = env
        .run_git(&clone, &["show", "HEAD~1:values/cilium.yaml"])
        .into_bytes();
    use sha2::Digest as _;
    let hex = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    assert!(lock.contains(&hex(&old_sum)));
    std::fs::write(
        &lock_path,
        lock.replace(&hex(&old_sum), &hex(text.as_bytes())),
    )
    .unwrap();
    env.commit_all(&clone, "Hand edit, lock to match");
    env.run_git(&clone, &["push", "-q", "origin", "main"]);
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &args);
    assert_eq!((code, result(&stdout)), (0, "pushed".into()), "{stderr}");
    let cilium = env.run_git(&bare, &["show", "main:values/cilium.yaml"]);
    assert!(!cilium.contains("tuned by hand"));
}

/// Every file under `dir` with its size and modification time (the per-cluster
/// `*.publish.lock` files left out: a publish opens them to wait for another).
fn files_with_times(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else if !entry
                .file_name()
                .to_string_lossy()
                .ends_with(".publish.lock")
            {
                out.push((entry.path(), meta.len(), meta.modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_publish_after_the_remote_moved_does_not_claim_unchanged_and_a_no_op_writes_nothing() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let bare = env.bare("acme-prod");
    let template = format!("file://{}/git/{{cluster}}.git", env.path().display());
    let args = ["--cluster", "acme-prod", "--output", "json"];
    let result = |stdout: &str| {
        let json: serde_json::Value = serde_json::from_str(stdout).unwrap();
        let c = &json["clusters"]["acme-prod"];
        (
            c["result"].as_str().unwrap().to_string(),
            c["commit"]
                .as_str()
                .or(c["head"].as_str())
                .map(str::to_string),
        )
    };
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &args);
    assert_eq!(
        (code, result(&stdout).0.as_str()),
        (0, "pushed"),
        "{stderr}"
    );
    let ours = env.run_git(&bare, &["rev-parse", "main^{tree}"]);

    // Another blueprint checkout (its own cache) publishes a different render: the remote
    // moved to a tree whose lock names other inputs.
    let other = env.fleet_repo("other");
    edit(
        &other.join("overlays/clusters/acme-prod.yaml"),
        "retention: 45d",
        "retention: 60d",
    );
    env.commit_all(&other, "Keep acme's metrics 60 days");
    let out = env
        .kubeprint(&other)
        .args(["publish", "--today", TODAY, "--remote-template", &template])
        .arg("--cache")
        .arg(env.path().join("other-cache"))
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr, code) = text(&out);
    assert_eq!(
        (code, result(&stdout).0.as_str()),
        (0, "pushed"),
        "{stderr}"
    );
    let theirs = remote_main(&env, &bare).unwrap();

    // Our publish, whose cache last verified our own tree: not unchanged, ours again, on
    // top of theirs.
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &args);
    let (outcome, commit) = result(&stdout);
    assert_eq!(
        (code, outcome.as_str()),
        (0, "pushed"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(remote_main(&env, &bare), commit);
    assert_eq!(env.run_git(&bare, &["rev-parse", "main^{tree}"]), ours);
    assert!(is_ancestor(&env, &bare, &theirs));

    // Now nothing changed: unchanged at the remote's head, and the cache is left as it was.
    let cache = env.path().join("cache");
    let before = files_with_times(&cache);
    let (stdout, stderr, code) = publish_cmd(&env, &fleet, &template, &args);
    let (outcome, head) = result(&stdout);
    assert_eq!(
        (code, outcome.as_str()),
        (0, "unchanged"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(head, remote_main(&env, &bare));
    assert_eq!(files_with_times(&cache), before);

    // The other checkout's publish, whose cache verified its own tree only, puts its
    // render back: it never takes ours for its own.
    let out = env
        .kubeprint(&other)
        .args(["publish", "--today", TODAY, "--remote-template", &template])
        .arg("--cache")
        .arg(env.path().join("other-cache"))
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr, code) = text(&out);
    assert_eq!(
        (code, result(&stdout).0.as_str()),
        (0, "pushed"),
        "{stderr}"
    );
    assert_ne!(env.run_git(&bare, &["rev-parse", "main^{tree}"]), ours);
}
