//! Each live downstream's notification stream, kept open by the control thread: a legacy HTTP
//! server's GET stream, a modern server's `subscriptions/listen` stream (reopened with backoff
//! while the server is up and its session unchanged; at once when the subscribed URIs change).
//!
//! What arrives there belongs to no call: `list_changed` schedules a catalog refresh,
//! `resources/updated` goes to the subscribed sessions, task status to the task's session, and a
//! server request (a legacy HTTP server's `roots/list`, say) to the one client it can belong to,
//! else it is refused at once (`proxy::outside_call`), so the server never waits.

use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use super::control::{jitter, Control, Task, MAX_BACKOFF, MIN_BACKOFF};
use crate::proxy::Gateway;
use crate::session::downstream::ServerLink;
use crate::upstream::route::Route;
use crate::upstream::watch::{listen, watch, WatchEnd};
use crate::wire;

impl Control {
    /// Keeps the server's GET stream open while it is up; `list_changed` schedules a refresh.
    pub(super) fn spawn_watch(self: &Rc<Self>, slot: usize) {
        let (Some(link), Some(stop)) =
            (self.link(slot), self.with_slot(slot, |s| s.stopped.clone()))
        else {
            return;
        };
        let me = self.clone();
        monoio::spawn(async move {
            let epoch = link.session.load().as_ref().map(|s| s.epoch);
            let pool = me.pools.get(&link);
            let tasks = me.tasks.clone();
            let mut delay = MIN_BACKOFF;
            while !stop.is_closed()
                && link.is_up()
                && link.session.load().as_ref().map(|s| s.epoch) == epoch
            {
                let gw = me.gw.clone();
                let (answers, limits) = ((pool.clone(), link.clone()), me.limits());
                let notified = |msg: Bytes| {
                    if is_request(&msg) {
                        ask_outside_call(&gw, slot, msg, answers.clone(), limits);
                    } else {
                        on_downstream_message(&gw, &tasks, slot, &msg);
                    }
                };
                let end = if link.is_modern() {
                    let relisten = me.with_slot(slot, |s| s.relisten.1.clone());
                    let (Ok(route), Some(relisten)) = (Route::to(&link, &me.pools), relisten)
                    else {
                        return;
                    };
                    let uris = me.gw.subscriptions.uris(slot);
                    monoio::select! {
                        end = listen(&route, &link, me.limits(), &uris, notified) => end,
                        // The subscribed URIs changed: listen again at once with the new set.
                        _ = relisten.recv() => continue,
                        _ = stop.recv() => return,
                    }
                } else {
                    monoio::select! {
                        end = watch(&pool, me.limits(), notified) => end,
                        _ = stop.recv() => return,
                    }
                };
                match end {
                    WatchEnd::NotOffered => return,
                    WatchEnd::Ended(e) => {
                        log::debug!("server '{}': notification stream ended: {e}", link.name)
                    }
                }
                monoio::select! {
                    _ = monoio::time::sleep(jitter(delay)) => {},
                    _ = stop.recv() => return,
                }
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        });
    }
}

/// Schedules a refresh when a downstream says one of its lists changed.
pub(super) fn on_downstream_message(
    gw: &Gateway,
    tasks: &local_sync::mpsc::unbounded::Tx<Task>,
    slot: usize,
    msg: &Bytes,
) {
    let Ok(env) = wire::parse(msg) else { return };
    match env.method(msg) {
        Some(
            wire::method::TOOLS_LIST_CHANGED
            | wire::method::PROMPTS_LIST_CHANGED
            | wire::method::RESOURCES_LIST_CHANGED,
        ) => {
            let _ = tasks.send(Task::Refresh(slot));
        }
        // Only the sessions subscribed to that URI hear about it.
        Some(wire::method::RESOURCES_UPDATED) => gw.resource_updated(slot, msg),
        // Only the session that created the task hears about it (experimental tasks).
        Some(wire::method::TASKS_STATUS) => gw.task_status(slot, msg),
        // Anything else outside a call belongs to no client in particular.
        other => log::debug!("server slot {slot}: unsolicited {other:?} dropped"),
    }
}

/// Whether a message from a downstream is a request (it has a method and an id).
fn is_request(msg: &[u8]) -> bool {
    wire::parse(msg).is_ok_and(|env| env.kind == wire::Kind::Request)
}

/// A server request on a legacy HTTP server's GET stream (no call named): relayed to the one
/// client it can belong to, else refused (`proxy::outside_call`); runs as its own task.
fn ask_outside_call(
    gw: &Arc<Gateway>,
    slot: usize,
    msg: Bytes,
    (pool, link): (Rc<crate::upstream::pool::Pool>, Arc<ServerLink>),
    limits: crate::upstream::exchange::ReplyLimits,
) {
    let gw = gw.clone();
    monoio::spawn(async move {
        let answer = |a: Bytes| Route::Http(pool.clone()).send_detached(link.clone(), a, limits);
        crate::proxy::outside_call(&gw, slot, msg, answer).await;
    });
}
