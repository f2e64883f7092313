//! Bytes on the wire: the transports that carry MCP JSON-RPC messages.
//!
//! Role: everything between a socket and a complete message body lives here, and nothing
//! above the byte level does. Today that is HTTP/1.1 on monoio (`http`: server side for the
//! front door, client side for upstream MCP servers) and SO_REUSEPORT listeners
//! (`listener`). The stdio transport (child processes) and the MCP HTTP+SSE session
//! transports join later, built on these pieces.
//!
//! Invariant: this layer depends only on crates, never on other ringgate modules, so it can
//! be tested and benchmarked in isolation.

/// HTTP/1.1 server and client connections over any monoio stream.
pub mod http;
/// Per-worker SO_REUSEPORT TCP listeners and accepted-socket tuning.
pub mod listener;
