//! Network values the fleet shares: IPv4 CIDRs, the API endpoint, DNS names. One parser
//! each, used by validate, render and check alike.

use std::net::Ipv4Addr;

use crate::model::names::escape_controls;

/// Whether `s` is a DNS label (RFC 1123).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is a DNS name of one or more labels.
pub fn is_dns_name(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// The host of `https://HOST:PORT` (or of `https://HOST`).
pub fn endpoint_host(endpoint: &str) -> &str {
    let rest = endpoint
        .strip_prefix("https://")
        .unwrap_or(endpoint)
        .trim_end_matches('/');
    rest.rsplit_once(':').map(|(h, _)| h).unwrap_or(rest)
}

/// Checks `https://HOST:PORT` with HOST an IPv4 address or DNS name.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let Some(rest) = endpoint.strip_prefix("https://") else {
        return Err(format!(
            "the API endpoint `{}` is not an https URL",
            escape_controls(endpoint)
        ));
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "443"));
    if port.parse::<u16>().is_err() {
        return Err(format!(
            "the API endpoint `{}` has an invalid port `{}`",
            escape_controls(endpoint),
            escape_controls(port)
        ));
    }
    let is_ip = host.parse::<Ipv4Addr>().is_ok();
    let looks_numeric = host
        .split('.')
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if is_ip || (!looks_numeric && is_dns_name(host)) {
        Ok(())
    } else {
        Err(format!(
            "the API endpoint host `{}` is neither an IPv4 address nor a DNS name",
            escape_controls(host)
        ))
    }
}

/// An `https://HOST[:PORT][/PATH]` URL without userinfo, query or fragment: the OIDC
/// issuer, the provider's S3 endpoint. HOST is a DNS name or an IPv4 address; PATH is
/// made of RFC 3986 unreserved characters, `%`-escapes and `/ : @ + = ,` (no quote,
/// space, `#`, `?` or backslash). An OIDC issuer has no query or fragment by definition
/// (OpenID Connect Discovery 1.0), and no S3 endpoint needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpsUrl<'a> {
    pub host: &'a str,
    pub port: Option<u16>,
    /// Empty, or starting with `/`.
    pub path: &'a str,
}

impl<'a> HttpsUrl<'a> {
    pub fn parse(s: &'a str) -> Result<Self, String> {
        let rest = s
            .strip_prefix("https://")
            .ok_or_else(|| "is not an https URL".to_string())?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = split_host_port(authority)?;
        let path_ok = path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%/:@+=,".contains(&b));
        if !path_ok {
            return Err(format!(
                "has a path with characters a URL path does not hold (`{}`)",
                escape_controls(path)
            ));
        }
        Ok(HttpsUrl { host, port, path })
    }
}

/// `HOST[:PORT]` with HOST an IPv4 address or a DNS name (not all digits).
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("has an invalid port `{}`", escape_controls(p)))?,
            ),
        ),
        None => (authority, None),
    };
    let is_ip = host.parse::<Ipv4Addr>().is_ok();
    let looks_numeric = host
        .split('.')
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if is_ip || (!host.is_empty() && !looks_numeric && is_dns_name(host)) {
        Ok((host, port))
    } else {
        Err(format!(
            "has a host that is neither an IPv4 address nor a DNS name (`{}`)",
            escape_controls(host)
        ))
    }
}

/// A Git repository URL as Argo CD and `publish` reach it: `https://`, `http://`,
/// `ssh://`, `git://` or `file://` URLs, or the scp-like `USER@HOST:PATH`. The host is a
/// DNS name or IPv4 address; the path is letters, digits and `- . _ ~ / % + @ :`; no
/// query, fragment, whitespace, quote or backslash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoUrl<'a> {
    /// `https`, `http`, `ssh`, `git`, `file`, or `scp` for `USER@HOST:PATH`.
    pub scheme: &'a str,
    /// Empty for `file://`.
    pub host: &'a str,
    pub path: &'a str,
}

impl<'a> RepoUrl<'a> {
    pub fn parse(s: &'a str) -> Result<Self, String> {
        let path_ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~/%+@:".contains(&b))
        };
        if let Some((scheme, rest)) = s.split_once("://") {
            if !["https", "http", "ssh", "git", "file"].contains(&scheme) {
                return Err(format!(
                    "has the scheme `{}`, not https, http, ssh, git or file",
                    escape_controls(scheme)
                ));
            }
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = if scheme == "file" {
                if !authority.is_empty() {
                    return Err("names a host in a file URL".into());
                }
                ""
            } else {
                // `ssh://git@host:22/x`: the user is allowed, never a password.
                let hostport = match authority.rsplit_once('@') {
                    Some((user, h)) if !user.contains(':') && path_ok(user) => h,
                    Some(_) => return Err("has a password or an invalid user".into()),
                    None => authority,
                };
                split_host_port(hostport)?.0
            };
            if !path_ok(path) {
                return Err("has no path, or a path with characters Git URLs do not hold".into());
            }
            return Ok(RepoUrl { scheme, host, path });
        }
        // scp-like: USER@HOST:PATH
        if let Some((user_host, path)) = s.split_once(':')
            && let Some((user, host)) = user_host.split_once('@')
            && path_ok(user)
            && is_dns_name(host)
            && path_ok(path)
        {
            return Ok(RepoUrl {
                scheme: "scp",
                host,
                path,
            });
        }
        Err("is neither a URL (`https://HOST/PATH`, `ssh://...`) nor `USER@HOST:PATH`".into())
    }
}

/// An IPv4 CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: u32,
    pub prefix: u8,
}

impl Cidr {
    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.network & self.mask()
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        let m = self.mask() & other.mask();
        self.network & m == other.network & m
    }
}

/// Parses `a.b.c.d/n`.
pub fn parse_cidr(s: &str) -> Option<Cidr> {
    let (ip, prefix) = s.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
    Some(Cidr {
        network: u32::from(ip),
        prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert!(check_endpoint("https://10.0.0.1:6443").is_ok());
        assert!(check_endpoint("https://api.acme.example.net:6443").is_ok());
        assert!(check_endpoint("http://10.0.0.1:6443").is_err());
        assert!(check_endpoint("https://10.0.0.999:6443").is_err());
        assert!(check_endpoint("https://not_a_host:6443").is_err());
    }

    #[test]
    fn https_urls() {
        let u = HttpsUrl::parse("https://login.example.net:8443/realms/x/v2.0").unwrap();
        assert_eq!(
            (u.host, u.port, u.path),
            ("login.example.net", Some(8443), "/realms/x/v2.0")
        );
        assert!(HttpsUrl::parse("https://s3.example.net").is_ok());
        for bad in [
            "http://a.example",
            "https://",
            "https://a b",
            "https://a.example/x\n  users.anonymous.enabled: \"true\"",
            "https://a.example/x?y",
            "https://a.example/x#y",
            "https://u:p@a.example",
            "https://a.example:0",
            "https://a.example/'",
        ] {
            assert!(HttpsUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn repo_urls() {
        for ok in [
            "https://git.example.net/clusters/acme-prod.git",
            "ssh://git@git.example.net:2222/clusters/x.git",
            "git@github.com:org/repo.git",
            "file:///srv/git/x.git",
            "git://127.0.0.1:9418/x.git",
        ] {
            assert!(RepoUrl::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "https://git.example.net/a b",
            "https://u:p@git.example.net/x",
            "ftp://x/y",
            "https://git.example.net/x\nfoo",
            "file://host/x",
            "x",
        ] {
            assert!(RepoUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cidrs() {
        let a = parse_cidr("10.20.5.0/24").unwrap();
        assert!(a.contains("10.20.5.11".parse().unwrap()));
        assert!(!a.contains("10.20.6.1".parse().unwrap()));
        assert!(a.overlaps(&parse_cidr("10.20.0.0/16").unwrap()));
        assert!(!a.overlaps(&parse_cidr("10.20.6.0/28").unwrap()));
        assert!(parse_cidr("10.20.5.0/33").is_none());
    }
}
