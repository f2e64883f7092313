//! The envelope walker: gathers members in one pass, then judges the message shape.
//!
//! Role: the private half of [`super`]. [`Draft`] is filled by the `on_*` member handlers while
//! the scanner walks the top-level object, `params`, `params._meta` and `params.ref`; nothing
//! is decided until [`Draft::finish`], because keys arrive in any order and a JSON error later
//! in the message must win over a shape error seen earlier.
//!
//! Invariants: each handler consumes exactly the value it is given and returns its end (the
//! scanner's contract); duplicates of recorded members are flagged per object level with the
//! `bit` masks; the first shape violation is kept, later ones are ignored.
//!
//! Perf: keys are matched as raw bytes against `names::key` constants; only escaped keys are
//! decoded (allocating, rare).

use std::borrow::Cow;

use super::{invalid, Envelope, IdKind, Kind, Reference, Span, WireError};
use crate::wire::encode::decode_json_string;
use crate::wire::names::{key, method, JSONRPC_VERSION};
use crate::wire::scan::{
    key_eq, scan_number, scan_string, skip_value_depth, walk_object, ScanError, StrToken,
};

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
    pub const REQUEST_STATE: u16 = 1 << 14;
    pub const INPUT_RESPONSES: u16 = 1 << 15;
}

/// Everything gathered while walking the message, judged only in [`Draft::finish`].
#[derive(Default)]
pub(super) struct Draft {
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
    request_state: Option<Span>,
    input_responses: Option<Span>,
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

    pub(super) fn top_member(
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
        self.jsonrpc_ok =
            s.is_some_and(|s| key_eq(s.content().get(buf), s.escaped, JSONRPC_VERSION.as_bytes()));
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
            key::REQUEST_STATE => {
                let e = skip_value_depth(buf, v, depth)?;
                self.request_state = Some(Span::new(v, e));
                (bit::REQUEST_STATE, e)
            }
            key::INPUT_RESPONSES => {
                let e = skip_value_depth(buf, v, depth)?;
                self.input_responses = Some(Span::new(v, e));
                (bit::INPUT_RESPONSES, e)
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
    pub(super) fn finish(self, buf: &[u8]) -> Result<Envelope, WireError> {
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
            request_state: self.request_state,
            input_responses: self.input_responses,
        })
    }
}
