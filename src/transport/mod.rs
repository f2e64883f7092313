//! Bytes on the wire: the transports that carry MCP JSON-RPC messages.
//!
//! Role: everything between a socket and a complete message body lives here, and nothing
//! above the byte level does: HTTP/1.1 on monoio (`http`: server side for the front door,
//! client side for upstream MCP servers), SO_REUSEPORT listeners (`listener`), the one stream
//! type for plain and TLS connections (`stream`) and the TLS handshakes on both sides (`tls`,
//! rustls; the rustls configs themselves are built with the config).
//!
//! Invariant: this layer depends only on crates, never on other ringgate modules, so it can
//! be tested and benchmarked in isolation.

/// HTTP/1.1 server and client connections over any monoio stream.
pub mod http;
/// Per-worker SO_REUSEPORT TCP listeners and accepted-socket tuning.
pub mod listener;
/// `NetStream`: plain TCP or TLS over TCP, either side, behind one stream type.
pub mod stream;
/// TLS handshakes (client and server) producing `NetStream`s.
pub mod tls;
