//! Legacy HTTP+SSE (2024-11-05) on both sides. A ringgate's own /sse front serves as the HTTP+SSE
//! downstream of a second ringgate, so both directions are exercised against each other here (and
//! against server-everything and the Python SDK in the interop suite).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::*;
use ringgate::demo::DemoOptions;

/// A raw HTTP+SSE client: opens /sse, reads the endpoint, posts, reads replies off the stream
/// (also used against the demo server's own /sse in `demo`).
pub struct SseClient {
    reader: BufReader<TcpStream>,
    pub endpoint: String,
    addr: std::net::SocketAddr,
}

impl SseClient {
    pub fn open(addr: std::net::SocketAddr) -> SseClient {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /sse HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(s);
        let mut endpoint = String::new();
        let mut line = String::new();
        while endpoint.is_empty() {
            line.clear();
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "stream closed before the endpoint event"
            );
            if let Some(d) = line.trim_end().strip_prefix("data: ") {
                endpoint = d.to_string();
            }
        }
        SseClient {
            reader,
            endpoint,
            addr,
        }
    }

    pub fn post(&self, body: &str) -> u16 {
        request(self.addr, "POST", &self.endpoint, &[], body.as_bytes()).status
    }

    pub fn next(&mut self) -> serde_json::Value {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.reader.read_line(&mut line).unwrap() > 0,
                "stream closed"
            );
            if let Some(d) = line.trim_end().strip_prefix("data: ") {
                return serde_json::from_str(d).unwrap();
            }
        }
    }
}

#[test]
fn an_sse_client_initializes_lists_and_calls_through_the_sse_front() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let mut c = SseClient::open(e.addr());
    assert!(
        c.endpoint.starts_with("/messages?session_id="),
        "{}",
        c.endpoint
    );
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    assert_eq!(c.post(init), 202);
    assert_eq!(c.next()["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(
        c.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
        202
    );
    assert_eq!(c.post(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"alpha__echo","arguments":{"message":"over sse"}}}"#), 202);
    let v = c.next();
    assert_eq!(
        (v["id"].clone(), v["result"]["content"][0]["text"].clone()),
        (2.into(), "over sse".into())
    );
    // Bad input: unparseable → 400 on the POST; unknown session → 404.
    assert_eq!(c.post("{oops"), 400);
    let r = request(e.addr(), "POST", "/messages?session_id=k1.nope", &[], b"{}");
    assert_eq!(r.status, 404);
}

#[test]
fn sse_and_fallback_downstreams_reach_a_legacy_sse_server() {
    // Inner gateway: serves HTTP+SSE at /sse in front of a demo server.
    let inner = Env::start(vec![DemoOptions::new("a")], "");
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n\
         [[server]]\nname = \"legacy\"\ntransport = \"sse\"\nurl = \"http://{0}/sse\"\n\
         [[server]]\nname = \"guess\"\ntransport = \"http\"\nurl = \"http://{0}/sse\"\n",
        inner.addr()
    );
    let outer = Env::with_config(vec![], &toml);
    let servers: serde_json::Value =
        serde_json::from_str(&get(outer.admin(), "/v1/servers").body).unwrap();
    assert_eq!(servers["servers"][0]["transport"], "http+sse");
    assert_eq!(
        servers["servers"][1]["transport"], "http+sse (fallback)",
        "{servers}"
    );
    let s = outer.session("2025-11-25");
    for name in ["legacy__alpha__add", "guess__alpha__add"] {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":"{name}","method":"tools/call","params":{{"name":"{name}","arguments":{{"a":20,"b":22}}}}}}"#
        );
        let v = outer.call(&s, &body).json();
        assert_eq!(v["id"], name);
        assert_eq!(v["result"]["structuredContent"]["sum"], 42.0, "{v}");
    }
    // Progress crosses both hops with the client's own token.
    let r = outer.call(&s, r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"legacy__alpha__sleep","arguments":{"ms":40,"steps":2},"_meta":{"progressToken":"mine"}}}"#);
    let events: Vec<&str> = r
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.len(), 3, "{}", r.body);
    assert!(
        events[0].contains("\"progressToken\":\"mine\""),
        "{}",
        events[0]
    );
}

/// `initialize` on the SSE front declaring `caps` (a JSON object), then `initialized`.
fn initialized(c: &mut SseClient, caps: &str) {
    let init = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{caps},"clientInfo":{{"name":"t","version":"1"}}}}}}"#
    );
    assert_eq!(c.post(&init), 202);
    assert_eq!(c.next()["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(
        c.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
        202
    );
}

const SAMPLE: &str = r#"{"jsonrpc":"2.0","id":"s1","method":"tools/call","params":{"name":"alpha__sample","arguments":{}}}"#;

/// A client that declared sampling at `initialize` (after its id was announced) gets the server's
/// request on its stream, answers by POST (any worker), and the call completes with its answer.
#[test]
fn an_sse_client_that_declared_sampling_is_asked_and_its_answer_gets_back() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let mut c = SseClient::open(e.addr());
    initialized(&mut c, r#"{"sampling":{}}"#);
    for round in 0..3 {
        assert_eq!(c.post(SAMPLE), 202);
        let ask = c.next();
        assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
        let token = ask["id"].as_str().expect("a sealed relay id");
        let answer = format!(
            r#"{{"jsonrpc":"2.0","id":"{token}","result":{{"role":"assistant","content":{{"type":"text","text":"hi {round}"}},"model":"m"}}}}"#
        );
        assert_eq!(c.post(&answer), 202);
        let done = c.next();
        assert_eq!(done["id"], "s1", "{done}");
        assert_eq!(
            done["result"]["content"][0]["text"],
            format!("sampled: hi {round}"),
            "{done}"
        );
    }
}

/// A client that declared nothing is never asked: the server is refused at once and the call ends.
#[test]
fn an_sse_client_that_did_not_declare_sampling_is_not_asked() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let mut c = SseClient::open(e.addr());
    initialized(&mut c, r#"{"roots":{}}"#);
    assert_eq!(c.post(SAMPLE), 202);
    let done = c.next();
    assert_eq!(done["id"], "s1", "the first event is the result: {done}");
    let text = done["result"]["content"][0]["text"].as_str().unwrap_or("");
    assert!(text.starts_with("sampled: error"), "{done}");
}

/// Progress of a call reaches the SSE client's stream with its own token, before the result.
#[test]
fn progress_reaches_an_sse_client() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let mut c = SseClient::open(e.addr());
    initialized(&mut c, "{}");
    assert_eq!(c.post(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"alpha__sleep","arguments":{"ms":40,"steps":2},"_meta":{"progressToken":"sse-tok"}}}"#), 202);
    for step in 1..=2 {
        let p = c.next();
        assert_eq!(p["method"], "notifications/progress", "{p}");
        assert_eq!(p["params"]["progressToken"], "sse-tok", "{p}");
        assert_eq!(p["params"]["progress"], step, "{p}");
    }
    assert_eq!(c.next()["id"], 5);
}
