//! Legacy HTTP+SSE downstreams (protocol 2024-11-05): one long-lived GET event stream carries every
//! message from the server; messages to it are POSTed to the endpoint the stream announced.
//!
//! [`open`] connects the stream, waits for the `endpoint` event, resolves it against the stream's
//! URL (same origin only), and starts two tasks on the calling runtime (the control thread): a reader
//! that dispatches every `message` event through the shared multiplexer ([`super::mux`]) and a writer
//! that POSTs each outgoing message on a pooled keep-alive connection. Workers reach the server
//! exactly as they reach a stdio child: a [`MuxChannel`] in the link.
//!
//! Invariants: when the stream ends, every pending call fails at once and `exited` fires (the control
//! thread then marks the server down and reconnects with backoff); a refused POST fails only the
//! request it carried.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use smallvec::SmallVec;

use super::exchange::{http_failure, ReplyLimits, SseReply, APPLICATION_JSON, TEXT_EVENT_STREAM};
use super::mux::{dispatch, Routes};
use super::pool::{Conn, Pool};
use super::UpstreamError;
use crate::config::Url;
use crate::session::downstream::{MuxChannel, MuxMsg, ServerLink};

/// How long the server may take to announce its message endpoint.
pub const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(10);

/// An open HTTP+SSE session.
pub struct Opened {
    /// How workers reach it.
    pub channel: Arc<MuxChannel>,
    /// Fires once, with a reason, when the event stream ends.
    pub exited: async_channel::Receiver<String>,
}

/// Opens the event stream at the server's URL and starts the session's tasks.
pub async fn open(
    pool: Rc<Pool>,
    limits: ReplyLimits,
    unsolicited: Rc<dyn Fn(Bytes)>,
) -> Result<Opened, UpstreamError> {
    let link = pool.link().clone();
    let url = link
        .config
        .url
        .clone()
        .ok_or_else(|| UpstreamError::Protocol("server has no URL".into()))?;
    let mut conn = pool.open().await?;
    let mut headers: SmallVec<[(&str, &[u8]); 6]> = SmallVec::new();
    headers.push(("accept", TEXT_EVENT_STREAM.as_bytes()));
    for (k, v) in &link.config.headers {
        headers.push((k.as_str(), v.as_bytes()));
    }
    conn.send_request("GET", &url.path_and_query, &url.authority, &headers, &[])
        .await
        .map_err(|e| UpstreamError::Unreachable(format!("send: {e}")))?;
    let head = conn.read_response_head().await.map_err(http_failure)?;
    let is_sse = head
        .header("content-type")
        .is_some_and(|c| c.starts_with(TEXT_EVENT_STREAM.as_bytes()));
    if head.status != 200 || !is_sse {
        return Err(UpstreamError::Protocol(format!(
            "HTTP+SSE: GET {} answered HTTP {}",
            url.path_and_query, head.status
        )));
    }
    let mut sse = SseReply::new(conn.body_state(&head), limits.max_event);
    let endpoint = monoio::time::timeout(ENDPOINT_TIMEOUT, async {
        while let Some(ev) = sse.next_event(&mut conn).await? {
            if ev.event.as_deref() == Some("endpoint") {
                return Ok(String::from_utf8_lossy(&ev.data).trim().to_string());
            }
        }
        Err(UpstreamError::Protocol(
            "HTTP+SSE: stream ended before the endpoint event".into(),
        ))
    })
    .await
    .map_err(|_| UpstreamError::Timeout)??;
    let endpoint = resolve_endpoint(&url, &endpoint)?;
    log::debug!("server '{}': HTTP+SSE endpoint {endpoint}", link.name);
    let (tx, rx) = async_channel::unbounded();
    let (exit_tx, exited) = async_channel::bounded(1);
    let routes = Rc::new(RefCell::new(Routes::default()));
    let (stop_tx, stop_rx) = local_sync::oneshot::channel();
    monoio::spawn(write_loop(
        pool,
        endpoint,
        rx,
        routes.clone(),
        limits,
        stop_tx,
    ));
    let reader = Reader {
        conn,
        sse,
        routes,
        tx: tx.clone(),
        unsolicited,
        name: link.name.to_string(),
    };
    monoio::spawn(reader.run(stop_rx, exit_tx));
    Ok(Opened {
        channel: Arc::new(MuxChannel { tx, pid: 0 }),
        exited,
    })
}

/// The path (and query) to POST to: the announced endpoint, absolute or relative to the stream URL.
/// An endpoint on another origin is refused (it could send our messages and headers elsewhere).
pub fn resolve_endpoint(stream: &Url, endpoint: &str) -> Result<String, UpstreamError> {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        let abs = Url::parse(endpoint)
            .map_err(|e| UpstreamError::Protocol(format!("HTTP+SSE endpoint: {e}")))?;
        if abs.scheme != stream.scheme || abs.host != stream.host || abs.port != stream.port {
            return Err(UpstreamError::Protocol(format!(
                "HTTP+SSE endpoint {endpoint} is on another origin"
            )));
        }
        return Ok(abs.path_and_query);
    }
    if endpoint.starts_with('/') {
        return Ok(endpoint.to_string());
    }
    let path = stream.path_and_query.split('?').next().unwrap_or("/");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Ok(format!("{dir}{endpoint}"))
}

/// The task that owns the event stream.
struct Reader {
    conn: Conn,
    sse: SseReply,
    routes: Rc<RefCell<Routes>>,
    tx: async_channel::Sender<MuxMsg>,
    unsolicited: Rc<dyn Fn(Bytes)>,
    name: String,
}

impl Reader {
    /// Reads until the stream ends or the session is closed; then fails everything pending.
    async fn run(
        mut self,
        mut stop: local_sync::oneshot::Receiver<()>,
        exit_tx: async_channel::Sender<String>,
    ) {
        let reason = loop {
            let next = monoio::select! {
                m = self.sse.next_message(&mut self.conn) => m,
                // Closing the session drops the stream (and its connection) mid-read on purpose.
                _ = &mut stop => break "session closed".to_string(),
            };
            match next {
                Ok(Some(msg)) => {
                    dispatch(msg, &self.routes, &self.tx, &self.unsolicited, &self.name)
                }
                Ok(None) => break "event stream closed".to_string(),
                Err(e) => break format!("event stream failed: {e}"),
            }
        };
        self.routes.borrow_mut().fail_all(&reason);
        self.tx.close();
        let _ = exit_tx.try_send(reason);
    }
}

/// POSTs each outgoing message (concurrently, on pooled connections).
async fn write_loop(
    pool: Rc<Pool>,
    endpoint: String,
    rx: async_channel::Receiver<MuxMsg>,
    routes: Rc<RefCell<Routes>>,
    limits: ReplyLimits,
    stop: local_sync::oneshot::Sender<()>,
) {
    let endpoint: Rc<str> = Rc::from(endpoint);
    while let Ok(msg) = rx.recv().await {
        let id = match &msg {
            MuxMsg::Request { id, .. } => Some(id.clone()),
            _ => None,
        };
        let Some(body) = routes.borrow_mut().accept(msg) else {
            continue;
        };
        let (pool, endpoint, routes) = (pool.clone(), endpoint.clone(), routes.clone());
        monoio::spawn(async move {
            if let Err(e) = post_message(&pool, &endpoint, body, limits).await {
                if let Some(id) = id {
                    routes.borrow_mut().fail(&id, &e.to_string());
                }
            }
        });
    }
    // The channel was closed (server stopped or replaced): end the event stream too.
    let _ = stop.send(());
}

/// One POST to the message endpoint; any 2xx is accepted (the reply arrives on the stream).
async fn post_message(
    pool: &Pool,
    endpoint: &str,
    body: Bytes,
    limits: ReplyLimits,
) -> Result<(), UpstreamError> {
    let link: &ServerLink = pool.link();
    let url = link
        .config
        .url
        .as_ref()
        .ok_or_else(|| UpstreamError::Protocol("server has no URL".into()))?;
    let mut headers: SmallVec<[(&str, &[u8]); 6]> = SmallVec::new();
    headers.push(("content-type", APPLICATION_JSON.as_bytes()));
    for (k, v) in &link.config.headers {
        headers.push((k.as_str(), v.as_bytes()));
    }
    let (mut conn, mut pooled) = pool.acquire().await?;
    let (head, reply) = loop {
        match post_once(&mut conn, endpoint, &url.authority, &headers, &body, limits).await {
            Ok(done) => break done,
            // A kept-alive connection the server closed while idle: once more on a fresh one.
            Err(e) => {
                if !pool.renew(&mut conn, &mut pooled, &e).await? {
                    return Err(e);
                }
            }
        }
    };
    pool.release(conn);
    if (200..300).contains(&head.status) {
        Ok(())
    } else {
        let text: String = String::from_utf8_lossy(&reply).chars().take(200).collect();
        Err(UpstreamError::Protocol(format!(
            "HTTP+SSE: POST answered HTTP {} {}",
            head.status,
            text.trim()
        )))
    }
}

async fn post_once(
    conn: &mut Conn,
    endpoint: &str,
    authority: &str,
    headers: &[(&str, &[u8])],
    body: &Bytes,
    limits: ReplyLimits,
) -> Result<(crate::transport::http::ResponseHead, Bytes), UpstreamError> {
    conn.send_request(
        "POST",
        endpoint,
        authority,
        headers,
        std::slice::from_ref(body),
    )
    .await
    .map_err(|e| UpstreamError::Unreachable(format!("send: {e}")))?;
    let head = conn.read_response_head().await.map_err(http_failure)?;
    let reply = conn
        .read_body(&head, limits.max_body)
        .await
        .map_err(http_failure)?;
    Ok((head, reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_resolve_relative_absolute_and_refuse_other_origins() {
        let u = Url::parse("http://127.0.0.1:3011/sse").unwrap();
        assert_eq!(
            resolve_endpoint(&u, "/message?sessionId=a").unwrap(),
            "/message?sessionId=a"
        );
        assert_eq!(
            resolve_endpoint(&u, "messages?x=1").unwrap(),
            "/messages?x=1"
        );
        assert_eq!(
            resolve_endpoint(&u, "http://127.0.0.1:3011/m?s=1").unwrap(),
            "/m?s=1"
        );
        assert!(resolve_endpoint(&u, "http://evil.example/m").is_err());
        let nested = Url::parse("http://h:1/api/mcp/sse").unwrap();
        assert_eq!(
            resolve_endpoint(&nested, "messages").unwrap(),
            "/api/mcp/messages"
        );
    }
}
