//! The gateway's session with each downstream server, shared by all workers.
//!
//! Key types: [`ServerLink`] (one per configured server: its config, its current downstream session,
//! its health), [`DownSession`] (what `initialize` with the downstream established).
//!
//! Invariants: the downstream session is published with one `ArcSwapOption` store, so a worker reads
//! it with one load and never waits for a handshake; a worker that finds it expired re-initializes and
//! publishes the replacement (two workers racing both succeed; the later store wins, and the earlier
//! session is simply unused). Health is written by the control side and read by the admin side only,
//! so its mutex never sits on the request path.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use bytes::Bytes;

use crate::config::ServerConfig;

/// What a completed downstream `initialize` established.
#[derive(Debug, Clone)]
pub struct DownSession {
    /// The downstream's `Mcp-Session-Id`, if it issued one.
    pub id: Option<Bytes>,
    /// The protocol version the downstream agreed to.
    pub protocol_version: Bytes,
    /// The downstream's `capabilities` object (raw JSON).
    pub capabilities: Bytes,
    /// The downstream's `instructions`, if any.
    pub instructions: Option<String>,
    /// The downstream's `serverInfo` (raw JSON).
    pub server_info: Bytes,
    /// Increments with every re-initialization; lets workers tell stale from fresh.
    pub epoch: u64,
}

/// A message for a multiplexed downstream (a stdio child, or an HTTP+SSE session), sent from any
/// thread to the task on the control thread that owns its one duplex stream.
#[derive(Debug)]
pub enum MuxMsg {
    /// Write a request and deliver what the server says about it to `events`.
    Request {
        /// The message (one JSON-RPC request; newlines are flattened before writing).
        body: Bytes,
        /// Its raw id token, as the server will echo it.
        id: Bytes,
        /// Its raw progress token, if the request asked for progress.
        progress: Option<Bytes>,
        /// Where notifications and the response go.
        events: async_channel::Sender<MuxEvent>,
        /// Who the request is for (attributes the server's own requests to a session).
        origin: super::origin::Origin,
    },
    /// Write a message that expects no reply (notifications, responses to the server's requests).
    Send(Bytes),
    /// Stop routing for a request the caller gave up on (timeout).
    Forget(Bytes),
}

/// What a multiplexed downstream said about one request.
#[derive(Debug, Clone)]
pub enum MuxEvent {
    /// A notification tied to the request (progress).
    Notification(Bytes),
    /// The response.
    Response(Bytes),
    /// The server went away (process exited, stream closed) before responding.
    Closed(String),
}

/// The way to reach a running multiplexed downstream.
#[derive(Debug)]
pub struct MuxChannel {
    /// Messages for the owner task (on the control thread).
    pub tx: async_channel::Sender<MuxMsg>,
    /// The child's process id (stdio; logs, admin API), 0 for an HTTP+SSE session.
    pub pid: u32,
}

/// Health of a downstream as the admin API reports it.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// The last error seen, with when.
    pub last_error: Option<(SystemTime, String)>,
    /// When the server last became available.
    pub up_since: Option<SystemTime>,
    /// The transport actually in use (e.g. "streamable-http").
    pub transport: &'static str,
    /// The era detected at the handshake: "legacy" or "modern".
    pub era: &'static str,
    /// Tools the server offers.
    pub tools: usize,
}

/// One configured downstream server, as every worker sees it.
pub struct ServerLink {
    /// Stable slot number (indexes per-worker pools and per-core stats).
    pub slot: usize,
    /// The server's name (metric label).
    pub name: Arc<str>,
    /// Its validated configuration.
    pub config: Arc<ServerConfig>,
    /// The current downstream session, `None` until the first handshake succeeds.
    pub session: ArcSwapOption<DownSession>,
    /// The server's resolved address (resolved on the control thread: DNS never runs on a worker).
    pub addr: ArcSwapOption<SocketAddr>,
    /// For stdio and HTTP+SSE servers: the running child or SSE session, `None` while down.
    pub mux: ArcSwapOption<MuxChannel>,
    /// Whether the server is currently believed reachable.
    up: AtomicBool,
    /// Whether the server was detected as modern era (2026-07-28: `server/discover` answered);
    /// its negotiated version is the current `DownSession`'s `protocol_version`.
    modern: AtomicBool,
    /// Counts re-initializations.
    epochs: AtomicU64,
    health: Mutex<Health>,
}

impl ServerLink {
    /// A link for a configured server, not yet connected.
    pub fn new(slot: usize, config: Arc<ServerConfig>) -> Self {
        let transport = match config.transport {
            crate::config::Transport::Stdio => "stdio",
            crate::config::Transport::Http => "streamable-http",
            crate::config::Transport::Sse => "http+sse",
        };
        ServerLink {
            slot,
            name: Arc::from(config.name.as_str()),
            config,
            session: ArcSwapOption::empty(),
            addr: ArcSwapOption::empty(),
            mux: ArcSwapOption::empty(),
            up: AtomicBool::new(false),
            modern: AtomicBool::new(false),
            epochs: AtomicU64::new(0),
            health: Mutex::new(Health {
                transport,
                era: "legacy",
                ..Health::default()
            }),
        }
    }

    /// Whether the server is believed reachable.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// The next session epoch number.
    pub fn next_epoch(&self) -> u64 {
        self.epochs.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Records that the server answered; returns whether it was down before.
    pub fn mark_up(&self) -> bool {
        let was_up = self.up.swap(true, Ordering::AcqRel);
        if !was_up {
            if let Ok(mut h) = self.health.lock() {
                h.up_since = Some(SystemTime::now());
            }
        }
        !was_up
    }

    /// Records a failure; returns whether the server was up before.
    pub fn mark_down(&self, why: impl Into<String>) -> bool {
        let was_up = self.up.swap(false, Ordering::AcqRel);
        self.note_error(why);
        if let Ok(mut h) = self.health.lock() {
            h.up_since = None;
        }
        was_up
    }

    /// Records an error without changing availability.
    pub fn note_error(&self, why: impl Into<String>) {
        if let Ok(mut h) = self.health.lock() {
            h.last_error = Some((SystemTime::now(), why.into()));
        }
    }

    /// Records the transport actually in use (e.g. after falling back to HTTP+SSE).
    pub fn set_transport(&self, transport: &'static str) {
        if let Ok(mut h) = self.health.lock() {
            h.transport = transport;
        }
    }

    /// Whether the server speaks the modern era (one relaxed load: read on the call path).
    pub fn is_modern(&self) -> bool {
        self.modern.load(Ordering::Relaxed)
    }

    /// Records the era detected at the handshake (shown by the admin API).
    pub fn set_era(&self, modern: bool) {
        self.modern.store(modern, Ordering::Relaxed);
        if let Ok(mut h) = self.health.lock() {
            h.era = if modern { "modern" } else { "legacy" };
        }
    }

    /// Sets the tool count shown by the admin API.
    pub fn set_tools(&self, n: usize) {
        if let Ok(mut h) = self.health.lock() {
            h.tools = n;
        }
    }

    /// A copy of the health record (admin side).
    pub fn health(&self) -> Health {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }
}
