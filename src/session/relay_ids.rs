//! Sealed ids for requests a downstream sends to a client (sampling, elicitation, roots).
//!
//! The gateway replaces the server's request id with a sealed token naming (server slot, the
//! server's own id). The client's response may arrive on any worker (or over another connection of
//! the same session); opening the token tells where it goes and which id to put back, with no shared
//! table. A forged or foreign token opens to nothing, so one session cannot answer for another
//! server's request by guessing.

use bytes::Bytes;

use crate::seal::{SealError, Sealer};

/// Largest server request id carried (longer ids are refused; real ids are short).
pub const MAX_SERVER_ID: usize = 256;

/// Seals and opens server-request ids.
pub struct RelayIds {
    sealer: Sealer,
}

impl RelayIds {
    /// A codec with a fresh random key.
    pub fn new() -> Result<Self, SealError> {
        Ok(RelayIds {
            sealer: Sealer::random(b"ringgate/server-request/v1")?,
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

    /// The (slot, server's own raw id) a token stands for, from the id's string content.
    pub fn open(&self, token: &[u8]) -> Option<(usize, Bytes)> {
        let raw = self.sealer.open(token).ok()?;
        let slot = u32::from_le_bytes(raw.get(..4)?.try_into().ok()?) as usize;
        Some((slot, Bytes::copy_from_slice(&raw[4..])))
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
            Some((3, Bytes::from_static(b"\"srv-1\"")))
        );
        assert_eq!(ids.open(b"k1.AAAA"), None);
        assert!(ids.seal(0, &[b'1'; 300]).is_none());
    }
}
