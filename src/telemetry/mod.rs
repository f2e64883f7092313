//! Per-core statistics: HDR histograms and counters owned by one worker, merged only on scrape.
//!
//! Key types: [`CoreStats`] (one per worker, behind a `RefCell`, never shared across threads),
//! [`ServerStats`] (per downstream server slot), [`MethodClass`] (bounded label set for methods) and
//! [`prometheus::render`] (exposition of merged stats).
//!
//! Invariants: recording is a few array writes plus HDR `record` (~10 ns); nothing on the request path
//! locks or allocates here once a server slot exists. Merging clones histograms (~14 µs per core) and
//! happens only when `/metrics` is scraped, on the admin side.
//!
//! All durations are recorded in nanoseconds; exposition converts to seconds.

pub mod logger;
pub mod prometheus;

use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Largest duration a histogram tracks (longer values are clamped): 10 minutes.
const MAX_TRACKED_NS: u64 = 600_000_000_000;
/// Significant figures kept: 2 gives ≤1% error at ~20 KB per histogram.
const SIG_FIGS: u8 = 2;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, SIG_FIGS).expect("static histogram bounds")
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    let ns = (d.as_nanos() as u64).clamp(1, MAX_TRACKED_NS);
    // saturating_record never fails: values are clamped into range above.
    h.saturating_record(ns);
}

/// The methods counted separately; everything else is `Other` (keeps label cardinality bounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodClass {
    /// `initialize`
    Initialize,
    /// `ping`
    Ping,
    /// `tools/list`, `prompts/list`, `resources/list`, `resources/templates/list`
    List,
    /// `tools/call`
    ToolsCall,
    /// `prompts/get`
    PromptsGet,
    /// `resources/read`
    ResourcesRead,
    /// `completion/complete`
    Complete,
    /// Client notifications
    Notification,
    /// Anything else
    Other,
}

impl MethodClass {
    /// Every class, in exposition order.
    pub const ALL: [MethodClass; 9] = [
        MethodClass::Initialize,
        MethodClass::Ping,
        MethodClass::List,
        MethodClass::ToolsCall,
        MethodClass::PromptsGet,
        MethodClass::ResourcesRead,
        MethodClass::Complete,
        MethodClass::Notification,
        MethodClass::Other,
    ];

    /// Label value.
    pub fn label(self) -> &'static str {
        match self {
            MethodClass::Initialize => "initialize",
            MethodClass::Ping => "ping",
            MethodClass::List => "list",
            MethodClass::ToolsCall => "tools_call",
            MethodClass::PromptsGet => "prompts_get",
            MethodClass::ResourcesRead => "resources_read",
            MethodClass::Complete => "completion",
            MethodClass::Notification => "notification",
            MethodClass::Other => "other",
        }
    }
}

/// Counters and latency for one downstream server, on one core.
#[derive(Clone)]
pub struct ServerStats {
    /// The server's configured name (label).
    pub name: Arc<str>,
    /// Calls forwarded.
    pub calls: u64,
    /// Calls that ended in a downstream error (unavailable, protocol).
    pub errors: u64,
    /// Calls that timed out.
    pub timeouts: u64,
    /// Time from sending to the downstream until its reply was read.
    pub latency: Histogram<u64>,
}

/// One worker's statistics.
#[derive(Clone)]
pub struct CoreStats {
    /// Time the gateway itself spent on forwarded calls (end to end minus downstream).
    pub gateway: Histogram<u64>,
    /// Time spent waiting on downstreams for forwarded calls.
    pub downstream: Histogram<u64>,
    /// End-to-end time of every request, from body read to reply written.
    pub total: Histogram<u64>,
    /// Requests per method class, indexed like [`MethodClass::ALL`].
    pub requests: [u64; 9],
    /// Requests that ended in an error reply, per method class.
    pub errors: [u64; 9],
    /// HTTP exchanges refused before the request path (bad HTTP, 413, 403, 421, 404 session).
    pub rejected: u64,
    /// Per downstream server slot (`None` for slots this core never called).
    pub servers: Vec<Option<ServerStats>>,
    /// The era bridge's parked calls (modern clients of legacy servers waiting for a retry).
    pub bridge: BridgeStats,
}

impl Default for CoreStats {
    fn default() -> Self {
        CoreStats {
            gateway: histogram(),
            downstream: histogram(),
            total: histogram(),
            requests: [0; 9],
            errors: [0; 9],
            rejected: 0,
            servers: Vec::new(),
            bridge: BridgeStats::default(),
        }
    }
}

impl CoreStats {
    /// Records one finished request.
    pub fn record_request(&mut self, class: MethodClass, ok: bool, total: Duration) {
        let i = class as usize;
        self.requests[i] += 1;
        if !ok {
            self.errors[i] += 1;
        }
        record(&mut self.total, total);
    }

    /// Records a forwarded call's split between gateway time and downstream time.
    pub fn record_forward(&mut self, gateway: Duration, downstream: Duration) {
        record(&mut self.gateway, gateway);
        record(&mut self.downstream, downstream);
    }

    /// The stats of server slot `slot`, created on first use (allocates once per slot).
    pub fn server(&mut self, slot: usize, name: &Arc<str>) -> &mut ServerStats {
        if self.servers.len() <= slot {
            self.servers.resize_with(slot + 1, || None);
        }
        let s = self.servers[slot].get_or_insert_with(|| ServerStats {
            name: name.clone(),
            calls: 0,
            errors: 0,
            timeouts: 0,
            latency: histogram(),
        });
        if !Arc::ptr_eq(&s.name, name) && *s.name != **name {
            s.name = name.clone();
        }
        s
    }

    /// Records a downstream call's outcome for server slot `slot`.
    pub fn record_server(
        &mut self,
        slot: usize,
        name: &Arc<str>,
        outcome: CallOutcome,
        d: Duration,
    ) {
        let s = self.server(slot, name);
        s.calls += 1;
        match outcome {
            CallOutcome::Ok => record(&mut s.latency, d),
            CallOutcome::Error => s.errors += 1,
            CallOutcome::Timeout => s.timeouts += 1,
        }
    }

    /// Adds `other` into `self` (scrape-time merge of per-core stats).
    pub fn merge(&mut self, other: &CoreStats) {
        // add() only fails when bounds differ; all histograms here share the same bounds.
        let _ = self.gateway.add(&other.gateway);
        let _ = self.downstream.add(&other.downstream);
        let _ = self.total.add(&other.total);
        for i in 0..self.requests.len() {
            self.requests[i] += other.requests[i];
            self.errors[i] += other.errors[i];
        }
        self.rejected += other.rejected;
        self.bridge.merge(&other.bridge);
        for (slot, s) in other.servers.iter().enumerate() {
            let Some(s) = s else { continue };
            let mine = self.server(slot, &s.name);
            mine.calls += s.calls;
            mine.errors += s.errors;
            mine.timeouts += s.timeouts;
            let _ = mine.latency.add(&s.latency);
        }
    }
}

/// The era bridge on one worker: a gauge of parked calls (filled in at scrape: the bridge's
/// table is the truth) and counters of how parked calls ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Calls parked right now, waiting for the client's retry.
    pub parked: u64,
    /// Retries that resumed a parked call.
    pub resumes: u64,
    /// Parked calls given up because no retry came in time.
    pub expiries: u64,
}

impl BridgeStats {
    /// Adds another worker's figures.
    pub fn merge(&mut self, other: &BridgeStats) {
        self.parked += other.parked;
        self.resumes += other.resumes;
        self.expiries += other.expiries;
    }
}

/// How a downstream call ended, for per-server counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// A reply arrived (it may still be a JSON-RPC error from the tool: that is the server's answer).
    Ok,
    /// The server was unreachable or answered garbage.
    Error,
    /// The call timed out.
    Timeout,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_histograms_per_server() {
        let name: Arc<str> = Arc::from("a");
        let mut a = CoreStats::default();
        let mut b = CoreStats::default();
        a.record_request(MethodClass::ToolsCall, true, Duration::from_micros(10));
        b.record_request(MethodClass::ToolsCall, false, Duration::from_micros(30));
        b.record_server(2, &name, CallOutcome::Ok, Duration::from_micros(5));
        b.record_server(2, &name, CallOutcome::Timeout, Duration::from_secs(1));
        a.merge(&b);
        let i = MethodClass::ToolsCall as usize;
        assert_eq!((a.requests[i], a.errors[i]), (2, 1));
        assert_eq!(a.total.len(), 2);
        assert_eq!(a.servers.len(), 3);
        assert!(
            a.servers[0].is_none() && a.servers[1].is_none(),
            "no phantom series for unused slots"
        );
        let s = a.servers[2].as_ref().unwrap();
        assert_eq!((s.calls, s.timeouts, &*s.name), (2, 1, "a"));
        assert_eq!(s.latency.len(), 1);
    }
}
