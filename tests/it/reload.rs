//! Hot reload: every trigger (POST /v1/reload, the file watch, SIGHUP), servers added, removed
//! and renamed live, calls in flight finishing across a reload, open streams surviving and hearing
//! `list_changed`, and failed reloads changing nothing but the reported error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::*;
use ringgate::config;
use ringgate::demo::{self, DemoHandle, DemoOptions};
use ringgate::runtime::{
    self,
    reload::{ReloadSource, Trigger},
};

/// A `[[server]]` entry: (name, URL, extra keys).
type Server<'a> = (&'a str, String, &'a str);

fn toml(gateway_extra: &str, servers: &[Server<'_>]) -> String {
    let mut t = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n{gateway_extra}\n"
    );
    for (name, url, extra) in servers {
        t.push_str(&format!(
            "[[server]]\nname = \"{name}\"\ntransport = \"http\"\nurl = \"{url}\"\n{extra}\n"
        ));
    }
    t
}

/// A fresh config file path for one test.
fn config_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "ringgate-it-reload-{}-{tag}-{n}.toml",
        std::process::id()
    ))
}

/// Replaces the file the way editors and config managers do: write aside, then rename over.
fn write_atomically(path: &PathBuf, text: &str) {
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

/// Starts a gateway from a config file (so reloads can read it again).
fn start_from_file(demos: Vec<DemoHandle>, path: &PathBuf, text: &str) -> Env {
    std::fs::write(path, text).unwrap();
    let cfg = config::load(path).unwrap_or_else(|e| panic!("{e}"));
    Env {
        gw: Some(runtime::start(cfg).expect("gateway starts")),
        demos: demos.into_iter().map(Some).collect(),
    }
}

fn demos(names: &[&str]) -> Vec<DemoHandle> {
    names
        .iter()
        .map(|n| demo::spawn(DemoOptions::new(n)).expect("demo server"))
        .collect()
}

fn post_reload(e: &Env, body: &str) -> Response {
    request(
        e.admin(),
        "POST",
        "/v1/reload",
        &[("content-type", "application/toml")],
        body.as_bytes(),
    )
}

fn tools(e: &Env, s: &str) -> Vec<String> {
    let v = e
        .call(s, r#"{"jsonrpc":"2.0","id":"l","method":"tools/list"}"#)
        .json();
    v["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools/list: {v}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn echo(e: &Env, s: &str, tool: &str) -> serde_json::Value {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"e","method":"tools/call","params":{{"name":"{tool}","arguments":{{"message":"hi"}}}}}}"#
    );
    e.call(s, &body).json()
}

fn servers(e: &Env) -> serde_json::Value {
    serde_json::from_str(&get(e.admin(), "/v1/servers").body).unwrap()
}

/// Reads the stream until a `tools/list_changed` arrives (other lists may change first).
fn hears_tools_changed(stream: &mut Stream) -> bool {
    for _ in 0..8 {
        match stream.next_data(Duration::from_secs(5)) {
            Some(d) if d.contains("notifications/tools/list_changed") => return true,
            Some(_) => continue,
            None => return false,
        }
    }
    false
}

#[test]
fn post_reload_adds_and_removes_servers_and_the_open_stream_hears_each_change() {
    let d = demos(&["a", "b"]);
    let (a, b) = (d[0].url(), d[1].url());
    let path = config_path("post");
    let one = toml("", &[("alpha", a.clone(), "")]);
    let two = toml("", &[("alpha", a.clone(), ""), ("beta", b.clone(), "")]);
    let e = start_from_file(d, &path, &one);
    let s = e.session("2025-11-25");
    let mut stream = Stream::open(e.addr(), &s);
    assert!(tools(&e, &s).iter().all(|t| t.starts_with("alpha__")));

    // Add a server: its tools appear, clients are told, the report says what happened.
    let r = post_reload(&e, &two);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["servers"]["added"], serde_json::json!(["beta"]));
    assert_eq!(v["servers"]["unchanged"], serde_json::json!(["alpha"]));
    assert_eq!(v["configGeneration"], 2);
    assert!(v["listsChanged"]
        .as_array()
        .unwrap()
        .contains(&"tools".into()));
    let names = tools(&e, &s);
    assert!(names.contains(&"beta__echo".to_string()), "{names:?}");
    assert!(names.contains(&"alpha__echo".to_string()), "{names:?}");
    assert_eq!(
        echo(&e, &s, "beta__echo")["result"]["content"][0]["text"],
        "hi"
    );
    assert!(
        hears_tools_changed(&mut stream),
        "list_changed after adding"
    );

    // Remove it again: its tools vanish, the stream hears it and stays open.
    let r = post_reload(&e, &one);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["servers"]["removed"], serde_json::json!(["beta"]));
    assert!(tools(&e, &s).iter().all(|t| t.starts_with("alpha__")));
    let v = echo(&e, &s, "beta__echo");
    assert!(
        v["error"].is_object(),
        "a removed server's tool is unknown: {v}"
    );
    assert!(
        hears_tools_changed(&mut stream),
        "list_changed after removing"
    );

    // The same config again changes nothing and tells nobody.
    let r = post_reload(&e, &one);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["changedAnything"], false);
    assert_eq!(r.json()["listsChanged"], serde_json::json!([]));

    // Reloads by file path (empty body) work too, and the stream is still there to hear them.
    std::fs::write(&path, &two).unwrap();
    let r = post_reload(&e, "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["servers"]["added"], serde_json::json!(["beta"]));
    assert!(
        hears_tools_changed(&mut stream),
        "the stream survived every reload"
    );
    let v = servers(&e);
    assert_eq!(v["lastReload"]["ok"], true);
    assert_eq!(v["servers"].as_array().unwrap().len(), 2);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn invalid_configs_change_nothing_but_the_reported_error() {
    let d = demos(&["a"]);
    let a = d[0].url();
    let path = config_path("invalid");
    let good = toml("", &[("alpha", a.clone(), "")]);
    let e = start_from_file(d, &path, &good);
    let s = e.session("2025-11-25");
    let before = tools(&e, &s);
    let generation = servers(&e)["generation"].clone();

    // Every problem is reported at once, each with its key path.
    let bad = format!(
        "{}[[server]]\nname = \"beta\"\ntransport = \"http\"\nurl = \"not a url\"\nbogus = 1\n",
        toml("page_size = 0", &[("alpha", a.clone(), "")])
    );
    let r = post_reload(&e, &bad);
    assert_eq!(r.status, 422, "{}", r.body);
    let v = r.json();
    assert_eq!(v["ok"], false);
    let paths: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["path"].as_str().unwrap())
        .collect();
    assert!(paths.len() >= 3, "{v}");
    assert!(paths.contains(&"gateway.page_size"), "{paths:?}");
    assert!(
        paths.iter().any(|p| p.starts_with("server[1]")),
        "{paths:?}"
    );

    // TOML that does not parse, and a body that is not text.
    assert_eq!(post_reload(&e, "[gateway\nlisten =").status, 422);
    let r = request(e.admin(), "POST", "/v1/reload", &[], &[0xff, 0xfe, 0x00]);
    assert_eq!(r.status, 400, "{}", r.body);

    // A required server that cannot start fails the reload as a whole.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/mcp", l.local_addr().unwrap())
    };
    let r = post_reload(
        &e,
        &toml("", &[("alpha", a.clone(), ""), ("ghost", dead.clone(), "")]),
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(r.json()["servers"][0]["name"], "ghost");

    // The old snapshot kept serving through all of it.
    assert_eq!(tools(&e, &s), before);
    assert_eq!(
        echo(&e, &s, "alpha__echo")["result"]["content"][0]["text"],
        "hi"
    );
    let v = servers(&e);
    assert_eq!(v["generation"], generation);
    assert_eq!(v["configGeneration"], 1);
    assert_eq!(v["lastReload"]["ok"], false);
    assert!(v["lastReloadError"]["message"]
        .as_str()
        .unwrap()
        .contains("ghost"));
    let metrics = get(e.admin(), "/metrics").body;
    assert!(
        metrics.contains("ringgate_reload_total{result=\"error\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("ringgate_reload_total{result=\"ok\"} 0"));
    assert!(metrics.contains("ringgate_config_generation 1"));

    // An optional server that cannot start does not block the rest of a reload.
    let r = post_reload(
        &e,
        &toml(
            "",
            &[
                ("alpha", a.clone(), "prefix = \"x\""),
                ("ghost", dead, "required = false"),
            ],
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["servers"]["down"][0]["name"], "ghost");
    assert!(tools(&e, &s).iter().all(|t| t.starts_with("x__")));
    let metrics = get(e.admin(), "/metrics").body;
    assert!(metrics.contains("ringgate_reload_total{result=\"ok\"} 1"));
    assert!(metrics.contains("ringgate_config_generation 2"));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn calls_in_flight_finish_across_a_reload_that_removes_a_server() {
    let d = demos(&["a", "b"]);
    let (a, b) = (d[0].url(), d[1].url());
    let path = config_path("inflight");
    let both = toml("", &[("alpha", a.clone(), ""), ("beta", b.clone(), "")]);
    let e = start_from_file(d, &path, &both);
    let s = e.session("2025-11-25");
    // One slow call to the server that stays, one to the server being removed.
    let calls: Vec<_> = ["alpha__sleep", "beta__sleep"]
        .into_iter()
        .map(|tool| {
            let (addr, s) = (e.addr(), s.clone());
            std::thread::spawn(move || {
                let body = format!(
                    r#"{{"jsonrpc":"2.0","id":"{tool}","method":"tools/call","params":{{"name":"{tool}","arguments":{{"ms":500}}}}}}"#
                );
                post(addr, &[("mcp-session-id", &s)], &body).json()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    let r = post_reload(&e, &toml("", &[("alpha", a.clone(), "")]));
    assert_eq!(r.status, 200, "{}", r.body);
    // New requests no longer see the removed server, at once.
    assert!(tools(&e, &s).iter().all(|t| t.starts_with("alpha__")));
    for c in calls {
        let v = c.join().unwrap();
        assert_eq!(
            v["result"]["content"][0]["text"], "slept 500 ms",
            "in-flight call failed across the reload: {v}"
        );
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_removed_stdio_server_finishes_its_calls_then_its_process_ends() {
    let d = demos(&["a"]);
    let a = d[0].url();
    let path = config_path("stdio");
    let kid = format!(
        "[[server]]\nname = \"kid\"\ntransport = \"stdio\"\ncommand = \"{}\"\nargs = [\"demo-server\", \"--transport\", \"stdio\", \"--name\", \"kid\"]\n",
        env!("CARGO_BIN_EXE_ringgate")
    );
    let alpha_only = toml("", &[("alpha", a.clone(), "")]);
    let e = start_from_file(d, &path, &format!("{alpha_only}{kid}"));
    let s = e.session("2025-11-25");
    let pid = |e: &Env| {
        servers(e)["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "kid")
            .and_then(|x| x["pid"].as_u64())
    };
    let first = pid(&e).expect("kid runs");

    // A reload that changes another server leaves the child (and its pid) alone.
    let r = post_reload(
        &e,
        &format!(
            "{}{kid}",
            toml("", &[("alpha", a.clone(), "prefix = \"al\"")])
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(pid(&e), Some(first));

    // Removing it: the call in flight finishes, then the process is stopped.
    let call = {
        let (addr, s) = (e.addr(), s.clone());
        std::thread::spawn(move || {
            let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kid__sleep","arguments":{"ms":500}}}"#;
            post(addr, &[("mcp-session-id", &s)], body).json()
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    let r = post_reload(&e, &alpha_only);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["servers"]["removed"], serde_json::json!(["kid"]));
    let v = call.join().unwrap();
    assert_eq!(v["result"]["content"][0]["text"], "slept 500 ms", "{v}");
    let gone = eventually(Duration::from_secs(10), || {
        !std::path::Path::new(&format!("/proc/{first}")).exists()
    });
    assert!(gone, "the removed server's process {first} was stopped");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn the_file_watch_applies_an_atomic_rename_and_prefixes_follow() {
    let d = demos(&["a"]);
    let a = d[0].url();
    let path = config_path("watch");
    let e = start_from_file(d, &path, &toml("", &[("alpha", a.clone(), "")]));
    let s = e.session("2025-11-25");
    let mut stream = Stream::open(e.addr(), &s);
    write_atomically(
        &path,
        &toml("", &[("alpha", a.clone(), "prefix = \"renamed\"")]),
    );
    assert!(
        eventually(Duration::from_secs(10), || tools(&e, &s)
            .iter()
            .all(|t| t.starts_with("renamed__"))),
        "the catalog follows the file"
    );
    assert_eq!(
        echo(&e, &s, "renamed__echo")["result"]["content"][0]["text"],
        "hi"
    );
    assert!(echo(&e, &s, "alpha__echo")["error"].is_object());
    assert!(hears_tools_changed(&mut stream));
    let v = servers(&e);
    assert_eq!(v["lastReload"]["trigger"], "file");
    assert_eq!(v["configGeneration"], 2);

    // A broken file is reported and changes nothing; fixing it applies.
    std::fs::write(&path, "[gateway\n").unwrap();
    assert!(eventually(Duration::from_secs(10), || servers(&e)
        ["lastReload"]["ok"]
        == false));
    assert!(tools(&e, &s).iter().all(|t| t.starts_with("renamed__")));
    write_atomically(
        &path,
        &toml("", &[("alpha", a.clone(), "prefix = \"again\"")]),
    );
    assert!(eventually(Duration::from_secs(10), || tools(&e, &s)
        .iter()
        .all(|t| t.starts_with("again__"))));
    let _ = std::fs::remove_file(&path);
}

/// A rewrite that keeps the file's inode, length and modification time (two writes within one
/// timestamp tick, `cp -p`, `touch -r`) is still seen: the watcher compares contents too.
#[test]
fn the_file_watch_sees_a_rewrite_that_keeps_size_and_mtime() {
    let d = demos(&["a"]);
    let a = d[0].url();
    let path = config_path("same-stamp");
    let e = start_from_file(
        d,
        &path,
        &toml("", &[("alpha", a.clone(), "prefix = \"aa\"")]),
    );
    let s = e.session("2025-11-25");
    assert!(tools(&e, &s).iter().all(|t| t.starts_with("aa__")));
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, toml("", &[("alpha", a.clone(), "prefix = \"bb\"")])).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(mtime))
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || tools(&e, &s)
            .iter()
            .all(|t| t.starts_with("bb__"))),
        "the catalog follows the rewritten file"
    );
    let v = servers(&e);
    assert_eq!(v["lastReload"]["trigger"], "file");
    assert_eq!(v["configGeneration"], 2);
    let _ = std::fs::remove_file(&path);
}

/// A watch-triggered reload applies only the version of the file the watcher saw settle: when the
/// file read is another one (written again meanwhile, e.g. truncated by an in-place write), it
/// applies nothing and reports nothing, and the next settled version applies.
#[test]
fn a_watch_reload_applies_only_the_version_the_watcher_saw_settle() {
    let d = demos(&["a"]);
    let a = d[0].url();
    let path = config_path("settled");
    let e = start_from_file(d, &path, &toml("", &[("alpha", a.clone(), "")]));
    let reloader = e.gw.as_ref().unwrap().reloader();
    // The file never changed, so the watcher settled on no version: a file-triggered reload
    // stands for one whose file changed after the watcher looked.
    assert!(reloader.trigger(ReloadSource::File, Trigger::File));
    // Queued behind it (reloads apply in order): the first one's outcome is known when this returns.
    let report = reloader
        .reload_blocking(ReloadSource::File)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.config_generation, 2, "only the API reload applied");
    let v = servers(&e);
    assert_eq!(v["lastReloadError"], serde_json::Value::Null, "{v}");
    assert_eq!(v["lastReload"]["trigger"], "api");
    let metrics = get(e.admin(), "/metrics").body;
    assert!(
        metrics.contains("ringgate_reload_total{result=\"ok\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("ringgate_reload_total{result=\"error\"} 0\n"));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn sighup_reloads_the_config_file() {
    let d = demos(&["a", "b"]);
    let (a, b) = (d[0].url(), d[1].url());
    let path = config_path("sighup");
    let e = start_from_file(d, &path, &toml("", &[("alpha", a.clone(), "")]));
    let s = e.session("2025-11-25");
    let handle = runtime::reload_on_sighup(e.gw.as_ref().unwrap().reloader()).unwrap();
    std::fs::write(
        &path,
        toml("", &[("alpha", a.clone(), ""), ("beta", b.clone(), "")]),
    )
    .unwrap();
    signal_hook::low_level::raise(signal_hook::consts::SIGHUP).unwrap();
    assert!(eventually(Duration::from_secs(10), || tools(&e, &s)
        .contains(&"beta__echo".to_string())));
    assert_eq!(servers(&e)["lastReload"]["trigger"], "signal");
    handle.close();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn gateway_settings_apply_at_once_and_only_the_worker_count_waits_for_a_restart() {
    let d = demos(&["a"]);
    let a = d[0].url();
    let path = config_path("gateway");
    let e = start_from_file(d, &path, &toml("", &[("alpha", a.clone(), "")]));
    let s = e.session("2025-11-25");
    let more =
        toml("page_size = 2", &[("alpha", a.clone(), "")]).replace("workers = 2", "workers = 3");
    let r = post_reload(&e, &more);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        v["gateway"]["restartRequired"],
        serde_json::json!(["gateway.workers"])
    );
    assert_eq!(
        v["gateway"]["applied"],
        serde_json::json!(["gateway.page_size"])
    );
    assert_eq!(tools(&e, &s).len(), 2, "new page size in force");
    assert_eq!(
        v["listening"]["listen"],
        e.addr().to_string(),
        "nothing moved"
    );
    assert_eq!(v["listening"]["admin"], e.admin().to_string());
    let _ = std::fs::remove_file(&path);
}

/// A loopback address no one listens on (bound, then released).
fn free_addr() -> SocketAddr {
    let l = StdListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A client connection kept open across requests (keep-alive), as agents keep theirs.
struct KeepAlive(TcpStream);

impl KeepAlive {
    fn open(addr: SocketAddr) -> KeepAlive {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        KeepAlive(s)
    }

    /// POSTs `body` on the session and returns (status, body); the connection stays open.
    fn post(&mut self, session: &str, body: &str) -> (u16, String) {
        let head = format!(
            "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             accept: application/json, text/event-stream\r\nmcp-session-id: {session}\r\n\
             mcp-protocol-version: 2025-11-25\r\ncontent-length: {}\r\n\r\n{body}",
            self.0.peer_addr().unwrap(),
            body.len()
        );
        self.0.write_all(head.as_bytes()).unwrap();
        let mut reader = BufReader::new(&mut self.0);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status = status_line.split(' ').nth(1).and_then(|c| c.parse().ok());
        let mut length = None;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse::<usize>().ok();
                }
            }
        }
        let mut body = vec![0; length.expect("a content-length reply")];
        reader.read_exact(&mut body).unwrap();
        (status.unwrap_or(0), String::from_utf8(body).unwrap())
    }
}

const PING: &str = r#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#;

#[test]
fn a_moved_listen_serves_the_new_port_closes_the_old_and_keeps_open_connections() {
    let d = demos(&["a"]);
    let a = d[0].url();
    let e = Env::with_config(d, &toml("", &[("alpha", a.clone(), "")]));
    let old = e.addr();
    let s = e.session("2025-11-25");
    let mut kept = KeepAlive::open(old);
    assert_eq!(kept.post(&s, PING).0, 200);
    let next = free_addr();
    let moved = toml("", &[("alpha", a, "")]).replace(
        "listen = \"127.0.0.1:0\"\nadmin",
        &format!("listen = \"{next}\"\nadmin"),
    );
    let r = post_reload(&e, &moved);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        v["gateway"]["applied"],
        serde_json::json!(["gateway.listen"])
    );
    assert_eq!(v["gateway"]["restartRequired"], serde_json::json!([]));
    assert_eq!(v["listening"]["listen"], next.to_string());
    // The new port serves, with the sessions and tools of the old one.
    let echoed = post(
        next,
        &[("mcp-session-id", &s)],
        r#"{"jsonrpc":"2.0","id":"e","method":"tools/call","params":{"name":"alpha__echo","arguments":{"message":"moved"}}}"#,
    )
    .json();
    assert_eq!(echoed["result"]["content"][0]["text"], "moved", "{echoed}");
    // The old port stops accepting (each worker drops its listener once told).
    assert!(
        eventually(Duration::from_secs(10), || TcpStream::connect(old).is_err()),
        "the old port still accepts"
    );
    // A connection accepted on the old port before the reload is still served.
    for _ in 0..3 {
        let (status, body) = kept.post(&s, PING);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"result\""), "{body}");
    }
}

#[test]
fn a_listen_port_already_taken_fails_the_reload_and_the_old_port_serves() {
    let d = demos(&["a"]);
    let a = d[0].url();
    let path = config_path("taken");
    let e = start_from_file(d, &path, &toml("", &[("alpha", a.clone(), "")]));
    let holder = StdListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap();
    let moved = toml("page_size = 1", &[("alpha", a, "")]).replace(
        "listen = \"127.0.0.1:0\"\nadmin",
        &format!("listen = \"{taken}\"\nadmin"),
    );
    let r = post_reload(&e, &moved);
    assert_eq!(r.status, 500, "{}", r.body);
    let v = r.json();
    assert_eq!(v["ok"], false);
    let why = v["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("gateway.listen") && why.contains(&taken.to_string()),
        "{v}"
    );
    // Nothing applied: the old port serves with the old settings.
    let s = e.session("2025-11-25");
    assert_eq!(tools(&e, &s).len(), 8, "the old page size stays");
    let st = servers(&e);
    assert_eq!(st["configGeneration"], 1);
    assert!(
        st["lastReloadError"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot bind")),
        "{st}"
    );
    let metrics = get(e.admin(), "/metrics").body;
    assert!(
        metrics.contains("ringgate_reload_total{result=\"error\"} 1"),
        "{metrics}"
    );
    drop(holder);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_moved_admin_listen_serves_admin_on_the_new_port_only() {
    let d = demos(&["a"]);
    let a = d[0].url();
    let e = Env::with_config(d, &toml("", &[("alpha", a.clone(), "")]));
    let old = e.admin();
    let next = free_addr();
    let moved = toml("", &[("alpha", a, "")]).replace(
        "admin_listen = \"127.0.0.1:0\"",
        &format!("admin_listen = \"{next}\""),
    );
    let r = post_reload(&e, &moved);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        v["gateway"]["applied"],
        serde_json::json!(["gateway.admin_listen"])
    );
    assert_eq!(v["listening"]["admin"], next.to_string());
    assert_eq!(get(next, "/healthz").status, 200);
    let st: serde_json::Value = serde_json::from_str(&get(next, "/v1/servers").body).unwrap();
    assert_eq!(st["configGeneration"], 2);
    assert!(
        eventually(Duration::from_secs(10), || TcpStream::connect(old).is_err()),
        "the old admin port still accepts"
    );
    // The MCP front did not move.
    let s = e.session("2025-11-25");
    assert_eq!(tools(&e, &s).len(), 8);
}

#[test]
fn removed_and_replaced_http_servers_have_their_sessions_deleted() {
    let d = demos(&["a", "b"]);
    let (a, b) = (d[0].url(), d[1].url());
    let e = Env::with_config(d, &toml("", &[("alpha", a.clone(), ""), ("beta", b, "")]));
    let s = e.session("2025-11-25");
    assert_eq!(
        echo(&e, &s, "beta__echo")["result"]["content"][0]["text"],
        "hi"
    );
    let demo = |i: usize| e.demos[i].as_ref().unwrap().deletes();
    assert_eq!((demo(0), demo(1)), (0, 0));
    // beta removed, alpha replaced (a new session in a new slot; the old one is ended).
    let r = post_reload(&e, &toml("", &[("alpha", a, "prefix = \"p\"")]));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        eventually(Duration::from_secs(15), || demo(0) == 1 && demo(1) == 1),
        "DELETEs seen: alpha {}, beta {}",
        demo(0),
        demo(1)
    );
    // The replacement's own session is not ended: it serves.
    assert_eq!(
        echo(&e, &s, "p__echo")["result"]["content"][0]["text"],
        "hi"
    );
    assert_eq!(demo(0), 1);
}

#[test]
fn a_gateway_not_started_from_a_file_reloads_only_posted_configs() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let r = post_reload(&e, "");
    assert_eq!(r.status, 400, "{}", r.body);
    let reloader = e.gw.as_ref().unwrap().reloader();
    let url = e.demos[0].as_ref().unwrap().url();
    let report = reloader
        .reload_blocking(ReloadSource::Text(toml(
            "",
            &[("alpha", url, "prefix = \"p\"")],
        )))
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(report.changed, ["alpha"]);
    let s = e.session("2025-11-25");
    assert!(tools(&e, &s).iter().all(|t| t.starts_with("p__")));
}

#[test]
fn a_reload_storm_fails_no_call_to_a_server_that_stays() {
    let d = demos(&["a", "b", "c"]);
    let (a, b, c) = (d[0].url(), d[1].url(), d[2].url());
    let path = config_path("storm");
    let config = |i: usize| {
        let prefix = format!("prefix = \"b{}\"", i % 3);
        let mut servers = vec![
            ("alpha", a.clone(), ""),
            ("beta", b.clone(), prefix.as_str()),
        ];
        if i % 2 == 1 {
            servers.push(("gamma", c.clone(), ""));
        }
        toml("", &servers)
    };
    let e = start_from_file(d, &path, &config(0));
    let s = e.session("2025-11-25");
    let mut stream = Stream::open(e.addr(), &s);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..3)
        .map(|k| {
            let (addr, s, stop) = (e.addr(), s.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0, Vec::new());
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let (tool, args) = match (k, i % 4) {
                        (0, 0) => ("alpha__sleep", r#"{"ms":30}"#),
                        _ => ("alpha__echo", r#"{"message":"m"}"#),
                    };
                    let body = format!(
                        r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
                    );
                    let r = post(addr, &[("mcp-session-id", &s)], &body);
                    match r.status == 200 && r.json()["result"]["isError"] != true {
                        true => ok += 1,
                        false => failed.push(format!("{} {}", r.status, r.body)),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    for i in 1..=30 {
        let r = post_reload(&e, &config(i));
        assert_eq!(r.status, 200, "reload {i}: {}", r.body);
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for c in clients {
        let (ok, failed) = c.join().unwrap();
        assert!(
            failed.is_empty(),
            "calls failed during the storm: {failed:?}"
        );
        total += ok;
    }
    assert!(total > 30, "the clients kept calling ({total})");
    // The catalog follows the last config, and the stream outlived the storm.
    let names = tools(&e, &s);
    assert!(names.contains(&"b0__echo".to_string()), "{names:?}");
    assert!(!names.iter().any(|t| t.starts_with("gamma__")), "{names:?}");
    assert!(hears_tools_changed(&mut stream));
    let _ = std::fs::remove_file(&path);
}
