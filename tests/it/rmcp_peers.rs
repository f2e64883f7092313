//! The official Rust MCP SDK (`rmcp`) as real peers of the gateway.
//!
//! rmcp plays both sides: its Streamable HTTP *servers* sit behind the gateway as downstreams, and
//! its Streamable HTTP *client* (reqwest) talks to the gateway's front. rmcp is tokio-based, so every
//! test owns a small tokio runtime (servers run on its worker threads, the client future runs on the
//! test thread via `block_on`), while the gateway and the demo servers run on their own threads.
//! Every client step is bounded by [`STEP`], so a gateway that never answers fails the test instead
//! of hanging it.

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    Implementation, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ResourceContents, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{
    StreamableHttpClientTransport, StreamableHttpServerConfig, StreamableHttpService,
};
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler, ServiceError, ServiceExt};
use serde_json::{json, Value};

use ringgate::config;
use ringgate::demo::{self, DemoOptions};
use ringgate::runtime::{self, Running};

/// Upper bound for any one client step (connect, list, call).
const STEP: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// rmcp downstream servers
// ---------------------------------------------------------------------------------------------

/// Which tools an rmcp downstream offers.
#[derive(Clone, Copy, Debug)]
enum Flavor {
    /// Server "one": `sum{a,b}` (text and structuredContent `{sum}`), `negate{n}`.
    Math,
    /// Server "two": `shout{text}` (upper case), `length{text}`.
    Words,
}

/// A hand-written rmcp `ServerHandler` (no tool macros: fewer crates to build).
#[derive(Clone)]
struct Toolbox {
    name: &'static str,
    flavor: Flavor,
}

fn object(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not a JSON object: {other}"),
    }
}

fn schema(props: Value, required: &[&str]) -> serde_json::Map<String, Value> {
    object(json!({ "type": "object", "properties": props, "required": required }))
}

impl Toolbox {
    fn tools(&self) -> Vec<Tool> {
        match self.flavor {
            Flavor::Math => vec![
                Tool::new(
                    "sum",
                    "Adds two integers",
                    schema(
                        json!({ "a": { "type": "integer" }, "b": { "type": "integer" } }),
                        &["a", "b"],
                    ),
                ),
                Tool::new(
                    "negate",
                    "Negates an integer",
                    schema(json!({ "n": { "type": "integer" } }), &["n"]),
                ),
            ],
            Flavor::Words => vec![
                Tool::new(
                    "shout",
                    "Upper-cases text",
                    schema(json!({ "text": { "type": "string" } }), &["text"]),
                ),
                Tool::new(
                    "length",
                    "Counts characters",
                    schema(json!({ "text": { "type": "string" } }), &["text"]),
                ),
            ],
        }
    }

    fn run(
        &self,
        name: &str,
        args: &serde_json::Map<String, Value>,
    ) -> Result<CallToolResult, ErrorData> {
        let int = |k: &str| {
            args.get(k)
                .and_then(Value::as_i64)
                .ok_or_else(|| ErrorData::invalid_params(format!("'{k}' must be an integer"), None))
        };
        let text = |k: &str| {
            args.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| ErrorData::invalid_params(format!("'{k}' must be a string"), None))
        };
        match (self.flavor, name) {
            (Flavor::Math, "sum") => {
                let sum = int("a")? + int("b")?;
                let mut r = CallToolResult::success(vec![ContentBlock::text(sum.to_string())]);
                r.structured_content = Some(json!({ "sum": sum }));
                Ok(r)
            }
            (Flavor::Math, "negate") => Ok(CallToolResult::success(vec![ContentBlock::text(
                (-int("n")?).to_string(),
            )])),
            (Flavor::Words, "shout") => Ok(CallToolResult::success(vec![ContentBlock::text(
                text("text")?.to_uppercase(),
            )])),
            (Flavor::Words, "length") => Ok(CallToolResult::success(vec![ContentBlock::text(
                text("text")?.chars().count().to_string(),
            )])),
            _ => Err(ErrorData::invalid_params(
                format!("{}: no tool '{name}'", self.name),
                None,
            )),
        }
    }
}

impl ServerHandler for Toolbox {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(self.name, "1.0.0"))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        self.run(&request.name, &args).map(CallToolResponse::from)
    }
}

/// Serves `handler` over rmcp's Streamable HTTP server (default config: stateful sessions, SSE
/// replies) on a loopback port of its own, on `rt`. Returns the endpoint URL.
pub(crate) fn spawn_rmcp_server<H>(rt: &tokio::runtime::Runtime, handler: H) -> String
where
    H: ServerHandler + Clone + Send + Sync + 'static,
{
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind rmcp server");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let addr = std_listener.local_addr().expect("local addr");
    let service: StreamableHttpService<H, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Default::default(),
        StreamableHttpServerConfig::default(),
    );
    let _guard = rt.enter();
    let listener = tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    // The listener is bound (and listening) before this returns: no readiness wait needed.
    format!("http://{addr}/mcp")
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rmcp-peer")
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------------------------------------
// gateway and client
// ---------------------------------------------------------------------------------------------

/// A gateway in front of `servers` (name, url); shut down and joined on drop.
struct Gateway(Option<Running>);

impl Gateway {
    fn start(servers: &[(&str, &str)]) -> Gateway {
        let mut toml = String::from(
            "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n",
        );
        for (name, url) in servers {
            toml.push_str(&format!(
                "[[server]]\nname = \"{name}\"\ntransport = \"http\"\nurl = \"{url}\"\n"
            ));
        }
        let cfg = config::parse_str(&toml, &|k| std::env::var(k).ok()).expect("valid config");
        Gateway(Some(runtime::start(cfg).expect("gateway starts")))
    }

    fn url(&self) -> String {
        format!("http://{}/mcp", self.0.as_ref().expect("running").listen)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(gw) = self.0.take() {
            gw.shutdown();
            gw.wait();
        }
    }
}

type Client = RunningService<RoleClient, ()>;

/// Runs one client step, failing the test if it takes longer than [`STEP`].
async fn step<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {STEP:?}"))
}

/// Connects rmcp's Streamable HTTP client (reqwest) to `url` and runs the `initialize` handshake.
async fn connect(url: &str) -> Client {
    let transport = StreamableHttpClientTransport::from_uri(url.to_string());
    step("initialize", ().serve(transport))
        .await
        .expect("rmcp client initializes through the gateway")
}

fn call(name: &str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_string()).with_arguments(object(args))
}

/// All text blocks of a tool result, joined.
fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// What an rmcp call that should have failed actually said: a JSON-RPC error's message, or the text
/// of an `isError` result. Panics on a successful result (or a transport failure, which would mean
/// the gateway broke the session instead of answering with an MCP error).
fn failure_text(what: &str, r: Result<CallToolResult, ServiceError>) -> String {
    match r {
        Err(ServiceError::McpError(e)) => e.message.to_string(),
        Ok(r) if r.is_error == Some(true) => text_of(&r),
        Ok(r) => panic!("{what}: expected an error, got a result: {r:?}"),
        Err(e) => panic!("{what}: expected an MCP error, got a transport/service failure: {e}"),
    }
}

async fn close(client: Client) {
    let _ = step("close", client.cancel()).await;
}

/// Two rmcp servers ("one": Math, "two": Words) behind a gateway.
struct RmcpSetup {
    gateway: Gateway,
    rt: tokio::runtime::Runtime,
}

impl RmcpSetup {
    fn start() -> RmcpSetup {
        let rt = tokio_runtime();
        let one = spawn_rmcp_server(
            &rt,
            Toolbox {
                name: "one",
                flavor: Flavor::Math,
            },
        );
        let two = spawn_rmcp_server(
            &rt,
            Toolbox {
                name: "two",
                flavor: Flavor::Words,
            },
        );
        let gateway = Gateway::start(&[("one", &one), ("two", &two)]);
        RmcpSetup { gateway, rt }
    }
}

// ---------------------------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------------------------

#[test]
fn rmcp_client_lists_and_calls_through_gateway_across_two_rmcp_servers() {
    let setup = RmcpSetup::start();
    let url = setup.gateway.url();
    setup.rt.block_on(async {
        let client = connect(&url).await;

        let info = client.peer_info().expect("server info after initialize");
        let server = info
            .server_info
            .as_ref()
            .expect("serverInfo in the initialize result");
        assert_eq!(
            server.name, "ringgate",
            "initialize must name the gateway, not a downstream"
        );
        assert!(
            info.capabilities.tools.is_some(),
            "gateway advertises tools: {:?}",
            info.capabilities
        );

        let tools = step("tools/list", client.list_all_tools())
            .await
            .expect("tools/list");
        let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["one__negate", "one__sum", "two__length", "two__shout"],
            "namespaced union of both servers"
        );
        let sum = tools
            .iter()
            .find(|t| t.name == "one__sum")
            .expect("one__sum");
        assert_eq!(
            sum.input_schema.get("required"),
            Some(&json!(["a", "b"])),
            "schema passes through: {sum:?}"
        );

        let r = step(
            "one__sum",
            client.call_tool(call("one__sum", json!({ "a": 2, "b": 40 }))),
        )
        .await
        .expect("one__sum");
        assert_ne!(r.is_error, Some(true), "{r:?}");
        assert_eq!(text_of(&r), "42");
        assert_eq!(
            r.structured_content,
            Some(json!({ "sum": 42 })),
            "structuredContent passes through"
        );

        let r = step(
            "two__shout",
            client.call_tool(call("two__shout", json!({ "text": "hello gateway" }))),
        )
        .await
        .expect("two__shout");
        assert_eq!(text_of(&r), "HELLO GATEWAY");

        // Interleave the servers on one session: each call still reaches its own server.
        let (a, b) = tokio::join!(
            step(
                "one__negate",
                client.call_tool(call("one__negate", json!({ "n": 7 })))
            ),
            step(
                "two__length",
                client.call_tool(call("two__length", json!({ "text": "ringgate" })))
            ),
        );
        assert_eq!(text_of(&a.expect("one__negate")), "-7");
        assert_eq!(text_of(&b.expect("two__length")), "8");

        // A downstream's own error (invalid arguments) reaches the rmcp client as an error.
        let bad = step(
            "one__sum bad args",
            client.call_tool(call("one__sum", json!({ "a": "x" }))),
        )
        .await;
        let msg = failure_text("one__sum with bad arguments", bad);
        assert!(
            msg.contains("'a' must be an integer"),
            "downstream error text: {msg}"
        );

        close(client).await;
    });
}

#[test]
fn rmcp_client_reads_resources_and_prompts_via_gateway() {
    let alpha = demo::spawn(DemoOptions::new("alpha")).expect("demo alpha");
    let beta = demo::spawn(DemoOptions::new("beta")).expect("demo beta");
    let gateway = Gateway::start(&[("alpha", &alpha.url()), ("beta", &beta.url())]);
    let url = gateway.url();
    tokio_runtime().block_on(async {
        let client = connect(&url).await;

        let resources = step("resources/list", client.list_all_resources())
            .await
            .expect("resources/list");
        let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
        assert!(uris.contains(&"demo://alpha/readme"), "{uris:?}");
        assert!(uris.contains(&"demo://beta/readme"), "{uris:?}");

        let templates = step(
            "resources/templates/list",
            client.list_all_resource_templates(),
        )
        .await
        .expect("templates/list");
        let patterns: Vec<&str> = templates.iter().map(|t| t.uri_template.as_str()).collect();
        assert!(
            patterns.contains(&"demo://alpha/notes/{id}"),
            "{patterns:?}"
        );

        let read = step(
            "resources/read",
            client.read_resource(ReadResourceRequestParams::new("demo://alpha/readme")),
        )
        .await
        .expect("resources/read");
        assert!(!read.contents.is_empty(), "{read:?}");
        for c in &read.contents {
            match c {
                ResourceContents::TextResourceContents { uri, text, .. } => {
                    assert_eq!(uri, "demo://alpha/readme");
                    assert!(!text.is_empty(), "readme text is empty");
                }
                other => panic!("expected text contents, got {other:?}"),
            }
        }

        let prompts = step("prompts/list", client.list_all_prompts())
            .await
            .expect("prompts/list");
        let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
        assert!(
            names.contains(&"alpha__greet") && names.contains(&"beta__greet"),
            "{names:?}"
        );
        assert!(
            !names.contains(&"greet"),
            "prompt names must be namespaced: {names:?}"
        );

        let prompt = step(
            "prompts/get",
            client.get_prompt(
                GetPromptRequestParams::new("alpha__greet")
                    .with_arguments(object(json!({ "name": "Ada" }))),
            ),
        )
        .await
        .expect("prompts/get alpha__greet");
        assert!(!prompt.messages.is_empty(), "{prompt:?}");
        let rendered = serde_json::to_string(&prompt.messages).expect("serialize messages");
        assert!(
            rendered.contains("Ada"),
            "the argument reaches the downstream prompt: {rendered}"
        );

        close(client).await;
    });
    drop(gateway);
}

#[test]
fn rmcp_client_sees_unknown_tool_as_error() {
    let setup = RmcpSetup::start();
    let url = setup.gateway.url();
    setup.rt.block_on(async {
        let client = connect(&url).await;

        let msg = failure_text(
            "one__nope",
            step("one__nope", client.call_tool(call("one__nope", json!({})))).await,
        );
        assert!(
            msg.contains("one__nope"),
            "error names the unknown tool: {msg}"
        );
        // Unprefixed names are not routed either.
        let msg = failure_text(
            "sum",
            step(
                "sum",
                client.call_tool(call("sum", json!({ "a": 1, "b": 2 }))),
            )
            .await,
        );
        assert!(msg.contains("sum"), "{msg}");

        // The session survives the errors.
        let r = step(
            "one__sum",
            client.call_tool(call("one__sum", json!({ "a": 1, "b": 2 }))),
        )
        .await
        .expect("one__sum after errors");
        assert_eq!(text_of(&r), "3");

        close(client).await;
    });
}

#[test]
fn rmcp_client_gets_clear_error_when_downstream_dies() {
    let alpha = demo::spawn(DemoOptions::new("alpha")).expect("demo alpha");
    let beta = demo::spawn(DemoOptions::new("beta")).expect("demo beta");
    let gateway = Gateway::start(&[("alpha", &alpha.url()), ("beta", &beta.url())]);
    let url = gateway.url();
    tokio_runtime().block_on(async {
        let client = connect(&url).await;

        let r = step(
            "beta__echo",
            client.call_tool(call("beta__echo", json!({ "message": "before" }))),
        )
        .await
        .expect("beta__echo while beta is up");
        assert!(text_of(&r).contains("before"), "{r:?}");

        beta.stop();

        let msg = failure_text(
            "beta__echo after beta stopped",
            step(
                "beta__echo",
                client.call_tool(call("beta__echo", json!({ "message": "after" }))),
            )
            .await,
        );
        // A clear "that server is down", not a misleading "unknown tool".
        assert!(
            msg.contains("beta") && !msg.contains("unknown tool"),
            "the error names the dead server: {msg}"
        );

        let r = step(
            "alpha__echo",
            client.call_tool(call("alpha__echo", json!({ "message": "still here" }))),
        )
        .await
        .expect("alpha__echo keeps working");
        assert!(text_of(&r).contains("still here"), "{r:?}");
        let r = step(
            "alpha__add",
            client.call_tool(call("alpha__add", json!({ "a": 20, "b": 22 }))),
        )
        .await
        .expect("alpha__add keeps working");
        assert_eq!(
            r.structured_content.as_ref().and_then(|s| s.get("sum")),
            Some(&json!(42)),
            "{r:?}"
        );

        close(client).await;
    });
    drop(gateway);
    drop(alpha);
}
