//! Meeting a downstream: era detection, then the `initialize` handshake for a legacy server, run
//! before any call needs the session.
//!
//! Era detection (Streamable HTTP and stdio servers): the gateway first sends `server/discover` at
//! the newest modern version. A `DiscoverResult` naming a version the gateway speaks makes the
//! server modern: its capabilities and instructions become the link's [`DownSession`] (no session
//! id; the version is the modern one, which makes every later exchange carry `_meta`, and on HTTP
//! the routing headers). Any other answer (an error of any code or HTTP status, garbage, a timeout)
//! means legacy, and the `initialize` handshake follows: real legacy servers answer the probe in
//! many ways (server-everything: HTTP 400 -32000 "Server not initialized", stdio -32601), so
//! nothing is read into it. Only an unreachable server (or, on stdio, a child that exited) is an
//! outage rather than an era verdict. The era is cached on the link (`/v1/servers` shows it) and
//! probed again whenever the server reconnects after being down (an HTTP server after an outage, a
//! stdio child after every restart), so a server upgraded in place is noticed. HTTP+SSE servers
//! are legacy by transport and are met with `initialize` directly.
//!
//! The legacy handshake introduces the gateway as a client named after `gateway.server_name`, asks
//! for the newest legacy version, records what the server agreed to ([`DownSession`]) and confirms
//! with `notifications/initialized`. Runs on the control thread at startup and on a worker only
//! when a downstream says the session expired.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use simd_json::prelude::*;

use super::exchange::{collect_response, post, Reply, ReplyLimits};
use super::pool::Pool;
use super::route::Route;
use super::UpstreamError;
use crate::config::Transport;
use crate::session::downstream::{DownSession, MuxMsg, ServerLink};
use crate::session::versions;
use crate::wire::{encode, method};

/// The id of the gateway's `initialize` request (a string: never collides with minted numeric ids).
const INIT_ID: &[u8] = b"\"ringgate-init\"";

/// The id of the gateway's `server/discover` probe.
const DISCOVER_ID: &[u8] = b"\"ringgate-discover\"";

/// How long the era probe may take before the server is taken for legacy.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The client capabilities the gateway declares to downstreams: what real clients (the official
/// SDKs) declare, so servers offer the gateway everything they would offer such a client. Each
/// request is then delivered only to a client that declared the capability itself.
pub const DECLARED_CLIENT_CAPABILITIES: &str =
    r#"{"sampling":{},"elicitation":{"form":{},"url":{}},"roots":{"listChanged":true}}"#;

/// Builds the `initialize` request the gateway sends downstream.
fn initialize_request(client_name: &str) -> Bytes {
    let mut params = Vec::with_capacity(160);
    params.extend_from_slice(b"{\"protocolVersion\":\"");
    params.extend_from_slice(versions::LATEST.as_bytes());
    // The gateway offers what clients may offer; each request is then checked against the
    // capabilities of the client it is routed to, and refused if that client lacks them.
    params.extend_from_slice(b"\",\"capabilities\":");
    params.extend_from_slice(DECLARED_CLIENT_CAPABILITIES.as_bytes());
    params.extend_from_slice(b",\"clientInfo\":{\"name\":");
    encode::write_json_string(&mut params, client_name);
    params.extend_from_slice(b",\"version\":\"");
    params.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    params.extend_from_slice(b"\"}}");
    encode::request(INIT_ID, method::INITIALIZE, Some(&params))
}

/// Detects the server's era (see the module docs), runs the legacy handshake if it is legacy, and
/// publishes the new session on the link.
pub async fn initialize(
    route: &Route,
    link: &Arc<ServerLink>,
    client_name: &str,
    limits: ReplyLimits,
) -> Result<Arc<DownSession>, UpstreamError> {
    let probes = match route {
        Route::Http(_) => true,
        Route::Mux(_) => link.config.transport == Transport::Stdio,
    };
    // A link that is up and legacy is re-initializing an expired session: its era is known.
    if probes && (!link.is_up() || link.is_modern()) {
        let probe = monoio::time::timeout(PROBE_TIMEOUT, discover(route, link, limits)).await;
        if probe.is_err() {
            if let Route::Mux(mux) = route {
                // Nobody waits for a late answer any more.
                let _ = mux
                    .tx
                    .try_send(MuxMsg::Forget(Bytes::from_static(DISCOVER_ID)));
            }
        }
        match probe.unwrap_or(Err(UpstreamError::Timeout)) {
            Ok(mut session) => {
                session.epoch = link.next_epoch();
                let session = Arc::new(session);
                link.set_era(true);
                link.session.store(Some(session.clone()));
                return Ok(session);
            }
            Err(e @ UpstreamError::Unreachable(_)) => return Err(e),
            Err(e) => log::debug!(
                "server '{}': no modern answer to server/discover ({e}); using initialize",
                link.name
            ),
        }
    }
    let session = initialize_legacy(route, link, client_name, limits).await?;
    link.set_era(false);
    Ok(session)
}

/// The `server/discover` request, with the modern `_meta` every request of the era carries.
fn discover_request() -> Bytes {
    let mut params = b"{".to_vec();
    params.extend_from_slice(&crate::session::modern::meta_param());
    params.push(b'}');
    encode::request(DISCOVER_ID, method::SERVER_DISCOVER, Some(&params))
}

/// The `server/discover` probe at the newest modern version: over HTTP on a fresh connection,
/// over a multiplexed stream (stdio) as one request.
async fn discover(
    route: &Route,
    link: &ServerLink,
    limits: ReplyLimits,
) -> Result<DownSession, UpstreamError> {
    let body = match route {
        Route::Http(pool) => discover_http(pool, limits).await?,
        Route::Mux(_) => {
            let id = Bytes::from_static(DISCOVER_ID);
            route.request(link, discover_request(), id, limits).await?
        }
    };
    parse_discover_result(&body)
}

/// The probe over HTTP: the reply body.
async fn discover_http(pool: &Pool, limits: ReplyLimits) -> Result<Bytes, UpstreamError> {
    let link = pool.link().clone();
    let mut conn = pool.open().await?;
    let probe = DownSession {
        id: None,
        protocol_version: Bytes::from_static(versions::LATEST_MODERN.as_bytes()),
        capabilities: Bytes::from_static(b"{}"),
        instructions: None,
        server_info: Bytes::from_static(b"{}"),
        epoch: 0,
    };
    let (reply, _) = post(
        &mut conn,
        &link,
        Some(&probe),
        &[discover_request()],
        limits,
    )
    .await?;
    let body = collect_response(&mut conn, reply).await?;
    if conn.is_reusable() {
        pool.release(conn);
    }
    Ok(body)
}

/// Reads a `DiscoverResult`: it must name a modern version the gateway speaks.
pub fn parse_discover_result(body: &[u8]) -> Result<DownSession, UpstreamError> {
    let mut scratch = body.to_vec();
    let v = simd_json::to_owned_value(&mut scratch)
        .map_err(|e| UpstreamError::Protocol(format!("discover reply is not JSON: {e}")))?;
    let result = v
        .get("result")
        .and_then(|r| r.as_object())
        .ok_or_else(|| UpstreamError::Protocol("discover reply has no result object".into()))?;
    let speaks = result
        .get("supportedVersions")
        .and_then(|s| s.as_array())
        .is_some_and(|a| {
            a.iter().any(|v| {
                v.as_str()
                    .is_some_and(|v| versions::is_modern(v.as_bytes()))
            })
        });
    if !speaks {
        return Err(UpstreamError::Protocol(
            "discover result names no modern version the gateway speaks".into(),
        ));
    }
    let raw = |value: Option<&simd_json::OwnedValue>| -> Bytes {
        value
            .map(|c| Bytes::from(c.encode()))
            .unwrap_or_else(|| Bytes::from_static(b"{}"))
    };
    let server_info = result
        .get("_meta")
        .and_then(|m| m.get(crate::wire::names::meta::SERVER_INFO));
    Ok(DownSession {
        id: None,
        protocol_version: Bytes::from_static(versions::LATEST_MODERN.as_bytes()),
        capabilities: raw(result.get("capabilities")),
        instructions: result
            .get("instructions")
            .and_then(|i| i.as_str())
            .map(str::to_string),
        server_info: raw(server_info),
        epoch: 0,
    })
}

/// The legacy handshake over `route`.
async fn initialize_legacy(
    route: &Route,
    link: &Arc<ServerLink>,
    client_name: &str,
    limits: ReplyLimits,
) -> Result<Arc<DownSession>, UpstreamError> {
    match route {
        Route::Http(pool) => initialize_http(pool, client_name, limits).await,
        Route::Mux(_) => {
            let req = initialize_request(client_name);
            let body = route
                .request(link, req, Bytes::from_static(INIT_ID), limits)
                .await?;
            let mut session = parse_initialize_result(&body)?;
            session.epoch = link.next_epoch();
            let session = Arc::new(session);
            link.session.store(Some(session.clone()));
            route
                .notify(
                    link,
                    encode::notification(method::INITIALIZED, None),
                    limits,
                )
                .await?;
            Ok(session)
        }
    }
}

/// The HTTP handshake: on a fresh connection, because the session id arrives as a reply header.
pub async fn initialize_http(
    pool: &Pool,
    client_name: &str,
    limits: ReplyLimits,
) -> Result<Arc<DownSession>, UpstreamError> {
    let link = pool.link().clone();
    let mut conn = pool.open().await?;
    let (reply, session_id) = post(
        &mut conn,
        &link,
        None,
        &[initialize_request(client_name)],
        limits,
    )
    .await?;
    let body = collect_response(&mut conn, reply).await?;
    if !conn.is_reusable() {
        // The reply was an SSE stream still open after the response: use a fresh connection.
        conn = pool.open().await?;
    }
    let mut session = parse_initialize_result(&body)?;
    session.id = session_id;
    session.epoch = link.next_epoch();
    let session = Arc::new(session);
    let note = encode::notification(method::INITIALIZED, None);
    match post(&mut conn, &link, Some(&session), &[note], limits).await? {
        (Reply::Accepted, _) | (Reply::Json(_), _) => {}
        (Reply::Sse(mut sse), _) => while sse.next_message(&mut conn).await?.is_some() {},
    }
    pool.release(conn);
    link.session.store(Some(session.clone()));
    Ok(session)
}

/// Reads protocol version, capabilities, serverInfo and instructions from an `initialize` reply.
pub fn parse_initialize_result(body: &[u8]) -> Result<DownSession, UpstreamError> {
    let mut scratch = body.to_vec();
    let v = simd_json::to_owned_value(&mut scratch)
        .map_err(|e| UpstreamError::Protocol(format!("initialize reply is not JSON: {e}")))?;
    if let Some(err) = v.get("error") {
        let msg = err
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("no message");
        return Err(UpstreamError::Protocol(format!(
            "initialize refused: {msg}"
        )));
    }
    let result = v
        .get("result")
        .and_then(|r| r.as_object())
        .ok_or_else(|| UpstreamError::Protocol("initialize reply has no result object".into()))?;
    let version = result
        .get("protocolVersion")
        .and_then(|p| p.as_str())
        .ok_or_else(|| UpstreamError::Protocol("initialize result lacks protocolVersion".into()))?;
    if versions::index_of(version.as_bytes()).is_none() {
        return Err(UpstreamError::Protocol(format!(
            "server chose unsupported protocol version {version}"
        )));
    }
    let raw = |key: &str| -> Bytes {
        result
            .get(key)
            .map(|c| Bytes::from(c.encode()))
            .unwrap_or_else(|| Bytes::from_static(b"{}"))
    };
    Ok(DownSession {
        id: None,
        protocol_version: Bytes::copy_from_slice(version.as_bytes()),
        capabilities: raw("capabilities"),
        instructions: result
            .get("instructions")
            .and_then(|i| i.as_str())
            .map(str::to_string),
        server_info: raw("serverInfo"),
        epoch: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialize_results_are_read_and_bad_ones_refused() {
        let ok = br#"{"jsonrpc":"2.0","id":"ringgate-init","result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":true}},"serverInfo":{"name":"s","version":"1"},"instructions":"be nice"}}"#;
        let s = parse_initialize_result(ok).unwrap();
        assert_eq!(&s.protocol_version[..], b"2025-06-18");
        assert!(std::str::from_utf8(&s.capabilities)
            .unwrap()
            .contains("listChanged"));
        assert_eq!(s.instructions.as_deref(), Some("be nice"));
        let old = br#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2020-01-01","capabilities":{}}}"#;
        assert!(parse_initialize_result(old).is_err());
        let err = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"no"}}"#;
        assert!(parse_initialize_result(err).is_err());
        assert!(parse_initialize_result(b"garbage").is_err());
    }

    #[test]
    fn discover_results_make_a_modern_session_and_others_do_not() {
        let ok = br#"{"jsonrpc":"2.0","id":"ringgate-discover","result":{"supportedVersions":["2026-07-28","2025-11-25"],"capabilities":{"tools":{}},"instructions":"hi","ttlMs":0,"cacheScope":"public","resultType":"complete","_meta":{"io.modelcontextprotocol/serverInfo":{"name":"py","version":"2"}}}}"#;
        let s = parse_discover_result(ok).unwrap();
        assert_eq!(&s.protocol_version[..], b"2026-07-28");
        assert!(s.id.is_none());
        assert_eq!(s.instructions.as_deref(), Some("hi"));
        assert!(std::str::from_utf8(&s.server_info).unwrap().contains("py"));
        let legacy_only = br#"{"jsonrpc":"2.0","id":1,"result":{"supportedVersions":["2025-11-25"],"capabilities":{}}}"#;
        assert!(parse_discover_result(legacy_only).is_err());
        let err = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}"#;
        assert!(parse_discover_result(err).is_err());
    }

    #[test]
    fn the_request_is_valid_json_rpc() {
        let req = initialize_request("ringgate \"test\"");
        let env = crate::wire::parse(&req).unwrap();
        assert_eq!(env.method(&req), Some(method::INITIALIZE));
    }
}
