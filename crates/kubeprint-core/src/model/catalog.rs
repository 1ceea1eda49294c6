//! The version catalog (`versions.yaml`): Kubernetes minors, Talos branches, pinned charts.

use std::collections::BTreeMap;

use jiff::civil::Date;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What versions exist, when they were released, what supports what, and the charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Catalog {
    /// The provider's support policy.
    pub policy: SupportPolicy,
    /// Kubernetes minors (`"1.36"`) and their release dates.
    pub kubernetes: BTreeMap<String, KubernetesRelease>,
    /// Talos branches (`"1.13"`).
    pub talos: BTreeMap<String, TalosBranch>,
    /// Pinned Helm charts by key.
    pub charts: BTreeMap<String, Chart>,
}

/// How long versions are supported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SupportPolicy {
    /// How many of the newest Kubernetes minors are supported (3 for N-2).
    pub supported_minors: u32,
    /// Days after the release of N that N-3 keeps support.
    pub grace_days: u32,
    /// Days before the end of support that a warning is given.
    pub warn_days: u32,
}

/// One Kubernetes minor release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesRelease {
    /// The release date of `MINOR.0`.
    #[schemars(with = "String")]
    pub released: Date,
}

/// One Talos branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TalosBranch {
    /// Release date of `vMINOR.0`.
    #[schemars(with = "String")]
    pub released: Date,
    /// Patch releases with an installer image, e.g. `[v1.13.9]`.
    pub installers: Vec<String>,
    /// The installer image repository (the tag is the Talos version).
    pub installer_image: String,
    /// Kubernetes minors the branch supports.
    pub kubernetes: Vec<String>,
}

/// A pinned Helm chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Chart {
    /// Helm repository URL (or `oci://` registry).
    pub repo: String,
    /// Chart name in that repository.
    pub name: String,
    /// Pinned chart version.
    pub version: String,
    /// The application version the chart deploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// Release date of the pinned version, for the 90-day update rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub released: Option<Date>,
    /// When upstream stopped maintaining the chart, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub end_of_life: Option<Date>,
    /// The sha256 of the chart archive (`sha256:<64 hex digits>`), as Helm's `Chart.lock`
    /// and `helm pull --verify` pin it: hydration refuses an archive with another digest.
    /// A chart without one (no archive to pin, e.g. a proprietary chart) is hydrated only
    /// when its archive is vendored, with a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", regex(pattern = r"^sha256:[0-9a-f]{64}$"))]
    pub digest: Option<ChartDigest>,
}

/// The sha256 of a chart archive, `sha256:<64 lowercase hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChartDigest(String);

impl ChartDigest {
    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        self.0.trim_start_matches("sha256:")
    }

    /// The digest of these hex digits (already lowercase, 64 of them).
    pub fn from_hex(hex: &str) -> Option<Self> {
        Self::try_from(format!("sha256:{hex}")).ok()
    }
}

impl std::fmt::Display for ChartDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ChartDigest {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let ok = s.strip_prefix("sha256:").is_some_and(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(ChartDigest(s))
        } else {
            Err(format!(
                "`{s}` is not a chart digest: write `sha256:` and the 64 lowercase hex digits of the archive's sha256 (`sha256sum NAME-VERSION.tgz`)"
            ))
        }
    }
}

impl From<ChartDigest> for String {
    fn from(d: ChartDigest) -> String {
        d.0
    }
}

/// The support of one Kubernetes minor at a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Not released yet at that date (or unknown to the catalog).
    Unreleased,
    /// Supported, and at the earliest until the given date (None: no end known yet).
    Supported { until: Option<Date> },
    /// No longer supported since the date.
    Ended { since: Date },
    /// Not in the catalog.
    Unknown,
}

impl Catalog {
    /// Minors sorted oldest first (`1.9` before `1.10`).
    pub fn kubernetes_minors(&self) -> Vec<(&str, Date)> {
        let mut v: Vec<(&str, Date)> = self
            .kubernetes
            .iter()
            .map(|(k, r)| (k.as_str(), r.released))
            .collect();
        v.sort_by_key(|(k, _)| minor_key(k));
        v
    }

    /// The support of Kubernetes `minor` on `today`, under the N-2 policy: the newest
    /// `supported_minors` released minors are supported; the one before them until
    /// `grace_days` after the newest was released.
    pub fn kubernetes_support(&self, minor: &str, today: Date) -> Support {
        let minors = self.kubernetes_minors();
        let Some(pos) = minors.iter().position(|(m, _)| *m == minor) else {
            return Support::Unknown;
        };
        if minors[pos].1 > today {
            return Support::Unreleased;
        }
        let released: Vec<_> = minors.iter().filter(|(_, d)| *d <= today).collect();
        let idx = released
            .iter()
            .position(|(m, _)| *m == minor)
            .expect("released");
        let newest = released.len() - 1;
        let n = self.policy.supported_minors as usize;
        // Once minor + n is out, this minor is N-n: it ends grace days after that release.
        let end_after = |k: usize| {
            minors.get(pos + k).and_then(|(_, d)| {
                d.checked_add(jiff::Span::new().days(self.policy.grace_days as i64))
                    .ok()
            })
        };
        if newest - idx < n {
            return Support::Supported {
                until: end_after(n),
            };
        }
        match end_after(n) {
            Some(end) if end > today => Support::Supported { until: Some(end) },
            Some(end) => Support::Ended { since: end },
            None => Support::Unknown,
        }
    }
}

/// A sortable key of `MAJOR.MINOR`.
pub fn minor_key(minor: &str) -> (u32, u32) {
    let mut it = minor.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let k = |d: &str| KubernetesRelease {
            released: d.parse().unwrap(),
        };
        Catalog {
            policy: SupportPolicy {
                supported_minors: 3,
                grace_days: 90,
                warn_days: 90,
            },
            kubernetes: [
                ("1.34", k("2025-08-27")),
                ("1.35", k("2025-12-17")),
                ("1.36", k("2026-04-22")),
                ("1.37", k("2026-08-26")),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b))
            .collect(),
            talos: BTreeMap::new(),
            charts: BTreeMap::new(),
        }
    }

    #[test]
    fn n_minus_two_is_supported_until_grace_after_n_plus_one() {
        let c = catalog();
        let today = "2026-11-25".parse().unwrap();
        assert_eq!(
            c.kubernetes_support("1.37", today),
            Support::Supported { until: None }
        );
        assert_eq!(
            c.kubernetes_support("1.35", today),
            Support::Supported { until: None }
        );
        // 1.34 is N-3 since 1.37 (2026-08-26): grace ends 90 days later, 2026-11-24.
        assert_eq!(
            c.kubernetes_support("1.34", today),
            Support::Ended {
                since: "2026-11-24".parse().unwrap()
            }
        );
        let before = "2026-10-01".parse().unwrap();
        assert_eq!(
            c.kubernetes_support("1.34", before),
            Support::Supported {
                until: Some("2026-11-24".parse().unwrap())
            }
        );
        assert_eq!(
            c.kubernetes_support("1.37", "2026-08-01".parse().unwrap()),
            Support::Unreleased
        );
        assert_eq!(c.kubernetes_support("1.20", today), Support::Unknown);
    }

    #[test]
    fn chart_digests_are_sha256_in_lowercase_hex() {
        let hex = "556464ee08dc48dd80e6fdf415b6f2e5a5aaba49f30a5649693f05e3e16f4b26";
        let d = ChartDigest::try_from(format!("sha256:{hex}")).unwrap();
        assert_eq!(d.hex(), hex);
        assert!(ChartDigest::try_from(hex.to_string()).is_err());
        assert!(ChartDigest::try_from(format!("sha256:{}", hex.to_uppercase())).is_err());
        assert!(ChartDigest::try_from("sha256:abc".to_string()).is_err());
    }

    #[test]
    fn minors_sort_numerically() {
        assert!(minor_key("1.9") < minor_key("1.10"));
    }
}
