//! Downstream MCP servers: connections, handshakes, calls, catalog fetches.
//!
//! Key types: [`pool::WorkerPools`] (per-worker keep-alive connections per server, pre-warmed),
//! [`exchange`] (one JSON-RPC POST over Streamable HTTP with a JSON or SSE reply),
//! [`call::Call`] (a forwarded call in flight: its events, its timeout, its cancellation),
//! [`handshake`] (the downstream `initialize`), [`fetch`] (list fan-in for the catalog),
//! [`watch`] (the downstream's GET stream, for `list_changed`).
//!
//! Invariants: a call never waits for a handshake that could have happened earlier: sessions are
//! established on the control thread at startup and published through [`ServerLink`]; connections
//! are opened when a worker starts. A worker re-initializes only when the downstream says the session
//! expired. One bad server never affects another: every failure is confined to its own link and pool.
//!
//! Eras: a Streamable HTTP or stdio server is probed with `server/discover` and spoken to in the
//! modern era (2026-07-28: `_meta` on every request, no session; on HTTP also the routing and
//! `Mcp-Param-*` headers) when it answers, else in the legacy era ([`handshake`]). HTTP+SSE is a
//! legacy-only transport: a server reached that way is legacy, and is never probed.
//!
//! [`ServerLink`]: crate::session::downstream::ServerLink

pub mod call;
pub mod child;
pub mod exchange;
pub mod fetch;
pub mod handshake;
pub mod mux;
pub mod pool;
pub mod route;
pub mod sse_session;
pub mod watch;

use std::fmt;

use bytes::Bytes;

use crate::error::{ErrorKind, GatewayError};
use crate::session::downstream::ServerLink;
use crate::wire::{self, encode, method};

/// The gateway's own answer to a request a downstream sent it: `ping` gets its empty result;
/// anything that could not be attributed to a client (or whose client lacks the capability) gets
/// -32601, so the server never waits for an answer that will not come.
pub fn answer_server_request(msg: &[u8], env: &wire::Envelope) -> Option<Bytes> {
    let (id, _) = env.id?;
    let id = id.get(msg);
    Some(if env.method(msg) == Some(method::PING) {
        encode::result_response(id, b"{}")
    } else {
        encode::error_response(
            Some(id),
            wire::code::METHOD_NOT_FOUND,
            "the gateway does not relay this request to clients",
            None,
        )
    })
}

/// A request for a multiplexed modern server (stdio): with the modern `_meta` the era requires
/// (HTTP servers get it, and their headers, in [`exchange::post`]). Anything else is unchanged.
pub fn for_mux(route: &route::Route, link: &ServerLink, body: Bytes) -> Bytes {
    // One relaxed load for a legacy server; the session decides for a modern one.
    if !link.is_modern() || !matches!(route, route::Route::Mux(_)) {
        return body;
    }
    let modern = link
        .session
        .load()
        .as_ref()
        .is_some_and(|s| crate::session::versions::is_modern(&s.protocol_version));
    if modern {
        wire::concat(&crate::session::modern::outbound(&[body]).body)
    } else {
        body
    }
}

/// Why a downstream exchange failed, before it is worded for a client.
#[derive(Debug)]
pub enum UpstreamError {
    /// Could not connect or the connection broke.
    Unreachable(String),
    /// No reply within the deadline.
    Timeout,
    /// The downstream says our session is gone (404, or 400 "no valid session").
    SessionExpired,
    /// The downstream answered something that is not a valid MCP reply.
    Protocol(String),
}

impl UpstreamError {
    /// Words the failure for a client, naming the server (never blaming the client).
    pub fn for_client(&self, server: &str) -> GatewayError {
        match self {
            UpstreamError::Unreachable(why) => GatewayError::new(
                ErrorKind::DownstreamUnavailable,
                format!("server '{server}' is unavailable: {why}"),
            ),
            UpstreamError::Timeout => GatewayError::new(
                ErrorKind::DownstreamTimeout,
                format!("server '{server}' did not answer in time; the call was cancelled"),
            ),
            UpstreamError::SessionExpired => GatewayError::new(
                ErrorKind::DownstreamSessionExpired,
                format!("server '{server}' ended its session during the call; it was not retried because it may have had effects"),
            ),
            UpstreamError::Protocol(why) => GatewayError::new(
                ErrorKind::DownstreamProtocol,
                format!("server '{server}' sent an invalid reply: {why}"),
            ),
        }
    }

    /// Whether this failure means the server itself is down (vs. one bad call).
    pub fn server_down(&self) -> bool {
        matches!(self, UpstreamError::Unreachable(_))
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Unreachable(w) => write!(f, "unreachable: {w}"),
            UpstreamError::Timeout => f.write_str("timed out"),
            UpstreamError::SessionExpired => f.write_str("session expired"),
            UpstreamError::Protocol(w) => write!(f, "protocol error: {w}"),
        }
    }
}
