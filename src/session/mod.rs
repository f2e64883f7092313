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
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::seal::{SealError, Sealer};

/// Client capabilities a session declared at `initialize`, as bit flags (kept in the sealed id).
pub mod caps {
    /// The client declared `sampling`.
    pub const SAMPLING: u16 = 1;
    /// The client declared `elicitation`.
    pub const ELICITATION: u16 = 2;
    /// The client declared `roots`.
    pub const ROOTS: u16 = 4;
    /// The client declared `roots.listChanged`.
    pub const ROOTS_LIST_CHANGED: u16 = 8;
    /// The client declared `elicitation.form` (a bare `elicitation: {}` means form only).
    pub const ELICITATION_FORM: u16 = 16;
    /// The client declared `elicitation.url`.
    pub const ELICITATION_URL: u16 = 32;
    /// The client declared `sampling.tools`.
    pub const SAMPLING_TOOLS: u16 = 64;
    /// The client declared `sampling.context`.
    pub const SAMPLING_CONTEXT: u16 = 128;
    /// The id was minted before the client declared anything (HTTP+SSE announces it at `GET /sse`,
    /// before `initialize`): what it declared later is kept by the codec ([`super::SessionCodec::declare`]).
    pub const LATE: u16 = 0x100;
}

/// What a legacy-era session id carries: enough to serve any request without server-side state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontSession {
    /// Random 64-bit identity; keys revocation and the stream registry.
    pub nonce: u64,
    /// Index into [`versions::SUPPORTED`] of the negotiated protocol version.
    pub version: u8,
    /// Bit set of [`caps`] the client declared.
    pub client_caps: u16,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
}

const PAYLOAD_LEN: usize = 8 + 1 + 2 + 8;

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
        out[9..11].copy_from_slice(&self.client_caps.to_le_bytes());
        out[11..].copy_from_slice(&self.created.to_le_bytes());
        out
    }

    fn decode(raw: &[u8]) -> Option<Self> {
        if raw.len() != PAYLOAD_LEN {
            return None;
        }
        let nonce = u64::from_le_bytes(raw[..8].try_into().ok()?);
        let created = u64::from_le_bytes(raw[11..].try_into().ok()?);
        Some(FrontSession {
            nonce,
            version: raw[8],
            client_caps: u16::from_le_bytes([raw[9], raw[10]]),
            created,
        })
    }
}

/// Seals and opens session ids and remembers which sessions have ended. Shared by all workers.
pub struct SessionCodec {
    sealer: Sealer,
    revoked: ArcSwap<HashMap<u64, u64>>,
    /// (version, capabilities) declared by sessions whose id was minted first ([`caps::LATE`]),
    /// by nonce. Touched only by such sessions' `initialize`, end, and opens until each worker has
    /// cached the answer (`Worker::open_session`): never by Streamable HTTP or stdio traffic.
    late: Mutex<HashMap<u64, (u8, u16)>>,
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
            late: Mutex::new(HashMap::new()),
        }
    }

    /// Mints a new session after a successful `initialize`.
    pub fn create(
        &self,
        version: u8,
        client_caps: u16,
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

    /// Opens a session id from a header; `None` if forged, malformed or ended. A [`caps::LATE`]
    /// session comes with what it declared at `initialize` once it has (until then, nothing).
    pub fn open(&self, header: &[u8]) -> Option<FrontSession> {
        let raw = self.sealer.open(header).ok()?;
        let mut session = FrontSession::decode(&raw)?;
        if self.revoked.load().contains_key(&session.nonce) {
            return None;
        }
        if session.client_caps & caps::LATE != 0 {
            let late = self.late.lock().ok()?;
            if let Some(&(version, client_caps)) = late.get(&session.nonce) {
                session.version = version;
                session.client_caps = client_caps;
            }
        }
        Some(session)
    }

    /// Records the version and capabilities a [`caps::LATE`] session negotiated at `initialize`
    /// (`declared`: the session `initialize` minted). Ignored for any other session.
    pub fn declare(&self, session: &FrontSession, declared: &FrontSession) {
        if session.client_caps & caps::LATE == 0 {
            return;
        }
        if let Ok(mut late) = self.late.lock() {
            let known = (declared.version, declared.client_caps & !caps::LATE);
            late.insert(session.nonce, known);
        }
    }

    /// Whether a session has ended (one `ArcSwap` load and a hash lookup).
    pub fn is_revoked(&self, session: &FrontSession) -> bool {
        self.revoked.load().contains_key(&session.nonce)
    }

    /// Ends a session (DELETE). Later opens of its id fail. Rare; copies the set. Only a
    /// [`caps::LATE`] session as minted (the HTTP+SSE front ends its stream's session with it)
    /// touches the table of late declarations.
    pub fn revoke(&self, session: &FrontSession) {
        if session.client_caps & caps::LATE != 0 {
            if let Ok(mut late) = self.late.lock() {
                late.remove(&session.nonce);
            }
        }
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

    #[test]
    fn capability_flags_are_distinct_bits_and_survive_the_sealed_id() {
        let all = [
            caps::SAMPLING,
            caps::ELICITATION,
            caps::ROOTS,
            caps::ROOTS_LIST_CHANGED,
            caps::ELICITATION_FORM,
            caps::ELICITATION_URL,
            caps::SAMPLING_TOOLS,
            caps::SAMPLING_CONTEXT,
            caps::LATE,
        ];
        let mut seen = 0u16;
        for flag in all {
            assert_eq!(flag.count_ones(), 1, "{flag:#x}");
            assert_eq!(seen & flag, 0, "{flag:#x} is used twice");
            seen |= flag;
        }
        let c = codec();
        let (_, id) = c.create(0, seen & !caps::LATE).unwrap();
        assert_eq!(
            c.open(id.as_bytes()).unwrap().client_caps,
            seen & !caps::LATE
        );
    }

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
    fn a_late_session_opens_with_what_it_declared_once_it_has() {
        let c = codec();
        let (s, id) = c.create(0, caps::LATE).unwrap();
        assert_eq!(c.open(id.as_bytes()).unwrap().client_caps, caps::LATE);
        let (declared, _) = c.create(3, caps::SAMPLING | caps::ROOTS).unwrap();
        c.declare(&s, &declared);
        let opened = c.open(id.as_bytes()).unwrap();
        assert_eq!(
            (opened.nonce, opened.version, opened.client_caps),
            (s.nonce, 3, caps::SAMPLING | caps::ROOTS)
        );
        // Only a late session takes declarations; an ended one forgets them.
        let (plain, plain_id) = c.create(0, 0).unwrap();
        c.declare(&plain, &declared);
        assert_eq!(c.open(plain_id.as_bytes()), Some(plain));
        c.revoke(&s);
        assert_eq!(c.open(id.as_bytes()), None);
        assert!(c.late.lock().unwrap().is_empty());
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
