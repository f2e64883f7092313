//! The bridge between the two eras' ways of asking the client for input during a call.
//!
//! A legacy (≤ 2025-11-25) server sends the client real requests mid-call (sampling, elicitation,
//! roots) and waits for the answers; a modern (2026-07-28) server instead ends the call with an
//! `input_required` result, and the client retries the call with `inputResponses` and the same
//! `requestState` (multi round-trip requests, MRTR). The gateway translates both ways:
//!
//! ```text
//! modern client ─► legacy server  [park]
//!   call ─► server asks (elicitation/create, id 7) ─► call parked on this worker (driver task)
//!        ◄─ input_required {inputRequests:{elicitation:{method,params}}, requestState: sealed}
//!   retry (any worker) ─► token opened, checked ─► Resume to the owning worker ─► the answer goes
//!        to the server as its response to id 7 ─► the call goes on (may ask again) ─► result
//!
//! legacy client ─► modern server  [ask]
//!   call ─► input_required ─► each inputRequest sent to the client on the call's SSE stream
//!        (id: sealed bridge token) ─► answers (POSTed, any worker) ─► Answer to this relay
//!        ─► retried downstream with inputResponses + the same requestState ─► result
//! ```
//!
//! Key items: [`Table`] (per worker: parked calls, open asks), [`Delivery`] (what other workers
//! hand this one: a retry's resume, a client's answer), [`park`] / [`resume`] (modern client),
//! `ask::Asking` (legacy client).
//!
//! Invariants: a parked call lives on the worker that parked it (its downstream connection is
//! that thread's); only messages cross threads. A parked call waits at most
//! `gateway.input_timeout_ms` for the retry, then is cancelled downstream; resuming consumes it
//! (a `requestState` works once). A legacy client gets a server's request only if its session
//! declared the capability and it takes an SSE reply; a modern client only if the request
//! declared it (else -32021, as without the bridge).
//!
//! Error translation between the eras (resource not found: -32002 in the legacy era, -32602 in
//! the modern one) is in the relay (`relay::for_client_era`).

mod ask;
mod park;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;

pub use ask::{input_required_result, Asking, RetryPlan};
pub(in crate::proxy) use park::resume;
pub use park::{input_required, park, retry_fields, Remote, Resume, Step};

use super::context::{Gateway, Worker, WorkerMsg};
use crate::session::caps;
use crate::telemetry::BridgeStats;
use crate::wire::method;

/// Most `input_required` rounds bridged for one legacy client's call (the Python and TypeScript
/// SDKs stop at the same number).
pub const MAX_ROUNDS: u8 = 10;

/// Calls one worker keeps parked at most (each holds a downstream call open); past it, a server's
/// request for a modern client ends that call with an error instead.
pub const MAX_PARKED_PER_WORKER: usize = 4096;

/// Open asks a worker keeps before it sweeps the abandoned ones.
const SWEEP_AT: usize = 64;

/// What another worker (or this one) hands the worker that owns a parked call or an ask.
pub enum Delivery {
    /// A modern client's retry for parked call `.0`.
    Resume(u64, Resume),
    /// A legacy client's answer (the whole response message) to bridge ask `.0`.
    Answer(u64, Bytes),
}

/// One worker's bridge state: its parked calls and its relays' open asks.
#[derive(Default)]
pub struct Table {
    /// Parked calls: id → the driver task's inbox. Shared with the drivers (they remove their
    /// own entry when they give up).
    parked: Rc<RefCell<HashMap<u64, async_channel::Sender<Resume>>>>,
    /// Open asks: id → the waiting relay's inbox (with the id, so one relay can wait on many).
    asks: RefCell<HashMap<u64, async_channel::Sender<(u64, Bytes)>>>,
    /// How parked calls ended (shared with the drivers; read at scrape).
    counters: Rc<Counters>,
}

/// How this worker's parked calls ended so far.
#[derive(Default)]
struct Counters {
    resumes: Cell<u64>,
    expiries: Cell<u64>,
}

impl Table {
    /// Hands a delivery to the parked call or the relay it names; one that is gone (expired,
    /// already resumed, client gone) drops it, which its sender sees as a closed channel.
    pub fn deliver(&self, d: Delivery) {
        match d {
            Delivery::Resume(id, r) => {
                let driver = self.parked.borrow_mut().remove(&id);
                if let Some(tx) = driver {
                    let _ = tx.try_send(r);
                }
            }
            Delivery::Answer(id, body) => {
                let relay = self.asks.borrow_mut().remove(&id);
                if let Some(tx) = relay {
                    let _ = tx.try_send((id, body));
                }
            }
        }
    }

    /// Number of parked calls (tests, metrics).
    pub fn parked_len(&self) -> usize {
        self.parked.borrow().len()
    }

    /// The bridge's figures for a metrics scrape.
    pub fn stats(&self) -> BridgeStats {
        BridgeStats {
            parked: self.parked_len() as u64,
            resumes: self.counters.resumes.get(),
            expiries: self.counters.expiries.get(),
        }
    }

    fn open_ask(&self, id: u64, tx: async_channel::Sender<(u64, Bytes)>) {
        let mut asks = self.asks.borrow_mut();
        if asks.len() >= SWEEP_AT {
            asks.retain(|_, tx| !tx.is_closed());
        }
        asks.insert(id, tx);
    }
}

/// Sends a delivery to the worker that owns it (this one directly).
pub fn send(gw: &Gateway, w: &Worker, worker: u16, d: Delivery) {
    if worker == w.index {
        return w.bridge.deliver(d);
    }
    if let Some(inbox) = gw
        .workers
        .get()
        .and_then(|all| all.get(usize::from(worker)))
    {
        let _ = inbox.try_send(WorkerMsg::Bridge(d));
    }
}

/// A fresh random id for a parked call, an ask or a listen stream's key.
pub(in crate::proxy) fn random_id() -> u64 {
    let mut raw = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw);
    u64::from_le_bytes(raw)
}

/// The [`caps`] flags a server-to-client request needs (0: none the bridge knows): the
/// capability, plus the sub-capability its params call for (`elicitation.url` for a URL-mode
/// elicitation, else `elicitation.form`; `sampling.tools` when it offers tools). `includeContext`
/// needs no `sampling.context` here: servers only SHOULD check it, and a client without it
/// ignores the field, so refusing would break calls that work. `params` is the raw params object.
pub fn needed_capability(method_name: &str, params: Option<&[u8]>) -> u16 {
    let member = |name: &[u8]| {
        let raw = params?;
        let mut found = None;
        super::modern::members(raw, 0, |k, escaped, v| {
            if found.is_none() && crate::wire::scan::key_eq(k.get(raw), escaped, name) {
                found = Some(v.get(raw));
            }
        });
        found
    };
    match method_name {
        method::SAMPLING_CREATE_MESSAGE => {
            let mut needed = caps::SAMPLING;
            if member(b"tools").is_some_and(|t| t != b"null" && t != b"[]") {
                needed |= caps::SAMPLING_TOOLS;
            }
            needed
        }
        method::ELICITATION_CREATE if member(b"mode") == Some(b"\"url\"") => {
            caps::ELICITATION | caps::ELICITATION_URL
        }
        method::ELICITATION_CREATE => caps::ELICITATION | caps::ELICITATION_FORM,
        method::ROOTS_LIST => caps::ROOTS,
        _ => 0,
    }
}

/// Whether a client that declared `declared` can take a request that needs `needed` (both
/// [`caps`] flags). A bare `elicitation: {}` declares form mode only.
pub fn satisfies(declared: u16, needed: u16) -> bool {
    let base = needed & (caps::SAMPLING | caps::ELICITATION | caps::ROOTS);
    if base == 0 || declared & base != base {
        return false;
    }
    let modes = caps::ELICITATION_FORM | caps::ELICITATION_URL;
    let form = declared & caps::ELICITATION_FORM != 0 || declared & modes == 0;
    let subs = [
        (caps::ELICITATION_FORM, form),
        (caps::ELICITATION_URL, declared & caps::ELICITATION_URL != 0),
        (caps::SAMPLING_TOOLS, declared & caps::SAMPLING_TOOLS != 0),
        (
            caps::SAMPLING_CONTEXT,
            declared & caps::SAMPLING_CONTEXT != 0,
        ),
    ];
    subs.iter().all(|&(flag, has)| needed & flag == 0 || has)
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_need_their_capability_and_the_sub_capability_their_params_call_for() {
        let form = needed_capability(method::ELICITATION_CREATE, Some(br#"{"message":"m"}"#));
        let url = needed_capability(method::ELICITATION_CREATE, Some(br#"{"mode":"url"}"#));
        let tools = needed_capability(
            method::SAMPLING_CREATE_MESSAGE,
            Some(br#"{"tools":[{"name":"t"}],"includeContext":"none"}"#),
        );
        let context = needed_capability(
            method::SAMPLING_CREATE_MESSAGE,
            Some(br#"{"includeContext":"thisServer"}"#),
        );
        assert_eq!(form, caps::ELICITATION | caps::ELICITATION_FORM);
        assert_eq!(url, caps::ELICITATION | caps::ELICITATION_URL);
        assert_eq!(tools, caps::SAMPLING | caps::SAMPLING_TOOLS);
        assert_eq!(context, caps::SAMPLING, "includeContext is not refused");
        assert_eq!(needed_capability("ping", None), 0);
        // A bare elicitation declaration is form mode; url-only is not.
        assert!(satisfies(caps::ELICITATION, form));
        assert!(!satisfies(caps::ELICITATION, url));
        assert!(!satisfies(caps::ELICITATION | caps::ELICITATION_URL, form));
        assert!(satisfies(caps::ELICITATION | caps::ELICITATION_URL, url));
        assert!(!satisfies(caps::SAMPLING, tools));
        assert!(satisfies(caps::SAMPLING | caps::SAMPLING_TOOLS, tools));
        assert!(satisfies(caps::SAMPLING, context));
        assert!(!satisfies(
            caps::SAMPLING,
            caps::SAMPLING | caps::SAMPLING_CONTEXT
        ));
        assert!(!satisfies(caps::ROOTS, form) && !satisfies(caps::ROOTS, 0));
    }
}
