//! Server slots: the control thread's table of downstream servers and their life cycle.
//!
//! A slot number identifies one server instance for the whole process lifetime and is never
//! reused (worker pools and per-core stats are indexed by it). States ([`SlotState`]): a reload
//! adds `Pending` slots for new or changed servers and starts them; its [`Control::commit`] makes
//! them `Live` in one snapshot store and turns the slots of removed or replaced servers `Retired`;
//! [`Control::close_retired`] drains a retired slot and closes it. A reload that fails
//! [`Control::discard`]s its pending slots. Startup servers begin `Live`.
//!
//! Invariants: only `Live` slots are in a published snapshot, in config order; no `RefCell` borrow
//! is held across an `.await`.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::control::{Control, MIN_BACKOFF};
use super::lanes::{self, Lane};
use crate::catalog::{ListKind, ServerLists, Snapshot};
use crate::config::diff::Current;
use crate::config::{GatewayConfig, ServerConfig, Transport};
use crate::session::downstream::{MuxChannel, ServerLink};
use crate::upstream::child;
use crate::upstream::route::end_session;

/// How often a retiring server is checked for calls still in flight.
const DRAIN_POLL: Duration = Duration::from_millis(10);
/// The least time a retiring child or SSE session is kept after the commit: a request that loaded
/// the previous snapshot just before it may not have reached the server's channel yet.
const DRAIN_GRACE: Duration = Duration::from_millis(100);

/// Where a slot stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Being started by a reload that has not committed (in no snapshot yet).
    Pending,
    /// In the configuration being served.
    Live,
    /// Removed or replaced by a reload: in no new snapshot; drained, then closed.
    Retired,
}

/// One server slot's control-side state.
pub struct Slot {
    /// The server, as every worker sees it.
    pub(super) link: Arc<ServerLink>,
    pub(super) state: SlotState,
    /// Its lists as last fetched.
    pub(super) lists: Option<Arc<ServerLists>>,
    /// The next reconnect delay.
    pub(super) backoff: Duration,
    /// When it last came up (the crash-loop breaker resets the backoff after a stable run).
    pub(super) up_since: Option<Instant>,
    /// Fires when its child or SSE session ends (taken by whoever terminates it).
    pub(super) exits: Option<async_channel::Receiver<String>>,
    /// A stateless stdio server's children, one per worker (`super::lanes`); empty otherwise.
    pub(super) lanes: Vec<Lane>,
    /// Closed when the slot is retired or discarded: ends its notification watch.
    pub(super) stop: async_channel::Sender<()>,
    pub(super) stopped: async_channel::Receiver<()>,
    /// Signalled when the URIs clients subscribe to on this (modern) server change: its listen
    /// stream reopens with the new set.
    pub(super) relisten: (async_channel::Sender<()>, async_channel::Receiver<()>),
}

impl Slot {
    /// A slot for `link`, not connected yet.
    pub fn new(link: Arc<ServerLink>, state: SlotState) -> Slot {
        let (stop, stopped) = async_channel::bounded(1);
        Slot {
            link,
            state,
            lists: None,
            backoff: MIN_BACKOFF,
            up_since: None,
            exits: None,
            lanes: Vec::new(),
            stop,
            stopped,
            relisten: async_channel::unbounded(),
        }
    }
}

impl Control {
    /// The servers being served, in config order.
    pub fn servers(&self) -> Vec<Arc<ServerLink>> {
        let slots = self.slots.borrow();
        self.order
            .borrow()
            .iter()
            .filter_map(|s| slots.get(s).map(|x| x.link.clone()))
            .collect()
    }

    /// The link in `slot`, whatever its state (`None` once closed or discarded).
    pub fn link(&self, slot: usize) -> Option<Arc<ServerLink>> {
        self.slots.borrow().get(&slot).map(|s| s.link.clone())
    }

    /// The state of `slot` (`None` once closed or discarded).
    pub fn slot_state(&self, slot: usize) -> Option<SlotState> {
        self.slots.borrow().get(&slot).map(|s| s.state)
    }

    /// Runs `f` on the slot's state, if the slot still exists (never across an `.await`).
    pub(super) fn with_slot<R>(&self, slot: usize, f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
        self.slots.borrow_mut().get_mut(&slot).map(f)
    }

    /// The servers being served, as the reload diff sees them.
    pub(super) fn current(&self) -> Vec<Current> {
        self.servers()
            .iter()
            .map(|l| Current {
                name: l.config.name.clone(),
                hash: l.config.config_hash(),
                slot: l.slot,
            })
            .collect()
    }

    /// Adds a `Pending` slot (a fresh slot number) for a server the reload is about to start.
    pub(super) fn add_pending(&self, config: Arc<ServerConfig>) -> Arc<ServerLink> {
        let slot = self.next_slot.get();
        self.next_slot.set(slot + 1);
        let link = Arc::new(ServerLink::new(slot, config));
        self.slots
            .borrow_mut()
            .insert(slot, Slot::new(link.clone(), SlotState::Pending));
        link
    }

    /// The commit: `order` (live and pending slots, in the new config order) becomes the served
    /// set with `gateway` in force, in one snapshot store. Live slots left out become `Retired`
    /// (their notification watch stops at once). Returns the lists whose content changed and the
    /// retired slots.
    pub fn commit(
        &self,
        order: Vec<usize>,
        gateway: Arc<GatewayConfig>,
    ) -> (Vec<ListKind>, Vec<usize>) {
        let previous = self.order.replace(order.clone());
        let retired: Vec<usize> = previous
            .into_iter()
            .filter(|s| !order.contains(s))
            .collect();
        {
            let mut slots = self.slots.borrow_mut();
            for s in &order {
                if let Some(x) = slots.get_mut(s) {
                    x.state = SlotState::Live;
                }
            }
            for s in &retired {
                if let Some(x) = slots.get_mut(s) {
                    x.state = SlotState::Retired;
                    x.stop.close();
                }
            }
        }
        *self.gateway.borrow_mut() = gateway;
        let changed = self.publish();
        self.warm_workers();
        (changed, retired)
    }

    /// Stops every stdio child and SSE session, draining ones included (shutdown).
    pub async fn stop_children(&self) {
        let running: Vec<_> = self
            .slots
            .borrow_mut()
            .values_mut()
            .flat_map(take_children)
            .collect();
        // All children stop at once: shutdown takes one grace period, not one per server.
        terminate_all(running).await;
    }

    /// Forgets a `Pending` slot of a reload that failed, stopping whatever was started for it.
    pub(super) fn discard(&self, slot: usize) {
        let Some(mut s) = self.slots.borrow_mut().remove(&slot) else {
            return;
        };
        s.stop.close();
        s.link.mark_down("reload abandoned");
        for (child, exited) in take_children(&mut s) {
            monoio::spawn(async move { child::terminate(&child, &exited).await });
        }
        self.pools.retain(|l| l.slot != slot);
    }

    /// Drains a `Retired` slot and closes it: waits (until `deadline`) for the calls still using
    /// its child or SSE session, then terminates it. A plain HTTP server's session is ended with a
    /// `DELETE` once no request holds `previous` (the snapshot the reload replaced) any more, or at
    /// the deadline; workers drop its idle pooled connections when told to warm.
    pub async fn close_retired(&self, slot: usize, deadline: Instant, previous: Weak<Snapshot>) {
        let Some(link) = self.link(slot) else { return };
        if link.mux.load().is_none() && link.config.transport == Transport::Http {
            while previous.strong_count() > 0 && Instant::now() < deadline {
                monoio::time::sleep(DRAIN_POLL).await;
            }
            match end_session(&self.pools.get(&link), &link).await {
                Ok(Some(status)) => log::info!(
                    "server '{}' (slot {slot}): session ended (DELETE answered {status})",
                    link.name
                ),
                Ok(None) => {}
                Err(e) => log::info!(
                    "server '{}' (slot {slot}): ending its session failed: {e}",
                    link.name
                ),
            }
        }
        let channels = link.channels();
        if !channels.is_empty() {
            let grace = deadline.saturating_duration_since(Instant::now());
            monoio::time::sleep(DRAIN_GRACE.min(grace)).await;
            // Calls in flight hold a channel (their route); at rest only the link and `channels` do.
            let busy = || {
                channels
                    .iter()
                    .any(|c| Arc::strong_count(c) > link.own_refs(c) + 1)
            };
            while busy() && Instant::now() < deadline {
                monoio::time::sleep(DRAIN_POLL).await;
            }
            if busy() {
                log::warn!(
                    "server '{}': calls still in flight at the drain timeout; closing anyway",
                    link.name
                );
            }
        }
        drop(channels);
        let children = self.with_slot(slot, take_children);
        terminate_all(children.unwrap_or_default()).await;
        self.pools.retain(|l| l.slot != slot);
        self.slots.borrow_mut().remove(&slot);
        log::info!("server '{}' (slot {slot}) closed after reload", link.name);
    }
}

/// Takes every running child of a slot out of its link (its shared child or SSE session, or its
/// lanes), with what fires on each one's exit; the caller terminates them.
fn take_children(s: &mut Slot) -> Vec<(Arc<MuxChannel>, async_channel::Receiver<String>)> {
    let shared = s.link.mux.swap(None).zip(s.exits.take());
    lanes::take(s).into_iter().chain(shared).collect()
}

/// Terminates `children` all at once and waits until every one is gone.
async fn terminate_all(children: Vec<(Arc<MuxChannel>, async_channel::Receiver<String>)>) {
    let stopping: Vec<_> = children
        .into_iter()
        .map(|(child, exited)| {
            monoio::spawn(async move { child::terminate(&child, &exited).await })
        })
        .collect();
    for s in stopping {
        s.await;
    }
}
