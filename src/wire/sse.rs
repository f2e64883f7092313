//! Server-Sent Events framing (WHATWG HTML "event stream" format): incremental decoder and
//! encoder.
//!
//! Role: MCP Streamable HTTP carries JSON-RPC messages as SSE events, both from downstream
//! servers (decoded here) and to clients (encoded here). The decoder is fed arbitrary chunks
//! (split anywhere, even inside a CRLF or the BOM) and yields whole events.
//!
//! Key types: [`SseDecoder`], [`SseEvent`], [`SseError`]; [`encode_event`], [`encode_comment`].
//!
//! Decoding rules (WHATWG): one optional leading UTF-8 BOM is dropped; lines end with CRLF, LF
//! or CR; a line starting with `:` is a comment; `field:value` with one leading space of the
//! value stripped; a line without `:` is a field with an empty value; `data` lines are joined
//! with `\n`; `id` values containing NUL are ignored; `retry` must be all ASCII digits; unknown
//! fields are ignored; a blank line dispatches; an unterminated event at end of stream is
//! discarded (it is simply never completed).
//!
//! Deviation, on purpose: a block with an `id` field but no `data` IS dispatched (with empty
//! data), because MCP servers prime resumption with such events and the gateway must see the
//! id. Blocks with neither `data` nor `id` (e.g. only `event:` or `retry:`) are not dispatched;
//! `retry` is kept in [`SseDecoder::retry`]. The persistent last event id (which per spec
//! survives events without an `id`) is [`SseDecoder::last_event_id`]; [`SseEvent::id`] is only
//! the id sent in that event's own block.
//!
//! Errors: an event (accumulated data + the pending line) larger than the configured limit is
//! [`SseError::EventTooLarge`]; the decoder is then poisoned and the stream must be dropped.
//!
//! Perf: complete lines inside a chunk are processed in place; only a line split across chunks
//! is copied into the carry-over buffer. Event data is accumulated in a `BytesMut` and frozen.

use std::collections::VecDeque;
use std::fmt;

use bytes::{Bytes, BytesMut};

/// Field names of the event stream format.
mod field {
    pub const DATA: &[u8] = b"data";
    pub const EVENT: &[u8] = b"event";
    pub const ID: &[u8] = b"id";
    pub const RETRY: &[u8] = b"retry";
}

/// The UTF-8 byte order mark, dropped once at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `id` field of this event's block, if it had one (may be empty: "reset").
    pub id: Option<String>,
    /// The `event` field (event type); `None` means the default type `message`.
    pub event: Option<String>,
    /// The `data` lines joined with `\n` (no trailing newline).
    pub data: Bytes,
    /// The `retry` field of this block, in milliseconds.
    pub retry: Option<u64>,
}

/// Decoding failure; the stream cannot be resumed after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseError {
    /// An event exceeded the configured maximum size (bytes).
    EventTooLarge {
        /// The configured limit.
        limit: usize,
    },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::EventTooLarge { limit } => write!(f, "SSE event larger than {limit} bytes"),
        }
    }
}

impl std::error::Error for SseError {}

/// Incremental SSE decoder: [`feed`](Self::feed) chunks, pop [`next_event`](Self::next_event).
#[derive(Debug)]
pub struct SseDecoder {
    max_event_size: usize,
    /// Bytes of a line not yet terminated (also holds the first bytes while checking the BOM).
    line: Vec<u8>,
    /// The previous chunk ended in CR: a leading LF of the next chunk belongs to it.
    pending_cr: bool,
    bom_checked: bool,
    failed: bool,
    data: BytesMut,
    saw_data: bool,
    event: Option<String>,
    id: Option<String>,
    block_retry: Option<u64>,
    last_event_id: Option<String>,
    reconnect_ms: Option<u64>,
    ready: VecDeque<SseEvent>,
}

impl SseDecoder {
    /// A decoder refusing events larger than `max_event_size` bytes.
    pub fn new(max_event_size: usize) -> Self {
        SseDecoder {
            max_event_size,
            line: Vec::new(),
            pending_cr: false,
            bom_checked: false,
            failed: false,
            data: BytesMut::new(),
            saw_data: false,
            event: None,
            id: None,
            block_retry: None,
            last_event_id: None,
            reconnect_ms: None,
            ready: VecDeque::new(),
        }
    }

    /// Consumes the next chunk of the stream; complete events become available from
    /// [`next_event`](Self::next_event). Events completed before an error stay available.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), SseError> {
        if self.failed {
            return Err(self.too_large());
        }
        let result = if self.bom_checked {
            self.process(chunk)
        } else {
            self.feed_head(chunk)
        };
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Buffers the first bytes until the presence of a BOM is decided.
    fn feed_head(&mut self, chunk: &[u8]) -> Result<(), SseError> {
        self.line.extend_from_slice(chunk);
        if self.line.len() < BOM.len() && BOM.starts_with(&self.line) {
            return Ok(());
        }
        self.bom_checked = true;
        let head = std::mem::take(&mut self.line);
        let body = head.strip_prefix(BOM).unwrap_or(&head);
        self.process(body)
    }

    /// The next complete event, if any.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.ready.pop_front()
    }

    /// The last event id seen on the stream (persists across events without `id`).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// The last `retry` value (reconnection delay in ms) seen on the stream.
    pub fn retry(&self) -> Option<u64> {
        self.reconnect_ms
    }

    /// Whether no partial line or event is pending (a stream ending now lost nothing).
    pub fn is_idle(&self) -> bool {
        self.line.is_empty() && !self.saw_data && self.id.is_none() && self.event.is_none()
    }

    fn too_large(&self) -> SseError {
        SseError::EventTooLarge {
            limit: self.max_event_size,
        }
    }

    fn check_size(&self, extra: usize) -> Result<(), SseError> {
        if self.data.len() + self.line.len() + extra > self.max_event_size {
            return Err(self.too_large());
        }
        Ok(())
    }

    fn process(&mut self, mut rest: &[u8]) -> Result<(), SseError> {
        if rest.is_empty() {
            return Ok(());
        }
        if std::mem::take(&mut self.pending_cr) {
            if let [b'\n', tail @ ..] = rest {
                rest = tail;
            }
        }
        while let Some(i) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let mut next = i + 1;
            if rest[i] == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.pending_cr = true,
                }
            }
            if self.line.is_empty() {
                self.process_line(&rest[..i])?;
            } else {
                self.check_size(i)?;
                self.line.extend_from_slice(&rest[..i]);
                let mut line = std::mem::take(&mut self.line);
                let result = self.process_line(&line);
                line.clear();
                self.line = line;
                result?;
            }
            rest = &rest[next..];
        }
        self.check_size(rest.len())?;
        self.line.extend_from_slice(rest);
        Ok(())
    }

    fn process_line(&mut self, line: &[u8]) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch();
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            field::DATA => {
                self.check_size(value.len() + 1)?;
                self.data.extend_from_slice(value);
                self.data.extend_from_slice(b"\n");
                self.saw_data = true;
            }
            field::EVENT => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            field::ID if !value.contains(&0) => {
                let id = String::from_utf8_lossy(value).into_owned();
                self.last_event_id = Some(id.clone());
                self.id = Some(id);
            }
            field::RETRY => {
                if let Some(ms) = parse_retry(value) {
                    self.block_retry = Some(ms);
                    self.reconnect_ms = Some(ms);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Blank line: emit the block as an event (if it had data or an id) and reset it.
    fn dispatch(&mut self) {
        let event = self.event.take();
        let id = self.id.take();
        let retry = self.block_retry.take();
        if !std::mem::take(&mut self.saw_data) && id.is_none() {
            return;
        }
        let mut data = self.data.split();
        if data.last() == Some(&b'\n') {
            data.truncate(data.len() - 1);
        }
        self.ready.push_back(SseEvent {
            id,
            event,
            data: data.freeze(),
            retry,
        });
    }
}

/// `retry` values: ASCII digits only; anything else (or overflow) is ignored.
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Appends `value` minus the bytes that would break the framing (CR, LF, and NUL which would
/// make a client drop an id).
fn push_field_value(out: &mut Vec<u8>, value: &str) {
    debug_assert!(
        !value.contains(['\r', '\n', '\0']),
        "SSE field value with line break or NUL: {value:?}"
    );
    out.extend(
        value
            .bytes()
            .filter(|b| !matches!(b, b'\r' | b'\n' | b'\0')),
    );
}

/// Appends one event: optional `event:` and `id:` lines, then `data` split on CRLF / LF / CR
/// into `data:` lines (so it decodes back to the same bytes with `\n`), then the blank line.
///
/// `event` and `id` must not contain line breaks (debug-asserted; stripped in release).
pub fn encode_event(out: &mut Vec<u8>, event: Option<&str>, id: Option<&str>, data: &[u8]) {
    out.reserve(data.len() + 16);
    if let Some(ev) = event {
        out.extend_from_slice(b"event: ");
        push_field_value(out, ev);
        out.push(b'\n');
    }
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        push_field_value(out, id);
        out.push(b'\n');
    }
    let mut rest = data;
    loop {
        out.extend_from_slice(b"data: ");
        match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(i) => {
                out.extend_from_slice(&rest[..i]);
                out.push(b'\n');
                let crlf = rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n');
                rest = &rest[i + if crlf { 2 } else { 1 }..];
            }
            None => {
                out.extend_from_slice(rest);
                out.push(b'\n');
                break;
            }
        }
    }
    out.push(b'\n');
}

/// Appends a comment line (`: text`), used as a keep-alive; never dispatched by clients.
pub fn encode_comment(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b": ");
    push_field_value(out, text);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests;
