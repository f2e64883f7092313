//! The validating single-pass JSON scanner: RFC 8259 validation plus span extraction, no tree.
//!
//! Role: the hot path of every message. Callers walk the one or two objects they care about
//! with [`walk_object`] and skip everything else with [`skip_value_depth`]; each byte of the
//! message is looked at once, nothing is allocated, and what comes out is byte offsets
//! ([`Span`]) into the caller's buffer.
//!
//! Key types: [`Span`] (a `u32` byte range), [`StrToken`] (a scanned string: end and whether
//! it holds escapes), [`ScanError`] (byte offset + static reason + [`ScanErrorKind`]).
//!
//! Invariants / what "valid" means:
//! * the full RFC 8259 grammar: literals, the number grammar, strings with the nine escapes
//!   and `\uXXXX`, whitespace limited to space, tab, LF, CR; no trailing bytes but whitespace
//!   ([`validate`]);
//! * string bytes must be valid UTF-8 (RFC 3629: no overlongs, no encoded surrogates);
//! * `\u` escapes must form valid scalar values: a high surrogate must be followed directly by
//!   a `\u` low surrogate, a lone low surrogate is rejected (as serde_json does);
//! * nesting is limited: a value may open at most `max_depth` containers ([`MAX_DEPTH`] by
//!   default); `[[1]]` has depth 2. Exceeding it is a [`ScanErrorKind::TooDeep`] error.
//! * numbers are checked against the grammar only; magnitude is not limited (`1e400` is
//!   valid JSON even though it overflows an `f64`; serde_json rejects it).
//!
//! Position contract: every function takes `pos` pointing at the first byte of the thing to
//! scan (never at leading whitespace) and returns the offset one past its last byte.
//!
//! Perf: string bodies are skipped 8 bytes at a time with SWAR word tricks (safe `u64`
//! arithmetic) until a quote, backslash, control or non-ASCII byte; one-letter escapes and
//! UTF-8 sequences are checked inline, `\u` escapes out of line. Recursion depth is bounded
//! by `max_depth`, clamped to [`MAX_DEPTH_CEILING`] so no input can exhaust the stack.

use std::fmt;

/// Default nesting limit: containers a message may open inside each other.
pub const MAX_DEPTH: usize = 128;

/// Hard ceiling for any caller-supplied depth limit; keeps recursion well inside a thread stack.
pub const MAX_DEPTH_CEILING: usize = 1024;

/// A byte range `start..end` into a message buffer.
///
/// `u32` keeps envelopes small; the envelope parser rejects buffers longer than `u32::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset one past the last byte.
    pub end: u32,
}

impl Span {
    /// Builds a span from `usize` offsets; callers guarantee both fit in `u32`.
    #[inline]
    pub fn new(start: usize, end: usize) -> Span {
        debug_assert!(start <= end && end <= u32::MAX as usize);
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The bytes this span covers in `buf`; empty if the span does not fit (never panics).
    #[inline]
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    /// Whether the span covers no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// The span shifted right by `base` bytes (relative → absolute offsets).
    #[inline]
    pub fn offset(self, base: u32) -> Span {
        Span {
            start: self.start + base,
            end: self.end + base,
        }
    }

    /// The `usize` range, for slicing.
    #[inline]
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// Why a scan failed, coarsely: callers map these to different protocol errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanErrorKind {
    /// The bytes are not JSON.
    Syntax,
    /// The JSON nests deeper than the allowed limit.
    TooDeep,
}

/// A scan failure at byte `offset` of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanError {
    /// Offset of the offending byte (or the buffer length at unexpected end of input).
    pub offset: usize,
    /// Syntax or depth.
    pub kind: ScanErrorKind,
    /// Human-readable, static reason.
    pub reason: &'static str,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for ScanError {}

#[cold]
fn syntax(offset: usize, reason: &'static str) -> ScanError {
    ScanError {
        offset,
        kind: ScanErrorKind::Syntax,
        reason,
    }
}

#[cold]
fn too_deep(offset: usize) -> ScanError {
    ScanError {
        offset,
        kind: ScanErrorKind::TooDeep,
        reason: "nesting too deep",
    }
}

/// The error for input that stops where more was required.
#[cold]
fn eof(buf: &[u8]) -> ScanError {
    syntax(buf.len(), "unexpected end of input")
}

/// A scanned string token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrToken {
    /// Offset of the opening quote.
    pub start: usize,
    /// Offset one past the closing quote.
    pub end: usize,
    /// Whether the content holds at least one backslash escape (decode before comparing).
    pub escaped: bool,
}

impl StrToken {
    /// The content span, quotes excluded.
    #[inline]
    pub fn content(&self) -> Span {
        Span::new(self.start + 1, self.end - 1)
    }

    /// The whole token span, quotes included.
    #[inline]
    pub fn token(&self) -> Span {
        Span::new(self.start, self.end)
    }
}

/// Skips JSON whitespace (space, tab, LF, CR) from `pos`; returns the first other offset.
#[inline]
pub fn skip_ws(buf: &[u8], mut pos: usize) -> usize {
    while let Some(&b) = buf.get(pos) {
        if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            break;
        }
        pos += 1;
    }
    pos
}

/// Validates a whole document: one value, optional surrounding whitespace, nothing else.
pub fn validate(buf: &[u8]) -> Result<(), ScanError> {
    validate_with_depth(buf, MAX_DEPTH)
}

/// [`validate`] with a caller-chosen nesting limit.
pub fn validate_with_depth(buf: &[u8], max_depth: usize) -> Result<(), ScanError> {
    let start = skip_ws(buf, 0);
    let end = skip_value_depth(buf, start, max_depth)?;
    expect_end(buf, end)
}

/// Checks that only whitespace follows `pos`.
#[inline]
pub fn expect_end(buf: &[u8], pos: usize) -> Result<(), ScanError> {
    let p = skip_ws(buf, pos);
    if p == buf.len() {
        Ok(())
    } else {
        Err(syntax(p, "trailing characters after JSON value"))
    }
}

/// Validates and skips the value starting at `pos` with the default depth limit.
#[inline]
pub fn skip_value(buf: &[u8], pos: usize) -> Result<usize, ScanError> {
    skip_value_depth(buf, pos, MAX_DEPTH)
}

/// Validates and skips the value at `pos`, allowing it to open `max_depth` nested containers.
pub fn skip_value_depth(buf: &[u8], pos: usize, max_depth: usize) -> Result<usize, ScanError> {
    let depth = max_depth.min(MAX_DEPTH_CEILING);
    match buf.get(pos) {
        Some(b'"') => scan_string(buf, pos).map(|s| s.end),
        Some(b'{') => walk_object(buf, pos, depth, |_, v, d| skip_value_depth(buf, v, d)),
        Some(b'[') => walk_array(buf, pos, depth, |v, d| skip_value_depth(buf, v, d)),
        Some(b't') => literal(buf, pos, b"true"),
        Some(b'f') => literal(buf, pos, b"false"),
        Some(b'n') => literal(buf, pos, b"null"),
        Some(b'-' | b'0'..=b'9') => scan_number(buf, pos),
        Some(_) => Err(syntax(pos, "expected a JSON value")),
        None => Err(eof(buf)),
    }
}

#[inline]
fn literal(buf: &[u8], pos: usize, lit: &'static [u8]) -> Result<usize, ScanError> {
    match buf.get(pos..pos + lit.len()) {
        Some(s) if s == lit => Ok(pos + lit.len()),
        _ => Err(syntax(pos, "invalid literal")),
    }
}

/// Walks the object at `pos` (which must be `{`), calling `on_member(key, value_pos, depth)`
/// for each member. The callback must consume the value starting at `value_pos` (usually via
/// [`skip_value_depth`] with the given `depth`, or a nested walk) and return its end offset.
/// Returns the offset after the closing `}`.
///
/// `max_depth` counts this object: 0 rejects it as too deep.
#[inline]
pub fn walk_object<F>(
    buf: &[u8],
    pos: usize,
    max_depth: usize,
    mut on_member: F,
) -> Result<usize, ScanError>
where
    F: FnMut(StrToken, usize, usize) -> Result<usize, ScanError>,
{
    if max_depth == 0 {
        return Err(too_deep(pos));
    }
    if buf.get(pos) != Some(&b'{') {
        return Err(syntax(pos, "expected '{'"));
    }
    let mut p = skip_ws(buf, pos + 1);
    if buf.get(p) == Some(&b'}') {
        return Ok(p + 1);
    }
    loop {
        match buf.get(p) {
            Some(b'"') => {}
            Some(_) => return Err(syntax(p, "expected a string key")),
            None => return Err(eof(buf)),
        }
        let key = scan_string(buf, p)?;
        p = skip_ws(buf, key.end);
        match buf.get(p) {
            Some(b':') => {}
            Some(_) => return Err(syntax(p, "expected ':' after key")),
            None => return Err(eof(buf)),
        }
        p = skip_ws(buf, p + 1);
        let end = on_member(key, p, max_depth - 1)?;
        p = skip_ws(buf, end);
        match buf.get(p) {
            Some(b',') => p = skip_ws(buf, p + 1),
            Some(b'}') => return Ok(p + 1),
            Some(_) => return Err(syntax(p, "expected ',' or '}'")),
            None => return Err(eof(buf)),
        }
    }
}

/// Walks the array at `pos` (which must be `[`), calling `on_element(value_pos, depth)` for
/// each element; the callback consumes the element and returns its end (as in
/// [`walk_object`]). Returns the offset after the closing `]`.
#[inline]
pub fn walk_array<F>(
    buf: &[u8],
    pos: usize,
    max_depth: usize,
    mut on_element: F,
) -> Result<usize, ScanError>
where
    F: FnMut(usize, usize) -> Result<usize, ScanError>,
{
    if max_depth == 0 {
        return Err(too_deep(pos));
    }
    if buf.get(pos) != Some(&b'[') {
        return Err(syntax(pos, "expected '['"));
    }
    let mut p = skip_ws(buf, pos + 1);
    if buf.get(p) == Some(&b']') {
        return Ok(p + 1);
    }
    loop {
        let end = on_element(p, max_depth - 1)?;
        p = skip_ws(buf, end);
        match buf.get(p) {
            Some(b',') => p = skip_ws(buf, p + 1),
            Some(b']') => return Ok(p + 1),
            Some(_) => return Err(syntax(p, "expected ',' or ']'")),
            None => return Err(eof(buf)),
        }
    }
}

/// Calls `f(key_content, key_escaped, value_span)` for each member of the object at
/// `obj_start`, validating (and skipping) every value. Returns the offset after `}`.
///
/// Spans are `u32`: the buffer must not exceed `u32::MAX` bytes (checked).
pub fn for_each_member<F>(buf: &[u8], obj_start: usize, mut f: F) -> Result<usize, ScanError>
where
    F: FnMut(Span, bool, Span),
{
    if buf.len() > u32::MAX as usize {
        return Err(syntax(0, "buffer too large for spans"));
    }
    walk_object(buf, obj_start, MAX_DEPTH, |key, v, depth| {
        let end = skip_value_depth(buf, v, depth)?;
        f(key.content(), key.escaped, Span::new(v, end));
        Ok(end)
    })
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Marks (bit 7 of each byte) the bytes of `w` that end a fast string run: `"`, `\`, a
/// control byte < 0x20, or a non-ASCII byte (validated as UTF-8 by the slow path). Borrows can
/// mark bytes *above* a true hit, never below, so the lowest mark is exact, which is all the
/// caller uses.
#[inline(always)]
fn string_stop_mask(w: u64) -> u64 {
    let quote = w ^ (LO * b'"' as u64);
    let backslash = w ^ (LO * b'\\' as u64);
    let zero_q = quote.wrapping_sub(LO) & !quote;
    let zero_b = backslash.wrapping_sub(LO) & !backslash;
    let control = w.wrapping_sub(LO * 0x20) & !w;
    (zero_q | zero_b | control | w) & HI
}

/// Scans the string token at `pos` (an opening quote): checks escapes, control bytes and
/// UTF-8. Returns its end and whether it contains escapes.
#[inline(always)]
pub fn scan_string(buf: &[u8], pos: usize) -> Result<StrToken, ScanError> {
    debug_assert_eq!(buf.get(pos), Some(&b'"'));
    let mut i = pos + 1;
    let mut escaped = false;
    loop {
        while let Some(chunk) = buf.get(i..).and_then(<[u8]>::first_chunk::<8>) {
            let stop = string_stop_mask(u64::from_le_bytes(*chunk));
            if stop != 0 {
                i += (stop.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match buf.get(i) {
            Some(b'"') => break,
            Some(b'\\') => {
                escaped = true;
                i = match buf.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i + 2,
                    _ => scan_escape(buf, i)?,
                };
            }
            Some(&b) if b >= 0x80 => {
                // Stay here through a run of non-ASCII text (e.g. CJK) before retrying words.
                i = utf8_char(buf, i)?;
                while buf.get(i).is_some_and(|&b| b >= 0x80) {
                    i = utf8_char(buf, i)?;
                }
            }
            Some(&b) if b < 0x20 => return Err(syntax(i, "control character in string")),
            Some(_) => i += 1,
            None => return Err(syntax(buf.len(), "unterminated string")),
        }
    }
    Ok(StrToken {
        start: pos,
        end: i + 1,
        escaped,
    })
}

/// Validates the UTF-8 sequence starting at `i` (a byte >= 0x80) per RFC 3629: no overlong
/// forms, no encoded surrogates, nothing above U+10FFFF. Returns the offset after it.
#[inline]
fn utf8_char(buf: &[u8], i: usize) -> Result<usize, ScanError> {
    let bad = || syntax(i, "invalid UTF-8 in string");
    let (len, second) = match buf.get(i).copied().unwrap_or(0) {
        0xC2..=0xDF => (2, 0x80..=0xBF),
        0xE0 => (3, 0xA0..=0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80..=0xBF),
        0xED => (3, 0x80..=0x9F),
        0xF0 => (4, 0x90..=0xBF),
        0xF1..=0xF3 => (4, 0x80..=0xBF),
        0xF4 => (4, 0x80..=0x8F),
        _ => return Err(bad()),
    };
    if !buf.get(i + 1).is_some_and(|b| second.contains(b)) {
        return Err(bad());
    }
    for k in 2..len {
        if !buf.get(i + k).is_some_and(|&b| (0x80..=0xBF).contains(&b)) {
            return Err(bad());
        }
    }
    Ok(i + len)
}

/// Validates an escape other than the one-letter ones at `pos` (a backslash): `\uXXXX`, or an
/// error. Returns the offset after it.
#[inline(never)]
fn scan_escape(buf: &[u8], pos: usize) -> Result<usize, ScanError> {
    match buf.get(pos + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(pos + 2),
        Some(b'u') => {
            let (_, end) = unicode_escape(buf, pos)?;
            Ok(end)
        }
        Some(_) => Err(syntax(pos + 1, "invalid escape")),
        None => Err(eof(buf)),
    }
}

/// Decodes the `\uXXXX` escape at `pos` (a backslash), pairing surrogates. Returns the scalar
/// value and the offset after the escape (after both halves of a pair).
pub(crate) fn unicode_escape(buf: &[u8], pos: usize) -> Result<(char, usize), ScanError> {
    let hi = hex4(buf, pos + 2)?;
    let after = pos + 6;
    let cp = match hi {
        0xD800..=0xDBFF => {
            if buf.get(after..after + 2) != Some(b"\\u") {
                return Err(syntax(after, "unpaired high surrogate in \\u escape"));
            }
            let lo = hex4(buf, after + 2)?;
            if !(0xDC00..=0xDFFF).contains(&lo) {
                return Err(syntax(after, "unpaired high surrogate in \\u escape"));
            }
            let cp = 0x1_0000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            return char::from_u32(cp)
                .map(|c| (c, after + 6))
                .ok_or_else(|| syntax(pos, "invalid \\u escape"));
        }
        0xDC00..=0xDFFF => return Err(syntax(pos, "unpaired low surrogate in \\u escape")),
        cp => cp,
    };
    char::from_u32(cp)
        .map(|c| (c, after))
        .ok_or_else(|| syntax(pos, "invalid \\u escape"))
}

#[inline]
fn hex4(buf: &[u8], pos: usize) -> Result<u32, ScanError> {
    let mut v = 0u32;
    for at in pos..pos + 4 {
        let d = buf.get(at).copied().ok_or_else(|| eof(buf))?;
        let n = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return Err(syntax(at, "invalid hex digit in \\u escape")),
        };
        v = (v << 4) | u32::from(n);
    }
    Ok(v)
}

#[inline]
fn skip_digits(buf: &[u8], mut pos: usize) -> usize {
    while buf.get(pos).is_some_and(u8::is_ascii_digit) {
        pos += 1;
    }
    pos
}

/// Scans the number at `pos`: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
pub fn scan_number(buf: &[u8], pos: usize) -> Result<usize, ScanError> {
    let mut i = pos;
    if buf.get(i) == Some(&b'-') {
        i += 1;
    }
    match buf.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = skip_digits(buf, i + 1),
        Some(_) => return Err(syntax(i, "expected a digit")),
        None => return Err(eof(buf)),
    }
    if buf.get(i) == Some(&b'.') {
        let frac = skip_digits(buf, i + 1);
        if frac == i + 1 {
            return Err(syntax(frac, "expected a digit after '.'"));
        }
        i = frac;
    }
    if matches!(buf.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(buf.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = skip_digits(buf, i);
        if exp == i {
            return Err(syntax(i, "expected a digit in exponent"));
        }
        i = exp;
    }
    Ok(i)
}

/// Whether the raw string content `raw` (escapes possibly present) equals `lit` once decoded.
///
/// The unescaped case is a plain byte compare; the escaped case decodes (allocates; rare).
#[inline]
pub fn key_eq(raw: &[u8], escaped: bool, lit: &[u8]) -> bool {
    if !escaped {
        return raw == lit;
    }
    match super::encode::decode_json_string(raw) {
        Ok(s) => s.as_bytes() == lit,
        Err(_) => false,
    }
}

/// The value span of member `name` of the object at `at` (`None` if `at` is not an object, or
/// the member is absent). Validates the object's members on the way (no allocation).
pub fn member(buf: &[u8], at: Span, name: &[u8]) -> Option<Span> {
    let start = at.start as usize;
    if buf.get(start) != Some(&b'{') {
        return None;
    }
    let mut found = None;
    for_each_member(buf, start, |k, escaped, v| {
        if found.is_none() && key_eq(k.get(buf), escaped, name) {
            found = Some(v);
        }
    })
    .ok()?;
    found
}

/// The value span at a path of object members from `at` (e.g. `result` → `task` → `taskId`).
pub fn path(buf: &[u8], at: Span, names: &[&[u8]]) -> Option<Span> {
    names
        .iter()
        .try_fold(at, |span, name| member(buf, span, name))
}

#[cfg(test)]
pub(crate) mod tests;
