//! The era bridge: a legacy server's elicitation reaches a modern client as `input_required` and
//! the retry completes the call (any worker, any number of rounds, each state used once); a
//! modern server's `input_required` reaches a legacy client as real requests on its stream and
//! the call is retried downstream with the answers; "resource not found" in each era's code.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;
use ringgate::demo::{self, DemoOptions};

const V: &str = "2026-07-28";

fn modern_body(id: u32, method: &str, params: &str, caps: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{{{params},"_meta":{{"io.modelcontextprotocol/protocolVersion":"{V}","io.modelcontextprotocol/clientCapabilities":{caps}}}}}}}"#
    )
}

/// A modern `tools/call` of `tool` (extra params members after the arguments, if any).
fn modern_call(e: &Env, id: u32, tool: &str, args: &str, extra: &str, caps: &str) -> Response {
    let params = format!(r#""name":"{tool}","arguments":{args}{extra}"#);
    let h = [
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/call"),
        ("mcp-name", tool),
    ];
    post(e.addr(), &h, &modern_body(id, "tools/call", &params, caps))
}

const ELICIT: &str = r#"{"elicitation":{}}"#;

/// `,"inputResponses":{…},"requestState":"…"` for a retry.
fn retry_fields(answer: Option<&Value>, state: &str) -> String {
    let mut s = String::new();
    if let Some(a) = answer {
        s.push_str(&format!(r#","inputResponses":{{"elicitation":{a}}}"#));
    }
    s.push_str(&format!(r#","requestState":{}"#, json!(state)));
    s
}

fn accept(name: &str) -> Value {
    json!({"action": "accept", "content": {"name": name}})
}

fn legacy_with_ask() -> Env {
    let mut opts = DemoOptions::new("a");
    opts.ask = true;
    Env::start(vec![opts], "")
}

/// The `input_required` result of a reply, with its state.
fn asked(r: &Response) -> (Value, String) {
    assert_eq!(r.status, 200, "{}", r.body);
    let res = r.json()["result"].clone();
    assert_eq!(res["resultType"], "input_required", "{}", r.body);
    let state = res["requestState"]
        .as_str()
        .expect("requestState")
        .to_string();
    (res, state)
}

fn invalid_state(r: &Response) {
    assert_eq!(r.status, 400, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"]["code"], -32602, "{}", r.body);
    assert_eq!(v["error"]["data"]["reason"], "invalid_request_state");
}

#[test]
fn a_legacy_server_s_elicitation_reaches_a_modern_client_as_input_required() {
    let e = legacy_with_ask();
    // Several calls: with two workers, retries land on the parking worker and on the other one.
    for i in 0..6 {
        let r = modern_call(&e, 10 + i, "alpha__ask", "{}", "", ELICIT);
        let (res, state) = asked(&r);
        let ask = &res["inputRequests"]["elicitation"];
        assert_eq!(ask["method"], "elicitation/create", "{}", r.body);
        assert_eq!(ask["params"]["message"], "What is name #1?");
        assert!(ask.get("id").is_none() && ask.get("jsonrpc").is_none());
        let name = format!("Ada{i}");
        let extra = retry_fields(Some(&accept(&name)), &state);
        let done = modern_call(&e, 100 + i, "alpha__ask", "{}", &extra, ELICIT);
        assert_eq!(done.status, 200, "{}", done.body);
        let v = done.json();
        assert_eq!(v["id"], 100 + i);
        assert_eq!(v["result"]["content"][0]["text"], format!("hello {name}"));
        assert_eq!(v["result"]["resultType"], "complete");
        // A state works once.
        invalid_state(&modern_call(&e, 200, "alpha__ask", "{}", &extra, ELICIT));
    }
}

#[test]
fn every_round_parks_again_and_a_retry_without_an_answer_is_asked_again() {
    let e = legacy_with_ask();
    let args = r#"{"rounds":2}"#;
    let (_, s1) = asked(&modern_call(&e, 1, "alpha__ask", args, "", ELICIT));
    // No inputResponses: the same question again, under a new state.
    let (res, s1b) = asked(&modern_call(
        &e,
        2,
        "alpha__ask",
        args,
        &retry_fields(None, &s1),
        ELICIT,
    ));
    assert_eq!(
        res["inputRequests"]["elicitation"]["params"]["message"],
        "What is name #1?"
    );
    assert_ne!(s1, s1b);
    let extra = retry_fields(Some(&accept("Ada")), &s1b);
    let (res, s2) = asked(&modern_call(&e, 3, "alpha__ask", args, &extra, ELICIT));
    assert_eq!(
        res["inputRequests"]["elicitation"]["params"]["message"],
        "What is name #2?"
    );
    let decline = json!({"action": "decline"});
    let done = modern_call(
        &e,
        4,
        "alpha__ask",
        args,
        &retry_fields(Some(&decline), &s2),
        ELICIT,
    );
    assert_eq!(
        done.json()["result"]["content"][0]["text"],
        "hello Ada, declined",
        "{}",
        done.body
    );
}

#[test]
fn forged_foreign_or_mismatched_states_are_refused() {
    let e = legacy_with_ask();
    let (_, state) = asked(&modern_call(
        &e,
        1,
        "alpha__ask",
        r#"{"rounds":1}"#,
        "",
        ELICIT,
    ));
    let answer = accept("Ada");
    // Other arguments than the call that was parked.
    let other = modern_call(
        &e,
        2,
        "alpha__ask",
        r#"{"rounds":2}"#,
        &retry_fields(Some(&answer), &state),
        ELICIT,
    );
    invalid_state(&other);
    // Tampered, and made up.
    let mut bad = state.clone().into_bytes();
    let last = bad.len() - 1;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).unwrap();
    invalid_state(&modern_call(
        &e,
        3,
        "alpha__ask",
        r#"{"rounds":1}"#,
        &retry_fields(Some(&answer), &bad),
        ELICIT,
    ));
    invalid_state(&modern_call(
        &e,
        4,
        "alpha__ask",
        "{}",
        &retry_fields(Some(&answer), "nope"),
        ELICIT,
    ));
    // The genuine retry still works (the refusals did not consume it).
    let done = modern_call(
        &e,
        5,
        "alpha__ask",
        r#"{"rounds":1}"#,
        &retry_fields(Some(&answer), &state),
        ELICIT,
    );
    assert_eq!(
        done.json()["result"]["content"][0]["text"],
        "hello Ada",
        "{}",
        done.body
    );
    // Without the capability the call still ends with -32021.
    let r = modern_call(&e, 6, "alpha__ask", "{}", "", "{}");
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!(-32021)),
        "{}",
        r.body
    );
}

// ---------------------------------------------------------------- legacy client, modern server

/// A gateway fronting a legacy demo (`old`) and a modern one (`new`).
fn mixed() -> Env {
    let old = demo::spawn(DemoOptions::new("a")).expect("demo");
    let mut opts = DemoOptions::new("b");
    opts.modern = true;
    let new = demo::spawn(opts).expect("modern demo");
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n\
         [[server]]\nname = \"old\"\ntransport = \"http\"\nurl = \"{}\"\n\
         [[server]]\nname = \"new\"\ntransport = \"http\"\nurl = \"{}\"\n",
        old.url(),
        new.url()
    );
    Env::with_config(vec![old, new], &toml)
}

/// A legacy session that declared `caps`.
fn session_with(e: &Env, caps: &str) -> String {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{caps},"clientInfo":{{"name":"it","version":"1"}}}}}}"#
    );
    let r = post(e.addr(), &[], &body);
    assert_eq!(r.status, 200, "{}", r.body);
    r.header("mcp-session-id").expect("session id").to_string()
}

/// A POST whose SSE reply is read event by event.
struct Reply {
    reader: BufReader<TcpStream>,
}

impl Reply {
    fn open(addr: SocketAddr, session: &str, body: &str) -> Reply {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let head = format!(
            "POST /mcp HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {session}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        Reply {
            reader: BufReader::new(s),
        }
    }

    /// The next `data:` payload as JSON.
    fn next(&mut self) -> Value {
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).unwrap() > 0,
                "stream ended"
            );
            if let Some(d) = line.trim_end().strip_prefix("data: ") {
                return serde_json::from_str(d).unwrap();
            }
            if let Some(d) = line.trim_end().strip_prefix('{') {
                // A plain JSON reply (no stream).
                return serde_json::from_str(&format!("{{{d}")).unwrap();
            }
        }
    }
}

#[test]
fn a_modern_server_s_input_required_reaches_a_legacy_client_as_requests() {
    let e = mixed();
    let s = session_with(&e, r#"{"elicitation":{}}"#);
    let call = r#"{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"new__ask","arguments":{"rounds":2}}}"#;
    let mut reply = Reply::open(e.addr(), &s, call);
    for (round, name) in [(1, "Ada"), (2, "Grace")] {
        let ask = reply.next();
        assert_eq!(ask["method"], "elicitation/create", "{ask}");
        assert_eq!(ask["params"]["message"], format!("What is name #{round}?"));
        let id = ask["id"].clone();
        assert!(id.is_string(), "sealed id: {ask}");
        let answer = json!({"jsonrpc": "2.0", "id": id, "result": accept(name)});
        let r = e.call(&s, &answer.to_string());
        assert_eq!(r.status, 202, "{}", r.body);
    }
    let done = reply.next();
    assert_eq!(done["id"], "c1", "{done}");
    assert_eq!(done["result"]["content"][0]["text"], "hello Ada, Grace");
    assert!(done["result"].get("resultType").is_none(), "{done}");
}

#[test]
fn a_legacy_client_that_cannot_answer_gets_a_clear_error() {
    let e = mixed();
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"new__ask","arguments":{}}}"#;
    // The session did not declare elicitation: the server is told so (-32021 from it).
    let s = session_with(&e, "{}");
    let v = e.call(&s, call).json();
    assert!(v.get("error").is_some(), "{v}");
    // Declared, but takes no stream: nowhere to send the request.
    let s = session_with(&e, r#"{"elicitation":{}}"#);
    let r = post(
        e.addr(),
        &[("mcp-session-id", &s), ("accept", "application/json")],
        call,
    );
    let v = r.json();
    let msg = v["error"]["message"].as_str().unwrap_or("").to_string();
    assert!(v.get("error").is_some(), "{v}");
    assert!(
        msg.contains("elicitation") || msg.contains("event-stream"),
        "{msg}"
    );
    // An answer for an ask that does not exist is refused.
    let stray = r#"{"jsonrpc":"2.0","id":"k1.AAAA","result":{}}"#;
    assert_eq!(e.call(&s, stray).json()["error"]["code"], -32600);
}

#[test]
fn resource_not_found_is_coded_for_each_era() {
    let e = mixed();
    // Legacy client, modern server (which says -32602): the legacy code.
    let s = e.session("2025-11-25");
    let read = r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"demo://b/notes/missing"}}"#;
    let v = e.call(&s, read).json();
    assert_eq!(v["error"]["code"], -32002, "{v}");
    // ... and a found one reads as before, without modern fields.
    let ok =
        r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"demo://b/notes/7"}}"#;
    let v = e.call(&s, ok).json();
    assert_eq!(v["result"]["contents"][0]["text"], "note 7", "{v}");
    assert!(v["result"].get("ttlMs").is_none());
    // Modern client, legacy server (which says -32002): the modern code.
    let params = r#""uri":"demo://a/notes/missing""#;
    let h = [
        ("mcp-protocol-version", V),
        ("mcp-method", "resources/read"),
        ("mcp-name", "demo://a/notes/missing"),
    ];
    let r = post(
        e.addr(),
        &h,
        &modern_body(3, "resources/read", params, "{}"),
    );
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!(-32602)),
        "{}",
        r.body
    );
}

#[test]
fn a_call_nobody_resumes_is_cancelled_downstream_and_its_state_expires() {
    let mut opts = DemoOptions::new("a");
    opts.ask = true;
    let e = Env::start(vec![opts], "input_timeout_ms = 1");
    let count = |e: &Env| {
        let r = modern_call(e, 9, "alpha__cancellations", "{}", "", "{}");
        r.json()["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(count(&e), "0 cancelled");
    let (_, state) = asked(&modern_call(&e, 1, "alpha__ask", "{}", "", ELICIT));
    // The client does not retry in time: the gateway gives the call up and tells the server.
    let cancelled = eventually(Duration::from_secs(10), || count(&e) == "1 cancelled");
    assert!(cancelled, "the server saw: {}", count(&e));
    // A retry now is too late (expired, and the call is gone).
    let late = retry_fields(Some(&accept("Ada")), &state);
    invalid_state(&modern_call(&e, 2, "alpha__ask", "{}", &late, ELICIT));
}

#[test]
fn notifications_before_the_question_stream_and_input_required_ends_the_stream() {
    let e = legacy_with_ask();
    let args = r#"{"rounds":2}"#;
    let caps = ELICIT;
    let params = r#""name":"alpha__ask","arguments":{"rounds":2}"#;
    let body = modern_body(1, "tools/call", params, caps)
        .replace(r#""_meta":{"#, r#""_meta":{"progressToken":"p1","#);
    let h = [
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/call"),
        ("mcp-name", "alpha__ask"),
    ];
    let r = post(e.addr(), &h, &body);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "{}",
        r.body
    );
    assert!(r.body.contains(r#""progressToken":"p1""#), "{}", r.body);
    let (_, state) = asked(&r);
    // The retry's reply streams the next round's progress (under the retry's own token: the
    // first request's is not the retry's), then asks again.
    let extra = retry_fields(Some(&accept("Ada")), &state);
    let params = format!(r#""name":"alpha__ask","arguments":{args}{extra}"#);
    let body = modern_body(2, "tools/call", &params, caps)
        .replace(r#""_meta":{"#, r#""_meta":{"progressToken":"p2","#);
    let r = post(e.addr(), &h, &body);
    assert!(r.body.contains(r#""progressToken":"p2""#), "{}", r.body);
    assert!(!r.body.contains(r#""progressToken":"p1""#), "{}", r.body);
    let (res, state) = asked(&r);
    assert_eq!(
        res["inputRequests"]["elicitation"]["params"]["message"],
        "What is name #2?"
    );
    let r = modern_call(
        &e,
        3,
        "alpha__ask",
        args,
        &retry_fields(Some(&accept("Bo")), &state),
        caps,
    );
    assert_eq!(
        r.json()["result"]["content"][0]["text"],
        "hello Ada, Bo",
        "{}",
        r.body
    );
}

/// A modern downstream that asks with `input_required`: the official Rust SDK (rmcp), not the
/// project's own demo.
mod rmcp_back {
    use rmcp::model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        InputRequest, InputRequests, InputRequiredResult, ListToolsResult, PaginatedRequestParams,
        ServerCapabilities, ServerConfig, Tool,
    };
    use rmcp::service::RequestContext;
    use rmcp::{ErrorData, RoleServer, ServerHandler};

    use super::*;

    /// One tool, `confirm`: asks the user to confirm (elicitation), then reports the answer.
    #[derive(Clone)]
    struct Confirmer;

    impl ServerHandler for Confirmer {
        fn get_info(&self) -> ServerConfig {
            ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
                .with_server_info(Implementation::new("confirmer", "1.0.0"))
        }

        async fn list_tools(
            &self,
            _request: Option<PaginatedRequestParams>,
            _context: RequestContext<RoleServer>,
        ) -> Result<ListToolsResult, ErrorData> {
            let serde_json::Value::Object(schema) = json!({"type": "object"}) else {
                unreachable!()
            };
            Ok(ListToolsResult::with_all_items(vec![Tool::new(
                "confirm",
                "Asks the user to confirm",
                schema,
            )]))
        }

        async fn call_tool(
            &self,
            request: CallToolRequestParams,
            _context: RequestContext<RoleServer>,
        ) -> Result<CallToolResponse, ErrorData> {
            let answer = request.input_responses.as_ref().and_then(|r| r.get("ok"));
            if let (Some(answer), Some("rmcp-state")) = (answer, request.request_state.as_deref()) {
                let action = answer["action"].as_str().unwrap_or("?").to_string();
                return Ok(CallToolResponse::from(CallToolResult::success(vec![
                    ContentBlock::text(format!("confirmed: {action}")),
                ])));
            }
            let ask: InputRequest = serde_json::from_value(json!({
                "method": "elicitation/create",
                "params": {"mode": "form", "message": "Proceed?", "requestedSchema": {"type": "object", "properties": {}}}
            }))
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            let mut asks = InputRequests::new();
            asks.insert("ok".into(), ask);
            Ok(CallToolResponse::from(InputRequiredResult::new(
                Some(asks),
                Some("rmcp-state".into()),
            )))
        }
    }

    #[test]
    fn an_rmcp_server_s_input_required_reaches_a_legacy_client() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio");
        let url = crate::rmcp_peers::spawn_rmcp_server(&rt, Confirmer);
        let toml = format!(
            "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n\
             [[server]]\nname = \"rs\"\ntransport = \"http\"\nurl = \"{url}\"\n"
        );
        let e = Env::with_config(vec![], &toml);
        let s = session_with(&e, r#"{"elicitation":{}}"#);
        let call = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"rs__confirm","arguments":{}}}"#;
        let mut reply = Reply::open(e.addr(), &s, call);
        let ask = reply.next();
        assert_eq!(ask["method"], "elicitation/create", "{ask}");
        assert_eq!(ask["params"]["message"], "Proceed?");
        let answer = json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {}}});
        assert_eq!(e.call(&s, &answer.to_string()).status, 202);
        let done = reply.next();
        assert_eq!(done["id"], 5, "{done}");
        assert_eq!(
            done["result"]["content"][0]["text"], "confirmed: accept",
            "{done}"
        );
        assert!(done["result"].get("resultType").is_none(), "{done}");
    }
}

/// A modern client that answers by itself: the official Rust SDK (rmcp) pinned to 2026-07-28,
/// driving the `input_required` rounds a legacy demo server's elicitations become.
mod rmcp_front {
    use rmcp::model::{
        CallToolRequestParams, ClientCapabilities, ClientConfig, ContentBlock, ElicitRequestParams,
        ElicitResult, ElicitationAction, Implementation, ProtocolVersion,
    };
    use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RequestContext};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::{ClientHandler, ErrorData, RoleClient};

    use super::*;

    /// Declares elicitation and answers each form with the next name.
    struct Answers;

    impl ClientHandler for Answers {
        fn get_info(&self) -> ClientConfig {
            let caps: ClientCapabilities =
                serde_json::from_value(json!({"elicitation": {}})).expect("capabilities");
            ClientConfig::new(caps, Implementation::new("it-rmcp", "1.0.0"))
        }

        async fn create_elicitation(
            &self,
            request: ElicitRequestParams,
            _context: RequestContext<RoleClient>,
        ) -> Result<ElicitResult, ErrorData> {
            let asked = serde_json::to_value(&request).unwrap_or_default();
            let message = asked["message"].as_str().unwrap_or("").to_string();
            let name = if message.ends_with("#1?") {
                "Ada"
            } else {
                "Grace"
            };
            Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({"name": name})))
        }
    }

    #[test]
    fn an_rmcp_modern_client_completes_a_legacy_server_s_elicitations() {
        let e = legacy_with_ask();
        let url = format!("http://{}/mcp", e.addr());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio");
        let text = rt.block_on(async move {
            let transport = StreamableHttpClientTransport::from_uri(url);
            let lifecycle = ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            };
            let client = tokio::time::timeout(
                Duration::from_secs(20),
                Answers.serve_with_lifecycle(transport, lifecycle),
            )
            .await
            .expect("discover in time")
            .expect("rmcp client discovers the gateway");
            let mut args = serde_json::Map::new();
            args.insert("rounds".into(), json!(2));
            let call = CallToolRequestParams::new("alpha__ask").with_arguments(args);
            let result = tokio::time::timeout(Duration::from_secs(20), client.call_tool(call))
                .await
                .expect("call in time")
                .expect("the call completes");
            let _ = client.cancel().await;
            result
                .content
                .iter()
                .find_map(|c| match c {
                    ContentBlock::Text(t) => Some(t.text.clone()),
                    _ => None,
                })
                .unwrap_or_default()
        });
        assert_eq!(text, "hello Ada, Grace");
    }
}

#[test]
fn a_state_only_round_is_retried_at_once_even_without_a_stream() {
    let e = mixed();
    let s = session_with(&e, "{}");
    let call = r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"new__ask","arguments":{"poll":true}}}"#;
    let r = post(
        e.addr(),
        &[("mcp-session-id", &s), ("accept", "application/json")],
        call,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["result"]["content"][0]["text"], "polled", "{v}");
    assert!(v["result"].get("resultType").is_none(), "{v}");
}

/// A legacy stdio child (shared by every client: the gateway mints the progress tokens it sees).
fn stdio_child() -> Env {
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n\
         [[server]]\nname = \"kid\"\ntransport = \"stdio\"\ncommand = \"{}\"\nargs = [\"demo-server\", \"--transport\", \"stdio\", \"--name\", \"kid\"]\n",
        env!("CARGO_BIN_EXE_ringgate")
    );
    Env::with_config(vec![], &toml)
}

/// A modern `tools/call` of `kid__sample` (declaring sampling), with `extra` params members and
/// a progress token (in the same `_meta` as the era's keys) if given.
fn modern_call_with_token(e: &Env, id: u32, extra: &str, token: Option<&str>) -> Response {
    let token = token.map_or(String::new(), |t| format!(r#""progressToken":"{t}","#));
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"kid__sample","arguments":{{}}{extra},"_meta":{{{token}"io.modelcontextprotocol/protocolVersion":"{V}","io.modelcontextprotocol/clientCapabilities":{{"sampling":{{}}}}}}}}}}"#
    );
    let h = [
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/call"),
        ("mcp-name", "kid__sample"),
    ];
    post(e.addr(), &h, &body)
}

#[test]
fn progress_after_a_resume_carries_the_retry_s_own_token() {
    let e = stdio_child();
    let sampled =
        json!({"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"});
    for (i, retry_token) in [Some("retry-tok"), None].into_iter().enumerate() {
        let id = 10 * i as u32;
        let first = modern_call_with_token(&e, id + 1, "", Some("first-tok"));
        let (res, state) = asked(&first);
        assert_eq!(
            res["inputRequests"]["sampling"]["method"],
            "sampling/createMessage"
        );
        let extra = format!(
            r#","inputResponses":{{"sampling":{sampled}}},"requestState":{}"#,
            json!(state)
        );
        let done = modern_call_with_token(&e, id + 2, &extra, retry_token);
        assert_eq!(done.status, 200, "{}", done.body);
        let events: Vec<Value> = done
            .body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let progress: Vec<&Value> = events
            .iter()
            .filter(|v| v["method"] == "notifications/progress")
            .collect();
        match retry_token {
            Some(t) => {
                assert_eq!(progress.len(), 1, "{}", done.body);
                assert_eq!(progress[0]["params"]["progressToken"], t, "{}", done.body);
            }
            // A retry that asked for no progress gets none (not the gateway's token).
            None => assert!(progress.is_empty(), "{}", done.body),
        }
        let last = if events.is_empty() {
            done.json()
        } else {
            events[events.len() - 1].clone()
        };
        assert_eq!(last["id"], id + 2);
        assert_eq!(
            last["result"]["content"][0]["text"], "sampled: hi",
            "{}",
            done.body
        );
    }
}

/// A minimal modern-only Streamable HTTP server with one tool, `peek`, whose result is the
/// `clientCapabilities` its request declared (as text). Returns its MCP URL.
fn peeking_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve_peek(conn));
        }
    });
    format!("http://{addr}/mcp")
}

fn serve_peek(conn: TcpStream) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end().to_ascii_lowercase();
            if h.is_empty() {
                break;
            }
            if let Some(v) = h.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
            return;
        }
        let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let hint = json!({"resultType": "complete", "ttlMs": 0, "cacheScope": "private"});
        let mut result = match req["method"].as_str().unwrap_or("") {
            "server/discover" => {
                json!({"supportedVersions": [V], "capabilities": {"tools": {}}})
            }
            "tools/list" => json!({"tools": [
                {"name": "peek", "inputSchema": {"type": "object"}},
                {"name": "log", "inputSchema": {"type": "object"}}
            ]}),
            "tools/call" if req["params"]["name"] == "log" => {
                // Log messages at two levels (whatever the request asked for), then the result.
                let mut events = String::new();
                for level in ["debug", "error"] {
                    let note = json!({"jsonrpc": "2.0", "method": "notifications/message",
                        "params": {"level": level, "data": format!("at {level}")}});
                    events.push_str(&format!("event: message\ndata: {note}\n\n"));
                }
                let done = json!({"jsonrpc": "2.0", "id": req["id"], "result":
                    {"content": [], "isError": false, "resultType": "complete"}});
                events.push_str(&format!("event: message\ndata: {done}\n\n"));
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n",
                    events.len()
                );
                if out
                    .write_all(head.as_bytes())
                    .and_then(|_| out.write_all(events.as_bytes()))
                    .is_err()
                {
                    return;
                }
                continue;
            }
            "tools/call" => {
                let caps = &req["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"];
                json!({"content": [{"type": "text", "text": caps.to_string()}], "isError": false})
            }
            _ => Value::Null,
        };
        let (status, reply) = match result.as_object_mut() {
            Some(r) => {
                r.extend(hint.as_object().unwrap().clone());
                (
                    "200 OK",
                    json!({"jsonrpc": "2.0", "id": req["id"], "result": result}),
                )
            }
            None if req.get("id").is_none() => ("202 Accepted", Value::Null),
            None => (
                "404 Not Found",
                json!({"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32601, "message": "Method not found"}}),
            ),
        };
        let text = if reply.is_null() {
            String::new()
        } else {
            reply.to_string()
        };
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            text.len()
        );
        if out
            .write_all(head.as_bytes())
            .and_then(|_| out.write_all(text.as_bytes()))
            .is_err()
        {
            return;
        }
    }
}

#[test]
fn a_legacy_session_s_sub_capabilities_reach_a_modern_server() {
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n\
         [[server]]\nname = \"m\"\ntransport = \"http\"\nurl = \"{}\"\n",
        peeking_server()
    );
    let e = Env::with_config(vec![], &toml);
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"m__peek","arguments":{}}}"#;
    let declared = |caps: &str| -> Value {
        let s = session_with(&e, caps);
        let r = e.call(&s, call);
        let text = r.json()["result"]["content"][0]["text"].clone();
        serde_json::from_str(text.as_str().unwrap_or("null")).unwrap_or(Value::Null)
    };
    let full = r#"{"sampling":{"tools":{},"context":{}},"elicitation":{"form":{},"url":{}},"roots":{"listChanged":true},"experimental":{}}"#;
    assert_eq!(
        declared(full),
        json!({"sampling":{"tools":{},"context":{}},"elicitation":{"form":{},"url":{}},"roots":{"listChanged":true}})
    );
    // Only what was declared: a bare elicitation stays bare (form by default), url-only stays so.
    assert_eq!(
        declared(r#"{"elicitation":{},"sampling":{}}"#),
        json!({"sampling":{},"elicitation":{}})
    );
    assert_eq!(
        declared(r#"{"elicitation":{"url":{}}}"#),
        json!({"elicitation":{"url":{}}})
    );
}

#[test]
fn a_modern_client_needs_the_sub_capability_the_server_s_request_calls_for() {
    let e = legacy_with_ask();
    // The demo's question is a form elicitation: url-only does not cover it.
    let r = modern_call(
        &e,
        1,
        "alpha__ask",
        "{}",
        "",
        r#"{"elicitation":{"url":{}}}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let err = &r.json()["error"];
    assert_eq!(err["code"], -32021, "{}", r.body);
    assert_eq!(
        err["data"],
        json!({"requiredCapabilities": {"elicitation": {"form": {}}}}),
        "{}",
        r.body
    );
    // Form declared explicitly, or bare (form by default): the question is asked.
    for caps in [r#"{"elicitation":{"form":{}}}"#, ELICIT] {
        let (res, _) = asked(&modern_call(&e, 2, "alpha__ask", "{}", "", caps));
        assert_eq!(
            res["inputRequests"]["elicitation"]["method"],
            "elicitation/create"
        );
    }
}

/// The value of an unlabelled metric in the gateway's Prometheus output.
fn metric(e: &Env, name: &str) -> Option<u64> {
    let text = get(e.admin(), "/metrics").body;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn parked_calls_resumes_and_expiries_are_metrics() {
    let e = legacy_with_ask();
    assert_eq!(metric(&e, "ringgate_bridge_parked_calls"), Some(0));
    let (_, state) = asked(&modern_call(&e, 1, "alpha__ask", "{}", "", ELICIT));
    assert_eq!(metric(&e, "ringgate_bridge_parked_calls"), Some(1));
    let extra = retry_fields(Some(&accept("Ada")), &state);
    let done = modern_call(&e, 2, "alpha__ask", "{}", &extra, ELICIT);
    assert_eq!(done.json()["result"]["content"][0]["text"], "hello Ada");
    assert_eq!(metric(&e, "ringgate_bridge_parked_calls"), Some(0));
    assert_eq!(metric(&e, "ringgate_bridge_resumes_total"), Some(1));
    assert_eq!(metric(&e, "ringgate_bridge_expiries_total"), Some(0));

    let mut opts = DemoOptions::new("a");
    opts.ask = true;
    let e = Env::start(vec![opts], "input_timeout_ms = 1");
    asked(&modern_call(&e, 1, "alpha__ask", "{}", "", ELICIT));
    let expired = eventually(Duration::from_secs(10), || {
        metric(&e, "ringgate_bridge_expiries_total") == Some(1)
    });
    assert!(expired, "{}", get(e.admin(), "/metrics").body);
    assert_eq!(metric(&e, "ringgate_bridge_parked_calls"), Some(0));
    assert_eq!(metric(&e, "ringgate_bridge_resumes_total"), Some(0));
}

#[test]
fn a_modern_client_gets_log_messages_at_or_above_its_log_level_only() {
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n\
         [[server]]\nname = \"m\"\ntransport = \"http\"\nurl = \"{}\"\n",
        peeking_server()
    );
    let e = Env::with_config(vec![], &toml);
    let h = [
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/call"),
        ("mcp-name", "m__log"),
    ];
    let levels = |log_level: Option<&str>| -> Vec<String> {
        let mut b = modern_body(1, "tools/call", r#""name":"m__log","arguments":{}"#, "{}");
        if let Some(l) = log_level {
            let with = format!(r#""_meta":{{"io.modelcontextprotocol/logLevel":"{l}","#);
            b = b.replace(r#""_meta":{"#, &with);
        }
        let r = post(e.addr(), &h, &b);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["result"]["resultType"], "complete", "{}", r.body);
        r.body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter(|v| v["method"] == "notifications/message")
            .map(|v| v["params"]["level"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(levels(Some("debug")), ["debug", "error"]);
    assert_eq!(levels(Some("warning")), ["error"]);
    assert_eq!(levels(Some("emergency")), Vec::<String>::new());
    // No logLevel: the request asked for no log messages.
    assert_eq!(levels(None), Vec::<String>::new());
}
