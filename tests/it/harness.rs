//! Test harness: start demo downstreams and a gateway in-process on port 0, and talk raw HTTP.
//!
//! The client here is deliberately dumb (std `TcpStream`, `Connection: close`, reads to EOF) so the
//! tests check the bytes on the wire, not a client library's interpretation of them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ringgate::config;
use ringgate::demo::{self, DemoHandle, DemoOptions};
use ringgate::runtime::{self, Running};

/// A gateway plus the demo servers behind it; shuts everything down on drop.
pub struct Env {
    pub gw: Option<Running>,
    pub demos: Vec<Option<DemoHandle>>,
}

impl Env {
    /// Starts demo servers with `opts` and a gateway fronting them; `extra` is appended to the
    /// `[gateway]` table (e.g. "page_size = 3").
    pub fn start(opts: Vec<DemoOptions>, extra: &str) -> Env {
        let demos: Vec<DemoHandle> = opts
            .into_iter()
            .map(|o| demo::spawn(o).expect("demo server"))
            .collect();
        let mut toml = format!("[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n{extra}\n");
        for (i, d) in demos.iter().enumerate() {
            let name = ["alpha", "beta", "gamma", "delta"][i];
            toml.push_str(&format!(
                "[[server]]\nname = \"{name}\"\ntransport = \"http\"\nurl = \"{}\"\n",
                d.url()
            ));
        }
        Env::with_config(demos, &toml)
    }

    /// A gateway in front of one legacy stdio child, the demo server named `kid` (its tools are
    /// `kid__*`).
    pub fn stdio_kid() -> Env {
        let toml = format!(
            "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n\
             [[server]]\nname = \"kid\"\ntransport = \"stdio\"\ncommand = \"{}\"\nargs = [\"demo-server\", \"--transport\", \"stdio\", \"--name\", \"kid\"]\n",
            env!("CARGO_BIN_EXE_ringgate")
        );
        Env::with_config(vec![], &toml)
    }

    /// Starts a gateway from literal TOML in front of already-running demos.
    pub fn with_config(demos: Vec<DemoHandle>, toml: &str) -> Env {
        let cfg = config::parse_str(toml, &|k| std::env::var(k).ok()).expect("valid config");
        let gw = runtime::start(cfg).expect("gateway starts");
        Env {
            gw: Some(gw),
            demos: demos.into_iter().map(Some).collect(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.gw.as_ref().unwrap().listen
    }

    pub fn admin(&self) -> SocketAddr {
        self.gw.as_ref().unwrap().admin
    }

    /// Stops demo server `i` (its port closes).
    pub fn kill_demo(&mut self, i: usize) -> SocketAddr {
        let d = self.demos[i].take().expect("running demo");
        let addr = d.addr;
        d.stop();
        addr
    }

    /// `initialize`s a session and returns its id.
    pub fn session(&self, version: &str) -> String {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{{"name":"it","version":"1"}}}}}}"#
        );
        let r = post(self.addr(), &[], &body);
        assert_eq!(r.status, 200, "initialize: {}", r.body);
        r.header("mcp-session-id").expect("session id").to_string()
    }

    /// POSTs a JSON-RPC message on a session.
    pub fn call(&self, session: &str, body: &str) -> Response {
        post(self.addr(), &[("mcp-session-id", session)], body)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown();
            gw.wait();
        }
    }
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (for SSE bodies: the last `data:` event).
    pub fn json(&self) -> serde_json::Value {
        let text = if self
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"))
        {
            self.body
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or("")
                .to_string()
        } else {
            self.body.clone()
        };
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// Sends one raw HTTP request (with `Connection: close`) and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("host") {
        head.push_str(&format!("host: {addr}\r\n"));
    }
    if !has("content-type") && method == "POST" {
        head.push_str("content-type: application/json\r\n");
    }
    if !has("accept") {
        head.push_str("accept: application/json, text/event-stream\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before the whole body is written.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

pub fn post(addr: SocketAddr, headers: &[(&str, &str)], body: &str) -> Response {
    request(addr, "POST", "/mcp", headers, body.as_bytes())
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], b"")
}

fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n =
            usize::from_str_radix(size.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// An open GET notification stream, read line by line.
pub struct Stream {
    reader: BufReader<TcpStream>,
}

impl Stream {
    pub fn open(addr: SocketAddr, session: &str) -> Stream {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let req = format!("GET /mcp HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\nmcp-session-id: {session}\r\n\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut reader = BufReader::new(s);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.contains(" 200 "), "GET stream: {status}");
        Stream { reader }
    }

    /// The next `data:` payload, waiting at most `within`.
    pub fn next_data(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut line = String::new();
        while Instant::now() < deadline {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            self.reader.get_ref().set_read_timeout(Some(left)).unwrap();
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) => {
                    if let Some(d) = line.trim_end().strip_prefix("data: ") {
                        return Some(d.to_string());
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }
}

/// Starts a demo server on a port that was just freed (the old listener may take a moment to go).
pub fn respawn_demo(opts: DemoOptions) -> DemoHandle {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match demo::spawn(opts.clone()) {
            Ok(d) => return d,
            Err(e) if Instant::now() < deadline && e.kind() == std::io::ErrorKind::AddrInUse => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("demo server on {}: {e}", opts.listen),
        }
    }
}

/// The tool names a `tools/list` on session `s` lists (none when the reply has no tool list).
pub fn tool_names(e: &Env, s: &str) -> Vec<String> {
    let v = e
        .call(s, r#"{"jsonrpc":"2.0","id":"l","method":"tools/list"}"#)
        .json();
    v["result"]["tools"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["name"].as_str()))
        .into_iter()
        .flatten()
        .map(str::to_string)
        .collect()
}

/// Polls `f` until it returns true or `within` passes.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
