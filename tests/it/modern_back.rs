//! The back side in the 2026-07-28 era: ringgate as a client of modern downstreams.
//!
//! Downstreams: a small modern-only Streamable HTTP server defined here ([`Modern`]: records every
//! request's headers, serves `subscriptions/listen` as an SSE stream the test can push on, and
//! answers lists with configurable cache hints), and the demo over stdio in both eras
//! (`demo-server --transport stdio-modern` refuses `initialize` and any request without the era's
//! `_meta`, so a call that works proves the gateway spoke modern to it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;

const V: &str = "2026-07-28";
const WAIT: Duration = Duration::from_secs(10);

/// One request the modern server received.
#[derive(Debug, Clone)]
struct Seen {
    headers: Vec<(String, String)>,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// State shared by the modern server's connection threads.
struct State {
    ttl_ms: u64,
    scope: &'static str,
    /// How many extra tools exist (changing it is a list change).
    extra: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    /// Open listen streams (for pushing notifications).
    listeners: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

/// A modern-only (2026-07-28) Streamable HTTP MCP server on a loopback port.
struct Modern {
    addr: SocketAddr,
    state: Arc<State>,
}

const LOCATE: &str = r#"{"name":"locate","description":"Finds a place.","inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"count":{"type":"integer","x-mcp-header":"Count"},"city":{"type":"string","x-mcp-header":"City"},"note":{"type":"string"}},"required":["region"]}}"#;

impl Modern {
    fn start(ttl_ms: u64, scope: &'static str) -> Modern {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            ttl_ms,
            scope,
            extra: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            listeners: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve_conn(&st, conn));
            }
        });
        Modern { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Requests received with this JSON-RPC method.
    fn seen(&self, method: &str) -> Vec<Seen> {
        let seen = self.state.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.body["method"] == method)
            .cloned()
            .collect()
    }

    /// Sends a notification on every open listen stream.
    fn push(&self, note: &Value) {
        let event = format!("data: {note}\n\n");
        let chunk = format!("{:x}\r\n{event}\r\n", event.len());
        let mut ls = self.state.listeners.lock().unwrap();
        ls.retain_mut(|s| s.write_all(chunk.as_bytes()).is_ok());
    }

    /// Adds a tool and announces the change on the listen streams.
    fn change_tools(&self) {
        self.state.extra.fetch_add(1, Ordering::SeqCst);
        self.push(&json!({"jsonrpc":"2.0","method":"notifications/tools/list_changed"}));
    }
}

impl Drop for Modern {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
        for s in self.state.listeners.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A request as read: HTTP method, headers (names lowercased), body.
type Request = (String, Vec<(String, String)>, Vec<u8>);

/// Reads one request (head + content-length body); `None` at EOF.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let method = line.split(' ').next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((method, headers, body))
}

fn write_json(s: &mut TcpStream, status: u16, body: &Value) -> bool {
    let text = body.to_string();
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        text.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(text.as_bytes()))
        .is_ok()
}

fn serve_conn(st: &State, conn: TcpStream) {
    let mut out = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    while let Some((method, headers, body)) = read_request(&mut reader) {
        if st.stop.load(Ordering::Relaxed) {
            return;
        }
        if method != "POST" {
            if out
                .write_all(b"HTTP/1.1 405 X\r\ncontent-length: 0\r\n\r\n")
                .is_err()
            {
                return;
            }
            continue;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        st.seen.lock().unwrap().push(Seen {
            headers: headers.clone(),
            body: body.clone(),
        });
        let Some(id) = body.get("id").cloned() else {
            let _ = out.write_all(b"HTTP/1.1 202 X\r\ncontent-length: 0\r\n\r\n");
            continue;
        };
        let has_meta = body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] == V;
        let m = body["method"].as_str().unwrap_or("");
        if m == "subscriptions/listen" && has_meta {
            return listen(st, out, &id);
        }
        let (status, reply) = match answer(st, m, &body, has_meta) {
            Ok(result) => (200, json!({"jsonrpc":"2.0","id":id,"result":result})),
            Err((status, code, msg)) => (
                status,
                json!({"jsonrpc":"2.0","id":id,"error":{"code":code,"message":msg}}),
            ),
        };
        if !write_json(&mut out, status, &reply) {
            return;
        }
    }
}

/// The result of one modern request, or (HTTP status, code, message).
fn answer(st: &State, m: &str, body: &Value, has_meta: bool) -> Result<Value, (u16, i64, String)> {
    if !has_meta {
        return Err((400, -32602, "missing _meta protocolVersion".into()));
    }
    let hint = |mut v: Value| {
        v["resultType"] = json!("complete");
        v["ttlMs"] = json!(st.ttl_ms);
        v["cacheScope"] = json!(st.scope);
        v
    };
    match m {
        "server/discover" => Ok(hint(json!({
            "supportedVersions": [V],
            "capabilities": {"tools": {"listChanged": true}, "resources": {"subscribe": true, "listChanged": true}},
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "modern-fixture", "version": "1"}}
        }))),
        "tools/list" => {
            let mut tools = vec![serde_json::from_str::<Value>(LOCATE).unwrap()];
            for i in 0..st.extra.load(Ordering::SeqCst) {
                tools
                    .push(json!({"name": format!("extra_{i}"), "inputSchema": {"type": "object"}}));
            }
            Ok(hint(json!({ "tools": tools })))
        }
        "resources/list" => Ok(hint(
            json!({"resources": [{"uri": "fixture://doc", "name": "doc"}]}),
        )),
        "resources/templates/list" => Ok(hint(json!({"resourceTemplates": []}))),
        "resources/read" => Ok(json!({
            "contents": [{"uri": "fixture://doc", "text": "hello"}],
            "resultType": "complete", "ttlMs": 4321, "cacheScope": "public"
        })),
        "tools/call" => Ok(json!({
            "content": [{"type": "text", "text": format!("called {}", body["params"]["name"])}],
            "resultType": "complete"
        })),
        _ => Err((404, -32601, format!("Method not found: {m}"))),
    }
}

/// Answers a listen request with an SSE stream: the acknowledgement now, pushes later.
fn listen(st: &State, mut out: TcpStream, id: &Value) {
    let head =
        "HTTP/1.1 200 X\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    if out.write_all(head.as_bytes()).is_err() {
        return;
    }
    let ack = json!({"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged",
        "params":{"notifications":{"toolsListChanged":true},
        "_meta":{"io.modelcontextprotocol/subscriptionId":id}}});
    let event = format!("data: {ack}\n\n");
    let chunk = format!("{:x}\r\n{event}\r\n", event.len());
    if out.write_all(chunk.as_bytes()).is_ok() {
        st.listeners.lock().unwrap().push(out);
    }
}

fn gateway(servers: &[(&str, String)]) -> Env {
    let mut toml = String::from(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n",
    );
    for (name, url) in servers {
        toml.push_str(&format!(
            "[[server]]\nname = \"{name}\"\ntransport = \"http\"\nurl = \"{url}\"\n"
        ));
    }
    Env::with_config(vec![], &toml)
}

fn server_era(e: &Env, name: &str) -> Value {
    let v: Value = serde_json::from_str(&get(e.admin(), "/v1/servers").body).unwrap();
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .map(|s| s["era"].clone())
        .unwrap_or(Value::Null)
}

/// A modern client's request (no session): `_meta` in the body, the routing headers.
fn modern(e: &Env, id: u32, method: &str, name: Option<&str>, params: &str) -> Value {
    let meta = format!(
        r#""_meta":{{"io.modelcontextprotocol/protocolVersion":"{V}","io.modelcontextprotocol/clientInfo":{{"name":"it","version":"1"}},"io.modelcontextprotocol/clientCapabilities":{{}}}}"#
    );
    let sep = if params.is_empty() { "" } else { "," };
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{{{params}{sep}{meta}}}}}"#
    );
    let mut headers = vec![("mcp-protocol-version", V), ("mcp-method", method)];
    headers.extend(name.map(|n| ("mcp-name", n)));
    let r = post(e.addr(), &headers, &body);
    assert_eq!(r.status, 200, "{method}: {}", r.body);
    r.json()
}

#[test]
fn x_mcp_header_arguments_reach_a_modern_server_as_mcp_param_headers() {
    let m = Modern::start(1000, "public");
    let e = gateway(&[("geo", m.url())]);
    assert_eq!(server_era(&e, "geo"), "modern");
    let s = e.session("2025-11-25");
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"geo__locate","arguments":{"region":"eu-west1","count":3,"city":"Zürich","note":"n"}}}"#);
    assert_eq!(
        r.json()["result"]["content"][0]["text"],
        "called \"locate\""
    );
    let calls = m.seen("tools/call");
    let call = calls.last().expect("the call reached the server");
    assert_eq!(call.header("mcp-method"), Some("tools/call"));
    assert_eq!(call.header("mcp-name"), Some("locate"));
    assert_eq!(call.header("mcp-param-region"), Some("eu-west1"));
    assert_eq!(call.header("mcp-param-count"), Some("3"));
    assert_eq!(
        call.header("mcp-param-city"),
        Some("=?base64?WsO8cmljaA==?=")
    );
    // Only annotated properties are mirrored; absent arguments send no header.
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"geo__locate","arguments":{"region":"us-east1"}}}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let calls = m.seen("tools/call");
    let call = calls.last().unwrap();
    assert_eq!(call.header("mcp-param-region"), Some("us-east1"));
    assert_eq!(call.header("mcp-param-count"), None);
    assert_eq!(call.header("mcp-param-city"), None);
    assert!(!call.headers.iter().any(|(k, _)| k == "mcp-param-note"));
}

#[test]
fn stdio_servers_are_probed_modern_ones_spoken_to_in_their_era() {
    let exe = env!("CARGO_BIN_EXE_ringgate");
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n\
         [[server]]\nname = \"new\"\ntransport = \"stdio\"\ncommand = \"{exe}\"\nargs = [\"demo-server\", \"--transport\", \"stdio-modern\", \"--name\", \"new\"]\n\
         [[server]]\nname = \"old\"\ntransport = \"stdio\"\ncommand = \"{exe}\"\nargs = [\"demo-server\", \"--transport\", \"stdio\", \"--name\", \"old\"]\n"
    );
    let e = Env::with_config(vec![], &toml);
    assert_eq!(server_era(&e, "new"), "modern");
    assert_eq!(server_era(&e, "old"), "legacy");
    let s = e.session("2025-11-25");
    for name in ["new__add", "old__add"] {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}","arguments":{{"a":2,"b":40}}}}}}"#
        );
        let v = e.call(&s, &body).json();
        assert_eq!(v["result"]["structuredContent"]["sum"], 42.0, "{name}: {v}");
    }
    // The modern child tells of list changes only on a listen stream: the gateway holds one, so
    // the change reaches a client.
    let mut stream = Stream::open(e.addr(), &s);
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"new__set_extra_tools","arguments":{"count":1}}}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let note = stream.next_data(WAIT).expect("list_changed");
    assert!(note.contains("notifications/tools/list_changed"), "{note}");
    let listed = tool_names(&e, &s);
    assert!(listed.iter().any(|t| t == "new__tool_000"), "{listed:?}");
}

#[test]
fn a_modern_server_s_listen_stream_brings_list_changes_and_resource_updates() {
    let m = Modern::start(1000, "public");
    let e = gateway(&[("geo", m.url())]);
    assert!(
        eventually(WAIT, || !m.state.listeners.lock().unwrap().is_empty()),
        "the gateway opened a listen stream"
    );
    let first = m.seen("subscriptions/listen");
    assert_eq!(first.len(), 1);
    assert_eq!(
        first[0].body["params"]["notifications"]["toolsListChanged"],
        true
    );
    let s = e.session("2025-11-25");
    let mut stream = Stream::open(e.addr(), &s);
    m.change_tools();
    let note = stream.next_data(WAIT).expect("list_changed");
    assert!(note.contains("notifications/tools/list_changed"), "{note}");
    let listed = e
        .call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .json();
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"geo__extra_0"), "{names:?}");

    // A subscription is carried by a new listen stream (a modern server has no
    // resources/subscribe), and its updates reach the subscribed session.
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"fixture://doc"}}"#);
    assert!(r.json()["result"].is_object(), "{}", r.body);
    assert!(
        eventually(WAIT, || m.seen("subscriptions/listen").iter().any(|l| {
            l.body["params"]["notifications"]["resourceSubscriptions"] == json!(["fixture://doc"])
        })),
        "a listen stream with the subscribed URI"
    );
    assert!(m.seen("resources/subscribe").is_empty());
    // The fixture records the request before it registers the stream: push until one arrives.
    let update = json!({"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"fixture://doc"}});
    let mut note = None;
    assert!(
        eventually(WAIT, || {
            m.push(&update);
            note = stream
                .next_data(Duration::from_millis(500))
                .filter(|n| n.contains("notifications/resources/updated"));
            note.is_some()
        }),
        "resources/updated"
    );
    let note = note.unwrap_or_default();
    assert!(note.contains("notifications/resources/updated"), "{note}");
    assert!(note.contains("fixture://doc"), "{note}");
}

#[test]
fn merged_lists_take_the_least_ttl_and_private_if_any_source_is() {
    let (slow, fast) = (
        Modern::start(60_000, "public"),
        Modern::start(30_000, "public"),
    );
    let e = gateway(&[("a", slow.url()), ("b", fast.url())]);
    let v = modern(&e, 1, "tools/list", None, "");
    assert_eq!(
        (&v["result"]["ttlMs"], &v["result"]["cacheScope"]),
        (&json!(30_000), &json!("public")),
        "{v}"
    );
    // resources/read passes the server's own hints through.
    let v = modern(
        &e,
        2,
        "resources/read",
        Some("fixture://doc"),
        r#""uri":"fixture://doc""#,
    );
    assert_eq!(
        (&v["result"]["ttlMs"], &v["result"]["cacheScope"]),
        (&json!(4321), &json!("public")),
        "{v}"
    );
    drop(e);

    let private = Modern::start(45_000, "private");
    let e = gateway(&[("a", slow.url()), ("c", private.url())]);
    let v = modern(&e, 3, "tools/list", None, "");
    assert_eq!(
        (&v["result"]["ttlMs"], &v["result"]["cacheScope"]),
        (&json!(45_000), &json!("private")),
        "{v}"
    );
}
