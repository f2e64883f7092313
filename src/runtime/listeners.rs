//! Listener moves of a hot reload: `gateway.listen` and `gateway.admin_listen` applied live.
//!
//! Key types: [`Listening`] (the addresses served now), [`Prepared`] (listeners a reload bound but
//! does not serve yet). A reload's prepare step binds the new listeners ([`Control::bind_moved`]):
//! for the front, one `SO_REUSEPORT` listener per worker with an exclusive first bind, as at
//! startup (`transport::listener::bind_group`); for the admin endpoint, one plain listener. Only
//! when every bind succeeded and the reload commits ([`Control::serve_moved`]) does each worker get
//! its new listener (`WorkerMsg::Listen`) and drop its old one, and the admin accept loop move.
//!
//! Invariants: the old listeners keep accepting until the new ones are bound, so a failed bind
//! leaves everything serving as it was (the reload fails with [`ReloadError::Bind`]). Dropping a
//! listener only stops accepting: connections already accepted on it stay open and are served to
//! their end. Front TLS settings are read per accepted connection, so they apply on the new port.
//! Over the stdio front there is no front listener: a `listen` change is recorded, nothing bound.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::rc::Rc;

use super::control::Control;
use super::reload::ReloadError;
use super::{admin, WorkerMsg};
use crate::config::GatewayConfig;
use crate::transport::listener::{bind_group, bind_single};

/// The addresses the gateway serves on now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listening {
    /// The MCP front (`None` over the stdio front).
    pub front: Option<SocketAddr>,
    /// The admin endpoint (`None` when it could not be bound over the stdio front).
    pub admin: Option<SocketAddr>,
}

/// Listeners bound by a reload, not yet serving.
#[derive(Default)]
pub struct Prepared {
    /// One listener per worker, in worker order.
    front: Vec<StdListener>,
    admin: Option<StdListener>,
}

impl Control {
    /// Binds the listeners whose address the new config changes (nothing is served on them yet).
    pub(super) fn bind_moved(
        &self,
        old: &GatewayConfig,
        new: &GatewayConfig,
    ) -> Result<Prepared, ReloadError> {
        let mut prepared = Prepared::default();
        let has_front = self.listening.get().front.is_some();
        if old.listen != new.listen && has_front {
            let workers = self.workers.borrow().len();
            prepared.front = bind_group(new.listen, workers)
                .map_err(|e| ReloadError::Bind(format!("gateway.listen {}: {e}", new.listen)))?;
        }
        if old.admin_listen != new.admin_listen {
            let l = bind_single(new.admin_listen).map_err(|e| {
                ReloadError::Bind(format!("gateway.admin_listen {}: {e}", new.admin_listen))
            })?;
            prepared.admin = Some(l);
        }
        Ok(prepared)
    }

    /// Serves the prepared listeners and stops accepting on the ones they replace.
    pub(super) fn serve_moved(self: &Rc<Self>, prepared: Prepared) {
        let mut now = self.listening.get();
        if let Some(addr) = prepared.front.first().and_then(|l| l.local_addr().ok()) {
            let workers = self.workers.borrow().clone();
            for (w, l) in workers.iter().zip(prepared.front) {
                let _ = w.try_send(WorkerMsg::Listen(l));
            }
            log::info!("front listener moved to {addr}");
            now.front = Some(addr);
        }
        if let Some(l) = prepared.admin {
            let addr = l.local_addr().ok();
            self.start_admin(l);
            log::info!("admin listener moved to {addr:?}");
            now.admin = addr;
        }
        self.listening.set(now);
    }

    /// Serves the admin endpoint on `listener`; an admin listener served before stops accepting
    /// (its open connections are served to their end).
    pub(super) fn start_admin(self: &Rc<Self>, listener: StdListener) {
        match monoio::net::TcpListener::from_std(listener) {
            Ok(l) => {
                let (stop, stopped) = async_channel::bounded(1);
                if let Some(old) = self.admin_stop.replace(Some(stop)) {
                    old.close();
                }
                monoio::spawn(admin::serve(self.clone(), l, stopped));
            }
            Err(e) => log::error!("admin listener unusable: {e}"),
        }
    }

    /// The addresses served now.
    pub fn listening(&self) -> Listening {
        self.listening.get()
    }
}
