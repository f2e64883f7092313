//! Locating a downstream reply's `id` without validating the reply.
//!
//! Client traffic is validated in full (`envelope`). A downstream's reply to a forwarded call only
//! needs its top-level `id` found so the client's own id can be spliced back; the rest is forwarded
//! byte for byte, within the configured size cap. DESIGN §6 allows skipping the check here, and the
//! TypeScript SDK puts `id` last, so a validating scan would walk the whole (possibly large) result.
//!
//! [`response_id`] walks only the top-level object: strings are skipped by looking for their closing
//! quote (honouring backslash escapes), nested values by counting brackets outside strings. It never
//! panics and never reads out of bounds; on anything it cannot make sense of it returns `None`, and
//! the caller falls back to the validating parser (which then reports the protocol error).

use super::scan::Span;

/// The span of the raw top-level `"id"` value of a JSON object, if it can be found cheaply.
pub fn response_id(buf: &[u8]) -> Option<Span> {
    let mut i = skip_ws(buf, 0);
    if buf.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(buf, i);
        match buf.get(i)? {
            b'}' => return None,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = skip_string(buf, i)?;
        let is_id = &buf[i..key_end] == b"\"id\"";
        i = skip_ws(buf, key_end);
        if buf.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(buf, i + 1);
        let end = skip_value(buf, i)?;
        if is_id {
            return (end > i && u32::try_from(end).is_ok()).then(|| Span::new(i, end));
        }
        i = end;
    }
}

fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while matches!(buf.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// End (exclusive) of the string starting at `start` (which holds `"`).
fn skip_string(buf: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        let rel = buf
            .get(i..)?
            .iter()
            .position(|&b| b == b'"' || b == b'\\')?;
        i += rel;
        if buf[i] == b'\\' {
            i += 2;
        } else {
            return Some(i + 1);
        }
    }
}

/// End (exclusive) of the value starting at `start`, without validating it.
fn skip_value(buf: &[u8], start: usize) -> Option<usize> {
    match buf.get(start)? {
        b'"' => skip_string(buf, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            loop {
                match buf.get(i)? {
                    b'"' => {
                        i = skip_string(buf, i)?;
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
            let rel = buf[start..]
                .iter()
                .position(|&b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'));
            Some(start + rel.unwrap_or(buf.len() - start))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(json: &str) -> Option<&str> {
        response_id(json.as_bytes()).map(|s| &json[s.start as usize..s.end as usize])
    }

    #[test]
    fn finds_the_top_level_id_first_last_or_nested_around() {
        assert_eq!(id(r#"{"jsonrpc":"2.0","id":17,"result":{}}"#), Some("17"));
        assert_eq!(
            id(r#"{"result":{"id":"inner","a":[1,{"id":2}]},"jsonrpc":"2.0","id":"k"}"#),
            Some("\"k\"")
        );
        assert_eq!(
            id(r#" { "result" : { "t" : "a \" } \\" } , "id" : 5 } "#),
            Some("5")
        );
        assert_eq!(id(r#"{"error":{"code":1},"id":null}"#), Some("null"));
    }

    #[test]
    fn gives_up_cleanly_on_garbage() {
        for bad in [
            "",
            "[]",
            "{",
            r#"{"id""#,
            r#"{"a":"unterminated"#,
            r#"{"a":[[[}"#,
            "\u{0}\u{1}",
            r#"{"id":}"#,
        ] {
            assert_eq!(id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn agrees_with_the_validating_parser_on_valid_replies() {
        let samples = [
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"x\ny"}],"isError":false}}"#,
            r#"{"result":{"tools":[]},"jsonrpc":"2.0","id":"abc"}"#,
            r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"no"},"id":-3}"#,
        ];
        for s in samples {
            let full = crate::wire::parse(s.as_bytes()).unwrap();
            assert_eq!(
                response_id(s.as_bytes()),
                full.id.map(|(span, _)| span),
                "{s}"
            );
        }
    }
}
