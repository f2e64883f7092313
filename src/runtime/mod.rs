//! Process shape: the control thread, N worker threads, signals, graceful shutdown.
//!
//! [`start`] binds the listeners (so port 0 works in tests and bind errors surface at once), starts
//! the control thread and waits for its first sync with every downstream (bounded per server), then
//! starts one worker per configured core, each on its own `SO_REUSEPORT` socket. [`Running`] is the
//! handle: its addresses, [`Running::reloader`], [`Running::shutdown`] and [`Running::wait`]. [`run`]
//! adds SIGINT/SIGTERM (shutdown) and SIGHUP (hot reload, see [`reload`]); a gateway started from a
//! config file also reloads when the file changes.
//!
//! Invariants: workers share nothing mutable; they get the snapshot through `ArcSwap` and messages
//! through their inbox. Shutdown stops accepting, lets in-flight requests finish (bounded by
//! `gateway.shutdown_timeout_ms`), then closes downstream connections.

pub mod admin;
mod config_file;
pub mod control;
pub mod front;
mod lanes;
mod listeners;
pub mod reload;
mod slots;
pub mod sse_front;
pub mod stdio_front;
mod watchers;
pub mod worker;

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use arc_swap::ArcSwap;

use crate::catalog::cursor::CursorCodec;
use crate::config::Config;
use crate::proxy::Gateway;
use crate::session::downstream::ServerLink;
use crate::session::SessionCodec;
use crate::transport::listener::{bind_group, bind_single};

pub use crate::proxy::WorkerMsg;

/// A running gateway.
pub struct Running {
    /// Where the MCP endpoint listens at startup (a reload may move it: see
    /// `reload::ReloadReport::listening`).
    pub listen: SocketAddr,
    /// Where the admin endpoints listen at startup (a reload may move them too).
    pub admin: SocketAddr,
    /// Shared state (tests inspect the snapshot).
    pub gateway: Arc<Gateway>,
    inboxes: Vec<async_channel::Sender<WorkerMsg>>,
    reports: async_channel::Sender<crate::proxy::Report>,
    reloader: reload::Reloader,
    threads: Vec<JoinHandle<()>>,
}

impl Running {
    /// Asks every thread to stop (returns at once; see [`Running::wait`]).
    pub fn shutdown(&self) {
        self.reloader.close();
        for inbox in &self.inboxes {
            let _ = inbox.try_send(WorkerMsg::Shutdown);
        }
        self.reports.close();
    }

    /// The handle that queues hot reloads (what `POST /v1/reload`, SIGHUP and the file watch use).
    pub fn reloader(&self) -> reload::Reloader {
        self.reloader.clone()
    }

    /// Waits for every thread to finish.
    pub fn wait(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Which front door a gateway process serves.
pub enum Front {
    /// Streamable HTTP on `gateway.listen`, one worker per configured core.
    Http,
    /// MCP over this process's stdin/stdout (one client), for clients that launch servers.
    Stdio,
}

/// Starts the gateway for `config` with the HTTP front and returns once it serves.
pub fn start(config: Config) -> io::Result<Running> {
    start_with(config, Front::Http)
}

/// Starts the gateway with the given front and returns once it serves.
pub fn start_with(config: Config, front: Front) -> io::Result<Running> {
    let gateway_cfg = Arc::new(config.gateway.clone());
    let workers = match front {
        Front::Http => gateway_cfg.workers.max(1),
        Front::Stdio => 1,
    };
    let mut group = match front {
        Front::Http => bind_group(gateway_cfg.listen, workers)?,
        Front::Stdio => Vec::new(),
    };
    let listen = match group.first() {
        Some(l) => l.local_addr()?,
        None => gateway_cfg.listen,
    };
    let admin_listener = bind_admin(gateway_cfg.admin_listen, &front)?;
    let admin = admin_listener
        .as_ref()
        .map_or(Ok(gateway_cfg.admin_listen), |l| l.local_addr())?;
    let links: Vec<Arc<ServerLink>> = config
        .servers
        .iter()
        .enumerate()
        .map(|(slot, s)| Arc::new(ServerLink::new(slot, Arc::new(s.clone()))))
        .collect();
    let no_random = |_| io::Error::other("no system randomness");
    let cursors = Arc::new(CursorCodec::new().map_err(no_random)?);
    let snapshot = control::initial_snapshot(gateway_cfg.clone(), &links, cursors.clone());
    let (reports_tx, reports_rx) = async_channel::unbounded();
    let gw = Arc::new(Gateway {
        snapshot: Arc::new(ArcSwap::from_pointee(snapshot)),
        sessions: SessionCodec::new().map_err(no_random)?,
        relay_ids: crate::session::relay_ids::RelayIds::new().map_err(no_random)?,
        tasks: crate::session::tasks::Tasks::new().map_err(no_random)?,
        subscriptions: Default::default(),
        reports: reports_tx.clone(),
        workers: std::sync::OnceLock::new(),
    });
    let (inbox_tx, inbox_rx): (Vec<_>, Vec<_>) =
        (0..workers).map(|_| async_channel::unbounded()).unzip();
    let _ = gw.workers.set(inbox_tx.clone());
    let (synced_tx, synced_rx) = mpsc::channel();
    let (reloader, reloads) = reload::Reloader::channel();
    let mut threads = Vec::new();
    {
        let (gw, gateway_cfg, inboxes) = (gw.clone(), gateway_cfg.clone(), inbox_tx.clone());
        let reload = ControlReload {
            status: reload::ReloadStatus::new(config.source.clone()),
            reloader: reloader.clone(),
            requests: reloads,
            listening: listeners::Listening {
                front: (!group.is_empty()).then_some(listen),
                admin: admin_listener.as_ref().map(|_| admin),
            },
        };
        threads.push(spawn("ringgate-control", move || {
            control_thread(
                gw,
                gateway_cfg,
                links,
                cursors,
                inboxes,
                admin_listener,
                reports_rx,
                synced_tx,
                reload,
            )
        })?);
    }
    // The first sync is bounded by the per-server connect budget; servers that fail it are down.
    let _ = synced_rx.recv();
    let mut group = group.drain(..);
    for (index, inbox) in inbox_rx.into_iter().enumerate() {
        let gw = gw.clone();
        let thread = match group.next() {
            Some(listener) => spawn(&format!("ringgate-w{index}"), move || {
                if let Err(e) = worker::block_on(worker::run(index as u16, gw, listener, inbox)) {
                    log::error!("worker {index}: runtime failed: {e}");
                }
            })?,
            None => {
                let reports = reports_tx.clone();
                spawn("ringgate-stdio", move || {
                    if let Err(e) = worker::block_on(stdio_front::run(gw, inbox)) {
                        log::error!("stdio front: runtime failed: {e}");
                    }
                    // stdin closed: the whole gateway stops with its one client.
                    reports.close();
                })?
            }
        };
        threads.push(thread);
    }
    Ok(Running {
        listen,
        admin,
        gateway: gw,
        inboxes: inbox_tx,
        reports: reports_tx,
        reloader,
        threads,
    })
}

/// The admin listener. Over stdio the gateway is launched by a client, possibly several times, so
/// a busy admin port is a warning there, not a reason to fail.
fn bind_admin(addr: SocketAddr, front: &Front) -> io::Result<Option<StdListener>> {
    match (bind_single(addr), front) {
        (Ok(l), _) => Ok(Some(l)),
        (Err(e), Front::Stdio) => {
            log::warn!("admin listener {addr} unavailable ({e}); continuing without it");
            Ok(None)
        }
        (Err(e), Front::Http) => Err(io::Error::new(
            e.kind(),
            format!("admin listener {addr}: {e}"),
        )),
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.to_string()).spawn(f)
}

/// What the control thread needs for hot reload.
struct ControlReload {
    status: reload::ReloadStatus,
    reloader: reload::Reloader,
    requests: async_channel::Receiver<reload::ReloadRequest>,
    listening: listeners::Listening,
}

#[allow(clippy::too_many_arguments)]
fn control_thread(
    gw: Arc<Gateway>,
    gateway_cfg: Arc<crate::config::GatewayConfig>,
    links: Vec<Arc<ServerLink>>,
    cursors: Arc<CursorCodec>,
    inboxes: Vec<async_channel::Sender<WorkerMsg>>,
    admin_listener: Option<StdListener>,
    reports: async_channel::Receiver<crate::proxy::Report>,
    synced: mpsc::Sender<()>,
    reload: ControlReload,
) {
    let body = async move {
        let (tasks_tx, tasks_rx) = control::task_queue();
        let source = reload.status.source.clone();
        let control = Rc::new(control::Control::new(
            gw,
            gateway_cfg,
            links,
            cursors,
            tasks_tx,
            (reload.status, reload.reloader),
        ));
        *control.workers.borrow_mut() = inboxes;
        control.listening.set(reload.listening);
        control.initial_sync().await;
        let _ = synced.send(());
        // Reloads start once the startup config is in force; one task applies them in order.
        monoio::spawn(reload::serve(control.clone(), reload.requests));
        if let Some(path) = source {
            monoio::spawn(config_file::watch_file(control.clone(), path));
        }
        if let Some(l) = admin_listener {
            control.start_admin(l);
        }
        control.run(reports, tasks_rx).await;
    };
    if let Err(e) = worker::block_on(body) {
        log::error!("control thread: runtime failed: {e}");
    }
}

/// Queues a reload of the config file on every SIGHUP, until the returned handle is closed.
pub fn reload_on_sighup(reloader: reload::Reloader) -> io::Result<signal_hook::iterator::Handle> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    let handle = signals.handle();
    spawn("ringgate-sighup", move || {
        for _ in signals.forever() {
            log::info!("SIGHUP: reloading the config file");
            if !reloader.trigger(reload::ReloadSource::File, reload::Trigger::Signal) {
                break;
            }
        }
    })?;
    Ok(handle)
}

/// Serves MCP on stdin/stdout until stdin closes (or SIGINT/SIGTERM), then shuts down. SIGHUP
/// reloads the config file.
pub fn run_stdio(config: Config) -> io::Result<()> {
    let running = start_with(config, Front::Stdio)?;
    let sighup = reload_on_sighup(running.reloader())?;
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let handle = signals.handle();
    let inboxes = running.inboxes.clone();
    let reports = running.reports.clone();
    std::thread::spawn(move || {
        let mut signals = signals;
        if signals.forever().next().is_some() {
            for inbox in &inboxes {
                let _ = inbox.try_send(WorkerMsg::Shutdown);
            }
            reports.close();
        }
    });
    running.wait();
    handle.close();
    sighup.close();
    Ok(())
}

/// Runs the gateway until SIGINT or SIGTERM, then shuts down gracefully. SIGHUP reloads the
/// config file.
pub fn run(config: Config) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    // Registered before anything starts: a SIGHUP during startup must not kill the process.
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let running = start(config)?;
    log::info!(
        "ringgate listening on http://{}/mcp (admin on http://{})",
        running.listen,
        running.admin
    );
    let reloader = running.reloader();
    for sig in signals.forever() {
        if sig == SIGHUP {
            log::info!("SIGHUP: reloading the config file");
            reloader.trigger(reload::ReloadSource::File, reload::Trigger::Signal);
            continue;
        }
        log::info!("signal {sig}: shutting down");
        break;
    }
    running.shutdown();
    running.wait();
    Ok(())
}
