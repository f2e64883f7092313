//! The gateway under test: spawned as a child process (pinned, `workers = 1`), or a running one
//! given by URL; readiness, `/metrics` scraping and RSS.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::sys;

/// What to start.
pub struct Spec {
    pub bin: PathBuf,
    /// Downstream HTTP servers: (name, MCP URL).
    pub servers: Vec<(String, String)>,
    /// A downstream stdio server the gateway spawns (the stdio scenario).
    pub stdio: Option<StdioServer>,
    pub page_size: Option<usize>,
    pub pool_size: Option<usize>,
    /// CPUs the gateway may use (one when pinned, else all this process was allowed).
    pub cpus: Vec<usize>,
    /// `gateway.limits.idle_timeout_ms`, when idle sessions must outlive the default (60 s).
    pub idle_timeout_ms: Option<u64>,
}

/// A `transport = "stdio"` server entry.
pub struct StdioServer {
    pub name: String,
    pub command: PathBuf,
    pub args: Vec<String>,
}

/// A TOML basic string (JSON string escapes are valid TOML escapes).
fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A spawned gateway; stopped (SIGTERM, then SIGKILL) on drop.
pub struct Gateway {
    child: Option<Child>,
    pub pid: u32,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    /// The temporary directory holding the config and the log.
    pub dir: PathBuf,
    /// How it was pinned: "taskset", "sched_setaffinity", or "no".
    pub pinned_with: &'static str,
    /// The config text it was started with (the reload storm derives its variants from it).
    pub config: String,
}

/// The binary next to this executable (`target/release/ringgate` beside the load test).
pub fn default_bin() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let bin = exe
        .parent()
        .map(|d| d.join("ringgate"))
        .ok_or("own executable has no directory")?;
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "no gateway binary at {} (build it: cargo build --release -p ringgate, or pass --gateway-bin)",
            bin.display()
        ))
    }
}

/// The config file the spawned gateway runs with.
pub fn config_text(spec: &Spec, listen: SocketAddr, admin: SocketAddr) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# written by ringgate-loadtest\n[gateway]\nlisten = \"{listen}\"\nadmin_listen = \"{admin}\"\nworkers = 1"
    );
    if let Some(n) = spec.page_size {
        let _ = writeln!(t, "page_size = {n}");
    }
    if let Some(ms) = spec.idle_timeout_ms {
        let _ = writeln!(t, "\n[gateway.limits]\nidle_timeout_ms = {ms}");
    }
    if let Some(s) = &spec.stdio {
        let args: Vec<String> = s.args.iter().map(|a| toml_string(a)).collect();
        let _ = writeln!(
            t,
            "\n[[server]]\nname = {}\ntransport = \"stdio\"\ncommand = {}\nargs = [{}]",
            toml_string(&s.name),
            toml_string(&s.command.to_string_lossy()),
            args.join(", ")
        );
    }
    for (name, url) in &spec.servers {
        let _ = writeln!(
            t,
            "\n[[server]]\nname = \"{name}\"\ntransport = \"http\"\nurl = \"{url}\""
        );
        if let Some(n) = spec.pool_size {
            let _ = writeln!(t, "pool_size = {n}");
        }
    }
    t
}

impl Gateway {
    /// Writes the config into a fresh temporary directory and starts the gateway.
    pub fn spawn(spec: &Spec) -> Result<Gateway, String> {
        let port = |what| sys::free_port().map_err(|e| format!("no free port for {what}: {e}"));
        let listen: SocketAddr = ([127, 0, 0, 1], port("gateway")?).into();
        let admin: SocketAddr = ([127, 0, 0, 1], port("admin")?).into();
        let dir = std::env::temp_dir().join(format!("ringgate-loadtest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let config_path = dir.join("ringgate.toml");
        let config = config_text(spec, listen, admin);
        std::fs::write(&config_path, &config)
            .map_err(|e| format!("{}: {e}", config_path.display()))?;
        let log_path = dir.join("ringgate.log");
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let taskset = if spec.cpus.is_empty() {
            None
        } else {
            sys::which("taskset")
        };
        let mut cmd = match &taskset {
            Some(t) => {
                let mut c = Command::new(t);
                c.arg("-c").arg(sys::cpu_list(&spec.cpus)).arg(&spec.bin);
                c
            }
            None => Command::new(&spec.bin),
        };
        cmd.arg("serve")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", spec.bin.display()))?;
        let pid = child.id();
        let pinned_with = match &taskset {
            Some(_) => "taskset",
            None if spec.cpus.is_empty() => "no",
            None => match sys::pin_process(pid, &spec.cpus) {
                Ok(()) => "sched_setaffinity",
                Err(e) => {
                    eprintln!(
                        "warning: cannot pin the gateway to CPUs {:?}: {e}",
                        spec.cpus
                    );
                    "no"
                }
            },
        };
        Ok(Gateway {
            child: Some(child),
            pid,
            listen,
            admin,
            config_path,
            log_path,
            dir,
            pinned_with,
            config,
        })
    }

    /// The gateway's MCP URL.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.listen)
    }

    /// Polls `GET /readyz` until 200, the process exits, or `within` passes.
    pub async fn wait_ready(&mut self, within: Duration, cpus: &[usize]) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let mut last;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "the gateway exited ({status}) before it was ready; its log ({}):\n{}",
                        self.log_path.display(),
                        log_tail(&self.log_path)
                    ));
                }
            }
            match admin_get(self.admin, "/readyz").await {
                Ok((200, _)) => break,
                Ok((status, body)) => last = format!("{status} {}", String::from_utf8_lossy(&body)),
                Err(e) => last = e,
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the gateway was not ready within {within:?} (last /readyz: {}); its log ({}):\n{}",
                    last.trim(),
                    self.log_path.display(),
                    log_tail(&self.log_path)
                ));
            }
            monoio::time::sleep(Duration::from_millis(20)).await;
        }
        // Threads started after a sched_setaffinity fallback inherit nothing: pin them all again.
        if self.pinned_with == "sched_setaffinity" {
            let _ = sys::pin_process(self.pid, cpus);
        }
        Ok(())
    }

    /// Current resident set size in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        sys::rss_kib(self.pid)
    }

    /// SIGTERM, a short wait for a graceful exit, then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // SAFETY: `kill` only sends a signal. The pid is our own child, not yet reaped (we
        // hold its `Child` and `try_wait` just saw it running), so it cannot name another process.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Gateway {
    /// Stops the gateway and removes its temporary directory (after a clean run; a failed run
    /// keeps the log for reading).
    pub fn stop_and_clean(mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// WARN and ERROR lines of the gateway's log: (count, the first few).
pub fn log_problems(path: &Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("WARN") || l.starts_with("ERROR"))
        .collect();
    (
        bad.len(),
        bad.iter().take(5).map(|l| l.to_string()).collect(),
    )
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// `GET path` on an admin listener; returns status and body.
pub async fn admin_get(addr: SocketAddr, path: &str) -> Result<(u16, Bytes), String> {
    admin_request(addr, "GET", path, None).await
}

async fn admin_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Bytes>,
) -> Result<(u16, Bytes), String> {
    let fut = async {
        let mut conn = ringgate::transport::http::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let host = addr.to_string();
        let body: Vec<Bytes> = body.into_iter().collect();
        conn.send_request(method, path, &host, &[("connection", b"close")], &body)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let head = conn
            .read_response_head()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let body = conn
            .read_body(&head, 16 * 1024 * 1024)
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        Ok((head.status, body))
    };
    monoio::time::timeout(Duration::from_secs(5), fut)
        .await
        .unwrap_or_else(|_| Err(format!("GET {path}: timed out")))
}

/// The admin base address of a running gateway, from `--gateway-admin http://host:port`.
pub fn parse_admin(url: &str) -> Result<SocketAddr, String> {
    let t = crate::client::Target::new("gateway-admin", url)?;
    Ok(t.addr)
}

/// Quantiles (0.5, 0.9, 0.99, 0.999, in seconds) and count of one summary in `/metrics` text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub quantiles: Vec<(String, f64)>,
    pub count: Option<u64>,
}

impl Summary {
    pub fn at(&self, q: &str) -> Option<f64> {
        self.quantiles.iter().find(|(k, _)| k == q).map(|(_, v)| *v)
    }
}

/// Reads summary `name` (without labels other than `quantile`) from Prometheus text.
pub fn parse_summary(text: &str, name: &str) -> Summary {
    let mut s = Summary::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if let Some(q) = rest.strip_prefix("{quantile=\"") {
            if let Some((q, value)) = q.split_once("\"}") {
                if let Ok(v) = value.trim().parse::<f64>() {
                    s.quantiles.push((q.to_string(), v));
                }
            }
        } else if let Some(count) = rest.strip_prefix("_count ") {
            s.count = count.trim().parse().ok();
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_read() {
        let text = "# TYPE ringgate_gateway_added_seconds summary\n\
            ringgate_gateway_added_seconds{quantile=\"0.5\"} 1.5e-6\n\
            ringgate_gateway_added_seconds{quantile=\"0.99\"} 4e-6\n\
            ringgate_gateway_added_seconds_sum 1e-3\n\
            ringgate_gateway_added_seconds_count 512\n\
            ringgate_downstream_seconds{quantile=\"0.5\"} 9e-6\n";
        let s = parse_summary(text, "ringgate_gateway_added_seconds");
        assert_eq!(s.at("0.5"), Some(1.5e-6));
        assert_eq!(s.at("0.99"), Some(4e-6));
        assert_eq!(s.count, Some(512));
        assert_eq!(
            parse_summary(text, "ringgate_downstream_seconds").at("0.5"),
            Some(9e-6)
        );
    }

    #[test]
    fn config_is_valid_for_the_gateway() {
        let spec = Spec {
            bin: PathBuf::from("ringgate"),
            servers: vec![
                ("bench0".into(), "http://127.0.0.1:9000/mcp".into()),
                ("bench1".into(), "http://127.0.0.1:9001/mcp".into()),
            ],
            stdio: None,
            page_size: Some(500),
            pool_size: Some(8),
            cpus: vec![0],
            idle_timeout_ms: None,
        };
        let text = config_text(
            &spec,
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        let v: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(v["gateway"]["workers"].as_integer(), Some(1));
        assert_eq!(v["gateway"]["page_size"].as_integer(), Some(500));
        assert_eq!(v["server"].as_array().unwrap().len(), 2);
        assert_eq!(
            v["server"][1]["url"].as_str(),
            Some("http://127.0.0.1:9001/mcp")
        );
        let cfg = ringgate::config::parse_str(&text, &|_| None);
        assert!(cfg.is_ok(), "{:?}", cfg.err().map(|e| e.to_string()));
    }

    #[test]
    fn stdio_config_is_valid_for_the_gateway() {
        let spec = Spec {
            bin: PathBuf::from("ringgate"),
            servers: Vec::new(),
            stdio: Some(StdioServer {
                name: "bench".into(),
                command: PathBuf::from("/opt/a \"b\"/ringgate-loadtest"),
                args: vec![
                    "downstream".into(),
                    "--stdio".into(),
                    "--pin".into(),
                    "1".into(),
                ],
            }),
            page_size: None,
            pool_size: Some(8),
            cpus: vec![0],
            idle_timeout_ms: Some(600_000),
        };
        let text = config_text(
            &spec,
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        let v: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(
            v["gateway"]["limits"]["idle_timeout_ms"].as_integer(),
            Some(600_000)
        );
        assert_eq!(v["server"][0]["transport"].as_str(), Some("stdio"));
        assert_eq!(
            v["server"][0]["command"].as_str(),
            Some("/opt/a \"b\"/ringgate-loadtest")
        );
        assert_eq!(v["server"][0]["args"][1].as_str(), Some("--stdio"));
        let cfg = ringgate::config::parse_str(&text, &|_| None);
        assert!(cfg.is_ok(), "{:?}", cfg.err().map(|e| e.to_string()));
    }
}
