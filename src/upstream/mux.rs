//! Multiplexing many callers onto one downstream stream: the routing table shared by the stdio
//! child transport and the HTTP+SSE session transport.
//!
//! The owner task of a stream (on the control thread) receives [`MuxMsg`]s from any worker,
//! registers where replies go ([`Routes::accept`]), writes the message, and hands every message read
//! back to [`Routes::dispatch`]: responses by id, progress by token, the server's own requests
//! answered, everything else to the `unsolicited` handler (list_changed and friends). Ids and
//! progress tokens are gateway-minted, so they are unique across workers.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;

use crate::session::downstream::{MuxEvent, MuxMsg};
use crate::wire::{self, Kind};

/// Where replies for in-flight requests go.
#[derive(Default)]
pub struct Routes {
    by_id: HashMap<Bytes, (async_channel::Sender<MuxEvent>, Option<Bytes>)>,
    by_token: HashMap<Bytes, Bytes>,
}

impl Routes {
    /// Registers a request's routes; returns the bytes to write (`None`: nothing to write).
    pub fn accept(&mut self, msg: MuxMsg) -> Option<Bytes> {
        match msg {
            MuxMsg::Request {
                body,
                id,
                progress,
                events,
            } => {
                if let Some(t) = &progress {
                    self.by_token.insert(t.clone(), id.clone());
                }
                self.by_id.insert(id, (events, progress));
                Some(body)
            }
            MuxMsg::Send(body) => Some(body),
            MuxMsg::Forget(id) => {
                self.forget(&id);
                None
            }
        }
    }

    fn forget(&mut self, id: &[u8]) -> Option<async_channel::Sender<MuxEvent>> {
        let (events, token) = self.by_id.remove(id)?;
        if let Some(t) = token {
            self.by_token.remove(&t);
        }
        Some(events)
    }

    /// Tells the waiting caller of `id` that its request failed (e.g. the POST was refused).
    pub fn fail(&mut self, id: &[u8], why: &str) {
        if let Some(events) = self.forget(id) {
            let _ = events.try_send(MuxEvent::Closed(why.to_string()));
        }
    }

    /// Fails every pending request (the stream is gone).
    pub fn fail_all(&mut self, why: &str) {
        for (_, (events, _)) in self.by_id.drain() {
            let _ = events.try_send(MuxEvent::Closed(why.to_string()));
        }
        self.by_token.clear();
    }
}

/// Routes one message read from the downstream. Server requests are answered through `reply`.
pub fn dispatch(
    msg: Bytes,
    routes: &std::cell::RefCell<Routes>,
    reply: &async_channel::Sender<MuxMsg>,
    unsolicited: &Rc<dyn Fn(Bytes)>,
    server: &str,
) {
    let env = match wire::parse(&msg) {
        Ok(env) => env,
        Err(e) => return log::warn!("server '{server}': invalid JSON-RPC ({e}); skipped"),
    };
    match env.kind {
        Kind::Response | Kind::Error => {
            let Some(id) = env.id_raw(&msg) else { return };
            let waiting = routes.borrow_mut().forget(id);
            match waiting {
                Some(events) => {
                    let _ = events.try_send(MuxEvent::Response(msg));
                }
                None => log::debug!("server '{server}': response to an unknown or abandoned id"),
            }
        }
        Kind::Notification => {
            let routed = env.progress_token.and_then(|t| {
                let r = routes.borrow();
                let id = r.by_token.get(t.get(&msg))?;
                r.by_id.get(id).map(|(events, _)| events.clone())
            });
            match routed {
                Some(events) => {
                    let _ = events.try_send(MuxEvent::Notification(msg));
                }
                None => unsolicited(msg),
            }
        }
        Kind::Request => {
            // A stdio or SSE server's request carries no link to the call that caused it; with
            // exactly one call in flight it can only be that one's, otherwise it is refused.
            let only = {
                let r = routes.borrow();
                let mut pending = r.by_id.values();
                match (pending.next(), pending.next()) {
                    (Some((events, _)), None)
                        if env.method(&msg) != Some(crate::wire::method::PING) =>
                    {
                        Some(events.clone())
                    }
                    _ => None,
                }
            };
            match only {
                Some(events) => {
                    let _ = events.try_send(MuxEvent::Notification(msg));
                }
                None => {
                    if let Some(answer) = super::answer_server_request(&msg, &env) {
                        let _ = reply.try_send(MuxMsg::Send(answer));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn responses_and_progress_reach_their_caller_and_the_rest_is_unsolicited() {
        let routes = RefCell::new(Routes::default());
        let (events, rx) = async_channel::unbounded();
        let body = routes.borrow_mut().accept(MuxMsg::Request {
            body: Bytes::from_static(b"{}"),
            id: Bytes::from_static(b"7"),
            progress: Some(Bytes::from_static(b"7")),
            events,
        });
        assert!(body.is_some());
        let (reply, replies) = async_channel::unbounded();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let sink = seen.clone();
        let unsolicited: Rc<dyn Fn(Bytes)> = Rc::new(move |m| sink.borrow_mut().push(m));
        let progress = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":1}}"#;
        dispatch(
            Bytes::from_static(progress),
            &routes,
            &reply,
            &unsolicited,
            "s",
        );
        dispatch(
            Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#),
            &routes,
            &reply,
            &unsolicited,
            "s",
        );
        dispatch(
            Bytes::from_static(br#"{"jsonrpc":"2.0","id":"srv","method":"ping"}"#),
            &routes,
            &reply,
            &unsolicited,
            "s",
        );
        dispatch(
            Bytes::from_static(br#"{"jsonrpc":"2.0","id":7,"result":{}}"#),
            &routes,
            &reply,
            &unsolicited,
            "s",
        );
        assert!(matches!(rx.try_recv(), Ok(MuxEvent::Notification(_))));
        assert!(matches!(rx.try_recv(), Ok(MuxEvent::Response(_))));
        assert_eq!(seen.borrow().len(), 1);
        assert!(
            matches!(replies.try_recv(), Ok(MuxMsg::Send(_))),
            "ping answered"
        );
        // A late duplicate response goes nowhere.
        dispatch(
            Bytes::from_static(br#"{"jsonrpc":"2.0","id":7,"result":{}}"#),
            &routes,
            &reply,
            &unsolicited,
            "s",
        );
        assert!(rx.try_recv().is_err());
    }
}
