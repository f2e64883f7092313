//! A forwarded call in flight: send, survive a stale connection or an expired session, time out with
//! a downstream cancellation, and yield what the downstream says until its response.
//!
//! Key types: [`CallSpec`] (what to send, with the gateway-minted id already spliced in), [`Call`]
//! (the exchange in progress, over HTTP or a stdio child), [`CallEvent`].
//!
//! Invariants: the deadline is per call and is reset by every progress notification; when it fires,
//! `notifications/cancelled` for the minted id is sent downstream off the caller's path and the HTTP
//! connection is dropped (never reused mid-reply). A call is retried at most once: on a pooled
//! connection the server had closed while idle (nothing was processed), and after a session
//! re-initialization only when the method is safe to repeat (lists and reads). A stdio child that
//! exits fails its pending calls at once.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use smallvec::SmallVec;

use super::exchange::{post, post_with, Reply, ReplyLimits, SseReply};
use super::handshake;
use super::pool::{Conn, Pool};
use super::route::Route;
use super::UpstreamError;
use crate::catalog::params::Param;
use crate::catalog::Snapshot;
use crate::session::downstream::{DownSession, MuxChannel, MuxEvent, MuxMsg, ServerLink};
use crate::wire::{self, encode, method, rewrite, Kind};

/// What to forward.
pub struct CallSpec {
    /// How to reach the owning server from this thread.
    pub route: Route,
    /// The owning server.
    pub link: Arc<ServerLink>,
    /// The message, as pieces to write (original bytes with the id and name spliced).
    pub body: SmallVec<[Bytes; 7]>,
    /// The gateway-minted id the downstream sees.
    pub minted_id: u64,
    /// The progress token the downstream sees (stdio: gateway-minted), if progress was asked for.
    pub progress: Option<Bytes>,
    /// Whether the call may be repeated after a session re-initialization (lists and reads).
    pub retry_safe: bool,
    /// Deadline for the call, reset by progress.
    pub timeout: Duration,
    /// Reply size limits.
    pub limits: ReplyLimits,
    /// The gateway's client name, for a re-initialization.
    pub client_name: Arc<str>,
    /// Who the call is for (a multiplexed server's requests are attributed by it).
    pub origin: crate::session::origin::Origin,
    /// A `tools/call` whose tool marks arguments `x-mcp-header`: what a modern HTTP server gets
    /// mirrored into `Mcp-Param-*` headers ([`mirrored_params`]).
    pub params: Option<Arc<[Param]>>,
}

/// The `x-mcp-header` arguments of the tool a `tools/call` names, when the call goes to a modern
/// server (the snapshot captured them at list fetch: no schema walk here). `None`, after one
/// relaxed load, for anything else.
pub fn mirrored_params(
    snap: &Snapshot,
    link: &ServerLink,
    body: &[u8],
    env: &wire::Envelope,
) -> Option<Arc<[Param]>> {
    if !link.is_modern() || env.method(body) != Some(method::TOOLS_CALL) {
        return None;
    }
    snap.tool(&env.name_str(body)?)?.params.clone()
}

/// Something the downstream sent for this call.
#[derive(Debug)]
pub enum CallEvent {
    /// A notification about the call (progress, log message), to relay to the client.
    Notification(Bytes),
    /// The final response (with the minted id still in it).
    Response(Bytes),
    /// A request from the server for the client (sampling, elicitation, roots), with the server's
    /// own id; answer it with [`Call::reply_downstream`].
    ServerRequest(Bytes),
}

/// Where the reply is coming from.
enum Source {
    /// Not sent yet.
    None,
    /// A whole JSON body, already read.
    Json(Bytes),
    /// An SSE reply being read from an HTTP connection.
    Sse(Conn, Box<SseReply>),
    /// Events from a stdio child's owner task.
    Child(async_channel::Receiver<MuxEvent>),
}

/// A call that has been sent and whose reply is being read.
pub struct Call {
    spec: CallSpec,
    source: Source,
    deadline: Instant,
    /// Time spent waiting on the downstream (for the gateway-vs-downstream split).
    pub downstream_time: Duration,
}

impl Call {
    /// Sends the call, handling stale connections and session expiry.
    pub async fn start(spec: CallSpec) -> Result<Call, UpstreamError> {
        let deadline = Instant::now() + spec.timeout;
        let mut call = Call {
            spec,
            source: Source::None,
            deadline,
            downstream_time: Duration::ZERO,
        };
        if let Route::Mux(child) = &call.spec.route {
            let child = child.clone();
            call.send_to_child(&child).await?;
            return Ok(call);
        }
        let mut reinitialized = false;
        loop {
            match call.send_http().await {
                Err(UpstreamError::SessionExpired) if !reinitialized => {
                    reinitialized = true;
                    call.reinitialize().await?;
                    if !call.spec.retry_safe {
                        return Err(UpstreamError::SessionExpired);
                    }
                }
                Err(UpstreamError::Timeout) => {
                    call.cancel_downstream();
                    return Err(UpstreamError::Timeout);
                }
                other => return other.map(|()| call),
            }
        }
    }

    async fn send_to_child(&mut self, child: &MuxChannel) -> Result<(), UpstreamError> {
        let (events, rx) = async_channel::unbounded();
        let body = rewrite::concat(&self.spec.body);
        let msg = MuxMsg::Request {
            body: super::for_mux(&self.spec.route, &self.spec.link, body),
            id: self.minted(),
            progress: self.spec.progress.clone(),
            events,
            origin: self.spec.origin.clone(),
        };
        child
            .tx
            .send(msg)
            .await
            .map_err(|_| UpstreamError::Unreachable("the server process is not running".into()))?;
        self.source = Source::Child(rx);
        Ok(())
    }

    fn minted(&self) -> Bytes {
        Bytes::copy_from_slice(rewrite::format_u64_id(self.spec.minted_id).as_bytes())
    }

    fn pool(&self) -> Option<Rc<Pool>> {
        match &self.spec.route {
            Route::Http(p) => Some(p.clone()),
            Route::Mux(_) => None,
        }
    }

    /// One HTTP attempt: acquire, post, classify. Retries once on a stale pooled connection.
    async fn send_http(&mut self) -> Result<(), UpstreamError> {
        let session = self.session()?;
        let pool = self
            .pool()
            .ok_or_else(|| UpstreamError::Protocol("not an HTTP server".into()))?;
        let (mut conn, mut pooled) = pool.acquire().await?;
        loop {
            let started = Instant::now();
            let sent = monoio::time::timeout(
                self.remaining(),
                post_with(
                    &mut conn,
                    &self.spec.link,
                    Some(&session),
                    &self.spec.body,
                    self.spec.limits,
                    self.spec.params.as_deref(),
                ),
            )
            .await;
            self.downstream_time += started.elapsed();
            match sent {
                Err(_) => return Err(UpstreamError::Timeout),
                // A keep-alive connection the server closed while idle: once more, fresh.
                Ok(Err(e)) => {
                    if !pool.renew(&mut conn, &mut pooled, &e).await? {
                        return Err(e);
                    }
                }
                Ok(Ok((Reply::Json(body), _))) => {
                    pool.release(conn);
                    self.source = Source::Json(body);
                    return Ok(());
                }
                Ok(Ok((Reply::Sse(sse), _))) => {
                    self.source = Source::Sse(conn, sse);
                    return Ok(());
                }
                Ok(Ok((Reply::Accepted, _))) => {
                    return Err(UpstreamError::Protocol(
                        "202 Accepted where a response was due".into(),
                    ))
                }
            }
        }
    }

    fn session(&self) -> Result<Arc<DownSession>, UpstreamError> {
        self.spec
            .link
            .session
            .load_full()
            .ok_or_else(|| UpstreamError::Unreachable("no session with the server yet".into()))
    }

    /// Re-initializes the downstream session unless another worker already did.
    async fn reinitialize(&mut self) -> Result<(), UpstreamError> {
        let used = self.session()?.epoch;
        let link = self.spec.link.clone();
        if link
            .session
            .load()
            .as_ref()
            .is_some_and(|s| s.epoch != used)
        {
            return Ok(());
        }
        log::info!("server '{}': session expired; re-initializing", link.name);
        handshake::initialize(
            &self.spec.route,
            &link,
            &self.spec.client_name,
            self.spec.limits,
        )
        .await?;
        Ok(())
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The next thing the downstream says about this call.
    pub async fn next(&mut self) -> Result<CallEvent, UpstreamError> {
        if matches!(self.source, Source::Json(_)) {
            if let Source::Json(body) = std::mem::replace(&mut self.source, Source::None) {
                return Ok(CallEvent::Response(body));
            }
        }
        loop {
            let msg = self.read_message().await?;
            let env = wire::parse(&msg)
                .map_err(|_| UpstreamError::Protocol("invalid JSON-RPC from the server".into()))?;
            match env.kind {
                Kind::Response | Kind::Error => {
                    self.finish_stream();
                    return Ok(CallEvent::Response(msg));
                }
                Kind::Notification => {
                    if env.method(&msg) == Some(method::PROGRESS) {
                        self.deadline = Instant::now() + self.spec.timeout;
                    }
                    return Ok(CallEvent::Notification(msg));
                }
                Kind::Request if env.method(&msg) == Some(method::PING) => {
                    if let Some(reply) = super::answer_server_request(&msg, &env) {
                        self.send_detached(reply);
                    }
                }
                // Sampling, elicitation, roots: for the client that caused this call to answer.
                Kind::Request => return Ok(CallEvent::ServerRequest(msg)),
            }
        }
    }

    /// Reads the next message from the SSE reply or the child, within the deadline.
    async fn read_message(&mut self) -> Result<Bytes, UpstreamError> {
        let started = Instant::now();
        let remaining = self.remaining();
        let read = match &mut self.source {
            Source::Sse(conn, sse) => {
                match monoio::time::timeout(remaining, sse.next_message(conn)).await {
                    Err(_) => None,
                    Ok(Err(e)) => return Err(e),
                    Ok(Ok(None)) => {
                        return Err(UpstreamError::Protocol(
                            "SSE stream ended before the response".into(),
                        ))
                    }
                    Ok(Ok(Some(msg))) => Some(msg),
                }
            }
            Source::Child(rx) => match monoio::time::timeout(remaining, rx.recv()).await {
                Err(_) => None,
                Ok(Ok(MuxEvent::Notification(m) | MuxEvent::Response(m))) => Some(m),
                Ok(Ok(MuxEvent::Closed(why))) => return Err(UpstreamError::Unreachable(why)),
                Ok(Err(_)) => {
                    return Err(UpstreamError::Unreachable(
                        "the server process is gone".into(),
                    ))
                }
            },
            Source::None | Source::Json(_) => {
                return Err(UpstreamError::Protocol("reply already consumed".into()))
            }
        };
        self.downstream_time += started.elapsed();
        match read {
            Some(msg) => Ok(msg),
            None => {
                // Dropping an HTTP connection mid-reply is the only safe way to abandon it.
                self.source = Source::None;
                self.cancel_downstream();
                Err(UpstreamError::Timeout)
            }
        }
    }

    /// After the response on an SSE reply, drain the rest of the stream in the background so the
    /// connection can return to the pool (servers close the stream right after the response).
    fn finish_stream(&mut self) {
        if let Source::Sse(mut conn, mut sse) = std::mem::replace(&mut self.source, Source::None) {
            let Some(pool) = self.pool() else { return };
            monoio::spawn(async move {
                let drained = monoio::time::timeout(Duration::from_secs(5), async {
                    while let Ok(Some(_)) = sse.next_message(&mut conn).await {}
                })
                .await;
                if drained.is_ok() {
                    pool.release(conn);
                }
            });
        }
    }

    /// Tells the downstream to stop working on this call (its deadline passed).
    fn cancel_downstream(&self) {
        let mut params = b"{\"requestId\":".to_vec();
        params.extend_from_slice(rewrite::format_u64_id(self.spec.minted_id).as_bytes());
        params.extend_from_slice(b",\"reason\":\"timeout\"}");
        if let Route::Mux(child) = &self.spec.route {
            let _ = child.tx.try_send(MuxMsg::Forget(self.minted()));
        }
        self.send_detached(encode::notification(method::CANCELLED, Some(&params)));
    }

    /// Restarts the call's deadline: the time a client took to answer the server's own request
    /// (a bridged `input_required` round) is not the server's.
    pub fn restart_deadline(&mut self) {
        self.deadline = Instant::now() + self.spec.timeout;
    }

    /// Sends a message (e.g. a response to the server's own request) to the server of this call.
    pub fn reply_downstream(&self, message: Bytes) {
        self.send_detached(message);
    }

    /// Sends a message downstream on its own task; the caller does not wait for it.
    fn send_detached(&self, message: Bytes) {
        match &self.spec.route {
            Route::Mux(child) => {
                let _ = child.tx.try_send(MuxMsg::Send(message));
            }
            Route::Http(pool) => {
                let (pool, link, limits) = (pool.clone(), self.spec.link.clone(), self.spec.limits);
                monoio::spawn(async move {
                    let Some(session) = link.session.load_full() else {
                        return;
                    };
                    let Ok((mut conn, mut pooled)) = pool.acquire().await else {
                        return;
                    };
                    loop {
                        let sent = monoio::time::timeout(
                            Duration::from_secs(5),
                            post(
                                &mut conn,
                                &link,
                                Some(&session),
                                std::slice::from_ref(&message),
                                limits,
                            ),
                        )
                        .await;
                        match sent {
                            Ok(Ok((Reply::Accepted, _))) => return pool.release(conn),
                            // A keep-alive connection the server closed while idle: once more,
                            // fresh (an answer to the server's request must not be lost to it).
                            Ok(Err(e)) => {
                                if !matches!(pool.renew(&mut conn, &mut pooled, &e).await, Ok(true))
                                {
                                    return;
                                }
                            }
                            _ => return,
                        }
                    }
                });
            }
        }
    }
}
