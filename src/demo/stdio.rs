//! The demo server over stdio (`ringgate demo-server --transport stdio`): newline-delimited JSON-RPC
//! on stdin/stdout, logs on stderr. Stdin is read by a plain thread (it is not a socket) and each
//! message is handled on the runtime; every line written to stdout is one whole message.
//!
//! `--transport stdio-modern` serves the 2026-07-28 era only: it answers `server/discover`,
//! refuses `initialize` (-32601) and any request without the era's `_meta` protocol version
//! (-32602), and acknowledges `subscriptions/listen` (list changes then flow on stdout). The
//! plain stdio demo is legacy: it answers `server/discover` with -32601.

use std::cell::Cell;
use std::io::{BufRead, Write};
use std::rc::Rc;

use bytes::Bytes;

use super::{tools, Demo, DemoOptions};
use crate::wire::names::meta::PROTOCOL_VERSION;
use crate::wire::{self, code, encode, method, Kind};

/// Serves one demo server on this process's stdin/stdout until stdin closes.
pub fn run_stdio(opts: DemoOptions) -> std::io::Result<()> {
    serve(opts, false)
}

/// Serves one modern-only (2026-07-28) demo server on stdin/stdout until stdin closes.
pub fn run_stdio_modern(opts: DemoOptions) -> std::io::Result<()> {
    serve(opts, true)
}

fn serve(opts: DemoOptions, modern: bool) -> std::io::Result<()> {
    let (tx, rx) = async_channel::unbounded::<Bytes>();
    std::thread::Builder::new()
        .name("demo-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().split(b'\n').map_while(Result::ok) {
                if tx.send_blocking(Bytes::from(line)).is_err() {
                    return;
                }
            }
        })?;
    crate::runtime::worker::block_on(async move {
        let demo = Rc::new(Demo::new(opts));
        // A modern client hears of changes only once it listens (`subscriptions/listen`).
        let listening = Rc::new(Cell::new(!modern));
        forward_list_changed(&demo, listening.clone());
        let inflight = Rc::new(std::cell::Cell::new(0usize));
        while let Ok(line) = rx.recv().await {
            let (demo, inflight, listening) = (demo.clone(), inflight.clone(), listening.clone());
            inflight.set(inflight.get() + 1);
            monoio::spawn(async move {
                if !modern || !modern_answer(&demo, &line, &listening) {
                    handle_line(&demo, line).await;
                }
                inflight.set(inflight.get() - 1);
            });
        }
        // stdin closed: finish what is in flight (bounded), then exit.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while inflight.get() > 0 && std::time::Instant::now() < deadline {
            monoio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
}

/// The demo's list_changed notifications go straight to stdout (while someone listens).
fn forward_list_changed(demo: &Rc<Demo>, listening: Rc<Cell<bool>>) {
    let mut reg = demo.streams.add(0);
    monoio::spawn(async move {
        while let Some(msg) = reg.rx.recv().await {
            if listening.get() {
                write_line(&msg);
            }
        }
    });
}

async fn handle_line(demo: &Demo, line: Bytes) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let env = match wire::parse(&line) {
        Ok(e) => e,
        Err(e) => return write_line(&encode::error_response(None, e.code(), e.reason(), None)),
    };
    if env.kind != Kind::Request {
        super::sampling::take_answer(&demo.asks, &line, &env);
        return;
    }
    if super::sampling::is_sample_call(&line, &env) {
        return super::sampling::call_lines(&demo.asks, &line, &env, write_line).await;
    }
    let m = env.method(&line).unwrap_or("");
    if m == method::INITIALIZE {
        return write_line(&tools::initialize_result(demo, &line, &env));
    }
    if tools::is_progress_sleep(&line, &env) {
        return tools::call_with_progress(&line, &env, |msg| {
            write_line(&msg);
            true
        })
        .await;
    }
    write_line(&tools::handle(demo, &line, &env).await);
}

/// The modern-only answers; `true` when the line was answered here.
fn modern_answer(demo: &Demo, line: &Bytes, listening: &Cell<bool>) -> bool {
    let Ok(env) = wire::parse(line) else {
        return false;
    };
    let (Kind::Request, Some((id, _))) = (env.kind, env.id) else {
        return false;
    };
    let id = id.get(line);
    let has_version = env.meta.is_some_and(|m| {
        let meta = m.get(line);
        meta.windows(PROTOCOL_VERSION.len())
            .any(|w| w == PROTOCOL_VERSION)
    });
    let reply = match env.method(line).unwrap_or("") {
        method::INITIALIZE => {
            encode::error_response(Some(id), code::METHOD_NOT_FOUND, "modern-only server", None)
        }
        _ if !has_version => encode::error_response(
            Some(id),
            code::INVALID_PARAMS,
            "missing _meta io.modelcontextprotocol/protocolVersion",
            None,
        ),
        method::SERVER_DISCOVER => {
            let mut r = br#"{"supportedVersions":["2026-07-28"],"capabilities":{"tools":{"listChanged":true},"resources":{},"prompts":{}},"ttlMs":0,"cacheScope":"public","resultType":"complete","_meta":{"io.modelcontextprotocol/serverInfo":{"name":"#.to_vec();
            encode::write_json_string(&mut r, &demo.opts.name);
            r.extend_from_slice(br#","version":"1.0.0"}}}"#);
            encode::result_response(id, &r)
        }
        method::SUBSCRIPTIONS_LISTEN => {
            listening.set(true);
            let mut p = br#"{"notifications":{"toolsListChanged":true},"_meta":{"io.modelcontextprotocol/subscriptionId":"#.to_vec();
            p.extend_from_slice(id);
            p.extend_from_slice(b"}}");
            encode::notification(method::SUBSCRIPTIONS_ACKNOWLEDGED, Some(&p))
        }
        _ => return false,
    };
    write_line(&reply);
    true
}

fn write_line(msg: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(msg)
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush());
}
