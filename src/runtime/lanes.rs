//! Stateless stdio servers (`stateless = true`): one supervised child per worker ("lanes").
//!
//! The control thread spawns one child per worker for the slot ([`Control::start_lanes`]), each
//! initialized on its own, and publishes them in `ServerLink::lanes` by worker index; a worker's
//! calls go to its own child (`Route::to` → `ServerLink::lane`), over the same multiplexed channel a
//! shared child uses. The catalog comes from one child's lists (they run the same program): the
//! link's `mux` is one live lane, used by the control plane.
//!
//! Supervision is per child, as for a shared one: stderr is drained and logged with the child's
//! index (`server 'name#i'`), each exit is watched, and a dead child is restarted with its own
//! exponential backoff and jitter, with the crash-loop breaker (the backoff resets only after
//! `STABLE_UPTIME`). When one child dies its pending calls fail at once (the child transport fails
//! them) and its worker's calls go to a live sibling until it is back; the server's tools stay
//! listed. Only when every child is down is the server marked down (tools vanish, `list_changed`)
//! and reconnected as a whole. Hot reload treats the children as one server: the slot is kept,
//! replaced or retired with all of them.
//!
//! Invariants: a lane is published only after its handshake succeeded; the exit watcher holds its
//! channel weakly (strong references count calls in flight for the drain); no `RefCell` borrow is
//! held across an `.await`.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::control::{jitter, removed, Control, MAX_BACKOFF, MIN_BACKOFF, STABLE_UPTIME};
use super::slots::{Slot, SlotState};
use crate::session::downstream::{MuxChannel, ServerLink};
use crate::upstream::route::Route;
use crate::upstream::{child, handshake, UpstreamError};

/// Supervision state of one worker's child.
pub struct Lane {
    /// Fires when the child exits (taken by whoever terminates it).
    exits: Option<async_channel::Receiver<String>>,
    /// The next restart delay.
    backoff: Duration,
    /// When it last started (the crash-loop breaker).
    up_since: Option<Instant>,
    /// A start is under way (a restart and a whole-server reconnect never start it twice).
    starting: bool,
}

impl Default for Lane {
    fn default() -> Self {
        Lane {
            exits: None,
            backoff: MIN_BACKOFF,
            up_since: None,
            starting: false,
        }
    }
}

/// Takes every running child of a slot out of its link, with what fires on each one's exit (the
/// caller terminates them).
pub(super) fn take(slot: &mut Slot) -> Vec<(Arc<MuxChannel>, async_channel::Receiver<String>)> {
    let lanes = slot.link.lanes.swap(Arc::new(Vec::new()));
    if slot.link.config.stateless {
        slot.link.mux.store(None);
    }
    lanes
        .iter()
        .zip(slot.lanes.iter_mut())
        .filter_map(|(c, l)| Some((c.clone()?, l.exits.take()?)))
        .collect()
}

/// `lanes` with entry `i` set to `child`.
fn with_lane(
    lanes: &[Option<Arc<MuxChannel>>],
    i: usize,
    child: Option<Arc<MuxChannel>>,
) -> Vec<Option<Arc<MuxChannel>>> {
    let mut next = lanes.to_vec();
    if next.len() <= i {
        next.resize(i + 1, None);
    }
    next[i] = child;
    next
}

impl Control {
    /// Starts every child of a stateless server that is not running, one per worker, each
    /// initialized before it is published. Returns the one the control plane uses; fails only if
    /// no child runs (those that failed to start are retried with backoff).
    pub(super) async fn start_lanes(
        self: &Rc<Self>,
        slot: usize,
    ) -> Result<Arc<MuxChannel>, UpstreamError> {
        let link = self.link(slot).ok_or_else(removed)?;
        let count = self.workers.borrow().len().max(1);
        self.with_slot(slot, |s| s.lanes.resize_with(count, Lane::default));
        let missing: Vec<usize> = (0..count)
            .filter(|i| link.lanes.load().get(*i).is_none_or(Option::is_none))
            .collect();
        let joins: Vec<_> = missing
            .iter()
            .map(|&i| {
                let me = self.clone();
                monoio::spawn(async move { (i, me.start_lane(slot, i).await) })
            })
            .collect();
        let mut last = None;
        for j in joins {
            let (i, started) = j.await;
            if let Err(e) = started {
                log::warn!("server '{}' child #{i} did not start: {e}", link.name);
                last = Some(e);
            }
        }
        match link.mux.load_full() {
            Some(primary) => {
                for &i in &missing {
                    if link.lanes.load().get(i).is_none_or(Option::is_none) {
                        self.schedule_lane(slot, i);
                    }
                }
                Ok(primary)
            }
            None => Err(last.unwrap_or_else(|| UpstreamError::Unreachable("no child runs".into()))),
        }
    }

    /// Starts worker `i`'s child unless it runs or is being started already.
    async fn start_lane(self: &Rc<Self>, slot: usize, i: usize) -> Result<(), UpstreamError> {
        let link = self.link(slot).ok_or_else(removed)?;
        let claimed = self.with_slot(slot, |s| match s.lanes.get_mut(i) {
            Some(lane) if !lane.starting => {
                lane.starting = true;
                true
            }
            _ => false,
        });
        if claimed != Some(true) || link.lanes.load().get(i).is_some_and(Option::is_some) {
            if claimed == Some(true) {
                self.with_slot(slot, |s| s.lanes[i].starting = false);
            }
            return Ok(());
        }
        let started = self.spawn_lane(&link, i).await;
        self.with_slot(slot, |s| {
            if let Some(lane) = s.lanes.get_mut(i) {
                lane.starting = false;
            }
        });
        started
    }

    /// Spawns worker `i`'s child, initializes it and publishes it.
    async fn spawn_lane(
        self: &Rc<Self>,
        link: &Arc<ServerLink>,
        i: usize,
    ) -> Result<(), UpstreamError> {
        let slot = link.slot;
        let spawned = self.spawn_child(link, Some(i))?;
        let route = Route::Mux(spawned.channel.clone());
        let name = self.gateway().server_name.clone();
        let initialized = handshake::initialize(&route, link, &name, self.limits()).await;
        // A slot retired or dropped meanwhile gets no new child.
        let gone = matches!(self.slot_state(slot), None | Some(SlotState::Retired));
        if let Err(e) = initialized {
            child::terminate(&spawned.channel, &spawned.exited).await;
            return Err(e);
        }
        if gone {
            child::terminate(&spawned.channel, &spawned.exited).await;
            return Err(removed());
        }
        self.adopt_lane(link, i, spawned.channel, spawned.exited);
        Ok(())
    }

    /// Publishes worker `i`'s child and watches for its exit.
    fn adopt_lane(
        self: &Rc<Self>,
        link: &Arc<ServerLink>,
        i: usize,
        channel: Arc<MuxChannel>,
        exited: async_channel::Receiver<String>,
    ) {
        let slot = link.slot;
        let next = with_lane(&link.lanes.load(), i, Some(channel.clone()));
        link.lanes.store(Arc::new(next));
        if link.mux.load().is_none() {
            link.mux.store(Some(channel.clone()));
        }
        self.with_slot(slot, |s| {
            if let Some(lane) = s.lanes.get_mut(i) {
                lane.exits = Some(exited.clone());
                lane.up_since = Some(Instant::now());
            }
        });
        let current = move |link: &ServerLink| link.lanes.load().get(i).and_then(Option::clone);
        self.watch_exit(
            slot,
            &channel,
            exited,
            current,
            move |me, link, current, why| me.lane_exited(link, i, &current, &why),
        );
    }

    /// Worker `i`'s child exited: its worker moves to a sibling and it is restarted, or, if it was
    /// the last one running, the server goes down.
    fn lane_exited(
        self: &Rc<Self>,
        link: &Arc<ServerLink>,
        i: usize,
        gone: &Arc<MuxChannel>,
        why: &str,
    ) {
        let slot = link.slot;
        link.lanes
            .store(Arc::new(with_lane(&link.lanes.load(), i, None)));
        if link
            .mux
            .load()
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(m, gone))
        {
            link.mux.store(link.lane(i));
        }
        gone.tx.close();
        self.with_slot(slot, |s| {
            if let Some(lane) = s.lanes.get_mut(i) {
                lane.exits = None;
                if lane
                    .up_since
                    .take()
                    .is_some_and(|t| t.elapsed() >= STABLE_UPTIME)
                {
                    lane.backoff = MIN_BACKOFF;
                }
            }
        });
        let state = self.slot_state(slot);
        if matches!(state, None | Some(SlotState::Retired)) {
            return;
        }
        if !link.is_up() {
            // Still coming up (or already down): restarted once the server is up.
            return self.schedule_lane(slot, i);
        }
        if link.mux.load().is_some() {
            log::warn!(
                "server '{}' child #{i} exited ({why}); worker {i}'s calls go to a sibling until it restarts",
                link.name
            );
            self.schedule_lane(slot, i);
            return;
        }
        self.failed(slot, why);
        if state == Some(SlotState::Live) {
            self.publish();
        }
    }

    /// Restarts worker `i`'s child after its backoff (with jitter), unless it runs again or the
    /// slot was retired. While the server is down (reconnected as a whole, which starts every
    /// child) the restart waits for another backoff.
    fn schedule_lane(self: &Rc<Self>, slot: usize, i: usize) {
        let delay = self.with_slot(slot, |s| {
            s.lanes.get_mut(i).map(|lane| {
                let d = lane.backoff;
                lane.backoff = (d * 2).min(MAX_BACKOFF);
                jitter(d)
            })
        });
        let Some(Some(delay)) = delay else { return };
        let me = self.clone();
        monoio::spawn(async move {
            monoio::time::sleep(delay).await;
            let Some(link) = me.link(slot) else { return };
            let running = link.lanes.load().get(i).is_some_and(Option::is_some);
            if running || me.slot_state(slot) == Some(SlotState::Retired) {
                return;
            }
            if !link.is_up() {
                // Down (a whole-server reconnect starts every child) or coming up: look again.
                return me.schedule_lane(slot, i);
            }
            match me.start_lane(slot, i).await {
                Ok(()) => log::info!("server '{}' child #{i} restarted", link.name),
                Err(e) => {
                    log::warn!("server '{}' child #{i} did not restart: {e}", link.name);
                    me.schedule_lane(slot, i);
                }
            }
        });
    }

    /// Terminates every child of a stateless server's slot (it went down, or is being dropped).
    pub(super) fn stop_lanes(&self, slot: usize) {
        for (child, exited) in self.with_slot(slot, take).unwrap_or_default() {
            monoio::spawn(async move { child::terminate(&child, &exited).await });
        }
    }
}
