//! Messages from a client that are not requests for a server: responses to server-to-client
//! requests, cancellations, roots changes, and the log level, each sent where it belongs.
//!
//! - A response whose id is a sealed relay id goes to the server that asked, with that server's own
//!   id put back (any worker can do this: the id says where it goes), or, for a request the era
//!   bridge made, to the relay waiting for it (on the worker the id names).
//! - `notifications/cancelled` for one of the client's in-flight calls becomes the server's
//!   cancellation, with the id the server knows (the call may run on another worker: it is asked).
//! - `notifications/roots/list_changed` goes to every available server; `logging/setLevel` to every
//!   server that offers logging.

use std::sync::Arc;

use bytes::Bytes;

use super::bridge;
use super::context::{Gateway, Worker, WorkerMsg};
use super::subscriptions::Edge;
use crate::catalog::Snapshot;
use crate::error::{ErrorKind, GatewayError};
use crate::session::relay_ids::Asked;
use crate::session::FrontSession;
use crate::upstream::exchange::ReplyLimits;
use crate::upstream::route::Route;
use crate::wire::{self, encode, method, rewrite, Envelope};

fn limits(snap: &Snapshot) -> ReplyLimits {
    ReplyLimits {
        max_body: snap.gateway.limits.max_response_bytes,
        max_event: snap.gateway.limits.max_sse_event_bytes,
    }
}

/// A client's response to a relayed server request: to the server that asked.
pub fn response(
    gw: &Gateway,
    w: &Worker,
    snap: &Snapshot,
    body: &Bytes,
    env: &Envelope,
) -> Result<(), GatewayError> {
    let unknown = || GatewayError::new(ErrorKind::InvalidRequest, "response to an unknown request");
    let (span, _) = env.id.ok_or_else(unknown)?;
    let raw = span.get(body);
    let content = raw
        .strip_prefix(b"\"")
        .and_then(|r| r.strip_suffix(b"\""))
        .ok_or_else(unknown)?;
    let (slot, server_id) = match gw.relay_ids.open(content).ok_or_else(unknown)? {
        Asked::Server(slot, id) => (slot, id),
        Asked::Bridge(worker, ask) => {
            bridge::send(gw, w, worker, bridge::Delivery::Answer(ask, body.clone()));
            return Ok(());
        }
    };
    let entry = snap
        .servers
        .iter()
        .find(|s| s.link.slot == slot)
        .ok_or_else(|| {
            GatewayError::new(
                ErrorKind::DownstreamUnavailable,
                "the server that asked is no longer configured",
            )
        })?;
    let route = Route::to(&entry.link, &w.pools).map_err(|e| e.for_client(&entry.link.name))?;
    let mut edits = super::tasks::unseal_related(&gw.tasks, slot, body, env);
    edits.push((span, server_id));
    let answer = rewrite::concat(&rewrite::splice(body, &mut edits));
    route.send_detached(entry.link.clone(), answer, limits(snap));
    Ok(())
}

/// A client notification: cancellation and roots changes go on to servers; the rest is absorbed.
pub fn notification(
    gw: &Gateway,
    w: &Worker,
    snap: &Snapshot,
    body: &Bytes,
    env: &Envelope,
    session: Option<FrontSession>,
) {
    match env.method(body) {
        Some(method::CANCELLED) => {
            let (Some(s), Some(id)) = (session, env.request_id) else {
                return;
            };
            let id = Bytes::copy_from_slice(id.get(body));
            if !cancel_here(w, snap, s.nonce, &id) {
                for (i, other) in gw.workers.get().into_iter().flatten().enumerate() {
                    if i != usize::from(w.index) {
                        let _ = other.try_send(WorkerMsg::Cancel(s.nonce, id.clone()));
                    }
                }
            }
        }
        Some(method::ROOTS_LIST_CHANGED) => fan_out(
            w,
            snap,
            None,
            &encode::notification(method::ROOTS_LIST_CHANGED, None),
        ),
        _ => {}
    }
}

/// `resources/subscribe` / `unsubscribe`: the owning server, if the downstream must be told (first
/// subscriber in, last out); `None` when the gateway answers itself.
pub fn subscription(
    gw: &Gateway,
    snap: &Snapshot,
    body: &[u8],
    env: &Envelope,
    method_name: &str,
    session: Option<FrontSession>,
) -> Result<Option<usize>, GatewayError> {
    let bad = |why: &'static str| GatewayError::new(ErrorKind::InvalidParams, why);
    let uri = env
        .uri_str(body)
        .ok_or_else(|| bad("params.uri is required"))?;
    let session = session.ok_or_else(|| bad("subscriptions need a session"))?;
    let server = snap.resource_owner(&uri).ok_or_else(|| {
        GatewayError::new(
            ErrorKind::ResourceNotFound,
            format!("no server owns resource '{uri}'"),
        )
    })?;
    let slot = snap.servers[server].link.slot;
    let edge = if method_name == method::RESOURCES_SUBSCRIBE {
        gw.subscriptions.subscribe(slot, &uri, session.nonce)
    } else {
        gw.subscriptions.unsubscribe(slot, &uri, session.nonce)
    };
    // A modern server has no resources/subscribe: its listen stream carries the URIs instead.
    if edge != Edge::None && snap.servers[server].link.is_modern() {
        gw.report(crate::proxy::Report::ResourceSubscriptions { slot });
        return Ok(None);
    }
    Ok((edge != Edge::None).then_some(server))
}

/// Ends a session (DELETE, or its HTTP+SSE stream closed): its id stops working everywhere, and
/// subscriptions nobody else holds are withdrawn downstream.
pub fn end_session(gw: &Gateway, w: &Worker, session: &FrontSession) {
    gw.sessions.revoke(session);
    let snap = w.snapshot();
    for (slot, uri) in gw.subscriptions.end_session(session.nonce) {
        let Some(entry) = snap.servers.iter().find(|s| s.link.slot == slot) else {
            continue;
        };
        if entry.link.is_modern() {
            gw.report(crate::proxy::Report::ResourceSubscriptions { slot });
            continue;
        }
        let Ok(route) = Route::to(&entry.link, &w.pools) else {
            continue;
        };
        let mut params = b"{\"uri\":".to_vec();
        encode::write_json_string(&mut params, &uri);
        params.push(b'}');
        let msg = encode::request(
            b"\"ringgate-unsubscribe\"",
            method::RESOURCES_UNSUBSCRIBE,
            Some(&params),
        );
        route.send_detached(entry.link.clone(), msg, limits(&snap));
    }
}

/// Cancels a client's call if it runs on this worker; returns whether it did.
pub fn cancel_here(w: &Worker, snap: &Snapshot, session: u64, client_id: &[u8]) -> bool {
    let Some((route, link, minted)) = w.call_of(session, client_id) else {
        return false;
    };
    let mut params = b"{\"requestId\":".to_vec();
    params.extend_from_slice(rewrite::format_u64_id(minted).as_bytes());
    params.extend_from_slice(b",\"reason\":\"cancelled by the client\"}");
    route.send_detached(
        link,
        encode::notification(method::CANCELLED, Some(&params)),
        limits(snap),
    );
    true
}

/// `logging/setLevel`: every server that offers logging gets the level; the client gets `{}`.
pub fn set_level(
    w: &Worker,
    snap: &Arc<Snapshot>,
    body: &Bytes,
    env: &Envelope,
    id: &[u8],
) -> Bytes {
    if let Some(params) = env.params {
        let msg = encode::request(
            b"\"ringgate-set-level\"",
            method::LOGGING_SET_LEVEL,
            Some(params.get(body)),
        );
        fan_out(w, snap, Some("logging"), &msg);
    }
    encode::result_response(id, b"{}")
}

/// Sends `message` to every available server (offering `capability`, if given), detached.
fn fan_out(w: &Worker, snap: &Snapshot, capability: Option<&str>, message: &Bytes) {
    // Modern servers take neither message (no roots notifications, no logging/setLevel).
    for entry in snap
        .servers
        .iter()
        .filter(|s| s.available && s.link.is_up() && !s.link.is_modern())
    {
        if let Some(cap) = capability {
            let offers = entry
                .link
                .session
                .load()
                .as_ref()
                .is_some_and(|d| has_key(&d.capabilities, cap));
            if !offers {
                continue;
            }
        }
        if let Ok(route) = Route::to(&entry.link, &w.pools) {
            route.send_detached(entry.link.clone(), message.clone(), limits(snap));
        }
    }
}

/// Whether a raw JSON object has a top-level key (capability objects are small).
fn has_key(object: &[u8], key: &str) -> bool {
    let mut found = false;
    let _ = wire::scan::for_each_member(object, 0, |k, escaped, _| {
        found |= wire::scan::key_eq(k.get(object), escaped, key.as_bytes());
    });
    found
}
