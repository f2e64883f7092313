//! What a 2026-07-28 client gets back: the gateway's own answers (`server/discover`, list pages),
//! the additions spliced into relayed results (`resultType`, cache hints), and errors with the
//! era's HTTP statuses.
//!
//! Results: every result a modern client receives carries `resultType` (legacy downstreams never
//! send it: it is inserted right after the result's opening brace, by splicing, never by
//! re-serializing). Lists, `server/discover` and `resources/read` also carry `ttlMs` and
//! `cacheScope`.
//!
//! Cache hints ([`CacheHint`]): a merged answer takes the minimum `ttlMs` of its sources and is
//! `private` if any source is. A legacy downstream gives no freshness information and may change
//! its lists at any moment (it announces `list_changed` on a stream modern clients do not see), so
//! what it contributes is immediately stale and private: [`LEGACY_HINT`] (`ttlMs: 0`,
//! `cacheScope: "private"`, the Python SDK's own defaults). Private also because the policy may
//! filter what each principal sees.
//!
//! Errors ([`Reject`]): the JSON-RPC code decides the HTTP status, as in the SDK's table: -32700,
//! -32600, -32602, -32020, -32021, -32022 → 400; -32601 → 404; anything else keeps the status the
//! legacy mapping gives (usually 200: the exchange worked, the call failed). -32002 (resource not
//! found) no longer exists in this era and becomes -32602.

use std::borrow::Cow;

use bytes::Bytes;

use super::super::{one, Outcome, Pieces};
use super::skim::members;
use crate::catalog::Snapshot;
use crate::error::GatewayError;
use crate::session::versions;
use crate::wire::names::meta;
use crate::wire::scan::{key_eq, skip_ws};
use crate::wire::{code, encode, Span, Splice};

pub use crate::catalog::hint::{CacheHint, LEGACY_HINT};

/// A modern-era error: code, message, optional `data`, and the HTTP status its code calls for.
#[derive(Debug, Clone)]
pub struct Reject {
    /// HTTP status.
    pub status: u16,
    /// JSON-RPC error code.
    pub code: i32,
    /// Message for the client.
    pub message: Cow<'static, str>,
    /// Raw JSON `data`, if any.
    pub data: Option<Vec<u8>>,
}

/// The HTTP status of a modern error code; `fallback` for codes the table does not name.
pub fn status_for(code: i32, fallback: u16) -> u16 {
    match code {
        code::PARSE_ERROR
        | code::INVALID_REQUEST
        | code::INVALID_PARAMS
        | code::HEADER_MISMATCH
        | code::MISSING_REQUIRED_CLIENT_CAPABILITY
        | code::UNSUPPORTED_PROTOCOL_VERSION => 400,
        code::METHOD_NOT_FOUND => 404,
        _ => fallback,
    }
}

impl Reject {
    /// An error with the status its code calls for.
    pub fn new(code: i32, message: impl Into<Cow<'static, str>>) -> Reject {
        Reject {
            status: status_for(code, 200),
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attaches raw JSON `data`.
    pub fn with_data(mut self, data: Vec<u8>) -> Reject {
        self.data = Some(data);
        self
    }

    /// The modern form of a gateway error (-32002 → -32602; status by code).
    pub fn from_gateway(e: &GatewayError) -> Reject {
        let code = match e.jsonrpc_code() {
            code::RESOURCE_NOT_FOUND => code::INVALID_PARAMS,
            c => c,
        };
        Reject {
            status: status_for(code, e.http_status()),
            code,
            message: e.message.clone(),
            data: None,
        }
    }

    /// The JSON-RPC error message for request `id`.
    pub fn to_jsonrpc(&self, id: Option<&[u8]>) -> Bytes {
        encode::error_response(id, self.code, &self.message, self.data.as_deref())
    }

    /// The reply: the error with its status.
    pub fn outcome(&self, id: Option<&[u8]>) -> Outcome {
        Outcome::Json {
            status: self.status,
            body: one(self.to_jsonrpc(id)),
            session: None,
        }
    }
}

/// `server/discover`: versions, the aggregated capabilities, merged instructions, cache hints,
/// `resultType`, and the gateway's `serverInfo` in `_meta`.
pub fn discover(snap: &Snapshot, id: &[u8]) -> Bytes {
    let mut r = Vec::with_capacity(320 + snap.capabilities.len());
    r.extend_from_slice(b"{\"supportedVersions\":");
    r.extend_from_slice(versions::ALL_JSON.as_bytes());
    r.extend_from_slice(b",\"capabilities\":");
    modern_capabilities(&snap.capabilities, &mut r);
    if let Some(text) = &snap.instructions {
        r.extend_from_slice(b",\"instructions\":");
        encode::write_json_string(&mut r, text);
    }
    r.push(b',');
    // The hint merged from every list when the snapshot was built (`catalog::hint`).
    snap.merged_hint().write(&mut r);
    r.extend_from_slice(b",\"resultType\":\"complete\",\"_meta\":{");
    encode::write_json_string(&mut r, meta::SERVER_INFO);
    r.extend_from_slice(b":{\"name\":");
    encode::write_json_string(&mut r, &snap.gateway.server_name);
    r.extend_from_slice(b",\"version\":\"");
    r.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    r.extend_from_slice(b"\"}}}");
    encode::result_response(id, &r)
}

/// Capability members the 2026-07-28 era does not define for a server: `tasks` became an
/// extension there, and the gateway's modern surface does not route the `tasks/*` methods.
const LEGACY_ONLY_CAPABILITIES: [&[u8]; 1] = [b"tasks"];

/// The advertised capabilities object without its legacy-only members.
fn modern_capabilities(caps: &[u8], out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    members(caps, 0, |k, escaped, v| {
        let name = k.get(caps);
        if LEGACY_ONLY_CAPABILITIES
            .iter()
            .any(|m| key_eq(name, escaped, m))
        {
            return;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(&caps[k.start as usize - 1..v.end as usize]);
    });
    out.push(b'}');
}

/// The fields a modern result gains: `"resultType":"complete"`, then the hint if given.
fn modern_fields(hint: Option<CacheHint>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"\"resultType\":\"complete\"");
    if let Some(h) = hint {
        out.push(b',');
        h.write(&mut out);
    }
    out
}

/// A pre-encoded list page (`{"tools":[…]…}`) as a modern result: the page's bytes are shared,
/// the modern fields go in after its opening brace. Seven pieces, none copied.
pub fn list_pieces(page: &Bytes, id: &[u8], hint: CacheHint) -> Pieces {
    let mut fields = modern_fields(Some(hint));
    fields.push(b',');
    let mut p = Pieces::new();
    p.push(Bytes::from_static(b"{\"jsonrpc\":\"2.0\",\"id\":"));
    p.push(Bytes::copy_from_slice(id));
    p.push(Bytes::from_static(b",\"result\":{"));
    p.push(Bytes::from(fields));
    p.push(page.slice(1..));
    p.push(Bytes::from_static(b"}"));
    p
}

/// The splice that makes a relayed legacy result modern: the fields right after `{` (none if the
/// result is not an object).
pub fn result_edit(msg: &[u8], result: Span, hint: Option<CacheHint>) -> Option<Splice> {
    let at = result.start as usize;
    if msg.get(at) != Some(&b'{') {
        return None;
    }
    let mut fields = modern_fields(hint);
    if msg.get(skip_ws(msg, at + 1)) != Some(&b'}') {
        fields.push(b',');
    }
    Some((Span::new(at + 1, at + 1), Bytes::from(fields)))
}

/// Whether a result object already has a top-level `resultType` (a modern server's).
pub fn has_result_type(msg: &[u8], result: Span) -> bool {
    let mut found = false;
    members(msg, result.start as usize, |k, escaped, _| {
        found |= key_eq(k.get(msg), escaped, b"resultType");
    });
    found
}

/// A relayed error for a modern client: its code (with -32002 rewritten to -32602, and the splice
/// doing it) and the HTTP status that code calls for.
pub fn error_edit(msg: &[u8], error: Span) -> (Option<Splice>, u16) {
    let Some((span, code)) = error_code(msg, error) else {
        return (None, 200);
    };
    if code == code::RESOURCE_NOT_FOUND {
        let fixed = Bytes::from(code::INVALID_PARAMS.to_string());
        return (Some((span, fixed)), 400);
    }
    (None, status_for(code, 200))
}

/// A modern server's error for a legacy client's `resources/read`: -32602 is how the 2026-07-28
/// era says "resource not found", which the legacy era codes -32002 (the splice doing it).
pub fn legacy_error_edit(msg: &[u8], error: Span) -> Option<Splice> {
    let (span, code) = error_code(msg, error)?;
    (code == code::INVALID_PARAMS)
        .then(|| (span, Bytes::from(code::RESOURCE_NOT_FOUND.to_string())))
}

/// The span of an error object's `code` (the last, if repeated) and its value (0 when it is not
/// an integer).
fn error_code(msg: &[u8], error: Span) -> Option<(Span, i32)> {
    let mut code_span = None;
    members(msg, error.start as usize, |k, escaped, v| {
        if key_eq(k.get(msg), escaped, b"code") {
            code_span = Some(v);
        }
    });
    let span = code_span?;
    let code = std::str::from_utf8(span.get(msg))
        .ok()
        .and_then(|c| c.parse::<i32>().ok())
        .unwrap_or(0);
    Some((span, code))
}

/// Members a legacy client must not see in a modern server's result.
const MODERN_ONLY: [&[u8]; 3] = [b"resultType", b"ttlMs", b"cacheScope"];

/// The splices that remove the modern-only members from a result object (for a legacy client),
/// and whether the result is `input_required` (which a legacy client cannot be given).
pub fn legacy_view(msg: &[u8], result: Span, edits: &mut impl Extend<Splice>) -> bool {
    // (member start, member end, drop?)
    let mut found: smallvec::SmallVec<[(usize, usize, bool); 16]> = smallvec::SmallVec::new();
    let mut input_required = false;
    members(msg, result.start as usize, |k, escaped, v| {
        let name = k.get(msg);
        let drop = MODERN_ONLY.iter().any(|m| key_eq(name, escaped, m));
        if drop && key_eq(name, escaped, b"resultType") {
            input_required = v.get(msg) == b"\"input_required\"";
        }
        found.push((k.start as usize - 1, v.end as usize, drop));
    });
    let cut = |a: usize, b: usize| (Span::new(a, b), Bytes::new());
    match found.iter().rposition(|m| !m.2) {
        None if !found.is_empty() => edits.extend([cut(found[0].0, found[found.len() - 1].1)]),
        None => {}
        Some(k) => {
            for pair in found[..=k].windows(2) {
                if pair[0].2 {
                    edits.extend([cut(pair[0].0, pair[1].0)]);
                }
            }
            if k + 1 < found.len() {
                edits.extend([cut(found[k].1, found[found.len() - 1].1)]);
            }
        }
    }
    input_required
}
