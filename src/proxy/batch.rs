//! JSON-RPC batches (accepted only on 2025-03-26 sessions): each element runs through the same
//! phases as a single message, on its own bytes (a batch never goes downstream as a batch), and the
//! replies are collected into one array.

use std::sync::Arc;

use bytes::Bytes;

use super::{classify, fail, one, record, run_phases, Answer, Gateway, Inbound, Outcome, Worker};
use crate::catalog::Snapshot;
use crate::error::{ErrorKind, GatewayError};
use crate::session::versions;
use crate::wire::{self, method, rewrite, Span};

/// A batch (2025-03-26 only): each element through the same phases; replies collected into one array.
pub(super) async fn batch(
    gw: &Gateway,
    w: &Worker,
    snap: &Arc<Snapshot>,
    req: &Inbound<'_>,
    spans: &[Span],
) -> Outcome {
    let allowed = req
        .session
        .and_then(|s| w.open_session(gw, s))
        .is_some_and(|s| versions::allows_batches(s.version));
    if !allowed {
        let e = GatewayError::new(
            ErrorKind::InvalidRequest,
            "batches are only accepted on 2025-03-26 sessions",
        );
        return fail(&e, None);
    }
    let mut replies: Vec<Bytes> = Vec::with_capacity(spans.len());
    for span in spans {
        // Each element is forwarded on its own: its bytes, its spans (batches never go downstream).
        let element = req.body.slice(span.start as usize..span.end as usize);
        let body = &element;
        let env = match wire::parse(body) {
            Ok(env) => env,
            Err(e) => {
                let err = GatewayError::new(ErrorKind::InvalidRequest, e.reason());
                replies.push(err.to_jsonrpc(e.id().map(|(s, _)| s.get(body))));
                continue;
            }
        };
        let method = env.method(body).unwrap_or("");
        if method == method::INITIALIZE {
            let err =
                GatewayError::new(ErrorKind::InvalidRequest, "initialize must not be batched");
            replies.push(err.to_jsonrpc(env.id_raw(body)));
            continue;
        }
        let class = classify(method, env.kind);
        match run_phases(gw, w, snap, req, body, &env, method).await {
            Ok(Answer::Message(m) | Answer::Reply(_, m)) => replies.push(rewrite::concat(&m)),
            Ok(Answer::Initialized(m, _)) => replies.push(m),
            Ok(Answer::Relay(r)) => replies.push(r.finish(gw, w).await),
            Ok(Answer::Nothing) => {}
            Err(e) => {
                record(w, class, false, req.received);
                replies.push(e.to_jsonrpc(env.id_raw(body)));
            }
        }
    }
    if replies.is_empty() {
        return Outcome::Accepted;
    }
    let mut out = Vec::with_capacity(replies.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
    out.push(b'[');
    for (i, r) in replies.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(r);
    }
    out.push(b']');
    Outcome::Json {
        status: 200,
        body: one(Bytes::from(out)),
        session: None,
    }
}
