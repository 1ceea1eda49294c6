//! Publish N generated clusters (default 1,000) the way `kubeprint publish` does (load the
//! fleet from disk, validate, then `publish::publish_fleet`), to local bare repositories:
//!
//! 1. the first publish (every remote empty), over `file://`;
//! 2. a no-op publish (nothing changed), over `file://`;
//! 3. a publish after one cluster's spec changed, over `file://`;
//! 4. no-op publishes over `git://`, eight `git daemon`s behind a proxy on 127.0.0.1 that
//!    delays every chunk by `KUBEPRINT_BENCH_DELAY_MS` (default 20 ms each way), at several
//!    `--jobs`: the figure the default concurrency is chosen from.
//!
//! Each line: wall time, CPU seconds of this process and of the `git` processes it ran,
//! peak memory of the phase, and the advertisements, fetches, renders and pushes it took.
//! `KUBEPRINT_BENCH_DIR` puts the fleet, the remotes and the cache elsewhere (default a
//! temporary directory; /dev/shm measures kubeprint rather than the disk).
//! Run: `cargo bench --bench publish` (`-- 200` for another N).
#![allow(clippy::unwrap_used)] // a benchmark stops on a failed set-up

#[path = "common.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use kubeprint::publish::{self, Options, Outcome, Target};
use kubeprint::{fleet, load};

/// The allocator of the kubeprint binary, so that the figures are the command's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Loads, validates and publishes like the command; prints one line; returns the pushes.
fn run(
    label: &str,
    fleet_dir: &Path,
    url: &dyn Fn(&str) -> String,
    opts: &Options,
    jobs: usize,
) -> usize {
    common::reset_peak_rss();
    let t0 = Instant::now();
    let (cpu0, child0) = (common::cpu_seconds(), common::children_cpu_seconds());
    let sources = load::load_dir(fleet_dir).unwrap();
    let checked =
        fleet::check(&sources, common::TODAY.parse().unwrap()).unwrap_or_else(|e| panic!("{e:?}"));
    let t_check = t0.elapsed().as_secs_f64();
    let names = fleet::select(&checked.fleet, &[]).unwrap();
    let targets: Vec<Target> = names
        .iter()
        .map(|name| Target {
            cluster: name.clone(),
            url: kubeprint::git::DisplaySafeUrl::new(url(name)),
            branch: "main".into(),
        })
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .unwrap();
    let done = publish::publish_fleet(&checked, targets, opts, &pool, &|_| {}).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let cpu = common::cpu_seconds() - cpu0;
    let child = common::children_cpu_seconds() - child0;
    let mut pushed = 0;
    for (t, r) in &done.results {
        match r {
            Ok(Outcome::Pushed { .. }) => pushed += 1,
            Ok(Outcome::Unchanged { .. }) => {}
            Err(e) => panic!("{}: {e}", t.cluster),
        }
    }
    let w = done.work;
    println!(
        "{label}: {n} clusters in {secs:.2} s (load+validate {t_check:.2} s), {cpu:.2} CPU-s + {child:.2} CPU-s in git, peak {:.0} MiB; {} advertisements, {} fetches, {} renders, {} pushes, {pushed} pushed (--jobs {jobs})",
        common::peak_rss_mib(),
        w.advertisements,
        w.fetches,
        w.renders,
        w.pushes,
        n = done.results.len(),
    );
    pushed
}

/// A TCP proxy on 127.0.0.1 to the ports `to` (round robin), delaying every chunk by
/// `delay` in each direction: a remote `delay` away, behind several front ends (one `git
/// daemon` listens with a backlog of 5, and drops what more connections arrive at once:
/// the client's SYN is retried after a second, which is not what a network costs).
fn delaying_proxy(to: Vec<u16>, delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (i, client) in listener.incoming().enumerate() {
            let Ok(client) = client else { continue };
            let to = to[i % to.len()];
            std::thread::spawn(move || {
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    return;
                };
                let pipe = move |mut from: TcpStream, mut to: TcpStream| {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                std::thread::sleep(delay);
                                if to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pipe(s2, c2));
                pipe(client, server);
            });
        }
    });
    port
}

/// `git daemon` serving `base` on a free port; killed when dropped.
struct Daemon(std::process::Child, u16);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn git_daemon(base: &Path) -> Daemon {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exec = std::process::Command::new("git")
        .arg("--exec-path")
        .output()
        .unwrap();
    let exec = String::from_utf8(exec.stdout).unwrap();
    let mut child = std::process::Command::new(Path::new(exec.trim()).join("git-daemon"))
        .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..400 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Daemon(child, port);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("git daemon did not start");
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let jobs = kubeprint::publish::DEFAULT_JOBS;
    let delay = Duration::from_millis(
        std::env::var("KUBEPRINT_BENCH_DELAY_MS")
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(20),
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = load::load_dir(repo).expect("the repository is a blueprint repository");
    let work = match std::env::var_os("KUBEPRINT_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    println!("working in {}", work.path().display());
    let fleet_dir = work.path().join("fleet");
    common::write_dir(&kubeprint::generate::fleet(&base, n), &fleet_dir);
    let git_dir = work.path().join("git");
    let names: Vec<String> = {
        let sources = load::load_dir(&fleet_dir).unwrap();
        let checked = fleet::check(&sources, common::TODAY.parse().unwrap())
            .unwrap_or_else(|e| panic!("{e:?}"));
        fleet::select(&checked.fleet, &[]).unwrap()
    };
    for name in &names {
        git2::Repository::init_bare(git_dir.join(format!("{name}.git"))).unwrap();
    }
    let file_url = |name: &str| format!("file://{}/{name}.git", git_dir.display());
    let opts = Options::new(work.path().join("cache"));

    assert_eq!(
        run("first publish, file://", &fleet_dir, &file_url, &opts, jobs),
        n
    );
    assert_eq!(
        run("no-op publish, file://", &fleet_dir, &file_url, &opts, jobs),
        0
    );
    assert_eq!(
        run("no-op publish, file://", &fleet_dir, &file_url, &opts, jobs),
        0
    );
    // One cluster's spec changes: one render, one push.
    let spec = fleet_dir.join(format!("overlays/clusters/{}.yaml", names[0]));
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, format!("{text}# one change\n")).unwrap();
    assert_eq!(
        run(
            "one cluster changed, file://",
            &fleet_dir,
            &file_url,
            &opts,
            jobs
        ),
        1
    );

    let daemons: Vec<Daemon> = (0..8).map(|_| git_daemon(&git_dir)).collect();
    let proxy = delaying_proxy(daemons.iter().map(|d| d.1).collect(), delay);
    let git_url = move |name: &str| format!("git://127.0.0.1:{proxy}/{name}.git");
    for j in [4, 8, 16, 32, 64] {
        let label = format!("no-op publish, git:// +{}ms each way", delay.as_millis());
        assert_eq!(run(&label, &fleet_dir, &git_url, &opts, j), 0);
    }
}
