//! Front sessions: the legacy era's `Mcp-Session-Id`, sealed so any worker can open it.
//!
//! Key types: [`FrontSession`] (what a session id carries), [`SessionCodec`] (seal/open under a key
//! made once at startup, plus the revocation set of ended sessions), [`versions`] (negotiation), and
//! [`streams::StreamHub`] (per-worker registry of open GET notification streams).
//!
//! Invariants: a session id is self-describing and tamper-proof, so a client's GET stream and POSTs
//! may land on different workers with no shared table. Ended sessions (DELETE) go into a copy-on-write
//! revocation set: writes are rare (one per DELETE) and reads are one `ArcSwap` load.
//!
//! Error behaviour: anything that does not open (forged, other key, garbage, revoked) is "unknown
//! session" (HTTP 404) with no detail, so the check is no oracle.

pub mod downstream;
pub mod modern;
pub mod origin;
pub mod relay_ids;
pub mod request_state;
pub mod streams;
pub mod tasks;
pub mod versions;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::seal::{SealError, Sealer};

/// Client capabilities a session declared at `initialize`, as bit flags (kept in the sealed id).
pub mod caps {
    /// The client declared `sampling`.
    pub const SAMPLING: u8 = 1;
    /// The client declared `elicitation`.
    pub const ELICITATION: u8 = 2;
    /// The client declared `roots`.
    pub const ROOTS: u8 = 4;
    /// The client declared `roots.listChanged`.
    pub const ROOTS_LIST_CHANGED: u8 = 8;
    /// The client declared `elicitation.form` (a bare `elicitation: {}` means form only).
    pub const ELICITATION_FORM: u8 = 16;
    /// The client declared `elicitation.url`.
    pub const ELICITATION_URL: u8 = 32;
    /// The client declared `sampling.tools`.
    pub const SAMPLING_TOOLS: u8 = 64;
    /// The client declared `sampling.context`.
    pub const SAMPLING_CONTEXT: u8 = 128;
}

/// What a legacy-era session id carries: enough to serve any request without server-side state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontSession {
    /// Random 64-bit identity; keys revocation and the stream registry.
    pub nonce: u64,
    /// Index into [`versions::SUPPORTED`] of the negotiated protocol version.
    pub version: u8,
    /// Bit set of [`caps`] the client declared.
    pub client_caps: u8,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
}

const PAYLOAD_LEN: usize = 8 + 1 + 1 + 8;

impl FrontSession {
    /// The negotiated protocol version string.
    pub fn protocol_version(&self) -> &'static str {
        versions::SUPPORTED
            .get(self.version as usize)
            .copied()
            .unwrap_or(versions::LATEST)
    }

    fn encode(&self) -> [u8; PAYLOAD_LEN] {
        let mut out = [0u8; PAYLOAD_LEN];
        out[..8].copy_from_slice(&self.nonce.to_le_bytes());
        out[8] = self.version;
        out[9] = self.client_caps;
        out[10..].copy_from_slice(&self.created.to_le_bytes());
        out
    }

    fn decode(raw: &[u8]) -> Option<Self> {
        if raw.len() != PAYLOAD_LEN {
            return None;
        }
        let nonce = u64::from_le_bytes(raw[..8].try_into().ok()?);
        let created = u64::from_le_bytes(raw[10..].try_into().ok()?);
        Some(FrontSession {
            nonce,
            version: raw[8],
            client_caps: raw[9],
            created,
        })
    }
}

/// Seals and opens session ids and remembers which sessions have ended. Shared by all workers.
pub struct SessionCodec {
    sealer: Sealer,
    revoked: ArcSwap<HashMap<u64, u64>>,
}

/// Revoked sessions kept before the oldest half is forgotten (bounds memory under DELETE floods).
pub const MAX_REVOKED: usize = 1 << 20;

impl SessionCodec {
    /// A codec with a fresh random key (startup, control thread).
    pub fn new() -> Result<Self, SealError> {
        Ok(Self::with_sealer(Sealer::random(b"ringgate/session/v1")?))
    }

    /// A codec over a given sealer (tests).
    pub fn with_sealer(sealer: Sealer) -> Self {
        SessionCodec {
            sealer,
            revoked: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// Mints a new session after a successful `initialize`.
    pub fn create(
        &self,
        version: u8,
        client_caps: u8,
    ) -> Result<(FrontSession, String), SealError> {
        let mut nonce = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
            .map_err(|_| SealError::Random)?;
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let session = FrontSession {
            nonce: u64::from_le_bytes(nonce),
            version,
            client_caps,
            created,
        };
        let id = self.sealer.seal(&session.encode())?;
        Ok((session, id))
    }

    /// Opens a session id from a header; `None` if forged, malformed or ended.
    pub fn open(&self, header: &[u8]) -> Option<FrontSession> {
        let raw = self.sealer.open(header).ok()?;
        let session = FrontSession::decode(&raw)?;
        if self.revoked.load().contains_key(&session.nonce) {
            return None;
        }
        Some(session)
    }

    /// Whether a session has ended (one `ArcSwap` load and a hash lookup).
    pub fn is_revoked(&self, session: &FrontSession) -> bool {
        self.revoked.load().contains_key(&session.nonce)
    }

    /// Ends a session (DELETE). Later opens of its id fail. Rare; copies the set.
    pub fn revoke(&self, session: &FrontSession) {
        self.revoked.rcu(|old| {
            let mut next = HashMap::clone(old);
            if next.len() >= MAX_REVOKED {
                let mut ages: Vec<u64> = next.values().copied().collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 2];
                next.retain(|_, created| *created > cutoff);
            }
            next.insert(session.nonce, session.created);
            next
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> SessionCodec {
        SessionCodec::with_sealer(Sealer::from_key(&[7; 32], b"test"))
    }

    #[test]
    fn a_session_id_opens_on_any_codec_with_the_same_key() {
        let a = codec();
        let b = codec();
        let (s, id) = a.create(1, caps::SAMPLING | caps::ROOTS).unwrap();
        assert_eq!(b.open(id.as_bytes()), Some(s));
        assert_eq!(s.protocol_version(), versions::SUPPORTED[1]);
    }

    #[test]
    fn ended_and_forged_sessions_do_not_open() {
        let c = codec();
        let (s, id) = c.create(0, 0).unwrap();
        c.revoke(&s);
        assert_eq!(c.open(id.as_bytes()), None);
        assert_eq!(c.open(b"k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), None);
        assert_eq!(c.open(b"not-a-session"), None);
    }
}
