//! Header-first routing of a 2026-07-28 request versus routing after a full envelope parse.
//!
//! Run: `cargo bench --bench header_first`
//! (quick: `cargo bench --bench header_first -- --warm-up-time 1 --measurement-time 3`)
//!
//! Input: a modern `tools/call` as the Python SDK v2 writes it (arguments, then `_meta` with the
//! protocol version, client info and capabilities; ~560 bytes, and a ~10 KB variant with bulky
//! arguments) and its routing headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`), against
//! a snapshot of 200 tools.
//!
//! What is compared, in one group:
//! * `header_first_decide`: the route and policy verdict from the headers alone: what the gateway
//!   knows before it has looked at the body;
//! * `header_first_total`: that, plus the body verification every request still gets before
//!   anything is forwarded (envelope scan, `_meta` ladder, headers == body);
//! * `body_first_total`: envelope scan, `_meta` ladder, then route and policy from the body's
//!   (decoded) name: the path without routing headers (stdio);
//! * `ladder_only`: the `_meta` ladder and header comparison alone (body already scanned);
//! * `envelope_parse_only`: the envelope scan alone, for scale.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringgate::catalog::cursor::CursorCodec;
use ringgate::catalog::{Snapshot, Target};
use ringgate::proxy::modern::{self, RoutingHeaders};
use ringgate::proxy::Inbound;
use ringgate::seal::Sealer;
use ringgate::wire;

const BODY: &str = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"github__search_repositories","arguments":{"query":"language:rust stars:>100 topic:async","perPage":30,"page":1,"sort":"stars","order":"desc","owner":"tokio-rs","includeForks":false},"_meta":{"progressToken":"a3f1c2d4-5e6f-7a8b-9c0d-1e2f3a4b5c6d","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"mcp","version":"2.3.0"},"io.modelcontextprotocol/clientCapabilities":{"sampling":{},"elicitation":{"form":{}},"roots":{"listChanged":true}}}}}"#;

fn snapshot() -> Arc<Snapshot> {
    let cfg = ringgate::config::parse_str("[gateway]\nlisten = \"127.0.0.1:0\"\n", &|_| None)
        .expect("config");
    let codec = Arc::new(CursorCodec::with_sealer(Sealer::from_key(&[1; 32], b"b")));
    let mut snap = Snapshot::empty(Arc::new(cfg.gateway.clone()), codec);
    for i in 0..200 {
        let name = if i == 117 {
            "github__search_repositories".to_string()
        } else {
            format!("server{}__tool_{i:03}", i % 7)
        };
        let original = Bytes::from(name.split_once("__").unwrap().1.to_string());
        snap.routes.tools.insert(
            name.into_boxed_str(),
            Target {
                server: 0,
                original,
                params: None,
            },
        );
    }
    Arc::new(snap)
}

fn headers() -> RoutingHeaders<'static> {
    RoutingHeaders {
        version: Some(b"2026-07-28"),
        method: Some(b"tools/call"),
        name: Some(b"github__search_repositories"),
        ..RoutingHeaders::default()
    }
}

/// The same call with ~10 KB of arguments (60 file entries with escapes and non-ASCII text).
fn large() -> String {
    let files: Vec<String> = (0..60)
        .map(|i| {
            format!(
                r#"{{"path":"src/module_{i}/lib.rs","content":"fn f{i}() {{\n    println!(\"héllo wörld {i}\");\n}}\n// ünïcödé ✓ \t tab","size":{}}}"#,
                i * 37 + 100
            )
        })
        .collect();
    BODY.replacen(
        r#""includeForks":false}"#,
        &format!(r#""includeForks":false,"files":[{}]}}"#, files.join(",")),
        1,
    )
}

fn benches(c: &mut Criterion) {
    bench_body(c, "modern_tools_call", Bytes::from_static(BODY.as_bytes()));
    bench_body(c, "modern_tools_call_10k", Bytes::from(large()));
}

fn bench_body(c: &mut Criterion, group: &str, body: Bytes) {
    let snap = snapshot();
    let h = headers();
    let req = Inbound {
        body: body.clone(),
        session: None,
        version: h.version,
        authorization: None,
        accepts_sse: true,
        received: Instant::now(),
    };
    // Both paths must agree on the target before they are compared.
    let a = modern::decide_from_headers(&snap, &req, b"tools/call", h.name).expect("header plan");
    let env = wire::parse(&body).expect("valid");
    let b = modern::decide_from_body(&snap, &req, &env, "tools/call").expect("body plan");
    assert_eq!(format!("{a:?}"), format!("{b:?}"));

    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("header_first_decide", |bn| {
        bn.iter(|| modern::decide_from_headers(&snap, &req, black_box(b"tools/call"), h.name))
    });
    g.bench_function("header_first_total", |bn| {
        bn.iter(|| {
            let plan = modern::decide_from_headers(&snap, &req, black_box(b"tools/call"), h.name);
            let env = wire::parse(black_box(&body)).expect("valid");
            let meta = modern::verify(&body, &env, Some(&h)).expect("agrees");
            (plan.is_ok(), meta.caps.is_some(), env.id)
        })
    });
    g.bench_function("body_first_total", |bn| {
        bn.iter(|| {
            let env = wire::parse(black_box(&body)).expect("valid");
            let meta = modern::verify(&body, &env, None).expect("valid meta");
            let plan = modern::decide_from_body(&snap, &req, &env, "tools/call");
            (plan.is_ok(), meta.caps.is_some(), env.id)
        })
    });
    g.bench_function("ladder_only", |bn| {
        bn.iter(|| modern::verify(black_box(&body), &env, Some(&h)).map(|m| m.caps.is_some()))
    });
    g.bench_function("envelope_parse_only", |bn| {
        bn.iter(|| wire::parse(black_box(&body)).map(|e| e.name))
    });
    g.finish();
}

criterion_group!(header_first, benches);
criterion_main!(header_first);
