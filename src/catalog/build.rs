//! Building a Snapshot: list fan-in → filter → rename → merge → encode pages.
//!
//! Runs on the control thread whenever a server's lists or availability change, never on a worker.
//! Uses full JSON values (simd-json) because every item is read and renamed; the cost is paid once
//! per change, not per request. Order is deterministic: servers in config order, items in each
//! server's own order.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use simd_json::prelude::*;
use simd_json::OwnedValue;

use super::cursor::CursorCodec;
use super::hint::{CacheHint, LEGACY_HINT};
use super::{ListKind, Routes, ServerEntry, Snapshot, Target};
use crate::config::{GatewayConfig, Unavailable};
use crate::policy::Policy;
use crate::session::downstream::ServerLink;
use crate::wire::encode::write_json_string;

/// Everything a server's lists contributed when last fetched, per [`ListKind`].
#[derive(Debug, Default, Clone)]
pub struct ServerLists {
    /// Items per kind, as the downstream sent them (names not yet namespaced).
    pub items: [Vec<OwnedValue>; 4],
    /// Cache hints per kind as a modern server sent them (merged over its pages); `None` for a
    /// legacy server or a list it does not offer.
    pub hints: [Option<CacheHint>; 4],
}

/// One server as the builder sees it: its link and its last known lists.
#[derive(Clone)]
pub struct ServerView {
    /// The shared link.
    pub link: Arc<ServerLink>,
    /// The last lists fetched from it, if any fetch ever succeeded.
    pub lists: Option<Arc<ServerLists>>,
}

/// Builds a snapshot from server views. Never fails: conflicts are logged and the first entry wins.
pub fn build(
    generation: u64,
    gateway: Arc<GatewayConfig>,
    views: &[ServerView],
    cursors: Arc<CursorCodec>,
) -> Snapshot {
    let mut routes = Routes::default();
    let mut merged: [Vec<OwnedValue>; 4] = Default::default();
    let mut hints: [Option<CacheHint>; 4] = [None; 4];
    let mut servers = Vec::with_capacity(views.len());
    for (index, view) in views.iter().enumerate() {
        let available = view.link.is_up();
        let serve = available || gateway.unavailable == Unavailable::Error;
        let mut tools = 0;
        if let (true, Some(lists)) = (serve, &view.lists) {
            for kind in ListKind::ALL {
                for item in &lists.items[kind as usize] {
                    if let Some(renamed) = add_item(&mut routes, kind, index, &view.link, item) {
                        tools += usize::from(kind == ListKind::Tools);
                        merged[kind as usize].push(renamed);
                    }
                }
            }
        }
        view.link.set_tools(tools);
        let offers = ListKind::ALL.map(|k| super::offers(&view.link, k));
        if available {
            merge_hints(&mut hints, &offers, view.lists.as_deref());
        }
        servers.push(ServerEntry {
            link: view.link.clone(),
            available,
            tools,
            offers,
        });
    }
    routes
        .templates
        .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
    let page_size = gateway.page_size.max(1);
    let pages = ListKind::ALL
        .map(|k| encode_pages(k, &merged[k as usize], page_size, generation, &cursors));
    Snapshot {
        generation,
        server_name: Arc::from(gateway.server_name.as_str()),
        capabilities: capabilities(&servers),
        instructions: instructions(&servers),
        gateway,
        servers,
        routes,
        pages,
        hints: hints.map(|h| h.unwrap_or(LEGACY_HINT)),
        policy: Policy::default(),
        cursors,
    }
}

/// Folds one available server's hints into the merged ones: each list it offers contributes its
/// captured hint, or [`LEGACY_HINT`] when none was captured (a legacy server).
fn merge_hints(
    hints: &mut [Option<CacheHint>; 4],
    offers: &[bool; 4],
    lists: Option<&ServerLists>,
) {
    for kind in ListKind::ALL {
        let k = kind as usize;
        if !offers[k] {
            continue;
        }
        let own = lists.and_then(|l| l.hints[k]).unwrap_or(LEGACY_HINT);
        hints[k] = Some(hints[k].map_or(own, |h| h.merge(own)));
    }
}

/// Namespaces one item, records its route, and returns the renamed item (`None` if skipped).
fn add_item(
    routes: &mut Routes,
    kind: ListKind,
    index: usize,
    link: &ServerLink,
    item: &OwnedValue,
) -> Option<OwnedValue> {
    let params = (kind == ListKind::Tools)
        .then(|| super::params::of_tool(item).map(Arc::from))
        .flatten();
    let mut item = item.clone();
    let obj = item.as_object_mut()?;
    match kind {
        ListKind::Tools | ListKind::Prompts => {
            let name = obj.get("name")?.as_str()?.to_string();
            let namespaced = link.config.namespaced(&name);
            let table = if kind == ListKind::Tools {
                &mut routes.tools
            } else {
                &mut routes.prompts
            };
            if table.contains_key(namespaced.as_str()) {
                log::warn!(
                    "server '{}': {kind:?} name '{namespaced}' already taken; skipped",
                    link.name
                );
                link.note_error(format!("name collision on '{namespaced}'"));
                return None;
            }
            let mut escaped = Vec::with_capacity(name.len() + 2);
            write_json_string(&mut escaped, &name);
            let original = Bytes::copy_from_slice(&escaped[1..escaped.len() - 1]);
            table.insert(
                namespaced.clone().into(),
                Target {
                    server: index,
                    original,
                    params,
                },
            );
            obj.insert("name".into(), OwnedValue::from(namespaced));
        }
        ListKind::Resources => {
            let uri = obj.get("uri")?.as_str()?;
            routes.resources.entry(uri.into()).or_insert(index);
        }
        ListKind::Templates => {
            let template = obj.get("uriTemplate")?.as_str()?.to_string();
            let prefix = template.split('{').next().unwrap_or("");
            routes.templates.push((prefix.into(), index));
            routes
                .template_exact
                .entry(template.as_str().into())
                .or_insert(index);
            if let Some(name) = obj.get("name").and_then(|n| n.as_str()).map(str::to_string) {
                obj.insert(
                    "name".into(),
                    OwnedValue::from(link.config.namespaced(&name)),
                );
            }
        }
    }
    Some(item)
}

/// Encodes a merged list as result objects of `page_size` items, chained by sealed cursors.
fn encode_pages(
    kind: ListKind,
    items: &[OwnedValue],
    page_size: usize,
    generation: u64,
    cursors: &CursorCodec,
) -> Vec<Bytes> {
    let chunks: Vec<&[OwnedValue]> = if items.is_empty() {
        vec![&[]]
    } else {
        items.chunks(page_size).collect()
    };
    let last = chunks.len() - 1;
    let mut pages = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut out = Vec::with_capacity(256 * chunk.len() + 64);
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(kind.result_key().as_bytes());
        out.extend_from_slice(b"\":[");
        for (j, item) in chunk.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            // Writing into a Vec cannot fail.
            let _ = item.write(&mut out);
        }
        out.push(b']');
        if i < last {
            out.extend_from_slice(b",\"nextCursor\":");
            write_json_string(&mut out, &cursors.mint(kind, i + 1, generation));
        }
        out.push(b'}');
        pages.push(Bytes::from(out));
    }
    pages
}

/// The capabilities the gateway advertises: tools, prompts and resources always (servers come and
/// go, so the catalog can change: `listChanged` is always true), plus logging and completions when
/// any server offers them.
fn capabilities(servers: &[ServerEntry]) -> Bytes {
    let parsed: Vec<OwnedValue> = servers
        .iter()
        .filter_map(|s| {
            let d = s.link.session.load_full()?;
            let mut caps = d.capabilities.to_vec();
            simd_json::to_owned_value(&mut caps).ok()
        })
        .collect();
    let any = |key: &str| {
        parsed
            .iter()
            .any(|v| v.as_object().is_some_and(|o| o.contains_key(key)))
    };
    let subscribe = parsed.iter().any(|v| {
        v.get("resources")
            .and_then(|r| r.get("subscribe"))
            .and_then(|b| b.as_bool())
            == Some(true)
    });
    let mut out = String::from(
        r#"{"tools":{"listChanged":true},"prompts":{"listChanged":true},"resources":{"listChanged":true"#,
    );
    if subscribe {
        out.push_str(r#","subscribe":true"#);
    }
    out.push('}');
    if any("logging") {
        out.push_str(r#","logging":{}"#);
    }
    if any("completions") {
        out.push_str(r#","completions":{}"#);
    }
    // Experimental tasks: the gateway lists and cancels tasks itself (per session) and forwards
    // task-augmented tool calls when any server takes them.
    let task_calls = parsed.iter().any(|v| {
        v.get("tasks")
            .and_then(|t| t.get("requests"))
            .and_then(|r| r.get("tools"))
            .and_then(|t| t.get("call"))
            .is_some()
    });
    if task_calls {
        out.push_str(r#","tasks":{"list":{},"cancel":{},"requests":{"tools":{"call":{}}}}"#);
    }
    out.push('}');
    Bytes::from(out)
}

/// Downstream instructions, each under a heading naming its server.
fn instructions(servers: &[ServerEntry]) -> Option<String> {
    let mut parts: HashMap<usize, String> = HashMap::new();
    for (i, s) in servers.iter().enumerate() {
        if let Some(text) = s
            .link
            .session
            .load()
            .as_ref()
            .and_then(|d| d.instructions.clone())
        {
            if !text.trim().is_empty() {
                parts.insert(
                    i,
                    format!(
                        "## {} (tools prefixed '{}')\n{}",
                        s.link.name,
                        s.link.config.namespaced(""),
                        text.trim()
                    ),
                );
            }
        }
    }
    let mut keys: Vec<_> = parts.keys().copied().collect();
    keys.sort_unstable();
    let joined: Vec<String> = keys.into_iter().filter_map(|k| parts.remove(&k)).collect();
    (!joined.is_empty()).then(|| joined.join("\n\n"))
}
