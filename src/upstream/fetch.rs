//! List fan-in for the catalog: every list a server offers, every page, following `nextCursor`.
//!
//! Runs on the control thread. Downstream cursors are followed here and never reach a client (the
//! gateway mints its own). A server that paginates forever is cut off at [`MAX_PAGES`]. A modern
//! server's pages also carry cache hints (`ttlMs`, `cacheScope`): they are captured here, merged
//! over the pages of each list, for the snapshot to merge across servers (`catalog::hint`).

use simd_json::prelude::*;
use simd_json::OwnedValue;

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::exchange::ReplyLimits;
use super::route::Route;
use super::UpstreamError;
use crate::catalog::{offers, CacheHint, ListKind, ServerLists};
use crate::session::downstream::ServerLink;
use crate::wire::encode;

/// Sequence for the ids of list requests (the gateway's own requests; never confused with minted
/// call ids, which are numbers).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Most pages read from one list of one server (guards against a cursor loop).
pub const MAX_PAGES: usize = 1000;

/// Fetches every list the server's capabilities offer.
pub async fn fetch_lists(
    route: &Route,
    link: &ServerLink,
    limits: ReplyLimits,
) -> Result<ServerLists, UpstreamError> {
    let mut lists = ServerLists::default();
    for kind in ListKind::ALL {
        if offers(link, kind) {
            let (items, hint) = fetch_list(route, link, kind, limits).await?;
            lists.items[kind as usize] = items;
            lists.hints[kind as usize] = link.is_modern().then_some(hint);
        }
    }
    Ok(lists)
}

/// Fetches all pages of one list; returns its items and the merged cache hint of its pages
/// (meaningful for a modern server only).
pub async fn fetch_list(
    route: &Route,
    link: &ServerLink,
    kind: ListKind,
    limits: ReplyLimits,
) -> Result<(Vec<OwnedValue>, CacheHint), UpstreamError> {
    let mut items = Vec::new();
    let mut hint: Option<CacheHint> = None;
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| {
            let mut p = b"{\"cursor\":".to_vec();
            encode::write_json_string(&mut p, c);
            p.push(b'}');
            p
        });
        // Unique per request: on a multiplexed server (stdio, SSE) several fetches may be in flight
        // at once (a refresh can overlap the first fetch), and responses are matched by id.
        let id = format!(
            "\"ringgate-list-{}\"",
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        );
        let req = super::for_mux(
            route,
            link,
            encode::request(id.as_bytes(), kind.method(), params.as_deref()),
        );
        let body = route.request(link, req, Bytes::from(id), limits).await?;
        let (mut page_items, next, page_hint) = parse_page(&body, kind)?;
        items.append(&mut page_items);
        hint = Some(hint.map_or(page_hint, |h| h.merge(page_hint)));
        match next {
            Some(c) if Some(&c) != cursor.as_ref() => cursor = Some(c),
            _ => return Ok((items, hint.unwrap_or(crate::catalog::LEGACY_HINT))),
        }
    }
    log::warn!(
        "server '{}': {} had more than {MAX_PAGES} pages; truncated",
        link.name,
        kind.method()
    );
    Ok((items, hint.unwrap_or(crate::catalog::LEGACY_HINT)))
}

/// Splits one list reply into its items, its `nextCursor` and its cache hint.
pub fn parse_page(
    body: &[u8],
    kind: ListKind,
) -> Result<(Vec<OwnedValue>, Option<String>, CacheHint), UpstreamError> {
    let mut scratch = body.to_vec();
    let mut v = simd_json::to_owned_value(&mut scratch).map_err(|e| {
        UpstreamError::Protocol(format!("{} reply is not JSON: {e}", kind.method()))
    })?;
    if let Some(err) = v.get("error") {
        let msg = err
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("no message");
        return Err(UpstreamError::Protocol(format!(
            "{} failed: {msg}",
            kind.method()
        )));
    }
    let result = v
        .get_mut("result")
        .and_then(|r| r.as_object_mut())
        .ok_or_else(|| UpstreamError::Protocol(format!("{} reply has no result", kind.method())))?;
    let next = result
        .get("nextCursor")
        .and_then(|c| c.as_str())
        .map(str::to_string);
    let hint = CacheHint::from_fields(result.get("ttlMs"), result.get("cacheScope"));
    let items = match result.remove(kind.result_key()) {
        Some(OwnedValue::Array(a)) => *a,
        _ => {
            return Err(UpstreamError::Protocol(format!(
                "{} result lacks the '{}' array",
                kind.method(),
                kind.result_key()
            )))
        }
    };
    Ok((items, next, hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_split_into_items_and_cursor() {
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":"b"}],"nextCursor":"c2"}}"#;
        let (items, next, hint) = parse_page(body, ListKind::Tools).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(next.as_deref(), Some("c2"));
        assert_eq!(hint, crate::catalog::LEGACY_HINT);
        let modern = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[],"resultType":"complete","ttlMs":900,"cacheScope":"public"}}"#;
        let (_, _, hint) = parse_page(modern, ListKind::Tools).unwrap();
        assert_eq!((hint.ttl_ms, hint.private), (900, false));
        let bad = br#"{"jsonrpc":"2.0","id":1,"result":{"prompts":[]}}"#;
        assert!(parse_page(bad, ListKind::Tools).is_err());
    }
}
