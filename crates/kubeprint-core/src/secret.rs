//! A redacting wrapper for secret values: its `Debug` and `Display` print `[redacted]`.
//!
//! Secrets (Talos keys and tokens, SOPS data keys, decrypted trees) travel in a
//! [`Secret`], so that no `{:?}` in a log line, panic or error message can leak them.
//! The value is reached only through [`Secret::expose`], which is easy to grep for.

use std::fmt;

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The secret value itself: only to hand it to the code that needs it (a cipher, a
    /// config document), never to a log line or a message.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(
            format!("{s:?} {s} {s:#?}"),
            "[redacted] [redacted] [redacted]"
        );
        assert_eq!(s.expose(), "hunter2");
        let nested = Some(vec![Secret::new(1)]);
        assert_eq!(format!("{nested:?}"), "Some([[redacted]])");
    }
}
