//! stdio downstreams: a supervised child per server, reached from every worker.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;

fn config(extra_server: &str) -> String {
    format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n\
         [[server]]\nname = \"kid\"\ntransport = \"stdio\"\ncommand = \"{}\"\nargs = [\"demo-server\", \"--transport\", \"stdio\", \"--name\", \"kid\"]\n{extra_server}\n",
        env!("CARGO_BIN_EXE_ringgate")
    )
}

/// `ringgate stdio --config CFG` with piped stdin/stdout, inheriting nothing else of this process:
/// the tests share one process, and a socket another test's demo server just accepted (io_uring's
/// accept does not set close-on-exec) would otherwise stay open in the child, so stopping that demo
/// would send no FIN and a gateway call to it would hang instead of failing.
fn front_command(cfg: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringgate"));
    cmd.args(["stdio", "--config", cfg.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    ringgate::upstream::child::inherit_only_stdio(&mut cmd);
    cmd
}

fn child_pid(e: &Env) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(&get(e.admin(), "/v1/servers").body).unwrap();
    v["servers"][0]["pid"].as_u64().map(|p| p as u32)
}

#[test]
fn a_stdio_server_is_listed_and_called_from_every_worker() {
    let e = Env::with_config(vec![], &config(""));
    let s = e.session("2025-11-25");
    let listed = tool_names(&e, &s);
    assert!(listed.iter().any(|t| t == "kid__add"), "{listed:?}");
    // Concurrent calls from several connections (both workers) multiplex onto the one child.
    add_from_everywhere(&e, &s);
}

#[test]
fn progress_from_a_stdio_server_keeps_the_clients_own_token() {
    let e = Env::with_config(vec![], &config(""));
    let s = e.session("2025-11-25");
    let r = e.call(&s, r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"kid__sleep","arguments":{"ms":40,"steps":2},"_meta":{"progressToken":"client-tok"}}}"#);
    let events: Vec<&str> = r
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.len(), 3, "{}", r.body);
    assert!(
        events[0].contains("\"progressToken\":\"client-tok\""),
        "{}",
        events[0]
    );
    assert_eq!(r.json()["id"], 9);
}

#[test]
fn a_crashed_child_fails_clearly_restarts_and_clients_are_told() {
    let e = Env::with_config(vec![], &config(""));
    let s = e.session("2025-11-25");
    let mut stream = Stream::open(e.addr(), &s);
    let pid = child_pid(&e).expect("a running child");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Clients hear the tools vanish, then return.
    let first = stream
        .next_data(Duration::from_secs(10))
        .expect("list_changed when the child dies");
    assert!(first.contains("list_changed"));
    // Tools vanish and return: each change comes with notifications (tools, prompts, resources).
    let mut notes = vec![first];
    while let Some(n) = stream.next_data(Duration::from_millis(1500)) {
        notes.push(n);
    }
    let tools_changes = notes
        .iter()
        .filter(|n| n.contains("notifications/tools/list_changed"))
        .count();
    assert_eq!(tools_changes, 2, "{notes:?}");
    assert!(child_pid(&e).is_some_and(|p| p != pid), "a new child runs");
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"kid__echo","arguments":{"message":"again"}}}"#).json();
    assert_eq!(v["result"]["content"][0]["text"], "again", "{v}");
}

#[test]
fn a_command_that_cannot_start_is_reported_and_others_serve() {
    let demo = ringgate::demo::spawn(ringgate::demo::DemoOptions::new("web")).unwrap();
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 1\n\
         [[server]]\nname = \"ghost\"\ntransport = \"stdio\"\ncommand = \"/nonexistent/mcp-server\"\n\
         [[server]]\nname = \"web\"\ntransport = \"http\"\nurl = \"{}\"\n",
        demo.url()
    );
    let e = Env::with_config(vec![demo], &toml);
    let v: serde_json::Value = serde_json::from_str(&get(e.admin(), "/v1/servers").body).unwrap();
    assert_eq!(v["servers"][0]["up"], false);
    assert!(
        v["servers"][0]["lastError"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot start"),
        "{v}"
    );
    let s = e.session("2025-11-25");
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ghost__x","arguments":{}}}"#).json();
    assert!(v["error"].is_object());
    let v = e.call(&s, r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"web__echo","arguments":{"message":"ok"}}}"#).json();
    assert_eq!(v["result"]["content"][0]["text"], "ok");
}

/// `ringgate stdio`: a client that launches the gateway reaches an HTTP server and a stdio server.
#[test]
fn the_stdio_front_reaches_http_and_stdio_servers() {
    use std::io::{BufRead, BufReader, Write};
    let demo = ringgate::demo::spawn(ringgate::demo::DemoOptions::new("web")).unwrap();
    let dir = std::env::temp_dir().join(format!("ringgate-stdio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("gw.toml");
    let toml = config(&format!(
        "[[server]]\nname = \"web\"\ntransport = \"http\"\nurl = \"{}\"\n",
        demo.url()
    ));
    std::fs::write(&cfg, toml.replace("workers = 2\n", "")).unwrap();
    let mut child = front_command(&cfg).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut ask = |msg: &str| -> serde_json::Value {
        writeln!(stdin, "{msg}").unwrap();
        serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap()
    };
    let v = ask(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
    );
    assert_eq!(v["result"]["serverInfo"]["name"], "ringgate");
    let v = ask(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
    let names: Vec<String> = v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"kid__add".to_string()) && names.contains(&"web__add".to_string()),
        "{names:?}"
    );
    let v = ask(
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"web__echo","arguments":{"message":"via http"}}}"#,
    );
    assert_eq!(v["result"]["content"][0]["text"], "via http");
    let v = ask(
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"kid__echo","arguments":{"message":"via stdio"}}}"#,
    );
    assert_eq!(v["result"]["content"][0]["text"], "via stdio");
    let v = ask("{not json");
    assert_eq!(v["error"]["code"], -32700);
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "exits cleanly when stdin closes: {status}"
    );
    drop(demo);
}

/// `GET /v1/servers`.
fn servers(e: &Env) -> serde_json::Value {
    serde_json::from_str(&get(e.admin(), "/v1/servers").body).unwrap()
}

/// Every child's pid, as `/v1/servers` lists them.
fn child_pids(e: &Env) -> Vec<u32> {
    let v = servers(e);
    v["servers"][0]["pids"]
        .as_array()
        .unwrap_or_else(|| panic!("no pids: {v}"))
        .iter()
        .filter_map(|p| p.as_u64().map(|p| p as u32))
        .collect()
}

fn generation(e: &Env) -> u64 {
    let v = servers(e);
    v["generation"].as_u64().unwrap()
}

/// Calls `kid__add` from several connections at once (both workers) and checks every answer.
fn add_from_everywhere(e: &Env, s: &str) {
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (addr, s) = (e.addr(), s.to_string());
            std::thread::spawn(move || {
                let body = format!(r#"{{"jsonrpc":"2.0","id":"c{i}","method":"tools/call","params":{{"name":"kid__add","arguments":{{"a":{i},"b":1}}}}}}"#);
                post(addr, &[("mcp-session-id", &s)], &body).json()
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let v = h.join().unwrap();
        assert_eq!(v["id"], format!("c{i}"), "{v}");
        assert_eq!(
            v["result"]["structuredContent"]["sum"],
            (i + 1) as f64,
            "{v}"
        );
    }
}

fn lists_kid_tools(e: &Env, s: &str) -> bool {
    let v = e
        .call(s, r#"{"jsonrpc":"2.0","id":"l","method":"tools/list"}"#)
        .json();
    v["result"]["tools"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["name"] == "kid__echo"))
}

#[test]
fn a_stateless_server_runs_a_child_per_worker_and_one_dying_hides_nothing() {
    let e = Env::with_config(vec![], &config("stateless = true"));
    let s = e.session("2025-11-25");
    let pids = child_pids(&e);
    assert_eq!(pids.len(), 2, "one child per worker: {pids:?}");
    assert_ne!(pids[0], pids[1]);
    assert!(lists_kid_tools(&e, &s));
    add_from_everywhere(&e, &s);
    let generation_before = generation(&e);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[1] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Once the gateway has seen the exit, worker 1's calls go to worker 0's child.
    assert!(
        eventually(Duration::from_secs(10), || !child_pids(&e)
            .contains(&pids[1])),
        "the dead child is still listed"
    );
    add_from_everywhere(&e, &s);
    assert!(lists_kid_tools(&e, &s), "the tools stay listed");
    // It restarts; the other child was never touched.
    assert!(
        eventually(Duration::from_secs(10), || {
            let now = child_pids(&e);
            now.len() == 2 && now.contains(&pids[0]) && !now.contains(&pids[1])
        }),
        "no restart: {:?}",
        child_pids(&e)
    );
    add_from_everywhere(&e, &s);
    // The catalog never changed: no snapshot was published, so no client heard list_changed.
    assert_eq!(generation(&e), generation_before);
    let v = servers(&e);
    assert_eq!(v["servers"][0]["up"], true, "{v}");
    // A reload that leaves the server's config as it is keeps every child.
    let running = child_pids(&e);
    let same = config("stateless = true").replace("workers = 2\n", "workers = 2\npage_size = 50\n");
    let report =
        e.gw.as_ref()
            .unwrap()
            .reloader()
            .reload_blocking(ringgate::runtime::reload::ReloadSource::Text(same))
            .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(report.unchanged, ["kid"]);
    assert_eq!(child_pids(&e), running);
}

#[test]
fn a_stateless_server_goes_down_only_when_every_child_is_down() {
    let e = Env::with_config(vec![], &config("stateless = true"));
    let s = e.session("2025-11-25");
    let mut stream = Stream::open(e.addr(), &s);
    let pids = child_pids(&e);
    assert_eq!(pids.len(), 2, "{pids:?}");
    for pid in &pids {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    // The tools vanish (clients are told), then the whole server restarts with both children.
    let mut heard = false;
    while let Some(n) = stream.next_data(Duration::from_secs(10)) {
        if n.contains("notifications/tools/list_changed") {
            heard = true;
            break;
        }
    }
    assert!(heard, "list_changed when every child is down");
    assert!(
        eventually(Duration::from_secs(15), || {
            let now = child_pids(&e);
            now.len() == 2 && now.iter().all(|p| !pids.contains(p))
        }),
        "both children restarted: {:?} (before: {pids:?})",
        child_pids(&e)
    );
    assert!(eventually(Duration::from_secs(10), || lists_kid_tools(
        &e, &s
    )));
    add_from_everywhere(&e, &s);
}

/// `ringgate stdio` in front of a demo HTTP server: its stdin and stdout, as lines.
struct StdioFront {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    /// Its stdout lines, read by a thread (so a silent gateway fails the test instead of hanging it).
    lines: std::sync::mpsc::Receiver<String>,
    _demo: ringgate::demo::DemoHandle,
}

impl StdioFront {
    fn launch(tag: &str) -> StdioFront {
        let demo = ringgate::demo::spawn(ringgate::demo::DemoOptions::new("web")).unwrap();
        let dir = std::env::temp_dir().join(format!("ringgate-stdio-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("gw.toml");
        let toml = config(&format!(
            "[[server]]\nname = \"web\"\ntransport = \"http\"\nurl = \"{}\"\n",
            demo.url()
        ));
        std::fs::write(&cfg, toml.replace("workers = 2\n", "")).unwrap();
        let mut child = front_command(&cfg).spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(stdout).map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        StdioFront {
            child,
            stdin,
            lines,
            _demo: demo,
        }
    }

    fn send(&mut self, msg: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{msg}").unwrap();
    }

    fn next(&mut self) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a line on stdout within 10 s");
        serde_json::from_str(&line).unwrap()
    }

    /// `initialize` declaring `caps` (a JSON object), then `initialized`.
    fn initialized(&mut self, caps: &str) {
        self.send(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{caps},"clientInfo":{{"name":"t","version":"1"}}}}}}"#));
        assert_eq!(self.next()["result"]["protocolVersion"], "2025-11-25");
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    }
}

impl Drop for StdioFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Over `ringgate stdio`: the server's sampling request reaches a client that declared sampling,
/// its answer (a line on stdin) gets back, and progress of a call reaches it with its own token.
#[test]
fn the_stdio_front_relays_server_requests_and_progress() {
    let mut f = StdioFront::launch("asks");
    f.initialized(r#"{"sampling":{}}"#);
    f.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"web__sample","arguments":{}}}"#);
    let ask = f.next();
    assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
    let token = ask["id"].as_str().expect("a sealed relay id").to_string();
    f.send(&format!(r#"{{"jsonrpc":"2.0","id":"{token}","result":{{"role":"assistant","content":{{"type":"text","text":"from stdin"}},"model":"m"}}}}"#));
    let done = f.next();
    assert_eq!(done["id"], 2, "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"], "sampled: from stdin",
        "{done}"
    );
    f.send(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"web__sleep","arguments":{"ms":40,"steps":2},"_meta":{"progressToken":"stdio-tok"}}}"#);
    for step in 1..=2 {
        let p = f.next();
        assert_eq!(p["method"], "notifications/progress", "{p}");
        assert_eq!(p["params"]["progressToken"], "stdio-tok", "{p}");
        assert_eq!(p["params"]["progress"], step, "{p}");
    }
    assert_eq!(f.next()["id"], 3);
}

/// Over `ringgate stdio`, a client that did not declare sampling is never asked: the call ends
/// with the server's own error for the refusal.
#[test]
fn the_stdio_front_never_asks_a_client_that_did_not_declare_sampling() {
    let mut f = StdioFront::launch("noasks");
    f.initialized(r#"{"roots":{}}"#);
    f.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"web__sample","arguments":{}}}"#);
    let done = f.next();
    assert_eq!(done["id"], 2, "the first line is the result: {done}");
    let text = done["result"]["content"][0]["text"].as_str().unwrap_or("");
    assert!(text.starts_with("sampled: error"), "{done}");
}

/// A stdio server that first writes garbage lines and one 50 MB line to stdout, then turns into the
/// demo server: the garbage is logged and skipped, the huge line discarded (never buffered whole),
/// the server comes up with its tools, and the other server is unaffected.
#[test]
fn garbage_lines_and_a_50_mb_line_from_a_child_are_contained() {
    let script = r#"printf 'this is not json\n{"jsonrpc":"2.0","id":\n\n'; head -c 50000000 /dev/zero | tr '\0' x; printf '\n'; exec "$0" demo-server --transport stdio --name noisy"#;
    let noisy = format!(
        "[[server]]\nname = \"noisy\"\ntransport = \"stdio\"\ncommand = \"sh\"\nargs = [\"-c\", {}, \"{}\"]\n",
        serde_json::to_string(script).unwrap(),
        env!("CARGO_BIN_EXE_ringgate")
    );
    let e = Env::with_config(vec![], &config(&noisy));
    let s = e.session("2025-11-25");
    let add = |tool: &str| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{{"a":2,"b":3}}}}}}"#
        );
        e.call(&s, &body).json()["result"]["structuredContent"]["sum"].as_f64()
    };
    assert!(
        eventually(Duration::from_secs(20), || add("noisy__add") == Some(5.0)),
        "the noisy server never came up behind its garbage"
    );
    assert_eq!(add("kid__add"), Some(5.0), "the other server is unaffected");
    assert_eq!(add("noisy__add"), Some(5.0));
}
