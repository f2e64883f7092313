//! The gateway's session with each downstream server, shared by all workers.
//!
//! Key types: [`ServerLink`] (one per configured server: its config, its current downstream session,
//! its health), [`DownSession`] (what `initialize` with the downstream established). A stateless
//! stdio server (`stateless = true`) runs one child per worker: [`ServerLink::lanes`] holds them by
//! worker index, and [`ServerLink::lane`] picks a worker's own child, or a live sibling while its
//! own one is down (one `ArcSwap` load, no lock).
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

use arc_swap::{ArcSwap, ArcSwapOption};
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
    /// For stdio and HTTP+SSE servers: the running child or SSE session, `None` while down. For a
    /// stateless stdio server: the child the control thread uses (handshake, list fetches), one of
    /// [`ServerLink::lanes`].
    pub mux: ArcSwapOption<MuxChannel>,
    /// For a stateless stdio server: one child per worker, by worker index (`None` while that
    /// child is down). Empty for every other server.
    pub lanes: ArcSwap<Vec<Option<Arc<MuxChannel>>>>,
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
            lanes: ArcSwap::from_pointee(Vec::new()),
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

    /// The child worker `worker` sends its calls to: its own, else the next live sibling (so a
    /// worker whose child restarts keeps serving); `None` when every child is down.
    pub fn lane(&self, worker: usize) -> Option<Arc<MuxChannel>> {
        let lanes = self.lanes.load();
        let n = lanes.len();
        (0..n).find_map(|k| lanes[(worker + k) % n].clone())
    }

    /// Every running child or SSE session of this server (the shared one, or each worker's).
    pub fn channels(&self) -> Vec<Arc<MuxChannel>> {
        let mut all: Vec<Arc<MuxChannel>> = self.lanes.load().iter().flatten().cloned().collect();
        if let Some(m) = self.mux.load_full() {
            if !all.iter().any(|c| Arc::ptr_eq(c, &m)) {
                all.push(m);
            }
        }
        all
    }

    /// How many references to `channel` the link itself holds (`mux` and `lanes`): more means
    /// calls in flight (a retiring server is drained until none are left).
    pub fn own_refs(&self, channel: &Arc<MuxChannel>) -> usize {
        let lanes = self.lanes.load();
        let in_lanes = lanes.iter().flatten().filter(|c| Arc::ptr_eq(c, channel));
        let in_mux = self
            .mux
            .load()
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(m, channel));
        in_lanes.count() + usize::from(in_mux)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(pid: u32) -> Arc<MuxChannel> {
        let (tx, _) = async_channel::unbounded();
        Arc::new(MuxChannel { tx, pid })
    }

    #[test]
    fn a_worker_uses_its_own_child_else_a_live_sibling() {
        let config = crate::config::parse_str(
            "[[server]]\nname = \"s\"\ntransport = \"stdio\"\ncommand = \"x\"\nstateless = true\n",
            &|_| None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let link = ServerLink::new(0, Arc::new(config.servers[0].clone()));
        assert!(link.lane(0).is_none(), "no children yet");
        let (a, b, c) = (channel(10), channel(11), channel(12));
        link.lanes.store(Arc::new(vec![
            Some(a.clone()),
            Some(b.clone()),
            Some(c.clone()),
        ]));
        let pid = |w| link.lane(w).map(|ch| ch.pid);
        assert_eq!((pid(0), pid(1), pid(2)), (Some(10), Some(11), Some(12)));
        // Worker 1's child is down: the next live sibling takes its calls.
        link.lanes
            .store(Arc::new(vec![Some(a.clone()), None, Some(c.clone())]));
        assert_eq!(pid(1), Some(12));
        link.lanes
            .store(Arc::new(vec![Some(a.clone()), None, None]));
        assert_eq!((pid(1), pid(2)), (Some(10), Some(10)));
        link.mux.store(Some(a.clone()));
        assert_eq!(link.channels().len(), 1, "mux is one of the lanes");
        assert_eq!(link.own_refs(&a), 2);
        link.lanes.store(Arc::new(vec![None, None, None]));
        assert!(link.lane(0).is_none(), "every child down");
    }
}
