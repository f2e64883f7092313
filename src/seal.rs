//! Sealed tokens: small, self-describing, tamper-proof strings the gateway hands out and later trusts.
//!
//! Session ids, list cursors and the bridge's MRTR `requestState` must work whichever worker a request
//! lands on, without a shared table. A [`Sealer`] encrypts-and-authenticates a short payload with
//! ChaCha20-Poly1305 under a key derived once at startup, and encodes it as URL-safe base64 behind a
//! key-id prefix (`k1.`), so keys can rotate later by accepting an older id for a while.
//!
//! Invariants: a token opens only under the key (and purpose label) that sealed it; every token carries
//! a fresh random nonce, so two seals of the same payload differ. `open` never panics on any input.
//!
//! Performance: seal/open of a 32-byte payload costs well under a microsecond (see `benches/`).

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// Prefix naming the key generation; lets a later release rotate keys without breaking live tokens.
const KEY_ID: &str = "k1.";
/// Largest payload a token may carry; keeps headers small and bounds work on forged input.
pub const MAX_PAYLOAD: usize = 512;

/// Seals and opens tokens for one purpose (the purpose is bound in as associated data).
pub struct Sealer {
    key: LessSafeKey,
    purpose: &'static [u8],
    rng: SystemRandom,
}

/// Why a token failed to open. Callers map every variant to "unknown" (no oracle for forgers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    /// Not our format, wrong key id, or bad base64.
    Malformed,
    /// Authentication failed: forged, truncated, or sealed under another key or purpose.
    Forged,
    /// The system random source failed (sealing only).
    Random,
}

impl Sealer {
    /// Creates a sealer with a fresh random key. Call once at startup, off the hot path.
    pub fn random(purpose: &'static [u8]) -> Result<Self, SealError> {
        let rng = SystemRandom::new();
        let mut key = [0u8; 32];
        rng.fill(&mut key).map_err(|_| SealError::Random)?;
        Ok(Self::from_key(&key, purpose))
    }

    /// Creates a sealer from key material (tests; later: a configured key shared by a cluster).
    pub fn from_key(key: &[u8; 32], purpose: &'static [u8]) -> Self {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key).expect("32-byte key");
        Sealer {
            key: LessSafeKey::new(unbound),
            purpose,
            rng: SystemRandom::new(),
        }
    }

    /// Seals `payload` into a printable token (`k1.` + base64url(nonce ‖ ciphertext ‖ tag)).
    pub fn seal(&self, payload: &[u8]) -> Result<String, SealError> {
        debug_assert!(payload.len() <= MAX_PAYLOAD);
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut buf = Vec::with_capacity(NONCE_LEN + payload.len() + 16);
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(payload);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.purpose),
                &mut buf[NONCE_LEN..],
            )
            .map_err(|_| SealError::Random)?;
        buf.extend_from_slice(tag.as_ref());
        let mut out = String::with_capacity(KEY_ID.len() + buf.len() * 4 / 3 + 4);
        out.push_str(KEY_ID);
        base64url_encode(&buf, &mut out);
        Ok(out)
    }

    /// Opens a token sealed by this sealer, returning the payload.
    pub fn open(&self, token: &[u8]) -> Result<Vec<u8>, SealError> {
        let body = token
            .strip_prefix(KEY_ID.as_bytes())
            .ok_or(SealError::Malformed)?;
        if body.len() > (MAX_PAYLOAD + NONCE_LEN + 16) * 4 / 3 + 4 {
            return Err(SealError::Malformed);
        }
        let mut raw = base64url_decode(body).ok_or(SealError::Malformed)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(SealError::Malformed);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&raw[..NONCE_LEN]);
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.purpose),
                &mut raw[NONCE_LEN..],
            )
            .map_err(|_| SealError::Forged)?;
        Ok(plain.to_vec())
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Appends the unpadded URL-safe base64 encoding of `input` to `out`.
pub fn base64url_encode(input: &[u8], out: &mut String) {
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
}

/// Decodes unpadded URL-safe base64; `None` on any invalid character or impossible length.
pub fn base64url_decode(input: &[u8]) -> Option<Vec<u8>> {
    if input.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    for chunk in input.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'-' => 62,
                b'_' => 63,
                _ => return None,
            };
            n |= u32::from(v) << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let keep = chunk.len() - 1;
        // Canonical encodings only: the unused low bits of a short final group must be zero, so
        // every token has exactly one spelling.
        if keep < 3 && bytes[keep] != 0 {
            return None;
        }
        out.extend_from_slice(&bytes[..keep]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_every_length() {
        for len in 0..40u8 {
            let data: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            let mut s = String::new();
            base64url_encode(&data, &mut s);
            assert_eq!(base64url_decode(s.as_bytes()).as_deref(), Some(&data[..]));
        }
        assert!(base64url_decode(b"a").is_none());
        assert!(base64url_decode(b"AB").is_none(), "non-zero padding bits");
        assert_eq!(base64url_decode(b"AA").as_deref(), Some(&[0u8][..]));
        assert!(base64url_decode(b"ab+/").is_none());
    }

    #[test]
    fn sealed_tokens_open_only_under_their_key_and_purpose() {
        let a = Sealer::from_key(&[1; 32], b"session");
        let b = Sealer::from_key(&[2; 32], b"session");
        let c = Sealer::from_key(&[1; 32], b"cursor");
        let t = a.seal(b"hello").unwrap();
        assert_eq!(a.open(t.as_bytes()).unwrap(), b"hello");
        assert_eq!(b.open(t.as_bytes()), Err(SealError::Forged));
        assert_eq!(c.open(t.as_bytes()), Err(SealError::Forged));
        assert_ne!(t, a.seal(b"hello").unwrap(), "fresh nonce per seal");
    }

    #[test]
    fn tampering_and_garbage_never_open() {
        let s = Sealer::from_key(&[9; 32], b"p");
        let t = s.seal(b"payload").unwrap().into_bytes();
        for i in KEY_ID.len()..t.len() {
            let mut bad = t.clone();
            bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
            assert!(s.open(&bad).is_err(), "flip at {i}");
        }
        for junk in [&b""[..], b"k1.", b"k2.AAAA", b"k1.!!!!", &[0xff; 64]] {
            assert!(s.open(junk).is_err());
        }
    }
}
