//! What becomes of a request a downstream sends during a forwarded call (sampling, elicitation,
//! roots), by the client's era and what it declared: forwarded to a legacy client on its stream
//! with a sealed id, parked for a modern client's `input_required` round (`bridge`), or refused
//! to the server at once (ending a modern client's call with -32021 when the capability was not
//! declared); and the downstream cancellation that ends such a call.

use bytes::Bytes;

use super::bridge;
use super::context::{Worker, WorkerMsg};
use super::modern::{self, Reject};
use super::relay::RelayCtx;
use super::Gateway;
use crate::upstream::call::Call;
use crate::upstream::exchange::ReplyLimits;
use crate::upstream::route::Route;
use crate::wire::{self, code, encode, method, rewrite};

/// What became of a request the server sent during a call.
pub(super) enum ServerAsk {
    /// Forward it to the client (with a sealed id).
    Send(Bytes),
    /// Refused to the server; the call goes on.
    Refused,
    /// A modern client that declared the capability: park the call, ask with `input_required`.
    Park(Bytes),
    /// Refused; the modern client did not declare this capability: the call ends with -32021.
    Missing(u16),
}

/// A request from the server for this call's client: forwarded with a sealed id if the client
/// declared the capability and can receive it (a legacy session with a stream), parked for an
/// `input_required` round (a modern client that declared it), else refused to the server at once.
pub(super) fn server_request(gw: &Gateway, ctx: &RelayCtx, call: &Call, msg: Bytes) -> ServerAsk {
    let Ok(env) = wire::parse(&msg) else {
        return ServerAsk::Refused;
    };
    let Some((id_span, _)) = env.id else {
        return ServerAsk::Refused;
    };
    let name = env.method(&msg).unwrap_or("");
    let needed = bridge::needed_capability(name, env.params.map(|p| p.get(&msg)));
    if let Some(m) = &ctx.modern {
        if bridge::satisfies(m.capability_flags(), needed) {
            return ServerAsk::Park(msg);
        }
    }
    let declared = ctx
        .session
        .is_some_and(|s| bridge::satisfies(s.client_caps, needed));
    let token = (needed != 0 && declared && ctx.accepts_sse)
        .then(|| gw.relay_ids.seal(ctx.link.slot, id_span.get(&msg)))
        .flatten();
    if let Some(token) = token {
        let mut edits = super::asks::request_edits(gw, ctx, &msg, &env, id_span, token);
        return ServerAsk::Send(rewrite::concat(&rewrite::splice(&msg, &mut edits)));
    }
    let why = format!("the client of this call cannot take '{name}' (capability not declared, or no stream to send it on)");
    call.reply_downstream(encode::error_response(
        Some(id_span.get(&msg)),
        code::METHOD_NOT_FOUND,
        &why,
        None,
    ));
    match &ctx.modern {
        Some(_) if needed != 0 => ServerAsk::Missing(needed),
        _ => ServerAsk::Refused,
    }
}

/// Ends a modern client's call that needs a capability it did not declare: the downstream call is
/// cancelled (unless its driver already did: `cancel` false) and the client gets -32021 with
/// `data.requiredCapabilities`.
pub(super) fn missing_capability(w: &Worker, ctx: &RelayCtx, flag: u16, cancel: bool) -> Reject {
    if let Some(route) = Route::to(&ctx.link, &w.pools).ok().filter(|_| cancel) {
        cancel_downstream(&route, ctx, "the client lacks a required capability");
    }
    Reject::new(
        code::MISSING_REQUIRED_CLIENT_CAPABILITY,
        "the server needs a client capability this request did not declare",
    )
    .with_data(modern::required_capability_data(flag))
}

/// Sends `notifications/cancelled` for this call's minted id (detached).
pub(super) fn cancel_downstream(route: &Route, ctx: &RelayCtx, reason: &str) {
    let limits = ReplyLimits {
        max_body: 64 * 1024,
        max_event: 64 * 1024,
    };
    route.send_detached(ctx.link.clone(), cancelled_note(ctx.minted, reason), limits);
}

/// `notifications/cancelled` for the call the downstream knows by `minted`, giving `reason`.
pub(super) fn cancelled_note(minted: u64, reason: &str) -> Bytes {
    let mut params = b"{\"requestId\":".to_vec();
    params.extend_from_slice(rewrite::format_u64_id(minted).as_bytes());
    params.extend_from_slice(b",\"reason\":");
    encode::write_json_string(&mut params, reason);
    params.push(b'}');
    encode::notification(method::CANCELLED, Some(&params))
}

/// How long the control thread waits for the workers' answers to a claim (they answer from their
/// inbox at once; this only bounds a stalled worker).
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// A request a Streamable HTTP server sent on its standalone GET stream, which names no call (the
/// transport gives no link; server-everything sends `roots/list` this way). Runs on the control
/// thread. It goes to a client only when that is unambiguous: every call in flight to this server,
/// on every worker, belongs to one session, that session declared the capability, and it has a
/// stream open. Then it goes to one stream of that session with a sealed id (the answer comes back
/// through `client_msgs` like any other). Otherwise the server is refused at once, never left
/// waiting, and no other session ever sees the request. `answer` sends a reply to the server.
pub async fn outside_call(gw: &Gateway, slot: usize, msg: Bytes, answer: impl Fn(Bytes)) {
    let Ok(env) = wire::parse(&msg) else { return };
    let Some((id_span, _)) = env.id else { return };
    let name = env.method(&msg).unwrap_or("");
    let needed = bridge::needed_capability(name, env.params.map(|p| p.get(&msg)));
    let mut delivered = false;
    if let Some(nonce) = (needed != 0)
        .then_some(())
        .and(claim(gw, slot, needed).await)
    {
        if let Some(token) = gw.relay_ids.seal(slot, id_span.get(&msg)) {
            let sealed = rewrite::concat(&rewrite::splice(&msg, &mut [(id_span, token)]));
            delivered = deliver(gw, nonce, sealed).await;
        }
    }
    if !delivered {
        let why = format!("'{name}' arrived outside any call and no single client of this server can take it (capability not declared, calls from several sessions, or no stream)");
        answer(encode::error_response(
            Some(id_span.get(&msg)),
            code::METHOD_NOT_FOUND,
            &why,
            None,
        ));
    }
}

/// Asks every worker which sessions have calls in flight to `slot`; the session when exactly one
/// does and it declared `needed`.
async fn claim(gw: &Gateway, slot: usize, needed: u16) -> Option<u64> {
    let workers = gw.workers.get()?;
    let (tx, rx) = async_channel::bounded(workers.len().max(1));
    let asked = workers
        .iter()
        .filter(|w| w.try_send(WorkerMsg::Claim(slot, tx.clone())).is_ok())
        .count();
    drop(tx);
    let mut session: Option<(u64, u16)> = None;
    let gather = async {
        let mut replies = 0;
        while let Ok(found) = rx.recv().await {
            replies += 1;
            for (nonce, caps) in found {
                match session {
                    Some((s, _)) if s != nonce => return false, // several sessions: ambiguous
                    _ => session = Some((nonce, caps)),
                }
            }
        }
        replies == asked
    };
    let complete = monoio::time::timeout(CLAIM_WAIT, gather)
        .await
        .unwrap_or(false);
    let (nonce, caps) = session.filter(|_| complete)?;
    bridge::satisfies(caps, needed).then_some(nonce)
}

/// Offers the request to the workers in turn until one has a stream of the session and takes it
/// (exactly one place gets it); whether one did.
async fn deliver(gw: &Gateway, nonce: u64, sealed: Bytes) -> bool {
    let Some(workers) = gw.workers.get() else {
        return false;
    };
    for w in workers {
        let (tx, rx) = async_channel::bounded(1);
        if w.try_send(WorkerMsg::AskSession(nonce, sealed.clone(), tx))
            .is_err()
        {
            continue;
        }
        let took = monoio::time::timeout(CLAIM_WAIT, rx.recv()).await;
        if matches!(took, Ok(Ok(true))) {
            return true;
        }
    }
    false
}
