//! Sealed ids for requests a downstream sends to a client (sampling, elicitation, roots).
//!
//! The gateway replaces the server's request id with a sealed token naming (server slot, the
//! server's own id). The client's response may arrive on any worker (or over another connection of
//! the same session); opening the token tells where it goes and which id to put back, with no shared
//! table. A forged or foreign token opens to nothing, so one session cannot answer for another
//! server's request by guessing.
//!
//! The same codec names the requests the gateway itself sends a legacy client on behalf of a
//! modern server's `input_required` result (the bridge, `proxy::bridge`): such a token stands for
//! [`Asked::Bridge`] (the worker whose relay waits for the answer, and the ask's id there) instead
//! of a server. It also carries the codec of the bridge's `requestState` tokens ([`RequestStates`]).

use bytes::Bytes;

use super::request_state::RequestStates;
use crate::seal::{SealError, Sealer};

/// The slot value marking a bridge ask (never a real server slot).
const BRIDGE_SLOT: u32 = u32::MAX;

/// Who asked the request a client answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// A downstream server: its slot and its own raw request id.
    Server(usize, Bytes),
    /// The gateway's bridge: the worker whose relay waits, and the ask's id there.
    Bridge(u16, u64),
}

/// Largest server request id carried (longer ids are refused; real ids are short).
pub const MAX_SERVER_ID: usize = 256;

/// Seals and opens server-request ids.
pub struct RelayIds {
    sealer: Sealer,
    /// Seals and opens the bridge's `requestState` tokens.
    pub states: RequestStates,
}

impl RelayIds {
    /// A codec with a fresh random key.
    pub fn new() -> Result<Self, SealError> {
        Ok(RelayIds {
            sealer: Sealer::random(b"ringgate/server-request/v1")?,
            states: RequestStates::new()?,
        })
    }

    /// The JSON string token (with quotes) standing for `server_id` of the server in `slot`.
    pub fn seal(&self, slot: usize, server_id: &[u8]) -> Option<Bytes> {
        if server_id.len() > MAX_SERVER_ID {
            return None;
        }
        let mut raw = Vec::with_capacity(4 + server_id.len());
        raw.extend_from_slice(&(slot as u32).to_le_bytes());
        raw.extend_from_slice(server_id);
        let token = self.sealer.seal(&raw).ok()?;
        Some(Bytes::from(format!("\"{token}\"")))
    }

    /// The JSON string token (with quotes) standing for bridge ask `ask` of relay `worker`.
    pub fn seal_bridge(&self, worker: u16, ask: u64) -> Option<Bytes> {
        let mut raw = Vec::with_capacity(14);
        raw.extend_from_slice(&BRIDGE_SLOT.to_le_bytes());
        raw.extend_from_slice(&worker.to_le_bytes());
        raw.extend_from_slice(&ask.to_le_bytes());
        let token = self.sealer.seal(&raw).ok()?;
        Some(Bytes::from(format!("\"{token}\"")))
    }

    /// Who asked the request a token stands for, from the id's string content.
    pub fn open(&self, token: &[u8]) -> Option<Asked> {
        let raw = self.sealer.open(token).ok()?;
        let slot = u32::from_le_bytes(raw.get(..4)?.try_into().ok()?);
        if slot != BRIDGE_SLOT {
            return Some(Asked::Server(
                slot as usize,
                Bytes::copy_from_slice(&raw[4..]),
            ));
        }
        let worker = u16::from_le_bytes(raw.get(4..6)?.try_into().ok()?);
        let ask = u64::from_le_bytes(raw.get(6..14)?.try_into().ok()?);
        Some(Asked::Bridge(worker, ask))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_forgeries_do_not_open() {
        let ids = RelayIds::new().unwrap();
        let t = ids.seal(3, b"\"srv-1\"").unwrap();
        let content = &t[1..t.len() - 1];
        assert_eq!(
            ids.open(content),
            Some(Asked::Server(3, Bytes::from_static(b"\"srv-1\"")))
        );
        assert_eq!(ids.open(b"k1.AAAA"), None);
        let t = ids.seal_bridge(1, 99).unwrap();
        assert_eq!(ids.open(&t[1..t.len() - 1]), Some(Asked::Bridge(1, 99)));
        assert!(ids.seal(0, &[b'1'; 300]).is_none());
    }
}
