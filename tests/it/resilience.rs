//! One bad downstream never breaks the others: dead, slow, expired-session and garbage servers.

use std::io::{Read, Write};
use std::time::Duration;

use crate::harness::*;
use ringgate::demo::{self, DemoOptions};

#[test]
fn a_dead_downstream_fails_clearly_and_the_other_keeps_working() {
    let mut e = Env::start(vec![DemoOptions::new("a"), DemoOptions::new("b")], "");
    let s = e.session("2025-11-25");
    e.kill_demo(0);
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"alpha__echo","arguments":{"message":"x"}}}"#).json();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("alpha"),
        "{v}"
    );
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"beta__echo","arguments":{"message":"y"}}}"#).json();
    assert_eq!(v["result"]["content"][0]["text"], "y");
    let admin = e.admin();
    assert!(eventually(Duration::from_secs(5), || {
        let servers = get(admin, "/v1/servers").body;
        let v: serde_json::Value = serde_json::from_str(&servers).unwrap();
        v["servers"][0]["up"] == false
            && v["servers"][0]["lastError"]["message"].is_string()
            && v["servers"][1]["up"] == true
    }));
    // Its tools leave the catalog (unavailable = "omit"), the other's stay.
    assert!(eventually(Duration::from_secs(5), || {
        let v = e
            .call(&s, r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#)
            .json();
        let tools = v["result"]["tools"].as_array().unwrap().clone();
        !tools.is_empty()
            && tools
                .iter()
                .all(|t| t["name"].as_str().unwrap().starts_with("beta__"))
    }));
    assert_eq!(get(admin, "/readyz").status, 503);
}

#[test]
fn a_server_down_at_startup_comes_back_and_clients_are_told() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let b = demo::spawn(DemoOptions::new("b")).unwrap();
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n[[server]]\nname = \"alpha\"\ntransport = \"http\"\nurl = \"http://127.0.0.1:{port}/mcp\"\n[[server]]\nname = \"beta\"\ntransport = \"http\"\nurl = \"{}\"\n",
        b.url()
    );
    let e = Env::with_config(vec![b], &toml);
    let s = e.session("2025-11-25");
    let v = e
        .call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .json();
    assert_eq!(
        v["result"]["tools"].as_array().unwrap().len(),
        8,
        "only beta's tools"
    );
    let mut stream = Stream::open(e.addr(), &s);
    let mut opts = DemoOptions::new("a");
    opts.listen = format!("127.0.0.1:{port}").parse().unwrap();
    let _a = demo::spawn(opts).unwrap();
    let note = stream
        .next_data(Duration::from_secs(10))
        .expect("list_changed after reconnect");
    assert!(note.contains("list_changed"), "{note}");
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"alpha__echo","arguments":{"message":"back"}}}"#).json();
    assert_eq!(v["result"]["content"][0]["text"], "back");
}

#[test]
fn a_slow_call_times_out_with_a_clear_error() {
    let demo = demo::spawn(DemoOptions::new("a")).unwrap();
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 1\n[[server]]\nname = \"alpha\"\ntransport = \"http\"\ncall_timeout_ms = 200\nurl = \"{}\"\n",
        demo.url()
    );
    let e = Env::with_config(vec![demo], &toml);
    let s = e.session("2025-11-25");
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"alpha__sleep","arguments":{"ms":3000}}}"#).json();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not answer in time"),
        "{v}"
    );
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"alpha__echo","arguments":{"message":"ok"}}}"#).json();
    assert_eq!(v["result"]["content"][0]["text"], "ok");
    let metrics = get(e.admin(), "/metrics").body;
    assert!(
        metrics.contains("ringgate_downstream_errors_total{server=\"alpha\",kind=\"timeout\"} 1"),
        "{metrics}"
    );
}

#[test]
fn an_expired_downstream_session_is_reinitialized() {
    let mut e = Env::start(vec![DemoOptions::new("a")], "");
    let s = e.session("2025-11-25");
    let addr = e.kill_demo(0);
    let mut opts = DemoOptions::new("a");
    opts.listen = addr;
    let _fresh = respawn_demo(opts); // same port, no memory of the gateway's session
                                     // A read is retried transparently after re-initialization.
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"demo://a/readme"}}"#).json();
    assert!(v["result"]["contents"][0]["text"].is_string(), "{v}");
    // A tool call after the next expiry is not retried (it may have had effects)... but works on the new session.
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"alpha__echo","arguments":{"message":"z"}}}"#).json();
    assert_eq!(v["result"]["content"][0]["text"], "z");
}

#[test]
fn a_downstream_answering_garbage_gets_a_protocol_error() {
    // A fake server: a valid initialize, then garbage for everything else.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve_garbage(conn));
        }
    });
    let toml = format!("[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 1\n[[server]]\nname = \"junk\"\ntransport = \"http\"\nurl = \"http://{addr}/mcp\"\n");
    let e = Env::with_config(vec![], &toml);
    let s = e.session("2025-11-25");
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"junk__t","arguments":{}}}"#).json();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("junk"),
        "{v}"
    );
}

fn serve_garbage(mut conn: std::net::TcpStream) {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let req = String::from_utf8_lossy(&buf[..n]);
        let body: &[u8] = if req.contains("\"initialize\"") {
            br#"{"jsonrpc":"2.0","id":"ringgate-init","result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"junk","version":"0"}}}"#
        } else if req.contains("tools/list") {
            br#"{"jsonrpc":"2.0","id":"ringgate-list-0","result":{"tools":[{"name":"t","inputSchema":{"type":"object"}}]}}"#
        } else if req.contains("notifications/") {
            b""
        } else {
            b"\x00\x01 this is not json"
        };
        let status = if body.is_empty() {
            "202 Accepted"
        } else {
            "200 OK"
        };
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if conn
            .write_all(head.as_bytes())
            .and_then(|_| conn.write_all(body))
            .is_err()
        {
            return;
        }
    }
}

#[test]
fn metrics_count_calls_per_server() {
    let e = Env::start(vec![DemoOptions::new("a"), DemoOptions::new("b")], "");
    let s = e.session("2025-11-25");
    for i in 0..3 {
        e.call(&s, &format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"beta__echo","arguments":{{"message":"m"}}}}}}"#));
    }
    let m = get(e.admin(), "/metrics").body;
    assert!(
        m.contains("ringgate_downstream_calls_total{server=\"beta\"} 3"),
        "{m}"
    );
    assert!(m.contains("ringgate_server_call_seconds_count{server=\"beta\"} 3"));
    assert!(m.contains("ringgate_requests_total{method=\"tools_call\"} 3"));
    assert_eq!(get(e.admin(), "/healthz").status, 200);
    assert_eq!(get(e.admin(), "/readyz").status, 200);
    let cat: serde_json::Value = serde_json::from_str(&get(e.admin(), "/v1/catalog").body).unwrap();
    assert_eq!(cat["tools"].as_array().unwrap().len(), 16);
}
