//! Multiplexing many callers onto one downstream stream: the routing table shared by the stdio
//! child transport and the HTTP+SSE session transport.
//!
//! The owner task of a stream (on the control thread) receives [`MuxMsg`]s from any worker,
//! registers where replies go ([`Routes::accept`]), writes the message, and hands every message read
//! back to [`dispatch`]: responses by id, progress by token, the server's own requests to the
//! caller they are attributed to (see `Routes::attribute`: a `related-task` hint, else the one
//! front session with calls in flight) or refused when ambiguous, the server's cancellation of
//! such a request to the same caller, everything else to the `unsolicited` handler (list_changed
//! and friends). Ids and progress tokens are gateway-minted, so they are unique across workers.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;

use crate::session::downstream::{MuxEvent, MuxMsg};
use crate::session::origin::Origin;
use crate::wire::names::meta;
use crate::wire::scan::path;
use crate::wire::{self, key, method, Envelope, Kind};

/// A request waiting for its response.
struct Pending {
    events: async_channel::Sender<MuxEvent>,
    progress: Option<Bytes>,
    origin: Origin,
    /// Order of registration (the latest call of a session is the likeliest cause).
    seq: u64,
}

/// Where replies for in-flight requests go.
#[derive(Default)]
pub struct Routes {
    by_id: HashMap<Bytes, Pending>,
    by_token: HashMap<Bytes, Bytes>,
    /// Server requests handed to a caller: the server's raw id → the caller's (minted) id, so the
    /// server's `notifications/cancelled` for one reaches the same caller.
    asked: HashMap<Bytes, Bytes>,
    seq: u64,
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
                origin,
            } => {
                if let Some(t) = &progress {
                    self.by_token.insert(t.clone(), id.clone());
                }
                self.seq += 1;
                let pending = Pending {
                    events,
                    progress,
                    origin,
                    seq: self.seq,
                };
                self.by_id.insert(id, pending);
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
        let pending = self.by_id.remove(id)?;
        if let Some(t) = pending.progress {
            self.by_token.remove(&t);
        }
        if !self.asked.is_empty() {
            self.asked.retain(|_, caller| caller.as_ref() != id);
        }
        Some(pending.events)
    }

    /// Tells the waiting caller of `id` that its request failed (e.g. the POST was refused).
    pub fn fail(&mut self, id: &[u8], why: &str) {
        if let Some(events) = self.forget(id) {
            let _ = events.try_send(MuxEvent::Closed(why.to_string()));
        }
    }

    /// Fails every pending request (the stream is gone).
    pub fn fail_all(&mut self, why: &str) {
        for (_, pending) in self.by_id.drain() {
            let _ = pending.events.try_send(MuxEvent::Closed(why.to_string()));
        }
        self.by_token.clear();
        self.asked.clear();
    }

    /// The caller a server's request belongs to (its id), or `None` when that is ambiguous.
    ///
    /// A stdio or SSE server's request names no call. In order: a `related-task` `_meta` naming
    /// the task a pending `tasks/*` call is about picks that call; else, when every client call in
    /// flight belongs to one front session, the request is that session's (its latest call carries
    /// it); calls of several sessions make it ambiguous, and the gateway's own requests never
    /// receive one.
    fn attribute(&self, msg: &[u8], env: &Envelope) -> Option<Bytes> {
        let latest = |keep: &dyn Fn(&Origin) -> bool| {
            self.by_id
                .iter()
                .filter(|(_, p)| keep(&p.origin))
                .max_by_key(|(_, p)| p.seq)
                .map(|(id, _)| id.clone())
        };
        let task = env
            .params
            .and_then(|p| path(msg, p, &[key::META, meta::RELATED_TASK, key::TASK_ID]));
        if let Some(task) = task.map(|t| t.get(msg)) {
            if let Some(id) = latest(&|o| o.task.as_deref() == Some(task)) {
                return Some(id);
            }
        }
        let mut sessions = self.by_id.values().map(|p| p.origin.session);
        let first = sessions.find(|&s| s != 0)?;
        if sessions.any(|s| s != 0 && s != first) {
            return None;
        }
        latest(&|o| o.session == first)
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
        Kind::Notification => match caller_of_notification(&routes.borrow(), &msg, &env) {
            Some(events) => {
                let _ = events.try_send(MuxEvent::Notification(msg));
            }
            None => unsolicited(msg),
        },
        Kind::Request => {
            let target = if env.method(&msg) == Some(method::PING) {
                None
            } else {
                let mut r = routes.borrow_mut();
                let caller = r.attribute(&msg, &env);
                let server_id = env.id_raw(&msg).map(Bytes::copy_from_slice);
                let events = caller.and_then(|c| {
                    let events = r.by_id.get(&c)?.events.clone();
                    if let Some(sid) = server_id {
                        r.asked.insert(sid, c);
                    }
                    Some(events)
                });
                events
            };
            match target {
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

/// The caller a notification is about: progress by its token; the server's cancellation of a
/// request it sent by that request's id.
fn caller_of_notification(
    r: &Routes,
    msg: &[u8],
    env: &Envelope,
) -> Option<async_channel::Sender<MuxEvent>> {
    let id = match (env.progress_token, env.request_id) {
        (Some(t), _) => r.by_token.get(t.get(msg))?,
        (None, Some(req)) if env.method(msg) == Some(method::CANCELLED) => {
            r.asked.get(req.get(msg))?
        }
        _ => return None,
    };
    r.by_id.get(id).map(|p| p.events.clone())
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
            origin: Origin::default(),
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

    fn request(routes: &RefCell<Routes>, id: &'static [u8], origin: Origin) -> Receiver {
        let (events, rx) = async_channel::unbounded();
        routes.borrow_mut().accept(MuxMsg::Request {
            body: Bytes::from_static(b"{}"),
            id: Bytes::from_static(id),
            progress: None,
            events,
            origin,
        });
        rx
    }

    type Receiver = async_channel::Receiver<MuxEvent>;

    fn session(n: u64) -> Origin {
        Origin {
            session: n,
            task: None,
        }
    }

    fn feed(routes: &RefCell<Routes>, msg: &'static [u8]) -> async_channel::Receiver<MuxMsg> {
        let (reply, replies) = async_channel::unbounded();
        let unsolicited: Rc<dyn Fn(Bytes)> = Rc::new(|_| {});
        dispatch(Bytes::from_static(msg), routes, &reply, &unsolicited, "s");
        replies
    }

    const ASK: &[u8] = br#"{"jsonrpc":"2.0","id":"ask-1","method":"roots/list"}"#;

    #[test]
    fn a_server_request_goes_to_the_latest_call_when_one_session_has_calls_in_flight() {
        let routes = RefCell::new(Routes::default());
        let gateway_own = request(&routes, b"1", Origin::GATEWAY);
        let first = request(&routes, b"2", session(5));
        let latest = request(&routes, b"3", session(5));
        let refused = feed(&routes, ASK);
        assert!(refused.try_recv().is_err(), "not refused");
        assert!(matches!(latest.try_recv(), Ok(MuxEvent::Notification(_))));
        assert!(first.try_recv().is_err() && gateway_own.try_recv().is_err());
        // The server's cancellation of its request reaches the same caller.
        feed(
            &routes,
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"ask-1"}}"#,
        );
        assert!(matches!(latest.try_recv(), Ok(MuxEvent::Notification(_))));
        assert!(first.try_recv().is_err());
    }

    #[test]
    fn a_server_request_is_refused_when_calls_of_several_sessions_are_in_flight() {
        let routes = RefCell::new(Routes::default());
        let a = request(&routes, b"2", session(5));
        let b = request(&routes, b"3", session(6));
        let replies = feed(&routes, ASK);
        match replies.try_recv() {
            Ok(MuxMsg::Send(answer)) => {
                assert!(std::str::from_utf8(&answer).unwrap().contains("-32601"))
            }
            _ => panic!("the server gets an error"),
        }
        assert!(a.try_recv().is_err() && b.try_recv().is_err());
        // Only the gateway's own requests in flight: refused too.
        let routes = RefCell::new(Routes::default());
        let own = request(&routes, b"1", Origin::GATEWAY);
        assert!(feed(&routes, ASK).try_recv().is_ok());
        assert!(own.try_recv().is_err());
    }

    #[test]
    fn a_related_task_hint_picks_the_call_about_that_task() {
        let routes = RefCell::new(Routes::default());
        let result_call = request(
            &routes,
            b"2",
            Origin {
                session: 5,
                task: Some(Bytes::from_static(b"\"t-9\"")),
            },
        );
        let other = request(&routes, b"3", session(6));
        let ask = br#"{"jsonrpc":"2.0","id":"e1","method":"elicitation/create","params":{"message":"?","_meta":{"io.modelcontextprotocol/related-task":{"taskId":"t-9"}}}}"#;
        assert!(feed(&routes, ask).try_recv().is_err(), "not refused");
        assert!(matches!(
            result_call.try_recv(),
            Ok(MuxEvent::Notification(_))
        ));
        assert!(other.try_recv().is_err());
    }
}
