//! Names of the cluster spec restricted to what their consumers accept: OIDC claim and
//! group names, Git branch names, Kubernetes object names and label values, S3 names.
//! One parser each; `validate` reports a failure at the value's `file:line:column` with
//! the hint, and the templates escape what a valid name may still hold (see `templates`).

/// Why a value was refused: the message (without the value's location) and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub message: String,
    pub hint: &'static str,
}

fn invalid<T>(message: String, hint: &'static str) -> Result<T, Invalid> {
    Err(Invalid { message, hint })
}

/// Whether `s` is one line of printable text: no control character (newline, tab,
/// carriage return, escape, DEL, C1), no Unicode line or paragraph separator and no
/// byte-order mark. Every plain string field of the spec must be one.
pub fn is_one_line(s: &str) -> bool {
    !s.chars()
        .any(|ch| ch.is_control() || matches!(ch, '\u{2028}' | '\u{2029}' | '\u{feff}'))
}

/// The name of the OIDC claim that carries group names (`sso.groupsClaim`).
///
/// Letters, digits and `_ . : / -`, starting with a letter, digit or `_`, at most 128
/// characters. Its consumers: the API server's `--oidc-groups-claim` (a top-level claim
/// of the ID token), Argo CD's `requestedIDTokenClaims` key and `scopes` list (YAML),
/// Grafana's `groups_attribute_path` (a JMESPath identifier), Kasten's `groupClaim`.
/// Claim names are identifiers (`groups`) or, for namespaced custom claims (Auth0),
/// URLs (`https://example.net/groups`): no whitespace, quote, comma, bracket or `#`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimName<'a>(&'a str);

impl<'a> ClaimName<'a> {
    pub fn parse(s: &'a str) -> Result<Self, Invalid> {
        let ok_char = |b: u8| b.is_ascii_alphanumeric() || b"_.:/-".contains(&b);
        let first_ok = s
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        if first_ok && s.len() <= 128 && s.bytes().all(ok_char) {
            Ok(ClaimName(s))
        } else {
            invalid(
                format!("{} is not a claim name", shown(s)),
                "a claim name is letters, digits and `_ . : / -` (e.g. `groups`), at most 128 characters",
            )
        }
    }

    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// The name of a group or user of the identity provider (`sso.adminGroup`, the `NAME`
/// of a tenant owner `group:NAME` or `user:NAME`).
///
/// Letters, digits, spaces and `_ . @ / : = + -`, not starting or ending with a space,
/// at most 256 characters; a group does not start with `system:`. Its consumers: RBAC
/// and Capsule subjects (YAML strings), Argo CD's `policy.csv` (comma-separated fields,
/// `#` starts a comment, `"` quotes), Grafana's `role_attribute_path` (a JMESPath string
/// literal delimited by `'`, escaped by `\`), Kasten's `k10AdminGroups`. Identity
/// providers name groups by id (Entra ID: a GUID), by name (Okta: `Platform Admins`) or by
/// path (Keycloak: `/platform/admins`), and users by e-mail address; none needs a quote,
/// comma, `#`, backslash or bracket. `system:` groups are the API server's own
/// (`system:authenticated` is every user): the IdP's groups map without a prefix, so an
/// admin group named so would give cluster-admin to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupName<'a>(&'a str);

impl<'a> GroupName<'a> {
    pub fn parse(s: &'a str) -> Result<Self, Invalid> {
        Self::parse_subject(s, "group name")?;
        if s.starts_with("system:") {
            return invalid(
                format!("{} is a group of the API server itself", shown(s)),
                "name a group of the identity provider: `system:` groups are Kubernetes' own",
            );
        }
        Ok(GroupName(s))
    }

    /// A user name (a tenant owner `user:NAME`): the characters of a group name.
    pub fn parse_user(s: &'a str) -> Result<Self, Invalid> {
        Self::parse_subject(s, "user name")?;
        Ok(GroupName(s))
    }

    fn parse_subject(s: &str, what: &str) -> Result<(), Invalid> {
        let ok_char = |ch: char| ch.is_ascii_alphanumeric() || " _.@/:=+-".contains(ch);
        if !s.is_empty()
            && s.len() <= 256
            && s.chars().all(ok_char)
            && !s.starts_with(' ')
            && !s.ends_with(' ')
        {
            Ok(())
        } else {
            invalid(
                format!("{} is not a {what}", shown(s)),
                "use letters, digits, spaces and `_ . @ / : = + -` (no quote, comma, `#` or backslash), at most 256 characters",
            )
        }
    }

    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// A Git branch name, as `git check-ref-format --branch` accepts it: no space, control
/// character, `~ ^ : ? * [ \`, no `..`, `@{` or `//`, no component that starts with `.`
/// or ends with `.lock`, not starting with `-` or `/`, not ending with `/` or `.`, not
/// `@` or `HEAD`. `publish` pushes to `refs/heads/<branch>` and Argo CD follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BranchName<'a>(&'a str);

impl<'a> BranchName<'a> {
    pub fn parse(s: &'a str) -> Result<Self, Invalid> {
        let bad_char =
            |ch: char| ch.is_control() || ch == ' ' || "~^:?*[\\".contains(ch) || ch == '\u{7f}';
        let ok = !s.is_empty()
            && s.len() <= 255
            && !s.chars().any(bad_char)
            && !s.contains("..")
            && !s.contains("@{")
            && !s.contains("//")
            && !s.starts_with('-')
            && !s.starts_with('/')
            && !s.ends_with('/')
            && !s.ends_with('.')
            && s != "@"
            && s != "HEAD"
            && s.split('/')
                .all(|c| !c.starts_with('.') && !c.ends_with(".lock"));
        if ok {
            Ok(BranchName(s))
        } else {
            invalid(
                format!("{} is not a valid branch name", shown(s)),
                "git refuses it (see `git check-ref-format --branch`): use letters, digits and `- _ . /`, e.g. `main` or `release/2026-11`",
            )
        }
    }

    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// The OIDC client id (`sso.clientId`): letters, digits and `_ . : @ / + = -`, at most
/// 255 characters (Entra ID and Google give ids of that alphabet, Keycloak and Dex take
/// names). It lands in YAML strings, Argo CD's `oidc.config` and an API server flag.
pub fn check_client_id(s: &str) -> Result<(), Invalid> {
    let ok_char = |b: u8| b.is_ascii_alphanumeric() || b"_.:@/+=-".contains(&b);
    if !s.is_empty() && s.len() <= 255 && s.bytes().all(ok_char) {
        Ok(())
    } else {
        invalid(
            format!("{} is not an OIDC client id", shown(s)),
            "use the id the identity provider gave: letters, digits and `_ . : @ / + = -`",
        )
    }
}

/// A Kubernetes object name (a Secret's): a DNS subdomain (RFC 1123), at most 253.
pub fn check_object_name(s: &str) -> Result<(), Invalid> {
    if crate::model::net::is_dns_name(s) && !s.is_empty() {
        Ok(())
    } else {
        invalid(
            format!("{} is not a Kubernetes object name", shown(s)),
            "use lowercase letters, digits, `-` and `.`, e.g. `oidc-client`",
        )
    }
}

/// A Kubernetes label value (zones are the nodes' `topology.kubernetes.io/zone`): at most
/// 63 characters of letters, digits and `- _ .`, starting and ending with a letter or
/// digit.
pub fn check_label_value(s: &str) -> Result<(), Invalid> {
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    let ok = s.len() <= 63
        && alnum(s.bytes().next())
        && alnum(s.bytes().last())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        invalid(
            format!("{} is not a Kubernetes label value", shown(s)),
            "use letters, digits and `- _ .`, starting and ending with a letter or digit, e.g. `AZ05`",
        )
    }
}

/// An S3 bucket name: 3 to 63 lowercase letters, digits, `-` and `.`, starting and
/// ending with a letter or digit.
pub fn check_bucket(s: &str) -> Result<(), Invalid> {
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok = (3..=63).contains(&s.len())
        && edge(s.bytes().next())
        && edge(s.bytes().last())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        invalid(
            format!("{} is not an S3 bucket name", shown(s)),
            "use 3 to 63 lowercase letters, digits, `-` and `.`",
        )
    }
}

/// An S3 region: lowercase letters, digits and `-` (`us-east-1`), at most 63.
pub fn check_region(s: &str) -> Result<(), Invalid> {
    if crate::model::net::is_dns_label(s) {
        Ok(())
    } else {
        invalid(
            format!("{} is not an S3 region", shown(s)),
            "use lowercase letters, digits and `-`, e.g. `us-east-1`",
        )
    }
}

/// A disk Talos installs to: a path under `/dev/` of letters, digits and `/ _ . - :`.
pub fn check_install_disk(s: &str) -> Result<(), Invalid> {
    let ok = s.strip_prefix("/dev/").is_some_and(|rest| {
        !rest.is_empty()
            && !rest.contains("..")
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_.-:".contains(&b))
    });
    if ok {
        Ok(())
    } else {
        invalid(
            format!("{} is not a disk device", shown(s)),
            "write a stable device path, e.g. `/dev/disk/by-id/...` or `/dev/disk/by-path/...`",
        )
    }
}

/// A value as messages show it: in backquotes, with control characters escaped, cut at
/// 80 characters (a refused value may be long, and may be anything).
pub fn shown(s: &str) -> String {
    let escaped = escape_controls(s);
    let cut: String = escaped.chars().take(80).collect();
    if cut.len() < escaped.len() {
        format!("`{cut}…`")
    } else {
        format!("`{cut}`")
    }
}

/// `s` with its control characters, line and paragraph separators and byte-order marks
/// escaped (`\n`, `\u{2028}`), so that a message stays on its line.
pub fn escape_controls(s: &str) -> String {
    s.chars()
        .map(|ch| {
            if ch.is_control() || matches!(ch, '\u{2028}' | '\u{2029}' | '\u{feff}') {
                ch.escape_default().collect()
            } else {
                ch.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_as_git_checks_them() {
        for ok in ["main", "release/2026-11", "feature/a.b", "v1.2", "a-b_c"] {
            assert!(BranchName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "main:refs/tags/x",
            "*",
            "-main",
            "a..b",
            "a/.b",
            "x.lock",
            "a/b.lock/c",
            "/a",
            "a/",
            "a//b",
            "a.",
            "@",
            "HEAD",
            "a@{1}",
            "a~1",
            "a^",
            "a?",
            "a[b",
            "a\\b",
            "a\nb",
            "a\u{7f}",
        ] {
            assert!(BranchName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn claim_and_group_names() {
        for ok in ["groups", "roles", "https://example.net/groups", "_g"] {
            assert!(ClaimName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "g\n#! file: x",
            "g'",
            "g\"",
            "g,h",
            "[g]",
            "-g",
            "g#",
        ] {
            assert!(ClaimName::parse(bad).is_err(), "{bad:?}");
        }
        for ok in [
            "initech-platform-admins",
            "Platform Admins",
            "/platform/admins",
            "00000000-0000-0000-0000-000000000000",
            "jane@initech.example",
        ] {
            assert!(GroupName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " a",
            "a ",
            "x') || contains(['a'], 'a",
            "a, role:admin",
            "a\np, *",
            "a\"b",
            "a#b",
            "a\\b",
            "system:authenticated",
        ] {
            assert!(GroupName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn one_line_of_printable_text() {
        assert!(is_one_line("Initech, Inc. — Zürich"));
        for bad in [
            "a\nb",
            "a\rb",
            "a\tb",
            "a\u{85}b",
            "a\u{2028}b",
            "\u{feff}a",
            "a\u{1b}[2J",
        ] {
            assert!(!is_one_line(bad), "{bad:?}");
        }
    }

    #[test]
    fn shown_values_are_escaped_and_cut() {
        assert_eq!(shown("a\nb"), "`a\\nb`");
        assert_eq!(shown(&"x".repeat(100)), format!("`{}…`", "x".repeat(80)));
    }
}
