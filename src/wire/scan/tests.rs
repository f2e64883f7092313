//! Scanner tests: grammar cases, offsets, depth, SWAR edge positions, and a differential
//! property test against `serde_json` on generated and mutated documents.

use super::*;

fn ok(doc: &str) {
    assert_eq!(validate(doc.as_bytes()), Ok(()), "should accept {doc:?}");
}

fn bad(doc: &[u8]) -> ScanError {
    match validate(doc) {
        Ok(()) => panic!("should reject {:?}", String::from_utf8_lossy(doc)),
        Err(e) => e,
    }
}

#[test]
fn accepts_valid_documents() {
    for doc in [
        "0",
        "-0",
        "-0.0e+0",
        "1E5",
        "12.5e-3",
        "123456789012345678901234567890",
        "1e400",
        "true",
        "false",
        "null",
        "\"\"",
        "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
        "\"\\u0000\\uFFFF\\u00e9\\ud834\\udd1e\"",
        "\"é☃𝄞\"",
        " \t\r\n{ \"a\" : [ 1 , 2 , { } , [ ] ] } \n",
        "{}",
        "[]",
        "[[[[]]]]",
        "{\"a\":{\"a\":{\"a\":null}}}",
        "{\"dup\":1,\"dup\":2}",
    ] {
        ok(doc);
    }
}

#[test]
fn rejects_malformed_documents_with_offsets() {
    let cases: &[(&[u8], usize)] = &[
        (b"", 0),
        (b"   ", 3),
        (b"{", 1),
        (b"{\"a\"", 4),
        (b"{\"a\":}", 5),
        (b"{\"a\":1,}", 7),
        (b"{\"a\" 1}", 5),
        (b"{a:1}", 1),
        (b"{1:1}", 1),
        (b"[1,]", 3),
        (b"[1 2]", 3),
        (b"[,1]", 1),
        (b"]", 0),
        (b"01", 1),
        (b"-", 1),
        (b"-a", 1),
        (b"1.", 2),
        (b"1.e3", 2),
        (b".5", 0),
        (b"+1", 0),
        (b"1e", 2),
        (b"1e+", 3),
        (b"0x10", 1),
        (b"tru", 0),
        (b"nul", 0),
        (b"True", 0),
        (b"NaN", 0),
        (b"\"abc", 4),
        (b"\"a\x01b\"", 2),
        (b"\"tab\there\"", 4),
        (b"\"\\x\"", 2),
        (b"\"\\u12G4\"", 5),
        (b"\"\\u12\"", 5),
        (b"\"\\ud834\"", 7),
        (b"\"\\ud834\\u0041\"", 7),
        (b"\"\\udd1e\"", 1),
        (b"\"\xff\"", 1),
        (b"\"ab\xc3\"", 3),
        (b"\"\xed\xa0\x80\"", 1),
        (b"\"\xc0\xaf\"", 1),
        (b"\xef\xbb\xbf{}", 0),
        (b"{} {}", 3),
        (b"1 2", 2),
        (b"{}x", 2),
        (b"[1]\x00", 3),
        (b"\x0c1", 0),
    ];
    for &(doc, offset) in cases {
        let e = bad(doc);
        assert_eq!(e.kind, ScanErrorKind::Syntax, "{doc:?}");
        assert_eq!(
            e.offset,
            offset,
            "{:?}: {}",
            String::from_utf8_lossy(doc),
            e
        );
    }
}

#[test]
fn depth_limit_counts_containers() {
    let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert_eq!(validate(nest(MAX_DEPTH).as_bytes()), Ok(()));
    let e = bad(nest(MAX_DEPTH + 1).as_bytes());
    assert_eq!(e.kind, ScanErrorKind::TooDeep);
    assert_eq!(e.offset, MAX_DEPTH);
    assert_eq!(validate_with_depth(b"[[1]]", 2), Ok(()));
    assert_eq!(
        validate_with_depth(b"[{\"a\":1}]", 1).map_err(|e| e.kind),
        Err(ScanErrorKind::TooDeep)
    );
    assert_eq!(validate_with_depth(b"1", 0), Ok(()));
    // A huge requested depth is clamped, so deep input cannot blow the stack.
    let deep = nest(MAX_DEPTH_CEILING + 1);
    assert_eq!(
        validate_with_depth(deep.as_bytes(), usize::MAX).map_err(|e| e.kind),
        Err(ScanErrorKind::TooDeep)
    );
}

/// The SWAR loop handles 8-byte words; put every special byte at every word offset.
#[test]
fn string_scan_special_byte_at_every_position() {
    for len in 0..24 {
        for special in [&b"\""[..], b"\\n", b"\x01", "é".as_bytes(), "𝄞".as_bytes()] {
            for at in 0..=len {
                let mut doc = b"\"".to_vec();
                doc.extend(std::iter::repeat_n(b'a', at));
                doc.extend_from_slice(special);
                doc.extend(std::iter::repeat_n(b'b', len - at));
                doc.push(b'"');
                let ours = validate(&doc);
                let theirs = serde_json::from_slice::<serde_json::Value>(&doc);
                assert_eq!(ours.is_ok(), theirs.is_ok(), "{doc:?}: {ours:?}");
                if special == b"\"" {
                    assert_eq!(ours.map_err(|e| e.offset), Err(at + 2));
                }
            }
        }
    }
}

/// Inline UTF-8 validation must agree with `std::str::from_utf8` on every 1-2 byte sequence
/// and on 3-4 byte sequences around every boundary of the RFC 3629 table.
#[test]
fn utf8_validation_matches_std() {
    let edges = [
        0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF,
    ];
    let mut seqs: Vec<Vec<u8>> = Vec::new();
    for b0 in 0x80..=0xFFu8 {
        for b1 in 0..=0xFFu8 {
            seqs.push(vec![b0, b1]);
        }
        for &b1 in &edges {
            for &b2 in &edges {
                seqs.push(vec![b0, b1, b2]);
                for &b3 in &edges {
                    seqs.push(vec![b0, b1, b2, b3]);
                }
            }
        }
    }
    for seq in seqs {
        if seq.contains(&b'"') || seq.contains(&b'\\') || seq.iter().any(|&b| b < 0x20) {
            continue;
        }
        let mut doc = b"\"x".to_vec();
        doc.extend_from_slice(&seq);
        doc.extend_from_slice(b"yyyyyyyy\"");
        let ours = validate(&doc);
        let std_ok = std::str::from_utf8(&seq).is_ok();
        assert_eq!(ours.is_ok(), std_ok, "{seq:x?}: {ours:?}");
        if let (Err(e), Err(s)) = (ours, std::str::from_utf8(&seq)) {
            assert_eq!(e.offset, 2 + s.valid_up_to(), "{seq:x?}");
        }
    }
}

#[test]
fn string_tokens_report_escapes_and_ends() {
    let buf = br#""plain" "es\"caped""#;
    let a = scan_string(buf, 0).expect("ok");
    assert_eq!((a.start, a.end, a.escaped), (0, 7, false));
    assert_eq!(a.content().get(buf), b"plain");
    let b = scan_string(buf, 8).expect("ok");
    assert_eq!((b.end, b.escaped), (buf.len(), true));
    assert_eq!(b.token().get(buf), br#""es\"caped""#);
}

#[test]
fn for_each_member_reports_spans() {
    let buf = br#" {"a": 1, "b\u0063" : {"x":[true]} ,"c":"s"} "#;
    let mut seen = Vec::new();
    let end = for_each_member(buf, 1, |k, esc, v| {
        seen.push((k.get(buf).to_vec(), esc, v.get(buf).to_vec()));
    })
    .expect("valid");
    assert_eq!(end, buf.len() - 1);
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0], (b"a".to_vec(), false, b"1".to_vec()));
    assert_eq!(seen[1].0, br"b\u0063".to_vec());
    assert!(seen[1].1);
    assert!(key_eq(&seen[1].0, true, b"bc"));
    assert!(!key_eq(&seen[1].0, true, b"b"));
    assert_eq!(seen[1].2, br#"{"x":[true]}"#.to_vec());
    assert_eq!(seen[2].2, br#""s""#.to_vec());
    assert!(for_each_member(b"{\"a\":}", 0, |_, _, _| {}).is_err());
}

#[test]
fn skip_value_stops_after_the_value() {
    let buf = br#"{"a":[1,2]}, 7"#;
    assert_eq!(skip_value(buf, 0), Ok(11));
    assert_eq!(skip_value(buf, 13), Ok(14));
    assert_eq!(skip_ws(b"  \t\nx", 0), 4);
    assert_eq!(scan_number(b"-12.5e+3,", 0), Ok(8));
}

/// Deterministic xorshift64* generator: no dependency, reproducible failures.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

fn gen_ws(rng: &mut Rng, out: &mut String) {
    for _ in 0..rng.below(3).saturating_sub(1) {
        out.push(rng.pick(&[' ', '\t', '\n', '\r']));
    }
}

fn gen_string(rng: &mut Rng, out: &mut String) {
    const PARTS: &[&str] = &[
        "a",
        "tool",
        " ",
        "é",
        "☃",
        "𝄞",
        "\\\"",
        "\\\\",
        "\\/",
        "\\n",
        "\\t",
        "\\u0041",
        "\\u00e9",
        "\\ud83d\\ude00",
        "\\u0000",
        "longer plain ascii run ",
        "/",
        "'",
    ];
    out.push('"');
    for _ in 0..rng.below(6) {
        out.push_str(rng.pick(PARTS));
    }
    out.push('"');
}

fn gen_number(rng: &mut Rng, out: &mut String) {
    if rng.below(3) == 0 {
        out.push('-');
    }
    if rng.below(4) == 0 {
        out.push('0');
    } else {
        out.push_str(&(1 + rng.below(99_999)).to_string());
    }
    if rng.below(3) == 0 {
        out.push('.');
        out.push_str(&rng.below(1000).to_string());
    }
    if rng.below(4) == 0 {
        out.push(rng.pick(&['e', 'E']));
        out.push_str(rng.pick(&["", "+", "-"]));
        out.push_str(&rng.below(30).to_string());
    }
}

fn gen_value(rng: &mut Rng, depth: usize, out: &mut String) {
    let choice = if depth == 0 {
        rng.below(4)
    } else {
        rng.below(6)
    };
    match choice {
        0 => gen_string(rng, out),
        1 => gen_number(rng, out),
        2 => out.push_str(rng.pick(&["true", "false", "null"])),
        3 => gen_string(rng, out),
        4 => {
            out.push('{');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                gen_ws(rng, out);
                gen_string(rng, out);
                gen_ws(rng, out);
                out.push(':');
                gen_ws(rng, out);
                gen_value(rng, depth - 1, out);
                gen_ws(rng, out);
            }
            out.push('}');
        }
        _ => {
            out.push('[');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                gen_ws(rng, out);
                gen_value(rng, depth - 1, out);
                gen_ws(rng, out);
            }
            out.push(']');
        }
    }
}

/// Applies one random byte-level mutation (delete, insert, replace, truncate, duplicate).
pub(crate) fn mutate(rng: &mut Rng, doc: &mut Vec<u8>) {
    const BYTES: &[u8] = b"\"\\{}[],:0-.eEu+ tn\x01\x7f\xff\xc3\xa9\xed";
    let at = rng.below(doc.len() + 1);
    match rng.below(5) {
        0 if at < doc.len() => {
            doc.remove(at);
        }
        1 => doc.insert(at, rng.pick(BYTES)),
        2 if at < doc.len() => doc[at] = rng.pick(BYTES),
        3 => doc.truncate(at),
        _ => {
            let end = (at + rng.below(8)).min(doc.len());
            let copy = doc[at..end].to_vec();
            let to = rng.below(doc.len() + 1);
            doc.splice(to..to, copy);
        }
    }
}

/// Differential test: accept/reject must agree with serde_json on every input, except for
/// numbers serde_json cannot represent (a documented difference).
#[test]
fn agrees_with_serde_json_on_generated_and_mutated_inputs() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut accepted, mut rejected, mut compared) = (0, 0, 0);
    for round in 0..1500 {
        let mut text = String::new();
        gen_ws(&mut rng, &mut text);
        gen_value(&mut rng, 4, &mut text);
        gen_ws(&mut rng, &mut text);
        let mut doc = text.into_bytes();
        // A third stay valid; the rest get one to three mutations.
        if round % 3 != 0 {
            for _ in 0..=rng.below(3) {
                mutate(&mut rng, &mut doc);
            }
        }
        let theirs = serde_json::from_slice::<serde_json::Value>(&doc);
        if let Err(e) = &theirs {
            if e.to_string().contains("out of range") {
                continue;
            }
        }
        let ours = validate(&doc);
        assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "disagreement on {:?}: ours {ours:?}, serde {theirs:?}",
            String::from_utf8_lossy(&doc)
        );
        compared += 1;
        if ours.is_ok() {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    assert!(compared > 1400, "{compared}");
    assert!(accepted > 300 && rejected > 300, "{accepted} / {rejected}");
}
