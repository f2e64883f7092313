//! Experimental tasks (MCP 2025-11-25): the gateway's own task ids and who owns each task.
//!
//! A downstream names its tasks with its own `taskId`, unique only on that server, and one
//! downstream session is shared by every front session. So the gateway never shows a downstream's
//! task id to a client: it hands out a sealed id naming (server slot, front session nonce, the
//! downstream's raw `taskId` token). `tasks/get|result|cancel` open it, check the session, and send
//! the downstream's own id to the right server; a forged id, or another session's, opens to
//! nothing the caller may use.
//!
//! Key types: [`Tasks`] (the codec plus the [`Book`]), [`TaskRef`] (what a sealed id stands for).
//!
//! The book records (slot, downstream task id) → (session, expiry) when a task is created, so that
//! `tasks/list` (a fan-out to the servers, which list every task of the shared downstream session)
//! keeps only the caller's tasks, and `notifications/tasks/status` reaches the owning session only.
//! It is bounded ([`MAX_TASKS`], oldest out first) and entries expire with the task's `ttl`
//! (clamped). It sits behind a mutex: it is touched only when a task is created, listed, or
//! reports its status, never on a plain call.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::seal::{SealError, Sealer};

/// Tasks the book remembers at most (the oldest are forgotten first).
pub const MAX_TASKS: usize = 64 * 1024;
/// How long a task is remembered when its server gives no `ttl`.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(3600);
/// The longest a task is remembered, whatever its `ttl`.
pub const MAX_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Largest downstream task id carried (a JSON string token; real ids are short).
pub const MAX_TASK_ID: usize = 256;

/// What a sealed gateway task id stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    /// The server's slot.
    pub slot: usize,
    /// The nonce of the front session that created the task.
    pub session: u64,
    /// The downstream's own `taskId`, as its raw JSON string token (quotes included).
    pub downstream: Bytes,
}

/// A task the book remembers: its owner, until when, and the sealed id its owner was given.
struct Entry {
    session: u64,
    expires: Instant,
    token: Bytes,
}

/// Owners of the tasks created through the gateway, bounded and expiring.
#[derive(Default)]
pub struct Book {
    owners: HashMap<(usize, Bytes), Entry>,
    order: VecDeque<((usize, Bytes), Instant)>,
}

impl Book {
    fn record(&mut self, key: (usize, Bytes), entry: Entry, now: Instant) {
        while let Some((k, at)) = self.order.front() {
            if *at > now && self.order.len() < MAX_TASKS {
                break;
            }
            if self.owners.get(k).is_some_and(|e| e.expires == *at) {
                self.owners.remove(k);
            }
            self.order.pop_front();
        }
        self.order.push_back((key.clone(), entry.expires));
        self.owners.insert(key, entry);
    }

    fn get(&self, key: &(usize, Bytes), now: Instant) -> Option<&Entry> {
        self.owners.get(key).filter(|e| e.expires > now)
    }
}

/// Seals task ids and keeps the book of owners.
pub struct Tasks {
    sealer: Sealer,
    book: Mutex<Book>,
}

impl Tasks {
    /// A codec with a fresh random key and an empty book.
    pub fn new() -> Result<Self, SealError> {
        Ok(Tasks {
            sealer: Sealer::random(b"ringgate/task-id/v1")?,
            book: Mutex::new(Book::default()),
        })
    }

    /// The JSON string token (quotes included) the client sees for a downstream task id.
    pub fn seal(&self, slot: usize, session: u64, downstream: &[u8]) -> Option<Bytes> {
        if downstream.len() > MAX_TASK_ID || !downstream.starts_with(b"\"") {
            return None;
        }
        let mut raw = Vec::with_capacity(12 + downstream.len());
        raw.extend_from_slice(&(slot as u32).to_le_bytes());
        raw.extend_from_slice(&session.to_le_bytes());
        raw.extend_from_slice(downstream);
        let token = self.sealer.seal(&raw).ok()?;
        Some(Bytes::from(format!("\"{token}\"")))
    }

    /// What a sealed id (the string's content) stands for; `None` for anything not ours.
    pub fn open(&self, content: &[u8]) -> Option<TaskRef> {
        let raw = self.sealer.open(content).ok()?;
        let slot = u32::from_le_bytes(raw.get(..4)?.try_into().ok()?) as usize;
        let session = u64::from_le_bytes(raw.get(4..12)?.try_into().ok()?);
        Some(TaskRef {
            slot,
            session,
            downstream: Bytes::copy_from_slice(raw.get(12..)?),
        })
    }

    /// A task `session` just created on `slot`: seals its id and records the owner for `ttl`
    /// (`None`: [`DEFAULT_RETENTION`]). Returns the sealed id the client is given.
    pub fn create(
        &self,
        slot: usize,
        downstream: &[u8],
        session: u64,
        ttl: Option<Duration>,
    ) -> Option<Bytes> {
        let token = self.seal(slot, session, downstream)?;
        let now = Instant::now();
        let keep = ttl.unwrap_or(DEFAULT_RETENTION).min(MAX_RETENTION);
        let entry = Entry {
            session,
            expires: now + keep,
            token: token.clone(),
        };
        if let Ok(mut book) = self.book.lock() {
            book.record((slot, Bytes::copy_from_slice(downstream)), entry, now);
        }
        Some(token)
    }

    /// The sealed id `session` knows a downstream task by: the one it was given at creation
    /// (ids stay stable), else a fresh seal.
    pub fn token(&self, slot: usize, session: u64, downstream: &[u8]) -> Option<Bytes> {
        let key = (slot, Bytes::copy_from_slice(downstream));
        let known = self.book.lock().ok().and_then(|book| {
            book.get(&key, Instant::now())
                .filter(|e| e.session == session)
                .map(|e| e.token.clone())
        });
        known.or_else(|| self.seal(slot, session, downstream))
    }

    /// The session that created a downstream task, if the gateway remembers it.
    pub fn owner(&self, slot: usize, downstream: &[u8]) -> Option<u64> {
        let key = (slot, Bytes::copy_from_slice(downstream));
        let book = self.book.lock().ok()?;
        book.get(&key, Instant::now()).map(|e| e.session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_ids_round_trip_and_forgeries_do_not_open() {
        let t = Tasks::new().unwrap();
        let id = t.seal(2, 77, b"\"task-1\"").unwrap();
        let got = t.open(&id[1..id.len() - 1]).unwrap();
        assert_eq!(
            got,
            TaskRef {
                slot: 2,
                session: 77,
                downstream: Bytes::from_static(b"\"task-1\"")
            }
        );
        assert!(t.open(b"k1.AAAA").is_none());
        assert!(t.seal(0, 1, b"42").is_none(), "task ids are strings");
        let other = Tasks::new().unwrap();
        assert!(
            other.open(&id[1..id.len() - 1]).is_none(),
            "another key opens nothing"
        );
    }

    #[test]
    fn the_book_knows_owners_until_expiry_and_stays_bounded() {
        let t = Tasks::new().unwrap();
        let given = t.create(1, b"\"a\"", 5, None).unwrap();
        assert_eq!(t.owner(1, b"\"a\""), Some(5));
        assert_eq!(t.owner(2, b"\"a\""), None, "per server");
        assert_eq!(
            t.token(1, 5, b"\"a\""),
            Some(given.clone()),
            "ids stay stable"
        );
        assert_ne!(
            t.token(1, 6, b"\"a\"").unwrap(),
            given,
            "another session's seal"
        );
        t.create(1, b"\"gone\"", 6, Some(Duration::ZERO));
        assert_eq!(t.owner(1, b"\"gone\""), None, "expired");
        let mut book = Book::default();
        let now = Instant::now();
        for i in 0..MAX_TASKS + 10 {
            let key = (0, Bytes::from(format!("\"{i}\"")));
            let entry = Entry {
                session: 1,
                expires: now + DEFAULT_RETENTION,
                token: Bytes::new(),
            };
            book.record(key, entry, now);
        }
        assert!(book.owners.len() <= MAX_TASKS && book.order.len() <= MAX_TASKS);
        assert!(book.get(&(0, Bytes::from_static(b"\"0\"")), now).is_none());
        let last = format!("\"{}\"", MAX_TASKS + 9);
        assert!(book.get(&(0, Bytes::from(last)), now).is_some());
    }
}
