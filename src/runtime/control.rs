//! The control thread: everything slow or shared that must stay off the workers.
//!
//! It connects to every downstream (DNS, TCP, `initialize`), fetches their lists, builds and
//! publishes Snapshots, watches each downstream's GET stream for `list_changed`, reconnects failed
//! servers with exponential backoff and jitter, and turns catalog changes into `list_changed`
//! notifications sent to every worker's client streams. Workers talk to it only by message
//! ([`Report`]); it talks to them only by message ([`WorkerMsg`]) and by publishing snapshots.
//!
//! Invariants: a publish is one `ArcSwap` store of a fully built snapshot; a failure on one server
//! changes only that server's entries. Nothing here panics on a downstream's behaviour.

use std::cell::{Cell, RefCell};
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::WorkerMsg;
use crate::catalog::cursor::CursorCodec;
use crate::catalog::{self, ListKind, ServerLists, ServerView, Snapshot};
use crate::config::{GatewayConfig, Transport};
use crate::proxy::{Gateway, Report};
use crate::session::downstream::{MuxChannel, ServerLink};
use crate::upstream::exchange::ReplyLimits;
use crate::upstream::pool::WorkerPools;
use crate::upstream::route::Route;
use crate::upstream::watch::{watch, WatchEnd};
use crate::upstream::{child, fetch, handshake, sse_session, UpstreamError};
use crate::wire::{self, encode};

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
    /// Gateway settings.
    pub gateway: Arc<GatewayConfig>,
    /// One link per configured server, by slot.
    pub links: Vec<Arc<ServerLink>>,
    lists: RefCell<Vec<Option<Arc<ServerLists>>>>,
    backoff: RefCell<Vec<Duration>>,
    up_since: RefCell<Vec<Option<Instant>>>,
    exits: RefCell<Vec<Option<async_channel::Receiver<String>>>>,
    generation: Cell<u64>,
    cursors: Arc<CursorCodec>,
    pools: WorkerPools,
    /// Worker inboxes.
    pub workers: RefCell<Vec<async_channel::Sender<WorkerMsg>>>,
    tasks: local_sync::mpsc::unbounded::Tx<Task>,
}

impl Control {
    /// Creates the control state; `tasks` is the sending half of its own task queue.
    pub fn new(
        gw: Arc<Gateway>,
        gateway: Arc<GatewayConfig>,
        links: Vec<Arc<ServerLink>>,
        cursors: Arc<CursorCodec>,
        tasks: local_sync::mpsc::unbounded::Tx<Task>,
    ) -> Self {
        let n = links.len();
        Control {
            gw,
            gateway,
            links,
            lists: RefCell::new(vec![None; n]),
            backoff: RefCell::new(vec![MIN_BACKOFF; n]),
            up_since: RefCell::new(vec![None; n]),
            exits: RefCell::new(vec![None; n]),
            generation: Cell::new(0),
            cursors,
            pools: WorkerPools::default(),
            workers: RefCell::new(Vec::new()),
            tasks,
        }
    }

    fn limits(&self) -> ReplyLimits {
        ReplyLimits {
            max_body: self.gateway.limits.max_response_bytes,
            max_event: self.gateway.limits.max_sse_event_bytes,
        }
    }

    /// Connects every server concurrently and publishes the first real snapshot.
    pub async fn initial_sync(self: &Rc<Self>) {
        let mut joins = Vec::with_capacity(self.links.len());
        for slot in 0..self.links.len() {
            let me = self.clone();
            joins.push(monoio::spawn(async move { me.connect(slot).await }));
        }
        for j in joins {
            j.await;
        }
        self.publish();
    }

    /// One connection attempt: resolve or spawn, handshake, fetch lists. Marks the link up or down.
    async fn connect(self: &Rc<Self>, slot: usize) -> bool {
        let link = self.links[slot].clone();
        let attempt = async {
            let route = match link.config.transport {
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
            handshake::initialize(&route, &link, &self.gateway.server_name, self.limits()).await?;
            fetch::fetch_lists(&route, &link, self.limits()).await
        };
        match monoio::time::timeout(CONNECT_BUDGET, attempt).await {
            Ok(Ok(lists)) => {
                self.lists.borrow_mut()[slot] = Some(Arc::new(lists));
                self.up_since.borrow_mut()[slot] = Some(Instant::now());
                link.mark_up();
                log::info!(
                    "server '{}' connected ({})",
                    link.name,
                    link.health().transport
                );
                // Plain Streamable HTTP needs its GET stream for notifications; a multiplexed
                // server (stdio, HTTP+SSE) already delivers them on its one stream.
                if link.mux.load().is_none() {
                    self.spawn_watch(slot);
                }
                true
            }
            Ok(Err(e)) => self.failed(slot, &e.to_string()),
            Err(_) => self.failed(slot, "timed out connecting"),
        }
    }

    fn failed(self: &Rc<Self>, slot: usize, why: &str) -> bool {
        let link = &self.links[slot];
        log::warn!("server '{}' unavailable: {why}", link.name);
        link.mark_down(why);
        self.pools.get(link).clear();
        // Crash-loop breaker: the backoff only resets after the server stayed up for a while, so a
        // server that dies right after every start is retried ever more slowly (up to MAX_BACKOFF).
        if let Some(since) = self.up_since.borrow_mut()[slot].take() {
            if since.elapsed() >= STABLE_UPTIME {
                self.backoff.borrow_mut()[slot] = MIN_BACKOFF;
            }
        }
        if let Some(child) = link.mux.swap(None) {
            let exited = self.exits.borrow_mut()[slot].take();
            monoio::spawn(async move {
                if let Some(exited) = exited {
                    child::terminate(&child, &exited).await;
                }
            });
        }
        self.schedule_reconnect(slot);
        false
    }

    /// Starts a stdio server's child and a task that notices its exit.
    fn start_child(self: &Rc<Self>, slot: usize) -> Result<Arc<MuxChannel>, UpstreamError> {
        let link = self.links[slot].clone();
        if let Some(running) = link.mux.load_full() {
            return Ok(running);
        }
        let tasks = self.tasks.clone();
        let unsolicited: Rc<dyn Fn(Bytes)> =
            Rc::new(move |msg: Bytes| on_downstream_message(&tasks, slot, &msg));
        let spawned = child::spawn(
            &link.config,
            self.gateway.limits.max_response_bytes,
            unsolicited,
        )
        .map_err(|e| {
            UpstreamError::Unreachable(format!(
                "cannot start '{}': {e}",
                link.config.command.as_deref().unwrap_or("")
            ))
        })?;
        Ok(self.adopt_mux(slot, spawned.channel, spawned.exited))
    }

    /// Opens an HTTP+SSE session (configured `sse`, or the fallback for an `http` server).
    async fn start_sse(self: &Rc<Self>, slot: usize) -> Result<Arc<MuxChannel>, UpstreamError> {
        let link = self.links[slot].clone();
        if let Some(running) = link.mux.load_full() {
            return Ok(running);
        }
        let tasks = self.tasks.clone();
        let unsolicited: Rc<dyn Fn(Bytes)> =
            Rc::new(move |msg: Bytes| on_downstream_message(&tasks, slot, &msg));
        let opened = sse_session::open(self.pools.get(&link), self.limits(), unsolicited).await?;
        Ok(self.adopt_mux(slot, opened.channel, opened.exited))
    }

    /// Publishes a multiplexed stream (child or SSE session) on the link and watches for its end.
    fn adopt_mux(
        self: &Rc<Self>,
        slot: usize,
        channel: Arc<MuxChannel>,
        exited: async_channel::Receiver<String>,
    ) -> Arc<MuxChannel> {
        self.links[slot].mux.store(Some(channel.clone()));
        self.exits.borrow_mut()[slot] = Some(exited.clone());
        let me = self.clone();
        let watched = channel.clone();
        monoio::spawn(async move {
            let why = exited.recv().await.unwrap_or_else(|_| "stream gone".into());
            // Only the stream this task watches may be declared dead (a newer one may be running).
            let current = me.links[slot].mux.load_full();
            if current.is_some_and(|c| Arc::ptr_eq(&c, &watched)) {
                if me.links[slot].is_up() {
                    me.failed(slot, &why);
                    me.publish();
                } else {
                    me.links[slot].mux.store(None);
                    watched.tx.close();
                }
            }
        });
        channel
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
        let link = self.links[slot].clone();
        let route = Route::Http(self.pools.get(&link));
        let name = self.gateway.server_name.clone();
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

    /// Stops every stdio child (shutdown).
    pub async fn stop_children(&self) {
        let mut stopping = Vec::new();
        for (slot, link) in self.links.iter().enumerate() {
            let exited = self.exits.borrow_mut()[slot].take();
            if let (Some(child), Some(exited)) = (link.mux.swap(None), exited) {
                // All children stop at once: shutdown takes one grace period, not one per server.
                stopping.push(monoio::spawn(async move {
                    child::terminate(&child, &exited).await
                }));
            }
        }
        for s in stopping {
            s.await;
        }
    }

    fn schedule_reconnect(self: &Rc<Self>, slot: usize) {
        let delay = {
            let mut b = self.backoff.borrow_mut();
            let d = b[slot];
            b[slot] = (d * 2).min(MAX_BACKOFF);
            jitter(d)
        };
        let tasks = self.tasks.clone();
        monoio::spawn(async move {
            monoio::time::sleep(delay).await;
            let _ = tasks.send(Task::Connect(slot));
        });
    }

    /// Keeps the server's GET stream open while it is up; `list_changed` schedules a refresh.
    fn spawn_watch(self: &Rc<Self>, slot: usize) {
        let me = self.clone();
        monoio::spawn(async move {
            let link = me.links[slot].clone();
            let epoch = link.session.load().as_ref().map(|s| s.epoch);
            let pool = me.pools.get(&link);
            let tasks = me.tasks.clone();
            let mut delay = MIN_BACKOFF;
            while link.is_up() && link.session.load().as_ref().map(|s| s.epoch) == epoch {
                let end = watch(&pool, me.limits(), |msg| {
                    on_downstream_message(&tasks, slot, &msg)
                })
                .await;
                match end {
                    WatchEnd::NotOffered => return,
                    WatchEnd::Ended(e) => {
                        log::debug!("server '{}': notification stream ended: {e}", link.name)
                    }
                }
                monoio::time::sleep(jitter(delay)).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        });
    }

    /// Runs one scheduled task.
    async fn run_task(self: &Rc<Self>, task: Task) {
        match task {
            Task::Connect(slot) => {
                if !self.links[slot].is_up() && self.connect(slot).await {
                    self.publish();
                    // Workers open pooled connections now, not on the first call.
                    for w in self.workers.borrow().iter() {
                        let _ = w.try_send(WorkerMsg::Warm);
                    }
                }
            }
            Task::Refresh(slot) => {
                let link = &self.links[slot];
                let fetched = match Route::to(link, &self.pools) {
                    Ok(route) => fetch::fetch_lists(&route, link, self.limits()).await,
                    Err(e) => Err(e),
                };
                match fetched {
                    Ok(lists) => {
                        self.lists.borrow_mut()[slot] = Some(Arc::new(lists));
                        self.publish();
                    }
                    Err(e) => self.links[slot].note_error(format!("list refresh failed: {e}")),
                }
            }
        }
    }

    /// Handles a worker's report.
    fn on_report(self: &Rc<Self>, report: Report) {
        match report {
            Report::ServerFailed { slot, why } => {
                if let Some(link) = self.links.get(slot) {
                    if link.is_up() {
                        self.failed(slot, &why);
                        self.publish();
                    }
                }
            }
        }
    }

    /// Builds and publishes a snapshot from the current lists; tells clients what changed.
    pub fn publish(&self) {
        let views: Vec<ServerView> = {
            let lists = self.lists.borrow();
            self.links
                .iter()
                .zip(lists.iter())
                .map(|(link, l)| ServerView {
                    link: link.clone(),
                    lists: l.clone(),
                })
                .collect()
        };
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        let next = catalog::build(
            generation,
            self.gateway.clone(),
            &views,
            self.cursors.clone(),
        );
        let previous = self.gw.snapshot.swap(Arc::new(next));
        let current = self.gw.snapshot.load_full();
        for kind in changed_lists(&previous, &current) {
            self.broadcast(encode::notification(kind.changed_notification(), None));
        }
    }

    /// Sends a notification to every worker's client streams.
    pub fn broadcast(&self, message: Bytes) {
        for w in self.workers.borrow().iter() {
            let _ = w.try_send(WorkerMsg::Notify(message.clone()));
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

/// Schedules a refresh when a downstream says one of its lists changed.
fn on_downstream_message(tasks: &local_sync::mpsc::unbounded::Tx<Task>, slot: usize, msg: &[u8]) {
    let Ok(env) = wire::parse(msg) else { return };
    let changed = matches!(
        env.method(msg),
        Some(
            wire::method::TOOLS_LIST_CHANGED
                | wire::method::PROMPTS_LIST_CHANGED
                | wire::method::RESOURCES_LIST_CHANGED
        )
    );
    if changed {
        let _ = tasks.send(Task::Refresh(slot));
    }
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
fn jitter(d: Duration) -> Duration {
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
