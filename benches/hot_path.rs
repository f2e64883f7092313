//! The rest of the per-request hot path, each beside a baseline in the same run (DESIGN §9):
//! routing lookup, per-core histogram record, sealed session id open/seal, and the catalog merge
//! (off the hot path, on the control thread, but on every list change).
//!
//! Run: `cargo bench --bench hot_path` (add `-- --warm-up-time 1 --measurement-time 2` for a quick
//! pass). Results go to perf/RESULTS.md with the date and machine.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use ringgate::catalog::cursor::CursorCodec;
use ringgate::catalog::{build, ListKind, ServerLists, ServerView};
use ringgate::config::parse_str;
use ringgate::seal::Sealer;
use ringgate::session::downstream::{DownSession, ServerLink};
use ringgate::session::SessionCodec;
use ringgate::telemetry::{CallOutcome, CoreStats, MethodClass};

const SERVERS: usize = 10;
const TOOLS: usize = 50;

fn tool_json(i: usize) -> String {
    format!(
        r#"{{"name":"tool_{i:03}","description":"Tool number {i}, which does something useful.","inputSchema":{{"type":"object","properties":{{"q":{{"type":"string"}},"n":{{"type":"integer"}}}},"required":["q"]}}}}"#
    )
}

/// Ten servers of fifty tools each, as the control thread holds them before a merge.
fn views() -> (ringgate::config::Config, Vec<ServerView>) {
    let mut toml = String::from(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\npage_size = 1000\n",
    );
    for s in 0..SERVERS {
        toml.push_str(&format!(
            "[[server]]\nname = \"s{s}\"\ntransport = \"http\"\nurl = \"http://127.0.0.1:1/mcp\"\n"
        ));
    }
    let cfg = parse_str(&toml, &|_| None).expect("valid bench config");
    let views = (0..SERVERS)
        .map(|s| {
            let link = Arc::new(ServerLink::new(s, Arc::new(cfg.servers[s].clone())));
            link.session.store(Some(Arc::new(DownSession {
                id: None,
                protocol_version: Bytes::from_static(b"2025-06-18"),
                capabilities: Bytes::from_static(br#"{"tools":{}}"#),
                instructions: None,
                server_info: Bytes::from_static(b"{}"),
                epoch: 1,
            })));
            link.mark_up();
            let mut lists = ServerLists::default();
            lists.items[ListKind::Tools as usize] = (0..TOOLS)
                .map(|i| {
                    let mut b = tool_json(i).into_bytes();
                    simd_json::to_owned_value(&mut b).expect("tool JSON")
                })
                .collect();
            ServerView {
                link,
                lists: Some(Arc::new(lists)),
            }
        })
        .collect();
    (cfg, views)
}

fn bench_routing(c: &mut Criterion) {
    let (cfg, views) = views();
    let cursors = Arc::new(CursorCodec::with_sealer(Sealer::from_key(
        &[1; 32], b"bench",
    )));
    let snap = build(1, Arc::new(cfg.gateway.clone()), &views, cursors);
    let baseline: HashMap<String, (usize, String)> = (0..SERVERS)
        .flat_map(|s| {
            (0..TOOLS).map(move |i| (format!("s{s}__tool_{i:03}"), (s, format!("tool_{i:03}"))))
        })
        .collect();
    let mut g = c.benchmark_group("routing_lookup_500_tools");
    g.bench_function("snapshot.tool (ringgate)", |b| {
        b.iter(|| snap.tool(black_box("s7__tool_042")).map(|t| t.server))
    });
    g.bench_function("HashMap<String, _> baseline", |b| {
        b.iter(|| baseline.get(black_box("s7__tool_042")).map(|t| t.0))
    });
    g.finish();

    let mut g = c.benchmark_group("catalog_merge_10x50");
    g.bench_function(
        "catalog::build (ringgate: rename, route, encode pages)",
        |b| {
            let cursors = Arc::new(CursorCodec::with_sealer(Sealer::from_key(
                &[1; 32], b"bench",
            )));
            let gateway = Arc::new(cfg.gateway.clone());
            b.iter(|| build(2, gateway.clone(), black_box(&views), cursors.clone()).pages[0].len())
        },
    );
    let raw: Vec<serde_json::Value> = (0..SERVERS)
        .flat_map(|_| {
            (0..TOOLS)
                .map(|i| serde_json::from_str::<serde_json::Value>(&tool_json(i)).expect("json"))
        })
        .collect();
    g.bench_function("serde_json baseline: clone, rename, serialize", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(raw.len());
            for (n, t) in raw.iter().enumerate() {
                let mut t = t.clone();
                t["name"] = serde_json::Value::String(format!(
                    "s{}__{}",
                    n / TOOLS,
                    t["name"].as_str().unwrap_or("")
                ));
                out.push(t);
            }
            serde_json::to_vec(&serde_json::json!({ "tools": out })).map(|v| v.len())
        })
    });
    g.finish();
}

fn bench_histogram(c: &mut Criterion) {
    let mut stats = CoreStats::default();
    let name: Arc<str> = Arc::from("s0");
    let mut baseline: Vec<u64> = Vec::with_capacity(1 << 20);
    let mut g = c.benchmark_group("record_one_call");
    g.bench_function("CoreStats (3 HDR histograms + per-server)", |b| {
        b.iter(|| {
            stats.record_forward(Duration::from_nanos(1_900), Duration::from_micros(48));
            stats.record_server(0, &name, CallOutcome::Ok, Duration::from_micros(48));
            stats.record_request(MethodClass::ToolsCall, true, Duration::from_micros(50));
        })
    });
    g.bench_function("Vec<u64> push baseline (3 pushes)", |b| {
        b.iter(|| {
            if baseline.len() > (1 << 20) - 4 {
                baseline.clear();
            }
            baseline.push(black_box(1_900));
            baseline.push(black_box(48_000));
            baseline.push(black_box(50_000));
        })
    });
    g.finish();
}

fn bench_sessions(c: &mut Criterion) {
    let codec = SessionCodec::with_sealer(Sealer::from_key(&[7; 32], b"bench"));
    let (_, id) = codec.create(0, 0).expect("seal");
    let table: HashMap<String, u64> = (0..10_000u64)
        .map(|i| (format!("session-{i:032x}"), i))
        .chain([(id.clone(), 1)])
        .collect();
    let mut g = c.benchmark_group("session_id");
    g.bench_function("open sealed id (ringgate: AEAD, no table)", |b| {
        b.iter(|| codec.open(black_box(id.as_bytes())).map(|s| s.nonce))
    });
    g.bench_function("seal a new id (ringgate)", |b| {
        b.iter(|| codec.create(0, 0).map(|(s, _)| s.nonce))
    });
    g.bench_function(
        "HashMap lookup baseline (shared table, 10k sessions, no lock)",
        |b| b.iter(|| table.get(black_box(id.as_str())).copied()),
    );
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_routing(c);
    bench_histogram(c);
    bench_sessions(c);
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
