//! Per-worker registry of open notification streams (the legacy era's GET /mcp streams).
//!
//! A client's GET stream lives on the worker that accepted its connection. Notifications for clients
//! (today: `list_changed` from the catalog; later: resource updates and server requests) arrive at each
//! worker by message and are fanned out here to the local streams, each of which is a connection task
//! draining its own channel. Nothing here is shared across threads: `Rc`/`RefCell`, no borrow is held
//! across an `.await`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use bytes::Bytes;
use local_sync::mpsc::unbounded::{channel, Rx, Tx};

/// Handle a stream's connection task holds; dropping it unregisters nothing by itself, call
/// [`StreamHub::remove`] when the stream ends.
pub struct StreamRegistration {
    /// Key to remove the stream with.
    pub key: u64,
    /// The messages (JSON-RPC notifications, encoded) to write on the stream.
    pub rx: Rx<Bytes>,
}

/// The streams open on one worker.
#[derive(Default)]
pub struct StreamHub {
    next: Cell<u64>,
    streams: RefCell<HashMap<u64, (u64, Tx<Bytes>)>>,
}

impl StreamHub {
    /// Registers a new stream for the session with nonce `session`.
    pub fn add(&self, session: u64) -> StreamRegistration {
        let key = self.next.get();
        self.next.set(key + 1);
        let (tx, rx) = channel();
        self.streams.borrow_mut().insert(key, (session, tx));
        StreamRegistration { key, rx }
    }

    /// Removes a stream that ended.
    pub fn remove(&self, key: u64) {
        self.streams.borrow_mut().remove(&key);
    }

    /// Sends `message` to every open stream; drops streams whose task has gone.
    pub fn broadcast(&self, message: &Bytes) {
        self.streams
            .borrow_mut()
            .retain(|_, (_, tx)| tx.send(message.clone()).is_ok());
    }

    /// Sends `message` to the streams of one session; returns how many received it.
    pub fn send_to_session(&self, session: u64, message: &Bytes) -> usize {
        let mut sent = 0;
        for (s, tx) in self.streams.borrow().values() {
            if *s == session && tx.send(message.clone()).is_ok() {
                sent += 1;
            }
        }
        sent
    }

    /// Sends `message` to one stream of the session (a request must reach exactly one place);
    /// whether one took it.
    pub fn send_to_one(&self, session: u64, message: &Bytes) -> bool {
        self.streams
            .borrow()
            .values()
            .any(|(s, tx)| *s == session && tx.send(message.clone()).is_ok())
    }

    /// Closes every stream's channel so their tasks end (graceful shutdown).
    pub fn close_all(&self) {
        self.streams.borrow_mut().clear();
    }

    /// Number of open streams (metrics).
    pub fn len(&self) -> usize {
        self.streams.borrow().len()
    }

    /// Whether no stream is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[monoio::test]
    async fn broadcast_reaches_every_stream_and_session_sends_one() {
        let hub = StreamHub::default();
        let mut a = hub.add(1);
        let mut b = hub.add(2);
        hub.broadcast(&Bytes::from_static(b"x"));
        assert_eq!(a.rx.recv().await.as_deref(), Some(&b"x"[..]));
        assert_eq!(b.rx.recv().await.as_deref(), Some(&b"x"[..]));
        assert_eq!(hub.send_to_session(2, &Bytes::from_static(b"y")), 1);
        assert_eq!(b.rx.recv().await.as_deref(), Some(&b"y"[..]));
        hub.remove(a.key);
        assert_eq!(hub.len(), 1);
        hub.close_all();
        assert_eq!(b.rx.recv().await, None);
    }
}
