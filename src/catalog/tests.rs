//! Snapshot building: namespacing, routing, pagination, availability, collisions.

use std::sync::Arc;

use bytes::Bytes;
use simd_json::OwnedValue;

use super::cursor::CursorCodec;
use super::*;
use crate::config::{parse_str, Config};
use crate::seal::Sealer;
use crate::session::downstream::DownSession;

fn config(extra_gateway: &str, servers: &[(&str, Option<&str>)]) -> Config {
    let mut t = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{extra_gateway}\n"
    );
    for (name, prefix) in servers {
        t.push_str(&format!("[[server]]\nname = \"{name}\"\ntransport = \"http\"\nurl = \"http://127.0.0.1:1/mcp\"\n"));
        if let Some(p) = prefix {
            t.push_str(&format!("prefix = \"{p}\"\n"));
        }
    }
    parse_str(&t, &|_| None).expect("valid test config")
}

fn item(json: &str) -> OwnedValue {
    let mut b = json.as_bytes().to_vec();
    simd_json::to_owned_value(&mut b).unwrap()
}

fn view(cfg: &Config, slot: usize, up: bool, tools: &[&str]) -> ServerView {
    let link = Arc::new(ServerLink::new(slot, Arc::new(cfg.servers[slot].clone())));
    link.session.store(Some(Arc::new(DownSession {
        id: None,
        protocol_version: Bytes::from_static(b"2025-06-18"),
        capabilities: Bytes::from_static(br#"{"tools":{},"resources":{}}"#),
        instructions: None,
        server_info: Bytes::from_static(b"{}"),
        epoch: 1,
    })));
    if up {
        link.mark_up();
    }
    let mut lists = ServerLists::default();
    lists.items[ListKind::Tools as usize] = tools
        .iter()
        .map(|t| item(&format!(r#"{{"name":"{t}","inputSchema":{{}}}}"#)))
        .collect();
    lists.items[ListKind::Resources as usize] =
        vec![item(&format!(r#"{{"uri":"file:///{slot}/a","name":"a"}}"#))];
    lists.items[ListKind::Templates as usize] = vec![item(&format!(
        r#"{{"uriTemplate":"db://{slot}/{{id}}","name":"row"}}"#
    ))];
    ServerView {
        link,
        lists: Some(Arc::new(lists)),
    }
}

fn codec() -> Arc<CursorCodec> {
    Arc::new(CursorCodec::with_sealer(Sealer::from_key(&[5; 32], b"t")))
}

fn page_names(page: &Bytes) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(page).unwrap();
    v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn names_are_namespaced_and_routed_back_to_the_original() {
    let cfg = config("", &[("a", None), ("b", Some("bee"))]);
    let views = [
        view(&cfg, 0, true, &["x", "y"]),
        view(&cfg, 1, true, &["x"]),
    ];
    let snap = build(1, Arc::new(cfg.gateway.clone()), &views, codec());
    assert_eq!(
        page_names(&snap.pages[0][0]),
        vec!["a__x", "a__y", "bee__x"]
    );
    let t = snap.tool("bee__x").unwrap();
    assert_eq!((t.server, &t.original[..]), (1, &b"x"[..]));
    assert!(snap.tool("x").is_none());
    assert_eq!(snap.resource_owner("file:///1/a"), Some(1));
    assert_eq!(snap.resource_owner("db://0/77"), Some(0));
    assert_eq!(snap.template_owner("db://1/{id}"), Some(1));
    assert_eq!(snap.resource_owner("nowhere://"), None);
}

#[test]
fn pages_chain_through_sealed_cursors() {
    let cfg = config("page_size = 2", &[("a", None)]);
    let views = [view(&cfg, 0, true, &["t1", "t2", "t3", "t4", "t5"])];
    let snap = build(7, Arc::new(cfg.gateway.clone()), &views, codec());
    assert_eq!(snap.pages[0].len(), 3);
    let first: serde_json::Value = serde_json::from_slice(&snap.pages[0][0]).unwrap();
    let cursor = first["nextCursor"].as_str().unwrap();
    assert_eq!(
        snap.cursors.open(ListKind::Tools, cursor.as_bytes()),
        Some(1)
    );
    let last: serde_json::Value = serde_json::from_slice(&snap.pages[0][2]).unwrap();
    assert!(last.get("nextCursor").is_none());
}

#[test]
fn unavailable_servers_are_omitted_or_kept_per_config() {
    let omit = config("", &[("a", None), ("b", None)]);
    let views = [view(&omit, 0, false, &["x"]), view(&omit, 1, true, &["y"])];
    let snap = build(1, Arc::new(omit.gateway.clone()), &views, codec());
    assert_eq!(page_names(&snap.pages[0][0]), vec!["b__y"]);
    let keep = config("unavailable = \"error\"", &[("a", None), ("b", None)]);
    let views = [view(&keep, 0, false, &["x"]), view(&keep, 1, true, &["y"])];
    let snap = build(1, Arc::new(keep.gateway.clone()), &views, codec());
    assert_eq!(page_names(&snap.pages[0][0]), vec!["a__x", "b__y"]);
    assert!(!snap.servers[0].available);
}

#[test]
fn an_empty_prefix_collision_keeps_the_first_and_records_why() {
    let cfg = config("", &[("a", Some("")), ("b", None)]);
    let mut views = vec![
        view(&cfg, 0, true, &["b__clash"]),
        view(&cfg, 1, true, &["clash"]),
    ];
    views.truncate(2);
    let snap = build(1, Arc::new(cfg.gateway.clone()), &views, codec());
    assert_eq!(page_names(&snap.pages[0][0]), vec!["b__clash"]);
    assert_eq!(snap.tool("b__clash").unwrap().server, 0);
    assert!(views[1]
        .link
        .health()
        .last_error
        .unwrap()
        .1
        .contains("collision"));
}

#[test]
fn the_empty_catalog_still_answers() {
    let cfg = config("", &[]);
    let snap = Snapshot::empty(Arc::new(cfg.gateway.clone()), codec());
    assert_eq!(&snap.pages[0][0][..], br#"{"tools":[]}"#);
    assert!(std::str::from_utf8(&snap.capabilities)
        .unwrap()
        .contains("\"tools\""));
}

/// `view` with the tools list's cache hint set as a modern server's fetch records it.
fn hinted(cfg: &Config, slot: usize, up: bool, hint: Option<CacheHint>) -> ServerView {
    let mut v = view(cfg, slot, up, &["t"]);
    let mut lists = (*v.lists.take().unwrap()).clone();
    lists.hints[ListKind::Tools as usize] = hint;
    v.lists = Some(Arc::new(lists));
    v
}

#[test]
fn merged_list_hints_take_the_least_ttl_and_private_if_any_source_is() {
    let public = |ttl_ms| CacheHint {
        ttl_ms,
        private: false,
    };
    let cfg = config("", &[("a", None), ("b", None), ("c", None)]);
    let gw = Arc::new(cfg.gateway.clone());
    let two_modern = [
        hinted(&cfg, 0, true, Some(public(60_000))),
        hinted(&cfg, 1, true, Some(public(30_000))),
    ];
    let snap = build(1, gw.clone(), &two_modern, codec());
    assert_eq!(snap.list_hint(ListKind::Tools), public(30_000));
    // A list nobody captured a hint for (legacy) is immediately stale and private.
    assert_eq!(snap.list_hint(ListKind::Resources), LEGACY_HINT);
    assert_eq!(snap.merged_hint(), LEGACY_HINT);
    let private = CacheHint {
        ttl_ms: 45_000,
        private: true,
    };
    let with_private = [
        hinted(&cfg, 0, true, Some(public(60_000))),
        hinted(&cfg, 1, true, Some(private)),
    ];
    let snap = build(2, gw.clone(), &with_private, codec());
    assert_eq!(snap.list_hint(ListKind::Tools), private);
    let with_legacy = [
        hinted(&cfg, 0, true, Some(public(60_000))),
        hinted(&cfg, 1, true, None),
    ];
    let snap = build(3, gw.clone(), &with_legacy, codec());
    assert_eq!(snap.list_hint(ListKind::Tools), LEGACY_HINT);
    // An unavailable server contributes nothing.
    let one_down = [
        hinted(&cfg, 0, true, Some(public(60_000))),
        hinted(&cfg, 1, false, None),
    ];
    let snap = build(4, gw, &one_down, codec());
    assert_eq!(snap.list_hint(ListKind::Tools), public(60_000));
}

#[test]
fn tool_routes_carry_their_x_mcp_header_arguments() {
    let cfg = config("", &[("a", None)]);
    let mut v = view(&cfg, 0, true, &[]);
    let mut lists = (*v.lists.take().unwrap()).clone();
    lists.items[ListKind::Tools as usize] = vec![
        item(
            r#"{"name":"geo","inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}}"#,
        ),
        item(r#"{"name":"plain","inputSchema":{"type":"object"}}"#),
        item(
            r#"{"name":"bad","inputSchema":{"properties":{"r":{"type":"array","x-mcp-header":"R"}}}}"#,
        ),
    ];
    v.lists = Some(Arc::new(lists));
    let snap = build(1, Arc::new(cfg.gateway.clone()), &[v], codec());
    let geo = snap.tool("a__geo").unwrap().params.clone().unwrap();
    assert_eq!((&*geo[0].token, geo[0].path.len()), ("Region", 1));
    assert!(snap.tool("a__plain").unwrap().params.is_none());
    assert!(snap.tool("a__bad").unwrap().params.is_none());
}
