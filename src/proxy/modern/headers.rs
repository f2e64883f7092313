//! The HTTP headers a 2026-07-28 request mirrors from its body, read once per request.
//!
//! Key type: [`RoutingHeaders`]: `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and every
//! `Mcp-Param-*` field, as zero-copy views into the received head, plus which routing header (if
//! any) was sent more than once (first-copy and last-copy readers would disagree: -32020).
//!
//! Values that are not plain header-safe ASCII travel in the sentinel form `=?base64?…?=`;
//! [`decode_value`] undoes it (canonical base64 only, valid UTF-8 only), so a corrupt header never
//! matches a body value by accident.
//!
//! Perf: one pass over the header list; nothing allocates unless a value is base64-wrapped.

use std::borrow::Cow;

use smallvec::SmallVec;

use crate::transport::http::Headers;

/// Prefix (lowercase) of the per-argument headers a `tools/call` mirrors.
pub const PARAM_PREFIX: &[u8] = b"mcp-param-";

/// The routing headers of one request.
#[derive(Debug, Default, Clone)]
pub struct RoutingHeaders<'a> {
    /// `MCP-Protocol-Version`.
    pub version: Option<&'a [u8]>,
    /// `Mcp-Method`.
    pub method: Option<&'a [u8]>,
    /// `Mcp-Name` (raw: may be base64-wrapped; see [`decode_value`]).
    pub name: Option<&'a [u8]>,
    /// `Mcp-Param-*` fields as (name suffix after `Mcp-Param-`, raw value), in received order.
    pub params: SmallVec<[(&'a [u8], &'a [u8]); 4]>,
    /// A routing header that appeared more than once, if any.
    pub duplicated: Option<&'static str>,
}

impl<'a> RoutingHeaders<'a> {
    /// Reads the routing headers of a request in one pass.
    pub fn from_headers(h: &'a Headers) -> RoutingHeaders<'a> {
        let mut out = RoutingHeaders::default();
        for (name, value) in h.iter() {
            let slot = if name.eq_ignore_ascii_case(b"mcp-protocol-version") {
                (&mut out.version, "MCP-Protocol-Version")
            } else if name.eq_ignore_ascii_case(b"mcp-method") {
                (&mut out.method, "Mcp-Method")
            } else if name.eq_ignore_ascii_case(b"mcp-name") {
                (&mut out.name, "Mcp-Name")
            } else {
                if name.len() > PARAM_PREFIX.len()
                    && name[..PARAM_PREFIX.len()].eq_ignore_ascii_case(PARAM_PREFIX)
                {
                    out.params.push((&name[PARAM_PREFIX.len()..], value));
                }
                continue;
            };
            if slot.0.replace(value).is_some() {
                out.duplicated.get_or_insert(slot.1);
            }
        }
        out
    }

    /// The `Mcp-Param-<token>` value (token compared case-insensitively), and whether the
    /// header was sent more than once.
    pub fn param(&self, token: &[u8]) -> (Option<&'a [u8]>, bool) {
        let mut found = self
            .params
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(token))
            .map(|(_, v)| *v);
        let first = found.next();
        (first, found.next().is_some())
    }
}

const SENTINEL_START: &[u8] = b"=?base64?";
const SENTINEL_END: &[u8] = b"?=";

/// Decodes a mirrored header value: verbatim unless it carries the `=?base64?…?=` sentinel, whose
/// payload must be canonical base64 of UTF-8. `None` for a malformed sentinel.
pub fn decode_value(raw: &[u8]) -> Option<Cow<'_, [u8]>> {
    let payload = match raw
        .strip_prefix(SENTINEL_START)
        .and_then(|r| r.strip_suffix(SENTINEL_END))
    {
        Some(p) => p,
        None => return Some(Cow::Borrowed(raw)),
    };
    let bytes = base64_decode(payload)?;
    std::str::from_utf8(&bytes).ok()?;
    Some(Cow::Owned(bytes))
}

fn sextet(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// Standard, padded, canonical base64 (non-zero trailing bits are rejected, as the encoder
/// never produces them).
fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let quads = s.len() / 4;
    for (i, q) in s.chunks_exact(4).enumerate() {
        let pad = match (q[2], q[3]) {
            (b'=', b'=') => 2,
            (_, b'=') => 1,
            _ => 0,
        };
        if pad > 0 && i + 1 != quads {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | sextet(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = n.to_be_bytes();
        let (keep, spare) = bytes[1..].split_at(3 - pad);
        if spare.iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(keep);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_values_decode_and_bad_ones_do_not() {
        assert_eq!(decode_value(b"us-west1").as_deref(), Some(&b"us-west1"[..]));
        let hello = decode_value(b"=?base64?SGVsbG8sIOS4lueVjA==?=").unwrap();
        assert_eq!(std::str::from_utf8(&hello).unwrap(), "Hello, 世界");
        assert_eq!(
            decode_value(b"=?base64?IHBhZGRlZCA=?=").as_deref(),
            Some(&b" padded "[..])
        );
        assert_eq!(
            decode_value(b"=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=").as_deref(),
            Some(&b"=?base64?literal?="[..])
        );
        for bad in [
            b"=?base64?SGVsbG8?=" as &[u8],
            b"=?base64?SGVsbG9=?=",
            b"=?base64?S===?=",
            b"=?base64?/w==?=",
            b"=?base64?SG=s?=",
        ] {
            assert!(
                decode_value(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(decode_value(b"=?base64??=").as_deref(), Some(&b""[..]));
    }
}
