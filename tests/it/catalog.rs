//! Aggregation: namespaced merged lists, gateway cursors, routing by name/URI/ref, list_changed.

use std::collections::HashSet;
use std::time::Duration;

use crate::harness::*;
use ringgate::demo::DemoOptions;

fn names(v: &serde_json::Value, key: &str) -> Vec<String> {
    v["result"][key]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn tools_from_two_servers_are_merged_with_prefixes_in_config_order() {
    let e = Env::start(vec![DemoOptions::new("a"), DemoOptions::new("b")], "");
    let s = e.session("2025-11-25");
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    let tools = names(&r.json(), "tools");
    assert_eq!(tools.len(), 16);
    assert_eq!(tools[0], "alpha__echo");
    assert!(tools.iter().take(8).all(|t| t.starts_with("alpha__")));
    assert!(tools.iter().skip(8).all(|t| t.starts_with("beta__")));
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"beta__add","arguments":{"a":1,"b":2}}}"#);
    assert_eq!(r.json()["id"], "c");
    assert_eq!(r.json()["result"]["structuredContent"]["sum"], 3.0);
}

#[test]
fn gateway_cursors_page_through_everything_and_refuse_tampering() {
    let mut a = DemoOptions::new("a");
    a.extra_tools = 20;
    a.page_size = Some(4); // the downstream paginates too; the gateway must follow it
    let e = Env::start(vec![a, DemoOptions::new("b")], "page_size = 5");
    let s = e.session("2025-11-25");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let body = match &cursor {
            None => r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_string(),
            Some(c) => format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"cursor":"{c}"}}}}"#
            ),
        };
        let v = e.call(&s, &body).json();
        let page = names(&v, "tools");
        assert!(page.len() <= 5);
        seen.extend(page);
        match v["result"]["nextCursor"].as_str() {
            Some(c) => {
                assert!(
                    !c.chars().all(|ch| ch.is_ascii_digit()),
                    "a raw downstream cursor leaked: {c}"
                );
                cursor = Some(c.to_string());
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 28 + 8);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        seen.len(),
        "no duplicates"
    );
    let r = e.call(
        &s,
        r#"{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{"cursor":"k1.AAAAtampered"}}"#,
    );
    assert_eq!(r.json()["error"]["code"], -32602);
}

#[test]
fn prompts_resources_templates_and_completions_route_to_their_owner() {
    let e = Env::start(vec![DemoOptions::new("a"), DemoOptions::new("b")], "");
    let s = e.session("2025-11-25");
    let v = e
        .call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"prompts/list"}"#)
        .json();
    assert_eq!(names(&v, "prompts"), vec!["alpha__greet", "beta__greet"]);
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"beta__greet","arguments":{"name":"Ada"}}}"#).json();
    assert!(v["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap()
        .contains("Ada"));
    let v = e
        .call(&s, r#"{"jsonrpc":"2.0","id":3,"method":"resources/list"}"#)
        .json();
    let uris: Vec<&str> = v["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, vec!["demo://a/readme", "demo://b/readme"]);
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"demo://b/readme"}}"#).json();
    assert!(v["result"]["contents"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("# b"));
    // A URI matching a template (not listed) routes by the template's literal prefix.
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"demo://a/notes/42"}}"#).json();
    assert_eq!(v["result"]["contents"][0]["text"], "note 42");
    let v = e
        .call(
            &s,
            r#"{"jsonrpc":"2.0","id":6,"method":"resources/read","params":{"uri":"nobody://x"}}"#,
        )
        .json();
    assert_eq!(v["error"]["code"], -32002);
    let v = e
        .call(
            &s,
            r#"{"jsonrpc":"2.0","id":7,"method":"resources/templates/list"}"#,
        )
        .json();
    assert_eq!(
        names(&v, "resourceTemplates"),
        vec!["alpha__note", "beta__note"]
    );
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":8,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"alpha__greet"},"argument":{"name":"name","value":"a"}}}"#).json();
    assert_eq!(
        v["result"]["completion"]["values"],
        serde_json::json!(["Ada", "Alan"])
    );
}

#[test]
fn initialize_reports_the_gateway_and_merges_instructions() {
    let e = Env::start(
        vec![DemoOptions::new("a"), DemoOptions::new("b")],
        "server_name = \"edge\"",
    );
    let body = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let v = post(e.addr(), &[], body).json();
    assert_eq!(v["result"]["serverInfo"]["name"], "edge");
    assert_eq!(v["result"]["capabilities"]["tools"]["listChanged"], true);
    let text = v["result"]["instructions"].as_str().unwrap();
    assert!(
        text.contains("## alpha") && text.contains("## beta"),
        "{text}"
    );
}

#[test]
fn downstream_list_changed_refreshes_the_catalog_and_reaches_client_streams() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let s = e.session("2025-11-25");
    let mut stream = Stream::open(e.addr(), &s);
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"alpha__set_extra_tools","arguments":{"count":3}}}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let note = stream
        .next_data(Duration::from_secs(5))
        .expect("a list_changed notification");
    assert!(note.contains("notifications/tools/list_changed"), "{note}");
    let v = e
        .call(&s, r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)
        .json();
    assert!(names(&v, "tools").contains(&"alpha__tool_002".to_string()));
}

#[test]
fn progress_streams_as_sse_and_the_response_gets_the_client_id_back() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let s = e.session("2025-11-25");
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":"mine","method":"tools/call","params":{"name":"alpha__sleep","arguments":{"ms":60,"steps":3},"_meta":{"progressToken":"tok"}}}"#);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    let events: Vec<&str> = r
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.len(), 4, "{}", r.body);
    assert!(events[0].contains("\"progressToken\":\"tok\""));
    assert_eq!(r.json()["id"], "mine");
    // A client that does not accept SSE gets the plain JSON response.
    let r = post(
        e.addr(),
        &[("mcp-session-id", &s), ("accept", "application/json")],
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"alpha__sleep","arguments":{"ms":10,"steps":2},"_meta":{"progressToken":1}}}"#,
    );
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(r.json()["id"], 5);
}

/// POSTs a call and returns a reader positioned on its SSE reply.
fn open_call(
    addr: std::net::SocketAddr,
    session: &str,
    body: &str,
) -> std::io::BufReader<std::net::TcpStream> {
    use std::io::{BufRead, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {session}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = std::io::BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    assert!(status.contains(" 200 "), "{status}");
    r
}

fn next_event(r: &mut std::io::BufReader<std::net::TcpStream>) -> serde_json::Value {
    use std::io::BufRead;
    let mut line = String::new();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "stream ended");
        if let Some(d) = line.trim_end().strip_prefix("data: ") {
            return serde_json::from_str(d).unwrap();
        }
    }
}

fn session_with(e: &Env, capabilities: &str) -> String {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{capabilities},"clientInfo":{{"name":"t","version":"1"}}}}}}"#
    );
    post(e.addr(), &[], &body)
        .header("mcp-session-id")
        .unwrap()
        .to_string()
}

#[test]
fn a_servers_sampling_request_reaches_the_client_that_called_and_the_answer_returns() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let s = session_with(&e, r#"{"sampling":{}}"#);
    let call = r#"{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"alpha__sample","arguments":{}}}"#;
    let mut reply = open_call(e.addr(), &s, call);
    let ask = next_event(&mut reply);
    assert_eq!(ask["method"], "sampling/createMessage");
    let token = ask["id"].as_str().expect("a string id").to_string();
    assert!(
        token.starts_with("k1."),
        "the server's own id is sealed: {token}"
    );
    // The answer may arrive on any connection (and worker).
    let answer = format!(
        r#"{{"jsonrpc":"2.0","id":"{token}","result":{{"role":"assistant","content":{{"type":"text","text":"hello from the model"}},"model":"m"}}}}"#
    );
    assert_eq!(e.call(&s, &answer).status, 202);
    let done = next_event(&mut reply);
    assert_eq!(done["id"], "c1");
    assert_eq!(
        done["result"]["content"][0]["text"],
        "sampled: hello from the model"
    );
    // A forged answer is refused.
    let forged = r#"{"jsonrpc":"2.0","id":"k1.forged","result":{}}"#;
    assert_eq!(e.call(&s, forged).status, 400);
}

#[test]
fn a_client_without_the_capability_never_sees_the_request() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let s = session_with(&e, "{}");
    let call = r#"{"jsonrpc":"2.0","id":"c2","method":"tools/call","params":{"name":"alpha__sample","arguments":{}}}"#;
    let v = e.call(&s, call).json();
    // The gateway refused the sampling request to the server, which reports it in its result.
    assert_eq!(v["id"], "c2");
    assert!(
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("error"),
        "{v}"
    );
}

#[test]
fn resource_updates_reach_subscribed_sessions_only() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let (watcher, bystander) = (e.session("2025-11-25"), e.session("2025-11-25"));
    let mut watching = Stream::open(e.addr(), &watcher);
    let mut idle = Stream::open(e.addr(), &bystander);
    let sub = r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"demo://a/readme"}}"#;
    assert!(e.call(&watcher, sub).json()["result"].is_object());
    let init = post(e.addr(), &[], r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#).json();
    assert_eq!(
        init["result"]["capabilities"]["resources"]["subscribe"],
        true
    );
    let touch = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"alpha__touch","arguments":{"uri":"demo://a/readme"}}}"#;
    assert_eq!(e.call(&bystander, touch).status, 200);
    let note = watching
        .next_data(Duration::from_secs(5))
        .expect("the subscriber hears the update");
    assert!(
        note.contains("notifications/resources/updated") && note.contains("demo://a/readme"),
        "{note}"
    );
    assert_eq!(
        idle.next_data(Duration::from_millis(300)),
        None,
        "the other session hears nothing"
    );
    // After unsubscribing, updates stop.
    let unsub = r#"{"jsonrpc":"2.0","id":3,"method":"resources/unsubscribe","params":{"uri":"demo://a/readme"}}"#;
    assert!(e.call(&watcher, unsub).json()["result"].is_object());
    e.call(&bystander, touch);
    assert_eq!(watching.next_data(Duration::from_millis(300)), None);
}
