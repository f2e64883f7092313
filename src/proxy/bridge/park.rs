//! Modern client → legacy server: a server's request during a call becomes an `input_required`
//! result, and the client's retry resumes the parked call.
//!
//! Parking: the live [`Call`] moves into a driver task on this worker, registered in the worker's
//! [`super::Table`] under a random id; the client gets `inputRequests` (one entry, keyed by the
//! kind of request: `elicitation`, `sampling` or `roots`) and a sealed `requestState`
//! ([`crate::session::request_state`]) naming the worker, the id, the server and the call, bound
//! to the request's digest and principal, with an expiry.
//!
//! Resuming ([`resume`]): the retry (on any worker) opens and checks the token, takes the first
//! `inputResponses` value as the answer and hands it, with a channel to listen on, to the owning
//! worker ([`super::Delivery::Resume`]). The driver sends the answer to the server as the
//! response to its request (the server's own id), then relays what the call does next as
//! [`Step`]s: notifications, the response, or another request (parked again: a new round).
//!
//! Failure: a token that does not open, has expired, names another server, or comes with another
//! request or principal, and a parked call that is gone (resumed already, given up), are all
//! -32602 "Invalid or expired requestState" with `data.reason = "invalid_request_state"` (the
//! Python SDK's wording). A driver whose client does not come back within the timeout, or whose
//! listener went away, cancels the call downstream.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use bytes::Bytes;

use super::super::context::{Gateway, Worker};
use super::super::modern::{ModernCall, Reject};
use super::super::relay::{self, Leg, RelayCtx};
use super::super::{classify, one, Answer, Inbound, Pieces};
use super::{
    needed_capability, now_ms, random_id, satisfies, send, Delivery, MAX_PARKED_PER_WORKER,
};
use crate::catalog::Snapshot;
use crate::error::{ErrorKind, GatewayError};
use crate::session::request_state::{self, StateToken, DIGEST_LEN};
use crate::upstream::call::{Call, CallEvent};
use crate::upstream::UpstreamError;
use crate::wire::{self, code, encode, method, Envelope, Kind, Span};

/// A modern client's retry, handed to the parked call it names.
pub struct Resume {
    /// The client's answer to the server's request (a raw JSON result), if the retry has one.
    pub answer: Option<Bytes>,
    /// The capabilities the retry declared (the call may ask again).
    pub caps: u16,
    /// Where the driver sends what the call does next.
    pub listener: Sender<Step>,
}

/// What a parked call's driver tells the relay listening to it.
pub enum Step {
    /// Something the downstream sent: a notification, or the response.
    Event(CallEvent),
    /// The server asked again: the call is parked as `park` on `worker`; `request` is the ask.
    Ask {
        /// The worker holding the call.
        worker: u16,
        /// Its id there.
        park: u64,
        /// The server's request (with the server's own id).
        request: Bytes,
    },
    /// The server asked for a capability the retry did not declare (the call was cancelled).
    Missing(u16),
    /// The call failed.
    Failed(UpstreamError),
}

/// The steps of a resumed call, as the relay reads them.
pub struct Remote {
    rx: Receiver<Step>,
    first: Option<Step>,
}

impl Remote {
    /// The next step; a failure is an error.
    pub async fn next(&mut self) -> Result<Step, UpstreamError> {
        let step = match self.first.take() {
            Some(s) => s,
            None => self.rx.recv().await.map_err(|_| {
                UpstreamError::Protocol("the parked call ended without a response".into())
            })?,
        };
        match step {
            Step::Failed(e) => Err(e),
            s => Ok(s),
        }
    }
}

type Parked = Rc<RefCell<HashMap<u64, Sender<Resume>>>>;

/// The task that owns a parked call between rounds.
struct Driver {
    call: Call,
    table: Parked,
    counters: Rc<super::Counters>,
    inbox: (Sender<Resume>, Receiver<Resume>),
    worker: u16,
    park: u64,
    /// The server's request the client is answering.
    pending: Bytes,
    caps: u16,
    minted: u64,
    timeout: Duration,
}

/// Parks a live call whose server asked `request` of a modern client that declared the
/// capability; returns the `input_required` reply (and its status) for the client.
pub fn park(
    gw: &Gateway,
    w: &Worker,
    call: Call,
    ctx: &RelayCtx,
    request: Bytes,
) -> Result<(Pieces, u16), GatewayError> {
    let caps = ctx.modern.as_ref().map_or(0, ModernCall::capability_flags);
    if w.bridge.parked_len() >= MAX_PARKED_PER_WORKER {
        let refused = Driver::refusal(&request, "the gateway has too many calls waiting for input");
        call.reply_downstream(refused);
        cancel(
            &call,
            ctx.minted,
            "the gateway has too many calls waiting for input",
        );
        return Err(GatewayError::new(
            ErrorKind::Internal,
            "too many calls are waiting for client input; try again later",
        ));
    }
    let timeout = w.snapshot().gateway.input_timeout;
    let id = random_id();
    let inbox = async_channel::unbounded();
    w.bridge.parked.borrow_mut().insert(id, inbox.0.clone());
    let driver = Driver {
        call,
        table: w.bridge.parked.clone(),
        counters: w.bridge.counters.clone(),
        inbox,
        worker: w.index,
        park: id,
        pending: request.clone(),
        caps,
        minted: ctx.minted,
        timeout,
    };
    monoio::spawn(driver.run());
    input_required(gw, ctx, w.index, id, &request, timeout)
}

impl Driver {
    async fn run(mut self) {
        loop {
            let Some(resume) = self.wait().await else {
                return self.abandon("the client did not retry in time");
            };
            self.caps = resume.caps;
            let listener = resume.listener;
            let Some(answer) = resume.answer else {
                // The retry did not answer: ask the same question again.
                self.repark(None);
                let ask = self.ask_step();
                if listener.try_send(ask).is_err() {
                    return self.abandon("the client went away");
                }
                continue;
            };
            let Ok(env) = wire::parse(&self.pending) else {
                return self.abandon("unreadable server request");
            };
            let server_id = env.id_raw(&self.pending).unwrap_or(b"null");
            self.call
                .reply_downstream(encode::result_response(server_id, &answer));
            self.call.restart_deadline();
            if !self.listen(&listener).await {
                return;
            }
        }
    }

    /// Waits for the retry; `None` (and the entry removed) when it does not come in time.
    async fn wait(&self) -> Option<Resume> {
        match monoio::time::timeout(self.timeout, self.inbox.1.recv()).await {
            Ok(Ok(r)) => {
                let n = &self.counters.resumes;
                n.set(n.get() + 1);
                Some(r)
            }
            _ => {
                self.table.borrow_mut().remove(&self.park);
                let n = &self.counters.expiries;
                n.set(n.get() + 1);
                None
            }
        }
    }

    /// Registers the call under a fresh id (a new round), optionally for a new request.
    fn repark(&mut self, request: Option<Bytes>) {
        self.park = random_id();
        if let Some(r) = request {
            self.pending = r;
        }
        self.table
            .borrow_mut()
            .insert(self.park, self.inbox.0.clone());
    }

    fn ask_step(&self) -> Step {
        Step::Ask {
            worker: self.worker,
            park: self.park,
            request: self.pending.clone(),
        }
    }

    /// Relays the call to `listener` until it asks again (`true`: parked) or ends (`false`).
    async fn listen(&mut self, listener: &Sender<Step>) -> bool {
        loop {
            let step = match self.call.next().await {
                Ok(CallEvent::ServerRequest(r)) => match self.server_request(r) {
                    Some(step) => step,
                    None => continue,
                },
                Ok(event) => {
                    let end = matches!(event, CallEvent::Response(_));
                    if listener.try_send(Step::Event(event)).is_err() && !end {
                        self.abandon("the client went away");
                        return false;
                    }
                    if end {
                        return false;
                    }
                    continue;
                }
                Err(e) => {
                    let _ = listener.try_send(Step::Failed(e));
                    return false;
                }
            };
            let parked = matches!(step, Step::Ask { .. });
            if listener.try_send(step).is_err() {
                self.abandon("the client went away");
                return false;
            }
            if !parked {
                self.abandon("the client lacks a required capability");
            }
            return parked;
        }
    }

    /// Another request from the server: park for it if the client can answer, else refuse it
    /// (and end the call if the client lacks the capability).
    fn server_request(&mut self, request: Bytes) -> Option<Step> {
        let env = wire::parse(&request).ok()?;
        let name = env.method(&request).unwrap_or("");
        let needed = needed_capability(name, env.params.map(|p| p.get(&request)));
        if satisfies(self.caps, needed) {
            self.repark(Some(request));
            return Some(self.ask_step());
        }
        let why = format!("the client of this call cannot take '{name}'");
        self.call.reply_downstream(Driver::refusal(&request, &why));
        (needed != 0).then_some(Step::Missing(needed))
    }

    /// The error answering a server's `request` the client will not see.
    fn refusal(request: &[u8], why: &str) -> Bytes {
        let id = wire::parse(request)
            .ok()
            .and_then(|env| env.id_raw(request).map(<[u8]>::to_vec));
        encode::error_response(id.as_deref(), code::METHOD_NOT_FOUND, why, None)
    }

    /// Gives the call up: the server is told to stop, and the connection is dropped.
    fn abandon(&self, reason: &str) {
        cancel(&self.call, self.minted, reason);
    }
}

/// Sends the server of `call` (minted id `minted`) `notifications/cancelled`.
fn cancel(call: &Call, minted: u64, reason: &str) {
    call.reply_downstream(super::super::server_asks::cancelled_note(minted, reason));
}

/// The key an input request is given in `inputRequests` (one per round).
fn key_for(method_name: &str) -> &'static str {
    match method_name {
        method::SAMPLING_CREATE_MESSAGE => "sampling",
        method::ROOTS_LIST => "roots",
        _ => "elicitation",
    }
}

/// The `input_required` reply for the client of `ctx`: the server's `request` as the one input
/// request, and a sealed `requestState` naming parked call `park` on `worker`, good for `timeout`.
pub fn input_required(
    gw: &Gateway,
    ctx: &RelayCtx,
    worker: u16,
    park: u64,
    request: &Bytes,
    timeout: Duration,
) -> Result<(Pieces, u16), GatewayError> {
    let internal = |why: &'static str| GatewayError::new(ErrorKind::Internal, why);
    let m = ctx
        .modern
        .as_ref()
        .ok_or_else(|| internal("input_required for a legacy client"))?;
    let token = StateToken {
        worker,
        parked: park,
        slot: ctx.link.slot as u32,
        minted: ctx.minted,
        expires_ms: now_ms() + timeout.as_millis() as u64,
        digest: request_digest(&m.request),
        principal: principal_of(m),
    };
    let state = gw
        .relay_ids
        .states
        .seal(&token)
        .map_err(|_| internal("could not seal the request state"))?;
    let env = wire::parse(request).map_err(|_| internal("unreadable server request"))?;
    let name = env.method(request).unwrap_or("");
    let mut r = b"{\"resultType\":\"input_required\",\"inputRequests\":{".to_vec();
    encode::write_json_string(&mut r, key_for(name));
    r.extend_from_slice(b":{\"method\":");
    encode::write_json_string(&mut r, name);
    if let Some(p) = env.params {
        r.extend_from_slice(b",\"params\":");
        r.extend_from_slice(p.get(request));
    }
    r.extend_from_slice(b"}},\"requestState\":");
    encode::write_json_string(&mut r, &state);
    r.push(b'}');
    Ok((one(encode::result_response(&ctx.client_id, &r)), 200))
}

/// The digest binding a request state to the principal that made the call (by its debug form:
/// stable for as long as a token lives).
fn principal_of(call: &ModernCall) -> [u8; 8] {
    request_state::principal_digest(&format!("{:?}", call.principal))
}

/// The digest binding a request state to its request (method, target, arguments).
fn request_digest(body: &[u8]) -> [u8; DIGEST_LEN] {
    let Ok(env) = wire::parse(body) else {
        return [0; DIGEST_LEN];
    };
    let method_name = env.method(body).unwrap_or("");
    let target = if method_name == method::RESOURCES_READ {
        env.uri_str(body)
    } else {
        env.name_str(body)
    };
    let mut arguments = None;
    if let Some(p) = env.params {
        let _ = wire::scan::for_each_member(body, p.start as usize, |k, escaped, v| {
            if wire::scan::key_eq(k.get(body), escaped, b"arguments") {
                arguments = Some(v);
            }
        });
    }
    request_state::digest(
        method_name,
        target.as_deref().unwrap_or(""),
        arguments.map(|a| a.get(body)),
    )
}

/// The retry fields of a modern request's params: `requestState` and `inputResponses` (raw
/// spans), if it carries a `requestState`. The envelope scan records both, so a modern call to a
/// legacy server pays nothing more to learn whether it is a retry.
pub fn retry_fields(env: &Envelope) -> Option<(Span, Option<Span>)> {
    env.request_state.map(|s| (s, env.input_responses))
}

/// The error for a request state that cannot be honoured.
fn invalid_state() -> Reject {
    Reject::new(code::INVALID_PARAMS, "Invalid or expired requestState")
        .with_data(b"{\"reason\":\"invalid_request_state\"}".to_vec())
}

/// The first member value of an `inputResponses` object (the bridge asks one thing a round).
fn first_response(body: &Bytes, responses: Span) -> Option<Bytes> {
    let mut first = None;
    let _ = wire::scan::for_each_member(body, responses.start as usize, |_, _, v| {
        first.get_or_insert(v);
    });
    first.map(|v| body.slice(v.start as usize..v.end as usize))
}

/// The token a retry's `requestState` stands for, if it opens, has not expired, and was issued
/// for this server, this request (digest) and this principal.
fn checked_token(
    gw: &Gateway,
    body: &Bytes,
    state: Span,
    slot: usize,
    call: &ModernCall,
) -> Option<StateToken> {
    let content = state.get(body).strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let token = gw.relay_ids.states.open(content)?;
    let expected = StateToken {
        slot: slot as u32,
        principal: principal_of(call),
        digest: request_digest(body),
        ..token
    };
    binds(&token, &expected, now_ms()).then_some(token)
}

/// Whether an opened token is still good at `now_ms` for the request `expected` describes
/// (same server, principal and request digest).
fn binds(token: &StateToken, expected: &StateToken, now_ms: u64) -> bool {
    token.expires_ms >= now_ms
        && token.slot == expected.slot
        && token.principal == expected.principal
        && token.digest == expected.digest
}

/// A modern client's retry of a call parked for a legacy server (`server`): checks the state,
/// hands the answer to the parked call, and relays what the call does next.
#[allow(clippy::too_many_arguments)]
pub(in crate::proxy) async fn resume(
    gw: &Gateway,
    w: &Worker,
    snap: &Arc<Snapshot>,
    req: &Inbound<'_>,
    env: &Envelope,
    server: usize,
    call: ModernCall,
    (state, responses): (Span, Option<Span>),
) -> Result<Answer, Reject> {
    let body = &req.body;
    let link = snap.servers[server].link.clone();
    let token = checked_token(gw, body, state, link.slot, &call).ok_or_else(invalid_state)?;
    let (listener, rx) = async_channel::unbounded();
    let resume = Resume {
        answer: responses.and_then(|r| first_response(body, r)),
        caps: call.capability_flags(),
        listener,
    };
    send(gw, w, token.worker, Delivery::Resume(token.parked, resume));
    // A parked call that is gone drops the resume: the channel closes with nothing in it.
    let first = rx.recv().await.map_err(|_| invalid_state())?;
    let method_name = env.method(body).unwrap_or("");
    let ctx = RelayCtx {
        link,
        client_id: Bytes::copy_from_slice(env.id_raw(body).unwrap_or(b"null")),
        // The downstream still uses the first request's token (minted, on a shared stdio
        // child): progress goes back under the retry's own token, or not at all (empty).
        client_token: Some(
            env.progress_token
                .map_or_else(Bytes::new, |t| body.slice(t.start as usize..t.end as usize)),
        ),
        minted: token.minted,
        class: classify(method_name, Kind::Request),
        received: req.received,
        session: None,
        accepts_sse: req.accepts_sse,
        modern: Some(call),
        cancel_on_drop: None,
        retry: None,
        task_ids: false,
        asked: Default::default(),
    };
    let leg = Leg::Remote(Remote {
        rx,
        first: Some(first),
    });
    relay::CallRelay::begin(gw, w, ctx, Ok(leg), req.accepts_sse)
        .await
        .map(|r| match r {
            relay::Begun::Done(msg, status) => Answer::Reply(status, msg),
            relay::Begun::Streaming(relay) => Answer::Relay(relay),
        })
        .map_err(|e| Reject::from_gateway(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_to_server_principal_request_and_time() {
        let t = StateToken {
            worker: 1,
            parked: 2,
            slot: 3,
            minted: 4,
            expires_ms: 1_000,
            digest: request_digest(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a__ask","arguments":{"x":1}}}"#),
            principal: request_state::principal_digest("Anonymous"),
        };
        assert!(binds(&t, &t, 999) && binds(&t, &t, 1_000));
        assert!(!binds(&t, &t, 1_001), "expired");
        assert!(
            !binds(&t, &StateToken { slot: 4, ..t }, 0),
            "another server"
        );
        let other = StateToken {
            principal: request_state::principal_digest("Someone"),
            ..t
        };
        assert!(!binds(&t, &other, 0), "another principal");
        // Same call re-encoded (retry fields and whitespace aside): same digest; other args: not.
        let retry = br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"inputResponses":{},"requestState":"s","arguments":{ "x" : 1 },"name":"a__ask"}}"#;
        assert_eq!(request_digest(retry), t.digest);
        let changed = br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"a__ask","arguments":{"x":2}}}"#;
        assert!(!binds(
            &t,
            &StateToken {
                digest: request_digest(changed),
                ..t
            },
            0
        ));
    }
}
