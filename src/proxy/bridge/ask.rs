//! Legacy client → modern server: an `input_required` result becomes real requests to the client,
//! and the call is retried downstream with the answers.
//!
//! [`Asking::start`] reads the result (`inputRequests`, `requestState`) and makes one JSON-RPC
//! request per input request, its id a sealed bridge token ([`RelayIds::seal_bridge`]) naming this
//! worker and an ask id registered in the worker's [`super::Table`]. The relay sends them on the
//! call's SSE stream. The client's answers are POSTed like any response to a server request, on
//! any worker; `client_msgs` opens the token and hands the answer here
//! ([`super::Delivery::Answer`]). [`Asking::collect`] waits for all of them (bounded), and
//! [`Asking::retry`] makes the retried call: the original message with a fresh minted id and
//! `inputResponses` (keyed as the server keyed its requests) plus the server's own
//! `requestState`, verbatim, spliced into its params.
//!
//! Refusals (clear errors to the client, the call ends): a session that did not declare the
//! capability a request needs, a client without an SSE reply (nowhere to send the request), an
//! error answer, no answer in time, more than [`super::MAX_ROUNDS`] rounds.
//!
//! [`RelayIds::seal_bridge`]: crate::session::relay_ids::RelayIds::seal_bridge

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::Receiver;
use bytes::Bytes;

use super::super::context::{Gateway, Worker};
use super::super::relay::RelayCtx;
use super::super::Pieces;
use super::{needed_capability, random_id, satisfies, MAX_ROUNDS};
use crate::error::{ErrorKind, GatewayError};
use crate::upstream::call::CallSpec;
use crate::upstream::exchange::ReplyLimits;
use crate::upstream::route::Route;
use crate::wire::{self, encode, rewrite, Kind, Span};

/// What it takes to retry a legacy client's call to a modern server.
pub struct RetryPlan {
    /// The call as first sent downstream (its minted id spliced in).
    pub body: Pieces,
    /// The progress token the downstream saw, if any.
    pub progress: Option<Bytes>,
    /// Reply limits.
    pub limits: ReplyLimits,
    /// The gateway's client name (for a downstream re-initialization).
    pub client_name: Arc<str>,
    /// `input_required` rounds so far.
    pub rounds: u8,
    /// Who the call is for (kept for the retried call).
    pub origin: crate::session::origin::Origin,
    /// The call's mirrored `Mcp-Param-*` arguments (kept for the retried call).
    pub params: Option<Arc<[crate::catalog::params::Param]>>,
}

/// A round in progress: requests sent to the client, answers being collected (for at most
/// `gateway.input_timeout_ms`).
pub struct Asking {
    rx: Receiver<(u64, Bytes)>,
    /// Open asks: (ask id, the server's key as a raw JSON string).
    pending: Vec<(u64, Bytes)>,
    /// (key, raw result) for each answer so far.
    answers: Vec<(Bytes, Bytes)>,
    /// The server's `requestState`, raw (echoed verbatim).
    state: Option<Bytes>,
}

fn refuse(why: String) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidRequest, why)
}

/// The result span of a response whose `resultType` is `input_required`.
pub fn input_required_result(msg: &[u8]) -> Option<Span> {
    let env = wire::parse(msg).ok()?;
    let result = env.result?;
    let mut found = false;
    let _ = wire::scan::for_each_member(msg, result.start as usize, |k, escaped, v| {
        found |= wire::scan::key_eq(k.get(msg), escaped, b"resultType")
            && v.get(msg) == b"\"input_required\"";
    });
    found.then_some(result)
}

impl Asking {
    /// Reads an `input_required` result for the client of `ctx`; returns the round and the
    /// requests to send the client (in order).
    pub fn start(
        gw: &Gateway,
        w: &Worker,
        ctx: &RelayCtx,
        msg: &Bytes,
        result: Span,
    ) -> Result<(Asking, Vec<Bytes>), GatewayError> {
        let server = &ctx.link.name;
        let rounds = ctx.retry.as_ref().map_or(0, |r| r.rounds);
        if rounds >= MAX_ROUNDS {
            return Err(refuse(format!(
                "server '{server}' asked for client input more than {MAX_ROUNDS} times"
            )));
        }
        let (mut inputs, mut state) = (None, None);
        let _ = wire::scan::for_each_member(msg, result.start as usize, |k, escaped, v| {
            let k = k.get(msg);
            if wire::scan::key_eq(k, escaped, b"inputRequests") {
                inputs = Some(v);
            } else if wire::scan::key_eq(k, escaped, b"requestState") {
                state = Some(msg.slice(v.start as usize..v.end as usize));
            }
        });
        let mut requests: Vec<(Bytes, Span)> = Vec::new();
        if let Some(inputs) = inputs.filter(|s| msg.get(s.start as usize) == Some(&b'{')) {
            let _ = wire::scan::for_each_member(msg, inputs.start as usize, |k, _, v| {
                let key = Span::new(k.start as usize - 1, k.end as usize + 1);
                requests.push((msg.slice(key.start as usize..key.end as usize), v));
            });
        }
        let (tx, rx) = async_channel::unbounded();
        let mut asking = Asking {
            rx,
            pending: Vec::with_capacity(requests.len()),
            answers: Vec::new(),
            state,
        };
        let mut out = Vec::with_capacity(requests.len());
        for (key, request) in requests {
            let (name, params) = method_and_params(msg, request).ok_or_else(|| {
                refuse(format!(
                    "server '{server}' sent an unreadable input request"
                ))
            })?;
            client_can_take(ctx, &name, params.map(|p| p.get(msg)))?;
            let id = random_id();
            let token = gw
                .relay_ids
                .seal_bridge(w.index, id)
                .ok_or_else(|| GatewayError::new(ErrorKind::Internal, "could not seal an id"))?;
            w.bridge.open_ask(id, tx.clone());
            asking.pending.push((id, key));
            out.push(encode::request(&token, &name, params.map(|p| p.get(msg))));
        }
        Ok((asking, out))
    }

    /// Whether the round waits for answers from the client (a state-only round does not).
    pub fn waits(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Waits for every answer; returns the `inputResponses` object.
    pub async fn collect(&mut self, timeout: Duration) -> Result<Bytes, GatewayError> {
        let deadline = Instant::now() + timeout;
        while !self.pending.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let (id, answer) = match monoio::time::timeout(left, self.rx.recv()).await {
                Ok(Ok(a)) => a,
                _ => {
                    return Err(refuse(
                        "the client did not answer the server's request in time".into(),
                    ))
                }
            };
            let Some(i) = self.pending.iter().position(|(p, _)| *p == id) else {
                continue;
            };
            let (_, key) = self.pending.swap_remove(i);
            self.answers.push((key, result_of(&answer)?));
        }
        let mut out = b"{".to_vec();
        for (i, (key, value)) in self.answers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            out.push(b':');
            out.extend_from_slice(value);
        }
        out.push(b'}');
        Ok(Bytes::from(out))
    }

    /// The retried call: the original message with `minted` as its id, `responses` and the
    /// server's `requestState` in its params. Counts the round.
    pub fn retry(
        &self,
        w: &Worker,
        ctx: &mut RelayCtx,
        responses: &[u8],
    ) -> Result<CallSpec, GatewayError> {
        let lost = || GatewayError::new(ErrorKind::Internal, "the call cannot be retried");
        let plan = ctx.retry.as_mut().ok_or_else(lost)?;
        plan.rounds += 1;
        let minted = w.mint_id();
        let body =
            retry_body(&plan.body, minted, responses, self.state.as_ref()).ok_or_else(lost)?;
        let route = Route::to(&ctx.link, &w.pools).map_err(|e| e.for_client(&ctx.link.name))?;
        ctx.minted = minted;
        Ok(CallSpec {
            route,
            link: ctx.link.clone(),
            body,
            minted_id: minted,
            progress: plan.progress.clone(),
            retry_safe: false,
            timeout: ctx.link.config.call_timeout,
            limits: plan.limits,
            client_name: plan.client_name.clone(),
            origin: plan.origin.clone(),
            params: plan.params.clone(),
        })
    }
}

/// The `method` (decoded) and `params` span of an input request object.
fn method_and_params(msg: &[u8], request: Span) -> Option<(String, Option<Span>)> {
    let (mut name, mut params) = (None, None);
    let _ = wire::scan::for_each_member(msg, request.start as usize, |k, escaped, v| {
        let k = k.get(msg);
        if wire::scan::key_eq(k, escaped, b"method") {
            name = v
                .get(msg)
                .strip_prefix(b"\"")
                .and_then(|s| s.strip_suffix(b"\""))
                .and_then(|s| encode::decode_json_string(s).ok())
                .map(|s| s.into_owned());
        } else if wire::scan::key_eq(k, escaped, b"params") {
            params = Some(v);
        }
    });
    name.map(|n| (n, params))
}

/// Whether the legacy client of `ctx` can be sent a `name` request (with `params`) now.
fn client_can_take(ctx: &RelayCtx, name: &str, params: Option<&[u8]>) -> Result<(), GatewayError> {
    let needed = needed_capability(name, params);
    if needed == 0 {
        return Err(refuse(format!(
            "server '{}' asked the client for '{name}', which the gateway does not relay",
            ctx.link.name
        )));
    }
    let declared = ctx
        .session
        .is_some_and(|s| satisfies(s.client_caps, needed));
    if !declared {
        return Err(refuse(format!(
            "server '{}' needs the client to answer '{name}', a capability (or sub-capability) this session did not declare",
            ctx.link.name
        )));
    }
    if !ctx.accepts_sse {
        return Err(refuse(format!(
            "server '{}' needs the client to answer '{name}': send Accept: text/event-stream so the request can reach you",
            ctx.link.name
        )));
    }
    Ok(())
}

/// The raw result of a client's answer; an error answer ends the call.
fn result_of(answer: &Bytes) -> Result<Bytes, GatewayError> {
    let env = wire::parse(answer).map_err(|_| refuse("unreadable answer".into()))?;
    match (env.kind, env.result, env.error) {
        (Kind::Response, Some(r), _) => Ok(answer.slice(r.start as usize..r.end as usize)),
        (_, _, Some(e)) => Err(refuse(format!(
            "the client refused the server's request: {}",
            String::from_utf8_lossy(e.get(answer))
        ))),
        _ => Err(refuse("unreadable answer".into())),
    }
}

/// `body` with `minted` as its id and `inputResponses` / `requestState` first in its params.
fn retry_body(
    body: &[Bytes],
    minted: u64,
    responses: &[u8],
    state: Option<&Bytes>,
) -> Option<Pieces> {
    let msg = rewrite::concat(body);
    let env = wire::parse(&msg).ok()?;
    let (id_span, _) = env.id?;
    let params = env
        .params
        .filter(|p| msg.get(p.start as usize) == Some(&b'{'))?;
    let at = params.start as usize + 1;
    let empty = msg.get(wire::scan::skip_ws(&msg, at)) == Some(&b'}');
    let mut fields = b"\"inputResponses\":".to_vec();
    fields.extend_from_slice(responses);
    if let Some(s) = state {
        fields.extend_from_slice(b",\"requestState\":");
        fields.extend_from_slice(s);
    }
    if !empty {
        fields.push(b',');
    }
    let id = Bytes::copy_from_slice(rewrite::format_u64_id(minted).as_bytes());
    Some(rewrite::splice(
        &msg,
        &mut [(id_span, id), (Span::new(at, at), Bytes::from(fields))],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_required_results_are_recognized() {
        let ir = br#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required","requestState":"s"}}"#;
        assert!(input_required_result(ir).is_some());
        let done = br#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","content":[]}}"#;
        assert!(input_required_result(done).is_none());
        assert!(input_required_result(
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}"#
        )
        .is_none());
    }

    #[test]
    fn retries_carry_the_answers_and_the_state_first_in_params() {
        let body = [Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"ask","arguments":{}}}"#,
        )];
        let state = Bytes::from_static(br#""opaque""#);
        let out = rewrite::concat(
            &retry_body(&body, 99, br#"{"who":{"action":"accept"}}"#, Some(&state)).unwrap(),
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"inputResponses":{"who":{"action":"accept"}},"requestState":"opaque","name":"ask","arguments":{}}}"#
        );
        let empty = [Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{}}"#,
        )];
        let out = rewrite::concat(&retry_body(&empty, 2, b"{}", None).unwrap());
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"jsonrpc":"2.0","id":2,"method":"x","params":{"inputResponses":{}}}"#
        );
    }

    #[test]
    fn answers_are_results_and_errors_refuse() {
        let ok = Bytes::from_static(br#"{"jsonrpc":"2.0","id":"t","result":{"action":"accept"}}"#);
        assert_eq!(&result_of(&ok).unwrap()[..], br#"{"action":"accept"}"#);
        let err =
            Bytes::from_static(br#"{"jsonrpc":"2.0","id":"t","error":{"code":-1,"message":"no"}}"#);
        assert!(result_of(&err).is_err());
    }
}
