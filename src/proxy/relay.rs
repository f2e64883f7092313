//! Phase: map ids back and relay. Turns what a downstream sends for a forwarded call into what the
//! client gets: the final response with the client's own id spliced back in, and (when the client
//! accepts SSE) the notifications before it, streamed as they arrive.
//!
//! A call whose first event is its response becomes a plain JSON reply (the common, fastest case);
//! one that starts with notifications becomes a [`Relay`] the front transport drains as SSE events.
//! Statistics for the call are recorded exactly once, when the response (or failure) is known.
//!
//! For a modern (2026-07-28) client the reply is made modern on the way: `resultType` (and a cache
//! hint for `resources/read`) spliced into the result, -32002 rewritten to -32602, the HTTP status
//! taken from the error code; log messages below the request's `logLevel` are dropped; a server
//! request is never put on the response stream, and one needing a capability the request did not
//! declare ends the call with -32021 (the downstream call is cancelled).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use smallvec::SmallVec;

use super::context::{Gateway, Report, Worker};
use super::modern::{self, Listen, ModernCall, Reject};
use super::{one, Pieces};
use crate::error::GatewayError;
use crate::session::downstream::ServerLink;
use crate::session::{caps, FrontSession};
use crate::telemetry::{CallOutcome, MethodClass};
use crate::upstream::call::{Call, CallEvent};
use crate::upstream::exchange::ReplyLimits;
use crate::upstream::route::Route;
use crate::upstream::UpstreamError;
use crate::wire::{self, code, encode, method, rewrite, Kind, Splice};

/// Facts about a forwarded call the relay needs to finish it.
pub struct RelayCtx {
    /// The owning server.
    pub link: Arc<ServerLink>,
    /// The client's id token, verbatim.
    pub client_id: Bytes,
    /// The client's own progress token, when the downstream saw a minted one instead.
    pub client_token: Option<Bytes>,
    /// The id the downstream saw.
    pub minted: u64,
    /// Metric class.
    pub class: MethodClass,
    /// When the request body was complete.
    pub received: Instant,
    /// The client's session (capabilities decide which server requests it may receive).
    pub session: Option<FrontSession>,
    /// Whether the client takes a stream (server requests need one to reach it).
    pub accepts_sse: bool,
    /// The request's modern-era declarations; `None` for a legacy client.
    pub modern: Option<ModernCall>,
    /// Where to send `notifications/cancelled` if the client goes away before the response (a
    /// modern client cancels by closing its response stream; a legacy one may resume, so `None`).
    pub cancel_on_drop: Option<Route>,
    /// Whether replies may carry downstream task ids to seal (`tasks/*`, task-augmented calls).
    pub task_ids: bool,
    /// Server requests relayed to the client, for the server's cancellation of them.
    pub asked: super::asks::Asked,
}

/// How a forwarded call began.
// `Pieces` stay inline on purpose: the common reply builds no heap list.
#[allow(clippy::large_enum_variant)]
pub enum Begun {
    /// The response, ready to send as JSON (pieces: the client's id spliced in), and its HTTP
    /// status (200 but for errors to modern clients).
    Done(Pieces, u16),
    /// Notifications came first: stream them.
    Streaming(Box<Relay>),
}

/// What the front transport streams to a client as SSE events: a forwarded call's notifications
/// and then its response, or a modern `subscriptions/listen` stream. Always boxed.
#[allow(clippy::large_enum_variant)]
pub enum Relay {
    /// A forwarded call.
    Call(CallRelay),
    /// A `subscriptions/listen` stream.
    Listen(Listen),
}

impl Relay {
    /// The next message to write on the stream; `None` once the stream is over.
    pub async fn next(&mut self, gw: &Gateway, w: &Worker) -> Option<Bytes> {
        match self {
            Relay::Call(c) => c.next(gw, w).await,
            Relay::Listen(l) => l.next().await,
        }
    }

    /// Drains the stream to its last message (batches, where nothing streams).
    pub async fn finish(mut self, gw: &Gateway, w: &Worker) -> Bytes {
        let mut last = Bytes::new();
        while let Some(m) = self.next(gw, w).await {
            last = m;
        }
        last
    }
}

/// A forwarded call being streamed to the client as SSE events.
pub struct CallRelay {
    ctx: RelayCtx,
    call: Call,
    pending: Option<Bytes>,
    done: bool,
}

impl CallRelay {
    /// Reads the first event of a started call and decides between a JSON reply and a stream.
    pub async fn begin(
        gw: &Gateway,
        w: &Worker,
        ctx: RelayCtx,
        call: Result<Call, UpstreamError>,
        accepts_sse: bool,
    ) -> Result<Begun, GatewayError> {
        let mut call = match call {
            Ok(c) => c,
            Err(e) => return Err(failed(gw, w, &ctx, e)),
        };
        loop {
            let first = match call.next().await {
                Ok(CallEvent::Response(msg)) => {
                    w.calls_end(&ctx);
                    return finish_response(gw, w, &ctx, &call, msg)
                        .map(|(p, s)| Begun::Done(p, s));
                }
                Ok(CallEvent::Notification(n)) => match relayable(gw, &ctx, n) {
                    Some(n) => n,
                    None => continue,
                },
                Ok(CallEvent::ServerRequest(r)) => match server_request(gw, &ctx, &call, r) {
                    ServerAsk::Send(r) => r,
                    ServerAsk::Refused => continue,
                    ServerAsk::Missing(flag) => {
                        w.calls_end(&ctx);
                        let r = missing_capability(w, &ctx, flag);
                        return Ok(Begun::Done(
                            one(r.to_jsonrpc(Some(&ctx.client_id))),
                            r.status,
                        ));
                    }
                },
                Err(e) => {
                    w.calls_end(&ctx);
                    return Err(failed(gw, w, &ctx, e));
                }
            };
            if accepts_sse {
                return Ok(Begun::Streaming(Box::new(Relay::Call(CallRelay {
                    ctx,
                    call,
                    pending: Some(first),
                    done: false,
                }))));
            }
        }
    }

    /// The next message to write on the stream; `None` once the response has been written.
    pub async fn next(&mut self, gw: &Gateway, w: &Worker) -> Option<Bytes> {
        if let Some(n) = self.pending.take() {
            return Some(n);
        }
        if self.done {
            return None;
        }
        loop {
            return match self.call.next().await {
                Ok(CallEvent::Notification(n)) => match relayable(gw, &self.ctx, n) {
                    Some(n) => Some(n),
                    None => continue,
                },
                Ok(CallEvent::ServerRequest(r)) => {
                    match server_request(gw, &self.ctx, &self.call, r) {
                        ServerAsk::Send(r) => Some(r),
                        ServerAsk::Refused => continue,
                        ServerAsk::Missing(flag) => {
                            self.done = true;
                            w.calls_end(&self.ctx);
                            self.record(w, false);
                            let r = missing_capability(w, &self.ctx, flag);
                            Some(r.to_jsonrpc(Some(&self.ctx.client_id)))
                        }
                    }
                }
                Ok(CallEvent::Response(msg)) => {
                    self.done = true;
                    w.calls_end(&self.ctx);
                    let reply = finish_response(gw, w, &self.ctx, &self.call, msg);
                    self.record(w, reply.is_ok());
                    Some(match reply {
                        Ok((p, _)) => rewrite::concat(&p),
                        Err(e) => self.ctx.error_reply(&e),
                    })
                }
                Err(e) => {
                    self.done = true;
                    w.calls_end(&self.ctx);
                    self.record(w, false);
                    Some(self.ctx.error_reply(&failed(gw, w, &self.ctx, e)))
                }
            };
        }
    }

    fn record(&self, w: &Worker, ok: bool) {
        w.stats
            .borrow_mut()
            .record_request(self.ctx.class, ok, self.ctx.received.elapsed());
    }
}

/// What became of a request the server sent during a call.
enum ServerAsk {
    /// Forward it to the client (with a sealed id).
    Send(Bytes),
    /// Refused to the server; the call goes on.
    Refused,
    /// Refused; the modern client did not declare this capability: the call ends with -32021.
    Missing(u8),
}

/// A request from the server for this call's client: forwarded with a sealed id if the client
/// declared the capability and can receive it (a legacy session with a stream), else refused to
/// the server at once. Modern clients never get server requests on a response stream.
fn server_request(gw: &Gateway, ctx: &RelayCtx, call: &Call, msg: Bytes) -> ServerAsk {
    let Ok(env) = wire::parse(&msg) else {
        return ServerAsk::Refused;
    };
    let Some((id_span, _)) = env.id else {
        return ServerAsk::Refused;
    };
    let name = env.method(&msg).unwrap_or("");
    let needed = match name {
        method::SAMPLING_CREATE_MESSAGE => caps::SAMPLING,
        method::ELICITATION_CREATE => caps::ELICITATION,
        method::ROOTS_LIST => caps::ROOTS,
        _ => 0,
    };
    let declared = ctx.session.is_some_and(|s| s.client_caps & needed != 0);
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
        Some(m) if needed != 0 && modern::capability_flags(&m.caps) & needed == 0 => {
            ServerAsk::Missing(needed)
        }
        _ => ServerAsk::Refused,
    }
}

/// Ends a modern client's call that needs a capability it did not declare: the downstream call is
/// cancelled and the client gets -32021 with `data.requiredCapabilities`.
fn missing_capability(w: &Worker, ctx: &RelayCtx, flag: u8) -> Reject {
    if let Ok(route) = Route::to(&ctx.link, &w.pools) {
        cancel_downstream(&route, ctx, "the client lacks a required capability");
    }
    Reject::new(
        code::MISSING_REQUIRED_CLIENT_CAPABILITY,
        "the server needs a client capability this request did not declare",
    )
    .with_data(modern::required_capability_data(flag))
}

/// Sends `notifications/cancelled` for this call's minted id (detached).
fn cancel_downstream(route: &Route, ctx: &RelayCtx, reason: &str) {
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

impl Drop for CallRelay {
    /// A modern client that closed its response stream before the response cancelled the call.
    fn drop(&mut self) {
        if !self.done {
            if let Some(route) = self.ctx.cancel_on_drop.take() {
                cancel_downstream(&route, &self.ctx, "the client closed its response stream");
            }
        }
    }
}

/// A notification for the client, or `None` when it is not to be relayed (a modern client gets log
/// messages only at or above the level its request asked for).
fn relayable(gw: &Gateway, ctx: &RelayCtx, n: Bytes) -> Option<Bytes> {
    let n = super::asks::on_call_stream(gw, ctx, n)?;
    if let Some(m) = &ctx.modern {
        if let Ok(env) = wire::parse(&n) {
            if env.method(&n) == Some(method::MESSAGE) {
                let level = modern::log_level_of(&n, &env);
                if m.log_level.is_none_or(|min| level.is_none_or(|l| l < min)) {
                    return None;
                }
            }
        }
    }
    Some(restore_token(ctx, n))
}

/// Puts the client's own progress token back into a progress notification.
fn restore_token(ctx: &RelayCtx, n: Bytes) -> Bytes {
    let Some(token) = &ctx.client_token else {
        return n;
    };
    match wire::parse(&n).ok().and_then(|env| env.progress_token) {
        Some(span) => rewrite::concat(&rewrite::splice(&n, &mut [(span, token.clone())])),
        None => n,
    }
}

/// Checks the downstream's response answers our minted id, splices the client's id back, records.
fn finish_response(
    gw: &Gateway,
    w: &Worker,
    ctx: &RelayCtx,
    call: &Call,
    msg: Bytes,
) -> Result<(Pieces, u16), GatewayError> {
    let env = match wire::parse(&msg) {
        Ok(env) if matches!(env.kind, Kind::Response | Kind::Error) => env,
        _ => {
            return Err(failed(
                gw,
                w,
                ctx,
                UpstreamError::Protocol("reply is not a JSON-RPC response".into()),
            ))
        }
    };
    let minted = rewrite::format_u64_id(ctx.minted);
    let (span, _) = match env.id {
        Some((span, _)) if span.get(&msg) == minted.as_bytes() => (span, ()),
        _ => {
            return Err(failed(
                gw,
                w,
                ctx,
                UpstreamError::Protocol("response id does not match the request".into()),
            ))
        }
    };
    let mut edits: SmallVec<[Splice; 2]> = SmallVec::new();
    edits.push((span, ctx.client_id.clone()));
    let status = match for_client_era(ctx, &msg, &env, &mut edits) {
        Ok(status) => status,
        Err(e) => return Err(failed(gw, w, ctx, e)),
    };
    if let (true, Some(s)) = (ctx.task_ids, ctx.session) {
        super::tasks::seal_reply(gw, ctx.link.slot, s.nonce, &msg, &env, &mut edits);
    }
    let pieces = rewrite::splice(&msg, &mut edits);
    let total = ctx.received.elapsed();
    let mut stats = w.stats.borrow_mut();
    stats.record_server(
        ctx.link.slot,
        &ctx.link.name,
        CallOutcome::Ok,
        call.downstream_time,
    );
    stats.record_forward(
        total.saturating_sub(call.downstream_time),
        call.downstream_time,
    );
    Ok((pieces, status))
}

/// The splices that fit a response to the client's era (modern fields added for a modern client,
/// removed for a legacy one); returns the HTTP status the response calls for.
fn for_client_era(
    ctx: &RelayCtx,
    msg: &[u8],
    env: &wire::Envelope,
    edits: &mut SmallVec<[Splice; 2]>,
) -> Result<u16, UpstreamError> {
    let from_modern = ctx.link.is_modern();
    match (&ctx.modern, env.result) {
        (Some(m), _) => Ok(modernize(msg, env, m, from_modern, edits)),
        (None, Some(result)) if from_modern && modern::legacy_view(msg, result, edits) => {
            Err(UpstreamError::Protocol(
                "the server asked for client input (input_required), which the gateway cannot relay to a legacy client yet".into(),
            ))
        }
        (None, _) => Ok(200),
    }
}

/// The splices that make a downstream response modern; returns the HTTP status it calls for.
fn modernize(
    msg: &[u8],
    env: &wire::Envelope,
    m: &ModernCall,
    from_modern: bool,
    edits: &mut SmallVec<[Splice; 2]>,
) -> u16 {
    match (env.result, env.error) {
        (Some(r), _) => {
            // A legacy server never sends `resultType`; a modern one must (checked, not trusted).
            if !from_modern || !modern::has_result_type(msg, r) {
                edits.extend(modern::result_edit(msg, r, m.hint));
            }
            200
        }
        (None, Some(e)) => {
            let (edit, status) = modern::error_edit(msg, e);
            edits.extend(edit);
            status
        }
        _ => 200,
    }
}

impl RelayCtx {
    /// An error ending this call, worded for the client's era.
    fn error_reply(&self, e: &GatewayError) -> Bytes {
        match &self.modern {
            Some(_) => Reject::from_gateway(e).to_jsonrpc(Some(&self.client_id)),
            None => e.to_jsonrpc(Some(&self.client_id)),
        }
    }
}

/// Records a failed call, reports a down server to the control thread, and words the error.
fn failed(gw: &Gateway, w: &Worker, ctx: &RelayCtx, e: UpstreamError) -> GatewayError {
    let outcome = if matches!(e, UpstreamError::Timeout) {
        CallOutcome::Timeout
    } else {
        CallOutcome::Error
    };
    w.stats.borrow_mut().record_server(
        ctx.link.slot,
        &ctx.link.name,
        outcome,
        ctx.received.elapsed(),
    );
    if e.server_down() {
        gw.report(Report::ServerFailed {
            slot: ctx.link.slot,
            why: e.to_string(),
        });
    }
    e.for_client(&ctx.link.name)
}
