//! The JSON-RPC 2.0 envelope: one validating pass over a message, spans of the parts that
//! routing needs, no tree, no allocation on the common path.
//!
//! Key types: [`Envelope`] (kind + spans into the caller's buffer), [`Kind`], [`IdKind`],
//! [`Reference`], [`Message`] (single or batch), [`WireError`].
//!
//! What is recorded: top-level `jsonrpc`, `id`, `method`, `params`, `result`, `error`; inside an
//! object `params`: `name`, `uri`, `cursor`, `_meta` (+ `_meta.progressToken`), `ref`
//! (+ `type`, `name`, `uri`), `requestId`, `progressToken`. Every other member is validated
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

use super::encode::decode_json_string;
use super::names::{code, key, method, JSONRPC_VERSION};
pub use super::scan::Span;
use super::scan::{
    expect_end, scan_number, scan_string, skip_value_depth, skip_ws, walk_array, walk_object,
    ScanError, ScanErrorKind, StrToken, MAX_DEPTH,
};

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

/// Member bits for duplicate detection, one namespace per object level.
mod bit {
    pub const JSONRPC: u16 = 1 << 0;
    pub const ID: u16 = 1 << 1;
    pub const METHOD: u16 = 1 << 2;
    pub const PARAMS: u16 = 1 << 3;
    pub const RESULT: u16 = 1 << 4;
    pub const ERROR: u16 = 1 << 5;
    pub const NAME: u16 = 1 << 6;
    pub const URI: u16 = 1 << 7;
    pub const CURSOR: u16 = 1 << 8;
    pub const META: u16 = 1 << 9;
    pub const REF: u16 = 1 << 10;
    pub const REQUEST_ID: u16 = 1 << 11;
    pub const PROGRESS: u16 = 1 << 12;
    pub const TYPE: u16 = 1 << 13;
}

/// Everything gathered while walking the message, judged only in [`Draft::finish`].
#[derive(Default)]
struct Draft {
    jsonrpc_ok: bool,
    /// Top-level members seen (`bit::*`), for duplicate detection.
    top_seen: u16,
    id: Option<(Span, IdKind)>,
    /// The id cannot be trusted for the error reply (wrong type or duplicated).
    id_unusable: bool,
    method: Option<StrToken>,
    params: Option<Span>,
    result: Option<Span>,
    error: Option<Span>,
    name: Option<StrToken>,
    uri: Option<StrToken>,
    cursor: Option<StrToken>,
    meta: Option<Span>,
    meta_progress: Option<Span>,
    params_progress: Option<Span>,
    reference: Option<Reference>,
    request_id: Option<Span>,
    /// First shape violation seen; reported only if the JSON is valid throughout.
    invalid: Option<&'static str>,
}

/// Raw key bytes, decoded first in the rare escaped case.
fn key_bytes<'a>(buf: &'a [u8], k: StrToken) -> Result<Cow<'a, [u8]>, ScanError> {
    let raw = k.content().get(buf);
    if !k.escaped {
        return Ok(Cow::Borrowed(raw));
    }
    let s = decode_json_string(raw).map_err(|e| ScanError {
        offset: e.offset + k.start + 1,
        ..e
    })?;
    Ok(Cow::Owned(s.into_owned().into_bytes()))
}

/// Records `bit` in `seen`; returns whether it was already there.
#[inline]
fn mark(seen: &mut u16, bit: u16) -> bool {
    let dup = *seen & bit != 0;
    *seen |= bit;
    dup
}

/// Scans a string value if there is one at `v`, else skips whatever is there.
#[inline]
fn string_or_skip(
    buf: &[u8],
    v: usize,
    depth: usize,
) -> Result<(Option<StrToken>, usize), ScanError> {
    if buf.get(v) == Some(&b'"') {
        let s = scan_string(buf, v)?;
        Ok((Some(s), s.end))
    } else {
        Ok((None, skip_value_depth(buf, v, depth)?))
    }
}

/// Scans an id-like token (string or number) at `v`; other types are skipped and give `None`.
#[inline]
fn token_or_skip(buf: &[u8], v: usize, depth: usize) -> Result<(Option<Span>, usize), ScanError> {
    let end = match buf.get(v) {
        Some(b'"') => scan_string(buf, v)?.end,
        Some(b'-' | b'0'..=b'9') => scan_number(buf, v)?,
        _ => return Ok((None, skip_value_depth(buf, v, depth)?)),
    };
    Ok((Some(Span::new(v, end)), end))
}

impl Draft {
    #[inline]
    fn flag(&mut self, reason: &'static str) {
        self.invalid.get_or_insert(reason);
    }

    /// Records a member of the current object level; flags duplicates.
    #[inline]
    fn seen(&mut self, seen: &mut u16, b: u16, reason: &'static str) {
        if mark(seen, b) {
            self.flag(reason);
        }
    }

    fn top_member(
        &mut self,
        buf: &[u8],
        k: StrToken,
        v: usize,
        depth: usize,
    ) -> Result<usize, ScanError> {
        let name = key_bytes(buf, k)?;
        let mut seen = self.top_seen;
        const DUP: &str = "duplicate member";
        let end = match &*name {
            key::JSONRPC => {
                self.seen(&mut seen, bit::JSONRPC, DUP);
                self.on_jsonrpc(buf, v, depth)
            }
            key::ID => {
                if seen & bit::ID != 0 {
                    self.id_unusable = true;
                }
                self.seen(&mut seen, bit::ID, DUP);
                self.on_id(buf, v, depth)
            }
            key::METHOD => {
                self.seen(&mut seen, bit::METHOD, DUP);
                self.on_method(buf, v, depth)
            }
            key::PARAMS => {
                self.seen(&mut seen, bit::PARAMS, DUP);
                self.on_params(buf, v, depth)
            }
            key::RESULT => {
                self.seen(&mut seen, bit::RESULT, DUP);
                self.on_result(buf, v, depth)
            }
            key::ERROR => {
                self.seen(&mut seen, bit::ERROR, DUP);
                self.on_error(buf, v, depth)
            }
            _ => skip_value_depth(buf, v, depth),
        };
        self.top_seen = seen;
        end
    }

    fn on_jsonrpc(&mut self, buf: &[u8], v: usize, depth: usize) -> Result<usize, ScanError> {
        let (s, end) = string_or_skip(buf, v, depth)?;
        self.jsonrpc_ok = s.is_some_and(|s| {
            super::scan::key_eq(s.content().get(buf), s.escaped, JSONRPC_VERSION.as_bytes())
        });
        Ok(end)
    }

    fn on_id(&mut self, buf: &[u8], v: usize, depth: usize) -> Result<usize, ScanError> {
        let (kind, end) = match buf.get(v) {
            Some(b'"') => (IdKind::String, scan_string(buf, v)?.end),
            Some(b'-' | b'0'..=b'9') => (IdKind::Number, scan_number(buf, v)?),
            Some(b'n') => (IdKind::Null, skip_value_depth(buf, v, depth)?),
            _ => {
                self.id_unusable = true;
                self.flag("id must be a string, number or null");
                return skip_value_depth(buf, v, depth);
            }
        };
        self.id = Some((Span::new(v, end), kind));
        Ok(end)
    }

    fn on_method(&mut self, buf: &[u8], v: usize, depth: usize) -> Result<usize, ScanError> {
        let (s, end) = string_or_skip(buf, v, depth)?;
        if s.is_none() {
            self.flag("method must be a string");
        }
        self.method = s;
        Ok(end)
    }

    fn on_params(&mut self, buf: &[u8], v: usize, depth: usize) -> Result<usize, ScanError> {
        let end = match buf.get(v) {
            Some(b'{') => {
                let mut seen = 0u16;
                walk_object(buf, v, depth, |k, pv, d| {
                    self.params_member(buf, &mut seen, k, pv, d)
                })?
            }
            Some(b'[') => skip_value_depth(buf, v, depth)?,
            _ => {
                self.flag("params must be an object or array");
                skip_value_depth(buf, v, depth)?
            }
        };
        self.params = Some(Span::new(v, end));
        Ok(end)
    }

    fn on_result(&mut self, buf: &[u8], v: usize, depth: usize) -> Result<usize, ScanError> {
        let end = skip_value_depth(buf, v, depth)?;
        self.result = Some(Span::new(v, end));
        Ok(end)
    }

    fn on_error(&mut self, buf: &[u8], v: usize, depth: usize) -> Result<usize, ScanError> {
        if buf.get(v) != Some(&b'{') {
            self.flag("error must be an object");
        }
        let end = skip_value_depth(buf, v, depth)?;
        self.error = Some(Span::new(v, end));
        Ok(end)
    }

    fn params_member(
        &mut self,
        buf: &[u8],
        seen: &mut u16,
        k: StrToken,
        v: usize,
        depth: usize,
    ) -> Result<usize, ScanError> {
        let name = key_bytes(buf, k)?;
        let (b, end) = match &*name {
            key::NAME => {
                let (s, e) = string_or_skip(buf, v, depth)?;
                self.name = s;
                (bit::NAME, e)
            }
            key::URI => {
                let (s, e) = string_or_skip(buf, v, depth)?;
                self.uri = s;
                (bit::URI, e)
            }
            key::CURSOR => {
                let (s, e) = string_or_skip(buf, v, depth)?;
                self.cursor = s;
                (bit::CURSOR, e)
            }
            key::META => (bit::META, self.on_meta(buf, v, depth)?),
            key::REF => (bit::REF, self.on_ref(buf, v, depth)?),
            key::REQUEST_ID => {
                let (t, e) = token_or_skip(buf, v, depth)?;
                self.request_id = t;
                (bit::REQUEST_ID, e)
            }
            key::PROGRESS_TOKEN => {
                let (t, e) = token_or_skip(buf, v, depth)?;
                self.params_progress = t;
                (bit::PROGRESS, e)
            }
            _ => return skip_value_depth(buf, v, depth),
        };
        self.seen(seen, b, "duplicate member in params");
        Ok(end)
    }

    fn on_meta(&mut self, buf: &[u8], v: usize, depth: usize) -> Result<usize, ScanError> {
        if buf.get(v) != Some(&b'{') {
            self.meta = None;
            return skip_value_depth(buf, v, depth);
        }
        let mut seen = 0u16;
        let end = walk_object(buf, v, depth, |k, mv, d| {
            if &*key_bytes(buf, k)? != key::PROGRESS_TOKEN {
                return skip_value_depth(buf, mv, d);
            }
            let (t, e) = token_or_skip(buf, mv, d)?;
            self.meta_progress = t;
            self.seen(&mut seen, bit::PROGRESS, "duplicate member in _meta");
            Ok(e)
        })?;
        self.meta = Some(Span::new(v, end));
        Ok(end)
    }

    fn on_ref(&mut self, buf: &[u8], v: usize, depth: usize) -> Result<usize, ScanError> {
        self.reference = None;
        if buf.get(v) != Some(&b'{') {
            return skip_value_depth(buf, v, depth);
        }
        let mut seen = 0u16;
        let mut parts: [Option<StrToken>; 3] = [None; 3];
        let end = walk_object(buf, v, depth, |k, rv, d| {
            let (slot, b) = match &*key_bytes(buf, k)? {
                key::TYPE => (0, bit::TYPE),
                key::NAME => (1, bit::NAME),
                key::URI => (2, bit::URI),
                _ => return skip_value_depth(buf, rv, d),
            };
            let (s, e) = string_or_skip(buf, rv, d)?;
            parts[slot] = s;
            self.seen(&mut seen, b, "duplicate member in ref");
            Ok(e)
        })?;
        let [kind, name, uri] = parts;
        self.reference = kind.map(|kind| Reference {
            kind: kind.content(),
            name: name.map(|s| s.content()),
            uri: uri.map(|s| s.content()),
            escaped: [Some(kind), name, uri].iter().flatten().any(|s| s.escaped),
        });
        Ok(end)
    }

    /// Decides the kind from the members present.
    fn kind(&self) -> Result<Kind, &'static str> {
        match (
            self.method.is_some(),
            self.result.is_some(),
            self.error.is_some(),
        ) {
            (true, false, false) => match self.id {
                None => Ok(Kind::Notification),
                Some((_, IdKind::Null)) => Err("request id must not be null"),
                Some(_) => Ok(Kind::Request),
            },
            (true, _, _) => Err("a request must not carry result or error"),
            (false, true, true) => Err("a response must not carry both result and error"),
            (false, false, false) => Err("missing method, result or error"),
            (false, has_result, _) => {
                if self.params.is_some() {
                    return Err("a response must not carry params");
                }
                match self.id {
                    None => Err("a response must carry an id"),
                    Some((_, IdKind::Null)) if has_result => {
                        Err("a result must not have a null id")
                    }
                    Some(_) if has_result => Ok(Kind::Response),
                    Some(_) => Ok(Kind::Error),
                }
            }
        }
    }

    /// Judges the gathered members (JSON is known valid by now) and builds the envelope.
    fn finish(self, buf: &[u8]) -> Result<Envelope, WireError> {
        let id = if self.id_unusable { None } else { self.id };
        if let Some(reason) = self.invalid {
            return Err(invalid(id, reason));
        }
        if !self.jsonrpc_ok {
            return Err(invalid(id, "jsonrpc must be \"2.0\""));
        }
        let kind = self.kind().map_err(|reason| invalid(id, reason))?;
        let method_decoded = match self.method {
            Some(m) if m.escaped => Some(
                decode_json_string(m.content().get(buf))
                    .map_err(|e| WireError::Parse {
                        offset: m.start + 1 + e.offset,
                        reason: e.reason,
                    })?
                    .into_owned()
                    .into_boxed_str(),
            ),
            _ => None,
        };
        let is_progress = match (&method_decoded, self.method) {
            (Some(m), _) => &**m == method::PROGRESS,
            (None, Some(m)) => m.content().get(buf) == method::PROGRESS.as_bytes(),
            (None, None) => false,
        };
        Ok(Envelope {
            kind,
            method: self.method.map(|m| m.content()),
            method_decoded,
            id: self.id,
            params: self.params,
            result: self.result,
            error: self.error,
            name: self.name.map(|s| s.content()),
            name_escaped: self.name.is_some_and(|s| s.escaped),
            uri: self.uri.map(|s| s.content()),
            uri_escaped: self.uri.is_some_and(|s| s.escaped),
            cursor: self.cursor.map(|s| s.content()),
            cursor_escaped: self.cursor.is_some_and(|s| s.escaped),
            meta: self.meta,
            progress_token: if is_progress {
                self.params_progress
            } else {
                self.meta_progress
            },
            reference: self.reference,
            request_id: self.request_id,
        })
    }
}

#[cfg(test)]
mod tests;
