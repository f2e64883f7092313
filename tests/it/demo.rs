//! The built-in demo. `ringgate` with no arguments fronts three demo servers over three transports
//! (Streamable HTTP, legacy HTTP+SSE, stdio) as one catalog: started here from the very config the
//! binary runs (`demo_config_toml`), on port 0. And the demo server's own legacy HTTP+SSE transport
//! (`GET /sse` + `POST /messages`, beside `/mcp` on one listener), checked on the wire.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::*;
use crate::sse::SseClient;
use ringgate::demo::{self, DemoOptions};

/// The no-argument demo's gateway and servers, with its two listen addresses moved to port 0.
fn no_argument_demo() -> Env {
    let a = demo::spawn(DemoOptions::new("demo")).expect("demo server");
    let b = demo::spawn(DemoOptions::new("notes")).expect("notes server");
    let toml = demo::demo_config_toml(&a.url(), &b.sse_url(), env!("CARGO_BIN_EXE_ringgate"));
    let mut moved = toml.clone();
    for (key, addr) in [
        ("listen", demo::DEMO_LISTEN),
        ("admin_listen", demo::DEMO_ADMIN_LISTEN),
    ] {
        let line = format!("\n{key} = \"{addr}\"\n");
        assert!(
            moved.contains(&line),
            "{key} line in the demo config:\n{toml}"
        );
        moved = moved.replace(&line, &format!("\n{key} = \"127.0.0.1:0\"\n"));
    }
    Env::with_config(vec![a, b], &moved)
}

fn call_text(e: &Env, s: &str, tool: &str, args: &str) -> String {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
    );
    let v = e.call(s, &body).json();
    v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{tool}: {v}"))
        .to_string()
}

#[test]
fn the_no_argument_demo_serves_one_catalog_from_three_transports() {
    let e = no_argument_demo();
    let s = e.session("2025-11-25");
    let prefixes = ["demo__", "notes__", "local__"];
    let mut names = Vec::new();
    let all_up = eventually(Duration::from_secs(15), || {
        names = tool_names(&e, &s);
        prefixes
            .iter()
            .all(|p| names.iter().any(|n| n.starts_with(p)))
    });
    assert!(all_up, "every server's tools in one catalog: {names:?}");
    // The same demo server behind each transport: the same tools under each prefix.
    let by_prefix: Vec<BTreeSet<&str>> = prefixes
        .iter()
        .map(|p| names.iter().filter_map(|n| n.strip_prefix(p)).collect())
        .collect();
    assert!(by_prefix[0].contains("echo"), "{names:?}");
    assert_eq!(by_prefix[0], by_prefix[1], "Streamable HTTP vs HTTP+SSE");
    assert_eq!(by_prefix[0], by_prefix[2], "Streamable HTTP vs stdio");

    assert_eq!(call_text(&e, &s, "demo__echo", r#"{"message":"hi"}"#), "hi");
    assert_eq!(call_text(&e, &s, "notes__add", r#"{"a":2,"b":40}"#), "42");
    assert_eq!(
        call_text(&e, &s, "local__echo", r#"{"message":"child"}"#),
        "child"
    );

    let servers: serde_json::Value =
        serde_json::from_str(&get(e.admin(), "/v1/servers").body).expect("/v1/servers JSON");
    let transports: BTreeMap<&str, &str> = servers["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .filter_map(|s| Some((s["name"].as_str()?, s["transport"].as_str()?)))
        .collect();
    let want = BTreeMap::from([
        ("demo", "streamable-http"),
        ("notes", "http+sse"),
        ("local", "stdio"),
    ]);
    assert_eq!(transports, want, "{servers}");
}

#[test]
fn progress_from_the_demo_over_http_sse_reaches_a_gateway_client() {
    let e = no_argument_demo();
    let s = e.session("2025-11-25");
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"notes__sleep","arguments":{"ms":20,"steps":2},"_meta":{"progressToken":"tok"}}}"#);
    let events: Vec<serde_json::Value> = r
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).expect("event JSON"))
        .collect();
    assert_eq!(events.len(), 3, "{}", r.body);
    for (i, p) in events[..2].iter().enumerate() {
        assert_eq!(p["method"], "notifications/progress", "{p}");
        assert_eq!(p["params"]["progressToken"], "tok", "{p}");
        assert_eq!(p["params"]["progress"], i as u64 + 1, "{p}");
    }
    assert_eq!(events[2]["id"], 9, "{}", r.body);
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{"sampling":{}},"clientInfo":{"name":"t","version":"1"}}}"#;

/// An HTTP+SSE session with the demo server at `addr`, initialized.
fn demo_sse_session(addr: std::net::SocketAddr) -> SseClient {
    let mut c = SseClient::open(addr);
    assert_eq!(c.post(INIT), 202);
    let v = c.next();
    assert_eq!(v["id"], 1, "{v}");
    assert_eq!(v["result"]["protocolVersion"], "2024-11-05", "{v}");
    assert_eq!(
        c.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
        202
    );
    c
}

#[test]
fn the_demo_sse_stream_opens_with_a_relative_endpoint_event() {
    let d = demo::spawn(DemoOptions::new("d")).expect("demo server");
    let mut s = TcpStream::connect(d.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /sse HTTP/1.1\r\nhost: {}\r\naccept: text/event-stream\r\n\r\n",
        d.addr
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let mut head = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
        head.push(line.trim_end().to_ascii_lowercase());
        line.clear();
    }
    assert!(head[0].contains(" 200 "), "{head:?}");
    assert!(
        head.iter()
            .any(|h| h.starts_with("content-type: text/event-stream")),
        "{head:?}"
    );
    // Chunked: skip chunk-size lines, keep the first event's field lines.
    let mut fields = Vec::new();
    while fields.len() < 2 {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "stream closed");
        let l = line.trim_end();
        if l.starts_with("event:") || l.starts_with("data:") {
            fields.push(l.to_string());
        }
    }
    assert_eq!(fields[0], "event: endpoint");
    let endpoint = fields[1].strip_prefix("data: ").expect("data line");
    let id = endpoint
        .strip_prefix("/messages?sessionId=")
        .unwrap_or_else(|| panic!("{endpoint}"));
    assert!(id.len() >= 16, "{endpoint}");
    // The announced endpoint works while the stream is open.
    let r = request(d.addr, "POST", endpoint, &[], INIT.as_bytes());
    assert_eq!(r.status, 202, "{}", r.body);
}

#[test]
fn the_demo_over_sse_answers_on_the_stream_with_the_same_catalog_as_over_mcp() {
    let d = demo::spawn(DemoOptions::new("d")).expect("demo server");
    let mut c = demo_sse_session(d.addr);
    assert_eq!(
        c.post(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#),
        202
    );
    let over_sse = c.next();
    assert_eq!(over_sse["id"], 2, "{over_sse}");
    // The same list over Streamable HTTP from the same listener.
    let init = post(d.addr, &[], INIT);
    let sid = init.header("mcp-session-id").expect("session").to_string();
    let over_mcp = post(
        d.addr,
        &[("mcp-session-id", &sid)],
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    )
    .json();
    assert_eq!(over_sse["result"], over_mcp["result"]);
    for (id, method) in [(3, "prompts/list"), (4, "resources/list")] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}"}}"#);
        assert_eq!(c.post(&body), 202);
        let v = c.next();
        assert_eq!(v["id"], id, "{v}");
        assert!(v["result"].is_object(), "{v}");
    }
    assert_eq!(c.post(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}"#), 202);
    assert_eq!(c.next()["result"]["structuredContent"]["sum"], 3.0);
}

#[test]
fn the_demo_refuses_unknown_sessions_and_bad_json_on_its_sse_endpoint() {
    let d = demo::spawn(DemoOptions::new("d")).expect("demo server");
    let ping = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    for path in ["/messages?sessionId=nope", "/messages", "/messages?x=1"] {
        let r = request(d.addr, "POST", path, &[], ping);
        assert_eq!(r.status, 404, "{path}: {}", r.body);
    }
    let c = demo_sse_session(d.addr);
    assert_eq!(c.post("{oops"), 400);
    assert_eq!(c.post(r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#), 202);
}

#[test]
fn progress_and_list_changed_go_out_on_the_demo_sse_stream() {
    let d = demo::spawn(DemoOptions::new("d")).expect("demo server");
    let mut c = demo_sse_session(d.addr);
    assert_eq!(c.post(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":20,"steps":2},"_meta":{"progressToken":"p7"}}}"#), 202);
    for step in 1..=2 {
        let p = c.next();
        assert_eq!(p["method"], "notifications/progress", "{p}");
        assert_eq!(p["params"]["progressToken"], "p7", "{p}");
        assert_eq!(p["params"]["progress"], step, "{p}");
    }
    assert_eq!(c.next()["id"], 7);
    assert_eq!(c.post(r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"set_extra_tools","arguments":{"count":2}}}"#), 202);
    let (mut changed, mut answered) = (false, false);
    for _ in 0..2 {
        let v = c.next();
        changed |= v["method"] == "notifications/tools/list_changed";
        answered |= v["id"] == 8;
    }
    assert!(
        changed && answered,
        "list_changed and the reply on the stream"
    );
}

#[test]
fn the_demo_sample_tool_asks_on_the_sse_stream_and_takes_the_answer_by_post() {
    let d = demo::spawn(DemoOptions::new("d")).expect("demo server");
    let mut c = demo_sse_session(d.addr);
    assert_eq!(c.post(r#"{"jsonrpc":"2.0","id":"s","method":"tools/call","params":{"name":"sample","arguments":{}}}"#), 202);
    let ask = c.next();
    assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
    let answer = serde_json::json!({"jsonrpc":"2.0","id":ask["id"],"result":{"role":"assistant","content":{"type":"text","text":"hello"},"model":"m"}});
    assert_eq!(c.post(&answer.to_string()), 202);
    let done = c.next();
    assert_eq!(done["id"], "s", "{done}");
    assert_eq!(done["result"]["content"][0]["text"], "sampled: hello");
}

#[test]
fn closing_the_demo_sse_stream_ends_its_session() {
    let d = demo::spawn(DemoOptions::new("d")).expect("demo server");
    let c = demo_sse_session(d.addr);
    let endpoint = c.endpoint.clone();
    drop(c);
    // The server notices on its next write to the stream (each ping's reply is one).
    let ping = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let ended = eventually(Duration::from_secs(10), || {
        request(d.addr, "POST", &endpoint, &[], ping).status == 404
    });
    assert!(ended, "the session outlived its stream");
}
