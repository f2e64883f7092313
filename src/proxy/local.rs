//! Answers the gateway gives itself: `initialize` and the merged list pages.
//!
//! `initialize` is answered by the gateway (never forwarded): it negotiates the version, advertises
//! the union of what its catalog offers, introduces itself with its own `serverInfo`, merges the
//! downstreams' instructions and mints a sealed session id. List pages come pre-encoded from the
//! Snapshot; answering one is a cursor check plus a few pieces around the shared page bytes.

use bytes::Bytes;
use simd_json::prelude::*;

use super::{Gateway, Pieces};
use crate::catalog::{ListKind, Snapshot};
use crate::error::{ErrorKind, GatewayError};
use crate::session::{caps, versions};
use crate::wire::{encode, Envelope};

/// Answers `initialize`: the result message and the new session's id.
pub fn initialize(
    gw: &Gateway,
    snap: &Snapshot,
    body: &[u8],
    env: &Envelope,
    id: &[u8],
) -> Result<(Bytes, String), GatewayError> {
    let (requested, client_caps) = read_initialize_params(body, env)?;
    let version = versions::negotiate(requested.as_deref().map(str::as_bytes));
    let (_, session_id) = gw
        .sessions
        .create(version, client_caps)
        .map_err(|_| GatewayError::new(ErrorKind::Internal, "could not mint a session id"))?;
    let mut result = Vec::with_capacity(256 + snap.capabilities.len());
    result.extend_from_slice(b"{\"protocolVersion\":\"");
    result.extend_from_slice(versions::SUPPORTED[version as usize].as_bytes());
    result.extend_from_slice(b"\",\"capabilities\":");
    result.extend_from_slice(&snap.capabilities);
    result.extend_from_slice(b",\"serverInfo\":{\"name\":");
    encode::write_json_string(&mut result, &snap.gateway.server_name);
    result.extend_from_slice(b",\"version\":\"");
    result.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    result.extend_from_slice(b"\"}");
    if let Some(text) = &snap.instructions {
        result.extend_from_slice(b",\"instructions\":");
        encode::write_json_string(&mut result, text);
    }
    result.push(b'}');
    Ok((encode::result_response(id, &result), session_id))
}

/// Reads `protocolVersion` and the declared client capabilities from `initialize` params.
fn read_initialize_params(
    body: &[u8],
    env: &Envelope,
) -> Result<(Option<String>, u16), GatewayError> {
    let bad = |why: &'static str| GatewayError::new(ErrorKind::InvalidParams, why);
    let span = env
        .params
        .ok_or_else(|| bad("initialize requires params"))?;
    let mut scratch = span.get(body).to_vec();
    let params =
        simd_json::to_owned_value(&mut scratch).map_err(|_| bad("params are not valid JSON"))?;
    let params = params
        .as_object()
        .ok_or_else(|| bad("params must be an object"))?;
    let version = match params.get("protocolVersion") {
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| bad("protocolVersion must be a string"))?
                .to_string(),
        ),
        None => return Err(bad("params.protocolVersion is required")),
    };
    let mut flags = 0u16;
    if let Some(c) = params.get("capabilities") {
        let c = c
            .as_object()
            .ok_or_else(|| bad("capabilities must be an object"))?;
        let has = |cap: &str, sub: &str| c.get(cap).and_then(|v| v.get(sub)).is_some();
        for (cap, sub, flag) in [
            ("sampling", None, caps::SAMPLING),
            ("sampling", Some("tools"), caps::SAMPLING_TOOLS),
            ("sampling", Some("context"), caps::SAMPLING_CONTEXT),
            ("elicitation", None, caps::ELICITATION),
            ("elicitation", Some("form"), caps::ELICITATION_FORM),
            ("elicitation", Some("url"), caps::ELICITATION_URL),
        ] {
            if sub.map_or(c.contains_key(cap), |sub| has(cap, sub)) {
                flags |= flag;
            }
        }
        if let Some(roots) = c.get("roots") {
            flags |= caps::ROOTS;
            if roots.get("listChanged").and_then(|l| l.as_bool()) == Some(true) {
                flags |= caps::ROOTS_LIST_CHANGED;
            }
        }
    }
    Ok((version, flags))
}

const RESULT_PREFIX: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":";
const RESULT_MID: &[u8] = b",\"result\":";
const RESULT_SUFFIX: &[u8] = b"}";

/// Answers a list method with the page its cursor names (the first page without a cursor).
pub fn list_page(
    snap: &Snapshot,
    body: &[u8],
    env: &Envelope,
    kind: ListKind,
    id: &[u8],
) -> Result<Pieces, GatewayError> {
    let result = list_result(snap, body, env, kind)?;
    let mut pieces = Pieces::new();
    pieces.push(Bytes::from_static(RESULT_PREFIX));
    pieces.push(Bytes::copy_from_slice(id));
    pieces.push(Bytes::from_static(RESULT_MID));
    pieces.push(result);
    pieces.push(Bytes::from_static(RESULT_SUFFIX));
    Ok(pieces)
}

/// The result object of the list page the request's cursor names (shared, pre-encoded bytes).
pub fn list_result(
    snap: &Snapshot,
    body: &[u8],
    env: &Envelope,
    kind: ListKind,
) -> Result<Bytes, GatewayError> {
    let page = match env.cursor_str(body) {
        None => 0,
        Some(token) => snap
            .cursors
            .open(kind, token.as_bytes())
            .ok_or_else(|| GatewayError::new(ErrorKind::InvalidParams, "invalid cursor"))?,
    };
    let empty: Bytes = match kind {
        ListKind::Tools => Bytes::from_static(b"{\"tools\":[]}"),
        ListKind::Prompts => Bytes::from_static(b"{\"prompts\":[]}"),
        ListKind::Resources => Bytes::from_static(b"{\"resources\":[]}"),
        ListKind::Templates => Bytes::from_static(b"{\"resourceTemplates\":[]}"),
    };
    Ok(snap.page(kind, page).cloned().unwrap_or(empty))
}
