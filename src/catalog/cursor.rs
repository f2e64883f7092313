//! Gateway-minted list cursors: opaque, tamper-proof, never a downstream's raw cursor.
//!
//! A cursor seals (list kind, page index, snapshot generation). A cursor from an older generation
//! still opens: the client is walking a list that changed under it, has been sent `list_changed`, and
//! gets the page at the same index of the current list (possibly empty) rather than an error.

use crate::seal::Sealer;

use super::ListKind;

/// Mints and opens cursors for one gateway process.
pub struct CursorCodec {
    sealer: Sealer,
}

impl CursorCodec {
    /// A codec with a fresh random key.
    pub fn new() -> Result<Self, crate::seal::SealError> {
        Ok(CursorCodec {
            sealer: Sealer::random(b"ringgate/cursor/v1")?,
        })
    }

    /// A codec over a given sealer (tests).
    pub fn with_sealer(sealer: Sealer) -> Self {
        CursorCodec { sealer }
    }

    /// The cursor naming page `page` of list `kind` in snapshot `generation`.
    pub fn mint(&self, kind: ListKind, page: usize, generation: u64) -> String {
        let mut raw = [0u8; 13];
        raw[0] = kind as u8;
        raw[1..5].copy_from_slice(&(page as u32).to_le_bytes());
        raw[5..].copy_from_slice(&generation.to_le_bytes());
        // Sealing only fails if the OS random source fails; an unusable cursor then reads as invalid.
        self.sealer.seal(&raw).unwrap_or_default()
    }

    /// The page a cursor names, if it is genuine and was minted for `kind`.
    pub fn open(&self, kind: ListKind, token: &[u8]) -> Option<usize> {
        let raw = self.sealer.open(token).ok()?;
        if raw.len() != 13 || raw[0] != kind as u8 {
            return None;
        }
        let page = u32::from_le_bytes(raw[1..5].try_into().ok()?);
        Some(page as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_open_for_their_own_list_only() {
        let c = CursorCodec::with_sealer(Sealer::from_key(&[3; 32], b"c"));
        let t = c.mint(ListKind::Tools, 2, 9);
        assert_eq!(c.open(ListKind::Tools, t.as_bytes()), Some(2));
        assert_eq!(c.open(ListKind::Prompts, t.as_bytes()), None);
        assert_eq!(c.open(ListKind::Tools, b"2"), None);
    }
}
