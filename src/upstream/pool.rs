//! Per-worker keep-alive connection pools, one per downstream server slot.
//!
//! Key types: [`WorkerPools`] (owned by one worker, `Rc`/`RefCell`, never shared across threads) and
//! [`Pool`]. A pool hands out an idle connection or opens a new one; a connection goes back only if
//! the HTTP layer says it is reusable (whole reply read, no `Connection: close`). Pools are warmed when
//! the worker starts, so the first call does not pay a TCP handshake. For `https://` servers the TLS
//! handshake is part of opening a connection ([`Pool::open`]), so it is paid when the pool is warmed
//! or grows, never on a call that finds an idle connection.
//!
//! Invariants: no borrow is held across an `.await`; the address comes from the link (resolved on
//! the control thread), so a worker never does DNS.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::UpstreamError;
use crate::session::downstream::ServerLink;
use crate::transport::http::{ClientConn, HttpLimits};
use crate::transport::stream::{tcp_connect, NetStream};
use crate::transport::tls;

/// Time allowed to open a connection to a downstream (TCP connect plus, for https, the TLS
/// handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle connections a pool may always keep, whatever `pool_size` says.
pub const MIN_IDLE_CAP: usize = 64;

/// A pooled downstream connection (plain TCP, or TLS for `https://` servers).
pub type Conn = ClientConn<NetStream>;

/// Idle connections to one server, on one worker.
pub struct Pool {
    link: Arc<ServerLink>,
    idle: RefCell<Vec<Conn>>,
    max_idle: usize,
}

impl Pool {
    fn new(link: Arc<ServerLink>) -> Self {
        // Keep what bursts opened: dropping connections a burst needed means reconnecting on the
        // call path at the next burst (measured with the load test: 100s of connects per second
        // and millisecond p99s at 5k RPS with 32 client connections and a cap of 16).
        let max_idle = (link.config.pool_size.max(1) * 16).max(MIN_IDLE_CAP);
        Pool {
            link,
            idle: RefCell::new(Vec::new()),
            max_idle,
        }
    }

    /// The link this pool serves.
    pub fn link(&self) -> &Arc<ServerLink> {
        &self.link
    }

    /// An idle connection if there is one, else a new one. The flag says whether it was pooled
    /// (a pooled connection may have been closed by the server while idle; callers retry once).
    pub async fn acquire(&self) -> Result<(Conn, bool), UpstreamError> {
        if let Some(conn) = self.idle.borrow_mut().pop() {
            return Ok((conn, true));
        }
        Ok((self.open().await?, false))
    }

    /// After an exchange on `conn` failed with `e`: when `conn` came from the pool and the server
    /// had closed it while idle (`Unreachable`), it is replaced by a fresh one, once (`pooled`
    /// turns false), and the answer is `Ok(true)`: try again. Anything else: `Ok(false)`.
    pub async fn renew(
        &self,
        conn: &mut Conn,
        pooled: &mut bool,
        e: &UpstreamError,
    ) -> Result<bool, UpstreamError> {
        if !*pooled || !matches!(e, UpstreamError::Unreachable(_)) {
            return Ok(false);
        }
        *conn = self.open().await?;
        *pooled = false;
        Ok(true)
    }

    /// Opens a fresh connection: TCP connect, then the TLS handshake for an https server (SNI and
    /// verification against the URL host, the server's shared rustls config).
    pub async fn open(&self) -> Result<Conn, UpstreamError> {
        let addr = self
            .link
            .addr
            .load_full()
            .ok_or_else(|| UpstreamError::Unreachable("address not resolved".into()))?;
        let tls = self.link.config.tls.as_ref();
        let dial = async {
            let tcp = tcp_connect(*addr)
                .await
                .map_err(|e| format!("connect {addr}: {e}"))?;
            let Some(tls) = tls else {
                return Ok(NetStream::Plain(tcp));
            };
            tls::connect(tcp, tls.config().clone(), tls.server_name.clone())
                .await
                .map_err(|e| {
                    let host = tls.server_name.to_str();
                    format!(
                        "TLS handshake with {host} ({addr}) failed: {}",
                        tls::describe(&e)
                    )
                })
        };
        match monoio::time::timeout(CONNECT_TIMEOUT, dial).await {
            Ok(Ok(stream)) => Ok(ClientConn::new(stream, HttpLimits::default())),
            Ok(Err(why)) => Err(UpstreamError::Unreachable(why)),
            Err(_) if tls.is_some() => Err(UpstreamError::Unreachable(format!(
                "connect {addr}: TCP connect or TLS handshake timed out"
            ))),
            Err(_) => Err(UpstreamError::Unreachable(format!(
                "connect {addr}: timed out"
            ))),
        }
    }

    /// Returns a connection after use; drops it unless it is reusable and the pool has room.
    pub fn release(&self, conn: Conn) {
        if conn.is_reusable() {
            let mut idle = self.idle.borrow_mut();
            if idle.len() < self.max_idle {
                idle.push(conn);
            }
        }
    }

    /// Opens connections until `pool_size` are idle (worker start). Failures are left to the call
    /// path, which reports them.
    pub async fn warm(&self) {
        let want = self.link.config.pool_size;
        while self.idle.borrow().len() < want {
            match self.open().await {
                Ok(conn) => self.idle.borrow_mut().push(conn),
                Err(_) => break,
            }
        }
    }

    /// Drops every idle connection (server marked down, or shutdown).
    pub fn clear(&self) {
        self.idle.borrow_mut().clear();
    }
}

/// All pools of one worker, indexed by server slot.
#[derive(Default)]
pub struct WorkerPools {
    pools: RefCell<Vec<Option<Rc<Pool>>>>,
    /// The owning worker's index (`None` on the control thread): picks its own child of a
    /// stateless stdio server.
    worker: std::cell::Cell<Option<usize>>,
}

impl WorkerPools {
    /// Records which worker owns these pools.
    pub fn set_worker(&self, index: usize) {
        self.worker.set(Some(index));
    }

    /// The owning worker's index, `None` on the control thread.
    pub fn worker(&self) -> Option<usize> {
        self.worker.get()
    }

    /// The pool for `link`, created on first use. A pool made for an older link in the same slot
    /// (reload replaced the server) is replaced.
    pub fn get(&self, link: &Arc<ServerLink>) -> Rc<Pool> {
        let mut pools = self.pools.borrow_mut();
        if pools.len() <= link.slot {
            pools.resize_with(link.slot + 1, || None);
        }
        match &pools[link.slot] {
            Some(p) if Arc::ptr_eq(&p.link, link) => p.clone(),
            _ => {
                let p = Rc::new(Pool::new(link.clone()));
                pools[link.slot] = Some(p.clone());
                p
            }
        }
    }

    /// Drops the pools of the links `keep` rejects (servers a reload removed or replaced); their
    /// idle connections close. Calls in flight keep their own handle on the pool until they end.
    pub fn retain(&self, keep: impl Fn(&Arc<ServerLink>) -> bool) {
        for entry in self.pools.borrow_mut().iter_mut() {
            if entry.as_ref().is_some_and(|p| !keep(&p.link)) {
                *entry = None;
            }
        }
    }

    /// Closes every idle connection (shutdown).
    pub fn clear_all(&self) {
        for p in self.pools.borrow().iter().flatten() {
            p.clear();
        }
    }
}
