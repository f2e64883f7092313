//! One worker thread: a monoio runtime (io_uring, or epoll where io_uring is unavailable), its own
//! `SO_REUSEPORT` listener, its connections, pools, statistics and notification streams.
//!
//! With `[gateway.tls]` configured, each accepted connection first completes a TLS handshake (within
//! `gateway.limits.header_read_timeout_ms`) in its own task, so a slow handshake never holds the
//! accept loop. The TLS settings are read from the snapshot per connection, so a reload that
//! rotates the certificate applies to the next connection.
//!
//! The worker accepts until told to drain; then it stops accepting, closes notification streams,
//! waits for in-flight requests (bounded by `gateway.shutdown_timeout_ms`), closes its downstream
//! connections and returns. Messages from other threads arrive on its inbox ([`WorkerMsg`]).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::net::{TcpListener, TcpStream};

use super::WorkerMsg;
use crate::proxy::{Gateway, Worker};
use crate::runtime::front;
use crate::transport::listener::accept;
use crate::transport::stream::NetStream;
use crate::transport::tls;

/// How often a draining worker checks whether its in-flight requests have finished.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// Which I/O driver a runtime got.
pub fn driver_name() -> &'static str {
    if monoio::utils::detect_uring() {
        "io_uring"
    } else {
        "epoll"
    }
}

/// Runs a closure on a fresh monoio runtime (io_uring if available, else epoll) with timers.
pub fn block_on<F: std::future::Future>(fut: F) -> std::io::Result<F::Output> {
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()?;
    Ok(rt.block_on(fut))
}

/// What woke the accept loop.
enum Wake {
    Accepted(std::io::Result<(TcpStream, SocketAddr)>),
    /// A reload moved the front: accept here from now on.
    Moved(std::net::TcpListener),
    Stop,
}

/// The body of worker thread `index`.
pub async fn run(
    index: u16,
    gw: Arc<Gateway>,
    listener: std::net::TcpListener,
    inbox: async_channel::Receiver<WorkerMsg>,
) {
    let Some(mut listener) = adopt(index, listener) else {
        return;
    };
    let w = Rc::new(Worker::new(index, &gw));
    w.pools.set_worker(usize::from(index));
    warm(&w).await;
    let (stop_tx, mut stop_rx) = local_sync::oneshot::channel::<()>();
    let (moved_tx, mut moved_rx) = local_sync::mpsc::unbounded::channel();
    let inbox_task = monoio::spawn(serve_inbox(w.clone(), inbox, stop_tx, Some(moved_tx)));
    loop {
        let wake = monoio::select! {
            accepted = accept(&listener) => Wake::Accepted(accepted),
            moved = moved_rx.recv() => moved.map_or(Wake::Stop, Wake::Moved),
            _ = &mut stop_rx => Wake::Stop,
        };
        match wake {
            Wake::Accepted(Ok((stream, peer))) => {
                monoio::spawn(serve_accepted(gw.clone(), w.clone(), stream, peer));
            }
            Wake::Accepted(Err(e)) => log::warn!("worker {index}: accept failed: {e}"),
            // The old listener closes here; connections it accepted are tasks of their own.
            Wake::Moved(next) => match adopt(index, next) {
                Some(next) => listener = next,
                None => log::error!("worker {index}: keeps its previous listener"),
            },
            Wake::Stop => break,
        }
    }
    drop(listener);
    drain(&w, gw.snapshot.load().gateway.shutdown_timeout).await;
    drop(inbox_task);
    log::info!("worker {index}: stopped");
}

/// Turns a bound std listener into this runtime's, and says where the worker serves.
fn adopt(index: u16, listener: std::net::TcpListener) -> Option<TcpListener> {
    match TcpListener::from_std(listener) {
        Ok(l) => {
            let at = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
            log::info!("worker {index}: serving on {at} with {}", driver_name());
            Some(l)
        }
        Err(e) => {
            log::error!("worker {index}: cannot use listener: {e}");
            None
        }
    }
}

/// Serves one accepted connection: plain, or after the TLS handshake when the front terminates TLS.
/// A failed or timed-out handshake closes the connection (logged at debug: scanners are common).
async fn serve_accepted(gw: Arc<Gateway>, w: Rc<Worker>, stream: TcpStream, peer: SocketAddr) {
    let snap = w.snapshot();
    let stream = match &snap.gateway.tls {
        None => NetStream::Plain(stream),
        Some(front_tls) => {
            let limit = snap.gateway.limits.header_read_timeout;
            let config = front_tls.config().clone();
            match monoio::time::timeout(limit, tls::accept(stream, config)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    log::debug!("TLS handshake with {peer} failed: {}", tls::describe(&e));
                    return;
                }
                Err(_) => {
                    log::debug!("TLS handshake with {peer} timed out after {limit:?}");
                    return;
                }
            }
        }
    };
    drop(snap);
    front::serve(gw, w, stream).await;
}

/// Opens `pool_size` connections to every available server before serving, and drops the pools
/// of servers no longer in the snapshot (a reload removed or replaced them).
async fn warm(w: &Worker) {
    let snap = w.snapshot();
    w.pools
        .retain(|link| snap.servers.iter().any(|s| Arc::ptr_eq(&s.link, link)));
    for entry in snap.servers.iter().filter(|s| s.link.is_up()) {
        w.pools.get(&entry.link).warm().await;
    }
}

/// Serves a worker's inbox until shutdown (the stdio front: no listener to move).
pub(super) async fn handle_inbox(
    w: Rc<Worker>,
    inbox: async_channel::Receiver<WorkerMsg>,
    stop: local_sync::oneshot::Sender<()>,
) {
    serve_inbox(w, inbox, stop, None).await;
}

/// Serves a worker's inbox until shutdown; moved listeners go to the accept loop on `moved`.
async fn serve_inbox(
    w: Rc<Worker>,
    inbox: async_channel::Receiver<WorkerMsg>,
    stop: local_sync::oneshot::Sender<()>,
    moved: Option<local_sync::mpsc::unbounded::Tx<std::net::TcpListener>>,
) {
    while let Ok(msg) = inbox.recv().await {
        match msg {
            WorkerMsg::Notify(m) => w.streams.broadcast(&m),
            WorkerMsg::Cancel(session, id) => {
                crate::proxy::cancel_here(&w, &w.snapshot(), session, &id);
            }
            WorkerMsg::ToSession(session, m) => {
                w.streams.send_to_session(session, &m);
            }
            WorkerMsg::Scrape(reply) => {
                let mut stats = w.stats.borrow().clone();
                stats.bridge = w.bridge.stats();
                let _ = reply.try_send((stats, w.streams.len()));
            }
            WorkerMsg::Bridge(d) => w.bridge.deliver(d),
            WorkerMsg::AskSession(session, m, took) => {
                let _ = took.try_send(w.streams.send_to_one(session, &m));
            }
            WorkerMsg::Claim(slot, reply) => {
                let _ = reply.try_send(w.claimants(slot));
            }
            WorkerMsg::Warm => warm(&w).await,
            WorkerMsg::Listen(listener) => match &moved {
                Some(moved) => {
                    let _ = moved.send(listener);
                }
                None => log::debug!("worker {}: no front listener to move", w.index),
            },
            WorkerMsg::Shutdown => break,
        }
    }
    w.draining.set(true);
    let _ = stop.send(());
}

/// Stops streams, waits for in-flight requests (bounded), closes downstream connections.
pub(super) async fn drain(w: &Worker, timeout: Duration) {
    w.draining.set(true);
    w.streams.close_all();
    let deadline = Instant::now() + timeout;
    while w.inflight.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(DRAIN_POLL).await;
    }
    if w.inflight.get() > 0 {
        log::warn!(
            "worker {}: {} requests still in flight at shutdown timeout",
            w.index,
            w.inflight.get()
        );
    }
    w.pools.clear_all();
}
