//! The load: open loop at a fixed rate (coordinated-omission corrected) or closed-loop saturation,
//! over several paths interleaved in short slices.
//!
//! Open loop: request `j` is due at `t0 + j/rate`; the slice it falls in decides its path (slices
//! rotate direct → relay → gateway → ...), so every path sees the full rate during its slices and
//! slow drift of the machine hits all paths alike. A due request takes a free connection of its
//! path, or waits in the path's backlog for one; its latency runs from the *intended* time to the
//! last byte of the reply, so queueing behind a slow reply is counted, not hidden. The pacer spins
//! (yielding to the runtime between checks) because monoio timers tick in milliseconds; the
//! runtime reaps I/O completions on every turn, so the bench server and the connections sharing
//! this thread are served while it waits.
//!
//! Saturation: during a path's slice all of its connections send back to back; throughput is
//! completions over the time the slice took (including its tail).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::client::{Failure, McpConn, RequestTemplate, Target};
use crate::sys::yield_now;

/// Highest latency the histograms hold (larger values saturate): 60 s in ns.
const MAX_NS: u64 = 60_000_000_000;
/// Most slow requests kept per path for `--slow-us`.
const MAX_SLOW: usize = 10_000;

/// One intended request.
#[derive(Debug, Clone, Copy)]
struct Job {
    intended: Instant,
    record: bool,
}

/// What a path measured.
pub struct PathStats {
    /// Latency in ns (open loop: from the intended send time).
    pub hist: Histogram<u64>,
    /// Successful requests recorded.
    pub ok: u64,
    /// Failed requests recorded.
    pub failed: u64,
    /// Failed requests during the warm-up (not in `failed`, still failures).
    pub warm_failed: u64,
    /// Failures by class.
    pub failures: BTreeMap<String, u64>,
    /// The first failure seen, in full.
    pub first_failure: Option<String>,
    /// Reply bytes of the recorded successes.
    pub reply_bytes: u64,
    /// Requests scheduled while recording (open loop).
    pub offered: u64,
    /// Time this path was under recorded load.
    pub measured: Duration,
    /// Open loop: how long after the end of the schedule this path's last reply arrived (a path
    /// that keeps up finishes within one latency; one that falls behind drains its backlog here).
    pub tail: Duration,
    last_done: Option<Instant>,
    /// With `--slow-us`: (intended send time, latency ns) of recorded requests at least that slow.
    pub slow: Vec<(Instant, u64)>,
}

impl PathStats {
    fn new() -> PathStats {
        PathStats {
            hist: Histogram::new_with_bounds(1, MAX_NS, 3).expect("static histogram bounds"),
            ok: 0,
            failed: 0,
            warm_failed: 0,
            failures: BTreeMap::new(),
            first_failure: None,
            reply_bytes: 0,
            offered: 0,
            measured: Duration::ZERO,
            tail: Duration::ZERO,
            last_done: None,
            slow: Vec::new(),
        }
    }

    fn fail(&mut self, f: &Failure) {
        self.failed += 1;
        *self.failures.entry(f.class()).or_default() += 1;
        if self.first_failure.is_none() {
            self.first_failure = Some(f.to_string());
        }
    }
}

/// A connection slot: a live session, or one to reopen before its next request.
type Slot = Option<McpConn>;

/// One measured path: its target, request, connections and results.
pub struct PathRun {
    pub target: Rc<Target>,
    pub tpl: RequestTemplate,
    pub stats: RefCell<PathStats>,
    idle: RefCell<Vec<Slot>>,
    backlog: RefCell<VecDeque<Job>>,
    busy: Cell<usize>,
    timeout: Duration,
    slow_ns: u64,
}

impl PathRun {
    /// `slow` > 0 keeps the requests at least that slow for `--slow-us`.
    pub fn new(
        target: Rc<Target>,
        tpl: RequestTemplate,
        timeout: Duration,
        slow: Duration,
    ) -> Rc<PathRun> {
        Rc::new(PathRun {
            target,
            tpl,
            stats: RefCell::new(PathStats::new()),
            idle: RefCell::new(Vec::new()),
            backlog: RefCell::new(VecDeque::new()),
            busy: Cell::new(0),
            timeout,
            slow_ns: slow.as_nanos() as u64,
        })
    }

    /// Opens `n` connections, each with its MCP handshake; fails on the first error.
    pub async fn connect(&self, n: usize) -> Result<(), String> {
        for i in 0..n {
            let conn = McpConn::open(self.target.clone()).await.map_err(|e| {
                format!(
                    "{}: handshake {} of {n} with {} failed: {e}",
                    self.target.name,
                    i + 1,
                    self.target.url
                )
            })?;
            self.idle.borrow_mut().push(Some(conn));
        }
        Ok(())
    }

    /// One request outside any measurement (checks the path works before the run).
    pub async fn probe(&self) -> Result<usize, Failure> {
        let mut slot: Slot = self.idle.borrow_mut().pop().unwrap_or(None);
        let res = self.one(&mut slot).await;
        self.idle.borrow_mut().push(slot);
        res
    }

    /// Sends one request on a live connection (opening one if the slot is empty).
    async fn one(&self, slot: &mut Slot) -> Result<usize, Failure> {
        let conn = match slot {
            Some(c) => c,
            None => slot.insert(McpConn::open(self.target.clone()).await?),
        };
        let res = match monoio::time::timeout(self.timeout, conn.call(&self.tpl)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Timeout),
        };
        if !conn.is_reusable() {
            *slot = None;
        }
        res
    }

    fn record(&self, job: Job, res: Result<usize, Failure>, done: Instant) {
        let mut s = self.stats.borrow_mut();
        if !job.record {
            if let Err(f) = res {
                s.warm_failed += 1;
                if s.first_failure.is_none() {
                    s.first_failure = Some(format!("(warm-up) {f}"));
                }
            }
            return;
        }
        s.last_done = Some(done);
        match res {
            Ok(bytes) => {
                s.ok += 1;
                s.reply_bytes += bytes as u64;
                let ns = done.saturating_duration_since(job.intended).as_nanos() as u64;
                s.hist.saturating_record(ns.max(1));
                if self.slow_ns > 0 && ns >= self.slow_ns && s.slow.len() < MAX_SLOW {
                    s.slow.push((job.intended, ns));
                }
            }
            Err(f) => s.fail(&f),
        }
    }

    /// Open loop: the request intended at `job.intended` goes out now on a free connection, or
    /// waits for one.
    fn dispatch(self: &Rc<Self>, job: Job) {
        if job.record {
            self.stats.borrow_mut().offered += 1;
        }
        let slot = self.idle.borrow_mut().pop();
        match slot {
            Some(slot) => {
                self.busy.set(self.busy.get() + 1);
                monoio::spawn(self.clone().work(slot, job));
            }
            None => self.backlog.borrow_mut().push_back(job),
        }
    }

    /// Serves `job`, then the backlog, then returns the connection to the idle set.
    async fn work(self: Rc<Self>, mut slot: Slot, mut job: Job) {
        loop {
            let res = self.one(&mut slot).await;
            self.record(job, res, Instant::now());
            let next = self.backlog.borrow_mut().pop_front();
            match next {
                Some(j) => job = j,
                None => break,
            }
        }
        self.idle.borrow_mut().push(slot);
        self.busy.set(self.busy.get() - 1);
    }

    fn settled(&self) -> bool {
        self.busy.get() == 0 && self.backlog.borrow().is_empty()
    }

    /// Closed loop for one slice: every connection sends back to back until `until`.
    async fn saturate_slice(self: &Rc<Self>, until: Instant, record: bool) {
        let start = Instant::now();
        let slots: Vec<Slot> = self.idle.borrow_mut().drain(..).collect();
        let mut handles = Vec::with_capacity(slots.len());
        for mut slot in slots {
            let me = self.clone();
            handles.push(monoio::spawn(async move {
                while Instant::now() < until {
                    let began = Instant::now();
                    let res = me.one(&mut slot).await;
                    let job = Job {
                        intended: began,
                        record,
                    };
                    me.record(job, res, Instant::now());
                }
                slot
            }));
        }
        for h in handles {
            let slot = h.await;
            self.idle.borrow_mut().push(slot);
        }
        if record {
            self.stats.borrow_mut().measured += start.elapsed();
        }
    }
}

/// Slice plan: `warm` unrecorded slices then `measured` recorded ones, both multiples of the path
/// count so every path gets the same share and measurement starts with the first path.
pub struct Plan {
    pub slice: Duration,
    pub warm: u64,
    pub measured: u64,
}

impl Plan {
    pub fn new(paths: usize, slice: Duration, warmup: Duration, duration: Duration) -> Plan {
        let p = paths.max(1) as u64;
        let round_up = |d: Duration| {
            let n = (d.as_nanos() as f64 / slice.as_nanos() as f64).ceil() as u64;
            n.div_ceil(p) * p
        };
        Plan {
            slice,
            warm: round_up(warmup),
            measured: round_up(duration).max(p),
        }
    }

    /// Recorded time per path.
    pub fn per_path(&self, paths: usize) -> Duration {
        self.slice * (self.measured / paths.max(1) as u64) as u32
    }
}

/// Waits until `due`: coarse sleeps while far, then yields (spinning) for precision.
async fn wait_until(due: Instant) {
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > Duration::from_millis(3) {
            monoio::time::sleep(left - Duration::from_millis(2)).await;
        } else {
            yield_now().await;
        }
    }
}

/// Runs the open loop over `paths`; returns when every request has completed or timed out.
pub async fn run_open(paths: &[Rc<PathRun>], rate: f64, plan: &Plan, drain: Duration) {
    let n = paths.len() as u64;
    let slice_ns = plan.slice.as_nanos() as u64;
    let total = plan.warm + plan.measured;
    let interval_ns = 1e9 / rate;
    let t0 = Instant::now() + Duration::from_millis(5);
    let end = t0 + Duration::from_nanos(slice_ns * total);
    let mut j: u64 = 0;
    loop {
        let due = t0 + Duration::from_nanos((j as f64 * interval_ns) as u64);
        if due >= end {
            break;
        }
        wait_until(due).await;
        let k = (due - t0).as_nanos() as u64 / slice_ns;
        let path = &paths[(k % n) as usize];
        path.dispatch(Job {
            intended: due,
            record: k >= plan.warm,
        });
        j += 1;
    }
    let deadline = Instant::now() + drain;
    while !paths.iter().all(|p| p.settled()) && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(1)).await;
    }
    for p in paths {
        let left = p.backlog.borrow().len() + p.busy.get();
        let mut s = p.stats.borrow_mut();
        s.measured = plan.per_path(paths.len());
        s.tail = s
            .last_done
            .map_or(Duration::ZERO, |d| d.saturating_duration_since(end));
        for _ in 0..left {
            s.fail(&Failure::Timeout);
        }
    }
}

/// Runs the closed loop over `paths`, slice by slice.
pub async fn run_saturate(paths: &[Rc<PathRun>], plan: &Plan) {
    let n = paths.len() as u64;
    for k in 0..plan.warm + plan.measured {
        let path = &paths[(k % n) as usize];
        path.saturate_slice(Instant::now() + plan.slice, k >= plan.warm)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_give_each_path_equal_slices() {
        let ms = Duration::from_millis;
        let p = Plan::new(3, ms(100), ms(1000), ms(10_000));
        assert_eq!(p.warm % 3, 0);
        assert_eq!(p.measured, 102);
        assert_eq!(p.per_path(3), ms(3400));
        let p = Plan::new(3, ms(100), Duration::ZERO, ms(50));
        assert_eq!(p.warm, 0);
        assert_eq!(p.measured, 3);
    }
}
