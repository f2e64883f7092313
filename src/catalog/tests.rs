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
