//! HTTP/1.1 on monoio, both directions, over any `AsyncReadRent + AsyncWriteRent` stream.
//!
//! Role: the front door (`ServerConn`: requests in, responses or SSE streams out) and the
//! upstream side (`ClientConn`: requests out, responses in, whole or incrementally).
//! Everything is generic over the stream so TCP, TLS or test pipes fit unchanged.
//!
//! Layout: `limits` (bounds), `error` (`HttpError` → status), `head` (methods, zero-copy
//! `Headers`, framing header rules, the shared head-reading loop), `body` (framing, the one
//! chunked decoder, body read loops), `write` (head serialisation, coalesced writes),
//! `server`, `client`. Parsing and framing code exists once and serves both sides.
//!
//! Invariants: nothing panics on network input; every size is bounded by `HttpLimits`;
//! in-flight reads are only abandoned when the connection is being closed anyway (a
//! dropped io_uring read can lose bytes). Perf: heads are parsed by httparse without
//! per-header allocation; bodies are views of the read buffer; small messages are one
//! write syscall.

/// Body framing, the chunked decoder and body read loops.
pub mod body;
/// Client connections to upstream servers.
pub mod client;
/// The HTTP layer's error type.
pub mod error;
/// Methods, header maps and head parsing.
pub mod head;
/// Per-connection resource limits.
pub mod limits;
/// Server connections for accepted clients.
pub mod server;
/// Head serialisation and coalesced writes.
pub mod write;

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_client;
#[cfg(test)]
mod tests_fuzz;

pub use body::{BodyFraming, BodyState};
pub use client::{connect, ClientConn, ResponseHead};
pub use error::HttpError;
pub use head::{Headers, Method};
pub use limits::HttpLimits;
pub use server::{Request, ServerConn};
pub use write::reason;
