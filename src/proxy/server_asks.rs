//! What becomes of a request a downstream sends during a forwarded call (sampling, elicitation,
//! roots), by the client's era and what it declared: forwarded to a legacy client on its stream
//! with a sealed id, parked for a modern client's `input_required` round (`bridge`), or refused
//! to the server at once (ending a modern client's call with -32021 when the capability was not
//! declared); and the downstream cancellation that ends such a call.

use bytes::Bytes;

use super::bridge;
use super::context::Worker;
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
    Missing(u8),
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
        if bridge::satisfies(modern::capability_flags(&m.caps), needed) {
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
pub(super) fn missing_capability(w: &Worker, ctx: &RelayCtx, flag: u8, cancel: bool) -> Reject {
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
    let mut params = b"{\"requestId\":".to_vec();
    params.extend_from_slice(rewrite::format_u64_id(ctx.minted).as_bytes());
    params.extend_from_slice(b",\"reason\":");
    encode::write_json_string(&mut params, reason);
    params.push(b'}');
    let limits = ReplyLimits {
        max_body: 64 * 1024,
        max_event: 64 * 1024,
    };
    let note = encode::notification(method::CANCELLED, Some(&params));
    route.send_detached(ctx.link.clone(), note, limits);
}
