//! The front door over stdio (`ringgate stdio`): one client, newline-delimited JSON-RPC on this
//! process's stdin/stdout, for clients that launch their MCP servers (Claude Desktop and the like).
//!
//! Stdin and stdout are not sockets, so a plain reader thread and a plain writer thread move lines
//! to and from one monoio worker by channel (DESIGN §6). Every message goes through the same request
//! path as HTTP (`proxy::handle_post`): the session the client's `initialize` created is carried
//! implicitly, as the sealed id an HTTP client would have sent. Replies, streamed notifications and
//! `list_changed` are written as whole lines; logs go to stderr only.

use std::cell::RefCell;
use std::io::{BufRead, Read, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::WorkerMsg;
use crate::proxy::{self, Gateway, Inbound, Outcome, Worker};
use crate::wire::{self, code, encode, rewrite, Kind};

/// Serves the stdio client until stdin closes or shutdown is requested.
pub async fn run(gw: Arc<Gateway>, inbox: async_channel::Receiver<WorkerMsg>) {
    let w = Rc::new(Worker::new(0, &gw));
    for entry in w.snapshot().servers.iter().filter(|s| s.link.is_up()) {
        w.pools.get(&entry.link).warm().await;
    }
    let max_line = w.snapshot().gateway.limits.max_body_bytes;
    let (out, lines) = match spawn_io(max_line) {
        Ok(io) => io,
        Err(e) => return log::error!("stdio front: {e}"),
    };
    let session: Rc<RefCell<Option<String>>> = Rc::new(RefCell::new(None));
    let (stop_tx, mut stop_rx) = local_sync::oneshot::channel::<()>();
    // The same inbox handling as an HTTP worker: notifications, scrapes, cancels, warm, shutdown.
    monoio::spawn(super::worker::handle_inbox(w.clone(), inbox, stop_tx));
    loop {
        let line = monoio::select! {
            l = lines.recv() => match l { Ok(line) => line, Err(_) => break },
            _ = &mut stop_rx => break,
        };
        let (gw, w, out, session) = (gw.clone(), w.clone(), out.clone(), session.clone());
        w.inflight.set(w.inflight.get() + 1);
        monoio::spawn(async move {
            handle_line(&gw, &w, &out, &session, line).await;
            w.inflight.set(w.inflight.get() - 1);
        });
    }
    super::worker::drain(&w, gw.snapshot.load().gateway.shutdown_timeout).await;
}

/// The reader and writer threads. Lines over `max_line` bytes are answered with an error and dropped.
fn spawn_io(
    max_line: usize,
) -> std::io::Result<(async_channel::Sender<Bytes>, async_channel::Receiver<Bytes>)> {
    let (out_tx, out_rx) = async_channel::unbounded::<Bytes>();
    std::thread::Builder::new()
        .name("ringgate-stdout".into())
        .spawn(move || {
            let mut stdout = std::io::stdout().lock();
            while let Ok(msg) = out_rx.recv_blocking() {
                // Raw newlines can only sit between JSON tokens; flattening keeps one message per line.
                let line: Vec<u8> = msg
                    .iter()
                    .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
                    .collect();
                if stdout
                    .write_all(&line)
                    .and_then(|_| stdout.write_all(b"\n"))
                    .and_then(|_| stdout.flush())
                    .is_err()
                {
                    return;
                }
            }
        })?;
    let (in_tx, in_rx) = async_channel::unbounded::<Bytes>();
    let too_long = out_tx.clone();
    std::thread::Builder::new()
        .name("ringgate-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut line = Vec::new();
            loop {
                line.clear();
                match Read::by_ref(&mut stdin)
                    .take(max_line as u64 + 1)
                    .read_until(b'\n', &mut line)
                {
                    Ok(0) | Err(_) => return,
                    Ok(_) if line.len() > max_line && line.last() != Some(&b'\n') => {
                        let msg = format!("message exceeds {max_line} bytes");
                        let _ = too_long.send_blocking(encode::error_response(
                            None,
                            code::INVALID_REQUEST,
                            &msg,
                            None,
                        ));
                        // Skip the rest of the oversized line.
                        let mut rest = Vec::new();
                        if stdin.read_until(b'\n', &mut rest).unwrap_or(0) == 0 {
                            return;
                        }
                    }
                    Ok(_) => {
                        if in_tx.send_blocking(Bytes::copy_from_slice(&line)).is_err() {
                            return;
                        }
                    }
                }
            }
        })?;
    Ok((out_tx, in_rx))
}

/// One message from the client through the request path.
async fn handle_line(
    gw: &Gateway,
    w: &Worker,
    out: &async_channel::Sender<Bytes>,
    session: &RefCell<Option<String>>,
    line: Bytes,
) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let sid = session.borrow().clone();
    let inbound = Inbound {
        body: line.clone(),
        session: sid.as_deref().map(str::as_bytes),
        version: None,
        authorization: None,
        accepts_sse: true,
        received: Instant::now(),
    };
    match proxy::handle_post(gw, w, inbound).await {
        Outcome::Json {
            status,
            body,
            session: new,
        } => {
            if let Some(id) = new {
                open_stream(gw, w, out, &id);
                *session.borrow_mut() = Some(id);
            }
            // JSON-RPC never answers a notification, even with an error.
            if status >= 400 && matches!(wire::parse(&line), Ok(env) if env.kind != Kind::Request) {
                return;
            }
            let _ = out.try_send(rewrite::concat(&body));
        }
        Outcome::Accepted => {}
        Outcome::Stream(mut relay) => {
            while let Some(msg) = relay.next(gw, w).await {
                let _ = out.try_send(msg);
            }
        }
    }
}

/// After `initialize`: the session's notifications (list_changed) go to stdout too.
fn open_stream(gw: &Gateway, w: &Worker, out: &async_channel::Sender<Bytes>, session_id: &str) {
    let Some(session) = gw.sessions.open(session_id.as_bytes()) else {
        return;
    };
    let mut reg = w.streams.add(session.nonce);
    let out = out.clone();
    monoio::spawn(async move {
        while let Some(msg) = reg.rx.recv().await {
            if out.try_send(msg).is_err() {
                return;
            }
        }
    });
}
