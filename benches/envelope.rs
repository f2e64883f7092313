//! Envelope scan and rewrite benchmarks: `ringgate::wire` versus tree-building parsers.
//!
//! Run: `cargo bench --bench envelope`
//! (quick: `cargo bench --bench envelope -- --warm-up-time 1 --measurement-time 3`)
//!
//! Inputs: a realistic ~313-byte `tools/call` request (arguments + `_meta.progressToken`) and a
//! ~10 KB one (many file entries with escapes and non-ASCII text, id last as the TypeScript SDK
//! writes it). Baselines: `serde_json::Value` and simd-json's borrowed value / tape, the latter
//! on a copy of the input because simd-json parses in place and the gateway must forward the
//! original bytes.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringgate::wire::{self, encode, rewrite, Span};

const SMALL: &str = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"github__search_repositories","arguments":{"query":"language:rust stars:>100 topic:async","perPage":30,"page":1,"sort":"stars","order":"desc","owner":"tokio-rs","includeForks":false},"_meta":{"progressToken":"a3f1c2d4-5e6f-7a8b-9c0d-1e2f3a4b5c6d"}}}"#;

/// A ~10 KB `tools/call` with bulky arguments and the id last.
fn large() -> String {
    let mut files = Vec::new();
    for i in 0..60 {
        files.push(format!(
            r#"{{"path":"src/module_{i}/lib.rs","mode":420,"content":"fn f{i}() {{\n    println!(\"héllo wörld {i}\");\n}}\n// ünïcödé ✓ \t tab","tags":["rust","gen",{i}],"size":{}}}"#,
            i * 37 + 100
        ));
    }
    format!(
        r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"_meta":{{"progressToken":17}},"name":"fs__write_files","arguments":{{"message":"bulk update","dryRun":false,"files":[{}]}}}},"id":"req-00001234"}}"#,
        files.join(",")
    )
}

fn bench_parse(c: &mut Criterion, label: &str, doc: &[u8]) {
    let mut g = c.benchmark_group(format!("parse/{label}"));
    g.throughput(Throughput::Bytes(doc.len() as u64));
    g.bench_function("ringgate_wire_parse", |b| {
        b.iter(|| wire::parse(black_box(doc)).map(|e| e.name))
    });
    g.bench_function("serde_json_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(doc)).is_ok())
    });
    g.bench_function("simd_json_borrowed_value_copy", |b| {
        b.iter(|| {
            let mut copy = black_box(doc).to_vec();
            let ok = simd_json::to_borrowed_value(&mut copy).is_ok();
            ok
        })
    });
    let mut buffers = simd_json::Buffers::new(doc.len());
    let mut scratch = Vec::with_capacity(doc.len());
    g.bench_function("simd_json_tape_reused_buffers_copy", |b| {
        b.iter(|| {
            scratch.clear();
            scratch.extend_from_slice(black_box(doc));
            let ok = simd_json::to_tape_with_buffers(&mut scratch, &mut buffers).is_ok();
            ok
        })
    });
    g.finish();
}

/// Replaces the id with a minted number and strips the `github__` namespace from the name.
fn splice_edits(doc: &Bytes, env: &wire::Envelope, n: u64) -> rewrite::Pieces {
    let id = env.id.map(|(span, _)| span).unwrap_or_default();
    let name = env.name.unwrap_or_default();
    let stripped = Span::new(name.start as usize + "github__".len(), name.end as usize);
    let mut edits = [
        (
            id,
            Bytes::copy_from_slice(rewrite::format_u64_id(n).as_bytes()),
        ),
        (name, doc.slice(stripped.range())),
    ];
    rewrite::splice(doc, &mut edits)
}

fn bench_rewrite(c: &mut Criterion) {
    let doc = Bytes::from_static(SMALL.as_bytes());
    let env = wire::parse(&doc).expect("valid bench input");
    let mut g = c.benchmark_group("rewrite/small");
    g.bench_function("ringgate_splice_only", |b| {
        b.iter(|| splice_edits(black_box(&doc), &env, 1_000_001).len())
    });
    g.bench_function("ringgate_parse_splice", |b| {
        b.iter(|| {
            let d = black_box(&doc);
            let env = wire::parse(d).expect("valid");
            splice_edits(d, &env, 1_000_001).len()
        })
    });
    g.bench_function("ringgate_parse_splice_concat", |b| {
        b.iter(|| {
            let d = black_box(&doc);
            let env = wire::parse(d).expect("valid");
            rewrite::concat(&splice_edits(d, &env, 1_000_001)).len()
        })
    });
    g.bench_function("serde_json_parse_modify_serialize", |b| {
        b.iter(|| {
            let mut v: serde_json::Value = serde_json::from_slice(black_box(&doc)).expect("valid");
            v["id"] = serde_json::Value::from(1_000_001u64);
            let name = v["params"]["name"].as_str().unwrap_or_default();
            let stripped = name.trim_start_matches("github__").to_owned();
            v["params"]["name"] = serde_json::Value::String(stripped);
            serde_json::to_vec(&v).map(|out| out.len())
        })
    });
    g.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.bench_function("error_response", |b| {
        b.iter(|| {
            encode::error_response(
                black_box(Some(&b"\"req-1\""[..])),
                wire::code::METHOD_NOT_FOUND,
                "unknown tool \"x\"",
                None,
            )
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    assert_eq!(
        SMALL.len(),
        313,
        "keep the small input at the documented size"
    );
    let big = large();
    assert!((9_000..12_000).contains(&big.len()), "{}", big.len());
    bench_parse(c, "small_313B", SMALL.as_bytes());
    bench_parse(c, "large_10KB", big.as_bytes());
    bench_rewrite(c);
    bench_encode(c);
}

criterion_group!(envelope, benches);
criterion_main!(envelope);
