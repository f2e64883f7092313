//! The 2026-07-28 era on the front: a stateless client (raw HTTP with `_meta` and the routing
//! headers) against legacy-only demo downstreams, every rejection with its status and code, and
//! legacy clients left as they were.

use serde_json::Value;

use crate::harness::*;
use ringgate::demo::DemoOptions;

const V: &str = "2026-07-28";

fn meta_with(version: &str, caps: &str) -> String {
    format!(
        r#""_meta":{{"io.modelcontextprotocol/protocolVersion":"{version}","io.modelcontextprotocol/clientInfo":{{"name":"it","version":"1"}},"io.modelcontextprotocol/clientCapabilities":{caps}}}"#
    )
}

/// A modern request body: `params` members (without braces) plus the modern `_meta`.
fn body(id: u32, method: &str, params: &str) -> String {
    let sep = if params.is_empty() { "" } else { "," };
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{{{params}{sep}{}}}}}"#,
        meta_with(V, "{}")
    )
}

/// POSTs `body` with the modern headers for `method` (and `Mcp-Name` if given).
fn send(e: &Env, method: &str, name: Option<&str>, body: &str) -> Response {
    let mut h = vec![("mcp-protocol-version", V), ("mcp-method", method)];
    if let Some(n) = name {
        h.push(("mcp-name", n));
    }
    post(e.addr(), &h, body)
}

fn call(e: &Env, tool: &str, args: &str) -> Response {
    let b = body(
        7,
        "tools/call",
        &format!(r#""name":"{tool}","arguments":{args}"#),
    );
    send(e, "tools/call", Some(tool), &b)
}

/// Header pairs for a raw request.
type Headers<'a> = Vec<(&'a str, &'a str)>;

fn error_of(r: &Response) -> (u16, i64) {
    (r.status, r.json()["error"]["code"].as_i64().unwrap_or(0))
}

fn env() -> Env {
    Env::start(vec![DemoOptions::new("a"), DemoOptions::new("b")], "")
}

#[test]
fn discover_advertises_versions_capabilities_and_hints() {
    let e = env();
    let r = send(&e, "server/discover", None, &body(1, "server/discover", ""));
    assert_eq!(r.status, 200, "{}", r.body);
    let res = &r.json()["result"];
    let versions: Vec<&str> = res["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(versions[0], V);
    assert!(versions.contains(&"2025-11-25"));
    assert!(res["capabilities"]["tools"].is_object());
    // Resource updates come through subscriptions/listen (resourceSubscriptions).
    assert_eq!(res["capabilities"]["resources"]["subscribe"], true);
    // Legacy-era `tasks` is not a 2026-07-28 capability (the era routes no tasks/* method),
    // though legacy sessions still see it.
    assert!(res["capabilities"].get("tasks").is_none(), "{}", r.body);
    let init = post(e.addr(), &[], r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#).json();
    assert!(init["result"]["capabilities"]["tasks"].is_object());
    assert!(res["instructions"].as_str().unwrap().contains("alpha__"));
    assert_eq!(res["resultType"], "complete");
    assert_eq!(res["ttlMs"], 0);
    assert_eq!(res["cacheScope"], "private");
    assert_eq!(
        res["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "ringgate"
    );
    assert!(r.header("mcp-session-id").is_none());
}

#[test]
fn a_modern_client_lists_and_calls_tools_on_legacy_servers() {
    let e = env();
    let r = send(&e, "tools/list", None, &body(2, "tools/list", ""));
    assert_eq!(r.status, 200, "{}", r.body);
    let res = &r.json()["result"];
    assert_eq!(res["resultType"], "complete");
    assert_eq!(res["ttlMs"], 0);
    assert_eq!(res["cacheScope"], "private");
    let tools = res["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 16);
    assert_eq!(tools[0]["name"], "alpha__echo");

    let r = call(&e, "beta__echo", r#"{"message":"hi"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["id"], 7);
    assert_eq!(v["result"]["resultType"], "complete");
    assert_eq!(v["result"]["content"][0]["text"], "hi");

    // A tool that streams progress first still ends with a modern result.
    let b = body(
        8,
        "tools/call",
        r#""name":"alpha__sleep","arguments":{"ms":50,"steps":2},"_x":1"#,
    );
    let r = send(&e, "tools/call", Some("alpha__sleep"), &b);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["result"]["resultType"], "complete");
    // A streamed reply (progress asked for) tells reverse proxies not to buffer it.
    let b = b.replace(r#""_meta":{"#, r#""_meta":{"progressToken":"t","#);
    let r = send(&e, "tools/call", Some("alpha__sleep"), &b);
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/event-stream")));
    assert!(r.body.contains(r#""progressToken":"t""#), "{}", r.body);
    assert_eq!(r.header("x-accel-buffering"), Some("no"), "{}", r.body);
}

#[test]
fn modern_pages_follow_gateway_cursors() {
    let e = Env::start(vec![DemoOptions::new("a")], "page_size = 3");
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let params = cursor
            .as_ref()
            .map(|c| format!(r#""cursor":"{c}""#))
            .unwrap_or_default();
        let r = send(&e, "tools/list", None, &body(3, "tools/list", &params));
        assert_eq!(r.status, 200, "{}", r.body);
        let res = r.json()["result"].clone();
        assert_eq!(res["resultType"], "complete");
        assert!(res["ttlMs"].is_u64());
        names.extend(
            res["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string()),
        );
        cursor = res["nextCursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(names.len(), 8);
}

#[test]
fn resources_read_carries_cache_hints_and_missing_ones_are_invalid_params() {
    let e = env();
    let uri = "demo://a/readme";
    let b = body(4, "resources/read", &format!(r#""uri":"{uri}""#));
    let r = send(&e, "resources/read", Some(uri), &b);
    assert_eq!(r.status, 200, "{}", r.body);
    let res = &r.json()["result"];
    assert_eq!(res["resultType"], "complete");
    assert_eq!(res["ttlMs"], 0);
    assert_eq!(res["cacheScope"], "private");
    assert!(res["contents"][0]["text"]
        .as_str()
        .unwrap()
        .contains("demo"));

    let missing = "demo://nobody/readme";
    let b = body(5, "resources/read", &format!(r#""uri":"{missing}""#));
    let r = send(&e, "resources/read", Some(missing), &b);
    assert_eq!(error_of(&r), (400, -32602), "{}", r.body);
}

#[test]
fn missing_meta_fields_are_invalid_params() {
    let e = env();
    let no_meta = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
    assert_eq!(
        error_of(&send(&e, "tools/list", None, no_meta)),
        (400, -32602)
    );
    let no_caps = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    let r = send(&e, "tools/list", None, no_caps);
    assert_eq!(error_of(&r), (400, -32602));
    assert_eq!(r.json()["id"], 1);
}

#[test]
fn unsupported_versions_are_refused_with_the_supported_list() {
    let e = env();
    let b = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{{}}}}}"#,
        meta_with("2099-01-01", "{}")
    );
    let h = [
        ("mcp-protocol-version", "2099-01-01"),
        ("mcp-method", "tools/list"),
    ];
    let r = post(e.addr(), &h, &b);
    assert_eq!(error_of(&r), (400, -32022), "{}", r.body);
    let data = &r.json()["error"]["data"];
    assert_eq!(data["requested"], "2099-01-01");
    assert!(data["supported"]
        .as_array()
        .unwrap()
        .contains(&Value::from(V)));
}

#[test]
fn headers_that_disagree_with_the_body_are_header_mismatch() {
    let e = env();
    let list = body(1, "tools/list", "");
    let echo = body(
        1,
        "tools/call",
        r#""name":"alpha__echo","arguments":{"message":"x"}"#,
    );
    let cases: Vec<(&str, Headers, &str)> = vec![
        (
            "method",
            vec![("mcp-protocol-version", V), ("mcp-method", "prompts/list")],
            &list,
        ),
        ("no method", vec![("mcp-protocol-version", V)], &list),
        (
            "no version header",
            vec![("mcp-method", "tools/list")],
            &list,
        ),
        (
            "version",
            vec![
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-method", "tools/list"),
            ],
            &list,
        ),
        (
            "name",
            vec![
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/call"),
                ("mcp-name", "alpha__add"),
            ],
            &echo,
        ),
        (
            "no name",
            vec![("mcp-protocol-version", V), ("mcp-method", "tools/call")],
            &echo,
        ),
        (
            "twice",
            vec![
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/list"),
                ("mcp-method", "tools/list"),
            ],
            &list,
        ),
        (
            "bad base64",
            vec![
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?YWxwaGFfX2VjaG8?="),
            ],
            &echo,
        ),
    ];
    for (what, h, b) in cases {
        let r = post(e.addr(), &h, b);
        // A legacy version header makes this a legacy request: no session → 400 as well.
        if what == "version" {
            assert_eq!(r.status, 400, "{what}: {}", r.body);
            continue;
        }
        assert_eq!(error_of(&r), (400, -32020), "{what}: {}", r.body);
    }
    // The sentinel-encoded name that does match is accepted.
    let h = [
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/call"),
        ("mcp-name", "=?base64?YWxwaGFfX2VjaG8=?="),
    ];
    assert_eq!(post(e.addr(), &h, &echo).status, 200);
}

#[test]
fn unknown_and_legacy_only_methods_are_404() {
    let e = env();
    for m in ["foo/bar", "ping", "logging/setLevel", "resources/subscribe"] {
        let r = send(&e, m, None, &body(9, m, ""));
        assert_eq!(error_of(&r), (404, -32601), "{m}: {}", r.body);
        assert_eq!(r.json()["id"], 9);
    }
}

#[test]
fn a_capability_the_call_needs_but_did_not_declare_is_32021() {
    let e = env();
    let r = call(&e, "alpha__sample", "{}");
    assert_eq!(error_of(&r), (400, -32021), "{}", r.body);
    assert!(r.json()["error"]["data"]["requiredCapabilities"]["sampling"].is_object());
}

#[test]
fn unknown_tools_and_bodies_are_refused_in_the_era_s_terms() {
    let e = env();
    assert_eq!(error_of(&call(&e, "alpha__nope", "{}")), (400, -32602));
    let h = [("mcp-protocol-version", V), ("mcp-method", "tools/list")];
    let r = post(e.addr(), &h, "{not json");
    assert_eq!(error_of(&r), (400, -32700));
    let batch = format!("[{}]", body(1, "tools/list", ""));
    assert_eq!(error_of(&post(e.addr(), &h, &batch)), (400, -32600));
    // Notifications are acknowledged and dropped.
    let note = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#;
    let h = [
        ("mcp-protocol-version", V),
        ("mcp-method", "notifications/cancelled"),
    ];
    assert_eq!(post(e.addr(), &h, note).status, 202);
}

#[test]
fn get_and_delete_are_405_for_modern_requests() {
    let e = env();
    for m in ["GET", "DELETE"] {
        let h = [("mcp-protocol-version", V)];
        let r = request(e.addr(), m, "/mcp", &h, b"");
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow"), Some("POST"));
    }
}

#[test]
fn legacy_clients_see_no_modern_fields() {
    let e = env();
    let s = e.session("2025-11-25");
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    let res = &r.json()["result"];
    assert!(res.get("resultType").is_none() && res.get("ttlMs").is_none());
    let r = e.call(
        &s,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"alpha__echo","arguments":{"message":"x"}}}"#,
    );
    assert_eq!(r.status, 200);
    assert!(r.json()["result"].get("resultType").is_none());
    // Unknown methods stay a JSON-RPC error in a 200 for legacy sessions.
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":3,"method":"foo/bar"}"#);
    assert_eq!(error_of(&r), (200, -32601));
}

/// Opens a `subscriptions/listen` stream with `notifications` (a `SubscriptionFilter`'s members);
/// returns its raw lines (a blocking reader with a 10 s read timeout).
fn open_listen(e: &Env, id: u32, notifications: &str) -> std::io::BufReader<std::net::TcpStream> {
    use std::io::Write;
    let listen = body(
        id,
        "subscriptions/listen",
        &format!(r#""notifications":{{{notifications}}}"#),
    );
    let mut s = std::net::TcpStream::connect(e.addr()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-protocol-version: {V}\r\nmcp-method: subscriptions/listen\r\ncontent-length: {}\r\n\r\n{listen}",
        e.addr(),
        listen.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    std::io::BufReader::new(s)
}

/// Opens a `subscriptions/listen` stream with `notifications` (a `SubscriptionFilter`'s members);
/// returns a reader of its `data:` payloads.
fn listen(e: &Env, id: u32, notifications: &str) -> impl FnMut() -> Value {
    use std::io::BufRead;
    let mut reader = open_listen(e, id, notifications);
    move || loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "stream ended");
        if let Some(d) = line.trim_end().strip_prefix("data: ") {
            return serde_json::from_str::<Value>(d).unwrap();
        }
    }
}

#[test]
fn listen_streams_acknowledged_then_tagged_list_changes() {
    let e = env();
    let mut next_data = listen(
        &e,
        11,
        r#""toolsListChanged":true,"promptsListChanged":false"#,
    );
    let ack = next_data();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["notifications"],
        serde_json::json!({"toolsListChanged": true})
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        11
    );

    let r = call(&e, "alpha__set_extra_tools", r#"{"count":2}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let note = next_data();
    assert_eq!(note["method"], "notifications/tools/list_changed");
    assert_eq!(
        note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        11
    );

    // Without an SSE Accept there is no stream to listen on.
    let h = [
        ("mcp-protocol-version", V),
        ("mcp-method", "subscriptions/listen"),
        ("accept", "application/json"),
    ];
    assert_eq!(
        post(e.addr(), &h, &body(12, "subscriptions/listen", "")).status,
        406
    );
    // The filter is required.
    let h = [
        ("mcp-protocol-version", V),
        ("mcp-method", "subscriptions/listen"),
    ];
    for params in ["", r#""notifications":true"#] {
        let r = post(e.addr(), &h, &body(13, "subscriptions/listen", params));
        assert_eq!(error_of(&r), (400, -32602), "{params}: {}", r.body);
    }
}

#[test]
fn listen_acknowledges_resource_subscriptions_and_delivers_their_updates() {
    let e = env();
    let watched = r#""resourceSubscriptions":["demo://a/readme","nobody://owns-this"]"#;
    let mut next_data = listen(&e, 21, watched);
    let ack = next_data();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    // The URI no server owns is not honoured: no update can ever come for it.
    assert_eq!(
        ack["params"]["notifications"],
        serde_json::json!({"resourceSubscriptions": ["demo://a/readme"]})
    );
    // An update of another resource is not delivered; the watched one is, tagged.
    assert_eq!(
        call(&e, "beta__touch", r#"{"uri":"demo://b/readme"}"#).status,
        200
    );
    assert_eq!(
        call(&e, "alpha__touch", r#"{"uri":"demo://a/readme"}"#).status,
        200
    );
    let note = next_data();
    assert_eq!(note["method"], "notifications/resources/updated", "{note}");
    assert_eq!(note["params"]["uri"], "demo://a/readme");
    assert_eq!(
        note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        21
    );
    // A second stream on the same URI hears it too; closing the first leaves the second working.
    let mut second = listen(&e, 22, r#""resourceSubscriptions":["demo://a/readme"]"#);
    assert_eq!(
        second()["method"],
        "notifications/subscriptions/acknowledged"
    );
    drop(next_data);
    assert_eq!(
        call(&e, "alpha__touch", r#"{"uri":"demo://a/readme"}"#).status,
        200
    );
    let note = second();
    assert_eq!(note["params"]["uri"], "demo://a/readme");
    assert_eq!(
        note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        22
    );
}

/// A modern downstream: the official Rust SDK's Streamable HTTP server (dual-era), behind the
/// gateway next to a legacy demo server.
mod modern_back {
    use rmcp::model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    };
    use rmcp::service::RequestContext;
    use rmcp::{ErrorData, RoleServer, ServerHandler};
    use serde_json::json;

    use super::*;

    /// One tool, `twice{n}`.
    #[derive(Clone)]
    struct Doubler;

    impl ServerHandler for Doubler {
        fn get_info(&self) -> ServerConfig {
            ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
                .with_server_info(Implementation::new("doubler", "1.0.0"))
        }

        async fn list_tools(
            &self,
            _request: Option<PaginatedRequestParams>,
            _context: RequestContext<RoleServer>,
        ) -> Result<ListToolsResult, ErrorData> {
            let schema = json!({"type":"object","properties":{"n":{"type":"integer","x-mcp-header":"N"}},"required":["n"]});
            let serde_json::Value::Object(schema) = schema else {
                unreachable!()
            };
            Ok(ListToolsResult::with_all_items(vec![Tool::new(
                "twice",
                "Doubles n",
                schema,
            )]))
        }

        async fn call_tool(
            &self,
            request: CallToolRequestParams,
            _context: RequestContext<RoleServer>,
        ) -> Result<CallToolResponse, ErrorData> {
            let n = request
                .arguments
                .and_then(|a| a.get("n").and_then(serde_json::Value::as_i64))
                .ok_or_else(|| ErrorData::invalid_params("'n' must be an integer", None))?;
            Ok(CallToolResponse::from(CallToolResult::success(vec![
                ContentBlock::text((2 * n).to_string()),
            ])))
        }
    }

    #[test]
    fn eras_are_detected_and_every_pairing_is_bridged() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio");
        let url = crate::rmcp_peers::spawn_rmcp_server(&rt, Doubler);
        let demo = ringgate::demo::spawn(DemoOptions::new("a")).expect("demo");
        let toml = format!(
            "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n\
             [[server]]\nname = \"old\"\ntransport = \"http\"\nurl = \"{}\"\n\
             [[server]]\nname = \"new\"\ntransport = \"http\"\nurl = \"{url}\"\n",
            demo.url()
        );
        let e = Env::with_config(vec![demo], &toml);

        let servers: Value = serde_json::from_str(&get(e.admin(), "/v1/servers").body).unwrap();
        let era = |name: &str| {
            servers["servers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == name)
                .map(|s| (s["era"].clone(), s["protocolVersion"].clone()))
                .unwrap()
        };
        assert_eq!(era("old"), (json!("legacy"), json!("2025-11-25")));
        assert_eq!(era("new"), (json!("modern"), json!(V)));

        // `twice` mirrors `n` into `Mcp-Param-N`: checked against the body.
        let twice = |args: &str, param: Option<&str>| {
            let b = body(
                7,
                "tools/call",
                &format!(r#""name":"new__twice","arguments":{args}"#),
            );
            let mut h = vec![
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/call"),
                ("mcp-name", "new__twice"),
            ];
            if let Some(p) = param {
                h.push(("mcp-param-n", p));
            }
            post(e.addr(), &h, &b)
        };
        let listed = send(&e, "tools/list", None, &body(8, "tools/list", ""));
        assert!(listed.body.contains("x-mcp-header"), "{}", listed.body);
        assert_eq!(error_of(&twice(r#"{"n":21}"#, None)), (400, -32020));
        assert_eq!(error_of(&twice(r#"{"n":21}"#, Some("22"))), (400, -32020));
        assert_eq!(error_of(&twice(r#"{}"#, Some("22"))), (400, -32020));
        assert_eq!(
            error_of(&twice(r#"{"n":21}"#, Some("=?base64?MjE?="))),
            (400, -32020)
        );
        assert_eq!(twice(r#"{"n":21}"#, Some("21.0")).status, 200);

        // Modern client → modern server: one resultType, the server's answer.
        let r = twice(r#"{"n":21}"#, Some("21"));
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        assert_eq!(v["result"]["content"][0]["text"], "42");
        assert_eq!(v["result"]["resultType"], "complete");
        assert_eq!(r.body.matches("\"resultType\"").count(), 1, "{}", r.body);
        // A modern server's own error comes back as itself (its 4xx is a reply, not an outage).
        let r = twice(r#"{"m":1}"#, None);
        assert_eq!(r.json()["error"]["code"], -32602, "{}", r.body);
        assert_eq!(r.status, 400);

        // Legacy client → modern server: no modern-only fields.
        let s = e.session("2025-11-25");
        let r = e.call(
            &s,
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"new__twice","arguments":{"n":4}}}"#,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let res = &r.json()["result"];
        assert_eq!(res["content"][0]["text"], "8");
        assert!(res.get("resultType").is_none(), "{}", r.body);
        assert!(res.get("ttlMs").is_none() && res.get("cacheScope").is_none());

        // Legacy client → legacy server and modern client → legacy server, side by side.
        let r = e.call(
            &s,
            r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"old__echo","arguments":{"message":"m"}}}"#,
        );
        assert_eq!(r.json()["result"]["content"][0]["text"], "m");
        let r = call(&e, "old__echo", r#"{"message":"m"}"#);
        assert_eq!(r.json()["result"]["resultType"], "complete");

        // The modern server's tools are in the merged catalog, for both eras.
        let r = send(&e, "tools/list", None, &body(8, "tools/list", ""));
        assert!(r.body.contains("new__twice") && r.body.contains("old__echo"));
        drop(e);
        drop(rt);
    }
}

#[test]
fn id_rules_and_header_spelling_follow_the_spec() {
    let e = env();
    let h = [("mcp-protocol-version", V), ("mcp-method", "tools/list")];
    // A request id must be a string or a number; a posted response is not a request.
    let null_id = body(1, "tools/list", "").replacen(r#""id":1"#, r#""id":null"#, 1);
    assert_eq!(error_of(&post(e.addr(), &h, &null_id)), (400, -32600));
    let object_id = body(1, "tools/list", "").replacen(r#""id":1"#, r#""id":{}"#, 1);
    assert_eq!(error_of(&post(e.addr(), &h, &object_id)), (400, -32600));
    let response = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
    assert_eq!(error_of(&post(e.addr(), &h, response)), (400, -32600));
    // String ids come back verbatim.
    let string_id = body(1, "tools/list", "").replacen(r#""id":1"#, r#""id":"a-1""#, 1);
    assert_eq!(post(e.addr(), &h, &string_id).json()["id"], "a-1");
    // Header names are case-insensitive and values are trimmed; values are case-sensitive.
    let echo = body(
        2,
        "tools/call",
        r#""name":"alpha__echo","arguments":{"message":"x"}"#,
    );
    let loud = [
        ("MCP-PROTOCOL-VERSION", V),
        ("MCP-METHOD", "  tools/call\t"),
        ("mcp-NAME", "alpha__echo "),
    ];
    let r = post(e.addr(), &loud, &echo);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["result"]["content"][0]["text"], "x");
    let cased = [("mcp-protocol-version", V), ("mcp-method", "Tools/List")];
    let r = post(e.addr(), &cased, &body(3, "tools/list", ""));
    assert_eq!(error_of(&r), (400, -32020), "{}", r.body);
    // A modern request ignores a session id (and gets none).
    let with_session = [
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/list"),
        ("mcp-session-id", "not-a-session"),
    ];
    let r = post(e.addr(), &with_session, &body(4, "tools/list", ""));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("mcp-session-id").is_none());
}

#[test]
fn a_modern_request_must_accept_json_replies() {
    let e = env();
    let list = body(1, "tools/list", "");
    let with_accept = |accept: &'static str| {
        let h = [
            ("mcp-protocol-version", V),
            ("mcp-method", "tools/list"),
            ("accept", accept),
        ];
        post(e.addr(), &h, &list).status
    };
    assert_eq!(with_accept("text/event-stream"), 406);
    assert_eq!(with_accept("text/html"), 406);
    assert_eq!(with_accept("application/json"), 200);
    assert_eq!(with_accept("application/json, text/event-stream"), 200);
    assert_eq!(with_accept("*/*"), 200);
    // A legacy session may still take SSE only.
    let s = e.session("2025-11-25");
    let h = [
        ("mcp-session-id", s.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
        ("accept", "text/event-stream"),
    ];
    let r = post(
        e.addr(),
        &h,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn a_quiet_listen_stream_gets_keep_alive_comments() {
    use std::io::BufRead;
    let e = Env::start(
        vec![DemoOptions::new("a"), DemoOptions::new("b")],
        "[gateway.limits]\nstream_keepalive_ms = 300",
    );
    // The keep-alive interval is 300 ms here: the reader's 10 s timeout is a deadline well past it,
    // polled by a blocking read.
    let mut reader = open_listen(&e, 31, r#""toolsListChanged":true"#);
    let mut saw_ack = false;
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "stream ended");
        saw_ack |= line.contains("notifications/subscriptions/acknowledged");
        if line.starts_with(": keep-alive") {
            break;
        }
    }
    assert!(saw_ack, "the acknowledgement comes first");
}
