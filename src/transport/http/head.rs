//! Message heads: methods, the zero-copy header map, framing-relevant header rules, and the
//! one incremental head-reading loop shared by server and client.
//!
//! Key types: [`Method`], [`Headers`]. `Headers` keeps the frozen head block (`Bytes`) plus
//! a small vector of offset spans, so parsing a head allocates nothing per header and
//! handing out an owned value ([`Headers::get_bytes`]) is a refcount bump.
//!
//! Invariants: a head never exceeds `max_header_bytes` / `max_headers` (else
//! `HeadersTooLarge`); header names are compared ASCII case-insensitively and values are
//! stored with surrounding whitespace trimmed. Framing rules (Content-Length,
//! Transfer-Encoding, Connection) live here once, for both directions.
//!
//! Errors: invalid syntax → `Malformed` with a fixed reason; nothing panics on input.
//! Perf: httparse is re-run only when a read brought a new line terminator, so a head that
//! trickles in byte by byte costs O(lines × size), not O(size²).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::{
    io::AsyncReadRent,
    time::{timeout, timeout_at, Instant},
};
use smallvec::SmallVec;

use super::{body::read_more, HttpError, HttpLimits};

/// Request methods the gateway distinguishes; anything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// `HEAD`
    Head,
    /// `PUT`
    Put,
    /// Any other (syntactically valid) method token.
    Other,
}

impl Method {
    /// Classifies a method token; methods are case-sensitive per RFC 9110.
    pub fn from_bytes(token: &[u8]) -> Method {
        match token {
            b"GET" => Method::Get,
            b"POST" => Method::Post,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"HEAD" => Method::Head,
            b"PUT" => Method::Put,
            _ => Method::Other,
        }
    }

    /// The canonical token (`"OTHER"` for unrecognised methods).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Head => "HEAD",
            Method::Put => "PUT",
            Method::Other => "OTHER",
        }
    }
}

/// Where one header's name and value sit inside the head block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    name: (u32, u32),
    value: (u32, u32),
}

/// Header fields of one message, as zero-copy views into the received head.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    block: Bytes,
    spans: SmallVec<[Span; 16]>,
}

impl Headers {
    /// Number of header fields (repeated names count once per occurrence).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when the message had no header fields.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn name_of(&self, s: &Span) -> &[u8] {
        self.block
            .get(s.name.0 as usize..s.name.1 as usize)
            .unwrap_or(&[])
    }

    fn value_of(&self, s: &Span) -> &[u8] {
        self.block
            .get(s.value.0 as usize..s.value.1 as usize)
            .unwrap_or(&[])
    }

    /// All fields in received order, as `(name, value)`; names keep their original case.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans
            .iter()
            .map(|s| (self.name_of(s), self.value_of(s)))
    }

    /// The first value of `name` (ASCII case-insensitive), whitespace-trimmed.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.find(name).map(|s| self.value_of(s))
    }

    fn find(&self, name: &str) -> Option<&Span> {
        self.spans
            .iter()
            .find(|s| self.name_of(s).eq_ignore_ascii_case(name.as_bytes()))
    }

    /// The first value of `name` if it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `name`, in received order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.spans
            .iter()
            .filter(move |s| self.name_of(s).eq_ignore_ascii_case(name.as_bytes()))
            .map(move |s| self.value_of(s))
    }

    /// The first value of `name` as an owned, zero-copy `Bytes` (shares the head buffer).
    pub fn get_bytes(&self, name: &str) -> Option<Bytes> {
        let span = self.find(name)?;
        Some(
            self.block
                .slice(span.value.0 as usize..span.value.1 as usize),
        )
    }

    /// True when any value of `name`, read as a comma-separated list, contains `token`
    /// (ASCII case-insensitive), e.g. `has_token("connection", "close")`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name)
            .any(|v| list_tokens(v).any(|t| t.eq_ignore_ascii_case(token.as_bytes())))
    }

    /// Builds the map from httparse output; `base` is the buffer httparse parsed and
    /// `block` will be its first bytes once frozen, so offsets carry over unchanged.
    fn from_parsed(base: &[u8], parsed: &[httparse::Header<'_>]) -> SmallVec<[Span; 16]> {
        parsed
            .iter()
            .map(|h| {
                let name = offsets(base, h.name.as_bytes());
                let value = offsets(base, trim_ows(h.value));
                Span { name, value }
            })
            .collect()
    }
}

/// Offsets of `part` inside `base` (which it must borrow from), as u32 pairs; heads are
/// capped far below 4 GiB, so the narrowing cannot truncate a real head.
pub(crate) fn offsets(base: &[u8], part: &[u8]) -> (u32, u32) {
    let start = (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
    let end = start + part.len();
    (
        u32::try_from(start).unwrap_or(u32::MAX),
        u32::try_from(end).unwrap_or(u32::MAX),
    )
}

/// Strips optional whitespace (SP / HTAB) from both ends.
pub(crate) fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let Some(start) = start else { return &[] };
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(start);
    &v[start..=end]
}

/// The non-empty elements of a comma-separated header list, trimmed.
fn list_tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|b| *b == b',')
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

/// Body length announced by Content-Length: `None` if absent. Repeated fields or list
/// elements must all agree (RFC 9112 §6.3), otherwise the message is rejected, because
/// disagreeing lengths are the raw material of request smuggling.
pub(crate) fn content_length(headers: &Headers) -> Result<Option<u64>, HttpError> {
    let mut found: Option<u64> = None;
    for value in headers.get_all("content-length") {
        let mut any = false;
        for token in value.split(|b| *b == b',').map(trim_ows) {
            let n = parse_decimal(token).ok_or(HttpError::Malformed("invalid content-length"))?;
            if found.is_some_and(|f| f != n) {
                return Err(HttpError::Malformed("conflicting content-length"));
            }
            found = Some(n);
            any = true;
        }
        if !any {
            return Err(HttpError::Malformed("invalid content-length"));
        }
    }
    Ok(found)
}

/// Strict non-negative decimal: digits only, no sign, at most 18 digits (no overflow).
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')))
}

/// What Transfer-Encoding asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransferCoding {
    /// No Transfer-Encoding field.
    Absent,
    /// Exactly `chunked`: the only coding this layer decodes.
    Chunked,
    /// Some other coding list; `final_chunked` tells whether it at least ends in chunked
    /// (then the framing is known but the content coding is not supported).
    Other { final_chunked: bool },
}

/// Classifies the Transfer-Encoding fields (all occurrences form one list).
pub(crate) fn transfer_coding(headers: &Headers) -> TransferCoding {
    let mut count = 0usize;
    let mut last_chunked = false;
    let mut present = false;
    for value in headers.get_all("transfer-encoding") {
        present = true;
        for token in list_tokens(value) {
            count += 1;
            last_chunked = token.eq_ignore_ascii_case(b"chunked");
        }
    }
    match (present, count, last_chunked) {
        (false, _, _) => TransferCoding::Absent,
        (true, 1, true) => TransferCoding::Chunked,
        (true, _, final_chunked) => TransferCoding::Other { final_chunked },
    }
}

/// Persistence per RFC 9112 §9.3: HTTP/1.1 defaults to keep-alive unless `close` is
/// listed; HTTP/1.0 closes unless `keep-alive` is listed.
pub(crate) fn wants_keep_alive(version: u8, headers: &Headers) -> bool {
    if headers.has_token("connection", "close") {
        return false;
    }
    version >= 1 || headers.has_token("connection", "keep-alive")
}

/// Maps httparse's error to a fixed reason (too many headers is a size problem: 431).
pub(crate) fn map_parse_error(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::HeadersTooLarge,
        httparse::Error::HeaderName => HttpError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HttpError::Malformed("invalid header value"),
        httparse::Error::NewLine => HttpError::Malformed("invalid line ending"),
        httparse::Error::Status => HttpError::Malformed("invalid status"),
        httparse::Error::Token => HttpError::Malformed("invalid token"),
        httparse::Error::Version => HttpError::Malformed("invalid http version"),
    }
}

/// A complete head, detached from the read buffer.
pub(crate) struct RawHead {
    /// The frozen head block (start line + headers + blank line).
    pub block: Bytes,
    /// Header map over `block`.
    pub headers: Headers,
}

/// Splits the first `head_len` bytes off `buf` and wraps the spans computed from them.
pub(crate) fn detach_head(
    buf: &mut BytesMut,
    head_len: usize,
    spans: SmallVec<[Span; 16]>,
) -> RawHead {
    let block = buf.split_to(head_len).freeze();
    let headers = Headers {
        block: block.clone(),
        spans,
    };
    RawHead { block, headers }
}

/// Header spans for a parsed head (see [`Headers::from_parsed`]).
pub(crate) fn header_spans(base: &[u8], parsed: &[httparse::Header<'_>]) -> SmallVec<[Span; 16]> {
    Headers::from_parsed(base, parsed)
}

/// A scratch header array for httparse, sized by the limit; inline up to the default.
pub(crate) fn header_scratch<'a>(limits: &HttpLimits) -> SmallVec<[httparse::Header<'a>; 64]> {
    SmallVec::from_elem(httparse::EMPTY_HEADER, limits.max_headers.max(1))
}

/// Timeouts applied while waiting for a head; `None` means wait forever.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadTimeouts {
    /// While nothing of the head has arrived yet (server: between requests).
    pub idle: Option<Duration>,
    /// From the first byte of the head until it is complete.
    pub head: Option<Duration>,
}

/// How waiting for a head ended without a parsed head.
pub(crate) enum HeadWait<T> {
    /// A complete head was parsed.
    Parsed(T),
    /// The peer closed (or only sent blank lines) before a head began.
    Closed,
    /// The idle timeout expired before a head began.
    Idle,
}

/// Reads into `buf` until `parse` returns a head, enforcing size and time limits.
///
/// `parse` sees the whole buffer each time and returns `Ok(None)` while the head is
/// incomplete; it must itself reject a complete head longer than `max_header_bytes`. A
/// timed-out read is dropped mid-flight; that is only done here because the connection is
/// closed in both cases (idle: quietly, head: after a 408).
pub(crate) async fn read_head<S, T, P>(
    stream: &mut S,
    buf: &mut BytesMut,
    limits: &HttpLimits,
    timeouts: HeadTimeouts,
    mut parse: P,
) -> Result<HeadWait<T>, HttpError>
where
    S: AsyncReadRent,
    P: FnMut(&mut BytesMut) -> Result<Option<T>, HttpError>,
{
    let mut deadline = None;
    let mut started = false;
    let mut scanned = 0usize;
    loop {
        if !started && !buf.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            // The head begins with its first non-blank byte; the clock starts there.
            started = true;
            deadline = timeouts.head.and_then(|d| Instant::now().checked_add(d));
        }
        // A head can only complete with a new line terminator; skip re-parsing otherwise.
        if scanned == 0 || buf.get(scanned..).is_some_and(|new| new.contains(&b'\n')) {
            if let Some(head) = parse(buf)? {
                return Ok(HeadWait::Parsed(head));
            }
        }
        if buf.len() > limits.max_header_bytes {
            return Err(HttpError::HeadersTooLarge);
        }
        scanned = buf.len();
        let n = match (started, deadline, timeouts.idle) {
            (true, Some(at), _) => timeout_at(at, read_more(stream, buf))
                .await
                .map_err(|_| HttpError::Timeout)??,
            (false, _, Some(idle)) => match timeout(idle, read_more(stream, buf)).await {
                Ok(r) => r?,
                Err(_) => return Ok(HeadWait::Idle),
            },
            _ => read_more(stream, buf).await?,
        };
        if n == 0 {
            return if started {
                Err(HttpError::unexpected_eof())
            } else {
                Ok(HeadWait::Closed)
            };
        }
    }
}
