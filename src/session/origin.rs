//! Who a request sent to a multiplexed downstream is for, so that a request the server sends back
//! (sampling, elicitation, roots) can be attributed to the right front session.
//!
//! A stdio child or an HTTP+SSE session carries every client's calls on one stream, and a server's
//! request there names no call. The multiplexer keeps each pending call's [`Origin`]: the front
//! session and, for `tasks/*` requests, the downstream task it concerns (a server request with the
//! `related-task` `_meta` of that task belongs to that caller).

use bytes::Bytes;

/// The front session and task a forwarded request is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The front session's nonce; 0 for the gateway's own requests (handshake, list fetches).
    pub session: u64,
    /// The downstream's raw `taskId` token the request concerns (`tasks/get`, `tasks/result`).
    pub task: Option<Bytes>,
}

impl Origin {
    /// The gateway's own request (belongs to no client).
    pub const GATEWAY: Origin = Origin {
        session: 0,
        task: None,
    };
}
