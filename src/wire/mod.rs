//! The pure wire layer: JSON-RPC bytes in, spans and verdicts out; gateway messages out as
//! bytes. No I/O, no async, no allocation on the common path.
//!
//! Module map (lowest first):
//! * [`names`]: protocol constants: MCP [`method`] names, JSON-RPC / gateway error [`code`]s,
//!   envelope member [`key`]s.
//! * [`scan`]: the validating single-pass JSON scanner ([`Span`], [`ScanError`]); full RFC 8259
//!   validation with byte offsets, depth limit, SWAR string skipping.
//! * [`envelope`]: one pass over a message → [`Envelope`] (kind, id, method, params spans and
//!   the MCP params fields routing needs) or [`WireError`]; batches via [`parse_message`].
//! * [`rewrite`]: splice edits into a message as zero-copy pieces, never re-serializing.
//! * [`encode`]: the gateway's own messages (errors, requests, notifications) and JSON string
//!   escaping / unescaping.
//! * [`sse`]: Server-Sent Events incremental decoder and encoder.
//!
//! Invariant shared by all: spans are byte offsets into the buffer that was parsed; the buffer
//! is forwarded unchanged unless rewritten through [`rewrite::splice`].

/// The gateway's own messages; JSON string escaping and unescaping.
pub mod encode;
/// One-pass JSON-RPC envelope scan: kind, id, method, params spans, MCP routing fields.
pub mod envelope;
/// Protocol constants: method names, error codes, envelope keys.
pub mod names;
/// Splice edits into a message as zero-copy pieces.
pub mod rewrite;
/// The validating single-pass JSON scanner.
pub mod scan;
/// Server-Sent Events decoder and encoder.
pub mod sse;

pub use envelope::{
    parse, parse_at, parse_message, Envelope, IdKind, Kind, Message, Reference, WireError,
};
pub use names::{code, key, method, JSONRPC_VERSION};
pub use rewrite::{concat, format_u64_id, splice, total_len, DecimalU64, Pieces, Splice};
pub use scan::{ScanError, Span, MAX_DEPTH};
pub use sse::{SseDecoder, SseError, SseEvent};
