//! The control thread: everything slow or shared that must stay off the workers.
//!
//! It connects to every downstream (DNS, TCP, `initialize`), fetches their lists, builds and
//! publishes Snapshots, keeps each downstream's notification stream open (`super::watchers`), reconnects failed
//! servers with exponential backoff and jitter, and turns catalog changes into `list_changed`
//! notifications sent to every worker's client streams. Workers talk to it only by message
//! ([`Report`]); it talks to them only by message ([`WorkerMsg`]) and by publishing snapshots.
//!
//! Servers live in slots (`super::slots`): a slot number is never reused within a process lifetime,
//! and a hot reload (`super::reload`) starts new or changed servers in new slots before it commits,
//! then drains and closes the slots of removed or replaced ones.
//!
//! Invariants: a publish is one `ArcSwap` store of a fully built snapshot built from the `Live`
//! slots only; a failure on one server changes only that server's entries; no `RefCell` borrow is
//! held across an `.await`. Nothing here panics on a downstream's behaviour.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::reload::{ReloadStatus, Reloader};
use super::slots::{Slot, SlotState};
use super::WorkerMsg;
use crate::catalog::cursor::CursorCodec;
use crate::catalog::{self, ListKind, ServerLists, ServerView, Snapshot};
use crate::config::{GatewayConfig, Transport};
use crate::proxy::{Gateway, Report};
use crate::session::downstream::{MuxChannel, ServerLink};
use crate::upstream::exchange::ReplyLimits;
use crate::upstream::pool::WorkerPools;
use crate::upstream::route::Route;
use crate::upstream::{child, fetch, handshake, sse_session, UpstreamError};
use crate::wire::encode;

/// Time allowed for a server's handshake plus list fetch before it counts as down.
pub const CONNECT_BUDGET: Duration = Duration::from_secs(15);
/// First reconnect delay after a failure; doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Longest reconnect delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Uptime after which a server counts as stable again and its backoff resets.
pub const STABLE_UPTIME: Duration = Duration::from_secs(30);

/// Work the control loop schedules for itself.
#[derive(Debug)]
pub enum Task {
    /// Re-fetch one server's lists (it sent `list_changed`).
    Refresh(usize),
    /// Try to (re)connect one server.
    Connect(usize),
}

/// The control thread's state (lives on its own monoio runtime; `Rc`, never shared).
pub struct Control {
    /// Shared gateway state (snapshot cell, session codec).
    pub gw: Arc<Gateway>,
    /// Worker inboxes.
    pub workers: RefCell<Vec<async_channel::Sender<WorkerMsg>>>,
    /// Reload bookkeeping: config generation, last result (admin API, metrics).
    pub reload: RefCell<ReloadStatus>,
    /// Queues reloads (the admin API posts through it).
    pub reloader: Reloader,
    pub(super) gateway: RefCell<Arc<GatewayConfig>>,
    pub(super) slots: RefCell<HashMap<usize, Slot>>,
    /// The live slots, in config order.
    pub(super) order: RefCell<Vec<usize>>,
    pub(super) next_slot: Cell<usize>,
    generation: Cell<u64>,
    cursors: Arc<CursorCodec>,
    pub(super) pools: WorkerPools,
    pub(super) tasks: local_sync::mpsc::unbounded::Tx<Task>,
    /// The addresses served now (hot reload moves them: `super::listeners`).
    pub(super) listening: Cell<super::listeners::Listening>,
    /// Stops the admin accept loop in force.
    pub(super) admin_stop: RefCell<Option<async_channel::Sender<()>>>,
}

impl Control {
    /// Creates the control state for the startup servers (`links`, live, in config order); `tasks`
    /// is the sending half of its own task queue.
    pub fn new(
        gw: Arc<Gateway>,
        gateway: Arc<GatewayConfig>,
        links: Vec<Arc<ServerLink>>,
        cursors: Arc<CursorCodec>,
        tasks: local_sync::mpsc::unbounded::Tx<Task>,
        reload: (ReloadStatus, Reloader),
    ) -> Self {
        let order: Vec<usize> = links.iter().map(|l| l.slot).collect();
        let next = order.iter().max().map_or(0, |m| m + 1);
        let slots = links
            .into_iter()
            .map(|l| (l.slot, Slot::new(l, SlotState::Live)))
            .collect();
        Control {
            gw,
            workers: RefCell::new(Vec::new()),
            reload: RefCell::new(reload.0),
            reloader: reload.1,
            gateway: RefCell::new(gateway),
            slots: RefCell::new(slots),
            order: RefCell::new(order),
            next_slot: Cell::new(next),
            generation: Cell::new(0),
            cursors,
            pools: WorkerPools::default(),
            tasks,
            listening: Cell::default(),
            admin_stop: RefCell::new(None),
        }
    }

    /// The gateway settings in force.
    pub fn gateway(&self) -> Arc<GatewayConfig> {
        self.gateway.borrow().clone()
    }

    pub(super) fn limits(&self) -> ReplyLimits {
        let g = self.gateway.borrow();
        ReplyLimits {
            max_body: g.limits.max_response_bytes,
            max_event: g.limits.max_sse_event_bytes,
        }
    }

    /// Connects every server concurrently and publishes the first real snapshot.
    pub async fn initial_sync(self: &Rc<Self>) {
        let order = self.order.borrow().clone();
        let mut joins = Vec::with_capacity(order.len());
        for slot in order {
            let me = self.clone();
            joins.push(monoio::spawn(async move { me.connect(slot).await }));
        }
        for j in joins {
            j.await;
        }
        self.publish();
    }

    /// One connection attempt: resolve or spawn, handshake, fetch lists. Marks the link up or down.
    pub async fn connect(self: &Rc<Self>, slot: usize) -> bool {
        let Some(link) = self.link(slot) else {
            return false;
        };
        let server_name = self.gateway().server_name.clone();
        let attempt = async {
            let route = match link.config.transport {
                Transport::Stdio if link.config.stateless => {
                    // Each child is initialized as it starts; the lists come from one of them.
                    let primary = Route::Mux(self.start_lanes(slot).await?);
                    return fetch::fetch_lists(&primary, &link, self.limits()).await;
                }
                Transport::Stdio => Route::Mux(self.start_child(slot)?),
                Transport::Sse => {
                    self.resolve(&link)?;
                    Route::Mux(self.start_sse(slot).await?)
                }
                Transport::Http => {
                    self.resolve(&link)?;
                    return self.connect_http(slot).await;
                }
            };
            handshake::initialize(&route, &link, &server_name, self.limits()).await?;
            fetch::fetch_lists(&route, &link, self.limits()).await
        };
        match monoio::time::timeout(CONNECT_BUDGET, attempt).await {
            Ok(Ok(lists)) => {
                self.with_slot(slot, |s| {
                    s.lists = Some(Arc::new(lists));
                    s.up_since = Some(Instant::now());
                });
                link.mark_up();
                log::info!(
                    "server '{}' connected ({})",
                    link.name,
                    link.health().transport
                );
                // Plain Streamable HTTP needs its GET stream for notifications; a multiplexed
                // legacy server (stdio, HTTP+SSE) already delivers them on its one stream; a
                // modern server needs its `subscriptions/listen` stream (upstream::watch).
                if link.mux.load().is_none() || link.is_modern() {
                    self.spawn_watch(slot);
                }
                true
            }
            Ok(Err(e)) => self.failed(slot, &e.to_string()),
            Err(_) => self.failed(slot, "timed out connecting"),
        }
    }

    /// Marks the server down, stops its child(ren) or session and schedules a reconnect.
    pub(super) fn failed(self: &Rc<Self>, slot: usize, why: &str) -> bool {
        let Some(link) = self.link(slot) else {
            return false;
        };
        log::warn!("server '{}' unavailable: {why}", link.name);
        link.mark_down(why);
        self.pools.get(&link).clear();
        // Crash-loop breaker: the backoff only resets after the server stayed up for a while, so a
        // server that dies right after every start is retried ever more slowly (up to MAX_BACKOFF).
        let exited = self
            .with_slot(slot, |s| {
                if s.up_since
                    .take()
                    .is_some_and(|t| t.elapsed() >= STABLE_UPTIME)
                {
                    s.backoff = MIN_BACKOFF;
                }
                s.exits.take()
            })
            .flatten();
        if let Some(child) = link.mux.swap(None) {
            monoio::spawn(async move {
                if let Some(exited) = exited {
                    child::terminate(&child, &exited).await;
                }
            });
        }
        self.stop_lanes(slot);
        self.schedule_reconnect(slot);
        false
    }

    /// Starts a stdio server's child and a task that notices its exit.
    fn start_child(self: &Rc<Self>, slot: usize) -> Result<Arc<MuxChannel>, UpstreamError> {
        let link = self.link(slot).ok_or_else(removed)?;
        if let Some(running) = link.mux.load_full() {
            return Ok(running);
        }
        let spawned = self.spawn_child(&link, None)?;
        Ok(self.adopt_mux(&link, spawned.channel, spawned.exited))
    }

    /// Spawns a child of `link`'s stdio server (the shared one, or worker `lane`'s), not yet
    /// initialized.
    pub(super) fn spawn_child(
        &self,
        link: &ServerLink,
        lane: Option<usize>,
    ) -> Result<child::Spawned, UpstreamError> {
        let max_line = self.gateway().limits.max_response_bytes;
        child::spawn(&link.config, max_line, self.unsolicited(link.slot), lane).map_err(|e| {
            UpstreamError::Unreachable(format!(
                "cannot start '{}': {e}",
                link.config.command.as_deref().unwrap_or("")
            ))
        })
    }

    /// What handles the messages a server of `slot` sends outside any call (list_changed etc.).
    pub(super) fn unsolicited(&self, slot: usize) -> Rc<dyn Fn(Bytes)> {
        let (gw, tasks) = (self.gw.clone(), self.tasks.clone());
        Rc::new(move |msg: Bytes| super::watchers::on_downstream_message(&gw, &tasks, slot, &msg))
    }

    /// Opens an HTTP+SSE session (configured `sse`, or the fallback for an `http` server).
    async fn start_sse(self: &Rc<Self>, slot: usize) -> Result<Arc<MuxChannel>, UpstreamError> {
        let link = self.link(slot).ok_or_else(removed)?;
        if let Some(running) = link.mux.load_full() {
            return Ok(running);
        }
        let unsolicited = self.unsolicited(slot);
        let opened = sse_session::open(self.pools.get(&link), self.limits(), unsolicited).await?;
        Ok(self.adopt_mux(&link, opened.channel, opened.exited))
    }

    /// Publishes a multiplexed stream (child or SSE session) on the link and watches for its end.
    /// The watcher holds the channel weakly: strong references count calls in flight (drain).
    fn adopt_mux(
        self: &Rc<Self>,
        link: &ServerLink,
        channel: Arc<MuxChannel>,
        exited: async_channel::Receiver<String>,
    ) -> Arc<MuxChannel> {
        let slot = link.slot;
        link.mux.store(Some(channel.clone()));
        self.with_slot(slot, |s| s.exits = Some(exited.clone()));
        let current = |link: &ServerLink| link.mux.load_full();
        self.watch_exit(
            slot,
            &channel,
            exited,
            current,
            move |me, link, current, why| {
                let state = me.slot_state(slot);
                if link.is_up() && state != Some(SlotState::Retired) {
                    me.failed(slot, &why);
                    if state == Some(SlotState::Live) {
                        me.publish();
                    }
                } else {
                    link.mux.store(None);
                    current.tx.close();
                }
            },
        );
        channel
    }

    /// Watches a child or SSE session of `slot` for its exit: once `exited` fires, `on_exit` gets
    /// the link, the channel and the reason, unless the slot is gone or `current` (where the link
    /// publishes it) holds another channel by then (a newer one runs). The watcher holds the
    /// channel weakly: strong references count calls in flight (drain).
    pub(super) fn watch_exit(
        self: &Rc<Self>,
        slot: usize,
        channel: &Arc<MuxChannel>,
        exited: async_channel::Receiver<String>,
        current: impl Fn(&ServerLink) -> Option<Arc<MuxChannel>> + 'static,
        on_exit: impl FnOnce(&Rc<Self>, &Arc<ServerLink>, Arc<MuxChannel>, String) + 'static,
    ) {
        let me = self.clone();
        let watched = Arc::downgrade(channel);
        monoio::spawn(async move {
            let why = exited.recv().await.unwrap_or_else(|_| "stream gone".into());
            let Some(link) = me.link(slot) else { return };
            // Only the channel this task watches may be declared dead (a newer one may run).
            let Some(current) =
                current(&link).filter(|c| std::ptr::eq(Arc::as_ptr(c), watched.as_ptr()))
            else {
                return;
            };
            on_exit(&me, &link, current, why);
        });
    }

    fn resolve(&self, link: &ServerLink) -> Result<(), UpstreamError> {
        let addr = resolve(link)?;
        link.addr.store(Some(Arc::new(addr)));
        Ok(())
    }

    /// Streamable HTTP first; a server that refuses it (any answer but an unreachable host or a
    /// timeout) is tried as legacy HTTP+SSE at the same URL, as the transport spec's
    /// backwards-compatibility section describes. The transport found is shown in `/v1/servers`.
    async fn connect_http(self: &Rc<Self>, slot: usize) -> Result<ServerLists, UpstreamError> {
        let link = self.link(slot).ok_or_else(removed)?;
        let route = Route::Http(self.pools.get(&link));
        let name = self.gateway().server_name.clone();
        let first = match handshake::initialize(&route, &link, &name, self.limits()).await {
            Ok(_) => return fetch::fetch_lists(&route, &link, self.limits()).await,
            Err(e @ (UpstreamError::Unreachable(_) | UpstreamError::Timeout)) => return Err(e),
            Err(e) => e,
        };
        let route = match self.start_sse(slot).await {
            Ok(mux) => Route::Mux(mux),
            Err(_) => return Err(first),
        };
        link.set_transport("http+sse (fallback)");
        handshake::initialize(&route, &link, &name, self.limits()).await?;
        fetch::fetch_lists(&route, &link, self.limits()).await
    }

    fn schedule_reconnect(self: &Rc<Self>, slot: usize) {
        let delay = self.with_slot(slot, |s| {
            let d = s.backoff;
            s.backoff = (d * 2).min(MAX_BACKOFF);
            (s.state != SlotState::Retired).then(|| jitter(d))
        });
        let Some(Some(delay)) = delay else { return };
        let tasks = self.tasks.clone();
        monoio::spawn(async move {
            monoio::time::sleep(delay).await;
            let _ = tasks.send(Task::Connect(slot));
        });
    }

    /// Runs one scheduled task. Tasks for a retired or discarded slot do nothing.
    async fn run_task(self: &Rc<Self>, task: Task) {
        match task {
            Task::Connect(slot) => {
                let (Some(link), Some(state)) = (self.link(slot), self.slot_state(slot)) else {
                    return;
                };
                if state != SlotState::Retired
                    && !link.is_up()
                    && self.connect(slot).await
                    && self.slot_state(slot) == Some(SlotState::Live)
                {
                    self.publish();
                    // Workers open pooled connections now, not on the first call.
                    self.warm_workers();
                }
            }
            Task::Refresh(slot) => {
                let Some(link) = self.link(slot) else { return };
                if self.slot_state(slot) == Some(SlotState::Retired) {
                    return;
                }
                let fetched = match Route::to(&link, &self.pools) {
                    Ok(route) => fetch::fetch_lists(&route, &link, self.limits()).await,
                    Err(e) => Err(e),
                };
                match fetched {
                    Ok(lists) => {
                        self.with_slot(slot, |s| s.lists = Some(Arc::new(lists)));
                        if self.slot_state(slot) == Some(SlotState::Live) {
                            self.publish();
                        }
                    }
                    Err(e) => link.note_error(format!("list refresh failed: {e}")),
                }
            }
        }
    }

    /// Handles a worker's report (about live servers only: a retiring one is not reconnected).
    fn on_report(self: &Rc<Self>, report: Report) {
        match report {
            Report::ResourceSubscriptions { slot } => {
                self.with_slot(slot, |s| s.relisten.0.try_send(()));
            }
            Report::ServerFailed { slot, why } => {
                // A stateless server's children are supervised one by one (`super::lanes`): it is
                // down only once every child is.
                if self.slot_state(slot) == Some(SlotState::Live)
                    && self
                        .link(slot)
                        .is_some_and(|l| l.is_up() && l.lane(0).is_none())
                {
                    self.failed(slot, &why);
                    self.publish();
                }
            }
        }
    }

    /// Builds and publishes a snapshot from the live slots' lists; tells clients what changed.
    /// Returns the lists whose content changed.
    pub fn publish(&self) -> Vec<ListKind> {
        let views: Vec<ServerView> = {
            let slots = self.slots.borrow();
            self.order
                .borrow()
                .iter()
                .filter_map(|s| slots.get(s))
                .map(|s| ServerView {
                    link: s.link.clone(),
                    lists: s.lists.clone(),
                })
                .collect()
        };
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        let next = catalog::build(generation, self.gateway(), &views, self.cursors.clone());
        let previous = self.gw.snapshot.swap(Arc::new(next));
        let current = self.gw.snapshot.load_full();
        let changed = changed_lists(&previous, &current);
        for kind in &changed {
            self.broadcast(encode::notification(kind.changed_notification(), None));
        }
        changed
    }

    /// Sends a notification to every worker's client streams.
    pub fn broadcast(&self, message: Bytes) {
        for w in self.workers.borrow().iter() {
            let _ = w.try_send(WorkerMsg::Notify(message.clone()));
        }
    }

    /// Tells every worker to open pool connections to the servers now available (and to let go
    /// of the pools of servers no longer served).
    pub fn warm_workers(&self) {
        for w in self.workers.borrow().iter() {
            let _ = w.try_send(WorkerMsg::Warm);
        }
    }

    /// The control loop: worker reports and scheduled tasks, until shutdown closes the report channel.
    pub async fn run(
        self: Rc<Self>,
        reports: async_channel::Receiver<Report>,
        mut tasks: local_sync::mpsc::unbounded::Rx<Task>,
    ) {
        loop {
            monoio::select! {
                r = reports.recv() => match r {
                    Ok(report) => self.on_report(report),
                    Err(_) => {
                        self.stop_children().await;
                        return;
                    }
                },
                t = tasks.recv() => if let Some(task) = t {
                    let me = self.clone();
                    monoio::spawn(async move { me.run_task(task).await });
                },
            }
        }
    }
}

/// Why a slot that is gone (discarded or closed) cannot be connected.
pub(super) fn removed() -> UpstreamError {
    UpstreamError::Unreachable("the server was removed from the configuration".into())
}

/// The lists whose encoded pages differ between two snapshots (`list_changed` is due for them).
fn changed_lists(old: &Snapshot, new: &Snapshot) -> Vec<ListKind> {
    let mut out: Vec<ListKind> = Vec::new();
    for kind in ListKind::ALL {
        let (a, b) = (&old.pages[kind as usize], &new.pages[kind as usize]);
        let differs = a.len() != b.len()
            || a.iter()
                .zip(b)
                .any(|(x, y)| strip_cursor(x) != strip_cursor(y));
        let note = kind.changed_notification();
        if differs && !out.iter().any(|k| k.changed_notification() == note) {
            out.push(kind);
        }
    }
    out
}

/// A page without its `nextCursor` (cursors are sealed with a fresh nonce each build).
fn strip_cursor(page: &Bytes) -> &[u8] {
    let needle = b",\"nextCursor\":";
    page.windows(needle.len())
        .position(|w| w == needle)
        .map_or(&page[..], |i| &page[..i])
}

/// Resolves the server's host (control thread only: DNS never runs on a worker).
fn resolve(link: &ServerLink) -> Result<SocketAddr, UpstreamError> {
    let url = link.config.url.as_ref().ok_or_else(|| {
        UpstreamError::Protocol("transport not supported yet for this server".into())
    })?;
    (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| UpstreamError::Unreachable(format!("resolve {}: {e}", url.host)))?
        .next()
        .ok_or_else(|| UpstreamError::Unreachable(format!("{} has no address", url.host)))
}

/// Spreads retries: a delay between 50% and 100% of `d`.
pub(super) fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    d.mul_f64(0.5 + f64::from(nanos % 1000) / 2000.0)
}

/// Task queue constructor (keeps the `Task` type private to this module).
pub fn task_queue() -> (
    local_sync::mpsc::unbounded::Tx<Task>,
    local_sync::mpsc::unbounded::Rx<Task>,
) {
    local_sync::mpsc::unbounded::channel()
}

/// The first snapshot: every server known, none connected yet.
pub fn initial_snapshot(
    gateway: Arc<GatewayConfig>,
    links: &[Arc<ServerLink>],
    cursors: Arc<CursorCodec>,
) -> Snapshot {
    let views: Vec<ServerView> = links
        .iter()
        .map(|l| ServerView {
            link: l.clone(),
            lists: None,
        })
        .collect();
    catalog::build(0, gateway, &views, cursors)
}
