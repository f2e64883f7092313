//! What the request path runs against: the shared gateway state and one worker's own state.
//!
//! [`Gateway`] is shared by all workers (`Arc`): the snapshot behind `ArcSwap`, the session codec,
//! the channel to the control thread. [`Worker`] belongs to one thread (`Rc`/`Cell`/`RefCell`):
//! its pools, statistics, notification streams, id counter and snapshot cache.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};
use bytes::Bytes;

use super::modern::ParamIndex;
use crate::catalog::Snapshot;
use crate::session::downstream::ServerLink;
use crate::session::relay_ids::RelayIds;
use crate::session::streams::StreamHub;
use crate::session::{FrontSession, SessionCodec};
use crate::telemetry::CoreStats;
use crate::upstream::pool::WorkerPools;
use crate::upstream::route::Route;

/// What workers tell the control thread.
#[derive(Debug)]
pub enum Report {
    /// A call found the server unreachable: mark it down, refresh the catalog, start retrying.
    ServerFailed {
        /// The server's slot.
        slot: usize,
        /// Why, for `/v1/servers`.
        why: String,
    },
    /// The URIs the gateway's clients subscribe to on a modern server changed: its
    /// `subscriptions/listen` stream must be reopened with the new set.
    ResourceSubscriptions {
        /// The server's slot.
        slot: usize,
    },
}

/// Messages a worker accepts from other threads.
pub enum WorkerMsg {
    /// Send this notification to every client stream on the worker.
    Notify(Bytes),
    /// Send this message to the streams of one session (by nonce), if any are on this worker.
    ToSession(u64, Bytes),
    /// Reply with a copy of the worker's stats and its open stream count.
    Scrape(async_channel::Sender<(CoreStats, usize)>),
    /// A client cancelled its call (session nonce, client's raw id): cancel it here if it runs here.
    Cancel(u64, Bytes),
    /// For the era bridge: a retry resuming a call parked here, or a client's answer to a
    /// request a relay here sent it.
    Bridge(super::bridge::Delivery),
    /// Open pool connections to servers that became available.
    Warm,
    /// Send this server request to one stream of one session (by nonce), if it has one here;
    /// the reply says whether it did.
    AskSession(u64, Bytes, async_channel::Sender<bool>),
    /// Which sessions have calls in flight here to this server slot (see [`Worker::claimants`]).
    Claim(usize, async_channel::Sender<Vec<(u64, u16)>>),
    /// Accept on this listener from now on (a reload moved `gateway.listen`); the old one closes,
    /// its accepted connections stay.
    Listen(std::net::TcpListener),
    /// Stop accepting and drain.
    Shutdown,
}

/// State shared by every worker.
pub struct Gateway {
    /// The snapshot in force; a request loads it once. In an `Arc` so each worker can keep an
    /// `arc_swap::Cache` of it.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Seals and opens front session ids.
    pub sessions: SessionCodec,
    /// Seals and opens the ids of server-to-client requests relayed to clients.
    pub relay_ids: RelayIds,
    /// Sealed task ids and the owners of tasks created through the gateway (experimental tasks).
    pub tasks: crate::session::tasks::Tasks,
    /// Which sessions watch which resources (reference-counted per downstream).
    pub subscriptions: Arc<super::subscriptions::Subscriptions>,
    /// Reports to the control thread (never blocks: unbounded).
    pub reports: async_channel::Sender<Report>,
    /// Every worker's inbox (set once at startup), for messages that must reach the worker
    /// holding a session's stream.
    pub workers: std::sync::OnceLock<Vec<async_channel::Sender<WorkerMsg>>>,
}

impl Gateway {
    /// Sends a report to the control thread; if it is gone (shutdown) the report is moot.
    pub fn report(&self, report: Report) {
        let _ = self.reports.try_send(report);
    }

    /// A downstream's `notifications/resources/updated`: to the sessions subscribed to that URI.
    pub fn resource_updated(&self, slot: usize, message: &Bytes) {
        let Ok(env) = crate::wire::parse(message) else {
            return;
        };
        let Some(uri) = env.uri_str(message) else {
            return;
        };
        for session in self.subscriptions.subscribers(slot, &uri) {
            for w in self.workers.get().into_iter().flatten() {
                let _ = w.try_send(WorkerMsg::ToSession(session, message.clone()));
            }
        }
    }

    /// A downstream's `notifications/tasks/status` outside any call: to the session that created
    /// the task, with its sealed id (see `proxy::tasks`).
    pub fn task_status(&self, slot: usize, message: &Bytes) {
        super::tasks::status_outside_call(self, slot, message);
    }

    /// Delivers a message to a session's streams wherever they live: this worker's hub first,
    /// else every other worker (the one holding the stream delivers it).
    pub fn to_session(&self, here: &Worker, session: u64, message: Bytes) {
        if here.streams.send_to_session(session, &message) > 0 {
            return;
        }
        for (i, w) in self.workers.get().into_iter().flatten().enumerate() {
            if i != usize::from(here.index) {
                let _ = w.try_send(WorkerMsg::ToSession(session, message.clone()));
            }
        }
    }
}

/// Session ids a worker keeps opened (about 100 bytes each).
pub const MAX_OPENED_SESSIONS: usize = 16 * 1024;

/// A forwarded call in flight: the route and server it went to, and the id the server knows.
pub type InFlight = (Route, Arc<ServerLink>, u64);

/// A value computed from one snapshot (identified by its address and generation), kept until
/// the worker sees another.
type PerSnapshot<T> = RefCell<Option<(usize, u64, T)>>;

/// The value `cell` holds for `snap`, built (and kept in place of the old one) when `cell` holds
/// another snapshot's. `T` is cheap to clone (`Rc`).
fn per_snapshot<T: Clone>(
    cell: &PerSnapshot<T>,
    snap: &Arc<Snapshot>,
    build: impl FnOnce(&Snapshot) -> T,
) -> T {
    let key = (Arc::as_ptr(snap) as usize, snap.generation);
    if let Some((ptr, generation, value)) = &*cell.borrow() {
        if (*ptr, *generation) == key {
            return value.clone();
        }
    }
    let value = build(snap);
    *cell.borrow_mut() = Some((key.0, key.1, value.clone()));
    value
}

/// One worker's own state.
pub struct Worker {
    /// Worker index (high bits of minted ids, log context).
    pub index: u16,
    /// Downstream connection pools.
    pub pools: WorkerPools,
    /// Per-core statistics.
    pub stats: RefCell<CoreStats>,
    /// Open client notification streams.
    pub streams: StreamHub,
    /// Requests in flight (graceful shutdown waits for zero).
    pub inflight: Cell<usize>,
    /// Set when the worker is shutting down: connections close after their current request.
    pub draining: Cell<bool>,
    /// The era bridge's calls parked on this worker and its relays' open asks.
    pub bridge: super::bridge::Table,
    /// Forwarded calls in flight on this worker, by (session nonce, client's raw id), so a client's
    /// `notifications/cancelled` can be sent on to the server with the id the server knows.
    /// The value also keeps the session's declared capabilities, for [`Worker::claimants`].
    calls: RefCell<HashMap<(u64, Bytes), (InFlight, u16)>>,
    /// Session ids this worker opened recently: opening a sealed id costs ~290 ns (AEAD), a hit
    /// here ~30 ns. Revocation is still checked on every use; the cache is cleared when full.
    opened: RefCell<HashMap<Box<[u8]>, FrontSession>>,
    next_id: Cell<u64>,
    cache: RefCell<Cache<Arc<ArcSwap<Snapshot>>, Arc<Snapshot>>>,
    /// `Mcp-Param-*` annotations of the snapshot last seen (by address and generation).
    param_index: PerSnapshot<Rc<ParamIndex>>,
    /// Which servers of the snapshot last seen take task-augmented tool calls (by address and
    /// generation), so a plain `tools/call` pays no capability scan.
    task_servers: PerSnapshot<Rc<[bool]>>,
}

impl Worker {
    /// A worker's state, reading snapshots from `gateway`.
    pub fn new(index: u16, gateway: &Gateway) -> Self {
        Worker {
            index,
            pools: WorkerPools::default(),
            stats: RefCell::new(CoreStats::default()),
            streams: StreamHub::default(),
            inflight: Cell::new(0),
            draining: Cell::new(false),
            bridge: super::bridge::Table::default(),
            calls: RefCell::new(HashMap::new()),
            opened: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
            cache: RefCell::new(Cache::new(gateway.snapshot.clone())),
            param_index: RefCell::new(None),
            task_servers: RefCell::new(None),
        }
    }

    /// The `Mcp-Param-*` annotations of `snap`'s tools, read once per snapshot on this worker.
    pub fn param_index(&self, snap: &Arc<Snapshot>) -> Rc<ParamIndex> {
        per_snapshot(&self.param_index, snap, |s| Rc::new(ParamIndex::build(s)))
    }

    /// Whether server `index` of `snap` takes task-augmented `tools/call`s (read once per
    /// snapshot on this worker).
    pub fn takes_tasks(&self, snap: &Arc<Snapshot>, index: usize) -> bool {
        let servers = per_snapshot(&self.task_servers, snap, |s| {
            s.servers
                .iter()
                .map(|s| super::tasks::takes_task_calls(&s.link))
                .collect()
        });
        servers.get(index).copied().unwrap_or(false)
    }

    /// The snapshot in force (a per-worker cache: ~1 ns when unchanged, vs ~24 ns for a load).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.cache.borrow_mut().load().clone()
    }

    /// Opens a session id through this worker's cache of recently opened ids.
    pub fn open_session(&self, gw: &Gateway, header: &[u8]) -> Option<FrontSession> {
        if let Some(s) = self.opened.borrow().get(header).copied() {
            return (!gw.sessions.is_revoked(&s)).then_some(s);
        }
        let session = gw.sessions.open(header)?;
        if session.client_caps & crate::session::caps::LATE != 0 {
            return Some(session); // not declared yet: opened again until it has
        }
        let mut opened = self.opened.borrow_mut();
        if opened.len() >= MAX_OPENED_SESSIONS {
            opened.clear();
        }
        opened.insert(header.into(), session);
        Some(session)
    }

    /// Remembers a forwarded call so the client can cancel it.
    pub fn calls_begin(
        &self,
        session: Option<FrontSession>,
        client_id: &Bytes,
        route: &Route,
        link: &Arc<ServerLink>,
        minted: u64,
    ) {
        if let Some(s) = session {
            self.calls.borrow_mut().insert(
                (s.nonce, client_id.clone()),
                ((route.clone(), link.clone(), minted), s.client_caps),
            );
        }
    }

    /// The sessions with calls in flight here to server `slot`, with their declared capabilities.
    /// For a server request that arrives outside any call (see `server_asks::outside_call`).
    pub fn claimants(&self, slot: usize) -> Vec<(u64, u16)> {
        let mut out: Vec<(u64, u16)> = Vec::new();
        for ((nonce, _), ((_, link, _), caps)) in self.calls.borrow().iter() {
            if link.slot == slot && !out.iter().any(|c| c.0 == *nonce) {
                out.push((*nonce, *caps));
            }
        }
        out
    }

    /// Forgets a call that finished.
    pub fn calls_end(&self, ctx: &super::relay::RelayCtx) {
        if let Some(s) = ctx.session {
            self.calls
                .borrow_mut()
                .remove(&(s.nonce, ctx.client_id.clone()));
        }
    }

    /// The route, server and minted id of a client's in-flight call on this worker.
    pub fn call_of(&self, session: u64, client_id: &[u8]) -> Option<InFlight> {
        self.calls
            .borrow()
            .get(&(session, Bytes::copy_from_slice(client_id)))
            .map(|(flight, _)| flight.clone())
    }

    /// A fresh downstream request id, unique across workers: worker index in the top 16 bits.
    pub fn mint_id(&self) -> u64 {
        let n = self.next_id.get();
        self.next_id.set(n + 1);
        (u64::from(self.index) << 48) | (n & ((1 << 48) - 1))
    }
}
