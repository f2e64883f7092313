//! Resource subscriptions, reference-counted per downstream: the first client to subscribe to a URI
//! subscribes the gateway downstream, the last to leave unsubscribes it, and each
//! `notifications/resources/updated` goes to the sessions subscribed to that URI only.
//!
//! The table is shared by all workers behind a mutex: subscribe, unsubscribe and updates are rare
//! control-plane events, never on the tools/call path.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Sessions subscribed to each (server slot, URI).
#[derive(Default)]
pub struct Subscriptions {
    table: Mutex<HashMap<(usize, String), HashSet<u64>>>,
}

/// What a change to the table means for the downstream.
#[derive(Debug, PartialEq, Eq)]
pub enum Edge {
    /// The first subscriber: subscribe downstream.
    First,
    /// The last subscriber left: unsubscribe downstream.
    Last,
    /// Nothing to tell the downstream.
    None,
}

impl Subscriptions {
    /// Adds `session` to `uri`'s subscribers.
    pub fn subscribe(&self, slot: usize, uri: &str, session: u64) -> Edge {
        let Ok(mut t) = self.table.lock() else {
            return Edge::None;
        };
        let set = t.entry((slot, uri.to_string())).or_default();
        let first = set.is_empty();
        set.insert(session);
        if first {
            Edge::First
        } else {
            Edge::None
        }
    }

    /// Removes `session` from `uri`'s subscribers.
    pub fn unsubscribe(&self, slot: usize, uri: &str, session: u64) -> Edge {
        let Ok(mut t) = self.table.lock() else {
            return Edge::None;
        };
        let key = (slot, uri.to_string());
        let Some(set) = t.get_mut(&key) else {
            return Edge::None;
        };
        if !set.remove(&session) {
            return Edge::None;
        }
        if set.is_empty() {
            t.remove(&key);
            Edge::Last
        } else {
            Edge::None
        }
    }

    /// The sessions subscribed to `uri` on server `slot`.
    pub fn subscribers(&self, slot: usize, uri: &str) -> Vec<u64> {
        self.table
            .lock()
            .map(|t| {
                t.get(&(slot, uri.to_string()))
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    /// The URIs someone is subscribed to on server `slot` (sorted).
    pub fn uris(&self, slot: usize) -> Vec<String> {
        let mut uris: Vec<String> = self
            .table
            .lock()
            .map(|t| {
                t.keys()
                    .filter(|(s, _)| *s == slot)
                    .map(|(_, u)| u.clone())
                    .collect()
            })
            .unwrap_or_default();
        uris.sort();
        uris
    }

    /// Drops every subscription of an ended session; returns the (slot, URI)s nobody watches now.
    pub fn end_session(&self, session: u64) -> Vec<(usize, String)> {
        let Ok(mut t) = self.table.lock() else {
            return Vec::new();
        };
        let mut orphaned = Vec::new();
        t.retain(|key, set| {
            if set.remove(&session) && set.is_empty() {
                orphaned.push(key.clone());
                return false;
            }
            true
        });
        orphaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_in_subscribes_and_last_out_unsubscribes() {
        let s = Subscriptions::default();
        assert_eq!(s.subscribe(0, "u", 1), Edge::First);
        assert_eq!(s.subscribe(0, "u", 2), Edge::None);
        assert_eq!(s.subscribers(0, "u").len(), 2);
        assert_eq!(s.unsubscribe(0, "u", 1), Edge::None);
        assert_eq!(s.unsubscribe(0, "u", 1), Edge::None, "twice is a no-op");
        assert_eq!(s.unsubscribe(0, "u", 2), Edge::Last);
        assert_eq!(s.subscribe(1, "v", 3), Edge::First);
        assert_eq!(s.end_session(3), vec![(1, "v".to_string())]);
        assert!(s.subscribers(1, "v").is_empty());
    }
}
