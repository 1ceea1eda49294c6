//! The limits on input, through the binary where a user meets them: YAML alias bombs and
//! nesting, value paths, `-j`, template fuel, symbolic links, BOM/NUL/invalid UTF-8, and
//! the `watch` server's timeouts and connection limit. Each run is bounded in time, and
//! the YAML ones in memory too (`ulimit -v`), so that a regression fails instead of
//! taking the machine down.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::git::{Env, text};
use crate::support::{Fixture, TODAY};

/// The address space a run may use: the example fleet renders in less than a quarter of
/// it; before the limits, the 9-level bomb below took 23 GB.
const MEMORY_KIB: u64 = 2 * 1024 * 1024;

/// Runs `cmd` under `ulimit -v MEMORY_KIB`, killed after `secs`; panics past that.
fn bounded(cmd: &Command, secs: u64) -> (String, String, i32) {
    run_for(cmd, secs, Some(MEMORY_KIB))
}

/// Runs `cmd` with at most `memory` KiB of address space, killed after `secs`.
fn run_for(cmd: &Command, secs: u64, memory: Option<u64>) -> (String, String, i32) {
    let ulimit = memory.map_or(String::new(), |kib| format!("ulimit -v {kib} && "));
    let mut limited = Command::new("sh");
    limited
        .arg("-c")
        .arg(format!("{ulimit}exec \"$0\" \"$@\""))
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            limited.env(k, v);
        }
    }
    if let Some(dir) = cmd.get_current_dir() {
        limited.current_dir(dir);
    }
    let started = Instant::now();
    let mut child = limited.spawn().unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{:?} {:?} still running after {secs} s; stderr: {}",
                cmd.get_program(),
                cmd.get_args().collect::<Vec<_>>(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    text(&child.wait_with_output().unwrap())
}

/// `kubeprint ARGS` in `dir`, hermetic, bounded in time and memory.
fn kubeprint(env: &Env, dir: &Path, args: &[&str], secs: u64) -> (String, String, i32) {
    let mut cmd = env.kubeprint(dir);
    cmd.args(args);
    bounded(&cmd, secs)
}

/// `levels` anchors of 9 aliases each to the one before (9^levels strings), under
/// `settings.bomb`; appended to a cluster spec that has no `settings`.
fn alias_bomb(levels: usize) -> String {
    let mut text = String::from(
        "settings:\n  bomb:\n    l0: &l0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..levels {
        let refs = vec![format!("*l{}", i - 1); 9].join(",");
        text.push_str(&format!("    l{i}: &l{i} [{refs}]\n"));
    }
    text
}

/// The 1-based line of `spec` that starts with `prefix` (after indentation).
fn line_of(spec: &str, prefix: &str) -> usize {
    spec.lines()
        .position(|l| l.trim_start().starts_with(prefix))
        .unwrap()
        + 1
}

const SPEC: &str = "overlays/clusters/globex-dev.yaml";

fn append(dir: &Path, file: &str, text: &str) -> String {
    let path = dir.join(file);
    let spec = std::fs::read_to_string(&path).unwrap() + text;
    std::fs::write(&path, &spec).unwrap();
    spec
}

#[test]
fn an_alias_bomb_in_a_spec_is_refused_at_its_line_by_every_command_that_loads_the_fleet() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    // 2 KB: 9^9 strings, 387 million.
    let bomb = alias_bomb(9);
    assert!(bomb.len() < 2048);
    let spec = append(&fleet, SPEC, &bomb);
    env.commit_all(&fleet, "A bomb in globex-dev's settings");
    // The 5th level is the first whose copies do not fit in the file's budget.
    let at = format!("{SPEC}:{}:", line_of(&spec, "l4:"));

    let runs: [&[&str]; 5] = [
        &["validate", "--today", TODAY],
        &["render", "--today", TODAY, "--out", "../out"],
        &["explain", "globex-dev", "settings.bomb", "--today", TODAY],
        // A pull request's head, read from git objects.
        &[
            "diff", "--today", TODAY, "--base", "main~1", "--head", "main",
        ],
        &["diff", "--today", TODAY, "--base", "main~1"],
    ];
    for args in runs {
        let (_, stderr, code) = kubeprint(&env, &fleet, args, 60);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(&at), "{args:?}: no `{at}` in {stderr}");
        assert!(stderr.contains("alias bomb"), "{args:?}: {stderr}");
        assert!(stderr.contains("hint: "), "{args:?}: {stderr}");
    }
    assert!(!fleet.join("../out").exists());
}

#[test]
fn deep_nesting_is_refused_at_its_line_instead_of_overflowing_the_stack() {
    let fx = Fixture::example();
    // 1,200 anchors each holding an alias of the one before: 1,200 levels in 20 KB.
    let mut chain = String::from("settings:\n  n0: &n0 [x]\n");
    for i in 1..1200 {
        chain.push_str(&format!("  n{i}: &n{i} [*n{}]\n", i - 1));
    }
    let spec = append(fx.path(), SPEC, &chain);
    let env = Env::new();
    let (_, stderr, code) = kubeprint(&env, fx.path(), &["validate", "--today", TODAY], 60);
    assert_eq!(code, 2, "{stderr}");
    // The spec's mapping, `settings` and `n126`'s own list are 3 levels; `*n125` holds 126.
    let at = format!("{SPEC}:{}:", line_of(&spec, "n126:"));
    assert!(stderr.contains(&at), "no `{at}` in {stderr}");
    assert!(stderr.contains("deeper than 128 levels"), "{stderr}");

    // Block sequences nested 5,000 deep in 10 KB.
    let fx = Fixture::example();
    let deep = format!("settings:\n  deep:\n    {}x\n", "- ".repeat(5000));
    let spec = append(fx.path(), SPEC, &deep);
    let (_, stderr, code) = kubeprint(&env, fx.path(), &["validate", "--today", TODAY], 60);
    assert_eq!(code, 2, "{stderr}");
    let at = format!("{SPEC}:{}:", line_of(&spec, "- - -"));
    assert!(stderr.contains(&at), "no `{at}` in {stderr}");
}

#[test]
fn a_symbolic_link_among_the_inputs_is_refused_by_render_and_diff_alike() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    std::fs::create_dir_all(fleet.join("specs")).unwrap();
    std::fs::rename(fleet.join(SPEC), fleet.join("specs/globex-dev.yaml")).unwrap();
    std::os::unix::fs::symlink("../../specs/globex-dev.yaml", fleet.join(SPEC)).unwrap();
    env.commit_all(&fleet, "globex-dev's spec through a link");

    let refused = format!("`{SPEC}` is a symbolic link");
    for args in [
        &["render", "--today", TODAY, "--out", "../out"][..],
        &["validate", "--today", TODAY],
        &[
            "diff", "--today", TODAY, "--base", "main~1", "--head", "main",
        ],
        &[
            "diff", "--today", TODAY, "--base", "main", "--head", "main~1",
        ],
    ] {
        let (_, stderr, code) = kubeprint(&env, &fleet, args, 60);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(&refused), "{args:?}: {stderr}");
        assert!(
            stderr.contains("hint: replace the link by a copy"),
            "{args:?}: {stderr}"
        );
    }

    // A linked directory of inputs too.
    let fx = Fixture::example();
    std::fs::rename(fx.path().join("overlays/tiers"), fx.path().join("tiers")).unwrap();
    std::os::unix::fs::symlink("../tiers", fx.path().join("overlays/tiers")).unwrap();
    let (_, stderr, code) = kubeprint(&env, fx.path(), &["validate", "--today", TODAY], 60);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`overlays/tiers` is a symbolic link"),
        "{stderr}"
    );
}

#[test]
fn a_bom_is_accepted_and_nul_or_invalid_utf8_are_located_with_what_to_do() {
    let env = Env::new();
    let fleet = env.fleet_repo("fleet");
    let path = fleet.join(SPEC);
    let original = std::fs::read(&path).unwrap();

    // A BOM (Windows editors write one): accepted, by the directory and the git readers.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(&original);
    std::fs::write(&path, &bom).unwrap();
    let (_, stderr, code) = kubeprint(&env, &fleet, &["validate", "--today", TODAY], 60);
    assert_eq!(code, 0, "{stderr}");
    env.commit_all(&fleet, "A BOM");
    let (_, stderr, code) = kubeprint(
        &env,
        &fleet,
        &[
            "diff", "--today", TODAY, "--base", "main~1", "--head", "main",
        ],
        60,
    );
    assert_eq!(code, 0, "a BOM changes nothing: {stderr}");

    // A NUL byte on line 3 (`client: glo\0bex`), column 12.
    let nul = String::from_utf8(original.clone()).unwrap().replacen(
        "client: globex",
        "client: glo\0bex",
        1,
    );
    std::fs::write(&path, &nul).unwrap();
    let (_, stderr, code) = kubeprint(&env, &fleet, &["validate", "--today", TODAY], 60);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("error: {SPEC}:3:12: a NUL byte")),
        "{stderr}"
    );
    assert!(stderr.contains("hint: remove the NUL byte"), "{stderr}");
    env.commit_all(&fleet, "A NUL byte");
    let (_, stderr, code) = kubeprint(
        &env,
        &fleet,
        &[
            "diff", "--today", TODAY, "--base", "main~1", "--head", "main",
        ],
        60,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("{SPEC}:3:12: a NUL byte")),
        "{stderr}"
    );
    assert!(stderr.contains("hint: remove the NUL byte"), "{stderr}");

    // Latin-1 `é` (0xE9) on line 3, column 12.
    let mut latin1 = original.clone();
    let at = original
        .windows(14)
        .position(|w| w == b"client: globex")
        .unwrap();
    latin1.splice(at + 11..at + 11, [0xE9]);
    std::fs::write(&path, &latin1).unwrap();
    let (_, stderr, code) = kubeprint(&env, &fleet, &["validate", "--today", TODAY], 60);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("error: {SPEC}:3:12: byte 0xE9 is not UTF-8 text")),
        "{stderr}"
    );
    assert!(stderr.contains("hint: save the file as UTF-8"), "{stderr}");
    env.commit_all(&fleet, "Latin-1");
    let (_, stderr, code) = kubeprint(
        &env,
        &fleet,
        &[
            "diff", "--today", TODAY, "--base", "main~2", "--head", "main",
        ],
        60,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("{SPEC}:3:12: byte 0xE9")),
        "{stderr}"
    );
}

#[test]
fn a_malformed_value_path_is_bad_input_with_its_column() {
    let fx = Fixture::example();
    let env = Env::new();
    for (path, column) in [
        ("settings.a[0]]", 14),
        ("settings.a[", 11),
        ("settings..a", 10),
        ("settings.a[x]", 12),
        ("values.cilium.", 15),
    ] {
        let (_, stderr, code) = kubeprint(
            &env,
            fx.path(),
            &["explain", "initech-prod", path, "--today", TODAY],
            60,
        );
        assert_eq!(code, 2, "{path}: {stderr}");
        assert!(
            stderr.contains(&format!("error: `{path}`, column {column}: ")),
            "{path}: {stderr}"
        );
        assert!(
            stderr.contains("hint: a path is keys separated by `.`"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Well-formed paths still work, list items included; `settingsx` is no `settings.x`.
    let (stdout, stderr, code) = kubeprint(
        &env,
        fx.path(),
        &[
            "explain",
            "initech-prod",
            "settings.oidc.authUrl",
            "--today",
            TODAY,
        ],
        60,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("from cluster at overlays/clusters/initech-prod.yaml:58:"),
        "{stdout}"
    );
    let (_, stderr, code) = kubeprint(
        &env,
        fx.path(),
        &["explain", "initech-prod", "settingsoidc", "--today", TODAY],
        60,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is not a value path"), "{stderr}");
}

#[test]
fn jobs_out_of_range_are_usage_errors_before_any_thread_starts() {
    let fx = Fixture::example();
    let env = Env::new();
    for jobs in ["100000", "0", "257"] {
        for command in ["render", "publish"] {
            let (_, stderr, code) = kubeprint(&env, fx.path(), &[command, "-j", jobs], 20);
            assert_eq!(code, 2, "{command} -j {jobs}: {stderr}");
            assert!(stderr.contains("1..=256"), "{command} -j {jobs}: {stderr}");
        }
    }
    // `status --concurrency` is bounded too: each is a connection.
    for concurrency in ["0", "1025"] {
        let (_, stderr, code) = kubeprint(
            &env,
            fx.path(),
            &["status", "--concurrency", concurrency],
            20,
        );
        assert_eq!(code, 2, "status --concurrency {concurrency}: {stderr}");
        assert!(stderr.contains("1..=1024"), "{concurrency}: {stderr}");
    }
    // 256 threads: each reserves its stack, more than `bounded` allows.
    let mut cmd = env.kubeprint(fx.path());
    cmd.args(["render", "-j", "256", "--today", TODAY, "--out", "out"]);
    let (_, stderr, code) = run_for(&cmd, 120, None);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_template_that_loops_without_end_runs_out_of_fuel_and_names_itself() {
    let fx = Fixture::example();
    let template = "blueprints/cilium/manifests/spin.yaml.j2";
    fx.write(
        template,
        "# ten billion iterations\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n",
    );
    let env = Env::new();
    let (_, stderr, code) = kubeprint(
        &env,
        fx.path(),
        &["render", "--today", TODAY, "--cluster", "globex-dev"],
        120,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("{template}:2: ")), "{stderr}");
    assert!(stderr.contains("minijinja fuel"), "{stderr}");
    assert!(!fx.path().join("rendered/globex-dev").exists());
}

// The `watch` server.

mod server {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use kubeprint::drift::{Desired, Policy};
    use kubeprint::observe::SharedObserved;
    use kubeprint::serve::{Limits, ServeState};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use crate::support::TODAY;
    use crate::support::kube::{self as support, ApiServer};

    /// How long `stream` stays open without the client sending anything more: the time
    /// until the server closes it (EOF or reset), or `None` after `within`.
    async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                Ok(Ok(_)) => {} // a response (408, or to a complete request): read on
            }
        }
    }

    /// The status code of `GET path`, `None` when the server does not answer within 5 s.
    async fn get(addr: SocketAddr, path: &str) -> Option<u16> {
        tokio::time::timeout(Duration::from_secs(5), support::http_get(addr, path))
            .await
            .ok()?
            .ok()
            .map(|(code, _)| code)
    }

    async fn in_process(limits: Limits) -> SocketAddr {
        let state = ServeState {
            desired: Arc::new(Desired {
                clusters: Default::default(),
                catalog: support::catalog(),
                policy: Policy::default(),
            }),
            observed: SharedObserved::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(kubeprint::serve::serve_with(
            listener,
            state,
            limits,
            std::future::pending(),
        ));
        addr
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn half_sent_idle_and_kept_alive_connections_are_closed_after_the_header_timeout() {
        let limits = Limits {
            header_timeout: Duration::from_millis(500),
            ..Limits::default()
        };
        let addr = in_process(limits).await;
        let mut half = TcpStream::connect(addr).await.unwrap();
        half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut idle = TcpStream::connect(addr).await.unwrap();
        let mut kept = TcpStream::connect(addr).await.unwrap();
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        for (what, stream) in [
            ("half-sent", &mut half),
            ("idle", &mut idle),
            ("kept alive", &mut kept),
        ] {
            let after = closed_within(stream, Duration::from_secs(10)).await;
            assert!(
                after.is_some(),
                "the {what} connection is still open after 10 s"
            );
        }
        assert_eq!(get(addr, "/healthz").await, Some(200));
    }

    /// Past the limit, a liveness probe still gets its answer (the process is alive and
    /// serving), anything else a 503, and a silent connection is closed within a second;
    /// past the spare connections too, connections are closed at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_limit_only_healthz_is_answered_and_the_server_answers_when_some_end() {
        let limits = Limits {
            max_connections: 4,
            ..Limits::default()
        };
        let addr = in_process(limits).await;
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let closed = closed_within(&mut extra, Duration::from_secs(5)).await;
        assert!(closed.is_some(), "the 5th connection is still open");
        assert_eq!(
            get(addr, "/healthz").await,
            Some(200),
            "/healthz while 4 are held"
        );
        assert_eq!(
            get(addr, "/metrics").await,
            Some(503),
            "/metrics while 4 are held"
        );
        held.pop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if get(addr, "/metrics").await == Some(200) {
                break;
            }
            assert!(Instant::now() < deadline, "/metrics never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Without spare connections nothing past the limit is answered.
        let addr = in_process(Limits {
            max_connections: 4,
            spare_connections: 0,
            ..Limits::default()
        })
        .await;
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        assert_ne!(
            get(addr, "/healthz").await,
            Some(200),
            "no room while 4 are held"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_response_nobody_reads_is_abandoned_after_the_io_timeout() {
        let limits = Limits {
            io_timeout: Duration::from_millis(500),
            ..Limits::default()
        };
        let addr = in_process(limits).await;
        // Pipelined requests whose responses fill the socket buffers: the server's writes
        // wait for a reader that never comes.
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let requests = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20_000);
        let (mut rd, mut wr) = stream.split();
        let write = async {
            let _ = wr.write_all(requests.as_bytes()).await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(20), write).await;
        // Now read: the server gave up, so what was sent ends with EOF or a reset.
        let mut buf = vec![0u8; 1 << 16];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
                Err(_) => panic!("the connection is still open"),
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// `kubeprint watch` with its default limits: 10 s for headers, 512 connections.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_watch_command_closes_stalled_connections_and_caps_them() {
        // 513 connections from here, 513 in the server: more than a default soft limit.
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let want = limit.maximum.map_or(4096, |m| m.min(4096));
        if limit.current.is_some_and(|c| c < want) {
            let raised = Rlimit {
                current: Some(want),
                maximum: limit.maximum,
            };
            setrlimit(Resource::Nofile, raised).unwrap();
        }

        let api = ApiServer::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let kc = support::write_kubeconfig(&api, tmp.path(), &["acme-prod"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let _child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubeprint"))
            .args(["watch", "--today", TODAY, "--cluster", "acme-prod"])
            .args([
                "--kubeconfig",
                kc.to_str().unwrap(),
                "--listen",
                &addr.to_string(),
            ])
            .env_clear()
            .env("HOME", tmp.path())
            .env("NO_COLOR", "1")
            .current_dir(support::fleet_dir())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(addr, "/healthz").await != Some(200) {
            assert!(Instant::now() < deadline, "watch never served /healthz");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // A half-sent request and a silent connection: closed after 10 s.
        let mut half = TcpStream::connect(addr).await.unwrap();
        half.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let (a, b) = tokio::join!(
            closed_within(&mut half, Duration::from_secs(20)),
            closed_within(&mut silent, Duration::from_secs(20)),
        );
        for (what, after) in [("half-sent", a), ("silent", b)] {
            let after = after.unwrap_or_else(|| panic!("the {what} connection is open after 20 s"));
            assert!(
                after >= Duration::from_secs(8),
                "{what}: closed after {after:?}"
            );
        }

        // 512 connections held: the 513th, silent, is closed within the spare timeout, and
        // a liveness probe is still answered.
        let mut held = Vec::new();
        for _ in 0..512 {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let closed = closed_within(&mut extra, Duration::from_secs(3)).await;
        assert!(closed.is_some(), "the 513th connection is open");
        assert_eq!(
            get(addr, "/healthz").await,
            Some(200),
            "/healthz with 512 held"
        );
        assert_eq!(
            get(addr, "/status").await,
            Some(503),
            "/status with 512 held"
        );
        // Some end: the server answers again.
        held.truncate(500);
        let deadline = Instant::now() + Duration::from_secs(5);
        while get(addr, "/status").await != Some(200) {
            assert!(Instant::now() < deadline, "/status never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
