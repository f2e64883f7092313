//! The load generator's MCP client: one keep-alive HTTP/1.1 connection, one MCP session.
//!
//! `McpConn::open` connects, sends `initialize`, keeps the `mcp-session-id` and negotiated
//! version, and confirms with `notifications/initialized`. `McpConn::call` sends one request
//! (pre-built pieces around a fresh numeric id) and reads the reply, JSON or SSE, to the end, so the
//! connection stays reusable; it is a success only for HTTP 200 carrying a JSON-RPC response
//! with the same id and no `error`.
//!
//! A target may instead be a stdio child of the load test (`Target::stdio`, the stdio scenario's
//! direct path): then every `McpConn` of the path is a slot on that one child's session, and a call
//! is one line out and its response line back (see `stdio`).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;

use bytes::Bytes;
use monoio::net::TcpStream;
use ringgate::transport::http::{client::ResponseHead, connect, ClientConn, HttpError};
use ringgate::wire::{self, encode, format_u64_id, Kind, SseDecoder};

use crate::stdio::StdioLink;

/// Largest reply body accepted (a merged `tools/list` of 500 tools is ~130 KB).
const MAX_REPLY: usize = 64 * 1024 * 1024;
/// Protocol version the load generator asks for.
const CLIENT_VERSION: &str = "2025-06-18";
const ACCEPT: &[u8] = b"application/json, text/event-stream";

/// Where a path's requests go.
#[derive(Debug)]
pub struct Target {
    /// Path name in the report (direct, relay, gateway, or a `--target` name).
    pub name: String,
    /// The URL as given or built.
    pub url: String,
    /// Resolved socket address.
    pub addr: SocketAddr,
    /// `host:port` for the Host header.
    pub authority: String,
    /// Request path, e.g. `/mcp`.
    pub path: String,
    /// A stdio child instead of an HTTP endpoint (`addr`, `authority` and `path` are unused).
    pub stdio: Option<Rc<StdioLink>>,
    /// Speak the 2026-07-28 era to this target: no handshake, `_meta` and routing headers.
    pub modern: bool,
}

impl Target {
    /// Parses `http://host:port/path` (no TLS: load tests run next to their targets).
    pub fn new(name: &str, url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{name}: only http:// URLs are supported: {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/mcp"),
        };
        let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
        }) {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("{name}: cannot resolve {authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("{name}: {authority} resolves to nothing"))?;
        Ok(Target {
            name: name.to_string(),
            url: url.to_string(),
            addr,
            authority: authority.to_string(),
            path: path.to_string(),
            stdio: None,
            modern: false,
        })
    }

    /// A path to a stdio child of the load test, described by `url` (e.g. `stdio:PROGRAM ARGS`).
    pub fn stdio(name: &str, url: &str, link: Rc<StdioLink>) -> Target {
        Target {
            name: name.to_string(),
            url: url.to_string(),
            addr: ([0, 0, 0, 0], 0).into(),
            authority: String::new(),
            path: String::new(),
            stdio: Some(link),
            modern: false,
        }
    }

    /// A target for a local address, MCP endpoint `/mcp`.
    #[cfg(test)]
    pub fn local(name: &str, addr: SocketAddr) -> Target {
        Target::at(name, addr, "/mcp")
    }

    /// A target for a local address and endpoint path.
    pub fn at(name: &str, addr: SocketAddr, path: &str) -> Target {
        Target::new(name, &format!("http://{addr}{path}")).expect("a socket address is a valid URL")
    }
}

/// The protocol revision of modern-era requests.
pub const MODERN_VERSION: &str = "2026-07-28";

/// One request body as pieces around its id: `{"jsonrpc":"2.0","id":` ID `,"method":...}`.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    prefix: Bytes,
    suffix: Bytes,
    /// The routing headers a 2026-07-28 request carries (`Mcp-Method`, `Mcp-Name`).
    modern: Option<(String, String)>,
}

impl RequestTemplate {
    /// A request for `method` with raw JSON `params`.
    pub fn new(method: &str, params_raw: Option<&str>) -> RequestTemplate {
        // Encode with a placeholder id, then cut around it.
        let full = encode::request(b"0", method, params_raw.map(str::as_bytes));
        let head = b"{\"jsonrpc\":\"2.0\",\"id\":";
        debug_assert!(full.starts_with(head));
        RequestTemplate {
            prefix: full.slice(..head.len()),
            suffix: full.slice(head.len() + 1..),
            modern: None,
        }
    }

    /// A 2026-07-28 `tools/call` of `tool`: `_meta` with the version and capabilities, plus the
    /// routing headers.
    pub fn modern_tools_call(tool: &str) -> RequestTemplate {
        let mut params = Vec::with_capacity(160 + tool.len());
        params.extend_from_slice(b"{\"name\":");
        encode::write_json_string(&mut params, tool);
        params.extend_from_slice(b",\"arguments\":{\"text\":\"hello\"},\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"");
        params.extend_from_slice(MODERN_VERSION.as_bytes());
        params.extend_from_slice(b"\",\"io.modelcontextprotocol/clientCapabilities\":{}}}");
        let params = String::from_utf8(params).expect("ASCII JSON");
        let mut t = RequestTemplate::new("tools/call", Some(&params));
        t.modern = Some(("tools/call".into(), tool.into()));
        t
    }

    /// A `tools/call` of `tool` with a small text argument.
    pub fn tools_call(tool: &str) -> RequestTemplate {
        let mut params = Vec::with_capacity(64 + tool.len());
        params.extend_from_slice(b"{\"name\":");
        encode::write_json_string(&mut params, tool);
        params.extend_from_slice(b",\"arguments\":{\"text\":\"hello\"}}");
        let params = String::from_utf8(params).expect("ASCII JSON");
        RequestTemplate::new("tools/call", Some(&params))
    }
}

/// Why a request failed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Connect, send or read failed.
    Io(String),
    /// Non-200 HTTP status.
    Status(u16, String),
    /// JSON-RPC error response.
    Rpc(String),
    /// Reply not understood (bad JSON, wrong id, missing response).
    Protocol(String),
    /// No reply within `--timeout`.
    Timeout,
}

impl Failure {
    /// A short, stable class for counting.
    pub fn class(&self) -> String {
        match self {
            Failure::Io(_) => "io".into(),
            Failure::Status(s, _) => format!("http_{s}"),
            Failure::Rpc(_) => "jsonrpc_error".into(),
            Failure::Protocol(_) => "protocol".into(),
            Failure::Timeout => "timeout".into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Io(e) => write!(f, "I/O: {e}"),
            Failure::Status(s, body) => write!(f, "HTTP {s}: {body}"),
            Failure::Rpc(e) => write!(f, "JSON-RPC error: {e}"),
            Failure::Protocol(e) => write!(f, "protocol: {e}"),
            Failure::Timeout => write!(f, "timed out"),
        }
    }
}

fn http(e: HttpError) -> Failure {
    Failure::Io(e.to_string())
}

fn io(e: io::Error) -> Failure {
    Failure::Io(e.to_string())
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.trim().to_string()
}

/// The `initialize` params the load generator sends.
pub fn initialize_params() -> String {
    format!(
        "{{\"protocolVersion\":\"{CLIENT_VERSION}\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"ringgate-loadtest\",\"version\":\"{}\"}}}}",
        env!("CARGO_PKG_VERSION")
    )
}

/// How an `McpConn` reaches its server.
enum Wire {
    /// A keep-alive HTTP/1.1 connection with its own session.
    Http(ClientConn<TcpStream>),
    /// A slot on a stdio child's (shared) session.
    Stdio(Rc<StdioLink>),
}

/// One MCP session on one connection.
pub struct McpConn {
    wire: Wire,
    target: Rc<Target>,
    session: Option<Bytes>,
    version: Bytes,
    next_id: u64,
    /// Routing headers of the request being sent (modern era), from its template.
    routing: Option<(String, String)>,
}

impl McpConn {
    /// Connects and performs the MCP handshake (a stdio target's session is already open: this
    /// only takes a slot on it).
    ///
    /// Nothing is read or written on the connection afterwards until the next `call`: an idle
    /// `McpConn` has no I/O in flight, so holding thousands costs the server only their sessions.
    pub async fn open(target: Rc<Target>) -> Result<McpConn, Failure> {
        let version = Bytes::from_static(CLIENT_VERSION.as_bytes());
        if let Some(link) = &target.stdio {
            if !link.is_open() {
                return Err(Failure::Io("the stdio server is gone".into()));
            }
            return Ok(McpConn {
                wire: Wire::Stdio(link.clone()),
                target,
                session: None,
                version,
                next_id: 0,
                routing: None,
            });
        }
        let conn = connect(target.addr)
            .await
            .map_err(|e| Failure::Io(format!("connect {}: {e}", target.addr)))?;
        let mut me = McpConn {
            wire: Wire::Http(conn),
            target,
            session: None,
            version,
            next_id: 1,
            routing: None,
        };
        if me.target.modern {
            // The modern era has no handshake: every request carries its own version.
            me.version = Bytes::from_static(MODERN_VERSION.as_bytes());
            return Ok(me);
        }
        let params = initialize_params();
        let init = encode::request(b"0", "initialize", Some(params.as_bytes()));
        let (reply, session) = me.exchange(&[init], Some(b"0")).await?;
        let reply = reply.ok_or_else(|| Failure::Protocol("initialize got 202".into()))?;
        let v: serde_json::Value = serde_json::from_slice(&reply)
            .map_err(|e| Failure::Protocol(format!("initialize reply: {e}")))?;
        if let Some(version) = v["result"]["protocolVersion"].as_str() {
            me.version = Bytes::copy_from_slice(version.as_bytes());
        }
        me.session = session;
        let note = encode::notification("notifications/initialized", None);
        me.exchange(&[note], None).await?;
        Ok(me)
    }

    /// Whether another request may be sent (else reopen).
    pub fn is_reusable(&self) -> bool {
        match &self.wire {
            Wire::Http(conn) => conn.is_reusable(),
            Wire::Stdio(link) => link.is_open(),
        }
    }

    /// Sends one request from `tpl` with a fresh id; returns the reply's size in bytes.
    pub async fn call(&mut self, tpl: &RequestTemplate) -> Result<usize, Failure> {
        let id = match &self.wire {
            Wire::Stdio(link) => link.next_id(),
            Wire::Http(_) => {
                self.next_id += 1;
                self.next_id - 1
            }
        };
        let id_text = format_u64_id(id);
        let id_bytes = Bytes::copy_from_slice(id_text.as_bytes());
        let body = [tpl.prefix.clone(), id_bytes.clone(), tpl.suffix.clone()];
        if let Wire::Stdio(link) = &self.wire {
            let reply = link.request(&body, id).await?;
            check_response(&reply, &id_bytes)?;
            return Ok(reply.len());
        }
        self.routing = tpl.modern.clone();
        let (reply, _) = self.exchange(&body, Some(&id_bytes)).await?;
        reply
            .map(|r| r.len())
            .ok_or_else(|| Failure::Protocol("202 Accepted for a request".into()))
    }

    /// POSTs `body`; returns the JSON-RPC response (checked against `expect_id`) or `None` for
    /// 202, plus the `mcp-session-id` header if the reply had one.
    async fn exchange(
        &mut self,
        body: &[Bytes],
        expect_id: Option<&[u8]>,
    ) -> Result<(Option<Bytes>, Option<Bytes>), Failure> {
        let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(4);
        headers.push(("content-type", b"application/json"));
        headers.push(("accept", ACCEPT));
        if let Some(s) = &self.session {
            headers.push(("mcp-session-id", s));
            headers.push(("mcp-protocol-version", &self.version));
        }
        if let Some((method, name)) = &self.routing {
            headers.push(("mcp-protocol-version", &self.version));
            headers.push(("mcp-method", method.as_bytes()));
            headers.push(("mcp-name", name.as_bytes()));
        }
        let t = &self.target;
        let Wire::Http(conn) = &mut self.wire else {
            return Err(Failure::Protocol("an HTTP exchange on a stdio slot".into()));
        };
        conn.send_request("POST", &t.path, &t.authority, &headers, body)
            .await
            .map_err(io)?;
        let head = conn.read_response_head().await.map_err(http)?;
        let session = head.header("mcp-session-id").map(Bytes::copy_from_slice);
        if head.status == 202 {
            conn.read_body(&head, MAX_REPLY).await.map_err(http)?;
            return Ok((None, session));
        }
        if head.status != 200 {
            let body = conn.read_body(&head, 64 * 1024).await.unwrap_or_default();
            return Err(Failure::Status(head.status, snippet(&body)));
        }
        let sse = head
            .header("content-type")
            .is_some_and(|c| c.len() >= 17 && c[..17].eq_ignore_ascii_case(b"text/event-stream"));
        let msg = if sse {
            self.read_sse(&head, expect_id).await?
        } else {
            let body = conn.read_body(&head, MAX_REPLY).await.map_err(http)?;
            if body.is_empty() && expect_id.is_none() {
                return Ok((None, session));
            }
            body
        };
        if let Some(id) = expect_id {
            check_response(&msg, id)?;
        }
        Ok((Some(msg), session))
    }

    /// Reads an SSE reply to its end; returns the response event.
    async fn read_sse(
        &mut self,
        head: &ResponseHead,
        expect_id: Option<&[u8]>,
    ) -> Result<Bytes, Failure> {
        let Wire::Http(conn) = &mut self.wire else {
            return Err(Failure::Protocol("SSE on a stdio slot".into()));
        };
        let mut state = conn.body_state(head);
        let mut decoder = SseDecoder::new(MAX_REPLY);
        let mut response: Option<Bytes> = None;
        while let Some(chunk) = conn.read_body_chunk(&mut state).await.map_err(http)? {
            decoder
                .feed(&chunk)
                .map_err(|e| Failure::Protocol(format!("SSE: {e}")))?;
            while let Some(ev) = decoder.next_event() {
                if response.is_some() || ev.data.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if let Ok(env) = wire::parse(&ev.data) {
                    let is_reply = matches!(env.kind, Kind::Response | Kind::Error);
                    if is_reply && (expect_id.is_none() || env.id_raw(&ev.data) == expect_id) {
                        response = Some(ev.data);
                    }
                }
            }
        }
        response.ok_or_else(|| Failure::Protocol("SSE stream ended without the response".into()))
    }
}

/// A success is a JSON-RPC response with our id and a `result`.
pub fn check_response(msg: &[u8], id: &[u8]) -> Result<(), Failure> {
    let env = wire::parse(msg)
        .map_err(|e| Failure::Protocol(format!("bad reply JSON ({e:?}): {}", snippet(msg))))?;
    match env.kind {
        Kind::Response if env.id_raw(msg) == Some(id) => Ok(()),
        Kind::Response => Err(Failure::Protocol(format!(
            "reply id {:?} is not the request's {:?}",
            env.id_raw(msg).map(String::from_utf8_lossy),
            String::from_utf8_lossy(id)
        ))),
        Kind::Error => Err(Failure::Rpc(snippet(
            env.error.map(|s| s.get(msg)).unwrap_or(msg),
        ))),
        _ => Err(Failure::Protocol(format!(
            "reply is not a response: {}",
            snippet(msg)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::new("g", "http://127.0.0.1:8787/mcp").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8787".parse().unwrap());
        assert_eq!(t.authority, "127.0.0.1:8787");
        assert_eq!(t.path, "/mcp");
        let t = Target::new("g", "http://localhost:9/x/y").unwrap();
        assert_eq!(t.addr.port(), 9);
        assert_eq!(t.path, "/x/y");
        assert!(Target::new("g", "https://a:1/").is_err());
    }

    #[test]
    fn template_splices_ids() {
        let tpl = RequestTemplate::tools_call("bench__echo");
        let body = [
            tpl.prefix.clone(),
            Bytes::from_static(b"12345"),
            tpl.suffix.clone(),
        ]
        .concat();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["id"], 12345);
        assert_eq!(v["method"], "tools/call");
        assert_eq!(v["params"]["name"], "bench__echo");
    }

    #[test]
    fn responses_are_checked() {
        assert!(check_response(br#"{"jsonrpc":"2.0","id":7,"result":{}}"#, b"7").is_ok());
        assert!(matches!(
            check_response(br#"{"jsonrpc":"2.0","id":8,"result":{}}"#, b"7"),
            Err(Failure::Protocol(_))
        ));
        assert!(matches!(
            check_response(
                br#"{"jsonrpc":"2.0","id":7,"error":{"code":-1,"message":"x"}}"#,
                b"7"
            ),
            Err(Failure::Rpc(_))
        ));
        assert!(check_response(b"nope", b"7").is_err());
    }
}
