//! Every bad input gets a clear error, with the right HTTP status and JSON-RPC code, and the
//! gateway keeps serving.

use crate::harness::*;
use ringgate::demo::DemoOptions;

fn env() -> Env {
    Env::start(
        vec![DemoOptions::new("a")],
        "[gateway.limits]\nmax_body_bytes = 65536",
    )
}

#[test]
fn malformed_json_gets_400_and_parse_error_with_null_id() {
    let e = env();
    let s = e.session("2025-06-18");
    let r = e.call(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,");
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["error"]["code"], -32700);
    assert!(v["id"].is_null());
}

#[test]
fn invalid_request_keeps_the_id() {
    let e = env();
    let s = e.session("2025-06-18");
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":"k7","method":5}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32600);
    assert_eq!(r.json()["id"], "k7");
    let r = e.call(&s, r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#);
    assert_eq!(r.json()["error"]["code"], -32600);
}

#[test]
fn unknown_method_gets_32601_and_unknown_tool_32602() {
    let e = env();
    let s = e.session("2025-06-18");
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"nope/nothing"}"#);
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_i64()),
        (200, Some(-32601))
    );
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"alpha__missing","arguments":{}}}"#);
    assert_eq!(r.json()["error"]["code"], -32602);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("alpha__missing"));
    let r = e.call(
        &s,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{}}"#,
    );
    assert_eq!(r.json()["error"]["code"], -32602);
}

#[test]
fn oversized_body_gets_413_with_a_jsonrpc_error() {
    let e = env();
    let s = e.session("2025-06-18");
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(100_000)
    );
    let r = e.call(&s, &big);
    assert_eq!(r.status, 413);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("65536"));
    // The gateway still serves.
    assert_eq!(
        e.call(&s, r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#)
            .status,
        200
    );
}

#[test]
fn unknown_forged_or_missing_sessions_are_refused() {
    let e = env();
    let r = e.call(
        "k1.forgedforgedforgedforgedforgedforgedforged",
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
    );
    assert_eq!(r.status, 404);
    let r = post(e.addr(), &[], r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    assert_eq!(r.status, 400);
}

#[test]
fn delete_ends_a_session_on_every_worker() {
    let e = env();
    let s = e.session("2025-06-18");
    let r = request(e.addr(), "DELETE", "/mcp", &[("mcp-session-id", &s)], b"");
    assert_eq!(r.status, 200);
    for _ in 0..4 {
        assert_eq!(
            e.call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
                .status,
            404
        );
    }
}

#[test]
fn foreign_origin_gets_403_and_foreign_host_421() {
    let e = env();
    let s = e.session("2025-06-18");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let r = post(
        e.addr(),
        &[("mcp-session-id", &s), ("origin", "https://evil.example")],
        body,
    );
    assert_eq!(r.status, 403);
    let r = post(
        e.addr(),
        &[("mcp-session-id", &s), ("origin", "http://localhost:5173")],
        body,
    );
    assert_eq!(r.status, 200);
    let r = request(
        e.addr(),
        "POST",
        "/mcp",
        &[("mcp-session-id", &s), ("host", "evil.example")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 421);
}

#[test]
fn unsupported_protocol_version_header_gets_400() {
    let e = env();
    let s = e.session("2025-06-18");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let r = post(
        e.addr(),
        &[
            ("mcp-session-id", &s),
            ("mcp-protocol-version", "1999-01-01"),
        ],
        body,
    );
    assert_eq!(r.status, 400);
    let r = post(
        e.addr(),
        &[
            ("mcp-session-id", &s),
            ("mcp-protocol-version", "2025-06-18"),
        ],
        body,
    );
    assert_eq!(r.status, 200);
}

#[test]
fn version_negotiation_agrees_or_offers_latest() {
    let e = env();
    let init = |v: &str| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{v}","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}"#
        );
        post(e.addr(), &[], &body).json()["result"]["protocolVersion"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(init("2024-11-05"), "2024-11-05");
    assert_eq!(init("2025-03-26"), "2025-03-26");
    assert_eq!(init("2031-01-01"), "2025-11-25");
}

#[test]
fn batches_only_on_2025_03_26_sessions() {
    let e = env();
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"alpha__echo","arguments":{"message":"b"}}}]"#;
    let old = e.session("2025-03-26");
    let r = e.call(&old, batch);
    assert_eq!(r.status, 200);
    let v = r.json();
    let arr = v.as_array().expect("batch reply is an array");
    assert_eq!(arr.len(), 2, "{v}");
    assert_eq!(arr[1]["id"], 2);
    assert_eq!(arr[1]["result"]["content"][0]["text"], "b");
    let new = e.session("2025-06-18");
    assert_eq!(e.call(&new, batch).status, 400);
}

#[test]
fn wrong_path_and_method_are_refused() {
    let e = env();
    assert_eq!(get(e.addr(), "/nope").status, 404);
    assert_eq!(request(e.addr(), "PUT", "/mcp", &[], b"").status, 405);
    let r = request(
        e.addr(),
        "POST",
        "/mcp",
        &[("content-type", "text/plain")],
        b"{}",
    );
    assert_eq!(r.status, 415);
}

#[test]
fn garbage_http_gets_400_and_the_gateway_survives() {
    use std::io::{Read, Write};
    let e = env();
    let mut s = std::net::TcpStream::connect(e.addr()).unwrap();
    s.write_all(b"\x00\x01GARBAGE\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    let sid = e.session("2025-06-18");
    assert_eq!(
        e.call(&sid, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
            .status,
        200
    );
}
