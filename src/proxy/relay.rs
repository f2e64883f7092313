//! Phase: map ids back and relay. Turns what a downstream sends for a forwarded call into what the
//! client gets: the final response with the client's own id spliced back in, and (when the client
//! accepts SSE) the notifications before it, streamed as they arrive.
//!
//! A call whose first event is its response becomes a plain JSON reply (the common, fastest case);
//! one that starts with notifications becomes a [`Relay`] the front transport drains as SSE events.
//! Statistics for the call are recorded exactly once, when the response (or failure) is known.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::context::{Gateway, Report, Worker};
use super::Pieces;
use crate::error::GatewayError;
use crate::session::downstream::ServerLink;
use crate::session::{caps, FrontSession};
use crate::telemetry::{CallOutcome, MethodClass};
use crate::upstream::call::{Call, CallEvent};
use crate::upstream::UpstreamError;
use crate::wire::{self, code, encode, method, rewrite, Kind};

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
}

/// How a forwarded call began.
// `Pieces` stay inline on purpose: the common reply builds no heap list.
#[allow(clippy::large_enum_variant)]
pub enum Begun {
    /// The response, ready to send as JSON (pieces: the client's id spliced in).
    Done(Pieces),
    /// Notifications came first: stream them.
    Streaming(Box<Relay>),
}

/// A forwarded call being streamed to the client as SSE events.
pub struct Relay {
    ctx: RelayCtx,
    call: Call,
    pending: Option<Bytes>,
    done: bool,
}

impl Relay {
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
                    return finish_response(gw, w, &ctx, &call, msg).map(Begun::Done);
                }
                Ok(CallEvent::Notification(n)) => restore_token(&ctx, n),
                Ok(CallEvent::ServerRequest(r)) => match server_request(gw, &ctx, &call, r) {
                    Some(r) => r,
                    None => continue,
                },
                Err(e) => {
                    w.calls_end(&ctx);
                    return Err(failed(gw, w, &ctx, e));
                }
            };
            if accepts_sse {
                return Ok(Begun::Streaming(Box::new(Relay {
                    ctx,
                    call,
                    pending: Some(first),
                    done: false,
                })));
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
                Ok(CallEvent::Notification(n)) => Some(restore_token(&self.ctx, n)),
                Ok(CallEvent::ServerRequest(r)) => {
                    match server_request(gw, &self.ctx, &self.call, r) {
                        Some(r) => Some(r),
                        None => continue,
                    }
                }
                Ok(CallEvent::Response(msg)) => {
                    self.done = true;
                    w.calls_end(&self.ctx);
                    let reply = finish_response(gw, w, &self.ctx, &self.call, msg);
                    self.record(w, reply.is_ok());
                    Some(
                        reply
                            .map(|p| rewrite::concat(&p))
                            .unwrap_or_else(|e| e.to_jsonrpc(Some(&self.ctx.client_id))),
                    )
                }
                Err(e) => {
                    self.done = true;
                    w.calls_end(&self.ctx);
                    self.record(w, false);
                    Some(failed(gw, w, &self.ctx, e).to_jsonrpc(Some(&self.ctx.client_id)))
                }
            };
        }
    }

    fn record(&self, w: &Worker, ok: bool) {
        w.stats
            .borrow_mut()
            .record_request(self.ctx.class, ok, self.ctx.received.elapsed());
    }

    /// Drains the relay to its final response (batches, where nothing streams).
    pub async fn finish(mut self, gw: &Gateway, w: &Worker) -> Bytes {
        let mut last = Bytes::new();
        while let Some(m) = self.next(gw, w).await {
            last = m;
        }
        last
    }
}

/// A request from the server for this call's client: forwarded with a sealed id if the client
/// declared the capability and can receive it (a stream), else refused to the server at once.
fn server_request(gw: &Gateway, ctx: &RelayCtx, call: &Call, msg: Bytes) -> Option<Bytes> {
    let env = wire::parse(&msg).ok()?;
    let (id_span, _) = env.id?;
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
    match token {
        Some(token) => Some(rewrite::concat(&rewrite::splice(
            &msg,
            &mut [(id_span, token)],
        ))),
        None => {
            let why = format!("the client of this call cannot take '{name}' (capability not declared, or no stream to send it on)");
            call.reply_downstream(encode::error_response(
                Some(id_span.get(&msg)),
                code::METHOD_NOT_FOUND,
                &why,
                None,
            ));
            None
        }
    }
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
) -> Result<Pieces, GatewayError> {
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
    let mut edits = [(span, ctx.client_id.clone())];
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
    Ok(pieces)
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
