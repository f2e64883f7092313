//! The resource subscriptions a `subscriptions/listen` stream holds (`resourceSubscriptions`):
//! the modern replacement of `resources/subscribe`, kept in the same reference-counted table the
//! legacy sessions use (`proxy::subscriptions`), under a random key of the stream's own.
//!
//! Key type: [`Watches`]. Opening one subscribes each URI a server owns (URIs nobody owns are not
//! honoured, so the acknowledgement leaves them out); the first subscriber of a URI tells its
//! server (a legacy server gets `resources/subscribe`, a modern one has its own listen stream
//! reopened with the new set by the control thread). `notifications/resources/updated` then reach
//! the stream as they reach a legacy session (`Gateway::resource_updated` → the worker holding the
//! key). Dropping it (the client closed the stream, or the gateway shut down) withdraws every URI
//! nobody else watches, the same way.
//!
//! Perf: control-plane only (listen opens and closes); never on the call path.

use std::sync::Arc;

use bytes::Bytes;

use super::super::context::{Gateway, Report, Worker};
use super::super::subscriptions::{Edge, Subscriptions};
use crate::catalog::Snapshot;
use crate::session::downstream::ServerLink;
use crate::upstream::exchange::ReplyLimits;
use crate::upstream::route::Route;
use crate::wire::{encode, method};

/// A server some of the stream's URIs belong to, and how to reach it from this worker.
struct Owner {
    link: Arc<ServerLink>,
    route: Option<Route>,
}

/// The URIs one listen stream watches; withdrawn when dropped.
pub struct Watches {
    /// The stream's key in the subscription table and the worker's stream hub.
    pub key: u64,
    /// The honoured URIs, in the order requested.
    pub uris: Vec<String>,
    subs: Arc<Subscriptions>,
    reports: async_channel::Sender<Report>,
    owners: Vec<Owner>,
    limits: ReplyLimits,
}

/// `resources/subscribe` or `resources/unsubscribe` for `uri`, as the gateway's own request.
fn request(method_name: &str, uri: &str) -> Bytes {
    let mut params = b"{\"uri\":".to_vec();
    encode::write_json_string(&mut params, uri);
    params.push(b'}');
    encode::request(b"\"ringgate-listen\"", method_name, Some(&params))
}

impl Watches {
    /// Subscribes the stream to each requested URI that a server owns.
    pub fn open(gw: &Gateway, w: &Worker, snap: &Snapshot, requested: Vec<String>) -> Watches {
        let mut watches = Watches {
            // Random: the key shares the table and the hub with session nonces.
            key: crate::proxy::bridge::random_id(),
            uris: Vec::with_capacity(requested.len()),
            subs: gw.subscriptions.clone(),
            reports: gw.reports.clone(),
            owners: Vec::new(),
            limits: ReplyLimits {
                max_body: snap.gateway.limits.max_response_bytes,
                max_event: snap.gateway.limits.max_sse_event_bytes,
            },
        };
        for uri in requested {
            if watches.uris.contains(&uri) {
                continue;
            }
            let Some(server) = snap.resource_owner(&uri) else {
                continue;
            };
            let link = &snap.servers[server].link;
            if !watches.owners.iter().any(|o| o.link.slot == link.slot) {
                watches.owners.push(Owner {
                    link: link.clone(),
                    route: Route::to(link, &w.pools).ok(),
                });
            }
            if watches.subs.subscribe(link.slot, &uri, watches.key) == Edge::First {
                watches.tell(link.slot, method::RESOURCES_SUBSCRIBE, &uri);
            }
            watches.uris.push(uri);
        }
        watches
    }

    /// Tells server `slot` that `uri` gained its first or lost its last watcher.
    fn tell(&self, slot: usize, method_name: &str, uri: &str) {
        let Some(owner) = self.owners.iter().find(|o| o.link.slot == slot) else {
            return;
        };
        if owner.link.is_modern() {
            let _ = self
                .reports
                .try_send(Report::ResourceSubscriptions { slot });
        } else if let Some(route) = &owner.route {
            route.send_detached(owner.link.clone(), request(method_name, uri), self.limits);
        }
    }

    /// Whether `uri` is one the stream watches.
    pub fn watches(&self, uri: &str) -> bool {
        self.uris.iter().any(|u| u == uri)
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        if self.uris.is_empty() {
            return;
        }
        for (slot, uri) in self.subs.end_session(self.key) {
            self.tell(slot, method::RESOURCES_UNSUBSCRIBE, &uri);
        }
    }
}
