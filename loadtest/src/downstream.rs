//! The bench downstream: a small, fast MCP server (Streamable HTTP, legacy era) on monoio.
//!
//! It answers `initialize` (minting an `mcp-session-id`), notifications and responses (202),
//! `ping`, `tools/list` (`echo` plus `tool_1..tool_{N-1}`) and `tools/call` of a known tool (a
//! fixed text of `payload_bytes`), and refuses requests without a session it minted (400, as the
//! official SDKs do) and unknown tools (-32602). Replies are JSON, or with `sse` one SSE event on a
//! chunked stream, the way SDK servers stream. Every reply is pre-encoded once and written as
//! refcounted pieces around the request's own id bytes, so the server costs little next to what
//! it serves: it runs on the load generator's core and must not be the bottleneck.
//!
//! The same behaviour over stdio (`downstream --stdio`, the stdio scenario) is in `stdio`, which
//! shares the pre-encoded results and helpers below.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::{TcpListener, TcpStream};
use ringgate::transport::http::{HttpLimits, Method, ServerConn};
use ringgate::wire::{self, encode, Kind};

/// Protocol versions the bench server agrees to (legacy era), newest first.
const VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// Prefix of the session ids the server mints.
const SESSION_PREFIX: &[u8] = b"bench-";

pub(crate) const HEAD: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":";
pub(crate) const MID: &[u8] = b",\"result\":";
pub(crate) const TAIL: &[u8] = b"}";
const SSE_OPEN: &[u8] = b"event: message\ndata: ";
const SSE_TAIL: &[u8] = b"}\n\n";

/// What one bench server serves.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// `serverInfo.name`.
    pub name: String,
    /// Tools offered: `echo` and `tool_1..tool_{tools-1}`.
    pub tools: usize,
    /// Text bytes in every `tools/call` result.
    pub payload_bytes: usize,
    /// Reply with SSE streams instead of JSON bodies.
    pub sse: bool,
}

/// One bench server's state: pre-encoded results and a session counter.
pub struct Bench {
    pub(crate) cfg: BenchConfig,
    pub(crate) tools_list: Bytes,
    pub(crate) call_result: Bytes,
    pub(crate) ping_result: Bytes,
    sessions: Cell<u64>,
    accepted: Cell<u64>,
    requests: Cell<u64>,
}

impl Bench {
    /// (connections accepted, requests answered, sessions minted) so far.
    pub fn counters(&self) -> (u64, u64, u64) {
        (
            self.accepted.get(),
            self.requests.get(),
            self.sessions.get(),
        )
    }

    pub fn new(cfg: BenchConfig) -> Bench {
        Bench {
            tools_list: Bytes::from(tools_list_result(cfg.tools)),
            call_result: Bytes::from(call_result(cfg.payload_bytes)),
            ping_result: Bytes::from_static(b"{}"),
            sessions: Cell::new(0),
            accepted: Cell::new(0),
            requests: Cell::new(0),
            cfg,
        }
    }

    pub(crate) fn knows_tool(&self, name: &str) -> bool {
        name == "echo"
            || name
                .strip_prefix("tool_")
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n >= 1 && n < self.cfg.tools)
    }
}

/// The `tools/list` result: `{"tools":[...]}`.
pub fn tools_list_result(tools: usize) -> Vec<u8> {
    let schema = r#"{"type":"object","properties":{"text":{"type":"string","description":"Any text; the reply does not depend on it."}},"required":[]}"#;
    let mut out = Vec::with_capacity(64 + tools * 260);
    out.extend_from_slice(b"{\"tools\":[");
    for i in 0..tools {
        if i > 0 {
            out.push(b',');
        }
        let (name, desc) = if i == 0 {
            (
                "echo".to_string(),
                "Replies with a fixed text (ringgate-loadtest bench tool).".to_string(),
            )
        } else {
            (
                format!("tool_{i}"),
                format!("Bench tool {i} of {tools}: replies like echo; exists to size tools/list."),
            )
        };
        out.extend_from_slice(b"{\"name\":");
        encode::write_json_string(&mut out, &name);
        out.extend_from_slice(b",\"description\":");
        encode::write_json_string(&mut out, &desc);
        out.extend_from_slice(b",\"inputSchema\":");
        out.extend_from_slice(schema.as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// `payload_bytes` of plain ASCII text (no escapes, so the reply size is exact).
pub fn payload_text(payload_bytes: usize) -> String {
    const PATTERN: &str = "hello world from the ringgate bench server ";
    PATTERN.chars().cycle().take(payload_bytes).collect()
}

/// The `tools/call` result: one text content item.
pub fn call_result(payload_bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + payload_bytes);
    out.extend_from_slice(b"{\"content\":[{\"type\":\"text\",\"text\":");
    encode::write_json_string(&mut out, &payload_text(payload_bytes));
    out.extend_from_slice(b"}],\"isError\":false}");
    out
}

pub(crate) fn initialize_result(requested: Option<&str>, name: &str) -> Vec<u8> {
    let version = requested
        .filter(|v| VERSIONS.contains(v))
        .unwrap_or(VERSIONS[1]);
    let mut out = Vec::with_capacity(192);
    out.extend_from_slice(b"{\"protocolVersion\":\"");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(
        b"\",\"capabilities\":{\"tools\":{\"listChanged\":false}},\"serverInfo\":{\"name\":",
    );
    encode::write_json_string(&mut out, name);
    out.extend_from_slice(b",\"version\":\"");
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    out.extend_from_slice(b"\"}}");
    out
}

/// `params.protocolVersion` of an initialize request, by a plain search (the bench server does
/// not need a full parse for the one request per session that carries it).
pub(crate) fn requested_version(params: &[u8]) -> Option<&str> {
    let key = b"\"protocolVersion\"";
    let at = params.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = &params[at..];
    let open = rest.iter().position(|&b| b == b'"')? + 1;
    let close = open + rest[open..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&rest[open..close]).ok()
}

fn limits() -> HttpLimits {
    HttpLimits {
        idle_timeout: Duration::from_secs(600),
        ..HttpLimits::default()
    }
}

/// Accepts connections on `listener` forever, one task per connection.
pub async fn serve(listener: TcpListener, bench: Rc<Bench>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                bench.accepted.set(bench.accepted.get() + 1);
                let _ = stream.set_nodelay(true);
                monoio::spawn(connection(stream, bench.clone()));
            }
            Err(e) => {
                eprintln!("bench server: accept failed: {e}");
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Binds `addr` and starts serving on the current runtime; returns the bound address and the
/// server (for its counters).
pub fn start(addr: SocketAddr, cfg: BenchConfig) -> io::Result<(SocketAddr, Rc<Bench>)> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    let bench = Rc::new(Bench::new(cfg));
    monoio::spawn(serve(listener, bench.clone()));
    Ok((local, bench))
}

async fn connection(stream: TcpStream, bench: Rc<Bench>) {
    let mut conn = ServerConn::new(stream, limits());
    loop {
        let req = match conn.read_request().await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                if e.should_respond() {
                    let close = [("connection", &b"close"[..])];
                    let _ = conn.write_response(e.status(), &close, &[]).await;
                }
                return;
            }
        };
        bench.requests.set(bench.requests.get() + 1);
        if respond(&bench, &mut conn, req).await.is_err() || !conn.keep_alive() {
            return;
        }
    }
}

async fn respond<S: AsyncReadRent + AsyncWriteRent>(
    bench: &Bench,
    conn: &mut ServerConn<S>,
    req: ringgate::transport::http::Request,
) -> io::Result<()> {
    if req.path_str() != "/mcp" {
        return conn.write_response(404, &[], &[]).await;
    }
    match req.method {
        Method::Post => {}
        Method::Delete => return conn.write_response(200, &[], &[]).await,
        _ => {
            let allow = [("allow", &b"POST, DELETE"[..])];
            return conn.write_response(405, &allow, &[]).await;
        }
    }
    let body = req.body;
    let env = match wire::parse(&body) {
        Ok(env) => env,
        Err(e) => {
            let reply = encode::error_response(None, e.code(), e.reason(), None);
            return write_json(conn, 400, reply, None).await;
        }
    };
    if env.kind != Kind::Request {
        return conn.write_response(202, &[], &[]).await;
    }
    let id = match env.id {
        Some((span, _)) => body.slice(span.start as usize..span.end as usize),
        None => Bytes::from_static(b"null"),
    };
    let method = env.method(&body).unwrap_or("");
    let sse = bench.cfg.sse
        && req
            .headers
            .get("accept")
            .is_some_and(|a| a.windows(17).any(|w| w == b"text/event-stream"));
    if method == "initialize" {
        let n = bench.sessions.get() + 1;
        bench.sessions.set(n);
        let session = format!("bench-{n}");
        let params = env.params.map(|p| p.get(&body)).unwrap_or_default();
        let result = initialize_result(requested_version(params), &bench.cfg.name);
        return reply(conn, sse, id, Bytes::from(result), Some(session.as_bytes())).await;
    }
    let session_ok = req
        .headers
        .get("mcp-session-id")
        .is_some_and(|s| s.starts_with(SESSION_PREFIX));
    if !session_ok {
        let e = encode::error_response(
            None,
            -32000,
            "Bad Request: No valid session ID provided",
            None,
        );
        return write_json(conn, 400, e, None).await;
    }
    let result = match method {
        "tools/call" => {
            let name = env.name_str(&body);
            match name.as_deref() {
                Some(n) if bench.knows_tool(n) => bench.call_result.clone(),
                other => {
                    let msg = format!("unknown tool: {}", other.unwrap_or("(none)"));
                    let e = encode::error_response(Some(&id), -32602, &msg, None);
                    return write_json(conn, 200, e, None).await;
                }
            }
        }
        "tools/list" => bench.tools_list.clone(),
        "ping" => bench.ping_result.clone(),
        other => {
            let msg = format!("method not found: {other}");
            let e = encode::error_response(Some(&id), -32601, &msg, None);
            return write_json(conn, 200, e, None).await;
        }
    };
    reply(conn, sse, id, result, None).await
}

async fn write_json<S: AsyncReadRent + AsyncWriteRent>(
    conn: &mut ServerConn<S>,
    status: u16,
    body: Bytes,
    session: Option<&[u8]>,
) -> io::Result<()> {
    let ct = ("content-type", &b"application/json"[..]);
    match session {
        Some(s) => {
            conn.write_response(status, &[ct, ("mcp-session-id", s)], &[body])
                .await
        }
        None => conn.write_response(status, &[ct], &[body]).await,
    }
}

/// A success reply: JSON body, or one SSE `message` event on a chunked stream.
async fn reply<S: AsyncReadRent + AsyncWriteRent>(
    conn: &mut ServerConn<S>,
    sse: bool,
    id: Bytes,
    result: Bytes,
    session: Option<&[u8]>,
) -> io::Result<()> {
    if !sse {
        let pieces = [
            Bytes::from_static(HEAD),
            id,
            Bytes::from_static(MID),
            result,
            Bytes::from_static(TAIL),
        ];
        let ct = ("content-type", &b"application/json"[..]);
        return match session {
            Some(s) => {
                conn.write_response(200, &[ct, ("mcp-session-id", s)], &pieces)
                    .await
            }
            None => conn.write_response(200, &[ct], &pieces).await,
        };
    }
    let ct = ("content-type", &b"text/event-stream"[..]);
    let cc = ("cache-control", &b"no-cache"[..]);
    match session {
        Some(s) => {
            conn.start_stream(200, &[ct, cc, ("mcp-session-id", s)])
                .await?
        }
        None => conn.start_stream(200, &[ct, cc]).await?,
    }
    let pieces = [
        Bytes::from_static(SSE_OPEN),
        Bytes::from_static(HEAD),
        id,
        Bytes::from_static(MID),
        result,
        Bytes::from_static(SSE_TAIL),
    ];
    conn.write_chunk(&pieces).await?;
    conn.finish_stream().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_encoded_results_are_valid_json() {
        for n in [1, 2, 50] {
            let list = tools_list_result(n);
            let v: serde_json::Value = serde_json::from_slice(&list).unwrap();
            assert_eq!(v["tools"].as_array().unwrap().len(), n);
        }
        let call = call_result(10_240);
        let v: serde_json::Value = serde_json::from_slice(&call).unwrap();
        assert_eq!(v["content"][0]["text"].as_str().unwrap().len(), 10_240);
        assert_eq!(payload_text(5), "hello");
        let init = initialize_result(Some("2025-03-26"), "b");
        let v: serde_json::Value = serde_json::from_slice(&init).unwrap();
        assert_eq!(v["protocolVersion"], "2025-03-26");
    }

    #[test]
    fn versions_and_tools() {
        assert_eq!(
            requested_version(br#"{"protocolVersion": "2025-06-18","x":1}"#),
            Some("2025-06-18")
        );
        assert_eq!(requested_version(b"{}"), None);
        let b = Bench::new(BenchConfig {
            name: "b".into(),
            tools: 3,
            payload_bytes: 5,
            sse: false,
        });
        assert!(b.knows_tool("echo") && b.knows_tool("tool_2"));
        assert!(!b.knows_tool("tool_3") && !b.knows_tool("tool_0") && !b.knows_tool("x"));
    }
}
