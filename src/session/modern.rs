//! The gateway as a 2026-07-28 client of a modern downstream: what every message it sends there
//! must carry.
//!
//! A modern server needs, on every request, `_meta` with `io.modelcontextprotocol/protocolVersion`
//! and `.../clientCapabilities` (a modern client's request already has them; a legacy client's, or
//! the gateway's own list fetch, gets them spliced in), and on HTTP the `Mcp-Method` header and, for
//! `tools/call` / `prompts/get` / `resources/read`, `Mcp-Name` (base64-wrapped when the value is not
//! a plain header-safe string). [`outbound`] works that out from the message itself, so every
//! sender (forwarded calls, list fetches, detached sends) gets it from one place.
//!
//! Client capabilities declared downstream: none on the gateway's own requests; on a legacy
//! client's call, those its session declared, with their sub-capabilities (`sampling.tools`,
//! `elicitation.form` / `.url`, …; the bridge turns the server's `input_required` into real
//! requests to that client: [`meta_edit_for`]). A server that needs one that was not declared
//! answers -32021.
//!
//! Perf: one envelope scan of the outgoing message (joined first when it is in pieces); the
//! message's own bytes are kept, with at most one splice.

use bytes::Bytes;
use smallvec::SmallVec;

use super::versions;
use crate::wire::{self, method, rewrite, Kind, Span};

/// What to send to a modern downstream: the message (pieces) and its routing header values.
pub struct Outbound {
    /// The message, with the modern `_meta` spliced in if it lacked one.
    pub body: SmallVec<[Bytes; 7]>,
    /// `Mcp-Method`.
    pub method: Option<Bytes>,
    /// `Mcp-Name` (already encoded for a header).
    pub name: Option<Bytes>,
}

/// The `_meta` members the gateway adds to a request that has none of its own (no braces).
fn meta_members() -> Vec<u8> {
    meta_members_with(0)
}

/// The `_meta` members declaring the [`super::caps`] flags `caps` (no braces).
fn meta_members_with(caps: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(200);
    m.extend_from_slice(b"\"io.modelcontextprotocol/protocolVersion\":\"");
    m.extend_from_slice(versions::LATEST_MODERN.as_bytes());
    m.extend_from_slice(
        b"\",\"io.modelcontextprotocol/clientInfo\":{\"name\":\"ringgate\",\"version\":\"",
    );
    m.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    m.extend_from_slice(b"\"},\"io.modelcontextprotocol/clientCapabilities\":");
    write_capabilities(&mut m, caps);
    m
}

/// One client capability and its sub-capabilities, as [`super::caps`] flags and JSON.
pub struct CapabilityGroup {
    /// The capability's key (`sampling`, …).
    pub name: &'static str,
    /// Its flag.
    pub flag: u16,
    /// Its sub-capabilities: (key, flag, the JSON value declaring it).
    pub subs: &'static [(&'static str, u16, &'static str)],
}

/// The client capabilities the gateway tracks (those a server-to-client request may need).
pub const CAPABILITY_GROUPS: [CapabilityGroup; 3] = {
    use super::caps::*;
    [
        CapabilityGroup {
            name: "sampling",
            flag: SAMPLING,
            subs: &[
                ("tools", SAMPLING_TOOLS, "{}"),
                ("context", SAMPLING_CONTEXT, "{}"),
            ],
        },
        CapabilityGroup {
            name: "elicitation",
            flag: ELICITATION,
            subs: &[
                ("form", ELICITATION_FORM, "{}"),
                ("url", ELICITATION_URL, "{}"),
            ],
        },
        CapabilityGroup {
            name: "roots",
            flag: ROOTS,
            subs: &[("listChanged", ROOTS_LIST_CHANGED, "true")],
        },
    ]
};

/// The `ClientCapabilities` object the [`super::caps`] flags `caps` stand for, sub-capabilities
/// included (`sampling.tools`, `elicitation.form` / `.url`, `roots.listChanged`, …), so a
/// modern server sees what the session really declared.
pub fn write_capabilities(m: &mut Vec<u8>, caps: u16) {
    m.push(b'{');
    for (i, g) in CAPABILITY_GROUPS
        .iter()
        .filter(|g| caps & g.flag != 0)
        .enumerate()
    {
        if i > 0 {
            m.push(b',');
        }
        m.push(b'"');
        m.extend_from_slice(g.name.as_bytes());
        m.extend_from_slice(b"\":{");
        for (j, (key, _, value)) in g.subs.iter().filter(|s| caps & s.1 != 0).enumerate() {
            if j > 0 {
                m.push(b',');
            }
            m.push(b'"');
            m.extend_from_slice(key.as_bytes());
            m.extend_from_slice(b"\":");
            m.extend_from_slice(value.as_bytes());
        }
        m.push(b'}');
    }
    m.push(b'}');
}

/// `"_meta":{…}` as the gateway writes it for a request of its own.
pub fn meta_param() -> Vec<u8> {
    meta_param_of(&meta_members())
}

/// `"_meta":{<members>}`.
fn meta_param_of(members: &[u8]) -> Vec<u8> {
    let mut m = b"\"_meta\":{".to_vec();
    m.extend_from_slice(members);
    m.push(b'}');
    m
}

/// Prepares `pieces` (one JSON-RPC message) for a modern downstream.
pub fn outbound(pieces: &[Bytes]) -> Outbound {
    let msg = rewrite::concat(pieces);
    let keep = || Outbound {
        body: pieces.iter().cloned().collect(),
        method: None,
        name: None,
    };
    let Ok(env) = wire::parse(&msg) else {
        return keep();
    };
    if !matches!(env.kind, Kind::Request | Kind::Notification) {
        return keep();
    }
    let method_name = env.method(&msg).unwrap_or("");
    let name = match method_name {
        method::TOOLS_CALL | method::PROMPTS_GET => env.name_str(&msg),
        method::RESOURCES_READ => env.uri_str(&msg),
        _ => None,
    };
    let mut out = Outbound {
        body: SmallVec::new(),
        method: Some(Bytes::copy_from_slice(method_name.as_bytes())),
        name: name.map(|n| Bytes::from(encode_header_value(&n))),
    };
    let edit = if env.kind == Kind::Request && !has_modern_meta(&msg, env.meta) {
        meta_edit(&msg, &env)
    } else {
        None
    };
    out.body = match edit {
        Some(e) => rewrite::splice(&msg, &mut [e]),
        None => std::iter::once(msg).collect(),
    };
    out
}

/// Whether the `_meta` object at `meta` names a protocol version (a modern client's request).
fn has_modern_meta(msg: &[u8], meta: Option<Span>) -> bool {
    let Some(span) = meta else {
        return false;
    };
    let mut found = false;
    let _ = wire::scan::for_each_member(msg, span.start as usize, |k, escaped, _| {
        found |= wire::scan::key_eq(
            k.get(msg),
            escaped,
            b"io.modelcontextprotocol/protocolVersion",
        );
    });
    found
}

/// The splice giving a legacy client's request (`msg`, not yet spliced) the modern `_meta`,
/// declaring the [`super::caps`] flags `caps`; `None` if it already has one (or cannot take one).
pub fn meta_edit_for(msg: &[u8], env: &wire::Envelope, caps: u16) -> Option<(Span, Bytes)> {
    if has_modern_meta(msg, env.meta) {
        return None;
    }
    meta_edit_with(msg, env, meta_members_with(caps))
}

/// The splice adding the gateway's `_meta` members: into an existing `_meta` object, else as a new
/// first member of `params`, else as a new `params` before the message's closing brace.
fn meta_edit(msg: &[u8], env: &wire::Envelope) -> Option<(Span, Bytes)> {
    meta_edit_with(msg, env, meta_members())
}

/// [`meta_edit`] with the given members.
fn meta_edit_with(msg: &[u8], env: &wire::Envelope, members: Vec<u8>) -> Option<(Span, Bytes)> {
    let insert_first = |obj: Span, members: Vec<u8>| {
        let at = obj.start as usize + 1;
        let empty = msg.get(wire::scan::skip_ws(msg, at)) == Some(&b'}');
        let mut v = members;
        if !empty {
            v.push(b',');
        }
        (Span::new(at, at), Bytes::from(v))
    };
    match (env.meta, env.params) {
        (Some(meta), _) => Some(insert_first(meta, members)),
        (None, Some(params)) if msg.get(params.start as usize) == Some(&b'{') => {
            Some(insert_first(params, meta_param_of(&members)))
        }
        (None, Some(_)) => None,
        (None, None) => {
            let close = msg.iter().rposition(|&b| b == b'}')?;
            let mut v = b",\"params\":{".to_vec();
            v.extend_from_slice(&meta_param_of(&members));
            v.push(b'}');
            Some((Span::new(close, close), Bytes::from(v)))
        }
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard padded base64.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A value as a mirrored header carries it: verbatim when it is plain printable ASCII without edge
/// whitespace (and does not look like the sentinel), else `=?base64?…?=`.
pub fn encode_header_value(value: &str) -> String {
    let plain = value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && value.trim() == value
        && !(value.starts_with("=?base64?") && value.ends_with("?="));
    if plain {
        value.to_string()
    } else {
        format!("=?base64?{}?=", base64_encode(value.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(msg: &str) -> (String, Option<String>, Option<String>) {
        let o = outbound(&[Bytes::copy_from_slice(msg.as_bytes())]);
        let text = String::from_utf8(rewrite::concat(&o.body).to_vec()).unwrap();
        let s = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
        (text, s(o.method), s(o.name))
    }

    #[test]
    fn requests_gain_the_modern_meta_once() {
        let (t, m, n) = out(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#,
        );
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        assert_eq!(
            v["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
            "2026-07-28"
        );
        assert!(v["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"].is_object());
        assert_eq!(
            (m.as_deref(), n.as_deref()),
            (Some("tools/call"), Some("echo"))
        );

        let (t, _, _) = out(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        assert!(v["params"]["_meta"].is_object());

        let (t, _, _) = out(
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"progressToken":1}}}"#,
        );
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["params"]["_meta"]["progressToken"], 1);
        assert!(v["params"]["_meta"]["io.modelcontextprotocol/clientInfo"].is_object());

        let modern = r#"{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"file:///é","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
        let (t, _, n) = out(modern);
        assert_eq!(t, modern);
        assert_eq!(n.as_deref(), Some("=?base64?ZmlsZTovLy/DqQ==?="));
    }

    #[test]
    fn header_values_are_wrapped_only_when_needed() {
        assert_eq!(encode_header_value("us-west1"), "us-west1");
        assert_eq!(
            encode_header_value("Hello, 世界"),
            "=?base64?SGVsbG8sIOS4lueVjA==?="
        );
        assert_eq!(encode_header_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(
            encode_header_value("=?base64?literal?="),
            "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="
        );
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }
}
