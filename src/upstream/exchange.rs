//! One JSON-RPC exchange with a Streamable HTTP downstream: POST, then a JSON or SSE reply.
//!
//! Key functions: [`post`] sends a message and reads the reply head, classifying it as a whole JSON
//! body, `202 Accepted`, or an SSE stream that [`SseReply`] then reads event by event, never waiting
//! for the whole stream. Status codes that mean "your session is gone" (404, and server-everything's
//! 400 "No valid session ID" / "Server not initialized") become [`UpstreamError::SessionExpired`].
//!
//! Invariants: the reply body is capped (`max_response_bytes`, `max_sse_event_bytes`); a connection
//! whose reply was not fully read is never reused (the HTTP layer tracks that).

use bytes::Bytes;
use smallvec::SmallVec;

use super::pool::Conn;
use super::UpstreamError;
use crate::catalog::params::Param;
use crate::session::downstream::{DownSession, ServerLink};
use crate::session::versions;
use crate::transport::http::client::{BodyState, ResponseHead};
use crate::transport::http::HttpError;
use crate::wire::sse::{SseDecoder, SseEvent};

/// Media type of JSON bodies.
pub const APPLICATION_JSON: &str = "application/json";
/// Media type of SSE bodies.
pub const TEXT_EVENT_STREAM: &str = "text/event-stream";
/// What the gateway accepts from downstreams (both, as the transport spec requires).
const ACCEPT_BOTH: &[u8] = b"application/json, text/event-stream";

/// How a downstream answered a POST.
pub enum Reply {
    /// A whole JSON body (one JSON-RPC message).
    Json(Bytes),
    /// `202 Accepted`: the message was a notification or response; nothing follows.
    Accepted,
    /// An SSE stream: read it with [`SseReply::next_message`].
    Sse(Box<SseReply>),
}

/// Limits that apply to reading replies.
#[derive(Debug, Clone, Copy)]
pub struct ReplyLimits {
    /// Largest JSON reply body.
    pub max_body: usize,
    /// Largest single SSE event.
    pub max_event: usize,
}

/// Sends `body` as a POST to the server's MCP endpoint on `conn` and reads the reply head.
/// Returns the reply and the `Mcp-Session-Id` the server sent, if any (the handshake needs it).
pub async fn post(
    conn: &mut Conn,
    link: &ServerLink,
    session: Option<&DownSession>,
    body: &[Bytes],
    limits: ReplyLimits,
) -> Result<(Reply, Option<Bytes>), UpstreamError> {
    post_with(conn, link, session, body, limits, None).await
}

/// [`post`], for a `tools/call` whose tool marks arguments `x-mcp-header`: a modern server also
/// gets them mirrored into `Mcp-Param-*` headers.
pub async fn post_with(
    conn: &mut Conn,
    link: &ServerLink,
    session: Option<&DownSession>,
    body: &[Bytes],
    limits: ReplyLimits,
    params: Option<&[Param]>,
) -> Result<(Reply, Option<Bytes>), UpstreamError> {
    let url = link
        .config
        .url
        .as_ref()
        .ok_or_else(|| UpstreamError::Protocol("server has no URL".into()))?;
    // A modern (2026-07-28) server: `_meta` in the body and the routing headers (session::modern).
    let modern = session.is_some_and(|s| versions::is_modern(&s.protocol_version));
    let outbound = modern.then(|| crate::session::modern::outbound(body));
    let mirrored = match (&outbound, params) {
        (Some(out), Some(params)) => mirror(&out.body, params),
        _ => Vec::new(),
    };
    let mut headers: SmallVec<[(&str, &[u8]); 8]> = SmallVec::new();
    headers.push(("content-type", APPLICATION_JSON.as_bytes()));
    headers.push(("accept", ACCEPT_BOTH));
    if let Some(s) = session {
        if let Some(id) = &s.id {
            headers.push(("mcp-session-id", id));
        }
        headers.push(("mcp-protocol-version", &s.protocol_version));
    }
    let body = match &outbound {
        Some(out) => {
            if let Some(m) = &out.method {
                headers.push(("mcp-method", m));
            }
            if let Some(n) = &out.name {
                headers.push(("mcp-name", n));
            }
            &out.body[..]
        }
        None => body,
    };
    for (k, v) in &mirrored {
        headers.push((k.as_str(), v.as_bytes()));
    }
    for (k, v) in &link.config.headers {
        headers.push((k.as_str(), v.as_bytes()));
    }
    conn.send_request("POST", &url.path_and_query, &url.authority, &headers, body)
        .await
        .map_err(|e| UpstreamError::Unreachable(format!("send: {e}")))?;
    let head = conn.read_response_head().await.map_err(http_failure)?;
    let session_id = head.header("mcp-session-id").map(Bytes::copy_from_slice);
    Ok((classify(conn, head, limits, modern).await?, session_id))
}

/// The `Mcp-Param-*` headers of the message in `pieces` (a `tools/call`).
fn mirror(pieces: &[Bytes], params: &[Param]) -> Vec<(String, String)> {
    let msg = crate::wire::concat(pieces);
    match crate::wire::parse(&msg).ok().and_then(|env| env.params) {
        Some(span) => crate::catalog::params::header_values(&msg, span, params),
        None => Vec::new(),
    }
}

/// Reads the JSON-RPC response out of a reply, skipping any notifications before it (control-plane
/// calls: handshake, list fetches, where nothing is relayed to a client).
pub async fn collect_response(conn: &mut Conn, reply: Reply) -> Result<Bytes, UpstreamError> {
    match reply {
        Reply::Json(body) => Ok(body),
        Reply::Accepted => Err(UpstreamError::Protocol(
            "202 Accepted where a response was due".into(),
        )),
        Reply::Sse(mut sse) => {
            while let Some(msg) = sse.next_message(conn).await? {
                if let Ok(env) = crate::wire::parse(&msg) {
                    if matches!(
                        env.kind,
                        crate::wire::Kind::Response | crate::wire::Kind::Error
                    ) {
                        return Ok(msg);
                    }
                }
            }
            Err(UpstreamError::Protocol(
                "SSE stream ended without a response".into(),
            ))
        }
    }
}

/// Maps a reply head (and, for errors, its body) to a [`Reply`] or an error. A modern server
/// answers request errors with a 4xx status and the JSON-RPC error as the body: that is a reply.
async fn classify(
    conn: &mut Conn,
    head: ResponseHead,
    limits: ReplyLimits,
    modern: bool,
) -> Result<Reply, UpstreamError> {
    let status = head.status;
    if status == 202 {
        let _ = conn.read_body(&head, limits.max_body).await;
        return Ok(Reply::Accepted);
    }
    if !(200..300).contains(&status) {
        let body = conn.read_body(&head, 64 * 1024).await.unwrap_or_default();
        if modern && (400..500).contains(&status) && is_error_reply(&body) {
            return Ok(Reply::Json(body));
        }
        return Err(status_error(status, &body));
    }
    let content_type = head.header("content-type").unwrap_or(b"");
    if starts_with_ignore_case(content_type, TEXT_EVENT_STREAM.as_bytes()) {
        let reply = SseReply::new(conn.body_state(&head), limits.max_event);
        return Ok(Reply::Sse(Box::new(reply)));
    }
    let body = conn
        .read_body(&head, limits.max_body)
        .await
        .map_err(http_failure)?;
    if body.is_empty() {
        return Ok(Reply::Accepted);
    }
    Ok(Reply::Json(body))
}

/// Whether a body is a JSON-RPC error response answering a request (its id is not null).
fn is_error_reply(body: &[u8]) -> bool {
    crate::wire::parse(body)
        .is_ok_and(|env| env.kind == crate::wire::Kind::Error && env.id_raw(body) != Some(b"null"))
}

/// Classifies a non-2xx status: session loss, or a protocol failure quoting the status.
pub fn status_error(status: u16, body: &[u8]) -> UpstreamError {
    let lower = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    let session_gone = status == 404
        || (status == 400 && (lower.contains("session") || lower.contains("not initialized")));
    if session_gone {
        UpstreamError::SessionExpired
    } else {
        let text: String = lower.chars().take(200).collect();
        UpstreamError::Protocol(format!("HTTP {status} {}", text.trim()))
    }
}

/// Maps an HTTP-layer failure while reading a reply.
pub fn http_failure(e: HttpError) -> UpstreamError {
    match e {
        HttpError::Io(e) => UpstreamError::Unreachable(format!("connection lost: {e}")),
        HttpError::Timeout => UpstreamError::Timeout,
        other => UpstreamError::Protocol(format!("bad HTTP reply: {other}")),
    }
}

fn starts_with_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay[..needle.len()].eq_ignore_ascii_case(needle)
}

/// An SSE reply being read event by event.
pub struct SseReply {
    decoder: SseDecoder,
    state: BodyState,
    /// The id of the last event seen (for `Last-Event-ID` resumption later).
    pub last_event_id: Option<String>,
}

impl SseReply {
    /// Starts reading an SSE body whose head has been read.
    pub fn new(state: BodyState, max_event: usize) -> Self {
        SseReply {
            decoder: SseDecoder::new(max_event),
            state,
            last_event_id: None,
        }
    }

    /// The next JSON-RPC message on the stream (default or `message` events), `None` at its end.
    pub async fn next_message(&mut self, conn: &mut Conn) -> Result<Option<Bytes>, UpstreamError> {
        while let Some(ev) = self.next_event(conn).await? {
            let is_message = ev.event.as_deref().is_none_or(|e| e == "message");
            if is_message && !ev.data.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(ev.data));
            }
        }
        Ok(None)
    }

    /// The next event of any type (HTTP+SSE's `endpoint` event needs this), `None` at the end.
    pub async fn next_event(&mut self, conn: &mut Conn) -> Result<Option<SseEvent>, UpstreamError> {
        loop {
            if let Some(ev) = self.decoder.next_event() {
                if let Some(id) = &ev.id {
                    self.last_event_id = Some(id.clone());
                }
                return Ok(Some(ev));
            }
            let chunk = conn
                .read_body_chunk(&mut self.state)
                .await
                .map_err(http_failure)?;
            match chunk {
                Some(chunk) => self
                    .decoder
                    .feed(&chunk)
                    .map_err(|e| UpstreamError::Protocol(format!("SSE: {e}")))?,
                None => return Ok(None),
            }
        }
    }
}
