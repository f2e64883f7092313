//! ringgate: an MCP gateway (aggregation, translation, control) on a thread-per-core runtime.
//!
//! The module map, lowest layer first. Lower layers never import higher ones:
//! `wire`/`error` ← `config` ← {`telemetry`, `policy`, `catalog`, `session`} ← {`transport`, `upstream`} ← `proxy` ← `runtime`.
#![deny(unsafe_code)]

/// The immutable Snapshot: routing table, merged catalog, cursors, namespacing.
pub mod catalog;
/// Configuration: raw TOML types with documented defaults, `${VAR}` expansion, validate-all.
pub mod config;
/// The built-in demo MCP server (`ringgate demo-server`), also the test harness downstream.
pub mod demo;
/// The gateway's error type: kind, whose fault, retry safety, and the one mapping to JSON-RPC/HTTP.
pub mod error;
/// Pure policy decisions (authentication, filtering, rate, approval); today: allow-all seam.
pub mod policy;
/// THE request path, as named phase functions, top to bottom.
pub mod proxy;
/// Thread-per-core bootstrap, control thread, admin endpoints, shutdown.
pub mod runtime;
/// Sealed tokens (session ids, cursors): AEAD under a startup key, URL-safe.
pub mod seal;
/// Front sessions: sealed session ids, negotiated versions, per-worker stream registry.
pub mod session;
/// Per-core histograms and counters, merged on scrape; Prometheus exposition.
pub mod telemetry;
/// Bytes on the wire: HTTP/1.1 server and client on monoio, TLS (rustls) both ways, listeners.
pub mod transport;
/// Downstream MCP servers: connection pools, handshake, catalog fetch, supervision.
pub mod upstream;
/// JSON-RPC bytes <-> envelopes: zero-copy envelope scan, splice rewriting, encoding, SSE framing. Pure.
pub mod wire;
