//! Encoding the gateway's own JSON-RPC messages, and JSON string escaping / unescaping.
//!
//! Role: every message the gateway originates (error replies, its own requests to downstreams,
//! notifications, `ping` results) is written here directly into one pre-sized buffer; nothing
//! goes through a generic serializer.
//!
//! Key functions: [`error_response`], [`result_response`], [`request`], [`notification`],
//! [`write_json_string`] / [`write_json_string_content`], [`decode_json_string`].
//!
//! Invariants: `*_raw` arguments are raw JSON tokens copied verbatim (ids from a parsed
//! envelope, params built by the caller); the caller guarantees they are valid JSON, which
//! debug builds assert. `&str` arguments are escaped, so any text is safe to pass. Member
//! order is fixed: `jsonrpc`, `id`, then `method`/`params` or `result`/`error`.
//!
//! Errors: encoding cannot fail. [`decode_json_string`] reports bad escapes / UTF-8 with a
//! byte offset relative to its input.
//!
//! Perf: one allocation per message (capacity computed up front); escaping copies runs of
//! plain bytes with `extend_from_slice` and only stops at bytes that need escaping.

use std::borrow::Cow;

use bytes::Bytes;

use super::rewrite::format_u64_id;
use super::scan::{unicode_escape, ScanError, ScanErrorKind};

/// `{"jsonrpc":"2.0",` — every message starts like this (a test pins it to
/// `names::JSONRPC_VERSION`).
const HEAD: &[u8] = b"{\"jsonrpc\":\"2.0\",";

#[inline]
fn debug_assert_json(raw: &[u8]) {
    debug_assert!(
        super::scan::validate(raw).is_ok(),
        "raw JSON token is not valid JSON: {:?}",
        String::from_utf8_lossy(raw)
    );
}

/// Appends `n` in decimal.
pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(format_u64_id(n.unsigned_abs()).as_bytes());
}

/// Encodes `{"jsonrpc":"2.0","id":ID,"error":{"code":C,"message":M[,"data":D]}}`.
///
/// `id_raw` is the raw id token of the request (`None` writes `null`, as for parse errors);
/// `data_raw` is a raw JSON value.
pub fn error_response(
    id_raw: Option<&[u8]>,
    code: i32,
    message: &str,
    data_raw: Option<&[u8]>,
) -> Bytes {
    let id = id_raw.unwrap_or(b"null");
    debug_assert_json(id);
    let data_len = data_raw.map_or(0, |d| d.len() + 8);
    let mut out = Vec::with_capacity(64 + id.len() + message.len() + data_len);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(b"\"id\":");
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"error\":{\"code\":");
    write_i64(&mut out, i64::from(code));
    out.extend_from_slice(b",\"message\":");
    write_json_string(&mut out, message);
    if let Some(data) = data_raw {
        debug_assert_json(data);
        out.extend_from_slice(b",\"data\":");
        out.extend_from_slice(data);
    }
    out.extend_from_slice(b"}}");
    Bytes::from(out)
}

/// Encodes `{"jsonrpc":"2.0","id":ID,"result":R}` from raw tokens.
pub fn result_response(id_raw: &[u8], result_raw: &[u8]) -> Bytes {
    debug_assert_json(id_raw);
    debug_assert_json(result_raw);
    let mut out = Vec::with_capacity(HEAD.len() + 16 + id_raw.len() + result_raw.len());
    out.extend_from_slice(HEAD);
    out.extend_from_slice(b"\"id\":");
    out.extend_from_slice(id_raw);
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(result_raw);
    out.push(b'}');
    Bytes::from(out)
}

/// Encodes `{"jsonrpc":"2.0","id":ID,"method":M[,"params":P]}`.
pub fn request(id_raw: &[u8], method: &str, params_raw: Option<&[u8]>) -> Bytes {
    debug_assert_json(id_raw);
    let params_len = params_raw.map_or(0, |p| p.len() + 10);
    let mut out = Vec::with_capacity(HEAD.len() + 24 + id_raw.len() + method.len() + params_len);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(b"\"id\":");
    out.extend_from_slice(id_raw);
    out.push(b',');
    write_method_params(&mut out, method, params_raw);
    Bytes::from(out)
}

/// Encodes `{"jsonrpc":"2.0","method":M[,"params":P]}`.
pub fn notification(method: &str, params_raw: Option<&[u8]>) -> Bytes {
    let params_len = params_raw.map_or(0, |p| p.len() + 10);
    let mut out = Vec::with_capacity(HEAD.len() + 16 + method.len() + params_len);
    out.extend_from_slice(HEAD);
    write_method_params(&mut out, method, params_raw);
    Bytes::from(out)
}

fn write_method_params(out: &mut Vec<u8>, method: &str, params_raw: Option<&[u8]>) {
    out.extend_from_slice(b"\"method\":");
    write_json_string(out, method);
    if let Some(params) = params_raw {
        debug_assert_json(params);
        out.extend_from_slice(b",\"params\":");
        out.extend_from_slice(params);
    }
    out.push(b'}');
}

/// Escape class per byte: 0 = copy as is, otherwise the letter of a short escape (`n`, `t`,
/// ...) or `u` for `\u00XX`.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0A] = b'n';
    t[0x0C] = b'f';
    t[0x0D] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Appends `s` as a quoted JSON string.
#[inline]
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_json_string_content(out, s);
    out.push(b'"');
}

/// Appends `s` escaped as JSON string CONTENT (no quotes): for splicing into a content span.
///
/// Escapes `"`, `\` and control characters (`\n`, `\r`, `\t`, `\b`, `\f` short forms, others as
/// `\u00XX`); everything else, including non-ASCII, is copied as UTF-8.
pub fn write_json_string_content(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        if esc == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xF)]);
        } else {
            out.push(b'\\');
            out.push(esc);
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

#[cold]
fn decode_err(offset: usize, reason: &'static str) -> ScanError {
    ScanError {
        offset,
        kind: ScanErrorKind::Syntax,
        reason,
    }
}

/// Decodes JSON string CONTENT (the bytes between the quotes). Borrows when there is no
/// backslash; errors on bad escapes, unpaired surrogates, raw control bytes or invalid UTF-8.
/// Error offsets are relative to `raw`.
pub fn decode_json_string(raw: &[u8]) -> Result<Cow<'_, str>, ScanError> {
    let Some(first) = raw.iter().position(|&b| b == b'\\') else {
        return str_of(raw, 0).map(Cow::Borrowed);
    };
    let mut out = String::with_capacity(raw.len());
    out.push_str(str_of(&raw[..first], 0)?);
    let mut i = first;
    while i < raw.len() {
        if raw[i] != b'\\' {
            let next = raw[i..]
                .iter()
                .position(|&b| b == b'\\')
                .map_or(raw.len(), |p| i + p);
            out.push_str(str_of(&raw[i..next], i)?);
            i = next;
            continue;
        }
        let simple = match raw.get(i + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let (c, end) = unicode_escape(raw, i)?;
                out.push(c);
                i = end;
                continue;
            }
            Some(_) => return Err(decode_err(i + 1, "invalid escape")),
            None => return Err(decode_err(raw.len(), "unexpected end of input")),
        };
        out.push(simple);
        i += 2;
    }
    Ok(Cow::Owned(out))
}

/// A run without escapes as `&str`, rejecting raw control bytes (offsets shifted by `base`).
fn str_of(run: &[u8], base: usize) -> Result<&str, ScanError> {
    if let Some(p) = run.iter().position(|&b| b < 0x20) {
        return Err(decode_err(base + p, "control character in string"));
    }
    std::str::from_utf8(run)
        .map_err(|e| decode_err(base + e.valid_up_to(), "invalid UTF-8 in string"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::names::JSONRPC_VERSION;

    #[test]
    fn error_response_shapes() {
        let b = error_response(Some(b"7"), -32601, "no \"such\" method", None);
        assert_eq!(
            &b[..],
            br#"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"no \"such\" method"}}"#
        );
        let b = error_response(None, -32700, "x", Some(br#"{"at":3}"#));
        assert_eq!(
            &b[..],
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x","data":{"at":3}}}"#
        );
        let v: serde_json::Value = serde_json::from_slice(&b).expect("valid json");
        assert_eq!(v["error"]["data"]["at"], 3);
    }

    #[test]
    fn requests_results_notifications() {
        assert_eq!(
            &result_response(br#""a""#, b"{}")[..],
            br#"{"jsonrpc":"2.0","id":"a","result":{}}"#
        );
        assert_eq!(
            &request(b"12", "tools/list", Some(br#"{"cursor":"c"}"#))[..],
            br#"{"jsonrpc":"2.0","id":12,"method":"tools/list","params":{"cursor":"c"}}"#
        );
        assert_eq!(
            &request(b"1", "ping", None)[..],
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#
        );
        assert_eq!(
            &notification("notifications/initialized", None)[..],
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#
        );
        assert_eq!(
            &notification("m", Some(b"[1]"))[..],
            br#"{"jsonrpc":"2.0","method":"m","params":[1]}"#
        );
    }

    #[test]
    fn string_escaping_round_trips_through_serde() {
        let samples = [
            "",
            "plain",
            "quote\" back\\ slash/",
            "ctl \u{0}\u{1}\u{8}\u{9}\u{a}\u{c}\u{d}\u{1f}\u{7f}",
            "unicode é ☃ 𝄞",
        ];
        for s in samples {
            let mut out = Vec::new();
            write_json_string(&mut out, s);
            let back: String = serde_json::from_slice(&out).expect("valid json string");
            assert_eq!(back, s);
            assert_eq!(
                decode_json_string(&out[1..out.len() - 1]).expect("decodes"),
                s
            );
        }
        let mut out = Vec::new();
        write_json_string(&mut out, "\u{1}\n");
        assert_eq!(out, br#""\u0001\n""#);
    }

    #[test]
    fn decoding() {
        assert!(matches!(
            decode_json_string(b"abc"),
            Ok(Cow::Borrowed("abc"))
        ));
        assert_eq!(decode_json_string(br"a\u00e9\n\/").expect("ok"), "aé\n/");
        assert_eq!(decode_json_string(br"\ud834\udd1e").expect("ok"), "𝄞");
        let bad: [&[u8]; 6] = [br"\x", br"\u12", br"\ud834", br"\udd1e", b"a\x01", b"\xff"];
        for raw in bad {
            assert!(decode_json_string(raw).is_err(), "{raw:?}");
        }
        assert_eq!(decode_json_string(br"ab\q").map_err(|e| e.offset), Err(3));
    }

    #[test]
    fn head_spells_the_version_constant() {
        let expected = format!("{{\"jsonrpc\":\"{JSONRPC_VERSION}\",");
        assert_eq!(HEAD, expected.as_bytes());
    }

    #[test]
    fn integers() {
        for n in [0i64, 7, -1, -32700, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_i64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
