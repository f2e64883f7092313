//! A forwarded call in flight: send, survive a stale connection or an expired session, time out with
//! a downstream cancellation, and yield what the downstream says until its response.
//!
//! Key types: [`CallSpec`] (what to send, with the gateway-minted id already spliced in), [`Call`]
//! (the exchange in progress), [`CallEvent`].
//!
//! Invariants: the deadline is per call and is reset by every progress notification; when it fires,
//! `notifications/cancelled` for the minted id is sent downstream off the caller's path and the
//! connection is dropped (never reused mid-reply). A call is retried at most once: on a pooled
//! connection the server had closed while idle (nothing was processed), and after a session
//! re-initialization only when the method is safe to repeat (lists and reads).

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use smallvec::SmallVec;

use super::exchange::{post, Reply, ReplyLimits, SseReply};
use super::handshake;
use super::pool::{Conn, Pool};
use super::UpstreamError;
use crate::session::downstream::DownSession;
use crate::wire::{self, encode, method, Kind};

/// What to forward.
pub struct CallSpec {
    /// The pool (and through it the link) of the owning server.
    pub pool: Rc<Pool>,
    /// The message, as pieces to write (original bytes with the id and name spliced).
    pub body: SmallVec<[Bytes; 7]>,
    /// The gateway-minted id the downstream sees.
    pub minted_id: u64,
    /// Whether the call may be repeated after a session re-initialization (lists and reads).
    pub retry_safe: bool,
    /// Deadline for the call, reset by progress.
    pub timeout: Duration,
    /// Reply size limits.
    pub limits: ReplyLimits,
    /// `serverInfo.name`-style client name for a re-initialization.
    pub client_name: Arc<str>,
}

/// Something the downstream sent for this call.
#[derive(Debug)]
pub enum CallEvent {
    /// A notification about the call (progress, log message), to relay to the client.
    Notification(Bytes),
    /// The final response (with the minted id still in it).
    Response(Bytes),
}

/// A call that has been sent and whose reply is being read.
pub struct Call {
    spec: CallSpec,
    conn: Option<Conn>,
    sse: Option<SseReply>,
    pending: Option<Bytes>,
    deadline: Instant,
    /// Time spent waiting on the downstream (for the gateway-vs-downstream split).
    pub downstream_time: Duration,
}

impl Call {
    /// Sends the call and reads the reply head, handling stale connections and session expiry.
    pub async fn start(spec: CallSpec) -> Result<Call, UpstreamError> {
        let deadline = Instant::now() + spec.timeout;
        let mut call = Call {
            spec,
            conn: None,
            sse: None,
            pending: None,
            deadline,
            downstream_time: Duration::ZERO,
        };
        let mut reinitialized = false;
        loop {
            match call.send_once().await {
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

    /// One attempt: acquire, post, classify. Retries once on a stale pooled connection.
    async fn send_once(&mut self) -> Result<(), UpstreamError> {
        let session = self.session()?;
        let pool = self.spec.pool.clone();
        let (mut conn, mut pooled) = pool.acquire().await?;
        loop {
            let started = Instant::now();
            let sent = monoio::time::timeout(
                self.remaining(),
                post(
                    &mut conn,
                    pool.link(),
                    Some(&session),
                    &self.spec.body,
                    self.spec.limits,
                ),
            )
            .await;
            self.downstream_time += started.elapsed();
            match sent {
                Err(_) => return Err(UpstreamError::Timeout),
                Ok(Err(UpstreamError::Unreachable(_))) if pooled => {
                    // The server closed this keep-alive connection while it was idle: try a fresh one.
                    conn = pool.open().await?;
                    pooled = false;
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok((reply, _))) => {
                    match reply {
                        Reply::Json(body) => self.pending = Some(body),
                        Reply::Accepted => {
                            return Err(UpstreamError::Protocol(
                                "202 Accepted where a response was due".into(),
                            ))
                        }
                        Reply::Sse(sse) => self.sse = Some(sse),
                    }
                    self.conn = Some(conn);
                    return Ok(());
                }
            }
        }
    }

    fn session(&self) -> Result<Arc<DownSession>, UpstreamError> {
        self.spec
            .pool
            .link()
            .session
            .load_full()
            .ok_or_else(|| UpstreamError::Unreachable("no session with the server yet".into()))
    }

    /// Re-initializes the downstream session unless another worker already did.
    async fn reinitialize(&mut self) -> Result<(), UpstreamError> {
        let used = self.session()?.epoch;
        let link = self.spec.pool.link().clone();
        if link
            .session
            .load()
            .as_ref()
            .is_some_and(|s| s.epoch != used)
        {
            return Ok(());
        }
        log::info!("server '{}': session expired; re-initializing", link.name);
        handshake::initialize(&self.spec.pool, &self.spec.client_name, self.spec.limits).await?;
        Ok(())
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The next thing the downstream says about this call.
    pub async fn next(&mut self) -> Result<CallEvent, UpstreamError> {
        if let Some(body) = self.pending.take() {
            if let Some(conn) = self.conn.take() {
                self.spec.pool.release(conn);
            }
            return Ok(CallEvent::Response(body));
        }
        loop {
            let msg = self.read_sse_message().await?;
            let env = wire::parse(&msg).map_err(|_| {
                UpstreamError::Protocol("invalid JSON-RPC on the SSE stream".into())
            })?;
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
                Kind::Request => self.refuse_server_request(&msg, &env),
            }
        }
    }

    async fn read_sse_message(&mut self) -> Result<Bytes, UpstreamError> {
        let (Some(conn), Some(sse)) = (self.conn.as_mut(), self.sse.as_mut()) else {
            return Err(UpstreamError::Protocol("reply already consumed".into()));
        };
        let started = Instant::now();
        let read = monoio::time::timeout(
            self.deadline.saturating_duration_since(started),
            sse.next_message(conn),
        )
        .await;
        self.downstream_time += started.elapsed();
        match read {
            Err(_) => {
                self.conn = None;
                self.cancel_downstream();
                Err(UpstreamError::Timeout)
            }
            Ok(Err(e)) => Err(e),
            Ok(Ok(None)) => Err(UpstreamError::Protocol(
                "SSE stream ended before the response".into(),
            )),
            Ok(Ok(Some(msg))) => Ok(msg),
        }
    }

    /// After the response on an SSE reply, drain the rest of the stream in the background so the
    /// connection can return to the pool (servers close the stream right after the response).
    fn finish_stream(&mut self) {
        if let (Some(mut conn), Some(mut sse)) = (self.conn.take(), self.sse.take()) {
            let pool = self.spec.pool.clone();
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

    /// The gateway declared no client capabilities downstream, so server-to-client requests other
    /// than `ping` are refused with -32601 (ping gets its empty result), off the caller's path.
    fn refuse_server_request(&self, msg: &Bytes, env: &wire::Envelope) {
        let Some((id, _)) = env.id else { return };
        let id = id.get(msg);
        let reply = if env.method(msg) == Some(method::PING) {
            encode::result_response(id, b"{}")
        } else {
            encode::error_response(
                Some(id),
                wire::code::METHOD_NOT_FOUND,
                "the gateway does not relay this request to clients",
                None,
            )
        };
        self.send_detached(reply);
    }

    /// Tells the downstream to stop working on this call (its deadline passed).
    fn cancel_downstream(&self) {
        let mut params = b"{\"requestId\":".to_vec();
        params.extend_from_slice(wire::rewrite::format_u64_id(self.spec.minted_id).as_bytes());
        params.extend_from_slice(b",\"reason\":\"timeout\"}");
        self.send_detached(encode::notification(method::CANCELLED, Some(&params)));
    }

    /// Posts a message downstream on its own task; the caller does not wait for it.
    fn send_detached(&self, message: Bytes) {
        let pool = self.spec.pool.clone();
        let limits = self.spec.limits;
        monoio::spawn(async move {
            let Some(session) = pool.link().session.load_full() else {
                return;
            };
            let Ok((mut conn, _)) = pool.acquire().await else {
                return;
            };
            let sent = monoio::time::timeout(
                Duration::from_secs(5),
                post(&mut conn, pool.link(), Some(&session), &[message], limits),
            )
            .await;
            if let Ok(Ok((Reply::Accepted, _))) = sent {
                pool.release(conn);
            }
        });
    }
}
