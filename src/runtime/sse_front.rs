//! The legacy HTTP+SSE front (protocol 2024-11-05), for clients that only speak it.
//!
//! `GET /sse` opens the session's event stream: the gateway mints a sealed session id, announces
//! `POST /messages?session_id=<id>` in an `endpoint` event, and then writes every reply and
//! notification for the session as `message` events. `POST /messages` answers `202 Accepted` at once
//! and runs the message through the same request path as Streamable HTTP; the results are delivered
//! to the session's stream, on whichever worker holds it (`Gateway::to_session`). Closing the stream
//! ends the session.
//!
//! The id is announced before the client's `initialize`, so it is minted as a [`caps::LATE`]
//! session: when `initialize` is answered, the version and capabilities the client declared are
//! recorded with the codec (before the answer reaches the stream), and every later open of the id,
//! on any worker, carries them. Server requests (sampling, elicitation, roots) and progress of a
//! call arrive on its relay and go to the stream like its reply; the client's answers, POSTed
//! here, take the same path as over Streamable HTTP (`proxy::client_msgs`).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use monoio::io::{AsyncReadRent, AsyncWriteRent};

use super::front::{media_accepted, pump_session_stream, reject, start_sse, write_json};
use crate::error::{ErrorKind, GatewayError};
use crate::proxy::{self, Gateway, Inbound, Outcome, Worker};
use crate::session::{caps, versions, FrontSession};
use crate::transport::http::{Request, ServerConn};
use crate::wire::{self, rewrite, sse};

/// Where HTTP+SSE clients open their event stream.
pub const SSE_PATH: &str = "/sse";
/// Where HTTP+SSE clients post their messages.
pub const MESSAGES_PATH: &str = "/messages";
/// The query parameter carrying the session id.
const SESSION_PARAM: &str = "session_id";
/// The protocol revision this transport belongs to.
const SSE_ERA_VERSION: &[u8] = b"2024-11-05";

/// `GET /sse`: a new session and its event stream, until the client goes away.
pub async fn open_stream<S: AsyncReadRent + AsyncWriteRent>(
    gw: &Arc<Gateway>,
    w: &Rc<Worker>,
    conn: &mut ServerConn<S>,
    req: &Request,
) -> bool {
    if !req
        .headers
        .get("accept")
        .is_none_or(|a| media_accepted(a, b"text/event-stream"))
    {
        let e = GatewayError::new(
            ErrorKind::NotAcceptable,
            "GET /sse requires Accept: text/event-stream",
        );
        return reject(w, conn, &e).await;
    }
    let version = versions::index_of(SSE_ERA_VERSION).unwrap_or(0);
    // Minted before the client's `initialize`: what it declares there is recorded then.
    let Ok((session, id)) = gw.sessions.create(version, caps::LATE) else {
        let e = GatewayError::new(ErrorKind::Internal, "could not mint a session id");
        return reject(w, conn, &e).await;
    };
    if !start_sse(conn).await {
        return false;
    }
    let mut opening = Vec::with_capacity(256);
    let endpoint = format!("{MESSAGES_PATH}?{SESSION_PARAM}={id}");
    sse::encode_event(&mut opening, Some("endpoint"), None, endpoint.as_bytes());
    let alive = pump_session_stream(w, conn, session.nonce, opening).await;
    // In this transport the stream is the session: when it goes, so does the session.
    crate::proxy::end_session(gw, w, &session);
    alive && conn.finish_stream().await.is_ok() && !w.draining.get()
}

/// `POST /messages?session_id=...`: accepted at once; results go to the session's stream.
pub async fn post_message<S: AsyncReadRent + AsyncWriteRent>(
    gw: &Arc<Gateway>,
    w: &Rc<Worker>,
    conn: &mut ServerConn<S>,
    req: &Request,
    received: Instant,
) -> bool {
    let sid = req.query.as_deref().and_then(session_param);
    let Some((sid, session)) = sid.and_then(|s| w.open_session(gw, s.as_bytes()).map(|o| (s, o)))
    else {
        let e = GatewayError::new(ErrorKind::SessionNotFound, "unknown or ended session");
        return reject(w, conn, &e).await;
    };
    if let Err(e) = wire::parse_message(&req.body) {
        // Unparseable input has no id to answer on the stream: refuse the POST itself.
        let kind = if e.code() == wire::code::PARSE_ERROR {
            ErrorKind::Parse
        } else {
            ErrorKind::InvalidRequest
        };
        let err = GatewayError::new(kind, e.reason());
        return write_json(conn, 400, &[err.to_jsonrpc(None)], None).await;
    }
    let (gw, w, body) = (gw.clone(), w.clone(), req.body.clone());
    w.inflight.set(w.inflight.get() + 1);
    monoio::spawn(async move {
        let inbound = Inbound {
            body,
            session: Some(sid.as_bytes()),
            version: None,
            authorization: None,
            accepts_sse: true,
            received,
        };
        match proxy::handle_post(&gw, &w, inbound).await {
            Outcome::Json {
                body, session: new, ..
            } => {
                if let Some(new) = new {
                    declare(&gw, &session, &new);
                }
                gw.to_session(&w, session.nonce, rewrite::concat(&body));
            }
            Outcome::Accepted => {}
            Outcome::Stream(mut relay) => {
                while let Some(msg) = relay.next(&gw, &w).await {
                    gw.to_session(&w, session.nonce, msg);
                }
            }
        }
        w.inflight.set(w.inflight.get() - 1);
    });
    conn.write_response(202, &[], &[]).await.is_ok()
}

/// After `initialize` (answered with a fresh sealed session, `minted`): the stream's session takes
/// the version and capabilities the client declared, before the client can read the answer, so
/// server requests and era decisions for its later messages see them on any worker.
fn declare(gw: &Gateway, session: &FrontSession, minted: &str) {
    match gw.sessions.open(minted.as_bytes()) {
        Some(declared) => gw.sessions.declare(session, &declared),
        None => log::warn!("sse front: the session initialize minted does not open"),
    }
}

/// The session id from a query string (`session_id`, or `sessionId` as the TypeScript SDK spells it).
fn session_param(query: &[u8]) -> Option<String> {
    let query = std::str::from_utf8(query).ok()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == SESSION_PARAM || k == "sessionId").then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_parameter_is_found_in_either_spelling() {
        assert_eq!(
            session_param(b"session_id=k1.abc&x=1").as_deref(),
            Some("k1.abc")
        );
        assert_eq!(
            session_param(b"a=b&sessionId=k1.z").as_deref(),
            Some("k1.z")
        );
        assert_eq!(session_param(b"nothing=here"), None);
    }
}
