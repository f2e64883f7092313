//! `x-mcp-header` annotations (2026-07-28): which `tools/call` arguments a tool's `inputSchema`
//! asks to be mirrored into `Mcp-Param-{token}` HTTP headers, read once per list fetch.
//!
//! Key items: [`annotations`] (the schema walk, shared by the front, which checks what clients
//! send, and the back, which sends them to modern downstreams), [`Param`], [`header_values`] (the
//! headers one call carries, from its raw `arguments`).
//!
//! Rules (as the spec and the Python SDK v2 apply them): a schema whose annotations are not all
//! valid (off a pure `properties` chain, not an RFC 9110 token, on a type other than string /
//! integer / boolean, or duplicated case-insensitively) yields `None`: conforming clients drop
//! such tools, and the gateway mirrors nothing for them. A value is rendered like the SDK's client:
//! a string as its text, a boolean as `true`/`false`, a number as written; `null`, objects and
//! arrays are not mirrored. The value is then wrapped by [`encode_header_value`] (base64 sentinel
//! for anything not plain printable ASCII).
//!
//! Perf: the walk runs on the control thread at catalog build; a call pays one scan of its
//! `arguments` object per annotated property, and only for tools that have annotations.

use simd_json::prelude::*;
use simd_json::OwnedValue;

use crate::session::modern::encode_header_value;
use crate::wire::envelope::content_str;
use crate::wire::scan::{for_each_member, key_eq, member};
use crate::wire::Span;

/// The header name prefix a token is joined to.
pub const HEADER_PREFIX: &str = "Mcp-Param-";

/// The type an annotated property declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// `"type": "string"`.
    String,
    /// `"type": "integer"`.
    Integer,
    /// `"type": "boolean"`.
    Boolean,
}

/// One annotated property: its `properties` path, the header token, its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Property names from the schema root (through `properties` only).
    pub path: Vec<Box<str>>,
    /// The `x-mcp-header` token (the header is `Mcp-Param-{token}`).
    pub token: Box<str>,
    /// The declared type.
    pub ty: Type,
}

/// Whether `s` is an RFC 9110 token.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The annotated properties of a schema; `None` when any annotation is invalid.
pub fn annotations(root: &OwnedValue) -> Option<Vec<Param>> {
    const SINGLE: [&str; 11] = [
        "items",
        "contains",
        "unevaluatedItems",
        "additionalProperties",
        "propertyNames",
        "unevaluatedProperties",
        "not",
        "if",
        "then",
        "else",
        "contentSchema",
    ];
    const LIST: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
    const MAP: [&str; 4] = [
        "patternProperties",
        "dependentSchemas",
        "$defs",
        "definitions",
    ];
    let mut out: Vec<Param> = Vec::new();
    // (path: None once off a pure `properties` chain, schema)
    let mut stack: Vec<(Option<Vec<Box<str>>>, &OwnedValue)> = vec![(Some(Vec::new()), root)];
    while let Some((path, node)) = stack.pop() {
        let Some(schema) = node.as_object() else {
            continue;
        };
        if let Some(token) = schema.get("x-mcp-header") {
            let param = annotation(path.as_deref(), token, schema.get("type"))?;
            if out
                .iter()
                .any(|p| p.token.eq_ignore_ascii_case(&param.token))
            {
                return None;
            }
            out.push(param);
        }
        for (kw, val) in schema.iter() {
            let kw = kw.as_ref();
            if kw == "properties" {
                for (name, sub) in val.as_object().into_iter().flat_map(|o| o.iter()) {
                    let sub_path = path.clone().map(|mut p| {
                        p.push(name.as_str().into());
                        p
                    });
                    stack.push((sub_path, sub));
                }
            } else if SINGLE.contains(&kw) {
                stack.push((None, val));
            } else if LIST.contains(&kw) {
                stack.extend(val.as_array().into_iter().flatten().map(|s| (None, s)));
            } else if MAP.contains(&kw) {
                stack.extend(
                    val.as_object()
                        .into_iter()
                        .flat_map(|o| o.values())
                        .map(|s| (None, s)),
                );
            }
        }
    }
    Some(out)
}

/// One `x-mcp-header` annotation, if valid: on a property reached by `properties` keys only, a
/// token, on a string / integer / boolean property.
fn annotation(
    path: Option<&[Box<str>]>,
    token: &OwnedValue,
    ty: Option<&OwnedValue>,
) -> Option<Param> {
    let path = path.filter(|p| !p.is_empty())?.to_vec();
    let token = token.as_str().filter(|t| is_token(t))?;
    let ty = match ty.and_then(|t| t.as_str())? {
        "string" => Type::String,
        "integer" => Type::Integer,
        "boolean" => Type::Boolean,
        _ => return None,
    };
    Some(Param {
        path,
        token: token.into(),
        ty,
    })
}

/// The annotated properties of one tool (its `inputSchema`), if it has any valid ones.
pub fn of_tool(tool: &OwnedValue) -> Option<Box<[Param]>> {
    annotations(tool.get("inputSchema")?)
        .filter(|p| !p.is_empty())
        .map(Vec::into_boxed_slice)
}

/// The raw value at `path` inside the object starting at `at`, if present.
pub fn value_at(body: &[u8], at: Span, path: &[Box<str>]) -> Option<Span> {
    path.iter()
        .try_fold(at, |span, step| member(body, span, step.as_bytes()))
}

/// A raw JSON scalar as the client mirrors it into a header (before base64 wrapping).
fn render(raw: &[u8]) -> Option<String> {
    match raw.first()? {
        b'"' => {
            let inner = Span::new(1, raw.len().saturating_sub(1));
            content_str(raw, inner, raw.contains(&b'\\')).map(|s| s.into_owned())
        }
        b't' | b'f' | b'-' | b'0'..=b'9' => std::str::from_utf8(raw).ok().map(str::to_string),
        _ => None,
    }
}

/// The `(header name, value)` pairs a `tools/call` carries for `params`, read from the call's
/// message: `body` holds the request, `params_span` its `params` object.
pub fn header_values(body: &[u8], params_span: Span, params: &[Param]) -> Vec<(String, String)> {
    let mut arguments = None;
    if body.get(params_span.start as usize) == Some(&b'{') {
        let _ = for_each_member(body, params_span.start as usize, |k, escaped, v| {
            if key_eq(k.get(body), escaped, b"arguments") {
                arguments = Some(v);
            }
        });
    }
    let Some(arguments) = arguments else {
        return Vec::new();
    };
    params
        .iter()
        .filter_map(|p| {
            let value = render(value_at(body, arguments, &p.path)?.get(body))?;
            Some((
                format!("{HEADER_PREFIX}{}", p.token),
                encode_header_value(&value),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(json: &str) -> Option<Vec<Param>> {
        let mut s = json.as_bytes().to_vec();
        annotations(&simd_json::to_owned_value(&mut s).unwrap())
    }

    #[test]
    fn annotations_are_read_and_invalid_schemas_yield_none() {
        let ok = schema(r#"{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"opts":{"properties":{"n":{"type":"integer","x-mcp-header":"N"}}}}}"#).unwrap();
        assert_eq!(ok.len(), 2);
        let n = ok.iter().find(|p| &*p.token == "N").unwrap();
        assert_eq!(
            n.path.iter().map(|s| &**s).collect::<Vec<_>>(),
            ["opts", "n"]
        );
        for bad in [
            r#"{"x-mcp-header":"Root","type":"string"}"#,
            r#"{"properties":{"a":{"type":"number","x-mcp-header":"A"}}}"#,
            r#"{"properties":{"a":{"type":"string","x-mcp-header":"A B"}}}"#,
            r#"{"properties":{"a":{"type":"string","x-mcp-header":"A"},"b":{"type":"string","x-mcp-header":"a"}}}"#,
            r#"{"properties":{"a":{"items":{"type":"string","x-mcp-header":"A"}}}}"#,
        ] {
            assert!(schema(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn header_values_mirror_present_scalars_with_the_sdk_s_encoding() {
        let params = schema(r#"{"properties":{"region":{"type":"string","x-mcp-header":"Region"},"n":{"type":"integer","x-mcp-header":"N"},"on":{"type":"boolean","x-mcp-header":"On"},"city":{"type":"string","x-mcp-header":"City"},"gone":{"type":"string","x-mcp-header":"Gone"},"nil":{"type":"string","x-mcp-header":"Nil"}}}"#).unwrap();
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"region":"us-west1","n":42,"on":false,"city":"Zürich","nil":null}}}"#;
        let env = crate::wire::parse(body.as_bytes()).unwrap();
        let mut got = header_values(body.as_bytes(), env.params.unwrap(), &params);
        got.sort();
        let want = [
            ("Mcp-Param-City", "=?base64?WsO8cmljaA==?="),
            ("Mcp-Param-N", "42"),
            ("Mcp-Param-On", "false"),
            ("Mcp-Param-Region", "us-west1"),
        ];
        assert_eq!(
            got.iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
            want
        );
        let no_args = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}"#;
        let env = crate::wire::parse(no_args.as_bytes()).unwrap();
        assert!(header_values(no_args.as_bytes(), env.params.unwrap(), &params).is_empty());
    }
}
