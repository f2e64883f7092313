//! Splice-based rewriting: replace a few spans of a message without re-serializing it.
//!
//! Role: the gateway changes only small parts of forwarded messages (the `id` it mints for a
//! downstream, a namespaced tool `name`, a cursor). [`splice`] returns the message as a short
//! list of pieces: zero-copy [`Bytes::slice`]s of the original interleaved with the
//! replacements, ready for vectored writes; [`concat`] joins them when one buffer is needed.
//!
//! Key items: [`Splice`] (one edit: span + replacement), [`Pieces`], [`splice`], [`concat`],
//! [`total_len`], [`format_u64_id`] / [`DecimalU64`].
//!
//! Invariants: edits refer to spans of the same buffer (from its parsed envelope), are
//! non-overlapping, and `splice` sorts them by start. An empty span inserts; an empty
//! replacement deletes. Replacing a string CONTENT span requires escaped content
//! (`encode::write_json_string_content`); replacing a raw token span requires a whole token.
//!
//! Errors: none. Out-of-range spans are clamped and overlapping edits trimmed (debug builds
//! assert instead), so a bug cannot panic the worker.
//!
//! Perf: no copying of the original; up to three edits stay inline in [`Pieces`].

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

use super::scan::Span;

/// One edit: replace the bytes of `.0` with `.1`.
pub type Splice = (Span, Bytes);

/// The pieces of a spliced message, in order; 7 inline = 3 edits without spilling.
pub type Pieces = SmallVec<[Bytes; 7]>;

/// Applies `edits` to `buf` and returns the pieces of the result, in order.
///
/// Edits are sorted here by span start; they must not overlap (debug-asserted; in release an
/// overlapping edit is trimmed to start where the previous one ended). The replacements are
/// moved into the result, leaving empty `Bytes` in `edits`.
pub fn splice(buf: &Bytes, edits: &mut [Splice]) -> Pieces {
    edits.sort_unstable_by_key(|(span, _)| span.start);
    let len = buf.len();
    let mut pieces = Pieces::new();
    let mut cursor = 0usize;
    for (span, replacement) in edits.iter_mut() {
        debug_assert!(span.start <= span.end, "reversed span {span:?}");
        debug_assert!(
            span.end as usize <= len,
            "span {span:?} outside {len} bytes"
        );
        debug_assert!(
            span.start as usize >= cursor,
            "overlapping edit at {span:?}"
        );
        let start = (span.start as usize).clamp(cursor, len);
        let end = (span.end as usize).clamp(start, len);
        if start > cursor {
            pieces.push(buf.slice(cursor..start));
        }
        if !replacement.is_empty() {
            // Moved, not cloned: cloning a Vec-backed `Bytes` would promote it to a shared,
            // refcounted allocation.
            pieces.push(std::mem::take(replacement));
        }
        cursor = end;
    }
    if cursor < len {
        pieces.push(buf.slice(cursor..));
    }
    pieces
}

/// Total byte length of `pieces`.
#[inline]
pub fn total_len(pieces: &[Bytes]) -> usize {
    pieces.iter().map(Bytes::len).sum()
}

/// Joins `pieces` into one buffer; zero-copy when there is at most one piece.
pub fn concat(pieces: &[Bytes]) -> Bytes {
    match pieces {
        [] => Bytes::new(),
        [one] => one.clone(),
        many => {
            let mut out = BytesMut::with_capacity(total_len(many));
            for p in many {
                out.extend_from_slice(p);
            }
            out.freeze()
        }
    }
}

/// A `u64` formatted in decimal, on the stack (at most 20 digits).
#[derive(Clone, Copy)]
pub struct DecimalU64 {
    digits: [u8; 20],
    start: u8,
}

impl DecimalU64 {
    /// The ASCII digits.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.digits[usize::from(self.start)..]
    }

    /// The digits as `&str`.
    #[inline]
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever written, so this cannot fail.
        std::str::from_utf8(self.as_bytes()).unwrap_or("0")
    }
}

impl std::fmt::Debug for DecimalU64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats `n` in decimal for minting numeric JSON-RPC ids (a valid raw JSON number token).
#[inline]
pub fn format_u64_id(mut n: u64) -> DecimalU64 {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + n as u8;
    }
    DecimalU64 {
        digits,
        start: i as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{encode, envelope};

    #[test]
    fn decimal_formatting_matches_std() {
        let mut samples = vec![
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            12345,
            u64::MAX,
            u64::MAX - 1,
        ];
        let mut x = 1u64;
        while let Some(next) = x.checked_mul(10) {
            samples.extend([x - 1, x, x + 1]);
            x = next;
        }
        for n in samples {
            assert_eq!(format_u64_id(n).as_str(), n.to_string());
        }
    }

    #[test]
    fn splice_rewrites_id_and_name() {
        let msg = Bytes::from_static(
            br#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"gh__search","arguments":{}},"id":"abc"}"#,
        );
        let env = envelope::parse(&msg).expect("valid");
        let (id, _) = env.id.expect("id");
        let name = env.name.expect("name");
        let new_id = Bytes::copy_from_slice(format_u64_id(42).as_bytes());
        let mut edits = [(id, new_id), (name, Bytes::from_static(b"search"))];
        let pieces = splice(&msg, &mut edits);
        assert_eq!(pieces.len(), 5);
        let out = concat(&pieces);
        assert_eq!(total_len(&pieces), out.len());
        assert_eq!(
            &out[..],
            br#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"search","arguments":{}},"id":42}"#
        );
        // The unchanged pieces share the original allocation.
        assert_eq!(pieces[0].as_ptr(), msg.as_ptr());
        let again = envelope::parse(&out).expect("still valid");
        assert_eq!(again.name_str(&out).as_deref(), Some("search"));
    }

    #[test]
    fn splice_edges() {
        let msg = Bytes::from_static(b"0123456789");
        assert_eq!(concat(&splice(&msg, &mut [])), msg);
        let mut edits = [
            (Span::new(8, 10), Bytes::from_static(b"X")),
            (Span::new(0, 0), Bytes::from_static(b"<")),
            (Span::new(3, 5), Bytes::new()),
        ];
        let pieces = splice(&msg, &mut edits);
        assert_eq!(&concat(&pieces)[..], b"<012567X");
        let one = splice(&msg, &mut [(Span::new(0, 10), Bytes::from_static(b"all"))]);
        assert_eq!(one.len(), 1);
        assert_eq!(&concat(&one)[..], b"all");
    }

    #[test]
    fn splice_with_escaped_replacement_stays_valid() {
        let msg = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p"}}"#,
        );
        let env = envelope::parse(&msg).expect("valid");
        let mut content = Vec::new();
        encode::write_json_string_content(&mut content, "a\"b\\c\n");
        let mut edits = [(env.name.expect("name"), Bytes::from(content))];
        let out = concat(&splice(&msg, &mut edits));
        let env2 = envelope::parse(&out).expect("valid");
        assert!(env2.name_escaped);
        assert_eq!(env2.name_str(&out).as_deref(), Some("a\"b\\c\n"));
    }
}
