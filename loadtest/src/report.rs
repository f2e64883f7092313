//! The report: a readable table and the same facts as JSON, plus the budget checks of
//! `perf/budgets.toml`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::args::{Mode, NOT_IMPLEMENTED};
use crate::gateway::Summary;
use crate::load::PathStats;

/// The budget figures (issue 6), compiled in.
pub const BUDGETS: &str = include_str!("../../perf/budgets.toml");

/// Latency quantiles in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quantiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Quantiles {
    fn json(&self) -> Value {
        json!({
            "p50": r2(self.p50), "p90": r2(self.p90), "p99": r2(self.p99),
            "p99_9": r2(self.p999), "max": r2(self.max), "mean": r2(self.mean),
        })
    }
}

/// One path's results.
#[derive(Debug, Clone)]
pub struct PathResult {
    pub name: String,
    pub url: String,
    pub ok: u64,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    pub first_failure: Option<String>,
    pub offered_rps: f64,
    pub achieved_rps: f64,
    pub measured_s: f64,
    pub latency: Quantiles,
    pub reply_bytes_avg: f64,
}

impl PathResult {
    pub fn from_stats(name: &str, url: &str, s: &PathStats) -> PathResult {
        let h = &s.hist;
        let us = |ns: u64| ns as f64 / 1e3;
        let latency = if h.is_empty() {
            Quantiles::default()
        } else {
            Quantiles {
                p50: us(h.value_at_quantile(0.5)),
                p90: us(h.value_at_quantile(0.9)),
                p99: us(h.value_at_quantile(0.99)),
                p999: us(h.value_at_quantile(0.999)),
                max: us(h.max()),
                mean: h.mean() / 1e3,
            }
        };
        let secs = s.measured.as_secs_f64().max(1e-9);
        let busy = (s.measured + s.tail).as_secs_f64().max(1e-9);
        PathResult {
            name: name.to_string(),
            url: url.to_string(),
            ok: s.ok,
            failed: s.failed,
            failures: s.failures.clone(),
            first_failure: s.first_failure.clone(),
            offered_rps: s.offered as f64 / secs,
            achieved_rps: s.ok as f64 / busy,
            measured_s: s.measured.as_secs_f64(),
            latency,
            reply_bytes_avg: if s.ok > 0 {
                s.reply_bytes as f64 / s.ok as f64
            } else {
                0.0
            },
        }
    }
}

/// (path − direct) at each quantile, microseconds.
#[derive(Debug, Clone)]
pub struct Added {
    pub name: String,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
}

/// What is known about the gateway process.
#[derive(Debug, Clone, Default)]
pub struct GatewayFacts {
    pub spawned: bool,
    pub pid: Option<u32>,
    pub affinity: Option<String>,
    pub pinned_with: String,
    pub rss_idle_kib: Option<u64>,
    pub rss_sessions_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    pub sessions: usize,
    pub internal: Option<Summary>,
    pub downstream: Option<Summary>,
    pub request: Option<Summary>,
    pub metrics_error: Option<String>,
    pub config_path: Option<String>,
    pub log_path: Option<String>,
    /// WARN/ERROR lines in the spawned gateway's log, and the first few of them.
    pub log_problems: usize,
    pub log_samples: Vec<String>,
}

/// `--idle-sessions`: what holding many idle sessions on the gateway cost.
#[derive(Debug, Clone, Default)]
pub struct IdleFacts {
    /// `--idle-sessions`.
    pub requested: usize,
    /// What was attempted (less than requested when descriptors ran short).
    pub attempted: usize,
    /// Why fewer were attempted than requested.
    pub capped: Option<String>,
    pub opened: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    /// Seconds the handshakes took, all of them.
    pub open_s: f64,
    /// Gateway RSS just before opening them and once they were open.
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    /// Sockets the gateway process held: before opening, once open, after the run.
    pub gateway_sockets: [Option<usize>; 3],
    /// After the run: sessions that answered a ping, and the failures.
    pub alive_after: Option<usize>,
    pub lost_after: usize,
    pub lost_first_error: Option<String>,
    /// `RLIMIT_NOFILE` (soft, hard) of the load test and of the spawned gateway.
    pub nofile_load: Option<(u64, u64)>,
    pub nofile_gateway: Option<(u64, u64)>,
}

impl IdleFacts {
    /// (RSS once open − RSS before) / sessions opened, KiB.
    pub fn kib_per_session(&self) -> Option<f64> {
        let (before, after) = (self.rss_before_kib?, self.rss_after_kib?);
        (self.opened > 0).then(|| (after as f64 - before as f64) / self.opened as f64)
    }

    /// Handshakes that failed plus sessions lost during the run.
    pub fn failures(&self) -> u64 {
        (self.failed + self.lost_after) as u64
    }
}

/// `soft/hard` of an `RLIMIT_NOFILE`.
pub fn opt_limit(l: Option<(u64, u64)>) -> String {
    let n = |v: u64| {
        if v == u64::MAX {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    l.map_or("?".into(), |(s, h)| format!("{}/{}", n(s), n(h)))
}

fn opt_count(c: Option<usize>) -> String {
    c.map_or("?".into(), |c| c.to_string())
}

/// How the run was set up.
#[derive(Debug, Clone)]
pub struct Meta {
    pub mode: Mode,
    pub scenario: &'static str,
    pub rate: f64,
    pub duration_s: f64,
    pub per_path_s: f64,
    pub warmup_s: f64,
    pub slice_ms: f64,
    pub connections: usize,
    pub servers: usize,
    pub tools: usize,
    pub payload_bytes: usize,
    /// How the bench server is reached: `http`, `http (SSE replies)`, `stdio`.
    pub transport: &'static str,
    pub load_cpus: String,
    pub gateway_cpus: String,
    pub relay_cpus: String,
    /// The stdio bench servers' CPUs (stdio scenario).
    pub stdio_cpus: Option<String>,
    pub cpu_model: String,
    pub cpus: usize,
    pub kernel: String,
    pub sched: String,
    pub started_unix: u64,
}

/// One budget line.
#[derive(Debug, Clone)]
pub struct Check {
    pub what: String,
    pub limit: String,
    pub measured: String,
    /// `None`: not measurable in this run.
    pub pass: Option<bool>,
}

/// What the built-in bench servers saw during the run (warm-up included).
#[derive(Debug, Clone, Copy)]
pub struct BenchCounts {
    /// Connections accepted before the run (load generator, relay, gateway pool).
    pub connections_before: u64,
    /// Connections accepted during the run: pool churn or reconnects show up here.
    pub connections_during: u64,
    pub requests_during: u64,
    /// Sessions initialized during the run (a gateway re-initializing its downstream session).
    pub sessions_during: u64,
}

/// The whole report.
pub struct Report {
    pub meta: Meta,
    pub paths: Vec<PathResult>,
    pub warm_failed: u64,
    pub gateway: Option<GatewayFacts>,
    pub bench: Option<BenchCounts>,
    pub idle: Option<IdleFacts>,
}

fn r2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn fmt_us(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn opt_mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn budget_f64(b: &toml::Value, table: &str, key: &str) -> Option<f64> {
    let v = b.get(table)?.get(key)?;
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

impl Report {
    /// Total failed requests, warm-up included, and idle sessions that failed to open or were
    /// lost.
    pub fn failed(&self) -> u64 {
        self.warm_failed
            + self.paths.iter().map(|p| p.failed).sum::<u64>()
            + self.idle.as_ref().map_or(0, IdleFacts::failures)
    }

    fn path(&self, name: &str) -> Option<&PathResult> {
        self.paths.iter().find(|p| p.name == name)
    }

    /// (path − direct) for every path but direct; empty without a direct path.
    pub fn added(&self) -> Vec<Added> {
        let Some(d) = self.path("direct") else {
            return Vec::new();
        };
        self.paths
            .iter()
            .filter(|p| p.name != "direct" && p.ok > 0)
            .map(|p| Added {
                name: p.name.clone(),
                p50: p.latency.p50 - d.latency.p50,
                p90: p.latency.p90 - d.latency.p90,
                p99: p.latency.p99 - d.latency.p99,
                p999: p.latency.p999 - d.latency.p999,
            })
            .collect()
    }

    fn added_of(&self, name: &str) -> Option<Added> {
        self.added().into_iter().find(|a| a.name == name)
    }

    /// (gateway added p50) / (relay added p50).
    pub fn ratio(&self) -> Option<f64> {
        let g = self.added_of("gateway")?;
        let r = self.added_of("relay")?;
        (r.p50 > 0.0).then(|| g.p50 / r.p50)
    }

    /// Whether this run has the budget's conditions.
    pub fn conditions_match(&self) -> bool {
        let b: toml::Value = toml::from_str(BUDGETS).unwrap_or(toml::Value::Integer(0));
        let scenario = b
            .get("conditions")
            .and_then(|c| c.get("scenario"))
            .and_then(|s| s.as_str());
        let rate = budget_f64(&b, "conditions", "rate");
        scenario == Some(self.meta.scenario)
            && rate == Some(self.meta.rate)
            && self.meta.mode == Mode::Open
    }

    /// The budget lines this run can speak to.
    pub fn checks(&self) -> Vec<Check> {
        let b: toml::Value = match toml::from_str(BUDGETS) {
            Ok(v) => v,
            Err(_) => return Vec::new(),
        };
        let mut out = Vec::new();
        let max_err = budget_f64(&b, "errors", "max").unwrap_or(0.0);
        out.push(Check {
            what: "errors".into(),
            limit: format!("≤ {max_err}"),
            measured: self.failed().to_string(),
            pass: Some(self.failed() as f64 <= max_err),
        });
        if self.meta.mode == Mode::Open {
            if let Some(limit) = budget_f64(&b, "latency", "added_p50_max_relay_ratio") {
                let ratio = self.ratio();
                out.push(Check {
                    what: "gateway added p50 / relay added p50".into(),
                    limit: format!("≤ {limit}"),
                    measured: ratio.map_or("n/a".into(), |r| format!("{r:.2}")),
                    pass: ratio.map(|r| r <= limit),
                });
            }
            if let Some(limit) = budget_f64(&b, "latency", "added_p50_max_nginx_ratio") {
                let (g, n) = (self.added_of("gateway"), self.added_of("nginx"));
                let ratio = match (g, n) {
                    (Some(g), Some(n)) if n.p50 > 0.0 => Some(g.p50 / n.p50),
                    _ => None,
                };
                out.push(Check {
                    what: "gateway added p50 / nginx added p50".into(),
                    limit: format!("≤ {limit}"),
                    measured: ratio
                        .map_or("n/a (add --target nginx=URL)".into(), |r| format!("{r:.2}")),
                    pass: ratio.map(|r| r <= limit),
                });
            }
            if let Some(limit) = budget_f64(&b, "latency", "added_p99_max_us") {
                let g = self.added_of("gateway");
                out.push(Check {
                    what: "gateway added p99".into(),
                    limit: format!("≤ {limit} µs"),
                    measured: g
                        .as_ref()
                        .map_or("n/a".into(), |g| format!("{} µs", fmt_us(g.p99))),
                    pass: g.map(|g| g.p99 <= limit),
                });
            }
        } else if let Some(limit) = budget_f64(&b, "throughput", "saturation_min_relay_ratio") {
            let ratio = match (self.path("gateway"), self.path("relay")) {
                (Some(g), Some(r)) if r.achieved_rps > 0.0 => Some(g.achieved_rps / r.achieved_rps),
                _ => None,
            };
            out.push(Check {
                what: "saturation: gateway rps / relay rps".into(),
                limit: format!("≥ {limit}"),
                measured: ratio.map_or("n/a".into(), |r| format!("{r:.2}")),
                pass: ratio.map(|r| r >= limit),
            });
        }
        if let Some(g) = &self.gateway {
            if let Some(limit) = budget_f64(&b, "gateway", "internal_p50_max_us") {
                let p50 = g
                    .internal
                    .as_ref()
                    .and_then(|s| s.at("0.5"))
                    .map(|v| v * 1e6);
                out.push(Check {
                    what: "gateway internal p50 (ringgate_gateway_added_seconds)".into(),
                    limit: format!("≤ {limit} µs"),
                    measured: p50.map_or("n/a".into(), |v| format!("{v:.2} µs")),
                    pass: p50.map(|v| v <= limit),
                });
            }
            if let Some(limit) = budget_f64(&b, "gateway", "idle_rss_max_mib") {
                let mib = g.rss_idle_kib.map(|k| k as f64 / 1024.0);
                out.push(Check {
                    what: "gateway idle RSS".into(),
                    limit: format!("≤ {limit} MiB"),
                    measured: mib.map_or("n/a".into(), |m| format!("{m:.1} MiB")),
                    pass: mib.map(|m| m <= limit),
                });
            }
            if let Some(limit) = budget_f64(&b, "gateway", "idle_session_max_kib") {
                let per = self.idle.as_ref().and_then(IdleFacts::kib_per_session);
                let measured = match (&self.idle, per) {
                    (_, Some(k)) => format!(
                        "{k:.2} KiB × {}",
                        self.idle.as_ref().map_or(0, |i| i.opened)
                    ),
                    (Some(_), None) => "n/a (gateway RSS unknown)".into(),
                    (None, None) => "n/a (run with --idle-sessions 10000)".into(),
                };
                out.push(Check {
                    what: "gateway RSS per idle session".into(),
                    limit: format!("≤ {limit} KiB"),
                    measured,
                    pass: per.map(|k| k <= limit),
                });
            }
        }
        out
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let m = &self.meta;
        let mut t = String::new();
        let mode = match m.mode {
            Mode::Open => format!("open loop at {} req/s per path", m.rate),
            Mode::Saturate => format!("closed loop (saturation), {} connections", m.connections),
        };
        let _ = writeln!(
            t,
            "\nringgate-loadtest {} · scenario {} · {mode}",
            env!("CARGO_PKG_VERSION"),
            m.scenario
        );
        let _ = writeln!(
            t,
            "  {:.1}s measured ({:.2}s per path) after {:.1}s warm-up · {}ms slices interleaved · {} connections/path",
            m.duration_s, m.per_path_s, m.warmup_s, m.slice_ms, m.connections
        );
        let _ = writeln!(
            t,
            "  downstream: {} {} server(s) × {} tool(s), {} B payload · machine: {}, {} CPUs, Linux {} · {}",
            m.servers, m.transport, m.tools, m.payload_bytes, m.cpu_model, m.cpus, m.kernel, m.sched
        );
        match &m.stdio_cpus {
            Some(stdio) => {
                let _ = writeln!(
                    t,
                    "  CPUs: load {} · gateway {} · stdio servers {}",
                    m.load_cpus, m.gateway_cpus, stdio
                );
                let _ = writeln!(
                    t,
                    "  stdio: direct = the load test → its own stdio child, gateway = HTTP → ringgate → \
                     ringgate's stdio child\n  (same program and arguments; added = what ringgate costs \
                     in front of a stdio server, HTTP front included)"
                );
            }
            None => {
                let _ = writeln!(
                    t,
                    "  CPUs: load+downstream {} · gateway {} · relay {}",
                    m.load_cpus, m.gateway_cpus, m.relay_cpus
                );
            }
        }
        if let Some(i) = &self.idle {
            let _ = writeln!(
                t,
                "  idle sessions: {} held open on the gateway path through warm-up and run",
                i.opened
            );
        }
        let _ = writeln!(
            t,
            "\n  {:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>7} {:>9}",
            "path",
            "p50 µs",
            "p90 µs",
            "p99 µs",
            "p99.9 µs",
            "max µs",
            "rate/s",
            "ok",
            "errors",
            "reply B"
        );
        for p in &self.paths {
            let l = &p.latency;
            let _ = writeln!(
                t,
                "  {:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10.1} {:>9} {:>7} {:>9.0}",
                p.name,
                fmt_us(l.p50),
                fmt_us(l.p90),
                fmt_us(l.p99),
                fmt_us(l.p999),
                fmt_us(l.max),
                p.achieved_rps,
                p.ok,
                p.failed,
                p.reply_bytes_avg
            );
        }
        let added = self.added();
        if !added.is_empty() {
            let _ = writeln!(
                t,
                "\n  {:<18} {:>9} {:>9} {:>9} {:>9}",
                "added vs direct", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs"
            );
            for a in &added {
                let _ = writeln!(
                    t,
                    "  {:<18} {:>9} {:>9} {:>9} {:>9}",
                    a.name,
                    fmt_us(a.p50),
                    fmt_us(a.p90),
                    fmt_us(a.p99),
                    fmt_us(a.p999)
                );
            }
            if let Some(r) = self.ratio() {
                let _ = writeln!(t, "  gateway added p50 / relay added p50 = {r:.2}");
            }
        }
        if let Some(g) = &self.gateway {
            let _ = writeln!(t);
            if let Some(pid) = g.pid {
                let _ = writeln!(
                    t,
                    "  gateway pid {pid}, CPUs {} (pinned with {}), workers = 1",
                    g.affinity.as_deref().unwrap_or("?"),
                    g.pinned_with
                );
            }
            let line = |name: &str, s: &Option<Summary>| -> String {
                match s {
                    Some(s) => {
                        let q =
                            |k: &str| s.at(k).map_or("n/a".into(), |v| format!("{:.2}", v * 1e6));
                        format!(
                            "  {name:<28} p50 {} µs · p99 {} µs · p99.9 {} µs · n = {}\n",
                            q("0.5"),
                            q("0.99"),
                            q("0.999"),
                            s.count.map_or("?".into(), |c| c.to_string())
                        )
                    }
                    None => String::new(),
                }
            };
            t.push_str(&line("gateway-internal time", &g.internal));
            t.push_str(&line("gateway downstream time", &g.downstream));
            t.push_str(&line("gateway end-to-end time", &g.request));
            if let Some(i) = self
                .idle
                .as_ref()
                .filter(|i| i.opened > 0 && g.request.is_some())
            {
                let _ = writeln!(
                    t,
                    "  (end-to-end counts every request since the gateway started, the {} idle sessions' \
                     handshakes included; internal and downstream count forwarded calls only)",
                    i.opened
                );
            }
            if let Some(e) = &g.metrics_error {
                let _ = writeln!(t, "  /metrics: {e}");
            }
            if g.log_problems > 0 {
                let _ = writeln!(
                    t,
                    "  gateway log: {} warning/error lines ({}), first:",
                    g.log_problems,
                    g.log_path.as_deref().unwrap_or("?")
                );
                for l in &g.log_samples {
                    let _ = writeln!(t, "    {l}");
                }
            }
            if g.spawned {
                let _ = writeln!(
                    t,
                    "  gateway RSS: idle {} · with {} sessions {} · after the run {}",
                    opt_mib(g.rss_idle_kib),
                    g.sessions,
                    opt_mib(g.rss_sessions_kib),
                    opt_mib(g.rss_after_kib)
                );
            }
        }
        if let Some(i) = &self.idle {
            let _ = writeln!(
                t,
                "\n  idle sessions: {} requested · {} opened, {} failed in {:.2}s (initialize + notifications/initialized, {} at a time)",
                i.requested,
                i.opened,
                i.failed,
                i.open_s,
                crate::idle::WINDOW
            );
            if let Some(why) = &i.capped {
                let _ = writeln!(t, "    capped to {}: {why}", i.attempted);
            }
            if let Some(e) = &i.first_error {
                let _ = writeln!(t, "    first failure: {e}");
            }
            let per = i
                .kib_per_session()
                .map_or("n/a".into(), |k| format!("{k:.2} KiB per idle session"));
            let _ = writeln!(
                t,
                "    gateway RSS: {} before · {} with them open → {per}",
                opt_mib(i.rss_before_kib),
                opt_mib(i.rss_after_kib)
            );
            let _ = writeln!(
                t,
                "    gateway sockets: {} before · {} open · {} after the run · after the run {} of {} answered ping",
                opt_count(i.gateway_sockets[0]),
                opt_count(i.gateway_sockets[1]),
                opt_count(i.gateway_sockets[2]),
                opt_count(i.alive_after),
                i.opened
            );
            if let Some(e) = &i.lost_first_error {
                let _ = writeln!(t, "    first lost session: {e}");
            }
            let _ = writeln!(
                t,
                "    RLIMIT_NOFILE soft/hard: load test {} · gateway {}",
                opt_limit(i.nofile_load),
                opt_limit(i.nofile_gateway)
            );
        }
        if let Some(b) = &self.bench {
            let _ = writeln!(
                t,
                "  bench server(s): {} requests during the run · connections: {} before, {} new during · {} new sessions during",
                b.requests_during, b.connections_before, b.connections_during, b.sessions_during
            );
        }
        let failing: Vec<&PathResult> = self.paths.iter().filter(|p| p.failed > 0).collect();
        let idle_failures = self.idle.as_ref().map_or(0, IdleFacts::failures);
        if !failing.is_empty() || self.warm_failed > 0 || idle_failures > 0 {
            let _ = writeln!(t, "\n  FAILURES");
            if self.warm_failed > 0 {
                let _ = writeln!(t, "  warm-up: {} failed requests", self.warm_failed);
            }
            if let Some(i) = self.idle.as_ref().filter(|i| i.failures() > 0) {
                let _ = writeln!(
                    t,
                    "  idle sessions: {} failed to open, {} lost during the run — first: {}",
                    i.failed,
                    i.lost_after,
                    i.first_error
                        .as_deref()
                        .or(i.lost_first_error.as_deref())
                        .unwrap_or("?")
                );
            }
            for p in failing {
                let classes: Vec<String> = p
                    .failures
                    .iter()
                    .map(|(k, v)| format!("{k} × {v}"))
                    .collect();
                let _ = writeln!(
                    t,
                    "  {}: {} — first: {}",
                    p.name,
                    classes.join(", "),
                    p.first_failure.as_deref().unwrap_or("?")
                );
            }
        }
        let checks = self.checks();
        if !checks.is_empty() {
            let cond = if self.conditions_match() {
                "conditions match"
            } else {
                "this run differs from the budget's conditions (call, open loop, 5000 req/s): indicative only"
            };
            let _ = writeln!(t, "\n  budget (perf/budgets.toml; {cond})");
            for c in &checks {
                let verdict = match c.pass {
                    Some(true) => "ok",
                    Some(false) => "OVER",
                    None => "-",
                };
                let _ = writeln!(
                    t,
                    "  {:<56} {:<12} {:<26} {}",
                    c.what, c.limit, c.measured, verdict
                );
            }
        }
        let _ = writeln!(t, "\n  not implemented yet:");
        for (name, why) in NOT_IMPLEMENTED {
            let _ = writeln!(t, "    {name}: {why}");
        }
        t
    }

    /// The JSON report.
    pub fn json(&self) -> Value {
        let m = &self.meta;
        let summary = |s: &Option<Summary>| -> Value {
            match s {
                Some(s) => {
                    let q: serde_json::Map<String, Value> = s
                        .quantiles
                        .iter()
                        .map(|(k, v)| (k.clone(), json!(r2(v * 1e6))))
                        .collect();
                    json!({ "quantiles_us": q, "count": s.count })
                }
                None => Value::Null,
            }
        };
        let gateway = self.gateway.as_ref().map(|g| {
            json!({
                "spawned": g.spawned,
                "pid": g.pid,
                "cpus": g.affinity,
                "pinned_with": g.pinned_with,
                "workers": 1,
                "rss_idle_kib": g.rss_idle_kib,
                "rss_with_sessions_kib": g.rss_sessions_kib,
                "sessions": g.sessions,
                "rss_after_kib": g.rss_after_kib,
                "internal": summary(&g.internal),
                "downstream": summary(&g.downstream),
                "end_to_end": summary(&g.request),
                "metrics_error": g.metrics_error,
                "config": g.config_path,
                "log": g.log_path,
                "log_problems": g.log_problems,
                "log_samples": g.log_samples,
            })
        });
        json!({
            "tool": "ringgate-loadtest",
            "version": env!("CARGO_PKG_VERSION"),
            "started_unix": m.started_unix,
            "config": {
                "mode": m.mode.as_str(),
                "scenario": m.scenario,
                "rate": m.rate,
                "duration_s": m.duration_s,
                "per_path_s": m.per_path_s,
                "warmup_s": m.warmup_s,
                "slice_ms": m.slice_ms,
                "connections": m.connections,
                "servers": m.servers,
                "tools": m.tools,
                "payload_bytes": m.payload_bytes,
                "downstream_transport": m.transport,
                "cpus": {
                    "load": m.load_cpus, "gateway": m.gateway_cpus, "relay": m.relay_cpus,
                    "stdio": m.stdio_cpus,
                },
            },
            "machine": {
                "cpu": m.cpu_model, "cpus": m.cpus, "kernel": m.kernel, "sched": m.sched,
            },
            "paths": self.paths.iter().map(|p| json!({
                "name": p.name,
                "url": p.url,
                "ok": p.ok,
                "errors": p.failed,
                "error_classes": p.failures,
                "first_error": p.first_failure,
                "offered_rps": r2(p.offered_rps),
                "achieved_rps": r2(p.achieved_rps),
                "measured_s": r2(p.measured_s),
                "latency_us": p.latency.json(),
                "reply_bytes_avg": r2(p.reply_bytes_avg),
            })).collect::<Vec<_>>(),
            "added_us": self.added().iter().map(|a| (a.name.clone(), json!({
                "p50": r2(a.p50), "p90": r2(a.p90), "p99": r2(a.p99), "p99_9": r2(a.p999),
            }))).collect::<serde_json::Map<String, Value>>(),
            "gateway_relay_added_p50_ratio": self.ratio().map(|r| (r * 1000.0).round() / 1000.0),
            "gateway": gateway,
            "bench_server": self.bench.map(|b| json!({
                "connections_before": b.connections_before,
                "connections_during": b.connections_during,
                "requests_during": b.requests_during,
                "sessions_during": b.sessions_during,
            })),
            "idle_sessions": self.idle.as_ref().map(|i| json!({
                "requested": i.requested,
                "attempted": i.attempted,
                "capped": i.capped,
                "opened": i.opened,
                "failed": i.failed,
                "first_error": i.first_error,
                "open_s": r2(i.open_s),
                "gateway_rss_before_kib": i.rss_before_kib,
                "gateway_rss_after_kib": i.rss_after_kib,
                "kib_per_session": i.kib_per_session().map(r2),
                "gateway_sockets": {
                    "before": i.gateway_sockets[0],
                    "open": i.gateway_sockets[1],
                    "after_run": i.gateway_sockets[2],
                },
                "alive_after_run": i.alive_after,
                "lost_during_run": i.lost_after,
                "lost_first_error": i.lost_first_error,
                "nofile": { "load": i.nofile_load, "gateway": i.nofile_gateway },
            })),
            "warmup_errors": self.warm_failed,
            "errors": self.failed(),
            "budget": {
                "conditions_match": self.conditions_match(),
                "checks": self.checks().iter().map(|c| json!({
                    "what": c.what, "limit": c.limit, "measured": c.measured, "pass": c.pass,
                })).collect::<Vec<_>>(),
            },
            "not_implemented": NOT_IMPLEMENTED.iter()
                .map(|(n, why)| json!({ "scenario": n, "why": why }))
                .collect::<Vec<_>>(),
            "ok": self.failed() == 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_and_carry_the_issue_figures() {
        let b: toml::Value = toml::from_str(BUDGETS).unwrap();
        assert_eq!(
            budget_f64(&b, "latency", "added_p50_max_relay_ratio"),
            Some(1.5)
        );
        assert_eq!(budget_f64(&b, "latency", "added_p99_max_us"), Some(50.0));
        assert_eq!(budget_f64(&b, "gateway", "internal_p50_max_us"), Some(2.0));
        assert_eq!(budget_f64(&b, "gateway", "idle_rss_max_mib"), Some(20.0));
        assert_eq!(
            budget_f64(&b, "gateway", "idle_session_max_kib"),
            Some(16.0)
        );
        assert_eq!(budget_f64(&b, "conditions", "rate"), Some(5000.0));
    }

    fn path(name: &str, p50: f64, p99: f64) -> PathResult {
        PathResult {
            name: name.into(),
            url: String::new(),
            ok: 10,
            failed: 0,
            failures: BTreeMap::new(),
            first_failure: None,
            offered_rps: 5000.0,
            achieved_rps: 5000.0,
            measured_s: 1.0,
            latency: Quantiles {
                p50,
                p90: p50,
                p99,
                p999: p99,
                max: p99,
                mean: p50,
            },
            reply_bytes_avg: 100.0,
        }
    }

    #[test]
    fn added_latency_and_ratio() {
        let r = Report {
            meta: Meta {
                mode: Mode::Open,
                scenario: "call",
                rate: 5000.0,
                duration_s: 1.0,
                per_path_s: 0.3,
                warmup_s: 0.0,
                slice_ms: 100.0,
                connections: 1,
                servers: 1,
                tools: 1,
                payload_bytes: 5,
                transport: "http",
                load_cpus: "0".into(),
                gateway_cpus: "1".into(),
                relay_cpus: "1".into(),
                stdio_cpus: None,
                cpu_model: "x".into(),
                cpus: 2,
                kernel: "k".into(),
                sched: "SCHED_OTHER".into(),
                started_unix: 0,
            },
            paths: vec![
                path("direct", 30.0, 60.0),
                path("relay", 40.0, 80.0),
                path("gateway", 45.0, 100.0),
            ],
            warm_failed: 0,
            gateway: None,
            bench: None,
            idle: None,
        };
        let added = r.added();
        assert_eq!(added.len(), 2);
        assert_eq!(added[1].p50, 15.0);
        assert_eq!(added[1].p99, 40.0);
        assert_eq!(r.ratio(), Some(1.5));
        assert!(r.conditions_match());
        let checks = r.checks();
        assert!(checks.iter().all(|c| c.pass != Some(false)), "{checks:?}");
        let j = r.json();
        assert_eq!(j["added_us"]["gateway"]["p50"], 15.0);
        assert_eq!(j["ok"], true);
        assert!(r
            .text()
            .contains("gateway added p50 / relay added p50 = 1.50"));
    }

    #[test]
    fn idle_sessions_are_checked_against_the_budget() {
        let i = IdleFacts {
            requested: 10_000,
            attempted: 10_000,
            opened: 10_000,
            rss_before_kib: Some(16_000),
            rss_after_kib: Some(16_000 + 80_000),
            alive_after: Some(10_000),
            ..IdleFacts::default()
        };
        assert_eq!(i.kib_per_session(), Some(8.0));
        assert_eq!(i.failures(), 0);
        let lost = IdleFacts {
            failed: 2,
            lost_after: 3,
            ..i.clone()
        };
        assert_eq!(lost.failures(), 5);
        assert_eq!(IdleFacts::default().kib_per_session(), None);
    }
}
