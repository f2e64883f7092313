//! Walking the members of a JSON object that has already been validated (by the envelope scan),
//! without validating it again: strings are skipped to their closing quote, containers by counting
//! brackets outside strings.
//!
//! The modern path reads a few members of objects the envelope scan has already checked (the
//! request's `_meta`, its `clientCapabilities`, a relayed result's top level); re-validating their
//! structure would cost as much as the scan itself. Strings are skipped with the scanner's
//! word-at-a-time string skip; structure is counted, not checked. On bytes that are not valid JSON
//! the walk stops early (it never panics and never reads out of bounds); callers only use it on
//! validated buffers.

use crate::wire::scan::{scan_string, skip_ws};
use crate::wire::Span;

/// End (exclusive) of the string token starting at `start` (its opening quote), and whether it
/// holds escapes (the scanner's word-at-a-time string skip; its checks cost nothing extra).
fn skip_string(buf: &[u8], start: usize) -> Option<(usize, bool)> {
    scan_string(buf, start).ok().map(|t| (t.end, t.escaped))
}

/// End (exclusive) of the value starting at `start`.
fn skip_value(buf: &[u8], start: usize) -> Option<usize> {
    match buf.get(start)? {
        b'"' => skip_string(buf, start).map(|(e, _)| e),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            loop {
                match buf.get(i)? {
                    b'"' => {
                        i = skip_string(buf, i)?.0;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let rest = buf.get(start..)?;
            let rel = rest
                .iter()
                .position(|&b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'));
            Some(start + rel.unwrap_or(rest.len()))
        }
    }
}

/// Calls `f(key_content, key_escaped, value)` for each member of the object at `start`, in order.
pub fn members(buf: &[u8], start: usize, mut f: impl FnMut(Span, bool, Span)) {
    if buf.get(start) != Some(&b'{') {
        return;
    }
    let mut i = start + 1;
    loop {
        i = skip_ws(buf, i);
        match buf.get(i) {
            Some(b'"') => {}
            Some(b',') => {
                i += 1;
                continue;
            }
            _ => return,
        }
        let Some((key_end, escaped)) = skip_string(buf, i) else {
            return;
        };
        let key = Span::new(i + 1, key_end - 1);
        i = skip_ws(buf, key_end);
        if buf.get(i) != Some(&b':') {
            return;
        }
        i = skip_ws(buf, i + 1);
        let Some(end) = skip_value(buf, i) else {
            return;
        };
        f(key, escaped, Span::new(i, end));
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(json: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        members(json.as_bytes(), 0, |k, _, v| {
            out.push((
                json[k.start as usize..k.end as usize].to_string(),
                json[v.start as usize..v.end as usize].to_string(),
            ))
        });
        out
    }

    #[test]
    fn members_of_a_validated_object() {
        let got = collect(r#"{ "a" : 1 , "b\"c":{"x":[1,"]}"]}, "d":"s\\","e":true}"#);
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b\\\"c", "d", "e"]);
        assert_eq!(got[1].1, r#"{"x":[1,"]}"]}"#);
        assert_eq!(got[2].1, r#""s\\""#);
        assert!(collect("{}").is_empty());
    }

    #[test]
    fn garbage_stops_the_walk_without_panicking() {
        for bad in [
            "",
            "{",
            r#"{"a""#,
            r#"{"a":"x"#,
            r#"{"a":[[[}"#,
            "[1]",
            r#"{"a":1,"#,
        ] {
            let _ = collect(bad);
        }
    }
}
