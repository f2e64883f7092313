//! `ringgate-loadtest`: the latency ringgate adds to a real MCP request, measured next to the
//! physical floor of one more hop, in one run.
//!
//! Parties: the bench downstream (`downstream`, on the load generator's thread and core), a bare
//! TCP relay (`relay`, its own thread, on the gateway's core), the gateway (`gateway`, a child
//! process pinned to its core, `workers = 1`), and the load generator (`load`): open loop at a
//! fixed rate with coordinated-omission correction, or closed-loop saturation, over the paths
//! direct / relay / gateway interleaved in short slices. `report` prints the table, the added
//! latency, the gateway's own histograms and RSS, the budget checks, and writes JSON.
//!
//! `idle` holds `--idle-sessions` open on the gateway during the run (memory per idle session);
//! `stdio` is the bench server over stdin/stdout (`downstream --stdio`, what the gateway spawns in
//! `--scenario stdio`) and the client the stdio scenario's direct path uses.
//!
//! Exit status: 0 when every request succeeded, 1 when any failed, 2 on usage or setup errors.

mod args;
mod client;
mod downstream;
mod gateway;
mod idle;
mod load;
mod relay;
mod report;
mod stdio;
mod storm;
mod sys;

#[cfg(test)]
mod e2e_tests;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use args::{Args, Command, DownstreamArgs, Mode, Pin, Scenario};
use client::{RequestTemplate, Target};
use downstream::BenchConfig;
use load::{PathRun, Plan};
use report::{GatewayFacts, IdleFacts, Meta, PathResult, Report};
use stdio::StdioLink;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = match args::parse(argv) {
        Err(e) => {
            eprintln!("ringgate-loadtest: {e}");
            2
        }
        Ok(Command::Help) => {
            print!("{}", args::USAGE);
            0
        }
        Ok(Command::Downstream(d)) => run_downstream(d),
        Ok(Command::Run(a)) => run(*a),
    };
    std::process::exit(code);
}

/// Runs `fut` on a fresh monoio runtime (io_uring where available, else epoll) with timers.
fn block_on<F: std::future::Future>(fut: F) -> std::io::Result<F::Output> {
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()?;
    Ok(rt.block_on(fut))
}

/// Resolves a placement choice to a CPU set.
fn placement(pin: Pin, auto: Option<usize>, allowed: &[usize]) -> Vec<usize> {
    match (pin, auto) {
        (Pin::Cpu(c), _) => vec![c],
        (Pin::Auto, Some(c)) => vec![c],
        _ => allowed.to_vec(),
    }
}

/// The `downstream` subcommand: the bench server alone, until killed.
fn run_downstream(d: DownstreamArgs) -> i32 {
    if let Pin::Cpu(c) = d.pin {
        if let Err(e) = sys::pin_thread(0, &[c]) {
            eprintln!("warning: cannot pin to CPU {c}: {e}");
        }
    }
    if d.stdio {
        return stdio::serve(BenchConfig {
            name: "bench".into(),
            tools: d.tools,
            payload_bytes: d.payload_bytes,
            sse: false,
        });
    }
    let served = block_on(async move {
        for i in 0..d.servers {
            let addr = SocketAddr::new(d.listen.ip(), d.listen.port() + i as u16);
            let cfg = BenchConfig {
                name: server_name(i, d.servers),
                tools: d.tools,
                payload_bytes: d.payload_bytes,
                sse: d.sse,
            };
            match downstream::start(addr, cfg) {
                Ok((a, _)) => println!("bench MCP server listening on http://{a}/mcp"),
                Err(e) => {
                    eprintln!("ringgate-loadtest: cannot listen on {addr}: {e}");
                    return 2;
                }
            }
        }
        loop {
            monoio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    served.unwrap_or_else(|e| {
        eprintln!("ringgate-loadtest: cannot start a runtime: {e}");
        2
    })
}

fn server_name(i: usize, servers: usize) -> String {
    if servers == 1 {
        "bench".into()
    } else {
        format!("bench{i}")
    }
}

/// The CPU sets of every party.
struct Placement {
    load: Vec<usize>,
    gateway: Vec<usize>,
    relay: Vec<usize>,
}

fn run(a: Args) -> i32 {
    let allowed = sys::allowed_cpus();
    let two = allowed.len() >= 2;
    let place = Placement {
        load: placement(a.pin_load, two.then(|| allowed[0]), &allowed),
        gateway: placement(a.pin_gateway, two.then(|| allowed[1]), &allowed),
        relay: Vec::new(),
    };
    let relay = match a.pin_relay {
        Pin::Auto => place.gateway.clone(),
        other => placement(other, None, &allowed),
    };
    let place = Placement { relay, ..place };
    if place.load.iter().any(|c| place.gateway.contains(c)) && a.gateway_url.is_none() {
        eprintln!(
            "warning: the load generator (CPUs {}) and the gateway (CPUs {}) share a CPU; the load \
             generator spins between requests, so the gateway's latency will mostly be scheduling \
             (use --pin-load and --pin-gateway with different CPUs)",
            sys::cpu_list(&place.load),
            sys::cpu_list(&place.gateway)
        );
    }
    if !place.load.is_empty() && place.load != allowed {
        if let Err(e) = sys::pin_thread(0, &place.load) {
            eprintln!(
                "warning: cannot pin the load generator to {:?}: {e}",
                place.load
            );
        }
    }
    match block_on(run_async(a, place)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("ringgate-loadtest: {e}");
            2
        }
        Err(e) => {
            eprintln!("ringgate-loadtest: cannot start a runtime: {e}");
            2
        }
    }
}

/// `--slow-us`: every slow measured request, by time into the run (slices show which path).
fn print_slow(paths: &[Rc<PathRun>], started: std::time::Instant, limit: Duration) {
    let mut all: Vec<(f64, f64, &str)> = Vec::new();
    for p in paths {
        for (at, ns) in &p.stats.borrow().slow {
            let t = at.saturating_duration_since(started).as_secs_f64() * 1e3;
            all.push((t, *ns as f64 / 1e3, &p.target.name));
        }
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!(
        "\n  requests slower than {} µs ({}): ms into the run, latency µs, path",
        limit.as_micros(),
        all.len()
    );
    for (t, us, name) in all {
        println!("  {t:>10.3} {us:>10.1}  {name}");
    }
}

fn progress(a: &Args, msg: &str) {
    if !a.quiet {
        eprintln!("· {msg}");
    }
}

async fn run_async(a: Args, place: Placement) -> Result<i32, String> {
    let scenario = a.scenario;
    let list = scenario == Scenario::List;
    let servers = a.servers.unwrap_or(if list { 10 } else { 1 });
    let tools = a.tools.unwrap_or(if list { 50 } else { 1 });
    let payload_bytes = a.payload_bytes.unwrap_or(match scenario {
        Scenario::Call10k => 10_240,
        _ => 5,
    });
    let want = |p: &str| a.paths.iter().any(|x| x == p);

    let me = std::process::id();
    // Descriptors for the idle sessions: raised before the gateway starts, so it inherits them.
    let mut nofile_load = None;
    if a.idle_sessions > 0 {
        let want = (a.idle_sessions + 4 * a.connections * (a.paths.len() + a.targets.len())) as u64
            + 2 * idle::FD_RESERVE;
        let (limits, warning) = sys::raise_nofile(me, want);
        if let Some(w) = warning {
            eprintln!("warning: cannot raise the load test's open-file limit: {w}");
        }
        nofile_load = limits;
    }

    // The stdio scenario's bench server command: this executable, `downstream --stdio`.
    let stdio_mode = scenario == Scenario::Stdio;
    let stdio_cpu = match a.pin_stdio {
        Pin::Cpu(c) => Some(c),
        Pin::None => None,
        Pin::Auto => (place.gateway.len() == 1).then(|| place.gateway[0]),
    };
    let stdio_cmd = if stdio_mode {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
        let mut args: Vec<String> = vec![
            "downstream".into(),
            "--stdio".into(),
            "--tools".into(),
            tools.to_string(),
            "--payload-bytes".into(),
            payload_bytes.to_string(),
        ];
        if let Some(c) = stdio_cpu {
            args.extend(["--pin".to_string(), c.to_string()]);
        }
        Some((exe, args))
    } else {
        None
    };

    // The downstream(s): the bench servers on this thread, or a running one, or (stdio) a child.
    // (server name, MCP URL) of every downstream the gateway fronts.
    let mut downstreams: Vec<(String, String)> = Vec::new();
    let mut benches: Vec<Rc<downstream::Bench>> = Vec::new();
    let direct_target = match (&stdio_cmd, &a.direct_url) {
        (Some((exe, args)), _) => {
            let url = format!("stdio:{} {}", exe.display(), args.join(" "));
            downstreams.push(("bench".into(), url.clone()));
            if want("direct") {
                let link = StdioLink::spawn(exe, args).await?;
                progress(&a, &format!("direct: stdio child pid {}", link.pid));
                Some(Target::stdio("direct", &url, link))
            } else {
                None
            }
        }
        (None, Some(url)) => {
            let t = Target::new("direct", url)?;
            if servers > 1 {
                eprintln!("warning: --direct-url given: the gateway fronts that one server only");
            }
            downstreams.push(("bench".into(), t.url.clone()));
            Some(t)
        }
        (None, None) => {
            for i in 0..servers {
                let addr = match (i, a.downstream_listen) {
                    (0, Some(addr)) => addr,
                    _ => ([127, 0, 0, 1], 0).into(),
                };
                let cfg = BenchConfig {
                    name: server_name(i, servers),
                    tools,
                    payload_bytes,
                    sse: scenario == Scenario::Sse,
                };
                let (bound, bench) = downstream::start(addr, cfg)
                    .map_err(|e| format!("bench server cannot listen on {addr}: {e}"))?;
                downstreams.push((server_name(i, servers), format!("http://{bound}/mcp")));
                benches.push(bench);
            }
            Some(Target::new("direct", &downstreams[0].1)?)
        }
    };
    progress(
        &a,
        &format!(
            "downstream: {} server(s), first at {}",
            downstreams.len(),
            downstreams[0].1
        ),
    );

    // The bare relay in front of the first downstream (there is no TCP hop to a stdio server).
    let relay_target = match &direct_target {
        Some(d) if want("relay") && !stdio_mode => {
            let addr =
                relay::start(d.addr, place.relay.clone()).map_err(|e| format!("relay: {e}"))?;
            progress(&a, &format!("relay: {addr} → {}", d.addr));
            Some(Target::at("relay", addr, &d.path))
        }
        _ => {
            if want("relay") && stdio_mode {
                progress(
                    &a,
                    "relay: not used in the stdio scenario (no TCP hop to relay)",
                );
            }
            None
        }
    };

    // The gateway: spawned and pinned, or given.
    let mut spawned: Option<gateway::Gateway> = None;
    let mut facts = GatewayFacts::default();
    let mut admin: Option<SocketAddr> = match &a.gateway_admin {
        Some(url) => Some(gateway::parse_admin(url)?),
        None => None,
    };
    let gateway_target = if !want("gateway") {
        None
    } else if let Some(url) = &a.gateway_url {
        let mut t = Target::new("gateway", url)?;
        t.modern = scenario == Scenario::Modern;
        Some(t)
    } else {
        let bin = match &a.gateway_bin {
            Some(b) => b.clone(),
            None => gateway::default_bin()?,
        };
        // Idle sessions must outlive the run: the gateway closes a connection idle for
        // `idle_timeout_ms` (default 60 s).
        let run_len = a.warmup + a.duration + Duration::from_secs(120);
        let spec = gateway::Spec {
            bin,
            servers: if stdio_mode {
                Vec::new()
            } else {
                downstreams.clone()
            },
            stdio: stdio_cmd.as_ref().map(|(exe, args)| gateway::StdioServer {
                name: "bench".into(),
                command: exe.clone(),
                args: args.clone(),
            }),
            page_size: list.then(|| (servers * tools).clamp(100, 10_000)),
            pool_size: a.gateway_pool.filter(|_| !stdio_mode),
            cpus: place.gateway.clone(),
            idle_timeout_ms: (a.idle_sessions > 0)
                .then(|| (run_len.as_millis() as u64).max(60_000)),
        };
        let mut g = gateway::Gateway::spawn(&spec)?;
        progress(
            &a,
            &format!(
                "gateway: pid {} on CPUs {:?} ({}), config {}",
                g.pid,
                place.gateway,
                g.pinned_with,
                g.config_path.display()
            ),
        );
        g.wait_ready(Duration::from_secs(30), &place.gateway)
            .await?;
        facts.spawned = true;
        facts.pid = Some(g.pid);
        facts.pinned_with = g.pinned_with.to_string();
        facts.affinity = sys::affinity_of(g.pid);
        facts.config_path = Some(g.config_path.display().to_string());
        facts.log_path = Some(g.log_path.display().to_string());
        // Let the first scrape-free moment pass, then read the idle footprint.
        monoio::time::sleep(Duration::from_millis(200)).await;
        facts.rss_idle_kib = g.rss_kib();
        admin = Some(g.admin);
        let mut t = Target::new("gateway", &g.url())?;
        t.modern = scenario == Scenario::Modern;
        spawned = Some(g);
        Some(t)
    };

    // Real-time priority (`chrt -f`) stays with the gateway and the relay, which block between
    // requests; the spinning load generator drops to SCHED_OTHER (see `sys::leave_realtime`).
    let sched_parties = sys::sched_policy();
    if sys::is_realtime() {
        if let Err(e) = sys::leave_realtime() {
            eprintln!(
                "warning: the load generator stays real-time ({e}); expect RT-throttling stalls"
            );
        }
    }
    let sched = if sys::sched_policy() == sched_parties {
        sched_parties.to_string()
    } else {
        format!(
            "{sched_parties} (gateway, relay), {} (load generator)",
            sys::sched_policy()
        )
    };

    // Paths, in slice order.
    let gateway_tool = a
        .gateway_tool
        .clone()
        .unwrap_or_else(|| format!("{}__echo", downstreams[0].0));
    let template = |through_gateway: bool| match scenario {
        Scenario::List => RequestTemplate::new("tools/list", None),
        Scenario::Modern if through_gateway => RequestTemplate::modern_tools_call(&gateway_tool),
        _ if through_gateway => RequestTemplate::tools_call(&gateway_tool),
        _ => RequestTemplate::tools_call("echo"),
    };
    let mut paths: Vec<Rc<PathRun>> = Vec::new();
    if let Some(t) = direct_target {
        paths.push(PathRun::new(Rc::new(t), template(false), a.timeout, a.slow));
    }
    if let Some(t) = relay_target {
        paths.push(PathRun::new(Rc::new(t), template(false), a.timeout, a.slow));
    }
    if let Some(t) = gateway_target {
        paths.push(PathRun::new(Rc::new(t), template(true), a.timeout, a.slow));
    }
    for (name, url) in &a.targets {
        paths.push(PathRun::new(
            Rc::new(Target::new(name, url)?),
            template(false),
            a.timeout,
            a.slow,
        ));
    }

    // Sessions: one MCP handshake per connection, then one probe request per path.
    for p in &paths {
        p.connect(a.connections).await?;
        p.probe().await.map_err(|e| {
            format!(
                "{}: the first {} request failed: {e}",
                p.target.name,
                scenario.as_str()
            )
        })?;
    }
    progress(
        &a,
        &format!(
            "{} paths × {} connections: sessions open, probes ok",
            paths.len(),
            a.connections
        ),
    );
    if let Some(g) = &spawned {
        facts.sessions = a.connections;
        facts.rss_sessions_kib = g.rss_kib();
    }

    // Idle sessions on the gateway path, held (no I/O) until the run is over.
    let mut idle_conns = Vec::new();
    let mut idle_facts: Option<IdleFacts> = None;
    if a.idle_sessions > 0 {
        let gateway_path = paths
            .iter()
            .find(|p| p.target.name == "gateway")
            .ok_or("--idle-sessions needs the gateway path")?;
        let gpid = spawned.as_ref().map(|g| g.pid);
        let mut f = IdleFacts {
            requested: a.idle_sessions,
            ..IdleFacts::default()
        };
        if let Some(pid) = gpid {
            let want = a.idle_sessions as u64 + 2 * idle::FD_RESERVE;
            let (limits, warning) = sys::raise_nofile(pid, want);
            if let Some(w) = warning {
                eprintln!("warning: cannot raise the gateway's open-file limit: {w}");
            }
            f.nofile_gateway = limits;
        }
        f.nofile_load = sys::nofile(me).or(nofile_load);
        let mut sides = Vec::new();
        if let (Some((soft, _)), Some((open, _))) = (f.nofile_load, sys::open_fds(me)) {
            sides.push((soft, open as u64));
        }
        if let Some(pid) = gpid {
            if let (Some((soft, _)), Some((open, _))) = (f.nofile_gateway, sys::open_fds(pid)) {
                sides.push((soft, open as u64));
            }
        }
        let fit = idle::fitting(&sides);
        f.attempted = a
            .idle_sessions
            .min(usize::try_from(fit).unwrap_or(usize::MAX));
        if f.attempted < a.idle_sessions {
            let why = format!(
                "open-file limits (soft/hard) load test {}, gateway {} leave room for {fit} more \
                 connections ({} kept free on each side)",
                report::opt_limit(f.nofile_load),
                report::opt_limit(f.nofile_gateway),
                idle::FD_RESERVE
            );
            eprintln!(
                "warning: --idle-sessions {} capped to {}: {why}",
                a.idle_sessions, f.attempted
            );
            f.capped = Some(why);
        }
        f.rss_before_kib = spawned.as_ref().and_then(|g| g.rss_kib());
        f.gateway_sockets[0] = gpid.and_then(sys::open_fds).map(|c| c.1);
        progress(
            &a,
            &format!(
                "opening {} idle sessions on {} ({} at a time)",
                f.attempted,
                gateway_path.target.url,
                idle::WINDOW
            ),
        );
        let (conns, tally) = idle::open(gateway_path.target.clone(), f.attempted).await;
        // Let the gateway finish with the last handshakes before reading its footprint.
        monoio::time::sleep(Duration::from_millis(200)).await;
        f.rss_after_kib = spawned.as_ref().and_then(|g| g.rss_kib());
        f.gateway_sockets[1] = gpid.and_then(sys::open_fds).map(|c| c.1);
        f.opened = tally.ok;
        f.failed = tally.failed;
        f.first_error = tally.first_error;
        f.open_s = tally.took.as_secs_f64();
        progress(
            &a,
            &format!(
                "idle sessions: {} open, {} failed, in {:.2}s; gateway RSS {} → {} KiB",
                f.opened,
                f.failed,
                f.open_s,
                f.rss_before_kib.map_or("?".into(), |k| k.to_string()),
                f.rss_after_kib.map_or("?".into(), |k| k.to_string())
            ),
        );
        idle_conns = conns;
        idle_facts = Some(f);
    }

    // The run.
    let plan = Plan::new(paths.len(), a.slice, a.warmup, a.duration);
    let per_path = plan.per_path(paths.len());
    progress(
        &a,
        &format!(
            "{} {}: {:.1}s warm-up, then {:.1}s ({:.2}s per path)",
            a.mode.as_str(),
            scenario.as_str(),
            (plan.slice * plan.warm as u32).as_secs_f64(),
            (plan.slice * plan.measured as u32).as_secs_f64(),
            per_path.as_secs_f64()
        ),
    );
    let count = |benches: &[Rc<downstream::Bench>]| {
        benches
            .iter()
            .map(|b| b.counters())
            .fold((0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2))
    };
    let before = count(&benches);
    let storm = std::sync::Arc::new(storm::Storm::default());
    let mut storm_thread = None;
    let every = Duration::from_millis(a.reload_storm_ms);
    if a.reload_storm_ms > 0 {
        match (&spawned, downstreams.first()) {
            (Some(g), Some((_, url))) => {
                let variants = storm::variants(&g.config, url);
                storm_thread = Some(
                    storm::start(storm.clone(), g.admin, variants, every)
                        .map_err(|e| e.to_string())?,
                );
            }
            _ => {
                return Err(
                    "--reload-storm needs a gateway this load test spawns (not --gateway-url)"
                        .into(),
                )
            }
        }
    }
    let started = std::time::Instant::now();
    match a.mode {
        Mode::Open => {
            load::run_open(&paths, a.rate, &plan, a.timeout + Duration::from_secs(2)).await
        }
        Mode::Saturate => load::run_saturate(&paths, &plan).await,
    }

    storm.stop();
    if let Some(t) = storm_thread {
        let _ = t.join();
    }
    let after = count(&benches);
    let bench_counts = (!benches.is_empty()).then(|| report::BenchCounts {
        connections_before: before.0,
        connections_during: after.0 - before.0,
        requests_during: after.1 - before.1,
        sessions_during: after.2 - before.2,
    });

    // The gateway's own view.
    if let Some(addr) = admin {
        match gateway::admin_get(addr, "/metrics").await {
            Ok((200, body)) => {
                let text = String::from_utf8_lossy(&body);
                facts.internal = Some(gateway::parse_summary(
                    &text,
                    "ringgate_gateway_added_seconds",
                ));
                facts.downstream =
                    Some(gateway::parse_summary(&text, "ringgate_downstream_seconds"));
                facts.request = Some(gateway::parse_summary(&text, "ringgate_request_seconds"));
            }
            Ok((status, _)) => facts.metrics_error = Some(format!("HTTP {status}")),
            Err(e) => facts.metrics_error = Some(e),
        }
    }
    if let Some(g) = &spawned {
        facts.rss_after_kib = g.rss_kib();
    }
    // Did the idle sessions survive? (Only now is anything sent on them.)
    if let Some(f) = &mut idle_facts {
        f.gateway_sockets[2] = spawned
            .as_ref()
            .and_then(|g| sys::open_fds(g.pid))
            .map(|c| c.1);
        let (conns, tally) = idle::ping_all(std::mem::take(&mut idle_conns)).await;
        progress(
            &a,
            &format!(
                "idle sessions after the run: {} of {} answered ping ({:.2}s)",
                tally.ok,
                conns.len(),
                tally.took.as_secs_f64()
            ),
        );
        f.alive_after = Some(tally.ok);
        f.lost_after = tally.failed;
        f.lost_first_error = tally.first_error;
        drop(conns);
    }
    if let Some(g) = &spawned {
        (facts.log_problems, facts.log_samples) = gateway::log_problems(&g.log_path);
    }

    let (cpu_model, cpus, kernel) = sys::machine();
    let cpu_text = |c: &[usize]| {
        if c.is_empty() {
            "any".to_string()
        } else {
            sys::cpu_list(c)
        }
    };
    let report = Report {
        meta: Meta {
            mode: a.mode,
            scenario: scenario.as_str(),
            rate: a.rate,
            duration_s: (plan.slice * plan.measured as u32).as_secs_f64(),
            per_path_s: per_path.as_secs_f64(),
            warmup_s: (plan.slice * plan.warm as u32).as_secs_f64(),
            slice_ms: plan.slice.as_secs_f64() * 1e3,
            connections: a.connections,
            servers: downstreams.len(),
            tools,
            payload_bytes,
            transport: match scenario {
                Scenario::Stdio => "stdio",
                Scenario::Sse => "http (SSE replies)",
                _ => "http",
            },
            load_cpus: cpu_text(&place.load),
            gateway_cpus: if a.gateway_url.is_some() {
                "(external)".into()
            } else {
                cpu_text(&place.gateway)
            },
            relay_cpus: cpu_text(&place.relay),
            stdio_cpus: stdio_mode.then(|| {
                stdio_cpu.map_or(
                    "inherited (direct: load's, gateway's: gateway's)".into(),
                    |c| c.to_string(),
                )
            }),
            cpu_model,
            cpus,
            kernel,
            sched,
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        },
        paths: paths
            .iter()
            .map(|p| PathResult::from_stats(&p.target.name, &p.target.url, &p.stats.borrow()))
            .collect(),
        warm_failed: paths.iter().map(|p| p.stats.borrow().warm_failed).sum(),
        gateway: (spawned.is_some() || admin.is_some()).then_some(facts),
        bench: bench_counts,
        idle: idle_facts,
    };
    print!("{}", report.text());
    if a.reload_storm_ms > 0 {
        println!("  {}", storm.summary(every));
    }
    if !a.slow.is_zero() {
        print_slow(&paths, started, a.slow);
    }
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&report.json()).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        progress(&a, &format!("JSON report written to {}", path.display()));
    }
    drop(paths);
    let failed = report.failed();
    let log_problems = report.gateway.as_ref().map_or(0, |g| g.log_problems);
    if let Some(mut g) = spawned {
        if failed == 0 && log_problems == 0 {
            g.stop_and_clean();
        } else {
            g.stop();
            eprintln!("gateway config and log kept in {}", g.dir.display());
        }
    }
    Ok(if failed == 0 && storm.failed() == 0 {
        0
    } else {
        1
    })
}
