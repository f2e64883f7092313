//! The JSON-RPC 2.0 envelope: one validating pass over a message, spans of the parts that
//! routing needs, no tree, no allocation on the common path.
//!
//! Key types: [`Envelope`] (kind + spans into the caller's buffer), [`Kind`], [`IdKind`],
//! [`Reference`], [`Message`] (single or batch), [`WireError`].
//!
//! What is recorded: top-level `jsonrpc`, `id`, `method`, `params`, `result`, `error`; inside an
//! object `params`: `name`, `uri`, `cursor`, `_meta` (+ `_meta.progressToken`), `ref`
//! (+ `type`, `name`, `uri`), `requestId`, `progressToken`, and a 2026-07-28 retry's
//! `requestState` / `inputResponses` (value spans). Every other member is validated
//! and skipped. `params` fields with an unexpected type are left `None` (the method handler
//! decides whether that is an `INVALID_PARAMS`); the envelope layer only judges JSON-RPC shape.
//!
//! Invariants / rules (the whole object is scanned before any verdict, since keys may come in
//! any order and SDKs put `id` last):
//! * invalid JSON anywhere → [`WireError::Parse`] (or [`WireError::TooDeep`]); this wins over
//!   any shape problem;
//! * `"jsonrpc": "2.0"` is required; `method` must be a string; `id` a string, number or null;
//!   `params` an object or array; `error` an object;
//! * request = `method` + `id` (id must not be null, as MCP requires); notification = `method`
//!   without `id`; response = `id` + exactly one of `result` / `error`, and no `method` or
//!   `params`; a `result` response must not have a null id (it answers nothing);
//! * duplicate members: any duplicate of a member this module records (at any level) is
//!   rejected as [`WireError::Invalid`]: a gateway that routes on the first `name` while the
//!   downstream obeys the last one would be a policy bypass. Unrecorded duplicates pass.
//! * shape errors are [`WireError::Invalid`] carrying the id when it was present, valid and
//!   unique, so the error reply can echo it.
//!
//! Spans: string fields (`method`, `name`, `uri`, `cursor`, `ref.type/name/uri`) are CONTENT
//! spans (no quotes, escapes not decoded; see the `*_escaped` flags). `id`, `progress_token`
//! and `request_id` are RAW token spans (quotes included) so they can be copied back verbatim.
//! All spans are absolute offsets into the buffer given to [`parse`] / [`parse_at`].
//!
//! Perf: one pass; the only allocation is decoding a `method` that contains escapes (rare).

use std::borrow::Cow;
use std::fmt;

use smallvec::SmallVec;

use self::draft::Draft;
use super::encode::decode_json_string;
use super::names::code;
pub use super::scan::Span;
use super::scan::{
    expect_end, skip_value_depth, skip_ws, walk_array, walk_object, ScanError, ScanErrorKind,
    MAX_DEPTH,
};

mod draft;

/// The JSON type of an `id` (or other id-like token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// A JSON number (integer or not).
    Number,
    /// A JSON string; the span includes the quotes.
    String,
    /// `null` (only legal in error responses).
    Null,
}

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `method` + `id`: expects a response.
    Request,
    /// `method` without `id`: fire and forget.
    Notification,
    /// `id` + `result`.
    Response,
    /// `id` + `error`.
    Error,
}

/// `params.ref` of `completion/complete`: which prompt or resource template to complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference {
    /// Content span of `ref.type` (`ref/prompt` or `ref/resource`).
    pub kind: Span,
    /// Content span of `ref.name` (prompts).
    pub name: Option<Span>,
    /// Content span of `ref.uri` (resource templates).
    pub uri: Option<Span>,
    /// Whether any of the three strings contains escapes.
    pub escaped: bool,
}

/// The scanned envelope of one JSON-RPC message. Spans point into the parsed buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Request, notification, response or error.
    pub kind: Kind,
    /// Content span of `method` (requests and notifications).
    pub method: Option<Span>,
    /// `method` decoded, set only when the raw method contains escapes (rare).
    pub method_decoded: Option<Box<str>>,
    /// Raw `id` token span (quotes included) and its type; `None` for notifications.
    pub id: Option<(Span, IdKind)>,
    /// Raw span of `params` (object or array).
    pub params: Option<Span>,
    /// Raw span of `result`.
    pub result: Option<Span>,
    /// Raw span of `error` (an object).
    pub error: Option<Span>,
    /// Content span of `params.name` when it is a string.
    pub name: Option<Span>,
    /// Whether `name` contains escapes (decode with [`Envelope::name_str`]).
    pub name_escaped: bool,
    /// Content span of `params.uri` when it is a string.
    pub uri: Option<Span>,
    /// Whether `uri` contains escapes.
    pub uri_escaped: bool,
    /// Content span of `params.cursor` when it is a string.
    pub cursor: Option<Span>,
    /// Whether `cursor` contains escapes.
    pub cursor_escaped: bool,
    /// Raw span of `params._meta` when it is an object.
    pub meta: Option<Span>,
    /// Raw token span of the progress token (string with quotes, or number): from
    /// `params.progressToken` for `notifications/progress`, else from `params._meta.progressToken`.
    pub progress_token: Option<Span>,
    /// `params.ref` when it is an object with a string `type`.
    pub reference: Option<Reference>,
    /// Raw token span of `params.requestId` (string or number), for `notifications/cancelled`.
    pub request_id: Option<Span>,
    /// Raw value span of `params.requestState` (a 2026-07-28 retry), found by the same scan.
    pub request_state: Option<Span>,
    /// Raw value span of `params.inputResponses` (a 2026-07-28 retry).
    pub input_responses: Option<Span>,
}

impl Envelope {
    /// The method name: decoded if it had escapes, else the raw span as `&str`.
    pub fn method<'a>(&'a self, buf: &'a [u8]) -> Option<&'a str> {
        if let Some(m) = &self.method_decoded {
            return Some(m);
        }
        self.method
            .and_then(|s| std::str::from_utf8(s.get(buf)).ok())
    }

    /// The raw `id` token bytes (e.g. `42` or `"abc"` with quotes), if any.
    pub fn id_raw<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        self.id.map(|(s, _)| s.get(buf))
    }

    /// `params.name` decoded (borrowed unless it had escapes).
    pub fn name_str<'a>(&self, buf: &'a [u8]) -> Option<Cow<'a, str>> {
        content_str(buf, self.name?, self.name_escaped)
    }

    /// `params.uri` decoded (borrowed unless it had escapes).
    pub fn uri_str<'a>(&self, buf: &'a [u8]) -> Option<Cow<'a, str>> {
        content_str(buf, self.uri?, self.uri_escaped)
    }

    /// `params.cursor` decoded (borrowed unless it had escapes).
    pub fn cursor_str<'a>(&self, buf: &'a [u8]) -> Option<Cow<'a, str>> {
        content_str(buf, self.cursor?, self.cursor_escaped)
    }
}

/// Decodes a validated string content span; `None` only if the span is not from `buf`.
pub fn content_str(buf: &[u8], span: Span, escaped: bool) -> Option<Cow<'_, str>> {
    let raw = span.get(buf);
    if escaped {
        decode_json_string(raw).ok()
    } else {
        std::str::from_utf8(raw).ok().map(Cow::Borrowed)
    }
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Not JSON: reply `PARSE_ERROR` with a null id.
    Parse {
        /// Byte offset of the problem.
        offset: usize,
        /// Static description.
        reason: &'static str,
    },
    /// JSON, but not a valid JSON-RPC message: reply `INVALID_REQUEST`, echoing `id` if known.
    Invalid {
        /// The message's id when it was present, well-typed and unique.
        id: Option<(Span, IdKind)>,
        /// Static description.
        reason: &'static str,
    },
    /// JSON nested deeper than the limit.
    TooDeep,
}

impl WireError {
    /// The JSON-RPC error code to answer with (too-deep JSON is a refused, not broken, request).
    pub fn code(&self) -> i32 {
        match self {
            WireError::Parse { .. } => code::PARSE_ERROR,
            WireError::Invalid { .. } | WireError::TooDeep => code::INVALID_REQUEST,
        }
    }

    /// The id to echo in the error reply (`None` → `null`).
    pub fn id(&self) -> Option<(Span, IdKind)> {
        match self {
            WireError::Invalid { id, .. } => *id,
            _ => None,
        }
    }

    /// Static description.
    pub fn reason(&self) -> &'static str {
        match self {
            WireError::Parse { reason, .. } | WireError::Invalid { reason, .. } => reason,
            WireError::TooDeep => "JSON nested too deeply",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Parse { offset, reason } => {
                write!(f, "parse error: {reason} at byte {offset}")
            }
            WireError::Invalid { reason, .. } => write!(f, "invalid request: {reason}"),
            WireError::TooDeep => f.write_str("JSON nested too deeply"),
        }
    }
}

impl std::error::Error for WireError {}

impl From<ScanError> for WireError {
    fn from(e: ScanError) -> Self {
        match e.kind {
            ScanErrorKind::Syntax => WireError::Parse {
                offset: e.offset,
                reason: e.reason,
            },
            ScanErrorKind::TooDeep => WireError::TooDeep,
        }
    }
}

/// A top-level message: one envelope or a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A single message.
    Single(Envelope),
    /// A non-empty batch: raw spans of each element, absolute in the buffer; parse each with
    /// [`parse_at`] (elements that are not objects come back as `Invalid` there).
    Batch(SmallVec<[Span; 8]>),
}

/// Parses one message (a JSON object) filling the whole buffer (whitespace allowed around it).
pub fn parse(buf: &[u8]) -> Result<Envelope, WireError> {
    check_len(buf)?;
    parse_value_at(buf, skip_ws(buf, 0))
}

/// Parses the batch element at `span` of `buf`; spans in the result are absolute in `buf`.
pub fn parse_at(buf: &[u8], span: Span) -> Result<Envelope, WireError> {
    check_len(buf)?;
    match buf.get(..span.end as usize) {
        Some(head) if span.start <= span.end => parse_value_at(head, span.start as usize),
        _ => Err(WireError::Parse {
            offset: buf.len(),
            reason: "span outside the message",
        }),
    }
}

/// Parses a message that may be a batch. A single object gives [`Message::Single`]; an array
/// gives [`Message::Batch`] (validated, elements not yet interpreted); `[]` is `Invalid`.
pub fn parse_message(buf: &[u8]) -> Result<Message, WireError> {
    check_len(buf)?;
    let start = skip_ws(buf, 0);
    if buf.get(start) != Some(&b'[') {
        return parse_value_at(buf, start).map(Message::Single);
    }
    let mut spans = SmallVec::new();
    let end = walk_array(buf, start, MAX_DEPTH, |v, depth| {
        let e = skip_value_depth(buf, v, depth)?;
        spans.push(Span::new(v, e));
        Ok(e)
    })?;
    expect_end(buf, end)?;
    if spans.is_empty() {
        return Err(invalid(None, "empty batch"));
    }
    Ok(Message::Batch(spans))
}

fn check_len(buf: &[u8]) -> Result<(), WireError> {
    if buf.len() > u32::MAX as usize {
        return Err(WireError::Parse {
            offset: u32::MAX as usize,
            reason: "message too large",
        });
    }
    Ok(())
}

#[cold]
fn invalid(id: Option<(Span, IdKind)>, reason: &'static str) -> WireError {
    WireError::Invalid { id, reason }
}

/// Parses the value at `start`, which must be followed only by whitespace up to `buf.len()`.
fn parse_value_at(buf: &[u8], start: usize) -> Result<Envelope, WireError> {
    if buf.get(start) != Some(&b'{') {
        // Still validate: garbage must be a Parse error, not an Invalid one.
        let end = skip_value_depth(buf, start, MAX_DEPTH)?;
        expect_end(buf, end)?;
        let reason = if buf.get(start) == Some(&b'[') {
            "batch not allowed here"
        } else {
            "message must be a JSON object"
        };
        return Err(invalid(None, reason));
    }
    let mut draft = Draft::default();
    let end = walk_object(buf, start, MAX_DEPTH, |k, v, depth| {
        draft.top_member(buf, k, v, depth)
    })?;
    expect_end(buf, end)?;
    draft.finish(buf)
}

#[cfg(test)]
mod tests;
