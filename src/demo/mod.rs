//! The built-in demo MCP server (`ringgate demo-server`): small, but a real MCP server.
//!
//! It speaks Streamable HTTP in the legacy era (sessions, 404 on unknown sessions, DELETE, a GET
//! notification stream, SSE replies carrying progress) at `/mcp` and, on the same listener, the
//! legacy HTTP+SSE transport (`GET /sse` + `POST /messages`, see `sse`); it also serves stdio
//! (`stdio`). It offers a few tools, a resource, a resource template and a prompt, the same over
//! every transport, and can change its tool list at runtime (`set_extra_tools`, which sends
//! `notifications/tools/list_changed`). The no-argument demo runs two of these in-process and a
//! third as a stdio child, and fronts them over three transports ([`demo_config_toml`]); the
//! integration tests use it as their harness downstream. [`DemoOptions`] exposes the knobs
//! tests need (generated tools, downstream pagination, the `ask` tool, the 2026-07-28 era).
//!
//! With [`DemoOptions::modern`] it is a 2026-07-28 server instead: no sessions, `server/discover`,
//! and its `ask` tool asks with multi round-trip requests (`input_required`) rather than
//! server-to-client requests (see `ask`).

mod ask;
mod sampling;
mod sse;
mod stdio;
mod tasks;
mod tools;

pub use stdio::{run_stdio, run_stdio_modern};

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use bytes::Bytes;
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpListener;

use crate::runtime::front::media_accepted;
use crate::session::streams::StreamHub;
use crate::transport::http::{HttpLimits, Method, Request, ServerConn};
use crate::wire::{self, code, encode, method, Kind};

/// Settings of one demo server.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Server name (serverInfo and resource URIs).
    pub name: String,
    /// Address to listen on (port 0 picks one).
    pub listen: SocketAddr,
    /// Generated tools `tool_000`… offered besides the built-in ones.
    pub extra_tools: usize,
    /// Items per `tools/list` page (None: everything in one page).
    pub page_size: Option<usize>,
    /// Offer the `ask` tool (elicitation; always offered in the modern era).
    pub ask: bool,
    /// Speak the 2026-07-28 era (stateless, `server/discover`, `input_required`) instead.
    pub modern: bool,
}

impl DemoOptions {
    /// A demo server named `name` on an ephemeral loopback port.
    pub fn new(name: &str) -> Self {
        DemoOptions {
            name: name.to_string(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            extra_tools: 0,
            page_size: None,
            ask: false,
            modern: false,
        }
    }
}

/// A running demo server.
pub struct DemoHandle {
    /// Its address.
    pub addr: SocketAddr,
    deletes: Arc<AtomicUsize>,
    stop: Option<async_channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DemoHandle {
    /// The MCP endpoint URL (Streamable HTTP).
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// The legacy HTTP+SSE endpoint URL (the event stream; messages go to `/messages`).
    pub fn sse_url(&self) -> String {
        format!("http://{}{}", self.addr, sse::SSE_PATH)
    }

    /// How many sessions clients ended with `DELETE` (tests check that the gateway ends its own).
    pub fn deletes(&self) -> usize {
        self.deletes.load(Ordering::Relaxed)
    }

    /// Stops the server and waits for its thread (its port closes).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            // Closing the channel wakes every receiver: the accept loop and each connection.
            s.close();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DemoHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts a demo server on its own thread.
pub fn spawn(opts: DemoOptions) -> std::io::Result<DemoHandle> {
    let std_listener = std::net::TcpListener::bind(opts.listen)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let (stop_tx, stop_rx) = async_channel::bounded(1);
    let (ready_tx, ready_rx) = mpsc::channel();
    let deletes = Arc::new(AtomicUsize::new(0));
    let counted = deletes.clone();
    let thread = std::thread::Builder::new()
        .name(format!("demo-{}", opts.name))
        .spawn(move || {
            let _ = crate::runtime::worker::block_on(async move {
                let listener = match TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => return log::error!("demo server: {e}"),
                };
                let _ = ready_tx.send(());
                let mut demo = Demo::new(opts);
                demo.deletes = counted;
                serve(Rc::new(demo), listener, stop_rx).await;
            });
        })?;
    let _ = ready_rx.recv();
    Ok(DemoHandle {
        addr,
        deletes,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// Runs a demo server in the foreground (`ringgate demo-server`).
pub fn run_foreground(opts: DemoOptions) -> std::io::Result<()> {
    let handle = spawn(opts)?;
    let (url, sse_url) = (handle.url(), handle.sse_url());
    log::info!("demo MCP server listening on {url} (Streamable HTTP) and {sse_url} (HTTP+SSE)");
    eprintln!("demo MCP server listening on {url} (Streamable HTTP) and {sse_url} (HTTP+SSE)");
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let _ = signals.forever().next();
    handle.stop();
    Ok(())
}

/// One demo server's state.
pub struct Demo {
    opts: DemoOptions,
    sessions: RefCell<HashSet<String>>,
    extra_tools: Cell<usize>,
    streams: StreamHub,
    asks: sampling::Asks,
    tasks: tasks::Table,
    /// `notifications/cancelled` received (the `cancellations` tool reports it).
    cancelled: Cell<u64>,
    /// Sessions ended by `DELETE` (shared with the handle).
    deletes: Arc<AtomicUsize>,
    /// Open legacy HTTP+SSE sessions (`sse`).
    sse: sse::Sessions,
}

impl Demo {
    fn new(opts: DemoOptions) -> Self {
        Demo {
            extra_tools: Cell::new(opts.extra_tools),
            opts,
            sessions: RefCell::new(HashSet::new()),
            streams: StreamHub::default(),
            asks: sampling::Asks::default(),
            tasks: tasks::Table::default(),
            cancelled: Cell::new(0),
            deletes: Arc::default(),
            sse: sse::Sessions::default(),
        }
    }
}

async fn serve(demo: Rc<Demo>, listener: TcpListener, stop: async_channel::Receiver<()>) {
    // The open connections' descriptors: a task removes its own right after its stream is
    // dropped, with no await in between, so a descriptor listed here is still this server's.
    let open: Rc<RefCell<HashSet<RawFd>>> = Rc::default();
    loop {
        monoio::select! {
            accepted = listener.accept() => if let Ok((stream, _)) = accepted {
                let _ = crate::transport::listener::set_cloexec(&stream);
                let _ = stream.set_nodelay(true);
                let fd = stream.as_raw_fd();
                let (demo, stop, open) = (demo.clone(), stop.clone(), open.clone());
                open.borrow_mut().insert(fd);
                monoio::spawn(async move {
                    // A stopped server drops its connections at once, like a killed process.
                    monoio::select! {
                        _ = connection(demo, stream) => {},
                        _ = stop.recv() => {},
                    }
                    open.borrow_mut().remove(&fd);
                });
            },
            _ = stop.recv() => break,
        }
    }
    // Like a killed process, the peers get their FIN now: a shutdown does not wait for the
    // descriptors to close, which io_uring does only once cancelled operations complete (and
    // which a loaded machine can delay past the moment a test expects the server gone).
    for fd in open.borrow().iter() {
        let _ = nix::sys::socket::shutdown(*fd, nix::sys::socket::Shutdown::Both);
    }
    // Let every connection task see the stop and close its socket before the runtime goes
    // (tasks still pending when a runtime is dropped would keep their sockets open).
    drop(listener);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !open.borrow().is_empty() && std::time::Instant::now() < deadline {
        monoio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    // A cancelled io_uring read completes (and its socket really closes) only when the runtime
    // runs again: give it a turn before the runtime is dropped.
    monoio::time::sleep(std::time::Duration::from_millis(20)).await;
}

async fn connection<S: AsyncReadRent + AsyncWriteRent>(demo: Rc<Demo>, stream: S) {
    let mut conn = ServerConn::new(stream, HttpLimits::default());
    while let Ok(Some(req)) = conn.read_request().await {
        let ok = match (req.method, req.path_str()) {
            (Method::Post, "/mcp") => post(&demo, &mut conn, &req).await,
            (Method::Get, "/mcp") => get(&demo, &mut conn, &req).await,
            (Method::Get, sse::SSE_PATH) => sse::open_stream(&demo, &mut conn).await,
            (Method::Post, sse::MESSAGES_PATH) => sse::post_message(&demo, &mut conn, &req).await,
            (Method::Delete, "/mcp") => {
                let known = session_of(&req).is_some_and(|s| demo.sessions.borrow_mut().remove(&s));
                if known {
                    demo.deletes.fetch_add(1, Ordering::Relaxed);
                }
                conn.write_response(if known { 200 } else { 404 }, &[], &[])
                    .await
                    .is_ok()
            }
            _ => conn.write_response(404, &[], &[]).await.is_ok(),
        };
        if !ok || !conn.keep_alive() {
            return;
        }
    }
}

fn session_of(req: &Request) -> Option<String> {
    req.headers.get_str("mcp-session-id").map(str::to_string)
}

async fn post<S: AsyncReadRent + AsyncWriteRent>(
    demo: &Demo,
    conn: &mut ServerConn<S>,
    req: &Request,
) -> bool {
    let body = &req.body;
    let env = match wire::parse(body) {
        Ok(e) => e,
        Err(e) => {
            let reply = encode::error_response(None, e.code(), e.reason(), None);
            return json(conn, 400, reply, None).await;
        }
    };
    let m = env.method(body).unwrap_or("");
    if demo.opts.modern {
        return modern_post(demo, conn, body, &env).await;
    }
    if m == method::INITIALIZE {
        let sid = new_session_id();
        demo.sessions.borrow_mut().insert(sid.clone());
        let reply = tools::initialize_result(demo, body, &env);
        return json(conn, 200, reply, Some(&sid)).await;
    }
    let known = session_of(req).is_some_and(|s| demo.sessions.borrow().contains(&s));
    if !known {
        let reply = encode::error_response(None, code::INVALID_REQUEST, "Session not found", None);
        return json(conn, 404, reply, None).await;
    }
    if env.kind != Kind::Request {
        if env.method(body) == Some(method::CANCELLED) {
            demo.cancelled.set(demo.cancelled.get() + 1);
        }
        sampling::take_answer(&demo.asks, body, &env);
        return conn.write_response(202, &[], &[]).await.is_ok();
    }
    let wants_sse = req
        .headers
        .get("accept")
        .is_some_and(|a| media_accepted(a, b"text/event-stream"));
    if tools::is_progress_sleep(body, &env) && wants_sse {
        return sse_with_progress(conn, body, &env).await;
    }
    if sampling::is_sample_call(body, &env) && wants_sse {
        if sampling::is_standalone(body, &env) {
            return sampling::call_standalone(&demo.asks, &demo.streams, conn, body, &env).await;
        }
        return sampling::call(&demo.asks, conn, body, &env).await;
    }
    if ask::is_ask_call(body, &env) && wants_sse {
        return ask::call(&demo.asks, conn, body, &env).await;
    }
    let reply = tools::handle(demo, body, &env).await;
    json(conn, 200, reply, None).await
}

/// A POST to a modern (2026-07-28) demo server: no sessions, `server/discover`, `ask` by MRTR.
async fn modern_post<S: AsyncReadRent + AsyncWriteRent>(
    demo: &Demo,
    conn: &mut ServerConn<S>,
    body: &Bytes,
    env: &wire::Envelope,
) -> bool {
    if env.kind != Kind::Request {
        return conn.write_response(202, &[], &[]).await.is_ok();
    }
    let reply = match env.method(body).unwrap_or("") {
        method::SERVER_DISCOVER => {
            ask::respond(body, env, Ok(ask::discover_result(&demo.opts.name)))
        }
        method::INITIALIZE => ask::respond(
            body,
            env,
            Err((
                code::METHOD_NOT_FOUND,
                "this server speaks 2026-07-28 only".into(),
            )),
        ),
        _ if ask::is_ask_call(body, env) => ask::respond(body, env, ask::modern_call(body, env)),
        _ => tools::handle(demo, body, env).await,
    };
    json(conn, 200, reply, None).await
}

/// Streams progress and then the response as SSE events.
async fn sse_with_progress<S: AsyncReadRent + AsyncWriteRent>(
    conn: &mut ServerConn<S>,
    body: &[u8],
    env: &wire::Envelope,
) -> bool {
    if !sampling::start_stream(conn).await {
        return false;
    }
    // Events are produced while sleeping between steps; collect then write each promptly.
    let (tx, rx) = local_sync::mpsc::unbounded::channel::<Bytes>();
    let produce = tools::call_with_progress(body, env, move |m| tx.send(m).is_ok());
    let mut rx = rx;
    let write = async {
        while let Some(m) = rx.recv().await {
            if !sampling::send_event(conn, &m).await {
                return false;
            }
        }
        true
    };
    let (_, ok) = monoio::join!(produce, write);
    ok && conn.finish_stream().await.is_ok()
}

async fn get<S: AsyncReadRent + AsyncWriteRent>(
    demo: &Demo,
    conn: &mut ServerConn<S>,
    req: &Request,
) -> bool {
    if !session_of(req).is_some_and(|s| demo.sessions.borrow().contains(&s)) {
        return conn.write_response(404, &[], &[]).await.is_ok();
    }
    if !sampling::start_stream(conn).await {
        return false;
    }
    let mut reg = demo.streams.add(0);
    while let Some(msg) = reg.rx.recv().await {
        if !sampling::send_event(conn, &msg).await {
            break;
        }
    }
    demo.streams.remove(reg.key);
    false
}

async fn json<S: AsyncReadRent + AsyncWriteRent>(
    conn: &mut ServerConn<S>,
    status: u16,
    body: Bytes,
    sid: Option<&str>,
) -> bool {
    let ct = ("content-type", &b"application/json"[..]);
    let r = match sid {
        Some(s) => {
            conn.write_response(status, &[ct, ("mcp-session-id", s.as_bytes())], &[body])
                .await
        }
        None => conn.write_response(status, &[ct], &[body]).await,
    };
    r.is_ok()
}

fn new_session_id() -> String {
    let mut raw = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the no-argument demo's gateway serves MCP (`/mcp`, and `/sse` for HTTP+SSE clients).
pub const DEMO_LISTEN: &str = "127.0.0.1:8787";
/// Where the no-argument demo's gateway serves its admin endpoints.
pub const DEMO_ADMIN_LISTEN: &str = "127.0.0.1:8788";

/// The config the no-argument demo runs: three demo servers, one per transport, in one catalog:
/// `demo` over Streamable HTTP (`demo_url`, an in-process server's `/mcp`), `notes` over legacy
/// HTTP+SSE (`notes_sse_url`, an in-process server's `/sse`) and `local` over stdio (a child
/// process: `exe`, this same binary, as `demo-server --transport stdio`). The gateway listens on
/// [`DEMO_LISTEN`] and [`DEMO_ADMIN_LISTEN`].
pub fn demo_config_toml(demo_url: &str, notes_sse_url: &str, exe: &str) -> String {
    let mut exe_json = Vec::new();
    crate::wire::encode::write_json_string(&mut exe_json, exe);
    let exe_json = String::from_utf8_lossy(&exe_json);
    format!(
        r#"# The built-in demo: three demo MCP servers, three transports, one catalog.
[gateway]
listen = "{DEMO_LISTEN}"
admin_listen = "{DEMO_ADMIN_LISTEN}"

[[server]]
name = "demo"
transport = "http"
url = "{demo_url}"

[[server]]
name = "notes"
transport = "sse"
url = "{notes_sse_url}"

[[server]]
name = "local"
transport = "stdio"
command = {exe_json}
args = ["demo-server", "--transport", "stdio", "--name", "local"]
"#
    )
}
