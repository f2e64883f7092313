//! A deliberately small URL type for downstream endpoints: `http(s)://host[:port][/path][?query]`.
//!
//! Hand-written rather than a dependency because the gateway needs only what an HTTP/1.1
//! client needs — where to connect (`host`, `port`), what to send as `Host` (`authority`) and
//! the request target (`path_and_query`) — and rejecting everything else (userinfo,
//! fragments, other schemes) up front is a feature: credentials belong in `headers`.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// The URL scheme; only plain and TLS HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http://`, default port 80.
    Http,
    /// `https://`, default port 443.
    Https,
}

impl Scheme {
    /// 80 for http, 443 for https.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A parsed downstream endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host to connect to, lowercased; IPv6 literals *without* brackets (ready for
    /// `(host, port)` address resolution).
    pub host: String,
    /// Port, explicit or the scheme default; never 0.
    pub port: u16,
    /// Request target: path (at least `/`) plus `?query` if any.
    pub path_and_query: String,
    /// The `Host` header value: host (IPv6 bracketed) plus `:port` only when it is not the
    /// scheme default, as browsers and curl send it.
    pub authority: String,
}

impl Url {
    /// Parses `http(s)://host[:port][/path][?query]`.
    ///
    /// # Errors
    ///
    /// A short, user-facing reason: wrong scheme, missing or invalid host, port 0 or out of
    /// range, userinfo, a fragment, or whitespace/control characters.
    pub fn parse(input: &str) -> Result<Url, String> {
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("contains whitespace or control characters".to_owned());
        }
        let (scheme, rest) = split_scheme(input)?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if tail.contains('#') {
            return Err("fragments (`#...`) are not allowed".to_owned());
        }
        if authority.contains('@') {
            return Err(
                "credentials in the URL are not supported; send them with `headers` instead"
                    .to_owned(),
            );
        }
        let (host, port) = split_host_port(authority, scheme)?;
        let path_and_query = match tail.chars().next() {
            None => "/".to_owned(),
            Some('?') => format!("/{tail}"),
            Some(_) => tail.to_owned(),
        };
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let authority = if port == scheme.default_port() {
            bracketed
        } else {
            format!("{bracketed}:{port}")
        };
        Ok(Url {
            scheme,
            host,
            port,
            path_and_query,
            authority,
        })
    }
}

impl FromStr for Url {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Url::parse(s)
    }
}

impl fmt::Display for Url {
    /// The canonical form: `scheme://authority/path?query`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority,
            self.path_and_query
        )
    }
}

/// The scheme is case-insensitive (RFC 3986 §3.1).
fn split_scheme(input: &str) -> Result<(Scheme, &str), String> {
    let Some((scheme, rest)) = input.split_once("://") else {
        return Err("must start with http:// or https://".to_owned());
    };
    let scheme = if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else {
        return Err(format!(
            "unsupported scheme `{scheme}` (use http:// or https://)"
        ));
    };
    Ok((scheme, rest))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` → (lowercased host, port).
fn split_host_port(authority: &str, scheme: Scheme) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err("unterminated `[` in IPv6 host".to_owned());
        };
        if Ipv6Addr::from_str(host).is_err() {
            return Err(format!("invalid IPv6 address `{host}`"));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err(format!("unexpected `{after}` after IPv6 host")),
            },
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("missing host".to_owned());
    }
    let v6 = authority.starts_with('[');
    if !v6
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(format!("invalid host `{host}`"));
    }
    let port = match port {
        None => scheme.default_port(),
        Some(port) => parse_port(port)?,
    };
    Ok((host.to_ascii_lowercase(), port))
}

fn parse_port(port: &str) -> Result<u16, String> {
    // `u16::from_str` accepts a leading `+`; a URL port is digits only.
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid port `{port}`"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port `{port}` is out of range (1-65535)")),
        Ok(port) => Ok(port),
    }
}
