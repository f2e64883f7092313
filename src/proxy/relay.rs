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
//! request is never put on the response stream: one needing a capability the request declared
//! parks the call and ends the reply with `input_required` (`bridge`), one needing a capability it
//! did not declare ends the call with -32021 (the downstream call is cancelled).
//!
//! For a legacy client of a modern server, an `input_required` result becomes real requests on the
//! call's stream, and the call is retried downstream with the answers (`bridge::Asking`); the
//! modern-only fields of the final result are dropped, and -32602 answering a `resources/read` is
//! the legacy era's -32002 (resource not found).
//!
//! One loop reads both shapes of call: a live downstream exchange ([`Leg::Live`]) and a call
//! resumed from another round ([`Leg::Remote`], its driver on the worker that parked it).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use smallvec::SmallVec;

use std::collections::VecDeque;
use std::time::Duration;

use super::bridge::{self, Asking, Remote, RetryPlan, Step};
use super::context::{Gateway, Report, Worker};
use super::modern::{self, Listen, ModernCall, Reject};
use super::server_asks::{cancel_downstream, missing_capability, server_request, ServerAsk};
use super::{one, Pieces};
use crate::error::{ErrorKind, GatewayError};
use crate::session::downstream::ServerLink;
use crate::session::FrontSession;
use crate::telemetry::{CallOutcome, MethodClass};
use crate::upstream::call::{Call, CallEvent};
use crate::upstream::route::Route;
use crate::upstream::UpstreamError;
use crate::wire::{self, method, rewrite, Kind, Splice};

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
    /// How to retry the call with a client's answers (a legacy client of a modern server).
    pub retry: Option<Box<RetryPlan>>,
    /// Whether replies may carry downstream task ids to seal (`tasks/*`, task-augmented calls).
    pub task_ids: bool,
    /// Server requests relayed to the client, for the server's cancellation of them.
    pub asked: super::asks::Asked,
}

/// A call as the relay reads it.
// The live call is the common case: kept inline (no allocation per call).
#[allow(clippy::large_enum_variant)]
pub enum Leg {
    /// The downstream exchange itself.
    Live(Call),
    /// A call resumed after an `input_required` round, driven on the worker that parked it.
    Remote(Remote),
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

    /// Drains the stream to its last message (batches, where nothing streams: a request for
    /// the client has nowhere to go, so a bridged round ends the call at once).
    pub async fn finish(mut self, gw: &Gateway, w: &Worker) -> Bytes {
        if let Relay::Call(c) = &mut self {
            c.ctx.accepts_sse = false;
        }
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
    /// `None` once the call is over (or parked).
    leg: Option<Leg>,
    pending: Option<Bytes>,
    /// Requests for the client queued by a bridged `input_required` round.
    outbox: VecDeque<Bytes>,
    /// The bridged round waiting for the client's answers.
    asking: Option<Asking>,
    done: bool,
}

/// What one step of a call gives the client.
// `Pieces` stay inline on purpose: the common reply builds no heap list.
#[allow(clippy::large_enum_variant)]
enum Flow {
    /// A message for the stream (notification, or a request for the client).
    Emit(Bytes),
    /// Nothing for the client; read on.
    Skip,
    /// The last message: the response (pieces, HTTP status) or the error ending the call. Whoever
    /// takes it (`begin`, `next`) forgets the call in the worker's `calls` table: the one place.
    Final(Result<(Pieces, u16), GatewayError>),
}

impl CallRelay {
    /// Reads the first event of a started call and decides between a JSON reply and a stream.
    pub async fn begin(
        gw: &Gateway,
        w: &Worker,
        ctx: RelayCtx,
        leg: Result<Leg, UpstreamError>,
        accepts_sse: bool,
    ) -> Result<Begun, GatewayError> {
        let leg = match leg {
            Ok(l) => l,
            Err(e) => {
                w.calls_end(&ctx);
                return Err(failed(gw, w, &ctx, e));
            }
        };
        let mut relay = CallRelay {
            ctx,
            leg: Some(leg),
            pending: None,
            outbox: VecDeque::new(),
            asking: None,
            done: false,
        };
        loop {
            match relay.step(gw, w).await {
                Flow::Final(reply) => {
                    relay.done = true;
                    w.calls_end(&relay.ctx);
                    return reply.map(|(p, s)| Begun::Done(p, s));
                }
                Flow::Skip => {}
                Flow::Emit(first) if accepts_sse => {
                    relay.pending = Some(first);
                    return Ok(Begun::Streaming(Box::new(Relay::Call(relay))));
                }
                // Without a stream, notifications have nowhere to go.
                Flow::Emit(_) => {}
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
            match self.step(gw, w).await {
                Flow::Emit(m) => return Some(m),
                Flow::Skip => continue,
                Flow::Final(reply) => {
                    self.done = true;
                    w.calls_end(&self.ctx);
                    self.record(w, reply.is_ok());
                    return Some(match reply {
                        Ok((p, _)) => rewrite::concat(&p),
                        Err(e) => self.ctx.error_reply(&e),
                    });
                }
            }
        }
    }

    /// One step: the next thing the downstream (or the client, in a bridged round) says, and
    /// what it means for the client.
    async fn step(&mut self, gw: &Gateway, w: &Worker) -> Flow {
        if let Some(m) = self.outbox.pop_front() {
            return Flow::Emit(m);
        }
        if let Some(asking) = self.asking.take() {
            return self.retry(gw, w, asking).await;
        }
        let event = match self.leg.as_mut() {
            Some(Leg::Live(call)) => call.next().await.map(Step::Event),
            Some(Leg::Remote(remote)) => remote.next().await,
            None => return Flow::Final(Err(GatewayError::new(ErrorKind::Internal, "call over"))),
        };
        match event {
            Ok(Step::Event(CallEvent::Notification(n))) => {
                relayable(gw, &self.ctx, n).map_or(Flow::Skip, Flow::Emit)
            }
            Ok(Step::Event(CallEvent::ServerRequest(r))) => self.server_request(gw, w, r),
            Ok(Step::Event(CallEvent::Response(msg))) => self.response(gw, w, msg),
            Ok(Step::Ask {
                worker,
                park,
                request,
            }) => {
                self.leg = None;
                let timeout = w.snapshot().gateway.input_timeout;
                Flow::Final(bridge::input_required(
                    gw, &self.ctx, worker, park, &request, timeout,
                ))
            }
            Ok(Step::Missing(flag)) => {
                self.leg = None;
                let r = missing_capability(w, &self.ctx, flag, false);
                Flow::Final(Ok((one(r.to_jsonrpc(Some(&self.ctx.client_id))), r.status)))
            }
            Ok(Step::Failed(e)) | Err(e) => {
                self.leg = None;
                Flow::Final(Err(failed(gw, w, &self.ctx, e)))
            }
        }
    }

    /// The downstream's response: the client's reply, or (a modern server's `input_required`
    /// for a legacy client) the start of a bridged round.
    fn response(&mut self, gw: &Gateway, w: &Worker, msg: Bytes) -> Flow {
        let leg = self.leg.take();
        if self.ctx.retry.is_some() {
            if let Some(result) = bridge::input_required_result(&msg) {
                return match Asking::start(gw, w, &self.ctx, &msg, result) {
                    Ok((asking, requests)) => {
                        self.outbox.extend(requests);
                        self.asking = Some(asking);
                        Flow::Skip
                    }
                    Err(e) => Flow::Final(Err(e)),
                };
            }
        }
        let downstream_time = match &leg {
            Some(Leg::Live(call)) => call.downstream_time,
            _ => Duration::ZERO,
        };
        Flow::Final(finish_response(gw, w, &self.ctx, downstream_time, msg))
    }

    /// A bridged round: waits for the client's answers, then retries the call downstream.
    async fn retry(&mut self, gw: &Gateway, w: &Worker, mut asking: Asking) -> Flow {
        if !self.ctx.accepts_sse && asking.waits() {
            let why = "the server asked for client input, which cannot be answered inside a batch";
            return Flow::Final(Err(GatewayError::new(ErrorKind::InvalidRequest, why)));
        }
        let timeout = w.snapshot().gateway.input_timeout;
        let started = asking
            .collect(timeout)
            .await
            .and_then(|responses| asking.retry(w, &mut self.ctx, &responses));
        let spec = match started {
            Ok(spec) => spec,
            Err(e) => return Flow::Final(Err(e)),
        };
        w.calls_begin(
            self.ctx.session,
            &self.ctx.client_id,
            &spec.route,
            &self.ctx.link,
            spec.minted_id,
        );
        match Call::start(spec).await {
            Ok(call) => {
                self.leg = Some(Leg::Live(call));
                Flow::Skip
            }
            Err(e) => Flow::Final(Err(failed(gw, w, &self.ctx, e))),
        }
    }

    /// A request from the server during the call (see [`server_request`]).
    fn server_request(&mut self, gw: &Gateway, w: &Worker, r: Bytes) -> Flow {
        let ask = match &self.leg {
            Some(Leg::Live(call)) => server_request(gw, &self.ctx, call, r),
            _ => ServerAsk::Refused,
        };
        match ask {
            ServerAsk::Send(r) => Flow::Emit(r),
            ServerAsk::Refused => Flow::Skip,
            ServerAsk::Park(r) => match self.leg.take() {
                Some(Leg::Live(call)) => Flow::Final(bridge::park(gw, w, call, &self.ctx, r)),
                _ => Flow::Skip,
            },
            ServerAsk::Missing(flag) => {
                self.leg = None;
                let r = missing_capability(w, &self.ctx, flag, true);
                Flow::Final(Ok((one(r.to_jsonrpc(Some(&self.ctx.client_id))), r.status)))
            }
        }
    }

    fn record(&self, w: &Worker, ok: bool) {
        w.stats
            .borrow_mut()
            .record_request(self.ctx.class, ok, self.ctx.received.elapsed());
    }
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
/// messages only at or above the level its request asked for). Parsed once: every change (the
/// ids of `asks`, the client's own progress token) is a splice on the notification as received.
fn relayable(gw: &Gateway, ctx: &RelayCtx, n: Bytes) -> Option<Bytes> {
    let Ok(env) = wire::parse(&n) else {
        return Some(n);
    };
    if let Some(m) = &ctx.modern {
        if env.method(&n) == Some(method::MESSAGE) {
            let level = modern::log_level_of(&n, &env);
            if m.log_level.is_none_or(|min| level.is_none_or(|l| l < min)) {
                return None;
            }
        }
    }
    let mut edits: SmallVec<[Splice; 2]> = SmallVec::new();
    if !super::asks::on_call_stream(gw, ctx, &n, &env, &mut edits) {
        return None;
    }
    // The client's own progress token goes back in; an empty one (a resumed call whose retry
    // asked for no progress) drops the notification.
    if let (Some(token), Some(span)) = (&ctx.client_token, env.progress_token) {
        if token.is_empty() {
            return None;
        }
        edits.push((span, token.clone()));
    }
    if edits.is_empty() {
        return Some(n);
    }
    Some(rewrite::concat(&rewrite::splice(&n, &mut edits)))
}

/// Checks the downstream's response answers our minted id, splices the client's id back, records.
fn finish_response(
    gw: &Gateway,
    w: &Worker,
    ctx: &RelayCtx,
    downstream_time: Duration,
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
        downstream_time,
    );
    stats.record_forward(total.saturating_sub(downstream_time), downstream_time);
    Ok((pieces, status))
}

/// The splices that fit a response to the client's era (modern fields added for a modern client,
/// removed for a legacy one; resource not found as each era codes it); returns the HTTP status
/// the response calls for.
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
                "the server asked for client input (input_required) on a call that cannot be bridged".into(),
            ))
        }
        (None, None) if from_modern && ctx.class == MethodClass::ResourcesRead => {
            edits.extend(env.error.and_then(|e| modern::legacy_error_edit(msg, e)));
            Ok(200)
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
