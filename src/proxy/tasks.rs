//! Experimental tasks (MCP 2025-11-25) through the gateway: task ids mapped per downstream and
//! per front session, never reachable from another session.
//!
//! - A task-augmented `tools/call` is forwarded as is; the `CreateTaskResult` coming back has its
//!   downstream `taskId` replaced by a sealed gateway id (`session::tasks`) naming (server slot,
//!   the caller's session, the downstream id), and the task's owner is recorded in the book.
//! - `tasks/get|result|cancel` open the sealed id: forged, or another session's → -32602 "task not
//!   found"; else the request goes to that server with its own id spliced in, and every task id in
//!   the reply (result, `related-task` `_meta`) is sealed again for the caller.
//! - `tasks/list` fans out to the servers that offer it and keeps only the caller's tasks (by the
//!   book), sealed; the gateway returns them in one page (no cursor).
//! - `notifications/tasks/status` (on a call's stream, or outside any call) reaches the owning
//!   session only, with the sealed id.
//!
//! Performance: a plain call pays one capability check per forwarded `tools/call` (a scan of the
//! server's small `capabilities` object) and, only for a server that offers tasks, a scan of the
//! params for `task`. Everything else here runs for task traffic only.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use smallvec::SmallVec;

use super::context::{Gateway, Worker, WorkerMsg};
use crate::catalog::Snapshot;
use crate::error::{ErrorKind, GatewayError};
use crate::session::downstream::ServerLink;
use crate::session::tasks::Tasks;
use crate::session::FrontSession;
use crate::upstream::exchange::ReplyLimits;
use crate::upstream::route::Route;
use crate::wire::names::meta;
use crate::wire::scan::{self, member, path};
use crate::wire::{self, encode, key, method, rewrite, Envelope, Span, Splice};

/// Pages of a downstream's `tasks/list` the gateway follows at most per request.
pub const MAX_LIST_PAGES: usize = 16;

/// Whether a downstream's advertised capabilities have `tasks` with the member at `sub`.
pub fn offers(link: &ServerLink, sub: &[&[u8]]) -> bool {
    let Some(session) = link.session.load_full() else {
        return false;
    };
    let caps = &session.capabilities;
    let tasks = member(caps, Span::new(0, caps.len()), b"tasks");
    tasks.is_some_and(|t| path(caps, t, sub).is_some())
}

/// Whether a downstream takes task-augmented `tools/call`s (`tasks.requests.tools.call`).
pub fn takes_task_calls(link: &ServerLink) -> bool {
    offers(link, &[b"requests", b"tools", b"call"])
}

/// Whether this forwarded request's reply may carry downstream task ids to seal: a `tasks/*`
/// request, or a task-augmented `tools/call` to a server that takes them (known per snapshot on
/// the worker: a plain call pays no capability scan).
pub fn carries_task_ids(
    w: &Worker,
    snap: &Arc<Snapshot>,
    server: usize,
    (body, env): (&[u8], &Envelope),
    name: &str,
) -> bool {
    match name {
        method::TASKS_GET | method::TASKS_RESULT | method::TASKS_CANCEL => true,
        method::TOOLS_CALL => {
            w.takes_tasks(snap, server)
                && env
                    .params
                    .is_some_and(|p| member(body, p, key::TASK).is_some())
        }
        _ => false,
    }
}

/// The downstream task a forwarded `tasks/*` request concerns (its spliced-in own id).
pub fn task_of(name: &str, edit: Option<&(Span, Bytes)>) -> Option<Bytes> {
    match name {
        method::TASKS_GET | method::TASKS_RESULT | method::TASKS_CANCEL => {
            edit.map(|(_, id)| id.clone())
        }
        _ => None,
    }
}

/// A client's answer to a relayed server request names the task it belongs to by the gateway's id
/// (`result._meta` `related-task`): the splice putting back the server's own id, when that id is
/// a genuine one for this server.
pub fn unseal_related(
    tasks: &Tasks,
    slot: usize,
    body: &[u8],
    env: &Envelope,
) -> SmallVec<[Splice; 2]> {
    let mut edits = SmallVec::new();
    let related = env
        .result
        .and_then(|r| path(body, r, &[key::META, meta::RELATED_TASK, key::TASK_ID]));
    let content = related.and_then(|s| {
        let raw = s.get(body);
        raw.strip_prefix(b"\"")?.strip_suffix(b"\"")
    });
    if let (Some(span), Some(task)) = (related, content.and_then(|c| tasks.open(c))) {
        if task.slot == slot {
            edits.push((span, task.downstream));
        }
    }
    edits
}

/// Task not found (forged, expired, or another session's): the spec's -32602.
fn not_found() -> GatewayError {
    GatewayError::new(
        ErrorKind::InvalidParams,
        "Failed to retrieve task: Task not found",
    )
}

/// Routes `tasks/get|result|cancel`: the owning server and the splice putting its own task id in.
pub fn route(
    gw: &Gateway,
    snap: &Snapshot,
    body: &[u8],
    env: &Envelope,
    session: Option<FrontSession>,
) -> Result<(usize, Option<(Span, Bytes)>), GatewayError> {
    let session = session.ok_or_else(not_found)?;
    let id = env
        .params
        .and_then(|p| member(body, p, key::TASK_ID))
        .ok_or_else(|| GatewayError::new(ErrorKind::InvalidParams, "params.taskId is required"))?;
    let raw = id.get(body);
    let content = raw
        .strip_prefix(b"\"")
        .and_then(|r| r.strip_suffix(b"\""))
        .ok_or_else(not_found)?;
    let task = gw.tasks.open(content).ok_or_else(not_found)?;
    if task.session != session.nonce {
        return Err(not_found());
    }
    let server = snap
        .servers
        .iter()
        .position(|s| s.link.slot == task.slot)
        .ok_or_else(not_found)?;
    Ok((server, Some((id, task.downstream))))
}

/// Seals every downstream task id in a reply for `session`: `result.task.taskId` (a new task:
/// its owner is recorded), `result.taskId`, and `result._meta` `related-task`.
pub fn seal_reply(
    gw: &Gateway,
    slot: usize,
    session: u64,
    msg: &[u8],
    env: &Envelope,
    edits: &mut SmallVec<[Splice; 2]>,
) {
    let Some(result) = env.result else { return };
    if let Some(id) = path(msg, result, &[key::TASK, key::TASK_ID]) {
        let ttl = path(msg, result, &[key::TASK, b"ttl"]).and_then(|t| millis(t.get(msg)));
        if let Some(sealed) = gw.tasks.create(slot, id.get(msg), session, ttl) {
            edits.push((id, sealed));
        }
    }
    if let Some(id) = member(msg, result, key::TASK_ID) {
        seal_at(gw, slot, session, msg, id, edits);
    }
    if let Some(id) = path(msg, result, &[key::META, meta::RELATED_TASK, key::TASK_ID]) {
        seal_at(gw, slot, session, msg, id, edits);
    }
}

/// A `ttl` in milliseconds (a JSON integer; `null` or anything else: none).
fn millis(raw: &[u8]) -> Option<Duration> {
    std::str::from_utf8(raw)
        .ok()?
        .parse::<u64>()
        .ok()
        .map(Duration::from_millis)
}

fn seal_at(
    gw: &Gateway,
    slot: usize,
    session: u64,
    msg: &[u8],
    id: Span,
    edits: &mut SmallVec<[Splice; 2]>,
) {
    if let Some(sealed) = gw.tasks.token(slot, session, id.get(msg)) {
        edits.push((id, sealed));
    }
}

/// A notification from a call's server with its task ids (`params.taskId`, `params._meta`
/// `related-task`) sealed for the call's session; unchanged when it names no task.
pub fn seal_notification(gw: &Gateway, slot: usize, session: u64, n: Bytes) -> Bytes {
    let Ok(env) = wire::parse(&n) else { return n };
    let mut edits: SmallVec<[Splice; 2]> = SmallVec::new();
    notification_edits(gw, slot, session, &n, &env, &mut edits);
    if edits.is_empty() {
        return n;
    }
    let pieces = rewrite::splice(&n, &mut edits);
    rewrite::concat(&pieces)
}

/// The splices sealing a notification's task ids for `session` (see [`seal_notification`]).
pub fn notification_edits(
    gw: &Gateway,
    slot: usize,
    session: u64,
    msg: &[u8],
    env: &Envelope,
    edits: &mut SmallVec<[Splice; 2]>,
) {
    let Some(params) = env.params else { return };
    if let Some(id) = member(msg, params, key::TASK_ID) {
        seal_at(gw, slot, session, msg, id, edits);
    }
    if let Some(id) = path(msg, params, &[key::META, meta::RELATED_TASK, key::TASK_ID]) {
        seal_at(gw, slot, session, msg, id, edits);
    }
}

/// A `notifications/tasks/status` a server sent outside any call: to the session that created the
/// task (by the book), with its sealed id; dropped when the gateway knows no owner.
pub fn status_outside_call(gw: &Gateway, slot: usize, msg: &Bytes) {
    let Ok(env) = wire::parse(msg) else { return };
    let Some(id) = env.params.and_then(|p| member(msg, p, key::TASK_ID)) else {
        return;
    };
    let Some(owner) = gw.tasks.owner(slot, id.get(msg)) else {
        return log::debug!("server slot {slot}: status of a task no session owns; dropped");
    };
    let sealed = seal_notification(gw, slot, owner, msg.clone());
    for w in gw.workers.get().into_iter().flatten() {
        let _ = w.try_send(WorkerMsg::ToSession(owner, sealed.clone()));
    }
}

/// `tasks/list`: the caller's tasks on every server that lists tasks, sealed, in one page.
pub async fn list(
    gw: &Gateway,
    w: &Worker,
    snap: &Snapshot,
    body: &[u8],
    env: &Envelope,
    session: Option<FrontSession>,
) -> Result<Bytes, GatewayError> {
    let session = session
        .ok_or_else(|| GatewayError::new(ErrorKind::InvalidParams, "tasks/list needs a session"))?;
    if env.cursor.is_some() {
        // The gateway's list is one page: it never hands out a cursor to come back with.
        return Err(GatewayError::new(
            ErrorKind::InvalidParams,
            "invalid cursor",
        ));
    }
    let mut out = b"{\"tasks\":[".to_vec();
    let mut first = true;
    for entry in snap.servers.iter().filter(|s| {
        s.available && s.link.is_up() && !s.link.is_modern() && offers(&s.link, &[b"list"])
    }) {
        let Ok(route) = Route::to(&entry.link, &w.pools) else {
            continue;
        };
        let limits = ReplyLimits {
            max_body: snap.gateway.limits.max_response_bytes,
            max_event: snap.gateway.limits.max_sse_event_bytes,
        };
        let mut cursor: Option<Bytes> = None;
        for _ in 0..MAX_LIST_PAGES {
            let page = list_page(w, &route, &entry.link, cursor.as_deref(), limits).await;
            let Some(page) = page else { break };
            cursor = keep_own(
                gw,
                entry.link.slot,
                session.nonce,
                &page,
                &mut out,
                &mut first,
            );
            if cursor.is_none() {
                break;
            }
        }
    }
    out.extend_from_slice(b"]}");
    let id = env.id_raw(body).unwrap_or(b"null");
    Ok(encode::result_response(id, &out))
}

/// One page of a downstream's `tasks/list` (the whole response), or `None` on any failure.
async fn list_page(
    w: &Worker,
    route: &Route,
    link: &ServerLink,
    cursor: Option<&[u8]>,
    limits: ReplyLimits,
) -> Option<Bytes> {
    let id = Bytes::copy_from_slice(rewrite::format_u64_id(w.mint_id()).as_bytes());
    let params = cursor.map(|c| {
        let mut p = b"{\"cursor\":".to_vec();
        p.extend_from_slice(c);
        p.push(b'}');
        p
    });
    let msg = encode::request(&id, method::TASKS_LIST, params.as_deref());
    match route.request(link, msg, id, limits).await {
        Ok(reply) => Some(reply),
        Err(e) => {
            log::debug!("server '{}': tasks/list failed: {e}", link.name);
            None
        }
    }
}

/// Appends the tasks of `page` that `session` owns (ids sealed) to `out`; returns the page's
/// `nextCursor` token, if any.
fn keep_own(
    gw: &Gateway,
    slot: usize,
    session: u64,
    page: &Bytes,
    out: &mut Vec<u8>,
    first: &mut bool,
) -> Option<Bytes> {
    let env = wire::parse(page).ok()?;
    let result = env.result?;
    let tasks = member(page, result, key::TASKS)?;
    let start = tasks.start as usize;
    let _ = scan::walk_array(page, start, wire::MAX_DEPTH, |at, depth| {
        let end = scan::skip_value_depth(page, at, depth)?;
        let task = Span::new(at, end);
        let id = member(page, task, key::TASK_ID);
        if let Some(id) = id.filter(|id| gw.tasks.owner(slot, id.get(page)) == Some(session)) {
            if let Some(sealed) = gw.tasks.token(slot, session, id.get(page)) {
                if !std::mem::take(first) {
                    out.push(b',');
                }
                out.extend_from_slice(&page[at..id.start as usize]);
                out.extend_from_slice(&sealed);
                out.extend_from_slice(&page[id.end as usize..end]);
            }
        }
        Ok(end)
    });
    member(page, result, key::NEXT_CURSOR)
        .filter(|c| page.get(c.start as usize) == Some(&b'"'))
        .map(|c| Bytes::copy_from_slice(c.get(page)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_paths_are_found_by_key() {
        let doc = br#"{"result":{"task":{"taskId":"t-1","ttl":500},"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"t-2"}}}}"#;
        let whole = Span::new(0, doc.len());
        let id = path(doc, whole, &[b"result", key::TASK, key::TASK_ID]).unwrap();
        assert_eq!(id.get(doc), b"\"t-1\"");
        let ttl = path(doc, whole, &[b"result", key::TASK, b"ttl"]).unwrap();
        assert_eq!(millis(ttl.get(doc)), Some(Duration::from_millis(500)));
        let related = path(
            doc,
            whole,
            &[b"result", key::META, meta::RELATED_TASK, key::TASK_ID],
        )
        .unwrap();
        assert_eq!(related.get(doc), b"\"t-2\"");
        assert!(path(doc, whole, &[b"result", b"missing"]).is_none());
        assert!(member(doc, id, b"x").is_none(), "not an object");
    }

    #[test]
    fn a_clients_answer_gets_the_servers_own_related_task_id_back() {
        let tasks = Tasks::new().unwrap();
        let sealed = tasks.create(3, b"\"t-7\"", 9, None).unwrap();
        let sealed = std::str::from_utf8(&sealed).unwrap();
        let answer = format!(
            r#"{{"jsonrpc":"2.0","id":"x","result":{{"action":"accept","_meta":{{"io.modelcontextprotocol/related-task":{{"taskId":{sealed}}}}}}}}}"#
        );
        let body = Bytes::from(answer);
        let env = wire::parse(&body).unwrap();
        let mut edits = unseal_related(&tasks, 3, &body, &env);
        let out = rewrite::concat(&rewrite::splice(&body, &mut edits));
        assert!(std::str::from_utf8(&out)
            .unwrap()
            .contains(r#""taskId":"t-7""#));
        assert!(
            unseal_related(&tasks, 4, &body, &env).is_empty(),
            "another server's id"
        );
        let forged = Bytes::from_static(br#"{"jsonrpc":"2.0","id":"x","result":{"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"k1.AAAA"}}}}"#);
        let env = wire::parse(&forged).unwrap();
        assert!(unseal_related(&tasks, 3, &forged, &env).is_empty());
    }
}
