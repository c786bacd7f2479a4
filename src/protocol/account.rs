//! Accounts as both sides see them, and the rule for where a sign-in may return to.

use serde::{Deserialize, Serialize};

/// The signed-in person, as the header and `/rooms` show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub avatar_url: Option<String>,
    /// `github` or `google`.
    pub provider: String,
}

/// Who is signed in (if anyone) and which sign-in buttons to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Me {
    pub account: Option<Account>,
    /// Slugs of the configured providers (`github`, `google`).
    pub providers: Vec<String>,
}

/// Where a finished sign-in may send the browser: a path on this site, or `/rooms`.
/// Anything else (other hosts, `//host`, backslashes, control characters) would be an open
/// redirect.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() <= 512
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/rooms".into(),
    }
}

/// Percent-encodes a value for a query string (keeps `/` readable).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_stay_on_this_site() {
        assert_eq!(safe_next(Some("/rooms?x=1")), "/rooms?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "rooms",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/rooms", "{bad}");
        }
        assert_eq!(safe_next(None), "/rooms");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(urlencode("/rooms?a=b&c"), "/rooms%3Fa%3Db%26c");
    }
}
