//! `subscriptions/listen`: a modern client's long-lived stream of change notifications (the
//! modern replacement of the legacy GET stream and of `resources/subscribe`).
//!
//! The reply is an SSE stream: first `notifications/subscriptions/acknowledged` naming the
//! notification types the gateway agreed to, then every matching notification, each tagged with
//! `_meta["io.modelcontextprotocol/subscriptionId"]` = the request's id: the `list_changed` the
//! catalog publishes (the control thread broadcasts them to each worker's stream hub) and the
//! `notifications/resources/updated` of the URIs in `resourceSubscriptions` (see [`Watches`]).
//! When the gateway shuts down, the stream ends with the request's result (`resultType` and the
//! subscription id).
//!
//! Agreed types: `toolsListChanged`, `promptsListChanged`, `resourcesListChanged` (the gateway
//! advertises `listChanged` for all three: servers come and go) when asked for, and the requested
//! `resourceSubscriptions` that some server owns (a URI nobody owns is left out of the
//! acknowledgement, so the client knows no update will come for it).
//!
//! Closing the stream ends the subscription: the hub drops a stream whose receiver is gone at its
//! next broadcast, and dropping the [`Watches`] withdraws its URIs.

use bytes::Bytes;

use super::skim::members;
use super::watches::Watches;
use crate::session::streams::StreamRegistration;
use crate::wire::names::meta;
use crate::wire::scan::key_eq;
use crate::wire::{self, encode, method, Envelope, Kind, Span};

/// Which notifications the client asked for (and, once opened, the gateway agreed to).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    tools: bool,
    prompts: bool,
    resources: bool,
    /// `resourceSubscriptions`: the URIs whose `resources/updated` the client wants.
    pub uris: Vec<String>,
}

impl Filter {
    /// Reads `params.notifications` of a listen request (the body is validated).
    /// `None` when `params.notifications` (required) is missing or not an object.
    pub fn read(body: &[u8], env: &Envelope) -> Option<Filter> {
        let mut f = Filter::default();
        let params = env.params?;
        let mut wanted = None;
        members(body, params.start as usize, |k, escaped, v| {
            if key_eq(k.get(body), escaped, b"notifications") {
                wanted = Some(v);
            }
        });
        let wanted = wanted.filter(|w| body.get(w.start as usize) == Some(&b'{'))?;
        members(body, wanted.start as usize, |k, escaped, v| {
            let on = v.get(body) == b"true";
            let name = k.get(body);
            if key_eq(name, escaped, b"toolsListChanged") {
                f.tools = on;
            } else if key_eq(name, escaped, b"promptsListChanged") {
                f.prompts = on;
            } else if key_eq(name, escaped, b"resourcesListChanged") {
                f.resources = on;
            } else if key_eq(name, escaped, b"resourceSubscriptions") {
                f.uris = uri_list(body, v);
            }
        });
        Some(f)
    }

    /// Whether a notification with this method passes.
    fn admits(&self, m: &str) -> bool {
        match m {
            method::TOOLS_LIST_CHANGED => self.tools,
            method::PROMPTS_LIST_CHANGED => self.prompts,
            method::RESOURCES_LIST_CHANGED => self.resources,
            _ => false,
        }
    }

    /// The agreed set as a `SubscriptionFilter` object (the URIs as given, honoured ones only).
    fn write(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        for (on, key) in [
            (self.tools, "toolsListChanged"),
            (self.prompts, "promptsListChanged"),
            (self.resources, "resourcesListChanged"),
        ] {
            if on {
                if !first {
                    out.push(b',');
                }
                first = false;
                encode::write_json_string(out, key);
                out.extend_from_slice(b":true");
            }
        }
        if !self.uris.is_empty() {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(b"\"resourceSubscriptions\":[");
            for (i, uri) in self.uris.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode::write_json_string(out, uri);
            }
            out.push(b']');
        }
        out.push(b'}');
    }
}

/// The strings of a JSON array (other members skipped); empty for anything but an array.
fn uri_list(body: &[u8], array: Span) -> Vec<String> {
    let mut out = Vec::new();
    let raw = array.get(body);
    if raw.first() != Some(&b'[') {
        return out;
    }
    let mut at = 1;
    while at < raw.len() {
        at = wire::scan::skip_ws(raw, at);
        match raw.get(at) {
            Some(b'"') => {
                let Ok(t) = wire::scan::scan_string(raw, at) else {
                    break;
                };
                let content = Span::new(at + 1, t.end - 1);
                if let Some(s) = wire::envelope::content_str(raw, content, t.escaped) {
                    out.push(s.into_owned());
                }
                at = t.end;
            }
            Some(b',') => at += 1,
            _ => break,
        }
    }
    out
}

/// An open listen stream.
pub struct Listen {
    /// The request's raw id (the subscription id).
    id: Bytes,
    filter: Filter,
    reg: StreamRegistration,
    ack: Option<Bytes>,
    done: bool,
    /// The resource subscriptions held for the stream (withdrawn when it is dropped).
    watches: Option<Watches>,
}

/// `"_meta":{"io.modelcontextprotocol/subscriptionId":ID}` (no braces around).
fn subscription_meta(id: &[u8]) -> Vec<u8> {
    let mut m = b"\"_meta\":{".to_vec();
    encode::write_json_string(&mut m, meta::SUBSCRIPTION_ID);
    m.push(b':');
    m.extend_from_slice(id);
    m.push(b'}');
    m
}

impl Listen {
    /// Opens the stream on the worker's hub (registered under the key of `watches`, if any, so
    /// the resource updates it watches reach it) and prepares the acknowledgement.
    pub fn open(
        reg: StreamRegistration,
        id: &[u8],
        mut filter: Filter,
        watches: Option<Watches>,
    ) -> Listen {
        filter.uris = watches.as_ref().map(|w| w.uris.clone()).unwrap_or_default();
        let mut params = b"{\"notifications\":".to_vec();
        filter.write(&mut params);
        params.push(b',');
        params.extend_from_slice(&subscription_meta(id));
        params.push(b'}');
        Listen {
            id: Bytes::copy_from_slice(id),
            filter,
            reg,
            ack: Some(encode::notification(
                method::SUBSCRIPTIONS_ACKNOWLEDGED,
                Some(&params),
            )),
            done: false,
            watches,
        }
    }

    /// The next message for the client; the result once the hub closes (shutdown), then `None`.
    pub async fn next(&mut self) -> Option<Bytes> {
        if let Some(ack) = self.ack.take() {
            return Some(ack);
        }
        if self.done {
            return None;
        }
        while let Some(msg) = self.reg.rx.recv().await {
            if let Some(tagged) = self.accept(&msg) {
                return Some(tagged);
            }
        }
        self.done = true;
        let mut result = b"{\"resultType\":\"complete\",".to_vec();
        result.extend_from_slice(&subscription_meta(&self.id));
        result.push(b'}');
        Some(encode::result_response(&self.id, &result))
    }

    /// A hub message, filtered and tagged with the subscription id.
    fn accept(&self, msg: &Bytes) -> Option<Bytes> {
        let env = wire::parse(msg).ok()?;
        if env.kind != Kind::Notification {
            return None;
        }
        let admitted = match env.method(msg)? {
            method::RESOURCES_UPDATED => {
                let uri = env.uri_str(msg)?;
                self.watches.as_ref().is_some_and(|w| w.watches(&uri))
            }
            m => self.filter.admits(m),
        };
        admitted.then(|| tag(msg, &env, &self.id))
    }
}

/// Adds the subscription id to a notification's `_meta` (creating `params` / `_meta` as needed).
fn tag(msg: &Bytes, env: &Envelope, id: &[u8]) -> Bytes {
    let meta_members = &subscription_meta(id)[b"\"_meta\":{".len()..];
    let meta_members = &meta_members[..meta_members.len() - 1];
    let insert = |at: usize, bytes: Vec<u8>| {
        wire::concat(&wire::splice(
            msg,
            &mut [(Span::new(at, at), Bytes::from(bytes))],
        ))
    };
    let after_brace = |obj: Span, mut v: Vec<u8>| {
        let at = obj.start as usize + 1;
        if msg.get(wire::scan::skip_ws(msg, at)) != Some(&b'}') {
            v.push(b',');
        }
        insert(at, v)
    };
    match (env.meta, env.params) {
        (Some(m), _) => after_brace(m, meta_members.to_vec()),
        (None, Some(p)) if msg.get(p.start as usize) == Some(&b'{') => {
            after_brace(p, subscription_meta(id))
        }
        _ => {
            let close = msg.iter().rposition(|&b| b == b'}').unwrap_or(msg.len());
            let mut v = b",\"params\":{".to_vec();
            v.extend_from_slice(&subscription_meta(id));
            v.push(b'}');
            insert(close, v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_are_tagged_with_the_subscription_id() {
        let cases = [
            r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{"_meta":{"a":1}}}"#,
        ];
        for c in cases {
            let msg = Bytes::from(c);
            let env = wire::parse(&msg).unwrap();
            let out = tag(&msg, &env, b"\"sub-1\"");
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(
                v["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "sub-1",
                "{c}"
            );
        }
    }

    #[test]
    fn the_filter_reads_and_writes_the_agreed_set() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true,"promptsListChanged":false,"resourceSubscriptions":["x"]}}}"#;
        let env = wire::parse(body).unwrap();
        let mut f = Filter::read(body, &env).unwrap();
        assert!(f.admits(method::TOOLS_LIST_CHANGED) && !f.admits(method::PROMPTS_LIST_CHANGED));
        assert_eq!(f.uris, ["x"]);
        let mut out = Vec::new();
        f.write(&mut out);
        assert_eq!(
            out,
            br#"{"toolsListChanged":true,"resourceSubscriptions":["x"]}"#
        );
        f.uris.clear();
        out.clear();
        f.write(&mut out);
        assert_eq!(out, br#"{"toolsListChanged":true}"#);
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":[ "a\u0062" , 3, "c"]}}}"#;
        let f = Filter::read(body, &wire::parse(body).unwrap()).unwrap();
        assert_eq!(f.uris, ["ab"], "a non-string ends the list");
        let mut out = Vec::new();
        f.write(&mut out);
        assert_eq!(out, br#"{"resourceSubscriptions":["ab"]}"#);
    }
}
