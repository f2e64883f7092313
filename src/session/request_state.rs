//! The gateway's own multi round-trip `requestState` (2026-07-28): a sealed token naming a call
//! that waits, parked on one worker, for a modern client's answer to a legacy server's request.
//!
//! When a legacy downstream asks for client input during a call (sampling, elicitation, roots),
//! a modern client gets an `input_required` result instead; its retry carries this token back.
//! The token ([`StateToken`]) says where the parked call lives (worker, parked id), which call it
//! is (server slot, the id the server knows), until when it may be resumed, and what it is bound
//! to: a digest of the original request (method, target, canonical arguments, see [`digest`]) and
//! the principal that made it. It is sealed with the project's AEAD ([`crate::seal`]) under its own
//! purpose label, so it is opaque and tamper-proof; one that fails to open, has expired, or is
//! presented with another request or by another principal is refused (the caller answers with
//! -32602 "Invalid or expired requestState", as the Python SDK does). Resuming consumes the parked
//! call, so a token works at most once.
//!
//! Perf: only the bridge path seals and opens these (one AEAD each, under a microsecond); the
//! digest parses the arguments fully (simd-json), which only a retry or a parked call pays.

use simd_json::prelude::*;
use simd_json::OwnedValue;

use crate::seal::{SealError, Sealer};
use crate::wire::encode;

/// Bytes of the request digest kept in a token.
pub const DIGEST_LEN: usize = 16;

/// What a `requestState` token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateToken {
    /// The worker that holds the parked call.
    pub worker: u16,
    /// The parked call's id in that worker's table (random).
    pub parked: u64,
    /// The downstream's server slot.
    pub slot: u32,
    /// The id the downstream knows the call by.
    pub minted: u64,
    /// Expiry, milliseconds since the Unix epoch.
    pub expires_ms: u64,
    /// Digest of the original request ([`digest`]).
    pub digest: [u8; DIGEST_LEN],
    /// Digest of the principal that made it.
    pub principal: [u8; 8],
}

const TOKEN_LEN: usize = 2 + 8 + 4 + 8 + 8 + DIGEST_LEN + 8;

/// Seals and opens `requestState` tokens (a key of their own, made at startup).
pub struct RequestStates {
    sealer: Sealer,
}

impl RequestStates {
    /// A codec with a fresh random key.
    pub fn new() -> Result<Self, SealError> {
        Ok(RequestStates {
            sealer: Sealer::random(b"ringgate/request-state/v1")?,
        })
    }

    /// A codec from key material (tests).
    pub fn from_key(key: &[u8; 32]) -> Self {
        RequestStates {
            sealer: Sealer::from_key(key, b"ringgate/request-state/v1"),
        }
    }

    /// The printable token for `t`.
    pub fn seal(&self, t: &StateToken) -> Result<String, SealError> {
        let mut raw = Vec::with_capacity(TOKEN_LEN);
        raw.extend_from_slice(&t.worker.to_le_bytes());
        raw.extend_from_slice(&t.parked.to_le_bytes());
        raw.extend_from_slice(&t.slot.to_le_bytes());
        raw.extend_from_slice(&t.minted.to_le_bytes());
        raw.extend_from_slice(&t.expires_ms.to_le_bytes());
        raw.extend_from_slice(&t.digest);
        raw.extend_from_slice(&t.principal);
        self.sealer.seal(&raw)
    }

    /// The token a string stands for; `None` for anything this gateway did not seal.
    pub fn open(&self, token: &[u8]) -> Option<StateToken> {
        let raw = self.sealer.open(token).ok()?;
        if raw.len() != TOKEN_LEN {
            return None;
        }
        let u64_at = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().unwrap_or([0; 8]));
        let mut digest = [0u8; DIGEST_LEN];
        digest.copy_from_slice(&raw[30..30 + DIGEST_LEN]);
        let mut principal = [0u8; 8];
        principal.copy_from_slice(&raw[30 + DIGEST_LEN..]);
        Some(StateToken {
            worker: u16::from_le_bytes([raw[0], raw[1]]),
            parked: u64_at(2),
            slot: u32::from_le_bytes(raw[10..14].try_into().unwrap_or([0; 4])),
            minted: u64_at(14),
            expires_ms: u64_at(22),
            digest,
            principal,
        })
    }
}

/// SHA-256 of `parts` joined by NUL, truncated to `N` bytes.
fn sha<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            ctx.update(&[0]);
        }
        ctx.update(p);
    }
    let mut out = [0u8; N];
    out.copy_from_slice(&ctx.finish().as_ref()[..N]);
    out
}

/// The digest binding a token to its request: method, target (tool / prompt name or resource
/// URI) and the arguments in canonical form (object keys sorted, whitespace dropped), so a client
/// that re-encodes the same arguments on its retry still matches. Unparsable arguments are
/// digested as they are.
pub fn digest(method: &str, target: &str, arguments: Option<&[u8]>) -> [u8; DIGEST_LEN] {
    let canonical = arguments.map(|raw| {
        let mut scratch = raw.to_vec();
        match simd_json::to_owned_value(&mut scratch) {
            Ok(v) => {
                let mut out = Vec::with_capacity(raw.len());
                write_canonical(&v, &mut out);
                out
            }
            Err(_) => raw.to_vec(),
        }
    });
    sha(&[
        method.as_bytes(),
        target.as_bytes(),
        canonical.as_deref().unwrap_or(b"{}"),
    ])
}

/// The digest of a principal's identity (its debug form: stable within one gateway process,
/// which is as long as a token lives).
pub fn principal_digest(identity: &str) -> [u8; 8] {
    sha(&[identity.as_bytes()])
}

/// Writes `v` as canonical JSON: sorted object keys, no whitespace.
fn write_canonical(v: &OwnedValue, out: &mut Vec<u8>) {
    match v {
        OwnedValue::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode::write_json_string(out, k);
                out.push(b':');
                if let Some(inner) = map.get(k.as_str()) {
                    write_canonical(inner, out);
                }
            }
            out.push(b'}');
        }
        OwnedValue::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        OwnedValue::String(s) => encode::write_json_string(out, s),
        other => out.extend_from_slice(other.encode().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> StateToken {
        StateToken {
            worker: 3,
            parked: 0xdead_beef_0123,
            slot: 7,
            minted: 42,
            expires_ms: 1_900_000_000_000,
            digest: digest("tools/call", "a__ask", Some(br#"{"x":1}"#)),
            principal: principal_digest("Anonymous"),
        }
    }

    #[test]
    fn tokens_round_trip_and_forgeries_do_not_open() {
        let states = RequestStates::from_key(&[5; 32]);
        let t = token();
        let sealed = states.seal(&t).unwrap();
        assert_eq!(states.open(sealed.as_bytes()), Some(t));
        assert_ne!(sealed, states.seal(&t).unwrap(), "fresh nonce per seal");
        let other = RequestStates::from_key(&[6; 32]);
        assert_eq!(other.open(sealed.as_bytes()), None);
        let mut bad = sealed.into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(states.open(&bad), None);
        // A session-id sealer's token (other purpose) never opens as a request state.
        let session = Sealer::from_key(&[5; 32], b"ringgate/session/v1");
        let foreign = session.seal(&[0u8; TOKEN_LEN]).unwrap();
        assert_eq!(states.open(foreign.as_bytes()), None);
    }

    #[test]
    fn digests_ignore_encoding_but_not_content() {
        let a = digest(
            "tools/call",
            "t",
            Some(br#"{"b":[1, 2],"a":{"y":"\u00e9","x":null}}"#),
        );
        let b = digest(
            "tools/call",
            "t",
            Some(r#"{"a":{"x":null,"y":"é"},"b":[1,2]}"#.as_bytes()),
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            digest(
                "tools/call",
                "t",
                Some(br#"{"a":{"x":null,"y":"e"},"b":[1,2]}"#)
            )
        );
        assert_ne!(
            a,
            digest(
                "tools/call",
                "u",
                Some(br#"{"a":{"x":null,"y":"\u00e9"},"b":[1,2]}"#)
            )
        );
        assert_ne!(
            digest("prompts/get", "t", None),
            digest("tools/call", "t", None)
        );
        assert_ne!(principal_digest("a"), principal_digest("b"));
    }
}
