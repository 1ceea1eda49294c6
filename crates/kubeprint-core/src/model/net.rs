//! Network values the fleet shares: IPv4 CIDRs, the API endpoint, DNS names. One parser
//! each, used by validate, render and check alike.

use std::net::Ipv4Addr;

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
        return Err(format!("the API endpoint `{endpoint}` is not an https URL"));
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "443"));
    if port.parse::<u16>().is_err() {
        return Err(format!(
            "the API endpoint `{endpoint}` has an invalid port `{port}`"
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
            "the API endpoint host `{host}` is neither an IPv4 address nor a DNS name"
        ))
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
    fn cidrs() {
        let a = parse_cidr("10.20.5.0/24").unwrap();
        assert!(a.contains("10.20.5.11".parse().unwrap()));
        assert!(!a.contains("10.20.6.1".parse().unwrap()));
        assert!(a.overlaps(&parse_cidr("10.20.0.0/16").unwrap()));
        assert!(!a.overlaps(&parse_cidr("10.20.6.0/28").unwrap()));
        assert!(parse_cidr("10.20.5.0/33").is_none());
    }
}
