//! The bench MCP server over stdio, and the load generator's client for it (`--scenario stdio`).
//!
//! **Server** (`ringgate-loadtest downstream --stdio`): the bench behaviour of `downstream`
//! (initialize, ping, `tools/list`, `tools/call` of a known tool with `--payload-bytes` of text)
//! as newline-delimited JSON-RPC on stdin/stdout. One plain thread reads stdin, answers each line
//! from the pre-encoded pieces around the request's own id bytes, and is the only writer of
//! stdout; it writes (one `write` for the whole batch) whenever no more input is buffered, so a
//! burst of pipelined requests costs one read and one write. It exits when stdin closes.
//!
//! **Client** ([`StdioLink`], the stdio scenario's `direct` path): the load test spawns a second
//! copy of that server (same binary, same arguments as the gateway's child), with stdin/stdout as
//! socketpairs (as the gateway does), does the MCP handshake once, and multiplexes requests over
//! it by id: callers queue their line in an outbox drained by one writer task, one reader task
//! splits stdout into lines and hands each response to the caller waiting for its id. So `direct`
//! is "the agent spawns the stdio server itself", and `gateway − direct` is everything ringgate
//! adds in front of a stdio server (its HTTP front, the hop to its control thread, its stdio pool).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::UnixStream;
use ringgate::wire::{self, encode, Kind};

use crate::client::Failure;
use crate::downstream::{self, Bench, BenchConfig, HEAD, MID, TAIL};

/// Read and write buffer sizes, both sides.
const CHUNK: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Server

/// Serves `cfg` on stdin/stdout until stdin closes. Returns the exit status.
pub fn serve(cfg: BenchConfig) -> i32 {
    let bench = Bench::new(cfg);
    // Our buffer is at least as large as stdin's own, so reads go straight into it.
    let mut input = BufReader::with_capacity(CHUNK, std::io::stdin().lock());
    let mut output = std::io::stdout().lock();
    let mut line: Vec<u8> = Vec::with_capacity(1024);
    let mut out: Vec<u8> = Vec::with_capacity(CHUNK);
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("bench stdio server: reading stdin: {e}");
                return 1;
            }
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        answer(&bench, &line, &mut out);
        // Flush when the next read would block: one write per burst of requests.
        if input.buffer().is_empty() && !out.is_empty() {
            if output.write_all(&out).and_then(|_| output.flush()).is_err() {
                return 0; // the reader went away: nothing left to serve
            }
            out.clear();
        }
    }
    if !out.is_empty() {
        let _ = output.write_all(&out).and_then(|_| output.flush());
    }
    0
}

/// Appends the reply to one input line (if it needs one) to `out`, newline-terminated.
pub fn answer(bench: &Bench, line: &[u8], out: &mut Vec<u8>) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let env = match wire::parse(line) {
        Ok(env) => env,
        Err(e) => {
            out.extend_from_slice(&encode::error_response(None, e.code(), e.reason(), None));
            out.push(b'\n');
            return;
        }
    };
    // Notifications (initialized, cancelled) and responses need no reply.
    if env.kind != Kind::Request {
        return;
    }
    let id = env.id_raw(line).unwrap_or(b"null");
    let fail = |out: &mut Vec<u8>, code: i32, msg: &str| {
        out.extend_from_slice(&encode::error_response(Some(id), code, msg, None));
        out.push(b'\n');
    };
    let init;
    let result: &[u8] = match env.method(line).unwrap_or("") {
        "initialize" => {
            let params = env.params.map(|p| p.get(line)).unwrap_or_default();
            init = downstream::initialize_result(
                downstream::requested_version(params),
                &bench.cfg.name,
            );
            &init
        }
        "tools/call" => match env.name_str(line) {
            Some(n) if bench.knows_tool(&n) => &bench.call_result,
            other => {
                let msg = format!("unknown tool: {}", other.as_deref().unwrap_or("(none)"));
                return fail(out, -32602, &msg);
            }
        },
        "tools/list" => &bench.tools_list,
        "ping" => &bench.ping_result,
        other => return fail(out, -32601, &format!("method not found: {other}")),
    };
    out.extend_from_slice(HEAD);
    out.extend_from_slice(id);
    out.extend_from_slice(MID);
    out.extend_from_slice(result);
    out.extend_from_slice(TAIL);
    out.push(b'\n');
}

// ---------------------------------------------------------------------------------------------
// Client

/// A reply slot for one request in flight.
#[derive(Default)]
struct Pending {
    reply: Option<Bytes>,
    waker: Option<Waker>,
}

/// State shared by the link, its reader task and its writer task.
#[derive(Default)]
struct Shared {
    /// Lines waiting for the writer task.
    outbox: RefCell<Vec<u8>>,
    writer: RefCell<Option<Waker>>,
    /// Requests in flight by id.
    waiting: RefCell<HashMap<u64, Pending>>,
    /// Why the link is down, once it is.
    closed: RefCell<Option<String>>,
}

impl Shared {
    fn send(&self, pieces: &[Bytes]) {
        let mut o = self.outbox.borrow_mut();
        for p in pieces {
            o.extend_from_slice(p);
        }
        o.push(b'\n');
        drop(o);
        if let Some(w) = self.writer.borrow_mut().take() {
            w.wake();
        }
    }

    /// Hands a line from stdout to the request waiting for its id (late or unsolicited lines are
    /// dropped).
    fn deliver(&self, line: Bytes) {
        let Ok(env) = wire::parse(&line) else {
            return;
        };
        if !matches!(env.kind, Kind::Response | Kind::Error) {
            return;
        }
        let Some(id) = env
            .id_raw(&line)
            .and_then(|raw| std::str::from_utf8(raw).ok())
            .and_then(|s| s.parse::<u64>().ok())
        else {
            return;
        };
        if let Some(p) = self.waiting.borrow_mut().get_mut(&id) {
            p.reply = Some(line);
            if let Some(w) = p.waker.take() {
                w.wake();
            }
        }
    }

    fn close(&self, why: String) {
        self.closed.borrow_mut().get_or_insert(why);
        let wakers: Vec<Waker> = self
            .waiting
            .borrow_mut()
            .values_mut()
            .filter_map(|p| p.waker.take())
            .collect();
        for w in wakers {
            w.wake();
        }
        if let Some(w) = self.writer.borrow_mut().take() {
            w.wake();
        }
    }

    fn closed_failure(&self) -> Option<Failure> {
        self.closed
            .borrow()
            .as_ref()
            .map(|why| Failure::Io(format!("stdio server: {why}")))
    }
}

/// Removes a request's slot when its future ends or is dropped (timeout).
struct Forget<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.shared.waiting.borrow_mut().remove(&self.id);
    }
}

/// A bench server spawned as a stdio child of the load test, with its MCP session open.
pub struct StdioLink {
    shared: Rc<Shared>,
    child: RefCell<Option<Child>>,
    next_id: Cell<u64>,
    pub pid: u32,
}

impl std::fmt::Debug for StdioLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioLink").field("pid", &self.pid).finish()
    }
}

impl StdioLink {
    /// Starts `exe args…` with stdin/stdout on socketpairs and performs the MCP handshake. Must
    /// run inside the monoio runtime (the link's tasks run on it).
    pub async fn spawn(exe: &Path, args: &[String]) -> Result<Rc<StdioLink>, String> {
        let what = |e: std::io::Error| format!("stdio server {}: {e}", exe.display());
        let (ours_in, child_in) = StdUnixStream::pair().map_err(what)?;
        let (ours_out, child_out) = StdUnixStream::pair().map_err(what)?;
        let child = Command::new(exe)
            .args(args)
            .stdin(Stdio::from(OwnedFd::from(child_in)))
            .stdout(Stdio::from(OwnedFd::from(child_out)))
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(what)?;
        let pid = child.id();
        let link = Rc::new(StdioLink {
            shared: Rc::new(Shared::default()),
            child: RefCell::new(Some(child)),
            next_id: Cell::new(1),
            pid,
        });
        ours_in.set_nonblocking(true).map_err(what)?;
        ours_out.set_nonblocking(true).map_err(what)?;
        let writer = UnixStream::from_std(ours_in).map_err(what)?;
        let reader = UnixStream::from_std(ours_out).map_err(what)?;
        monoio::spawn(write_loop(link.shared.clone(), writer));
        monoio::spawn(read_loop(link.shared.clone(), reader));

        let params = crate::client::initialize_params();
        let init = [encode::request(b"0", "initialize", Some(params.as_bytes()))];
        let handshake = link.request(&init, 0);
        let reply = monoio::time::timeout(std::time::Duration::from_secs(10), handshake)
            .await
            .unwrap_or(Err(Failure::Timeout))
            .map_err(|e| format!("stdio server (pid {pid}): initialize: {e}"))?;
        crate::client::check_response(&reply, b"0")
            .map_err(|e| format!("stdio server (pid {pid}): initialize: {e}"))?;
        link.shared
            .send(&[encode::notification("notifications/initialized", None)]);
        Ok(link)
    }

    /// A fresh request id, unique on this link (requests from every slot share the child).
    pub fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Whether the child is still reachable.
    pub fn is_open(&self) -> bool {
        self.shared.closed.borrow().is_none()
    }

    /// Sends one request line (`pieces` concatenated) with id `id`; returns the response line.
    pub async fn request(&self, pieces: &[Bytes], id: u64) -> Result<Bytes, Failure> {
        let shared = &*self.shared;
        if let Some(f) = shared.closed_failure() {
            return Err(f);
        }
        shared.waiting.borrow_mut().insert(id, Pending::default());
        let _forget = Forget { shared, id };
        shared.send(pieces);
        std::future::poll_fn(|cx| {
            let mut waiting = shared.waiting.borrow_mut();
            let Some(p) = waiting.get_mut(&id) else {
                return Poll::Ready(Err(Failure::Protocol("reply slot lost".into())));
            };
            if let Some(reply) = p.reply.take() {
                return Poll::Ready(Ok(reply));
            }
            drop(waiting);
            if let Some(f) = shared.closed_failure() {
                return Poll::Ready(Err(f));
            }
            if let Some(p) = shared.waiting.borrow_mut().get_mut(&id) {
                match &p.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => p.waker = Some(cx.waker().clone()),
                }
            }
            Poll::Pending
        })
        .await
    }
}

impl Drop for StdioLink {
    fn drop(&mut self) {
        self.shared.close("stopped".into());
        if let Some(mut child) = self.child.borrow_mut().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Owns the child's stdin: writes whatever the outbox holds, one write per batch.
async fn write_loop(shared: Rc<Shared>, mut stream: UnixStream) {
    let mut spare: Vec<u8> = Vec::with_capacity(CHUNK);
    loop {
        let next = std::future::poll_fn(|cx| {
            if shared.closed.borrow().is_some() {
                return Poll::Ready(None);
            }
            let mut o = shared.outbox.borrow_mut();
            if o.is_empty() {
                *shared.writer.borrow_mut() = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(Some(std::mem::replace(&mut *o, std::mem::take(&mut spare))))
        })
        .await;
        let Some(batch) = next else {
            return;
        };
        let (res, mut batch) = stream.write_all(batch).await;
        if let Err(e) = res {
            shared.close(format!("writing its stdin: {e}"));
            return;
        }
        batch.clear();
        spare = batch;
    }
}

/// Owns the child's stdout: splits it into lines and delivers each.
async fn read_loop(shared: Rc<Shared>, mut stream: UnixStream) {
    let mut pending = BytesMut::with_capacity(CHUNK);
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let why = loop {
        let (res, b) = stream.read(buf).await;
        buf = b;
        match res {
            Ok(0) => break "its stdout closed (the process exited)".to_string(),
            Err(e) => break format!("reading its stdout: {e}"),
            Ok(_) => pending.extend_from_slice(&buf),
        }
        buf.clear();
        while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
            let line = pending.split_to(pos + 1).freeze();
            if pos > 0 {
                shared.deliver(line.slice(..pos));
            }
        }
    };
    shared.close(why);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(payload_bytes: usize) -> Bench {
        Bench::new(BenchConfig {
            name: "bench".into(),
            tools: 2,
            payload_bytes,
            sse: false,
        })
    }

    fn one(b: &Bench, line: &str) -> Option<serde_json::Value> {
        let mut out = Vec::new();
        answer(b, line.as_bytes(), &mut out);
        if out.is_empty() {
            return None;
        }
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|&&c| c == b'\n').count(), 1, "one line");
        Some(serde_json::from_slice(&out).expect("valid JSON"))
    }

    #[test]
    fn the_stdio_server_answers_like_the_http_one() {
        let b = bench(100);
        let init = one(
            &b,
            r#"{"jsonrpc":"2.0","id":"a-1","method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#,
        )
        .unwrap();
        assert_eq!(init["id"], "a-1");
        assert_eq!(init["result"]["protocolVersion"], "2025-03-26");
        assert!(one(
            &b,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#
        )
        .is_none());
        let call = one(
            &b,
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}"#,
        )
        .unwrap();
        assert_eq!(call["id"], 7);
        assert_eq!(
            call["result"]["content"][0]["text"].as_str().unwrap().len(),
            100
        );
        let list = one(&b, r#"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#).unwrap();
        assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 2);
        let ping = one(&b, r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#).unwrap();
        assert_eq!(ping["result"], serde_json::json!({}));
        let unknown = one(
            &b,
            r#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"nope"}}"#,
        )
        .unwrap();
        assert_eq!(unknown["error"]["code"], -32602);
        let missing = one(&b, r#"{"jsonrpc":"2.0","id":11,"method":"x/y"}"#).unwrap();
        assert_eq!(missing["error"]["code"], -32601);
        let bad = one(&b, "{nope").unwrap();
        assert!(bad["error"]["code"].is_i64() && bad["id"].is_null());
        assert!(one(&b, "   ").is_none());
    }
}
