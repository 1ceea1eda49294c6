//! Problems found in the inputs: errors stop a render, warnings are reported.

use serde::Serialize;

use crate::yaml;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem: where (`file:line:column`), what, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// `file:line:column`, or a file or cluster name when there is no finer place.
    pub location: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(location: String, message: String, hint: Option<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            location,
            message,
            hint,
        }
    }

    pub fn warning(location: String, message: String, hint: Option<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            location,
            message,
            hint,
        }
    }

    /// A YAML error as a diagnostic, its location split from its message.
    pub fn from_yaml(err: &yaml::Error) -> Self {
        let (file, location, message) = match err {
            yaml::Error::Syntax {
                file,
                location,
                message,
            } => (file, location, format!("invalid YAML: {message}")),
            yaml::Error::Shape {
                file,
                location,
                message,
                ..
            } => (file, location, message.clone()),
        };
        Diagnostic::error(
            format!("{file}:{location}"),
            message,
            err.hint().map(str::to_string),
        )
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}: {}", self.location, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found, errors and warnings together, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// Sorts by location (file, then line and column numerically), errors before warnings.
    pub fn sorted(mut self) -> Self {
        self.items.sort_by(|a, b| {
            location_key(&a.location)
                .cmp(&location_key(&b.location))
                .then(b.severity.cmp(&a.severity))
                .then(a.message.cmp(&b.message))
        });
        self.items.dedup();
        self
    }
}

fn location_key(loc: &str) -> (String, u32, u32) {
    let mut parts = loc.rsplitn(3, ':');
    let (c, l, f) = (parts.next(), parts.next(), parts.next());
    match (
        f,
        l.and_then(|l| l.parse().ok()),
        c.and_then(|c| c.parse().ok()),
    ) {
        (Some(f), Some(l), Some(c)) => (f.to_string(), l, c),
        _ => (loc.to_string(), 0, 0),
    }
}
