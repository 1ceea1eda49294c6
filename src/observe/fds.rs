//! File descriptors: the soft limit raised to the hard one at start, what a fleet needs, and how many clusters fit when it needs more.
//!
//! Every watched cluster holds connections open for as long as it is watched: one over
//! HTTP/2 (both watches, the lists and the probes share it), three over HTTP/1.1 (one per
//! watch in flight and one for the lists and probes), four over HTTPS without HTTP/2
//! (measured 3.9: TLS handshakes overlap). A fleet that needs more descriptors than the
//! process may open would fail at random, the HTTP server's accepts with it; instead the
//! watcher keeps [`RESERVED`] descriptors for everything else, watches the clusters that
//! fit, in name order, and says which are not watched and why.

use serde::Serialize;

/// Descriptors kept for everything but the clusters' connections: standard streams, the
/// runtime's event loop, the `/metrics` listener and the scrapes it serves, the Lease
/// client of a sharded watcher, files read at run time.
pub const RESERVED: u64 = 128;

/// The soft and hard `RLIMIT_NOFILE` of this process, before and after [`raise_soft_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limit {
    /// The soft limit found at start.
    pub soft_at_start: u64,
    /// The soft limit now (the hard limit, unless raising it failed).
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as the Go runtime does for every Go
/// program: the soft limit of 1,024 most systems start with is there for programs that
/// still use `select(2)`, which this one does not. An unlimited value reads as `u64::MAX`.
pub fn raise_soft_limit() -> Limit {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    let soft_at_start = now.current.unwrap_or(u64::MAX);
    let hard = now.maximum.unwrap_or(u64::MAX);
    let mut soft = soft_at_start;
    if soft < hard {
        let raised = Rlimit {
            current: now.maximum,
            maximum: now.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            soft = hard;
        }
    }
    Limit {
        soft_at_start,
        soft,
        hard,
    }
}

/// How a cluster's API is reached, which sets how many connections it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS where HTTP/2 is offered (every Kubernetes API server takes it).
    Http2,
    /// HTTPS limited to HTTP/1.1.
    Https1,
    /// Plain HTTP (HTTP/1.1).
    Http1,
}

impl Transport {
    /// Of a server URL, given whether the pool offers HTTP/2.
    pub fn of(server: &str, http2: bool) -> Transport {
        match (server.starts_with("https://"), http2) {
            (true, true) => Transport::Http2,
            (true, false) => Transport::Https1,
            (false, _) => Transport::Http1,
        }
    }

    /// The descriptors a watched cluster holds open.
    pub fn descriptors(self) -> u64 {
        match self {
            Transport::Http2 => 1,
            Transport::Http1 => 3,
            Transport::Https1 => 4,
        }
    }
}

/// What the fleet needs against what the process has, and how many clusters fit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Budget {
    #[serde(flatten)]
    pub limit: Limit,
    /// Descriptors the whole fleet needs: its clusters' connections and [`RESERVED`].
    pub needed: u64,
    pub reserved: u64,
    /// Clusters to watch, and how many of them (the first, in order) fit.
    pub clusters: usize,
    pub watched: usize,
    /// Why some clusters are not watched, in words; `None` when all fit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Budget {
    /// The budget of clusters reached through `transports` (in the order they are
    /// watched) under `limit`.
    pub fn plan(limit: Limit, transports: &[Transport]) -> Budget {
        let needed = RESERVED + transports.iter().map(|t| t.descriptors()).sum::<u64>();
        let available = limit.soft.saturating_sub(RESERVED);
        let mut used = 0;
        let watched = transports
            .iter()
            .take_while(|t| {
                used += t.descriptors();
                used <= available
            })
            .count();
        let problem = (watched < transports.len()).then(|| {
            let per = per_cluster(transports);
            format!(
                "the file descriptor limit is {soft} (hard limit {hard}) and watching {n} clusters needs about {needed} ({per}, and {RESERVED} kept for the HTTP server and the rest): {watched} of {n} clusters are watched, the other {rest} are not; raise the hard limit (`ulimit -Hn`, systemd `LimitNOFILE=`, the container runtime's `nofile` ulimit), offer HTTP/2, or split the fleet over replicas with `--shards`",
                soft = limit.soft,
                hard = limit.hard,
                n = transports.len(),
                rest = transports.len() - watched,
            )
        });
        Budget {
            limit,
            needed,
            reserved: RESERVED,
            clusters: transports.len(),
            watched,
            problem,
        }
    }
}

/// "1 per cluster over HTTP/2, 3 over HTTP/1.1" for the transports present.
fn per_cluster(transports: &[Transport]) -> String {
    let mut parts = Vec::new();
    for (t, what) in [
        (Transport::Http2, "over HTTP/2"),
        (Transport::Https1, "over HTTPS with HTTP/1.1"),
        (Transport::Http1, "over plain HTTP/1.1"),
    ] {
        let n = transports.iter().filter(|x| **x == t).count();
        if n > 0 {
            parts.push(format!(
                "{} per cluster {what} for {n} clusters",
                t.descriptors()
            ));
        }
    }
    parts.join(", ")
}

/// Descriptors this process has open now (`/proc/self/fd`), where the system tells.
pub fn open_now() -> Option<u64> {
    std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(soft: u64) -> Limit {
        Limit {
            soft_at_start: soft,
            soft,
            hard: soft,
        }
    }

    #[test]
    fn a_fleet_that_fits_is_watched_whole() {
        let b = Budget::plan(limit(1024), &[Transport::Http2; 500]);
        assert_eq!((b.needed, b.watched, b.problem), (628, 500, None));
    }

    #[test]
    fn a_fleet_that_does_not_fit_is_watched_in_part_and_says_why() {
        let b = Budget::plan(limit(1024), &[Transport::Http1; 500]);
        assert_eq!(b.needed, 128 + 1500);
        assert_eq!(b.watched, (1024 - 128) / 3);
        let problem = b.problem.unwrap();
        assert!(problem.starts_with("the file descriptor limit is 1024 (hard limit 1024) and watching 500 clusters needs about 1628 (3 per cluster over plain HTTP/1.1 for 500 clusters"), "{problem}");
        assert!(
            problem.contains("298 of 500 clusters are watched, the other 202 are not"),
            "{problem}"
        );
    }

    #[test]
    fn the_transport_follows_the_scheme_and_the_pool() {
        assert_eq!(Transport::of("https://a:6443", true), Transport::Http2);
        assert_eq!(Transport::of("https://a:6443", false), Transport::Https1);
        assert_eq!(Transport::of("http://a", true), Transport::Http1);
    }

    #[test]
    fn raising_the_soft_limit_reaches_the_hard_one() {
        let l = raise_soft_limit();
        assert!(l.soft_at_start <= l.soft);
        assert_eq!(l.soft, l.hard);
    }
}
