//! Envelope tests: kinds, spans, key orders, escapes, duplicates, invalid shapes with the
//! right id, parse-error precedence, batches, and a differential check against serde_json.

use super::*;
use crate::wire::names::method;

fn env(doc: &str) -> Envelope {
    match parse(doc.as_bytes()) {
        Ok(e) => e,
        Err(e) => panic!("{doc}: {e}"),
    }
}

fn text(doc: &str, span: Option<Span>) -> Option<&str> {
    span.map(|s| std::str::from_utf8(s.get(doc.as_bytes())).expect("utf8"))
}

/// Asserts `Invalid` and returns (raw id text, reason).
fn invalid_of(doc: &str) -> (Option<String>, &'static str) {
    match parse(doc.as_bytes()) {
        Err(WireError::Invalid { id, reason }) => (
            id.map(|(s, _)| String::from_utf8_lossy(s.get(doc.as_bytes())).into_owned()),
            reason,
        ),
        other => panic!("{doc}: expected Invalid, got {other:?}"),
    }
}

const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"gh__search","arguments":{"q":"rust","n":[1,2,{"name":"inner"}]},"_meta":{"progressToken":"tok-1"}}}"#;

#[test]
fn tools_call_request_spans() {
    let e = env(CALL);
    assert_eq!(e.kind, Kind::Request);
    assert_eq!(e.method(CALL.as_bytes()), Some(method::TOOLS_CALL));
    assert_eq!(e.id.map(|(_, k)| k), Some(IdKind::Number));
    assert_eq!(e.id_raw(CALL.as_bytes()), Some(&b"7"[..]));
    assert_eq!(text(CALL, e.name), Some("gh__search"));
    assert!(!e.name_escaped);
    assert_eq!(text(CALL, e.progress_token), Some("\"tok-1\""));
    assert_eq!(text(CALL, e.meta), Some(r#"{"progressToken":"tok-1"}"#));
    let params = text(CALL, e.params).expect("params");
    assert!(params.starts_with("{\"name\"") && params.ends_with("}}"));
    assert_eq!(
        (e.result, e.error, e.uri, e.cursor),
        (None, None, None, None)
    );
}

#[test]
fn key_order_does_not_matter_including_id_last() {
    let docs = [
        r#"{"method":"tools/call","params":{"_meta":{"progressToken":5},"name":"x"},"jsonrpc":"2.0","id":"r-1"}"#,
        r#"{"params":{"name":"x","_meta":{"progressToken":5}},"id":"r-1","method":"tools/call","jsonrpc":"2.0"}"#,
        "{ \"jsonrpc\" : \"2.0\" ,\n \"extra\":[{\"id\":3}], \"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"_meta\":{\"progressToken\":5}},\t\"id\":\"r-1\" }\n",
    ];
    for doc in docs {
        let e = env(doc);
        assert_eq!(e.kind, Kind::Request, "{doc}");
        assert_eq!(text(doc, e.id.map(|(s, _)| s)), Some("\"r-1\""));
        assert_eq!(e.id.map(|(_, k)| k), Some(IdKind::String));
        assert_eq!(text(doc, e.name), Some("x"));
        assert_eq!(text(doc, e.progress_token), Some("5"));
    }
}

#[test]
fn notifications_responses_errors() {
    let n = env(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    assert_eq!((n.kind, n.id), (Kind::Notification, None));

    let doc = r#"{"jsonrpc":"2.0","id":1.5,"result":{"tools":[]}}"#;
    let r = env(doc);
    assert_eq!(r.kind, Kind::Response);
    assert_eq!(text(doc, r.result), Some(r#"{"tools":[]}"#));
    assert_eq!(r.method, None);

    let doc = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}"#;
    let x = env(doc);
    assert_eq!(x.kind, Kind::Error);
    assert_eq!(x.id.map(|(_, k)| k), Some(IdKind::Null));
    assert_eq!(
        text(doc, x.error),
        Some(r#"{"code":-32700,"message":"bad"}"#)
    );

    // result: null is a legal (if odd) result.
    assert_eq!(
        env(r#"{"jsonrpc":"2.0","id":2,"result":null}"#).kind,
        Kind::Response
    );
}

#[test]
fn mcp_params_fields() {
    let doc =
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a b"}}"#;
    assert_eq!(text(doc, env(doc).uri), Some("file:///a b"));

    let doc = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"Y3Vy"}}"#;
    assert_eq!(env(doc).cursor_str(doc.as_bytes()).as_deref(), Some("Y3Vy"));

    let doc = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"abc","reason":"x"}}"#;
    assert_eq!(text(doc, env(doc).request_id), Some("\"abc\""));

    let doc = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":42,"progress":1,"_meta":{"progressToken":"other"}}}"#;
    assert_eq!(text(doc, env(doc).progress_token), Some("42"));

    let doc = r#"{"jsonrpc":"2.0","id":3,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p1"},"argument":{"name":"a","value":"v"}}}"#;
    let e = env(doc);
    let r = e.reference.expect("ref");
    assert_eq!(text(doc, Some(r.kind)), Some("ref/prompt"));
    assert_eq!(text(doc, r.name), Some("p1"));
    assert_eq!(r.uri, None);
    // `argument.name` is nested one level deeper and must not leak into params.name.
    assert_eq!(e.name, None);

    let doc = r#"{"jsonrpc":"2.0","id":3,"method":"completion/complete","params":{"ref":{"uri":"db://{t}","type":"ref/resource"}}}"#;
    let r = env(doc).reference.expect("ref");
    assert_eq!(text(doc, r.uri), Some("db://{t}"));
}

#[test]
fn params_fields_of_other_types_are_ignored() {
    let doc = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5,"uri":null,"_meta":[1],"ref":"x","requestId":{},"cursor":true}}"#;
    let e = env(doc);
    assert_eq!((e.name, e.uri, e.meta, e.cursor), (None, None, None, None));
    assert_eq!(
        (e.reference, e.request_id, e.progress_token),
        (None, None, None)
    );
    let doc = r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1,{"name":"n"}]}"#;
    let e = env(doc);
    assert_eq!(text(doc, e.params), Some(r#"[1,{"name":"n"}]"#));
    assert_eq!(e.name, None);
}

#[test]
fn escapes_in_method_name_and_keys() {
    let doc = r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"a\"b\u00e9"}}"#;
    let e = env(doc);
    assert_eq!(e.method(doc.as_bytes()), Some("tools/call"));
    assert!(e.name_escaped);
    assert_eq!(e.name_str(doc.as_bytes()).as_deref(), Some("a\"bé"));
    assert_eq!(text(doc, e.name), Some(r#"a\"b\u00e9"#));

    // Escaped keys are recognised after decoding (here "method", "id", "name", "jsonrpc").
    let doc = r#"{"\u006aso\u006Erpc":"\u0032.0","me\u0074hod":"tools/call","\u0069d":9,"params":{"n\u0061me":"t"}}"#;
    let e = env(doc);
    assert_eq!(e.kind, Kind::Request);
    assert_eq!(text(doc, e.name), Some("t"));
    assert_eq!(e.id_raw(doc.as_bytes()), Some(&b"9"[..]));

    // Non-ASCII method names are returned as-is.
    let doc = r#"{"jsonrpc":"2.0","method":"x/é"}"#;
    assert_eq!(env(doc).method(doc.as_bytes()), Some("x/é"));
}

#[test]
fn invalid_shapes_carry_the_id_when_known() {
    let cases: &[(&str, Option<&str>)] = &[
        (r#"{"id":1,"method":"ping"}"#, Some("1")),
        (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, Some("1")),
        (r#"{"jsonrpc":2.0,"id":"a","method":"ping"}"#, Some("\"a\"")),
        (r#"{"jsonrpc":"2.0","method":5,"id":"z"}"#, Some("\"z\"")),
        (r#"{"jsonrpc":"2.0","method":"ping","id":{"a":1}}"#, None),
        (r#"{"jsonrpc":"2.0","method":"ping","id":[1]}"#, None),
        (r#"{"jsonrpc":"2.0","method":"ping","id":true}"#, None),
        (
            r#"{"jsonrpc":"2.0","method":"ping","id":null}"#,
            Some("null"),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"x","params":"s","id":4}"#,
            Some("4"),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"x","params":3,"id":4}"#,
            Some("4"),
        ),
        (r#"{"jsonrpc":"2.0","id":4}"#, Some("4")),
        (
            r#"{"jsonrpc":"2.0","id":4,"result":1,"error":{}}"#,
            Some("4"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"method":"m","result":1}"#,
            Some("4"),
        ),
        (r#"{"jsonrpc":"2.0","id":4,"error":"boom"}"#, Some("4")),
        (r#"{"jsonrpc":"2.0","id":null,"result":1}"#, Some("null")),
        (r#"{"jsonrpc":"2.0","result":1}"#, None),
        (
            r#"{"jsonrpc":"2.0","error":{"code":1,"message":"m"}}"#,
            None,
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"result":1,"params":{}}"#,
            Some("4"),
        ),
        (r#"{}"#, None),
    ];
    for &(doc, id) in cases {
        let (got, reason) = invalid_of(doc);
        assert_eq!(got.as_deref(), id, "{doc}: {reason}");
    }
}

#[test]
fn duplicates_of_recorded_members_are_rejected() {
    let cases: &[(&str, Option<&str>)] = &[
        (r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#, None),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#,
            Some("1"),
        ),
        (
            r#"{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"a"}"#,
            Some("1"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
            Some("1"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"t","params":{"_meta":{"progressToken":1,"progressToken":2}}}"#,
            Some("1"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"t","params":{"ref":{"type":"a","type":"b"}}}"#,
            Some("1"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"t","params":{},"params":{}}"#,
            Some("1"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"t","params":{"na\u006de":"a","name":"b"}}"#,
            Some("1"),
        ),
    ];
    for &(doc, id) in cases {
        let (got, _) = invalid_of(doc);
        assert_eq!(got.as_deref(), id, "{doc}");
    }
    // Duplicates of members nobody inspects are fine (last wins downstream, we do not care).
    env(
        r#"{"jsonrpc":"2.0","id":1,"method":"t","params":{"arguments":{"a":1,"a":2},"x":1,"x":2}}"#,
    );
}

#[test]
fn broken_json_is_a_parse_error_even_when_the_shape_is_also_wrong() {
    let cases: &[(&[u8], usize)] = &[
        (b"", 0),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"", 39),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",}", 40),
        (b"{\"id\":{},\"method\":\"ping\"} x", 26),
        (b"{\"method\":5,\"params\":{\"name\":\"\\q\"}}", 31),
        (b"{\"jsonrpc\":\"2.0\",\"id\":01,\"method\":\"p\"}", 23),
        (b"{\"jsonrpc\":\"2.0\",\"method\":\"p\xff\"}", 28),
        (b"[1,]", 3),
        (b"nul", 0),
        (b"{\"a\":tru}", 5),
    ];
    for &(doc, offset) in cases {
        match parse(doc) {
            Err(WireError::Parse { offset: o, .. }) => {
                assert_eq!(o, offset, "{:?}", String::from_utf8_lossy(doc))
            }
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(doc)),
        }
        assert_eq!(parse(doc).map_err(|e| e.code()), Err(code::PARSE_ERROR));
    }
}

#[test]
fn non_objects_and_depth() {
    for doc in ["1", "\"x\"", "null", "[]", "[1]"] {
        let (id, _) = invalid_of(doc);
        assert_eq!(id, None);
    }
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"t","params":{{"a":{}1{}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    assert_eq!(parse(deep.as_bytes()), Err(WireError::TooDeep));
    assert_eq!(WireError::TooDeep.code(), code::INVALID_REQUEST);
    let ok_depth = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"t","params":{{"a":{}1{}}}}}"#,
        "[".repeat(MAX_DEPTH - 3),
        "]".repeat(MAX_DEPTH - 3)
    );
    assert_eq!(env(&ok_depth).kind, Kind::Request);
}

#[test]
fn batches() {
    let doc =
        br#" [ {"jsonrpc":"2.0","id":1,"method":"ping"}, 5 ,{"jsonrpc":"2.0","method":"n"} ] "#;
    let Ok(Message::Batch(spans)) = parse_message(doc) else {
        panic!("expected batch");
    };
    assert_eq!(spans.len(), 3);
    let first = parse_at(doc, spans[0]).expect("first");
    assert_eq!(first.kind, Kind::Request);
    assert_eq!(first.id_raw(doc), Some(&b"1"[..]));
    assert_eq!(first.method(doc), Some("ping"));
    assert!(matches!(
        parse_at(doc, spans[1]),
        Err(WireError::Invalid { id: None, .. })
    ));
    assert_eq!(
        parse_at(doc, spans[2]).map(|e| e.kind),
        Ok(Kind::Notification)
    );

    assert!(matches!(
        parse_message(b" [ ] "),
        Err(WireError::Invalid { id: None, .. })
    ));
    assert!(matches!(
        parse_message(b"[{}"),
        Err(WireError::Parse { .. })
    ));
    assert!(matches!(
        parse_message(b"[{}] x"),
        Err(WireError::Parse { .. })
    ));
    let single = parse_message(CALL.as_bytes()).expect("single");
    assert!(matches!(single, Message::Single(e) if e.kind == Kind::Request));
    // parse() itself refuses a batch.
    assert!(matches!(
        parse(br#"[{"jsonrpc":"2.0","method":"n"}]"#),
        Err(WireError::Invalid { .. })
    ));
    assert!(parse_at(doc, Span::new(0, doc.len() + 5)).is_err());
}

#[test]
fn wire_error_accessors() {
    let doc = r#"{"jsonrpc":"2.0","id":"q","method":7}"#;
    let err = parse(doc.as_bytes()).expect_err("invalid");
    assert_eq!(err.code(), code::INVALID_REQUEST);
    let (span, kind) = err.id().expect("id");
    assert_eq!(
        (span.get(doc.as_bytes()), kind),
        (&b"\"q\""[..], IdKind::String)
    );
    assert!(!err.reason().is_empty());
    assert!(err.to_string().contains("invalid request"));
}

/// Differential check on realistic messages: our fields must match serde_json's view.
#[test]
fn fields_agree_with_serde_json() {
    let ids = ["1", "\"s-1\"", "-7", "2.5e3", "\"\\u00e9\""];
    let names = ["\"plain\"", "\"a\\\"b\"", "\"\\u0041\""];
    let extras = ["", "\"x\":{\"name\":\"no\"},", "\"arr\":[[{}]],"];
    for (i, id) in ids.iter().enumerate() {
        for (j, name) in names.iter().enumerate() {
            for (k, extra) in extras.iter().enumerate() {
                let params =
                    format!(r#"{{{extra}"name":{name},"_meta":{{"progressToken":{id}}}}}"#);
                let members = [
                    r#""jsonrpc":"2.0""#.to_string(),
                    format!(r#""id":{id}"#),
                    r#""method":"tools/call""#.to_string(),
                    format!(r#""params":{params}"#),
                ];
                let rot = (i + j + k) % members.len();
                let body: Vec<&str> = members[rot..]
                    .iter()
                    .chain(&members[..rot])
                    .map(String::as_str)
                    .collect();
                let doc = format!("{{{}}}", body.join(","));
                let v: serde_json::Value = serde_json::from_str(&doc).expect("valid");
                let e = env(&doc);
                let b = doc.as_bytes();
                let id_val: serde_json::Value =
                    serde_json::from_slice(e.id_raw(b).expect("id")).expect("id json");
                assert_eq!(id_val, v["id"], "{doc}");
                assert_eq!(
                    Some(e.name_str(b).expect("name").as_ref()),
                    v["params"]["name"].as_str()
                );
                let tok: serde_json::Value =
                    serde_json::from_slice(e.progress_token.expect("tok").get(b)).expect("tok");
                assert_eq!(tok, v["params"]["_meta"]["progressToken"]);
            }
        }
    }
}

/// Mutated MCP messages: never a panic; `Parse` exactly when serde_json rejects the bytes; and
/// an accepted message's method and id agree with serde_json's reading.
#[test]
fn mutated_messages_agree_with_serde_json() {
    use crate::wire::scan::tests::{mutate, Rng};
    let seeds = [
        CALL,
        r#"{"jsonrpc":"2.0","id":"x","result":{"content":[{"type":"text","text":"h\u00e9"}]}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"n"}]"#,
    ];
    let mut rng = Rng(0x5EED_F00D_5EED_F00D);
    let (mut ok, mut parse_err, mut invalid) = (0, 0, 0);
    for round in 0..3000 {
        let mut doc = seeds[round % seeds.len()].as_bytes().to_vec();
        for _ in 0..=rng.below(2) {
            mutate(&mut rng, &mut doc);
        }
        let theirs = serde_json::from_slice::<serde_json::Value>(&doc);
        if matches!(&theirs, Err(e) if e.to_string().contains("out of range")) {
            continue;
        }
        match (parse_message(&doc), &theirs) {
            (Err(WireError::Parse { .. }), Err(_)) => parse_err += 1,
            (Err(WireError::Parse { .. }), Ok(_)) | (Ok(_), Err(_)) => {
                panic!("disagreement on {:?}", String::from_utf8_lossy(&doc))
            }
            (Err(WireError::Invalid { .. } | WireError::TooDeep), Err(_)) => {
                panic!(
                    "invalid JSON judged on shape: {:?}",
                    String::from_utf8_lossy(&doc)
                )
            }
            (Err(_), Ok(_)) => invalid += 1,
            (Ok(Message::Batch(spans)), Ok(_)) => {
                for s in spans {
                    let _ = parse_at(&doc, s);
                }
                ok += 1;
            }
            (Ok(Message::Single(e)), Ok(v)) => {
                assert_eq!(e.method(&doc), v["method"].as_str());
                let id = e
                    .id_raw(&doc)
                    .map(|raw| serde_json::from_slice::<serde_json::Value>(raw).expect("id token"));
                assert_eq!(id.as_ref(), v.get("id"));
                ok += 1;
            }
        }
    }
    assert!(
        ok > 100 && parse_err > 500 && invalid > 100,
        "{ok} {parse_err} {invalid}"
    );
}

#[test]
fn a_modern_retry_s_request_state_and_input_responses_are_found_by_the_one_scan() {
    let doc = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t","arguments":{"requestState":"not this"},"inputResponses":{"elicitation":{"action":"accept"}},"requestState":"k1.abc"}}"#;
    let e = parse(doc.as_bytes()).unwrap();
    assert_eq!(text(doc, e.request_state), Some(r#""k1.abc""#));
    assert_eq!(
        text(doc, e.input_responses),
        Some(r#"{"elicitation":{"action":"accept"}}"#)
    );
    let plain = parse(CALL.as_bytes()).unwrap();
    assert_eq!((plain.request_state, plain.input_responses), (None, None));
    let twice = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"requestState":"a","requestState":"b"}}"#;
    assert!(
        parse(twice.as_bytes()).is_err(),
        "a duplicate member is refused"
    );
}
