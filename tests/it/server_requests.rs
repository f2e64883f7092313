//! Requests a downstream sends to clients: its cancellation of them reaches the client with the id
//! the client saw, and on a multiplexed (stdio) server they are attributed to the one session with
//! calls in flight, or refused when calls of several sessions make it ambiguous.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use ringgate::demo::DemoOptions;

fn sampling_session(e: &Env) -> String {
    let body = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{}},"clientInfo":{"name":"t","version":"1"}}}"#;
    post(e.addr(), &[], body)
        .header("mcp-session-id")
        .expect("session id")
        .to_string()
}

/// POSTs a call and returns the reply unread (status line included: a JSON reply's head comes only
/// with its result), for [`reply_of`].
fn start_call(addr: SocketAddr, session: &str, body: &str) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {session}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    BufReader::new(s)
}

/// POSTs a call and returns the open reply, to read as SSE events.
fn open_call(addr: SocketAddr, session: &str, body: &str) -> BufReader<TcpStream> {
    let mut r = start_call(addr, session, body);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    assert!(status.contains(" 200 "), "{status}");
    r
}

fn next_event(r: &mut BufReader<TcpStream>) -> Value {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "stream ended");
        if let Some(d) = line.trim_end().strip_prefix("data: ") {
            return serde_json::from_str(d).unwrap();
        }
    }
}

/// The client's answer to the sampling request it was sent as `token`.
fn answer_sampling(e: &Env, session: &str, token: &str) {
    let answer = format!(
        r#"{{"jsonrpc":"2.0","id":"{token}","result":{{"role":"assistant","content":{{"type":"text","text":"hi"}},"model":"m"}}}}"#
    );
    assert_eq!(e.call(session, &answer).status, 202);
}

/// The text of a `sample` call's result.
fn sampled(result: &Value) -> &str {
    result["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
}

fn sample(tool: &str, args: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
    )
}

/// The server asks, gets no answer, cancels its request: the client hears the cancellation for
/// the sealed id it was given, then the call's result.
fn cancellation_reaches_the_client(e: &Env, tool: &str) {
    let s = sampling_session(e);
    let mut reply = open_call(e.addr(), &s, &sample(tool, r#"{"cancel_after_ms":200}"#));
    let ask = next_event(&mut reply);
    assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
    let token = ask["id"].as_str().expect("a sealed id").to_string();
    assert!(token.starts_with("k1."), "{token}");
    let note = next_event(&mut reply);
    assert_eq!(note["method"], "notifications/cancelled", "{note}");
    assert_eq!(note["params"]["requestId"], token.as_str(), "{note}");
    let done = next_event(&mut reply);
    assert_eq!(done["id"], "c1", "{done}");
}

#[test]
fn a_servers_cancellation_of_its_request_reaches_the_client_over_http() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    cancellation_reaches_the_client(&e, "alpha__sample");
}

#[test]
fn a_servers_cancellation_of_its_request_reaches_the_client_over_stdio() {
    let e = Env::stdio_kid();
    cancellation_reaches_the_client(&e, "kid__sample");
}

/// A call of `tool` (a demo's `sleep`) that is surely in flight (its first progress was read).
fn sleeping(e: &Env, session: &str, tool: &str) -> BufReader<TcpStream> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"z","method":"tools/call","params":{{"name":"{tool}","arguments":{{"ms":3000,"steps":30}},"_meta":{{"progressToken":"p"}}}}}}"#
    );
    let mut r = open_call(e.addr(), session, &body);
    let first = next_event(&mut r);
    assert_eq!(first["method"], "notifications/progress", "{first}");
    r
}

#[test]
fn on_stdio_a_server_request_reaches_the_one_session_with_calls_in_flight() {
    let e = Env::stdio_kid();
    let s = sampling_session(&e);
    let _busy = sleeping(&e, &s, "kid__sleep");
    let mut reply = open_call(e.addr(), &s, &sample("kid__sample", "{}"));
    let ask = next_event(&mut reply);
    assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
    let token = ask["id"].as_str().unwrap();
    answer_sampling(&e, &s, token);
    let done = next_event(&mut reply);
    assert_eq!(sampled(&done), "sampled: hi", "{done}");
}

#[test]
fn on_stdio_a_server_request_is_refused_when_several_sessions_have_calls_in_flight() {
    let e = Env::stdio_kid();
    let (busy, asking) = (sampling_session(&e), sampling_session(&e));
    let mut busy_reply = sleeping(&e, &busy, "kid__sleep");
    let v = e.call(&asking, &sample("kid__sample", "{}")).json();
    assert!(
        sampled(&v).starts_with("sampled: error"),
        "refused to the server: {v}"
    );
    // The busy session never saw the request: its stream carries only progress and its result.
    loop {
        let ev = next_event(&mut busy_reply);
        assert_ne!(ev["method"], "sampling/createMessage", "{ev}");
        if ev.get("id").is_some() {
            break;
        }
    }
}

/// The result of a call started with [`start_call`]: a JSON body, or the last event of an SSE one.
fn reply_of(r: &mut BufReader<TcpStream>) -> Value {
    let (mut line, mut length, mut sse) = (String::new(), None, false);
    r.read_line(&mut line).unwrap();
    assert!(line.contains(" 200 "), "{line}");
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        sse |= l.starts_with("content-type: text/event-stream");
        if let Some(n) = l.strip_prefix("content-length: ") {
            length = n.parse::<usize>().ok();
        }
    }
    if sse {
        return loop {
            let ev = next_event(r);
            if ev.get("id").is_some() {
                break ev;
            }
        };
    }
    let mut body = vec![0; length.expect("a JSON reply has a length")];
    std::io::Read::read_exact(r, &mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// Waits until the demo's own GET stream (the gateway's watcher) is open: a tool-list change the
/// demo announces on it reaches the client's stream.
fn watcher_ready(e: &Env, session: &str, stream: &mut Stream) {
    let bump = r#"{"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"alpha__set_extra_tools","arguments":{"count":1}}}"#;
    assert!(
        eventually(Duration::from_secs(10), || {
            e.call(session, bump);
            stream
                .next_data(Duration::from_millis(500))
                .is_some_and(|d| d.contains("tools/list_changed"))
        }),
        "the gateway's GET stream to the demo never opened"
    );
}

#[test]
fn over_http_a_request_on_the_servers_own_stream_reaches_the_one_session_calling() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let s = sampling_session(&e);
    let mut stream = Stream::open(e.addr(), &s);
    watcher_ready(&e, &s, &mut stream);
    let mut reply = start_call(
        e.addr(),
        &s,
        &sample("alpha__sample", r#"{"standalone":true}"#),
    );
    // The request names no call: it arrives on the session's GET stream, with a sealed id.
    let ask = loop {
        let d = stream
            .next_data(Duration::from_secs(10))
            .expect("the request on the session's stream");
        let v: Value = serde_json::from_str(&d).unwrap();
        if v["method"] == "sampling/createMessage" {
            break v;
        }
    };
    let token = ask["id"].as_str().expect("a sealed id");
    assert!(token.starts_with("k1."), "{token}");
    answer_sampling(&e, &s, token);
    let done = reply_of(&mut reply);
    assert_eq!(sampled(&done), "sampled: hi", "{done}");
}

#[test]
fn over_http_a_request_on_the_servers_own_stream_is_refused_when_it_is_ambiguous() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let (busy, asking) = (sampling_session(&e), sampling_session(&e));
    let mut busy_stream = Stream::open(e.addr(), &busy);
    watcher_ready(&e, &busy, &mut busy_stream);
    let _busy_reply = sleeping(&e, &busy, "alpha__sleep");
    // Two sessions have calls in flight to the server: the request is refused to the server at
    // once (the call's result says so) and neither session sees it.
    let mut reply = start_call(
        e.addr(),
        &asking,
        &sample("alpha__sample", r#"{"standalone":true}"#),
    );
    let done = reply_of(&mut reply);
    assert!(
        sampled(&done).starts_with("sampled: error"),
        "refused to the server: {done}"
    );
    while let Some(d) = busy_stream.next_data(Duration::from_millis(200)) {
        assert!(!d.contains("sampling/createMessage"), "{d}");
    }
}

#[test]
fn over_http_a_request_on_the_servers_own_stream_is_refused_without_the_capability() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let s = e.session("2025-11-25"); // declares nothing
    let mut stream = Stream::open(e.addr(), &s);
    watcher_ready(&e, &s, &mut stream);
    let mut reply = start_call(
        e.addr(),
        &s,
        &sample("alpha__sample", r#"{"standalone":true}"#),
    );
    let done = reply_of(&mut reply);
    assert!(
        sampled(&done).starts_with("sampled: error"),
        "refused to the server: {done}"
    );
}
