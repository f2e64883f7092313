//! The per-request protocol fields of a 2026-07-28 request (`params._meta`) and the validation
//! ladder that checks them, and the routing headers, against the body.
//!
//! Ladder (first failure wins, as the Python SDK v2 orders it):
//! 1. `_meta` is an object carrying `io.modelcontextprotocol/protocolVersion` and
//!    `.../clientCapabilities` → else -32602 (HTTP 400);
//! 2. on HTTP: `MCP-Protocol-Version` equals the `_meta` version, `Mcp-Method` equals `method`,
//!    and for `tools/call` / `prompts/get` / `resources/read` the decoded `Mcp-Name` equals
//!    `params.name` / `params.uri` → else -32020 (a missing header is a mismatch);
//! 3. the version is a string → else -32602; the gateway serves it → else -32022 with
//!    `data.supported` and `data.requested`.
//!
//! Perf: one skim (no re-validation: the envelope scan validated the body) over the `_meta` object
//! and the top level of `clientCapabilities`; header values are compared as bytes against body
//! spans, decoding only escaped strings.

use super::answer::Reject;
use super::headers::{decode_value, RoutingHeaders};
use super::skim::members;
use crate::session::modern::CAPABILITY_GROUPS;
use crate::session::versions;
use crate::wire::names::meta as key;
use crate::wire::scan::key_eq;
use crate::wire::{code, method, Envelope, Span};

/// What a modern request's `_meta` declares.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestMeta {
    /// Raw token span of the protocol version value (any JSON type).
    pub version: Option<Span>,
    /// Raw span of `clientCapabilities` (read only when a server request needs it:
    /// [`capability_flags`]).
    pub caps: Option<Span>,
    /// `logLevel` as a severity (0 = debug … 7 = emergency); `None`: send no log messages.
    pub log_level: Option<u8>,
    /// A reserved key appeared twice.
    duplicate: bool,
}

/// Severity of an MCP logging level name (RFC 5424 order), `None` for an unknown name.
pub fn severity(level: &[u8]) -> Option<u8> {
    const LEVELS: [&[u8]; 8] = [
        b"debug",
        b"info",
        b"notice",
        b"warning",
        b"error",
        b"critical",
        b"alert",
        b"emergency",
    ];
    LEVELS.iter().position(|l| *l == level).map(|i| i as u8)
}

/// Whether `raw` is a JSON object (first byte `{`).
fn is_object(raw: &[u8]) -> bool {
    raw.first() == Some(&b'{')
}

/// String token content, if `raw` is a JSON string without escapes.
fn plain_string(raw: &[u8]) -> Option<&[u8]> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    (!inner.contains(&b'\\')).then_some(inner)
}

/// Reads the reserved keys of `params._meta` (the body is already validated by the envelope scan).
pub fn read(body: &[u8], env: &Envelope) -> RequestMeta {
    let mut m = RequestMeta::default();
    let Some(span) = env.meta else {
        return m;
    };
    members(body, span.start as usize, |k, escaped, v| {
        let name = k.get(body);
        let is = |lit: &[u8]| key_eq(name, escaped, lit);
        if is(key::PROTOCOL_VERSION) {
            m.duplicate |= m.version.replace(v).is_some();
        } else if is(key::CLIENT_CAPABILITIES) {
            m.duplicate |= m.caps.replace(v).is_some();
        } else if is(key::LOG_LEVEL) {
            m.log_level = plain_string(v.get(body)).and_then(severity);
        }
    });
    m
}

/// The [`crate::session::caps`] flags of a (validated) `clientCapabilities` object, sub-capabilities included.
pub fn capability_flags(raw: &[u8]) -> u16 {
    if !is_object(raw) {
        return 0;
    }
    let body = raw;
    let mut flags = 0;
    members(body, 0, |k, escaped, v| {
        let name = k.get(body);
        let Some(g) = CAPABILITY_GROUPS
            .iter()
            .find(|g| key_eq(name, escaped, g.name.as_bytes()))
        else {
            return;
        };
        flags |= g.flag;
        members(body, v.start as usize, |sk, sescaped, sv| {
            let sub = sk.get(body);
            for &(key, flag, value) in g.subs {
                // `roots.listChanged` counts only when true; the others are objects.
                let on = value != "true" || sv.get(body) == b"true";
                if on && key_eq(sub, sescaped, key.as_bytes()) {
                    flags |= flag;
                }
            }
        });
    });
    flags
}

/// Whether a body carries a modern `_meta` (the era signal when no version header was sent).
pub fn declares_modern(body: &[u8], env: &Envelope) -> bool {
    read(body, env).version.is_some()
}

/// The body value `Mcp-Name` mirrors for `method`, as (content span, escaped), if that method
/// has one and the body carries it as a string.
fn named_value(env: &Envelope, method_name: &str) -> Option<(Option<Span>, bool)> {
    match method_name {
        method::TOOLS_CALL | method::PROMPTS_GET => Some((env.name, env.name_escaped)),
        method::RESOURCES_READ => Some((env.uri, env.uri_escaped)),
        _ => None,
    }
}

/// Runs the ladder. `headers` is `None` off HTTP (stdio), where rung 2 does not apply.
pub fn check(
    body: &[u8],
    env: &Envelope,
    method_name: &str,
    m: &RequestMeta,
    headers: Option<&RoutingHeaders<'_>>,
) -> Result<(), Reject> {
    let (Some(version), Some(_), false) = (m.version, m.caps, m.duplicate) else {
        return Err(Reject::new(
            code::INVALID_PARAMS,
            "params._meta must be an object carrying 'io.modelcontextprotocol/protocolVersion' and 'io.modelcontextprotocol/clientCapabilities' (each once)",
        ));
    };
    let version = version.get(body);
    if let Some(h) = headers {
        check_headers(body, env, method_name, version, h)?;
    }
    let Some(requested) = version
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
    else {
        return Err(Reject::new(
            code::INVALID_PARAMS,
            "the protocol-version envelope value must be a string",
        ));
    };
    if !versions::is_modern(requested) {
        let mut data = b"{\"supported\":".to_vec();
        data.extend_from_slice(versions::ALL_JSON.as_bytes());
        data.extend_from_slice(b",\"requested\":");
        data.extend_from_slice(version);
        data.push(b'}');
        return Err(Reject::new(
            code::UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version",
        )
        .with_data(data));
    }
    Ok(())
}

/// Rung 2: the routing headers against the body.
fn check_headers(
    body: &[u8],
    env: &Envelope,
    method_name: &str,
    version_raw: &[u8],
    h: &RoutingHeaders<'_>,
) -> Result<(), Reject> {
    let mismatch = |what: &'static str| Reject::new(code::HEADER_MISMATCH, what);
    if let Some(name) = h.duplicated {
        return Err(Reject::new(
            code::HEADER_MISMATCH,
            format!("{name} header appears more than once"),
        ));
    }
    let body_version = version_raw
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""));
    if h.version.is_none() || h.version != body_version {
        return Err(mismatch(
            "MCP-Protocol-Version header does not match the request's _meta protocolVersion",
        ));
    }
    if h.method != Some(method_name.as_bytes()) {
        return Err(mismatch(
            "Mcp-Method header does not match the request body's method",
        ));
    }
    let Some((Some(span), escaped)) = named_value(env, method_name) else {
        return Ok(());
    };
    let body_value = crate::wire::envelope::content_str(body, span, escaped);
    let header_value = h.name.and_then(decode_value);
    match (body_value, header_value) {
        (Some(b), Some(hv)) if b.as_bytes() == &*hv => Ok(()),
        _ => Err(mismatch(if method_name == method::RESOURCES_READ {
            "Mcp-Name header does not match the request body's 'uri' parameter"
        } else {
            "Mcp-Name header does not match the request body's 'name' parameter"
        })),
    }
}

/// The severity of a `notifications/message` (its `params.level`), if readable.
pub fn log_level_of(msg: &[u8], env: &Envelope) -> Option<u8> {
    let params = env.params?;
    let mut level = None;
    members(msg, params.start as usize, |k, escaped, v| {
        if key_eq(k.get(msg), escaped, b"level") {
            level = plain_string(v.get(msg)).and_then(severity);
        }
    });
    level
}

/// Encodes `{"requiredCapabilities":{…}}` for -32021: the [`crate::session::caps`] flags a request needed, as a
/// `ClientCapabilities` object (e.g. `{"elicitation":{"url":{}}}`, `{"sampling":{"tools":{}}}`).
pub fn required_capability_data(needed: u16) -> Vec<u8> {
    let mut out = b"{\"requiredCapabilities\":".to_vec();
    crate::session::modern::write_capabilities(&mut out, needed);
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::caps;

    #[test]
    fn capabilities_read_with_their_sub_capabilities_and_required_ones_are_written_so() {
        let flags = capability_flags(
            br#"{"sampling":{"tools":{}},"elicitation":{"url":{}},"roots":{"listChanged":true},"x":{"form":{}}}"#,
        );
        assert_eq!(
            flags,
            caps::SAMPLING
                | caps::SAMPLING_TOOLS
                | caps::ELICITATION
                | caps::ELICITATION_URL
                | caps::ROOTS
                | caps::ROOTS_LIST_CHANGED
        );
        assert_eq!(
            capability_flags(br#"{"elicitation":{}}"#),
            caps::ELICITATION
        );
        let data = |flags| String::from_utf8(required_capability_data(flags)).unwrap();
        assert_eq!(
            data(caps::ELICITATION | caps::ELICITATION_URL),
            r#"{"requiredCapabilities":{"elicitation":{"url":{}}}}"#
        );
        assert_eq!(
            data(caps::SAMPLING | caps::SAMPLING_TOOLS),
            r#"{"requiredCapabilities":{"sampling":{"tools":{}}}}"#
        );
        assert_eq!(
            data(caps::ROOTS),
            r#"{"requiredCapabilities":{"roots":{}}}"#
        );
    }
}
