//! How to reach one downstream from the current thread: its HTTP pool, or the multiplexer that
//! owns its one stream (a stdio child's pipes, an HTTP+SSE session).
//!
//! [`Route`] is the closed set of downstream kinds (DESIGN: downstreams as an enum, not a trait).
//! Control-plane exchanges (handshake, list fetches) use [`Route::request`], which waits for the
//! response and drops any notifications; forwarded calls use [`crate::upstream::call::Call`].

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
                let (mut conn, pooled) = pool.acquire().await?;
                let reply = match post(
                    &mut conn,
                    link,
                    session.as_deref(),
                    std::slice::from_ref(&body),
                    limits,
                )
                .await
                {
                    // A keep-alive connection the server closed while idle: once more, fresh.
                    Err(UpstreamError::Unreachable(_)) if pooled => {
                        conn = pool.open().await?;
                        post(&mut conn, link, session.as_deref(), &[body], limits).await?
                    }
                    other => other?,
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
