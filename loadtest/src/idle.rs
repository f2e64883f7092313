//! `--idle-sessions N`: many open, idle client sessions on the gateway while the paths are measured.
//!
//! Each idle session is an `McpConn`: a keep-alive connection that did the MCP handshake
//! (`initialize` + `notifications/initialized`) and is then only held — the load test posts no read
//! or write on it until the run is over, so it costs the gateway exactly what an idle agent costs.
//! They are opened concurrently (`WINDOW` handshakes in flight) on the load thread, so 10k take
//! seconds. After the run every one is pinged, which shows whether the gateway kept them all.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::client::{McpConn, RequestTemplate, Target};

/// Handshakes in flight while opening (well under the gateway's accept backlog of 1024).
pub const WINDOW: usize = 64;
/// File descriptors kept free on each side beyond the idle sessions (reconnects, admin scrapes,
/// the gateway's pool and stdio children, the runtime's own).
pub const FD_RESERVE: u64 = 256;
/// Per-handshake and per-ping timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Outcome of a batch of handshakes or pings.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub took: Duration,
}

impl Tally {
    fn fail(&mut self, e: String) {
        self.failed += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }
}

/// Opens `n` sessions on `target`, `WINDOW` at a time; returns them and the tally.
pub async fn open(target: Rc<Target>, n: usize) -> (Vec<McpConn>, Tally) {
    struct State {
        left: usize,
        conns: Vec<McpConn>,
        tally: Tally,
    }
    let started = Instant::now();
    let state = Rc::new(RefCell::new(State {
        left: n,
        conns: Vec::with_capacity(n),
        tally: Tally::default(),
    }));
    let mut workers = Vec::with_capacity(WINDOW);
    for _ in 0..WINDOW.min(n) {
        let (state, target) = (state.clone(), target.clone());
        workers.push(monoio::spawn(async move {
            loop {
                {
                    let mut s = state.borrow_mut();
                    if s.left == 0 {
                        return;
                    }
                    s.left -= 1;
                }
                let opened = monoio::time::timeout(TIMEOUT, McpConn::open(target.clone())).await;
                let mut s = state.borrow_mut();
                match opened {
                    Ok(Ok(conn)) => {
                        s.conns.push(conn);
                        s.tally.ok += 1;
                    }
                    Ok(Err(e)) => s.tally.fail(e.to_string()),
                    Err(_) => s
                        .tally
                        .fail(format!("handshake timed out after {TIMEOUT:?}")),
                }
            }
        }));
    }
    for w in workers {
        w.await;
    }
    let state = Rc::try_unwrap(state)
        .ok()
        .expect("every opener has finished")
        .into_inner();
    let mut tally = state.tally;
    tally.took = started.elapsed();
    (state.conns, tally)
}

/// Pings every session (after the run): the ones that answer are still open and known to the
/// gateway. Returns the sessions (for the caller to close) and the tally.
pub async fn ping_all(conns: Vec<McpConn>) -> (Vec<McpConn>, Tally) {
    let started = Instant::now();
    let todo = Rc::new(RefCell::new(conns));
    let done = Rc::new(RefCell::new((Vec::new(), Tally::default())));
    let tpl = Rc::new(RequestTemplate::new("ping", None));
    let mut workers = Vec::with_capacity(WINDOW);
    for _ in 0..WINDOW {
        let (todo, done, tpl) = (todo.clone(), done.clone(), tpl.clone());
        workers.push(monoio::spawn(async move {
            loop {
                let Some(mut conn) = todo.borrow_mut().pop() else {
                    return;
                };
                let res = monoio::time::timeout(TIMEOUT, conn.call(&tpl)).await;
                let mut d = done.borrow_mut();
                match res {
                    Ok(Ok(_)) => d.1.ok += 1,
                    Ok(Err(e)) => d.1.fail(e.to_string()),
                    Err(_) => d.1.fail(format!("ping timed out after {TIMEOUT:?}")),
                }
                d.0.push(conn);
            }
        }));
    }
    for w in workers {
        w.await;
    }
    let (conns, mut tally) = Rc::try_unwrap(done)
        .ok()
        .expect("every pinger has finished")
        .into_inner();
    tally.took = started.elapsed();
    (conns, tally)
}

/// How many idle sessions fit: the smaller free descriptor count of the two processes (`limits`
/// and `open` per process, soft limit and descriptors in use), less `FD_RESERVE` on each.
pub fn fitting(limits_and_open: &[(u64, u64)]) -> u64 {
    limits_and_open
        .iter()
        .map(|&(soft, open)| soft.saturating_sub(open).saturating_sub(FD_RESERVE))
        .min()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_takes_the_tighter_side() {
        assert_eq!(
            fitting(&[(20_000, 100), (1024, 40)]),
            1024 - 40 - FD_RESERVE
        );
        assert_eq!(fitting(&[(100, 90)]), 0);
        assert_eq!(fitting(&[]), u64::MAX);
    }
}
