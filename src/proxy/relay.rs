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
use crate::telemetry::{CallOutcome, MethodClass};
use crate::upstream::call::{Call, CallEvent};
use crate::upstream::UpstreamError;
use crate::wire::{self, rewrite, Kind};

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
            match call.next().await {
                Ok(CallEvent::Response(msg)) => {
                    return finish_response(gw, w, &ctx, &call, msg).map(Begun::Done)
                }
                Ok(CallEvent::Notification(n)) if accepts_sse => {
                    let n = restore_token(&ctx, n);
                    return Ok(Begun::Streaming(Box::new(Relay {
                        ctx,
                        call,
                        pending: Some(n),
                        done: false,
                    })));
                }
                Ok(CallEvent::Notification(_)) => continue,
                Err(e) => return Err(failed(gw, w, &ctx, e)),
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
        let event = self.call.next().await;
        match event {
            Ok(CallEvent::Notification(n)) => Some(restore_token(&self.ctx, n)),
            Ok(CallEvent::Response(msg)) => {
                self.done = true;
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
                self.record(w, false);
                Some(failed(gw, w, &self.ctx, e).to_jsonrpc(Some(&self.ctx.client_id)))
            }
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
