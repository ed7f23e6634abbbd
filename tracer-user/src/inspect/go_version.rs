//! Go release versions, as the catalogue compares them.

use std::fmt;

/// A Go release `go1.MINOR.PATCH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoVersion {
    pub minor: u32,
    pub patch: u32,
}

impl GoVersion {
    pub const fn new(minor: u32, patch: u32) -> Self {
        Self { minor, patch }
    }

    /// Parses `go1.27.3`, `go1.19`, `go1.24rc1` (as 1.24.0). `None` for
    /// anything else, such as development builds.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("go1.")?;
        let mut parts = rest.split('.');
        let minor = leading_number(parts.next()?)?;
        let patch = parts.next().and_then(leading_number).unwrap_or(0);
        Some(Self { minor, patch })
    }
}

fn leading_number(text: &str) -> Option<u32> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "go1.{}.{}", self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_strings() {
        assert_eq!(GoVersion::parse("go1.27.3"), Some(GoVersion::new(27, 3)));
        assert_eq!(GoVersion::parse("go1.19"), Some(GoVersion::new(19, 0)));
        assert_eq!(GoVersion::parse("go1.24rc1"), Some(GoVersion::new(24, 0)));
        assert_eq!(GoVersion::parse("devel +abc"), None);
        assert!(GoVersion::new(19, 8) < GoVersion::new(27, 0));
    }
}
