//! The front door over HTTP: one client connection, request after request, on the worker that
//! accepted it. Streamable HTTP at `/mcp`: POST messages (either era, chosen per request by the
//! request path), and for the legacy era the GET notification stream and DELETE session (a modern
//! `MCP-Protocol-Version` on GET or DELETE gets 405).
//!
//! Before anything reaches the request path, the exchange is checked here: HTTP framing and limits
//! (400/408/413/431, then the connection closes), `Host` (421) and `Origin` (403) against the
//! allow-lists, `Accept` (406) and `Content-Type` (415). POST bodies then go to
//! [`proxy::handle_post`], whose [`Outcome`] is written as JSON or as an SSE stream.
//!
//! Invariants: a connection task holds no `RefCell` borrow across an `.await`; every response is
//! written before the next request is read (HTTP/1.1 without pipelined overlap); the worker's
//! in-flight count covers each request from its body to its last byte written.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use monoio::io::{AsyncReadRent, AsyncWriteRent};

use crate::catalog::Snapshot;
use crate::error::{ErrorKind, GatewayError};
use crate::proxy::{self, Gateway, Inbound, Outcome, Relay, Worker};
use crate::transport::http::{HttpError, HttpLimits, Method, Request, ServerConn};
use crate::wire::{code, encode, sse};

use super::sse_front;

/// The MCP endpoint path.
pub const MCP_PATH: &str = "/mcp";

/// HTTP limits from the gateway config.
pub fn http_limits(snap: &Snapshot) -> HttpLimits {
    let l = &snap.gateway.limits;
    HttpLimits {
        max_header_bytes: l.max_header_bytes,
        max_headers: l.max_headers,
        max_body_bytes: l.max_body_bytes,
        header_read_timeout: l.header_read_timeout,
        idle_timeout: l.idle_timeout,
        max_sse_event_bytes: l.max_sse_event_bytes,
    }
}

/// Serves one client connection until it closes, errs, or the worker drains.
pub async fn serve<S: AsyncReadRent + AsyncWriteRent>(gw: Arc<Gateway>, w: Rc<Worker>, stream: S) {
    let mut conn = ServerConn::new(stream, http_limits(&w.snapshot()));
    loop {
        let req = match conn.read_request().await {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(e) => return refuse_http(&w, &mut conn, e).await,
        };
        w.inflight.set(w.inflight.get() + 1);
        // Boxed: the request path's state machine is large, and an idle keep-alive connection
        // would otherwise carry it in its task for as long as it stays open (memory per idle
        // session, measured with `ringgate-loadtest --idle-sessions`).
        let keep = Box::pin(exchange(&gw, &w, &mut conn, req)).await;
        w.inflight.set(w.inflight.get() - 1);
        if !keep || !conn.keep_alive() || w.draining.get() {
            return;
        }
    }
}

/// Answers a request that failed at the HTTP level, then the connection closes.
async fn refuse_http<S: AsyncReadRent + AsyncWriteRent>(
    w: &Worker,
    conn: &mut ServerConn<S>,
    e: HttpError,
) {
    if !e.should_respond() {
        return;
    }
    w.stats.borrow_mut().rejected += 1;
    let status = e.status();
    let message = match e {
        HttpError::BodyTooLarge => format!(
            "request body exceeds {} bytes",
            conn.limits().max_body_bytes
        ),
        other => other.to_string(),
    };
    let body = encode::error_response(None, code::INVALID_REQUEST, &message, None);
    let headers = [
        ("content-type", &b"application/json"[..]),
        ("connection", b"close"),
    ];
    let _ = conn.write_response(status, &headers, &[body]).await;
}

/// One HTTP exchange. Returns whether the connection may carry another.
async fn exchange<S: AsyncReadRent + AsyncWriteRent>(
    gw: &Arc<Gateway>,
    w: &Rc<Worker>,
    conn: &mut ServerConn<S>,
    req: Request,
) -> bool {
    let received = Instant::now();
    let snap = w.snapshot();
    if let Err(e) = check_host_and_origin(&snap, &req) {
        return reject(w, conn, &e).await;
    }
    // Not held across the exchange: a GET stream lives long, and a reload drains retired servers
    // by waiting for the replaced snapshot to be let go (each handler loads its own).
    drop(snap);
    match (req.method, req.path_str()) {
        (_, MCP_PATH) => {}
        // The legacy HTTP+SSE transport (2024-11-05), for clients that only speak it.
        (Method::Get, sse_front::SSE_PATH) => {
            return sse_front::open_stream(gw, w, conn, &req).await
        }
        (Method::Post, sse_front::MESSAGES_PATH) => {
            return sse_front::post_message(gw, w, conn, &req, received).await
        }
        _ => {
            let e = GatewayError::new(
                ErrorKind::MethodNotFound,
                "not found: the MCP endpoint is /mcp (legacy HTTP+SSE: /sse)",
            );
            return write_json(conn, 404, &[e.to_jsonrpc(None)], None).await;
        }
    }
    let modern = req
        .headers
        .get("mcp-protocol-version")
        .is_some_and(crate::session::versions::is_modern);
    match req.method {
        Method::Post => post(gw, w, conn, &req, received).await,
        // The 2026-07-28 era is POST only (no GET stream, no sessions to DELETE).
        Method::Get | Method::Delete if modern => {
            let headers = [("allow", &b"POST"[..])];
            conn.write_response(405, &headers, &[]).await.is_ok()
        }
        Method::Get => get_stream(gw, w, conn, &req).await,
        Method::Delete => delete(gw, w, conn, &req).await,
        _ => {
            let headers = [("allow", &b"GET, POST, DELETE"[..])];
            conn.write_response(405, &headers, &[]).await.is_ok()
        }
    }
}

/// POST /mcp: one JSON-RPC message (or batch) through the request path.
async fn post<S: AsyncReadRent + AsyncWriteRent>(
    gw: &Gateway,
    w: &Worker,
    conn: &mut ServerConn<S>,
    req: &Request,
    received: Instant,
) -> bool {
    let accept = req.headers.get("accept");
    let accepts_sse = accept.is_none_or(|a| media_accepted(a, b"text/event-stream"));
    // A 2026-07-28 request must accept a JSON reply (the Python SDK v2 answers 406 otherwise).
    let modern = req
        .headers
        .get("mcp-protocol-version")
        .is_some_and(crate::session::versions::is_modern);
    if accept.is_some_and(|a| !media_accepted(a, b"application/json") && (modern || !accepts_sse)) {
        let e = GatewayError::new(
            ErrorKind::NotAcceptable,
            if modern {
                "Accept must allow application/json"
            } else {
                "Accept must allow application/json or text/event-stream"
            },
        );
        return reject(w, conn, &e).await;
    }
    if req
        .headers
        .get("content-type")
        .is_some_and(|c| !c.to_ascii_lowercase().starts_with(b"application/json"))
    {
        let body = encode::error_response(
            None,
            code::INVALID_REQUEST,
            "Content-Type must be application/json",
            None,
        );
        return write_json(conn, 415, &[body], None).await;
    }
    let inbound = Inbound {
        body: req.body.clone(),
        session: req.headers.get("mcp-session-id"),
        version: req.headers.get("mcp-protocol-version"),
        authorization: req.headers.get("authorization"),
        accepts_sse,
        received,
    };
    let routing = proxy::modern::RoutingHeaders::from_headers(&req.headers);
    match proxy::handle_http(gw, w, inbound, &routing).await {
        Outcome::Json {
            status,
            body,
            session,
        } => {
            if status >= 400 {
                w.stats.borrow_mut().rejected += 1;
            }
            write_json(conn, status, &body, session.as_deref()).await
        }
        Outcome::Accepted => conn.write_response(202, &[], &[]).await.is_ok(),
        Outcome::Stream(relay) => stream_relay(gw, w, conn, relay).await,
    }
}

/// Writes a forwarded call's events as an SSE response.
async fn stream_relay<S: AsyncReadRent + AsyncWriteRent>(
    gw: &Gateway,
    w: &Worker,
    conn: &mut ServerConn<S>,
    mut relay: Box<Relay>,
) -> bool {
    if !start_sse(conn).await {
        return false;
    }
    let mut event = Vec::with_capacity(512);
    // A listen stream may stay quiet for long: keep-alive comments keep intermediaries from
    // closing it and show a vanished client (whose stream, and resource subscriptions, then end).
    let listen = matches!(*relay, Relay::Listen(_));
    let keepalive = w.snapshot().gateway.limits.stream_keepalive;
    loop {
        let next = relay.next(gw, w);
        let msg = if listen {
            match monoio::time::timeout(keepalive, next).await {
                Ok(msg) => msg,
                Err(_) => {
                    let comment = Bytes::from_static(b": keep-alive\n\n");
                    if conn.write_chunk(&[comment]).await.is_err() {
                        return false;
                    }
                    continue;
                }
            }
        } else {
            next.await
        };
        let Some(msg) = msg else { break };
        event.clear();
        sse::encode_event(&mut event, Some("message"), None, &msg);
        if conn
            .write_chunk(&[Bytes::copy_from_slice(&event)])
            .await
            .is_err()
        {
            return false;
        }
    }
    conn.finish_stream().await.is_ok()
}

/// GET /mcp: the session's notification stream (list_changed and, later, server requests).
async fn get_stream<S: AsyncReadRent + AsyncWriteRent>(
    gw: &Gateway,
    w: &Worker,
    conn: &mut ServerConn<S>,
    req: &Request,
) -> bool {
    if !req
        .headers
        .get("accept")
        .is_some_and(|a| media_accepted(a, b"text/event-stream"))
    {
        let e = GatewayError::new(
            ErrorKind::NotAcceptable,
            "GET /mcp requires Accept: text/event-stream",
        );
        return reject(w, conn, &e).await;
    }
    let session = match open_session(gw, req) {
        Ok(s) => s,
        Err(e) => return reject(w, conn, &e).await,
    };
    if !start_sse(conn).await {
        return false;
    }
    let mut opening = Vec::with_capacity(64);
    sse::encode_comment(&mut opening, "ringgate notification stream");
    let alive = pump_session_stream(w, conn, session.nonce, opening).await;
    alive && conn.finish_stream().await.is_ok() && !w.draining.get()
}

/// Starts a `text/event-stream` response (chunked, uncached); `false` if the client is gone.
pub(super) async fn start_sse<S: AsyncReadRent + AsyncWriteRent>(conn: &mut ServerConn<S>) -> bool {
    let headers = [
        ("content-type", &b"text/event-stream"[..]),
        ("cache-control", b"no-cache"),
        // Reverse proxies must not buffer events (the 2026-07-28 transport's SHOULD).
        ("x-accel-buffering", b"no"),
    ];
    conn.start_stream(200, &headers).await.is_ok()
}

/// Writes a session's notification stream (after its `opening` bytes) until the client goes
/// away or the worker closes the stream; keep-alive comments show a vanished client. Returns
/// whether the connection is still writable.
pub(super) async fn pump_session_stream<S: AsyncReadRent + AsyncWriteRent>(
    w: &Worker,
    conn: &mut ServerConn<S>,
    session: u64,
    opening: Vec<u8>,
) -> bool {
    let mut reg = w.streams.add(session);
    let keepalive = w.snapshot().gateway.limits.stream_keepalive;
    let mut out = opening;
    let mut alive = conn
        .write_chunk(&[Bytes::copy_from_slice(&out)])
        .await
        .is_ok();
    while alive {
        out.clear();
        match monoio::time::timeout(keepalive, reg.rx.recv()).await {
            Ok(Some(msg)) => sse::encode_event(&mut out, Some("message"), None, &msg),
            Ok(None) => break,
            Err(_) => sse::encode_comment(&mut out, "keepalive"),
        }
        alive = conn
            .write_chunk(&[Bytes::copy_from_slice(&out)])
            .await
            .is_ok();
    }
    w.streams.remove(reg.key);
    alive
}

/// DELETE /mcp: ends the session; its id stops working on every worker.
async fn delete<S: AsyncReadRent + AsyncWriteRent>(
    gw: &Gateway,
    w: &Worker,
    conn: &mut ServerConn<S>,
    req: &Request,
) -> bool {
    match open_session(gw, req) {
        Ok(session) => {
            crate::proxy::end_session(gw, w, &session);
            conn.write_response(200, &[], &[]).await.is_ok()
        }
        Err(e) => reject(w, conn, &e).await,
    }
}

fn open_session(gw: &Gateway, req: &Request) -> Result<crate::session::FrontSession, GatewayError> {
    let header = req.headers.get("mcp-session-id").ok_or_else(|| {
        GatewayError::new(
            ErrorKind::SessionRequired,
            "Mcp-Session-Id header is required",
        )
    })?;
    gw.sessions
        .open(header)
        .ok_or_else(|| GatewayError::new(ErrorKind::SessionNotFound, "unknown or ended session"))
}

/// Writes an exchange-level error (the one mapping lives in [`GatewayError`]).
pub(super) async fn reject<S: AsyncReadRent + AsyncWriteRent>(
    w: &Worker,
    conn: &mut ServerConn<S>,
    e: &GatewayError,
) -> bool {
    w.stats.borrow_mut().rejected += 1;
    let status = match e.http_status() {
        200 => 400,
        s => s,
    };
    write_json(conn, status, &[e.to_jsonrpc(None)], None).await
}

pub(super) async fn write_json<S: AsyncReadRent + AsyncWriteRent>(
    conn: &mut ServerConn<S>,
    status: u16,
    body: &[Bytes],
    session: Option<&str>,
) -> bool {
    let ct = ("content-type", &b"application/json"[..]);
    let result = match session {
        Some(id) => {
            conn.write_response(status, &[ct, ("mcp-session-id", id.as_bytes())], body)
                .await
        }
        None => conn.write_response(status, &[ct], body).await,
    };
    result.is_ok()
}

/// Whether an `Accept` header admits `media` (exactly, via `type/*`, or via `*/*`).
pub fn media_accepted(accept: &[u8], media: &[u8]) -> bool {
    let main = media.split(|&b| b == b'/').next().unwrap_or(media);
    accept.split(|&b| b == b',').any(|item| {
        let range = item
            .split(|&b| b == b';')
            .next()
            .unwrap_or(item)
            .trim_ascii();
        range.eq_ignore_ascii_case(media)
            || range == b"*/*"
            || (range.len() == main.len() + 2
                && range[..main.len()].eq_ignore_ascii_case(main)
                && range.ends_with(b"/*"))
    })
}

/// DNS-rebinding protection: `Host` must name the gateway (421 otherwise) and a browser `Origin`
/// must be loopback or allow-listed (403 otherwise).
pub fn check_host_and_origin(snap: &Snapshot, req: &Request) -> Result<(), GatewayError> {
    let g = &snap.gateway;
    let host = req
        .headers
        .get_str("host")
        .ok_or_else(|| GatewayError::new(ErrorKind::MisdirectedHost, "missing Host header"))?;
    let listen = g.listen.to_string();
    let host_ok = host == listen
        || is_loopback_authority(host)
        || g.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host));
    if !host_ok {
        return Err(GatewayError::new(
            ErrorKind::MisdirectedHost,
            "Host is not allowed",
        ));
    }
    if let Some(origin) = req.headers.get("origin") {
        let origin = std::str::from_utf8(origin).unwrap_or("");
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or("\0");
        let allowed = is_loopback_authority(authority)
            || g.allowed_origins
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin));
        if !allowed {
            return Err(GatewayError::new(
                ErrorKind::ForbiddenOrigin,
                "Origin is not allowed",
            ));
        }
    }
    Ok(())
}

/// `localhost`, `127.0.0.1` or `[::1]`, with or without a port.
fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                authority
            }
        })
    };
    host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "::1"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_matching_handles_ranges_and_parameters() {
        assert!(media_accepted(
            b"application/json, text/event-stream",
            b"text/event-stream"
        ));
        assert!(media_accepted(b"text/*;q=0.5", b"text/event-stream"));
        assert!(media_accepted(b"*/*", b"application/json"));
        assert!(!media_accepted(b"text/html", b"application/json"));
    }

    #[test]
    fn loopback_authorities() {
        for ok in [
            "localhost",
            "localhost:3000",
            "127.0.0.1:8787",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(is_loopback_authority(ok), "{ok}");
        }
        for bad in ["evil.com", "127.0.0.1.evil.com", "localhost.evil:80", ""] {
            assert!(!is_loopback_authority(bad), "{bad}");
        }
    }
}
