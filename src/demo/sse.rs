//! The demo server over legacy HTTP+SSE (protocol 2024-11-05), on the same listener as its
//! Streamable HTTP endpoint: `GET /sse` beside `POST /mcp`.
//!
//! `GET /sse` opens a session's event stream; its first event is `endpoint`, carrying the relative
//! URI `/messages?sessionId=<id>` the client POSTs its messages to. `POST /messages` answers
//! `202 Accepted` at once (404 for an unknown session, 400 for a body that is not JSON-RPC) and
//! handles the message as every other demo transport does (`tools`): the response goes out on the
//! session's stream as a `message` event, after any progress of the call. The stream also carries
//! the demo's broadcasts (`list_changed`, `resources/updated`) and the `sample` tool's
//! `sampling/createMessage`, whose answer arrives by a later POST. Closing the stream ends the
//! session (noticed on the next write: a reply, a broadcast or the periodic keep-alive comment).
//!
//! State is per demo thread (`Rc`/`RefCell`): the open sessions and the sender of each one's stream.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use local_sync::mpsc::unbounded::{channel, Tx};
use monoio::io::{AsyncReadRent, AsyncWriteRent};

use super::{new_session_id, sampling, tools, Demo};
use crate::transport::http::{Request, ServerConn};
use crate::wire::{self, encode, method, sse, Kind};

/// Where HTTP+SSE clients open their event stream.
pub const SSE_PATH: &str = "/sse";
/// Where HTTP+SSE clients post their messages.
pub const MESSAGES_PATH: &str = "/messages";
/// The query parameter naming the session (as the TypeScript and Python SDKs spell it).
const SESSION_PARAM: &str = "sessionId";
/// How often an idle stream gets a comment, so a client that went away is noticed.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The open HTTP+SSE sessions of one demo server: id → its stream's sender.
#[derive(Default)]
pub struct Sessions {
    open: RefCell<HashMap<String, Tx<Bytes>>>,
}

impl Sessions {
    fn sender(&self, id: &str) -> Option<Tx<Bytes>> {
        self.open.borrow().get(id).cloned()
    }
}

/// `GET /sse`: a new session and its event stream, until the client goes away or the server stops.
/// Ends the connection (`false`) once a stream was started: the stream was the response.
pub async fn open_stream<S: AsyncReadRent + AsyncWriteRent>(
    demo: &Demo,
    conn: &mut ServerConn<S>,
) -> bool {
    if demo.opts.modern {
        // HTTP+SSE is a legacy-era transport; a modern demo has no sessions to give.
        return conn.write_response(404, &[], &[]).await.is_ok();
    }
    let headers = [
        ("content-type", &b"text/event-stream"[..]),
        ("cache-control", &b"no-cache"[..]),
    ];
    if conn.start_stream(200, &headers).await.is_err() {
        return false;
    }
    let id = new_session_id();
    let (tx, mut rx) = channel();
    demo.sse.open.borrow_mut().insert(id.clone(), tx);
    // Broadcasts (list_changed, resources/updated, standalone asks) reach this stream too.
    let mut reg = demo.streams.add(0);
    let mut out = Vec::with_capacity(256);
    let endpoint = format!("{MESSAGES_PATH}?{SESSION_PARAM}={id}");
    sse::encode_event(&mut out, Some("endpoint"), None, endpoint.as_bytes());
    let mut alive = write(conn, &out).await;
    while alive {
        out.clear();
        let next = monoio::select! {
            m = rx.recv() => m,
            m = reg.rx.recv() => m,
            _ = monoio::time::sleep(KEEPALIVE) => {
                sse::encode_comment(&mut out, "keepalive");
                alive = write(conn, &out).await;
                continue;
            }
        };
        let Some(msg) = next else { break };
        sse::encode_event(&mut out, Some("message"), None, &msg);
        alive = write(conn, &out).await;
    }
    // In this transport the stream is the session: when it goes, so does the session.
    demo.sse.open.borrow_mut().remove(&id);
    demo.streams.remove(reg.key);
    false
}

async fn write<S: AsyncReadRent + AsyncWriteRent>(conn: &mut ServerConn<S>, event: &[u8]) -> bool {
    conn.write_chunk(&[Bytes::copy_from_slice(event)])
        .await
        .is_ok()
}

/// `POST /messages?sessionId=...`: 202 at once; whatever the message produces goes to the stream.
pub async fn post_message<S: AsyncReadRent + AsyncWriteRent>(
    demo: &Rc<Demo>,
    conn: &mut ServerConn<S>,
    req: &Request,
) -> bool {
    let sid = req.query.as_deref().and_then(session_param);
    let Some(tx) = sid.and_then(|s| demo.sse.sender(&s)) else {
        let reply =
            encode::error_response(None, wire::code::INVALID_REQUEST, "Session not found", None);
        return super::json(conn, 404, reply, None).await;
    };
    if let Err(e) = wire::parse(&req.body) {
        // Unparseable input has no id to answer on the stream: refuse the POST itself.
        let reply = encode::error_response(None, e.code(), e.reason(), None);
        return super::json(conn, 400, reply, None).await;
    }
    let (demo, body) = (demo.clone(), req.body.clone());
    monoio::spawn(async move { handle(&demo, body, tx).await });
    conn.write_response(202, &[], &[Bytes::from_static(b"Accepted")])
        .await
        .is_ok()
}

/// Handles one message of a session; everything it produces goes to `tx` (the session's stream).
async fn handle(demo: &Demo, body: Bytes, tx: Tx<Bytes>) {
    let Ok(env) = wire::parse(&body) else {
        return;
    };
    let send = |m: &[u8]| {
        // A stream that has ended drops what is still coming for it.
        let _ = tx.send(Bytes::copy_from_slice(m));
    };
    if env.kind != Kind::Request {
        if env.method(&body) == Some(method::CANCELLED) {
            demo.cancelled.set(demo.cancelled.get() + 1);
        }
        sampling::take_answer(&demo.asks, &body, &env);
        return;
    }
    if env.method(&body) == Some(method::INITIALIZE) {
        return send(&tools::initialize_result(demo, &body, &env));
    }
    if sampling::is_sample_call(&body, &env) {
        return sampling::call_lines(&demo.asks, &body, &env, send).await;
    }
    if tools::is_progress_sleep(&body, &env) {
        return tools::call_with_progress(&body, &env, |m| tx.send(m).is_ok()).await;
    }
    send(&tools::handle(demo, &body, &env).await);
}

/// The session id from a query string (`sessionId`, or `session_id` as ringgate's own front spells it).
fn session_param(query: &[u8]) -> Option<String> {
    let query = std::str::from_utf8(query).ok()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == SESSION_PARAM || k == "session_id").then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_parameter_is_found_in_either_spelling() {
        assert_eq!(session_param(b"sessionId=ab12").as_deref(), Some("ab12"));
        assert_eq!(session_param(b"x=1&session_id=cd").as_deref(), Some("cd"));
        assert_eq!(session_param(b"sessionid=no"), None);
        assert_eq!(session_param(b"\xff=1"), None);
    }
}
