//! How to reach one downstream from the current thread: its HTTP pool, or the multiplexer that
//! owns its one stream (a stdio child's pipes, an HTTP+SSE session).
//!
//! [`Route`] is the closed set of downstream kinds (DESIGN: downstreams as an enum, not a trait).
//! Control-plane exchanges (handshake, list fetches) use [`Route::request`], which waits for the
//! response and drops any notifications; forwarded calls use [`crate::upstream::call::Call`].
//! [`end_session`] ends a Streamable HTTP downstream session (`DELETE`), when a reload retires it.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::exchange::{collect_response, post, Reply, ReplyLimits};
use super::pool::{Pool, WorkerPools};
use super::UpstreamError;
use crate::config::Transport;
use crate::session::downstream::{MuxChannel, MuxEvent, MuxMsg, ServerLink};

/// Time a control-plane request may take.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// Time the `DELETE` that ends a retired server's session may take (best effort).
pub const END_SESSION_TIMEOUT: Duration = Duration::from_secs(2);

/// A downstream, as reachable from this thread.
#[derive(Clone)]
pub enum Route {
    /// Streamable HTTP: this thread's keep-alive pool.
    Http(Rc<Pool>),
    /// stdio or HTTP+SSE: the channel to the task that owns the one stream.
    Mux(Arc<MuxChannel>),
}

impl Route {
    /// The route to `link`, or why there is none right now.
    pub fn to(link: &Arc<ServerLink>, pools: &WorkerPools) -> Result<Route, UpstreamError> {
        // A stateless stdio server has a child per worker: this worker's own, or a live sibling.
        if link.config.stateless {
            if let Some(child) = pools.worker().and_then(|w| link.lane(w)) {
                return Ok(Route::Mux(child));
            }
        }
        // A stdio child or an HTTP+SSE session (configured, or detected as a fallback) is
        // multiplexed by its owner task; plain Streamable HTTP goes through this thread's pool.
        if let Some(mux) = link.mux.load_full() {
            return Ok(Route::Mux(mux));
        }
        match link.config.transport {
            Transport::Http => Ok(Route::Http(pools.get(link))),
            Transport::Stdio => Err(UpstreamError::Unreachable(
                "the server process is not running".into(),
            )),
            Transport::Sse => Err(UpstreamError::Unreachable(
                "no SSE session with the server".into(),
            )),
        }
    }

    /// Sends a request and waits for its response (control plane; notifications are dropped).
    pub async fn request(
        &self,
        link: &ServerLink,
        body: Bytes,
        id: Bytes,
        limits: ReplyLimits,
    ) -> Result<Bytes, UpstreamError> {
        let exchange = async {
            match self {
                Route::Http(pool) => {
                    let session = link.session.load_full();
                    let (mut conn, _) = pool.acquire().await?;
                    let (reply, _) =
                        post(&mut conn, link, session.as_deref(), &[body], limits).await?;
                    let response = collect_response(&mut conn, reply).await?;
                    pool.release(conn);
                    Ok(response)
                }
                Route::Mux(child) => {
                    let (events, rx) = async_channel::unbounded();
                    let msg = MuxMsg::Request {
                        body,
                        id,
                        progress: None,
                        events,
                        origin: crate::session::origin::Origin::GATEWAY,
                    };
                    child.tx.send(msg).await.map_err(|_| {
                        UpstreamError::Unreachable("the server process is gone".into())
                    })?;
                    loop {
                        match rx.recv().await {
                            Ok(MuxEvent::Response(r)) => return Ok(r),
                            Ok(MuxEvent::Notification(_)) => continue,
                            Ok(MuxEvent::Closed(why)) => {
                                return Err(UpstreamError::Unreachable(why))
                            }
                            Err(_) => {
                                return Err(UpstreamError::Unreachable(
                                    "the server process is gone".into(),
                                ))
                            }
                        }
                    }
                }
            }
        };
        monoio::time::timeout(CONTROL_TIMEOUT, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout)?
    }

    /// Sends a message on its own task (the caller does not wait); any reply is discarded.
    pub fn send_detached(&self, link: Arc<ServerLink>, body: Bytes, limits: ReplyLimits) {
        let route = self.clone();
        monoio::spawn(async move {
            let sent =
                monoio::time::timeout(CONTROL_TIMEOUT, route.notify(&link, body, limits)).await;
            if let Ok(Err(e)) = sent {
                log::debug!("server '{}': detached send failed: {e}", link.name);
            }
        });
    }

    /// Sends a message that expects no response (a notification).
    pub async fn notify(
        &self,
        link: &ServerLink,
        body: Bytes,
        limits: ReplyLimits,
    ) -> Result<(), UpstreamError> {
        match self {
            Route::Http(pool) => {
                let session = link.session.load_full();
                let (mut conn, mut pooled) = pool.acquire().await?;
                let message = std::slice::from_ref(&body);
                let reply = loop {
                    match post(&mut conn, link, session.as_deref(), message, limits).await {
                        Ok(reply) => break reply,
                        // A keep-alive connection the server closed while idle: once more, fresh.
                        Err(e) => {
                            if !pool.renew(&mut conn, &mut pooled, &e).await? {
                                return Err(e);
                            }
                        }
                    }
                };
                match reply {
                    (Reply::Sse(mut sse), _) => {
                        while sse.next_message(&mut conn).await?.is_some() {}
                    }
                    (Reply::Accepted | Reply::Json(_), _) => {}
                }
                pool.release(conn);
                Ok(())
            }
            Route::Mux(child) => child
                .tx
                .send(MuxMsg::Send(body))
                .await
                .map_err(|_| UpstreamError::Unreachable("the server process is gone".into())),
        }
    }
}

/// Ends the link's Streamable HTTP session with a `DELETE` carrying its `Mcp-Session-Id` (the
/// spec's way for a client to say it is done), on a fresh connection from `pool`, bounded by
/// [`END_SESSION_TIMEOUT`]. Returns the server's status; `Ok(None)` when there is no session to
/// end (none established, no id issued, or a modern-era server, which has no sessions). Callers
/// run it off the workers (the control thread) and only log a failure: it is best effort.
pub async fn end_session(pool: &Pool, link: &ServerLink) -> Result<Option<u16>, UpstreamError> {
    let Some(session) = link.session.load_full() else {
        return Ok(None);
    };
    let (Some(id), Some(url)) = (&session.id, &link.config.url) else {
        return Ok(None);
    };
    if link.is_modern() {
        return Ok(None);
    }
    let exchange = async {
        let mut conn = pool.open().await?;
        let mut headers: Vec<(&str, &[u8])> = vec![
            ("mcp-session-id", id),
            ("mcp-protocol-version", &session.protocol_version),
        ];
        headers.extend(
            link.config
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_bytes())),
        );
        conn.send_request("DELETE", &url.path_and_query, &url.authority, &headers, &[])
            .await
            .map_err(|e| UpstreamError::Unreachable(format!("send: {e}")))?;
        let head = conn
            .read_response_head()
            .await
            .map_err(super::exchange::http_failure)?;
        Ok(Some(head.status))
    };
    monoio::time::timeout(END_SESSION_TIMEOUT, exchange)
        .await
        .map_err(|_| UpstreamError::Timeout)?
}
