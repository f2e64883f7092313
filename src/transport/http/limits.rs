//! Resource limits for one HTTP/1.1 connection, server or client side.
//!
//! Role: a plain value type, copied into every connection, so that a hostile or broken peer
//! can never make a connection hold more than a bounded amount of memory or time.
//!
//! Key type: [`HttpLimits`]. Every field has a named `DEFAULT_*` constant; `Default` uses
//! them. Invariant: limits are checked *before* the bytes they guard are buffered wherever
//! the framing announces a size (Content-Length), and as soon as they are exceeded otherwise
//! (headers, chunked bodies), so memory use stays near the limit, not a multiple of it.
//!
//! Errors: none here; the connections turn a breached limit into an `HttpError`.

use std::time::Duration;

/// Default cap on the request/response head (start line plus headers), in bytes.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default cap on the number of header fields in one head.
pub const DEFAULT_MAX_HEADERS: usize = 64;
/// Default cap on a whole message body, in bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Default time allowed to receive a complete head once its first byte has arrived.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a server connection may sit idle between requests (and the longest a body
/// read may make no progress).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on one Server-Sent Event, in bytes (enforced by the SSE decoder, not here).
pub const DEFAULT_MAX_SSE_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// Per-connection limits; cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest accepted head (start line + headers + blank line); beyond it: 431.
    pub max_header_bytes: usize,
    /// Most header fields accepted in one head; beyond it: 431.
    pub max_headers: usize,
    /// Largest accepted body (after de-chunking); beyond it: 413.
    pub max_body_bytes: usize,
    /// Time to receive a complete head, counted from its first byte; beyond it: 408.
    pub header_read_timeout: Duration,
    /// Server side: how long to wait for the next request before closing quietly. Also the
    /// longest a body read may go without receiving a byte (then 408 and close).
    pub idle_timeout: Duration,
    /// Largest single SSE event; carried here for the SSE decoder built on this layer.
    pub max_sse_event_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_sse_event_bytes: DEFAULT_MAX_SSE_EVENT_BYTES,
        }
    }
}
