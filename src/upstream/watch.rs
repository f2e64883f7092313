//! Server-initiated notifications outside any call: the legacy GET stream ([`watch`]) and the
//! modern `subscriptions/listen` stream ([`listen`]).
//!
//! The control thread keeps one open per server session: a GET stream for a legacy Streamable HTTP
//! server (a legacy stdio or HTTP+SSE server delivers them on its one stream), a listen stream for
//! a modern server over HTTP or stdio. `list_changed` notifications arriving there trigger a
//! catalog refresh and `resources/updated` goes to the subscribed sessions (the caller's handler
//! decides). The listen request opts in to every list change and to updates of the URIs the
//! gateway's clients subscribed to; it is reopened when that set changes. A server that does not
//! offer the stream (GET: 405; listen: an error answer) is simply not watched; its lists are
//! refreshed when it reconnects. A stream that ends is reopened by the caller with backoff.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

use super::exchange::{
    http_failure, post, status_error, Reply, ReplyLimits, SseReply, TEXT_EVENT_STREAM,
};
use super::pool::Pool;
use super::route::Route;
use super::UpstreamError;
use crate::session::downstream::{MuxChannel, MuxEvent, MuxMsg, ServerLink};
use crate::wire::{encode, method, Kind};

/// How a watch ended.
#[derive(Debug)]
pub enum WatchEnd {
    /// The server does not offer a GET stream (405 or similar): do not retry.
    NotOffered,
    /// The stream ended or broke: retry after a backoff.
    Ended(UpstreamError),
}

/// Opens the GET stream and hands every message to `on_message` until the stream ends. A request
/// other than `ping` is handed over too, and `on_message` must see that it is answered.
pub async fn watch(
    pool: &Rc<Pool>,
    limits: ReplyLimits,
    mut on_message: impl FnMut(Bytes),
) -> WatchEnd {
    let link = pool.link();
    let (Some(session), Some(url)) = (link.session.load_full(), link.config.url.as_ref()) else {
        return WatchEnd::Ended(UpstreamError::Protocol("no session".into()));
    };
    let mut conn = match pool.open().await {
        Ok(c) => c,
        Err(e) => return WatchEnd::Ended(e),
    };
    let mut headers: SmallVec<[(&str, &[u8]); 6]> = SmallVec::new();
    headers.push(("accept", TEXT_EVENT_STREAM.as_bytes()));
    if let Some(id) = &session.id {
        headers.push(("mcp-session-id", id));
    }
    headers.push(("mcp-protocol-version", &session.protocol_version));
    for (k, v) in &link.config.headers {
        headers.push((k.as_str(), v.as_bytes()));
    }
    if let Err(e) = conn
        .send_request("GET", &url.path_and_query, &url.authority, &headers, &[])
        .await
    {
        return WatchEnd::Ended(UpstreamError::Unreachable(format!("send: {e}")));
    }
    let head = match conn.read_response_head().await {
        Ok(h) => h,
        Err(e) => return WatchEnd::Ended(http_failure(e)),
    };
    if head.status == 405 || head.status == 406 {
        return WatchEnd::NotOffered;
    }
    if head.status != 200 {
        let body = conn.read_body(&head, 64 * 1024).await.unwrap_or_default();
        return WatchEnd::Ended(status_error(head.status, &body));
    }
    let mut sse = SseReply::new(conn.body_state(&head), limits.max_event);
    loop {
        match sse.next_message(&mut conn).await {
            Ok(Some(msg)) => match crate::wire::parse(&msg) {
                // A ping on the standalone stream is answered here. Other requests name no call:
                // `on_message` gets them and must answer them (relay to the one client they can
                // belong to, or refuse), so the server never waits for an answer.
                Ok(env)
                    if env.kind == crate::wire::Kind::Request
                        && env.method(&msg) == Some(crate::wire::method::PING) =>
                {
                    if let Some(answer) = super::answer_server_request(&msg, &env) {
                        Route::Http(pool.clone()).send_detached(link.clone(), answer, limits);
                    }
                }
                _ => on_message(msg),
            },
            Ok(None) => return WatchEnd::Ended(UpstreamError::Unreachable("stream closed".into())),
            Err(e) => return WatchEnd::Ended(e),
        }
    }
}

/// Sequence for the ids of the gateway's listen requests (strings: never confused with minted ids).
static NEXT_LISTEN: AtomicU64 = AtomicU64::new(0);

/// A `subscriptions/listen` request opting in to every list change and to `resources/updated` for
/// `uris` (the URIs the gateway's clients subscribed to on this server). `_meta` is added on the
/// way out, as for every modern request.
pub fn listen_request(uris: &[String]) -> (Bytes, Bytes) {
    let id = format!(
        "\"ringgate-listen-{}\"",
        NEXT_LISTEN.fetch_add(1, Ordering::Relaxed)
    );
    let mut params = br#"{"notifications":{"toolsListChanged":true,"promptsListChanged":true,"resourcesListChanged":true"#.to_vec();
    if !uris.is_empty() {
        params.extend_from_slice(b",\"resourceSubscriptions\":[");
        for (i, uri) in uris.iter().enumerate() {
            if i > 0 {
                params.push(b',');
            }
            encode::write_json_string(&mut params, uri);
        }
        params.push(b']');
    }
    params.extend_from_slice(b"}}");
    let body = encode::request(id.as_bytes(), method::SUBSCRIPTIONS_LISTEN, Some(&params));
    (body, Bytes::from(id))
}

/// How a listen stream's final message ends the watch: a server that does not know the method
/// (or refuses the request) does not offer the stream; anything else is retried.
fn listen_end(msg: &[u8]) -> WatchEnd {
    let refused = crate::wire::parse(msg).is_ok_and(|env| env.kind == Kind::Error);
    if refused {
        WatchEnd::NotOffered
    } else {
        WatchEnd::Ended(UpstreamError::Protocol("the listen stream ended".into()))
    }
}

/// Keeps one `subscriptions/listen` stream open to a modern server and hands every notification on
/// it (the acknowledgement, list changes, resource updates) to `on_message`, until it ends.
pub async fn listen(
    route: &Route,
    link: &Arc<ServerLink>,
    limits: ReplyLimits,
    uris: &[String],
    on_message: impl FnMut(Bytes),
) -> WatchEnd {
    match route {
        Route::Http(pool) => listen_http(pool, limits, uris, on_message).await,
        Route::Mux(mux) => listen_mux(mux, link, route, uris).await,
    }
}

/// The listen stream over Streamable HTTP: a POST answered with an SSE stream, on a connection of
/// its own (closing it ends the subscription).
async fn listen_http(
    pool: &Rc<Pool>,
    limits: ReplyLimits,
    uris: &[String],
    mut on_message: impl FnMut(Bytes),
) -> WatchEnd {
    let link = pool.link();
    let Some(session) = link.session.load_full() else {
        return WatchEnd::Ended(UpstreamError::Protocol("no session".into()));
    };
    let mut conn = match pool.open().await {
        Ok(c) => c,
        Err(e) => return WatchEnd::Ended(e),
    };
    let (body, _) = listen_request(uris);
    let reply = match post(&mut conn, link, Some(&session), &[body], limits).await {
        Ok((reply, _)) => reply,
        Err(e @ UpstreamError::Protocol(_)) => {
            log::debug!("server '{}': listen refused: {e}", link.name);
            return WatchEnd::NotOffered;
        }
        Err(e) => return WatchEnd::Ended(e),
    };
    let mut sse = match reply {
        Reply::Sse(sse) => sse,
        Reply::Json(msg) => return listen_end(&msg),
        Reply::Accepted => return WatchEnd::NotOffered,
    };
    loop {
        match sse.next_message(&mut conn).await {
            Ok(Some(msg)) => match crate::wire::parse(&msg).map(|e| e.kind) {
                Ok(Kind::Notification) => on_message(msg),
                Ok(Kind::Response | Kind::Error) => return listen_end(&msg),
                // The modern era has no server-to-client requests.
                _ => log::debug!("server '{}': unexpected message on listen", link.name),
            },
            Ok(None) => return WatchEnd::Ended(UpstreamError::Unreachable("stream closed".into())),
            Err(e) => return WatchEnd::Ended(e),
        }
    }
}

/// The listen stream over a multiplexed stream (stdio): one pending request whose notifications
/// reach the owner's unsolicited handler (so `on_message` is not needed here). Dropping the future
/// cancels the subscription on the server.
async fn listen_mux(
    mux: &Arc<MuxChannel>,
    link: &ServerLink,
    route: &Route,
    uris: &[String],
) -> WatchEnd {
    let (body, id) = listen_request(uris);
    let (events, rx) = async_channel::unbounded();
    let msg = MuxMsg::Request {
        body: super::for_mux(route, link, body),
        id: id.clone(),
        progress: None,
        events,
        origin: crate::session::origin::Origin::GATEWAY,
    };
    if mux.tx.send(msg).await.is_err() {
        return WatchEnd::Ended(UpstreamError::Unreachable(
            "the server process is gone".into(),
        ));
    }
    let _cancel = CancelOnDrop { mux, id };
    loop {
        match rx.recv().await {
            Ok(MuxEvent::Notification(_)) => {}
            Ok(MuxEvent::Response(msg)) => return listen_end(&msg),
            Ok(MuxEvent::Closed(why)) => return WatchEnd::Ended(UpstreamError::Unreachable(why)),
            Err(_) => {
                return WatchEnd::Ended(UpstreamError::Unreachable(
                    "the server process is gone".into(),
                ))
            }
        }
    }
}

/// Ends a stdio listen subscription when its watcher stops waiting for it.
struct CancelOnDrop<'a> {
    mux: &'a MuxChannel,
    id: Bytes,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let mut params = b"{\"requestId\":".to_vec();
        params.extend_from_slice(&self.id);
        params.push(b'}');
        let cancel = encode::notification(method::CANCELLED, Some(&params));
        let _ = self.mux.tx.try_send(MuxMsg::Forget(self.id.clone()));
        let _ = self.mux.tx.try_send(MuxMsg::Send(cancel));
    }
}
