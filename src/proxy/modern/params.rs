//! `Mcp-Param-*` headers: a `tools/call` mirrors the arguments its tool's `inputSchema` marks with
//! `x-mcp-header`, and the gateway checks every such header against the body (-32020 otherwise).
//!
//! Key items: [`ParamIndex`] (per snapshot: namespaced tool → its annotated properties, built once
//! from the merged tool pages and cached per worker), [`check`].
//!
//! Rules (as the spec and the Python SDK v2 apply them): a schema whose annotations are not all
//! valid (off a pure `properties` chain, not an RFC 9110 token, on a type other than string /
//! integer / boolean, or duplicated case-insensitively) validates nothing, since conforming clients
//! drop such tools. For each annotated property: value present ⇔ header present; a duplicated
//! header, a malformed base64 sentinel, or a value that does not match (integers numerically,
//! booleans as `true`/`false`, strings exactly) is a mismatch. Headers the tool does not annotate
//! are ignored (and forwarded).
//!
//! Perf: a tool without annotations costs one hash lookup (none when no tool has any).

use std::collections::HashMap;

use simd_json::prelude::*;

use super::answer::Reject;
use super::headers::{decode_value, RoutingHeaders};
use super::skim::members;
use crate::catalog::params::{annotations, Param, Type};
use crate::catalog::{ListKind, Snapshot};
use crate::wire::scan::key_eq;
use crate::wire::{code, Envelope, Span};

/// Namespaced tool name → its annotated properties (tools without any are absent).
#[derive(Debug, Default)]
pub struct ParamIndex {
    tools: HashMap<Box<str>, Vec<Param>>,
}

impl ParamIndex {
    /// Reads every tool page of a snapshot.
    pub fn build(snap: &Snapshot) -> ParamIndex {
        let mut index = ParamIndex::default();
        let mut page = 0;
        while let Some(bytes) = snap.page(ListKind::Tools, page) {
            page += 1;
            let mut scratch = bytes.to_vec();
            let Ok(v) = simd_json::to_owned_value(&mut scratch) else {
                continue;
            };
            for tool in v
                .get("tools")
                .and_then(|t| t.as_array())
                .into_iter()
                .flatten()
            {
                let (Some(name), Some(schema)) = (
                    tool.get("name").and_then(|n| n.as_str()),
                    tool.get("inputSchema"),
                ) else {
                    continue;
                };
                if let Some(params) = annotations(schema).filter(|p| !p.is_empty()) {
                    index.tools.insert(name.into(), params);
                }
            }
        }
        index
    }

    /// Whether no tool has annotations.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

/// The raw value at `path` inside `arguments` (a validated object span), if present.
fn value_at(body: &[u8], arguments: Span, path: &[Box<str>]) -> Option<Span> {
    let mut at = arguments;
    for step in path {
        let mut next = None;
        members(body, at.start as usize, |k, escaped, v| {
            if next.is_none() && key_eq(k.get(body), escaped, step.as_bytes()) {
                next = Some(v);
            }
        });
        at = next?;
    }
    Some(at)
}

/// Whether a header value (decoded) agrees with the raw JSON value of an annotated property.
fn agrees(ty: Type, raw: &[u8], header: &[u8]) -> bool {
    match raw.first() {
        Some(b'"') => crate::wire::envelope::content_str(
            raw,
            Span::new(1, raw.len().saturating_sub(1)),
            raw.contains(&b'\\'),
        )
        .is_some_and(|s| s.as_bytes() == header),
        Some(b't' | b'f') => raw == header,
        Some(b'-' | b'0'..=b'9') if ty == Type::Integer => integral(raw) == integral(header),
        Some(b'-' | b'0'..=b'9') => raw == header,
        _ => false,
    }
}

/// An integer written as JSON (`42`, `42.0`, `-7`) or as a canonical decimal header, if integral.
fn integral(s: &[u8]) -> Option<i128> {
    let s = std::str::from_utf8(s).ok()?;
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if !frac.bytes().all(|b| b == b'0') || whole.is_empty() {
        return None;
    }
    whole.parse().ok()
}

/// Checks the `Mcp-Param-*` headers of a `tools/call` naming `tool`.
pub fn check(
    index: &ParamIndex,
    tool: &str,
    body: &[u8],
    env: &Envelope,
    h: &RoutingHeaders<'_>,
) -> Result<(), Reject> {
    let Some(params) = index.tools.get(tool) else {
        return Ok(());
    };
    let mut arguments = None;
    if let Some(p) = env.params {
        members(body, p.start as usize, |k, escaped, v| {
            if key_eq(k.get(body), escaped, b"arguments") && v.get(body).first() == Some(&b'{') {
                arguments = Some(v);
            }
        });
    }
    for p in params {
        let name = format!("Mcp-Param-{}", p.token);
        let mismatch = |what: &str| Reject::new(code::HEADER_MISMATCH, format!("{name} {what}"));
        let (header, twice) = h.param(p.token.as_bytes());
        if header.is_some() && twice {
            return Err(mismatch("header appears more than once"));
        }
        let value = arguments
            .and_then(|a| value_at(body, a, &p.path))
            .filter(|v| v.get(body) != b"null");
        match (value, header) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(mismatch("header is present but its argument is absent"))
            }
            (Some(_), None) => {
                return Err(mismatch("header is missing but its argument is present"))
            }
            (Some(v), Some(raw)) => {
                let decoded = decode_value(raw)
                    .ok_or_else(|| mismatch("header carries a malformed base64 value"))?;
                if !agrees(p.ty, v.get(body), &decoded) {
                    return Err(mismatch("header does not match its argument in the body"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_agree_like_the_sdk() {
        assert!(agrees(Type::String, br#""us-west1""#, b"us-west1"));
        assert!(agrees(Type::String, br#""a\"b""#, b"a\"b"));
        assert!(agrees(Type::Integer, b"42", b"42.0"));
        assert!(agrees(Type::Integer, b"42.0", b"42"));
        assert!(!agrees(Type::Integer, b"42", b"43"));
        assert!(agrees(Type::Boolean, b"true", b"true"));
        assert!(!agrees(Type::Boolean, b"true", b"True"));
        assert!(!agrees(Type::String, b"{}", b"{}"));
    }
}
