//! Host names as `api.allowed_hosts` and the `Host` header give them: `name`, `name:port`,
//! `[v6]`, `[v6]:port`, checked and lower-cased. Used by the config check and by the server's
//! DNS-rebinding guard.

use std::net::IpAddr;

/// One `api.allowed_hosts` entry: a lower-case name and an optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// Host name or address, lower case, without brackets.
    pub name: String,
    /// The only port accepted with it, when given.
    pub port: Option<u16>,
}

/// Splits a `Host` header value (`name`, `name:port`, `[v6]`, `[v6]:port`) into a lower-case
/// name and an optional port; `None` when it is not of that form.
pub fn split_host(value: &str) -> Option<(String, Option<u16>)> {
    let value = value.trim();
    let (name, port) = if let Some(rest) = value.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        (name, port)
    } else {
        match value.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') => (name, Some(port.parse().ok()?)),
            Some(_) => (value, None), // a bare IPv6 address
            None => (value, None),
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && (name.parse::<IpAddr>().is_ok()
            || name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    valid.then_some((name, port))
}

/// Parses an `api.allowed_hosts` entry (`name` or `name:port`, no scheme or path).
pub fn parse_allowed(entry: &str) -> Option<AllowedHost> {
    split_host(entry).map(|(name, port)| AllowedHost { name, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_entries_parse() {
        assert_eq!(
            parse_allowed("Dev.Example:99"),
            Some(AllowedHost {
                name: "dev.example".into(),
                port: Some(99)
            })
        );
        assert!(parse_allowed("https://x.example").is_none());
        assert!(parse_allowed("x.example/path").is_none());
        assert!(parse_allowed("").is_none());
    }
}
