//! The demo server over stdio (`ringgate demo-server --transport stdio`): newline-delimited JSON-RPC
//! on stdin/stdout, logs on stderr. Stdin is read by a plain thread (it is not a socket) and each
//! message is handled on the runtime; every line written to stdout is one whole message.

use std::io::{BufRead, Write};
use std::rc::Rc;

use bytes::Bytes;

use super::{tools, Demo, DemoOptions};
use crate::wire::{self, encode, method, Kind};

/// Serves one demo server on this process's stdin/stdout until stdin closes.
pub fn run_stdio(opts: DemoOptions) -> std::io::Result<()> {
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
        forward_list_changed(&demo);
        let inflight = Rc::new(std::cell::Cell::new(0usize));
        while let Ok(line) = rx.recv().await {
            let (demo, inflight) = (demo.clone(), inflight.clone());
            inflight.set(inflight.get() + 1);
            monoio::spawn(async move {
                handle_line(&demo, line).await;
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

/// The demo's list_changed notifications go straight to stdout.
fn forward_list_changed(demo: &Rc<Demo>) {
    let mut reg = demo.streams.add(0);
    monoio::spawn(async move {
        while let Some(msg) = reg.rx.recv().await {
            write_line(&msg);
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

fn write_line(msg: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(msg)
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush());
}
