//! Command-line parsing, by hand (no parser dependency): `--flag value` and `--flag=value`.
//!
//! Every option has a default that reproduces the contract run in DESIGN §2/§9: open loop,
//! warm `tools/call`, 32 keep-alive connections per path, direct / relay / gateway interleaved in
//! 100 ms slices, gateway and load pinned to the first two allowed CPUs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Open loop (fixed rate, CO-corrected) or closed loop (max throughput).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Requests at intended times `t0 + i/rate`, latency from the intended time.
    Open,
    /// Every connection sends back to back; reports throughput.
    Saturate,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Open => "open",
            Mode::Saturate => "saturate",
        }
    }
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Warm `tools/call`, small reply.
    Call,
    /// `tools/call` with a 10 KiB reply.
    Call10k,
    /// `tools/list`: the gateway merges `--servers` downstreams of `--tools` tools each.
    List,
    /// `tools/call` whose downstream reply is an SSE stream.
    Sse,
    /// `tools/call` to a stdio downstream: the gateway spawns `ringgate-loadtest downstream
    /// --stdio`; the direct path talks to a second such child of the load test.
    Stdio,
    /// `tools/call` in the 2026-07-28 era through the gateway (no handshake; `_meta` and the
    /// `Mcp-Method`/`Mcp-Name` headers on every request), bridged to the legacy bench server;
    /// direct and relay send the same call in the legacy era.
    Modern,
}

impl Scenario {
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Call => "call",
            Scenario::Call10k => "call-10k",
            Scenario::List => "list",
            Scenario::Sse => "sse",
            Scenario::Stdio => "stdio",
            Scenario::Modern => "modern",
        }
    }
}

/// Scenarios of issue 6 that this load test does not run yet, and why.
pub const NOT_IMPLEMENTED: &[(&str, &str)] = &[];

/// A CPU choice: automatic, none, or a given CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    Auto,
    None,
    Cpu(usize),
}

/// Parsed options.
#[derive(Debug, Clone)]
pub struct Args {
    pub mode: Mode,
    pub scenario: Scenario,
    pub rate: f64,
    pub duration: Duration,
    pub warmup: Duration,
    pub slice: Duration,
    pub connections: usize,
    pub timeout: Duration,
    pub paths: Vec<String>,
    pub tools: Option<usize>,
    pub servers: Option<usize>,
    pub payload_bytes: Option<usize>,
    pub pin_gateway: Pin,
    pub pin_load: Pin,
    pub pin_relay: Pin,
    /// CPU of the stdio bench servers (both children; default: the gateway's CPU).
    pub pin_stdio: Pin,
    /// Idle sessions held open on the gateway path during the run.
    pub idle_sessions: usize,
    /// `--reload-storm MS`: POST a changed config to the gateway's /v1/reload every MS (0 = off).
    pub reload_storm_ms: u64,
    pub gateway_bin: Option<PathBuf>,
    pub gateway_url: Option<String>,
    pub gateway_admin: Option<String>,
    pub gateway_tool: Option<String>,
    pub gateway_pool: Option<usize>,
    pub direct_url: Option<String>,
    pub targets: Vec<(String, String)>,
    pub downstream_listen: Option<SocketAddr>,
    pub json: Option<PathBuf>,
    pub quiet: bool,
    pub slow: std::time::Duration,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            mode: Mode::Open,
            scenario: Scenario::Call,
            rate: 5000.0,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            slice: Duration::from_millis(100),
            connections: 32,
            timeout: Duration::from_secs(5),
            paths: vec!["direct".into(), "relay".into(), "gateway".into()],
            tools: None,
            servers: None,
            payload_bytes: None,
            pin_gateway: Pin::Auto,
            pin_load: Pin::Auto,
            pin_relay: Pin::Auto,
            pin_stdio: Pin::Auto,
            idle_sessions: 0,
            reload_storm_ms: 0,
            gateway_bin: None,
            gateway_url: None,
            gateway_admin: None,
            gateway_tool: None,
            gateway_pool: None,
            direct_url: None,
            targets: Vec::new(),
            downstream_listen: None,
            json: None,
            quiet: false,
            slow: Duration::ZERO,
        }
    }
}

/// Options of the `downstream` subcommand (the bench server alone).
#[derive(Debug, Clone)]
pub struct DownstreamArgs {
    pub listen: SocketAddr,
    pub servers: usize,
    pub tools: usize,
    pub payload_bytes: usize,
    pub sse: bool,
    /// Serve one bench server on stdin/stdout (newline-delimited JSON) instead of HTTP.
    pub stdio: bool,
    pub pin: Pin,
}

/// What the command line asks for.
pub enum Command {
    Run(Box<Args>),
    Downstream(DownstreamArgs),
    Help,
}

pub const USAGE: &str = "\
ringgate-loadtest: measure the latency ringgate adds, next to a bare TCP relay, in one run.

USAGE:
  ringgate-loadtest [OPTIONS]              run the load test (starts downstream, relay, gateway)
  ringgate-loadtest downstream [OPTIONS]   run only the bench MCP server (e.g. behind nginx)

LOAD OPTIONS:
  --mode open|saturate     open loop at --rate (default), or closed loop max throughput
  --scenario S             call (default) | call-10k | list | sse | stdio | modern
  --rate N                 requests/s per path during its slices (default 5000)
  --duration D             measured time, all paths together (default 10s; each path gets D/paths)
  --warmup D               unrecorded warm-up, same interleaving (default 1s)
  --slice D                interleaving slice (default 100ms): direct, relay, gateway, ...
  --connections N          keep-alive connections per path, one request at a time each (default 32)
  --timeout D              per-request timeout (default 5s)
  --paths LIST             comma list among direct,relay,gateway (default all three)
  --target NAME=URL        an extra path (e.g. nginx in front of the bench server); repeatable
  --tools N                tools per downstream (default 1; list: 50)
  --servers N              downstream servers fronted by the gateway (default 1; list: 10)
  --payload-bytes N        text bytes in each tools/call reply (default 5; call-10k: 10240)
  --json FILE              also write the report as JSON
  --quiet                  no progress lines on stderr
  --slow-us N              list every measured request slower than N µs (time into the run, path)
  --idle-sessions N        after the probes, open N more sessions on the gateway path (connect,
                           initialize, notifications/initialized) and hold them idle through the
                           run; reports gateway RSS per idle session (budget: --idle-sessions 10000)
  --reload-storm MS        while measuring, POST a changed config to the spawned gateway's
                           /v1/reload every MS ms, alternating: a second server added and removed,
                           a third server's prefix changed; the measured server never changes, so
                           any failed request is a reload fault (issue #5: --reload-storm 200)

PLACEMENT:
  --pin-gateway CPU|none   CPU of the gateway process (default: 2nd allowed CPU)
  --pin-load CPU|none      CPU of the load generator + bench server (default: 1st allowed CPU)
  --pin-relay CPU|none     CPU of the relay thread (default: same as the gateway)
  --pin-stdio CPU|none     stdio scenario: CPU of both stdio bench servers (default: the gateway's;
                           none: each keeps its parent's, load generator's or gateway's)
  (run under `chrt -f 10` for real-time priority; children inherit it)

TARGETS:
  --gateway-bin PATH       ringgate binary (default: `ringgate` next to this executable)
  --gateway-url URL        measure a running gateway instead of spawning one
  --gateway-admin URL      its admin base URL, to scrape /metrics (optional)
  --gateway-tool NAME      tool name through the gateway (default bench__echo)
  --gateway-pool N         pool_size of the spawned gateway's downstream (default: gateway's)
  --direct-url URL         use a running downstream instead of the built-in one
  --downstream-listen ADDR fixed address for the built-in bench server (default 127.0.0.1:0)

DOWNSTREAM SUBCOMMAND:
  --listen ADDR (default 127.0.0.1:9100)  --servers N (consecutive ports)  --tools N
  --payload-bytes N  --sse  --pin CPU|none
  --stdio                  serve on stdin/stdout (newline-delimited JSON-RPC) instead of HTTP; this
                           is what the gateway spawns in the stdio scenario

Exit status: 0 when every request succeeded, 1 when any failed, 2 on a usage or setup error.
";

/// Parses a duration: `10s`, `100ms`, `250us`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("bad duration '{s}' (e.g. 10s, 100ms)"))?;
    let secs = match unit {
        "s" => v,
        "ms" => v / 1e3,
        "us" | "µs" => v / 1e6,
        "m" | "min" => v * 60.0,
        _ => return Err(format!("bad duration unit in '{s}' (s, ms, us, m)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("bad duration '{s}'"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_pin(s: &str) -> Result<Pin, String> {
    match s {
        "auto" => Ok(Pin::Auto),
        "none" | "off" => Ok(Pin::None),
        n => n
            .parse()
            .map(Pin::Cpu)
            .map_err(|_| format!("bad CPU '{n}' (a number, none or auto)")),
    }
}

fn parse_num<T: std::str::FromStr>(flag: &str, s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{flag}: '{s}' is not a valid number"))
}

/// Splits `--flag=value` / `--flag value` into (flag, value getter).
struct Cursor {
    items: Vec<String>,
    pos: usize,
}

impl Cursor {
    fn next_flag(&mut self) -> Option<(String, Option<String>)> {
        let item = self.items.get(self.pos)?.clone();
        self.pos += 1;
        match item.split_once('=') {
            Some((f, v)) if f.starts_with("--") => Some((f.to_string(), Some(v.to_string()))),
            _ => Some((item, None)),
        }
    }

    fn value(&mut self, flag: &str, inline: Option<String>) -> Result<String, String> {
        if let Some(v) = inline {
            return Ok(v);
        }
        let v = self
            .items
            .get(self.pos)
            .cloned()
            .ok_or_else(|| format!("{flag} needs a value"))?;
        self.pos += 1;
        Ok(v)
    }
}

/// Parses the process arguments (without the program name).
pub fn parse(items: Vec<String>) -> Result<Command, String> {
    if items.first().map(String::as_str) == Some("downstream") {
        return parse_downstream(items[1..].to_vec());
    }
    let mut a = Args::default();
    let mut c = Cursor { items, pos: 0 };
    while let Some((flag, inline)) = c.next_flag() {
        let f = flag.as_str();
        match f {
            "-h" | "--help" => return Ok(Command::Help),
            "--quiet" | "-q" => a.quiet = true,
            _ => {
                let v = c.value(f, inline)?;
                match f {
                    "--mode" => {
                        a.mode = match v.as_str() {
                            "open" => Mode::Open,
                            "saturate" | "closed" => Mode::Saturate,
                            _ => return Err(format!("--mode: '{v}' (open or saturate)")),
                        }
                    }
                    "--scenario" => {
                        a.scenario = match v.as_str() {
                            "call" => Scenario::Call,
                            "call-10k" => Scenario::Call10k,
                            "list" => Scenario::List,
                            "sse" => Scenario::Sse,
                            "stdio" => Scenario::Stdio,
                            "modern" => Scenario::Modern,
                            other => {
                                if let Some((_, why)) =
                                    NOT_IMPLEMENTED.iter().find(|(n, _)| *n == other)
                                {
                                    return Err(format!(
                                        "--scenario {other} is not implemented yet: {why}"
                                    ));
                                }
                                return Err(format!(
                                    "--scenario: '{v}' (call, call-10k, list, sse, stdio or modern)"
                                ));
                            }
                        }
                    }
                    "--rate" => a.rate = parse_num(f, &v)?,
                    "--duration" => a.duration = parse_duration(&v)?,
                    "--warmup" => a.warmup = parse_duration(&v)?,
                    "--slice" => a.slice = parse_duration(&v)?,
                    "--connections" | "-c" => a.connections = parse_num(f, &v)?,
                    "--timeout" => a.timeout = parse_duration(&v)?,
                    "--paths" => {
                        a.paths = v
                            .split(',')
                            .map(|p| p.trim().to_string())
                            .filter(|p| !p.is_empty())
                            .collect()
                    }
                    "--target" => {
                        let (name, url) = v
                            .split_once('=')
                            .ok_or_else(|| format!("--target: '{v}' is not NAME=URL"))?;
                        a.targets.push((name.to_string(), url.to_string()));
                    }
                    "--tools" => a.tools = Some(parse_num(f, &v)?),
                    "--servers" => a.servers = Some(parse_num(f, &v)?),
                    "--payload-bytes" => a.payload_bytes = Some(parse_num(f, &v)?),
                    "--pin-gateway" => a.pin_gateway = parse_pin(&v)?,
                    "--pin-load" => a.pin_load = parse_pin(&v)?,
                    "--pin-relay" => a.pin_relay = parse_pin(&v)?,
                    "--pin-stdio" => a.pin_stdio = parse_pin(&v)?,
                    "--idle-sessions" => a.idle_sessions = parse_num(f, &v)?,
                    "--reload-storm" => a.reload_storm_ms = parse_num(f, &v)?,
                    "--gateway-bin" => a.gateway_bin = Some(PathBuf::from(v)),
                    "--gateway-url" => a.gateway_url = Some(v),
                    "--gateway-admin" => a.gateway_admin = Some(v),
                    "--gateway-tool" => a.gateway_tool = Some(v),
                    "--gateway-pool" => a.gateway_pool = Some(parse_num(f, &v)?),
                    "--direct-url" => a.direct_url = Some(v),
                    "--downstream-listen" => {
                        a.downstream_listen = Some(
                            v.parse()
                                .map_err(|_| format!("--downstream-listen: bad address '{v}'"))?,
                        )
                    }
                    "--json" => a.json = Some(PathBuf::from(v)),
                    "--slow-us" => {
                        a.slow = Duration::from_micros(parse_num::<u64>(f, &v)?);
                    }
                    _ => return Err(format!("unknown option '{f}' (see --help)")),
                }
            }
        }
    }
    validate(&a)?;
    Ok(Command::Run(Box::new(a)))
}

fn validate(a: &Args) -> Result<(), String> {
    if !(a.rate.is_finite() && a.rate > 0.0) {
        return Err("--rate must be positive".into());
    }
    if a.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if a.duration.is_zero() {
        return Err("--duration must be positive".into());
    }
    if a.slice < Duration::from_millis(1) {
        return Err("--slice must be at least 1ms".into());
    }
    if a.paths.is_empty() && a.targets.is_empty() {
        return Err("nothing to measure: --paths is empty and no --target given".into());
    }
    for p in &a.paths {
        if !matches!(p.as_str(), "direct" | "relay" | "gateway") {
            return Err(format!(
                "--paths: unknown path '{p}' (direct, relay, gateway; use --target for others)"
            ));
        }
    }
    for (name, _) in &a.targets {
        if a.paths.iter().any(|p| p == name) || name.is_empty() {
            return Err(format!("--target: name '{name}' is empty or taken"));
        }
    }
    if a.servers == Some(0) || a.tools == Some(0) {
        return Err("--servers and --tools must be at least 1".into());
    }
    if a.idle_sessions > 0 && !a.paths.iter().any(|p| p == "gateway") {
        return Err(
            "--idle-sessions holds its sessions on the gateway path: keep gateway in --paths"
                .into(),
        );
    }
    if a.scenario == Scenario::Stdio {
        if a.direct_url.is_some() || a.downstream_listen.is_some() {
            return Err(
                "--scenario stdio: the downstream is a stdio child; --direct-url and --downstream-listen do not apply"
                    .into(),
            );
        }
        if a.servers.is_some_and(|n| n > 1) {
            return Err("--scenario stdio runs one stdio server (--servers 1)".into());
        }
    }
    Ok(())
}

fn parse_downstream(items: Vec<String>) -> Result<Command, String> {
    let mut d = DownstreamArgs {
        listen: "127.0.0.1:9100".parse().expect("static address"),
        servers: 1,
        tools: 1,
        payload_bytes: 5,
        sse: false,
        stdio: false,
        pin: Pin::None,
    };
    let mut c = Cursor { items, pos: 0 };
    while let Some((flag, inline)) = c.next_flag() {
        let f = flag.as_str();
        match f {
            "-h" | "--help" => return Ok(Command::Help),
            "--sse" => d.sse = true,
            "--stdio" => d.stdio = true,
            _ => {
                let v = c.value(f, inline)?;
                match f {
                    "--listen" => {
                        d.listen = v
                            .parse()
                            .map_err(|_| format!("--listen: bad address '{v}'"))?
                    }
                    "--servers" => d.servers = parse_num(f, &v)?,
                    "--tools" => d.tools = parse_num(f, &v)?,
                    "--payload-bytes" => d.payload_bytes = parse_num(f, &v)?,
                    "--pin" => d.pin = parse_pin(&v)?,
                    _ => return Err(format!("unknown downstream option '{f}' (see --help)")),
                }
            }
        }
    }
    if d.servers == 0 || d.tools == 0 {
        return Err("--servers and --tools must be at least 1".into());
    }
    if d.stdio && (d.servers > 1 || d.sse) {
        return Err(
            "downstream --stdio serves one server with JSON lines (no --servers, --sse)".into(),
        );
    }
    Ok(Command::Downstream(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Args {
        match parse(args.iter().map(|s| s.to_string()).collect()) {
            Ok(Command::Run(a)) => *a,
            Ok(_) => panic!("not a run"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn flags_both_forms() {
        let a = run(&[
            "--rate",
            "2000",
            "--duration=5s",
            "--pin-gateway",
            "1",
            "--pin-load=0",
            "--scenario",
            "call-10k",
            "--target",
            "nginx=http://127.0.0.1:8080/mcp",
        ]);
        assert_eq!(a.rate, 2000.0);
        assert_eq!(a.duration, Duration::from_secs(5));
        assert_eq!(a.pin_gateway, Pin::Cpu(1));
        assert_eq!(a.pin_load, Pin::Cpu(0));
        assert_eq!(a.scenario, Scenario::Call10k);
        assert_eq!(a.targets[0].0, "nginx");
    }

    #[test]
    fn bad_input_is_refused() {
        for bad in [
            &["--rate", "0"][..],
            &["--paths", "nope"],
            &["--bogus", "1"],
            &["--rate"],
            &["--scenario", "nonsense"],
            &["--idle-sessions", "10", "--paths", "direct,relay"],
            &["--reload-storm", "x"],
            &[
                "--scenario",
                "stdio",
                "--direct-url",
                "http://127.0.0.1:1/mcp",
            ],
            &["downstream", "--stdio", "--servers", "2"],
        ] {
            assert!(
                parse(bad.iter().map(|s| s.to_string()).collect()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn idle_sessions_and_stdio() {
        let a = run(&[
            "--idle-sessions",
            "10000",
            "--scenario=stdio",
            "--pin-stdio",
            "1",
        ]);
        assert_eq!(a.idle_sessions, 10_000);
        assert_eq!(a.scenario, Scenario::Stdio);
        assert_eq!(a.pin_stdio, Pin::Cpu(1));
        assert_eq!(run(&[]).idle_sessions, 0);
        let items = [
            "downstream",
            "--stdio",
            "--payload-bytes",
            "10240",
            "--pin",
            "1",
        ];
        match parse(items.iter().map(|s| s.to_string()).collect()) {
            Ok(Command::Downstream(d)) => {
                assert!(d.stdio);
                assert_eq!(d.payload_bytes, 10_240);
                assert_eq!(d.pin, Pin::Cpu(1));
            }
            _ => panic!("not the downstream subcommand"),
        }
    }
}
