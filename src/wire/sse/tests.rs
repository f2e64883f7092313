//! SSE tests: WHATWG parsing rules, every line-ending style, chunk splits at every byte
//! position (incl. inside CRLF and the BOM), size limit, and encoder round trips.

use super::*;

const LIMIT: usize = 1 << 20;

fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
    let mut d = SseDecoder::new(LIMIT);
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c).expect("within limit");
        while let Some(e) = d.next_event() {
            out.push(e);
        }
    }
    out
}

fn ev(id: Option<&str>, event: Option<&str>, data: &str) -> SseEvent {
    SseEvent {
        id: id.map(str::to_owned),
        event: event.map(str::to_owned),
        data: Bytes::copy_from_slice(data.as_bytes()),
        retry: None,
    }
}

const STREAM: &[u8] = b"\xEF\xBB\xBF: comment\r\n\
event: message\r\n\
id: 1\r\n\
data: {\"jsonrpc\":\"2.0\",\r\n\
data:\"id\":1}\r\n\
\r\n\
data\n\
\n\
id: 2\rdata:  two spaces\r\r\
retry: 1500\n\
event: ping\n\
\n\
unknown: x\n\
data: last\n\n";

fn expected() -> Vec<SseEvent> {
    vec![
        ev(
            Some("1"),
            Some("message"),
            "{\"jsonrpc\":\"2.0\",\n\"id\":1}",
        ),
        ev(None, None, ""),
        ev(Some("2"), None, " two spaces"),
        ev(None, None, "last"),
    ]
}

#[test]
fn parses_the_whatwg_rules() {
    let events = decode_all(&[STREAM]);
    assert_eq!(events, expected());
    let mut d = SseDecoder::new(LIMIT);
    d.feed(STREAM).expect("ok");
    assert_eq!(d.last_event_id(), Some("2"));
    assert_eq!(d.retry(), Some(1500));
    assert!(d.is_idle());
}

#[test]
fn every_split_point_gives_the_same_events() {
    for cut in 0..=STREAM.len() {
        let (a, b) = STREAM.split_at(cut);
        assert_eq!(decode_all(&[a, b]), expected(), "split at {cut}");
    }
    for cut1 in 0..=STREAM.len() {
        for cut2 in cut1..=STREAM.len() {
            let chunks = [&STREAM[..cut1], &STREAM[cut1..cut2], &STREAM[cut2..]];
            assert_eq!(decode_all(&chunks), expected(), "split at {cut1},{cut2}");
        }
    }
    let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
    assert_eq!(decode_all(&bytes), expected());
}

#[test]
fn line_endings_are_equivalent() {
    for nl in ["\n", "\r\n", "\r"] {
        let s = format!("data: a{nl}data: b{nl}{nl}data: c{nl}{nl}");
        let events = decode_all(&[s.as_bytes()]);
        assert_eq!(
            events,
            vec![ev(None, None, "a\nb"), ev(None, None, "c")],
            "{nl:?}"
        );
    }
    // A lone CR followed by LF in the next chunk is one line ending, not two.
    assert_eq!(
        decode_all(&[b"data: x\r", b"\n", b"\r", b"\n"]),
        vec![ev(None, None, "x")]
    );
}

#[test]
fn dispatch_rules() {
    // No data and no id: nothing dispatched; an unterminated block is never dispatched.
    assert!(decode_all(&[b"event: x\n\nretry: 5\n\n: c\n\ndata: tail"]).is_empty());
    // An id-only block is dispatched (deliberate, for resumption priming).
    assert_eq!(decode_all(&[b"id: 9\n\n"]), vec![ev(Some("9"), None, "")]);
    // Empty data field dispatches an empty event.
    assert_eq!(decode_all(&[b"data\n\n"]), vec![ev(None, None, "")]);
    // Only one leading space is stripped; no space after the colon is fine.
    assert_eq!(decode_all(&[b"data:x\n\n"]), vec![ev(None, None, "x")]);
    // An id with NUL is ignored; `retry` with non-digits is ignored.
    let mut d = SseDecoder::new(LIMIT);
    d.feed(b"id: a\0b\nretry: 1x\ndata: d\n\n").expect("ok");
    let e = d.next_event().expect("event");
    assert_eq!((e.id, e.retry), (None, None));
    assert_eq!(d.last_event_id(), None);
    // Retry and id attached to the dispatched event; last id persists.
    let mut d = SseDecoder::new(LIMIT);
    d.feed(b"id: 7\nretry: 10\ndata: a\n\ndata: b\n\n")
        .expect("ok");
    assert_eq!(
        d.next_event().map(|e| (e.id, e.retry)),
        Some((Some("7".into()), Some(10)))
    );
    assert_eq!(d.next_event().map(|e| e.id), Some(None));
    assert_eq!(d.last_event_id(), Some("7"));
    // A BOM only counts at the very start.
    assert_eq!(
        decode_all(&[b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"]),
        vec![ev(None, None, "a")]
    );
    assert!(!{
        let mut d = SseDecoder::new(LIMIT);
        d.feed(b"data: partial").expect("ok");
        d.is_idle()
    });
}

#[test]
fn size_limit() {
    let mut d = SseDecoder::new(16);
    d.feed(b"data: 0123456789\n\n")
        .expect("10 bytes of data fit");
    assert_eq!(d.next_event().map(|e| e.data.len()), Some(10));
    let err = d.feed(b"data: 0123456789\ndata: 0123456789\n\n");
    assert_eq!(err, Err(SseError::EventTooLarge { limit: 16 }));
    assert!(d.feed(b"\n").is_err(), "poisoned after an error");

    // A never-ending line is refused before it is buffered whole.
    let mut d = SseDecoder::new(64);
    let mut result = Ok(());
    for _ in 0..100 {
        result = d.feed(b"data: xxxxxxxxx");
        if result.is_err() {
            break;
        }
    }
    assert!(result.is_err());
    assert!(d.line.len() <= 64);
}

#[test]
fn encoder_round_trips() {
    let datas: [&[u8]; 6] = [
        b"",
        b"{}",
        b"a\nb",
        b"a\r\nb\rc\n",
        b"\n\n",
        b" leading space",
    ];
    for data in datas {
        let mut out = Vec::new();
        encode_event(&mut out, Some("message"), Some("s1-42"), data);
        let events = decode_all(&[&out]);
        assert_eq!(events.len(), 1, "{out:?}");
        let normalized = String::from_utf8_lossy(data)
            .replace("\r\n", "\n")
            .replace('\r', "\n");
        assert_eq!(events[0].data, normalized.as_bytes(), "{out:?}");
        assert_eq!(events[0].id.as_deref(), Some("s1-42"));
        assert_eq!(events[0].event.as_deref(), Some("message"));
    }
    let mut out = Vec::new();
    encode_event(&mut out, None, None, b"{\"a\":1}");
    assert_eq!(out, b"data: {\"a\":1}\n\n");
    out.clear();
    encode_comment(&mut out, "keep-alive");
    assert_eq!(out, b": keep-alive\n\n");
    assert!(decode_all(&[&out]).is_empty());
}
