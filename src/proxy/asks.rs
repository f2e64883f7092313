//! What a call's server says to the client on the call's stream, beyond progress: the requests it
//! asked the client (sampling, elicitation, roots) and their cancellation, and task status.
//!
//! A server request reaches the client with its id replaced by a sealed relay id, and every seal
//! carries a fresh nonce, so the token cannot be recomputed later: [`Asked`] remembers, per call,
//! which token stood for which server id. When the server then sends `notifications/cancelled`
//! for its own request, the client gets it with the token it saw; a cancellation for a request
//! this call never relayed is not the client's business and is dropped.
//!
//! `notifications/tasks/status` goes to the session that created the task: relayed here (id
//! sealed) when that is this call's session, else sent to its owner (or dropped when unknown).
//!
//! Performance: no scan of its own: the relay parses each notification once and every change is
//! a splice on it; the list of asked ids is inline for one request.

use std::cell::RefCell;

use bytes::Bytes;
use smallvec::SmallVec;

use super::context::Gateway;
use super::relay::RelayCtx;
use super::tasks;
use crate::wire::names::meta;
use crate::wire::scan::{member, path};
use crate::wire::{key, method, Envelope, Span, Splice};

/// The server requests a call relayed to its client: (server's raw id, sealed token the client saw).
#[derive(Default)]
pub struct Asked(RefCell<SmallVec<[(Bytes, Bytes); 1]>>);

/// Server requests one call may relay (more are still relayed, but not remembered for cancelling).
pub const MAX_ASKED: usize = 64;

impl Asked {
    /// Remembers that the server's request `server_id` reached the client as `token`.
    pub fn note(&self, server_id: &[u8], token: &Bytes) {
        let mut asked = self.0.borrow_mut();
        if asked.len() < MAX_ASKED {
            asked.push((Bytes::copy_from_slice(server_id), token.clone()));
        }
    }

    /// The token the client saw for the server's request `server_id`.
    pub fn token_for(&self, server_id: &[u8]) -> Option<Bytes> {
        self.0
            .borrow()
            .iter()
            .find(|(id, _)| id.as_ref() == server_id)
            .map(|(_, t)| t.clone())
    }
}

/// The splices relaying a server request to the client: its id → `token` (remembered for the
/// server's cancellation), and a `related-task` id sealed as the client knows that task.
pub fn request_edits(
    gw: &Gateway,
    ctx: &RelayCtx,
    msg: &[u8],
    env: &Envelope,
    id: Span,
    token: Bytes,
) -> SmallVec<[Splice; 2]> {
    ctx.asked.note(id.get(msg), &token);
    let mut edits: SmallVec<[Splice; 2]> = SmallVec::new();
    edits.push((id, token));
    let related = env
        .params
        .and_then(|p| path(msg, p, &[key::META, meta::RELATED_TASK, key::TASK_ID]));
    if let (Some(task), Some(s)) = (related, ctx.session) {
        if let Some(sealed) = gw.tasks.token(ctx.link.slot, s.nonce, task.get(msg)) {
            edits.push((task, sealed));
        }
    }
    edits
}

/// The splices making a notification from the call's server (`n`, parsed as `env`) what the
/// client should get; `false`: it is not for the client.
pub fn on_call_stream(
    gw: &Gateway,
    ctx: &RelayCtx,
    n: &Bytes,
    env: &Envelope,
    edits: &mut SmallVec<[Splice; 2]>,
) -> bool {
    let slot = ctx.link.slot;
    match env.method(n) {
        Some(method::CANCELLED) => {
            let Some(span) = env.request_id else {
                return false;
            };
            let Some(token) = ctx.asked.token_for(span.get(n)) else {
                return false;
            };
            edits.push((span, token));
            true
        }
        Some(method::TASKS_STATUS) => {
            let Some(id) = env.params.and_then(|p| member(n, p, key::TASK_ID)) else {
                return false;
            };
            match (gw.tasks.owner(slot, id.get(n)), ctx.session) {
                (Some(o), Some(s)) if o == s.nonce => {
                    tasks::notification_edits(gw, slot, o, n, env, edits);
                    true
                }
                _ => {
                    tasks::status_outside_call(gw, slot, n);
                    false
                }
            }
        }
        _ if ctx.task_ids => {
            if let Some(s) = ctx.session {
                tasks::notification_edits(gw, slot, s.nonce, n, env, edits);
            }
            true
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asked_ids_map_to_the_tokens_the_client_saw() {
        let asked = Asked::default();
        asked.note(b"\"ask-1\"", &Bytes::from_static(b"\"k1.tok\""));
        assert_eq!(
            asked.token_for(b"\"ask-1\""),
            Some(Bytes::from_static(b"\"k1.tok\""))
        );
        assert_eq!(asked.token_for(b"\"ask-2\""), None);
    }
}
