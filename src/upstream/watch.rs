//! The downstream's GET stream: server-initiated notifications outside any call.
//!
//! The control thread keeps one open per server session. `list_changed` notifications arriving here
//! trigger a catalog refresh; everything else is passed to the caller's handler. A server that does
//! not offer the stream (405) is simply not watched; its lists are refreshed when it reconnects.

use bytes::Bytes;
use smallvec::SmallVec;

use super::exchange::{http_failure, status_error, ReplyLimits, SseReply, TEXT_EVENT_STREAM};
use std::rc::Rc;

use super::pool::Pool;
use super::route::Route;
use super::UpstreamError;

/// How a watch ended.
#[derive(Debug)]
pub enum WatchEnd {
    /// The server does not offer a GET stream (405 or similar): do not retry.
    NotOffered,
    /// The stream ended or broke: retry after a backoff.
    Ended(UpstreamError),
}

/// Opens the GET stream and hands every message to `on_message` until the stream ends.
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
                // A request on the standalone stream belongs to no call, so to no client: answer it
                // here (ping) or refuse it, so the server never waits for an answer.
                Ok(env) if env.kind == crate::wire::Kind::Request => {
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
