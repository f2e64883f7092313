//! THE request path: one POSTed JSON-RPC message through the gateway, as named phases, top to bottom.
//!
//! ```text
//! frame (transport) → era → envelope → session → authenticate → authorize → admit → route
//!       → local answer | forward (pool → downstream) → map id back → respond → record
//! ```
//!
//! Era, per request: a session id, `initialize` or a legacy `MCP-Protocol-Version` is the legacy
//! path below; a modern version header (header-first) or a modern `_meta` (body-first) goes to
//! [`modern`], which runs the same phases with the 2026-07-28 validation ladder, answers and
//! statuses, and shares `forward` and the relay.
//!
//! Each phase is a function returning a value or a [`GatewayError`]; [`fail`] is the one place an
//! error becomes a legacy reply (JSON-RPC error body plus HTTP status), `modern::Reject` the one
//! place for the modern era. The snapshot is loaded once per
//! request and kept to completion, so a concurrent reload never mixes two catalogs in one call.
//!
//! What is forwarded keeps its bytes: the client's id and the namespaced name are replaced by
//! splicing spans of the received buffer (see `wire::rewrite`), and the downstream's response gets the
//! client's id back the same way. Nothing on this path re-serializes a message.
//!
//! Performance: no locks; allocation is the spliced piece list (inline `SmallVec`) and the reply.

mod asks;
mod batch;
pub mod bridge;
mod client_msgs;
pub mod context;
mod local;
pub mod modern;
mod relay;
mod routing;
mod server_asks;
pub mod subscriptions;
mod tasks;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use smallvec::SmallVec;

pub use client_msgs::{cancel_here, end_session};
pub use context::{Gateway, Report, Worker, WorkerMsg};
pub use relay::Relay;
pub use server_asks::outside_call;

use crate::catalog::{ListKind, Snapshot};
use crate::error::{ErrorKind, GatewayError};
use crate::policy::{Decision, Principal, RequestFacts};
use crate::session::origin::Origin;
use crate::session::{versions, FrontSession};
use crate::telemetry::MethodClass;
use crate::upstream::call::{Call, CallSpec};
use crate::upstream::exchange::ReplyLimits;
use crate::upstream::route::Route;
use crate::wire::{self, method, rewrite, Envelope, Kind, Message, Span};
use modern::{Era, RoutingHeaders};
use routing::{by_name, by_reference, by_uri, named_target};

/// A POST as the front transport hands it over: the body and the headers the path looks at.
pub struct Inbound<'a> {
    /// The whole request body (already size-checked by the transport).
    pub body: Bytes,
    /// `Mcp-Session-Id`, if sent.
    pub session: Option<&'a [u8]>,
    /// `MCP-Protocol-Version`, if sent.
    pub version: Option<&'a [u8]>,
    /// `Authorization`, if sent (never forwarded downstream).
    pub authorization: Option<&'a [u8]>,
    /// Whether the client accepts `text/event-stream` replies.
    pub accepts_sse: bool,
    /// When the body was complete (start of the gateway's own time).
    pub received: Instant,
}

/// What the front transport should send back.
// `Pieces` stay inline on purpose: the common reply builds no heap list.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// A complete JSON body with its HTTP status; `session` is a new `Mcp-Session-Id` to set.
    Json {
        /// HTTP status.
        status: u16,
        /// JSON-RPC message (or batch) to send, as pieces.
        body: Pieces,
        /// New session id (after `initialize`).
        session: Option<String>,
    },
    /// `202 Accepted` with no body (notifications and responses from the client).
    Accepted,
    /// Stream the reply as SSE events: the downstream is sending notifications before its response.
    Stream(Box<Relay>),
}

/// A reply as pieces to write in order (spliced, never re-serialized).
pub type Pieces = SmallVec<[Bytes; 7]>;

/// What a single message produced.
enum Answer {
    /// A complete JSON-RPC message, as pieces.
    Message(Pieces),
    /// A complete JSON-RPC message with the HTTP status it calls for (modern era).
    Reply(u16, Pieces),
    /// The `initialize` result and the new session's id.
    Initialized(Bytes, String),
    /// A forwarded call whose reply is streaming.
    Relay(Box<Relay>),
    /// Nothing to send (the message was a notification or a response).
    Nothing,
}

/// Handles one message from a front without routing headers (stdio, HTTP+SSE): the era comes
/// from the session and the body.
pub async fn handle_post(gw: &Gateway, w: &Worker, req: Inbound<'_>) -> Outcome {
    let snap = w.snapshot();
    match modern::era_of(req.version, req.session) {
        Era::Legacy => legacy(gw, w, &snap, &req).await,
        _ => from_body(gw, w, &snap, &req, None).await,
    }
}

/// Handles one POST to `/mcp`: the entry point of the request path. A modern version header sends
/// the request down the header-first path; otherwise the session and the body decide the era.
pub async fn handle_http(
    gw: &Gateway,
    w: &Worker,
    req: Inbound<'_>,
    headers: &RoutingHeaders<'_>,
) -> Outcome {
    let snap = w.snapshot();
    match modern::era_of(req.version, req.session) {
        Era::Modern => modern::header_first(gw, w, &snap, &req, headers).await,
        Era::Legacy => legacy(gw, w, &snap, &req).await,
        Era::FromBody => from_body(gw, w, &snap, &req, Some(headers)).await,
    }
}

/// The legacy era: envelope, then one message or a batch.
async fn legacy(gw: &Gateway, w: &Worker, snap: &Arc<Snapshot>, req: &Inbound<'_>) -> Outcome {
    match envelope(&req.body) {
        Err((e, id)) => fail(&e, id.map(|s| s.get(&req.body))),
        Ok(Message::Single(env)) => single(gw, w, snap, req, env).await,
        Ok(Message::Batch(spans)) => batch::batch(gw, w, snap, req, &spans).await,
    }
}

/// No header decided the era: a request (not `initialize`) whose `_meta` names a protocol version
/// is modern; everything else is legacy.
async fn from_body(
    gw: &Gateway,
    w: &Worker,
    snap: &Arc<Snapshot>,
    req: &Inbound<'_>,
    headers: Option<&RoutingHeaders<'_>>,
) -> Outcome {
    let body = &req.body;
    match envelope(body) {
        Err((e, id)) => fail(&e, id.map(|s| s.get(body))),
        Ok(Message::Single(env)) => {
            let modern =
                env.method(body) != Some(method::INITIALIZE) && modern::declares_modern(body, &env);
            if modern {
                modern::body_first(gw, w, snap, req, env, headers).await
            } else {
                single(gw, w, snap, req, env).await
            }
        }
        Ok(Message::Batch(spans)) => batch::batch(gw, w, snap, req, &spans).await,
    }
}

/// Phase: envelope. Parses the body without copying; malformed JSON → -32700, bad shape → -32600
/// (with the request's id when it could be read).
fn envelope(body: &Bytes) -> Result<Message, (GatewayError, Option<Span>)> {
    wire::parse_message(body).map_err(|e| {
        let kind = if e.code() == wire::code::PARSE_ERROR {
            ErrorKind::Parse
        } else {
            ErrorKind::InvalidRequest
        };
        (GatewayError::new(kind, e.reason()), e.id().map(|(s, _)| s))
    })
}

/// One message, start to finish: the phases in order, then record.
async fn single(
    gw: &Gateway,
    w: &Worker,
    snap: &Arc<Snapshot>,
    req: &Inbound<'_>,
    env: Envelope,
) -> Outcome {
    let body = &req.body;
    let method = env.method(body).unwrap_or("");
    let class = classify(method, env.kind);
    let id = env.id_raw(body);
    let answer = match run_phases(gw, w, snap, req, body, &env, method).await {
        Ok(a) => a,
        Err(e) => {
            record(w, class, false, req.received);
            return fail(&e, id);
        }
    };
    match answer {
        Answer::Message(msg) | Answer::Reply(_, msg) => {
            record(w, class, true, req.received);
            Outcome::Json {
                status: 200,
                body: msg,
                session: None,
            }
        }
        Answer::Initialized(msg, session) => {
            record(w, class, true, req.received);
            Outcome::Json {
                status: 200,
                body: one(msg),
                session: Some(session),
            }
        }
        Answer::Relay(relay) => Outcome::Stream(relay),
        Answer::Nothing => {
            record(w, class, true, req.received);
            Outcome::Accepted
        }
    }
}

/// The phases between envelope and respond, for one message.
async fn run_phases(
    gw: &Gateway,
    w: &Worker,
    snap: &Arc<Snapshot>,
    req: &Inbound<'_>,
    body: &Bytes,
    env: &Envelope,
    method: &str,
) -> Result<Answer, GatewayError> {
    let session = session_phase(gw, w, req, env, method)?;
    let facts = RequestFacts {
        method,
        target: env.name.or(env.uri).map(|s| s.get(body)),
    };
    policy(snap, req, facts)?;
    route(gw, w, snap, req, body, env, method, session).await
}

/// Phases: authenticate, authorize, admit, in that order.
fn policy(
    snap: &Snapshot,
    req: &Inbound<'_>,
    facts: RequestFacts<'_>,
) -> Result<Principal, GatewayError> {
    let who = authenticate(snap, req)?;
    authorize(snap, &who, facts)?;
    admit(snap, &who, facts)?;
    Ok(who)
}

/// Phase: era + session. `initialize` needs none; everything else needs a genuine, live session id
/// and, if sent, a supported `MCP-Protocol-Version`.
fn session_phase(
    gw: &Gateway,
    w: &Worker,
    req: &Inbound<'_>,
    env: &Envelope,
    method: &str,
) -> Result<Option<FrontSession>, GatewayError> {
    if let Some(v) = req.version {
        if versions::index_of(v).is_none() && method != method::INITIALIZE {
            return Err(GatewayError::new(
                ErrorKind::UnsupportedVersion,
                "unsupported MCP-Protocol-Version",
            ));
        }
    }
    if method == method::INITIALIZE && env.kind == Kind::Request {
        return Ok(None);
    }
    let header = req.session.ok_or_else(|| {
        GatewayError::new(
            ErrorKind::SessionRequired,
            "Mcp-Session-Id header is required",
        )
    })?;
    w.open_session(gw, header)
        .map(Some)
        .ok_or_else(|| GatewayError::new(ErrorKind::SessionNotFound, "unknown or ended session"))
}

/// Phase: authenticate. Establishes the principal from credentials (the default policy has none).
fn authenticate(snap: &Snapshot, req: &Inbound<'_>) -> Result<Principal, GatewayError> {
    snap.policy
        .authenticate(req.authorization)
        .map_err(|why| GatewayError::new(ErrorKind::Forbidden, why))
}

/// Phase: authorize. May this principal make this request at all?
fn authorize(
    snap: &Snapshot,
    who: &Principal,
    facts: RequestFacts<'_>,
) -> Result<(), GatewayError> {
    match snap.policy.authorize(who, facts) {
        Decision::Allow => Ok(()),
        Decision::Deny(why) => Err(GatewayError::new(ErrorKind::Forbidden, why)),
    }
}

/// Phase: rate and budget. May this principal make it now?
fn admit(snap: &Snapshot, who: &Principal, facts: RequestFacts<'_>) -> Result<(), GatewayError> {
    match snap.policy.admit(who, facts) {
        Decision::Allow => Ok(()),
        Decision::Deny(why) => Err(GatewayError::new(ErrorKind::Forbidden, why)),
    }
}

/// Phase: route. Answers locally what the gateway owns; forwards the rest to the owning server.
#[allow(clippy::too_many_arguments)]
async fn route(
    gw: &Gateway,
    w: &Worker,
    snap: &Arc<Snapshot>,
    req: &Inbound<'_>,
    body: &Bytes,
    env: &Envelope,
    method: &str,
    session: Option<FrontSession>,
) -> Result<Answer, GatewayError> {
    match env.kind {
        Kind::Request => {}
        Kind::Response | Kind::Error => {
            return client_msgs::response(gw, w, snap, body, env).map(|()| Answer::Nothing);
        }
        Kind::Notification => {
            client_msgs::notification(gw, w, snap, body, env, session);
            return Ok(Answer::Nothing);
        }
    }
    let id = env.id_raw(body).unwrap_or(b"null");
    if let Some(kind) = ListKind::from_method(method) {
        return local::list_page(snap, body, env, kind, id).map(Answer::Message);
    }
    let (server, name_edit) = match method {
        method::INITIALIZE => {
            return local::initialize(gw, snap, body, env, id)
                .map(|(m, s)| Answer::Initialized(m, s))
        }
        method::LOGGING_SET_LEVEL => {
            return Ok(Answer::Message(one(client_msgs::set_level(
                w, snap, body, env, id,
            ))));
        }
        method::PING => {
            return Ok(Answer::Message(one(wire::encode::result_response(
                id, b"{}",
            ))))
        }
        method::TOOLS_CALL => by_name(snap, body, env, ListKind::Tools)?,
        method::PROMPTS_GET => by_name(snap, body, env, ListKind::Prompts)?,
        method::RESOURCES_READ => (by_uri(snap, body, env)?, None),
        method::RESOURCES_SUBSCRIBE | method::RESOURCES_UNSUBSCRIBE => {
            match client_msgs::subscription(gw, snap, body, env, method, session)? {
                Some(server) => (server, None),
                None => {
                    return Ok(Answer::Message(one(wire::encode::result_response(
                        id, b"{}",
                    ))))
                }
            }
        }
        method::COMPLETION_COMPLETE => by_reference(snap, body, env)?,
        method::TASKS_GET | method::TASKS_RESULT | method::TASKS_CANCEL => {
            tasks::route(gw, snap, body, env, session)?
        }
        method::TASKS_LIST => {
            let list = tasks::list(gw, w, snap, body, env, session).await?;
            return Ok(Answer::Message(one(list)));
        }
        _ => {
            return Err(GatewayError::new(
                ErrorKind::MethodNotFound,
                format!("method '{method}' is not supported"),
            ))
        }
    };
    let target = Target {
        server,
        name_edit,
        session,
        modern: None,
    };
    forward(gw, w, snap, req, body, env, target, method).await
}

/// Where a routed request goes: the server, the name splice, and the client's session (legacy)
/// or per-request declarations (modern).
struct Target {
    server: usize,
    name_edit: Option<(Span, Bytes)>,
    session: Option<FrontSession>,
    modern: Option<modern::ModernCall>,
}

/// Phase: forward. Mints the downstream id, splices id and name, sends on a pooled connection, and
/// hands the reply to the relay (which maps the id back).
#[allow(clippy::too_many_arguments)]
async fn forward(
    gw: &Gateway,
    w: &Worker,
    snap: &Arc<Snapshot>,
    req: &Inbound<'_>,
    body: &Bytes,
    env: &Envelope,
    target: Target,
    method: &str,
) -> Result<Answer, GatewayError> {
    let Target {
        server,
        name_edit,
        session,
        modern,
    } = target;
    let entry = &snap.servers[server];
    if !entry.link.is_up() {
        return Err(GatewayError::new(
            ErrorKind::DownstreamUnavailable,
            format!("server '{}' is unavailable", entry.link.name),
        ));
    }
    let (id_span, _) = env
        .id
        .ok_or_else(|| GatewayError::new(ErrorKind::InvalidRequest, "request without id"))?;
    let route = Route::to(&entry.link, &w.pools).map_err(|e| e.for_client(&entry.link.name))?;
    let minted = w.mint_id();
    // A modern client has no session: its call is its own origin (high bit set, so it never
    // collides with the gateway's own 0), so a multiplexed server's request can be attributed.
    let origin = Origin {
        session: match (session, &modern) {
            (Some(s), _) => s.nonce,
            (None, Some(_)) => minted | 1 << 63,
            (None, None) => 0,
        },
        task: tasks::task_of(method, name_edit.as_ref()),
    };
    // A legacy client's call to a modern server: its capabilities go downstream (the bridge
    // relays the server's input requests), and the call is kept for the retry.
    let bridged = modern.is_none() && entry.link.is_modern();
    let meta = bridged
        .then(|| crate::session::modern::meta_edit_for(body, env, client_caps(&session, req)))
        .flatten();
    let (spliced, progress, client_token) =
        splice_call(body, env, id_span, minted, name_edit, meta, &route);
    let limits = &snap.gateway.limits;
    let params = crate::upstream::call::mirrored_params(snap, &entry.link, body, env);
    let retry = bridged.then(|| {
        Box::new(bridge::RetryPlan {
            origin: origin.clone(),
            params: params.clone(),
            body: spliced.clone(),
            progress: progress.clone(),
            limits: ReplyLimits {
                max_body: limits.max_response_bytes,
                max_event: limits.max_sse_event_bytes,
            },
            client_name: snap.server_name.clone(),
            rounds: 0,
        })
    });
    let spec = CallSpec {
        route,
        link: entry.link.clone(),
        body: spliced,
        minted_id: minted,
        progress,
        retry_safe: matches!(method, method::RESOURCES_READ | method::COMPLETION_COMPLETE),
        timeout: entry.link.config.call_timeout,
        limits: ReplyLimits {
            max_body: limits.max_response_bytes,
            max_event: limits.max_sse_event_bytes,
        },
        client_name: snap.server_name.clone(),
        origin,
        params,
    };
    let client_id = Bytes::copy_from_slice(id_span.get(body));
    w.calls_begin(session, &client_id, &spec.route, &entry.link, minted);
    // A modern client cancels by closing its response stream: the relay needs the route for that.
    let cancel_on_drop = modern.is_some().then(|| spec.route.clone());
    let call = Call::start(spec).await;
    let ctx = relay::RelayCtx {
        link: entry.link.clone(),
        client_id,
        client_token,
        minted,
        class: classify(method, Kind::Request),
        received: req.received,
        session,
        accepts_sse: req.accepts_sse,
        modern,
        cancel_on_drop,
        task_ids: tasks::carries_task_ids(w, snap, server, (body, env), method),
        asked: Default::default(),
        retry,
    };
    relay::CallRelay::begin(gw, w, ctx, call.map(relay::Leg::Live), req.accepts_sse)
        .await
        .map(|r| match r {
            relay::Begun::Done(msg, status) => Answer::Reply(status, msg),
            relay::Begun::Streaming(relay) => Answer::Relay(relay),
        })
}

/// The client capabilities a legacy session declares downstream (to a modern server, per
/// request): only those whose requests can reach it (it takes a stream).
fn client_caps(session: &Option<FrontSession>, req: &Inbound<'_>) -> u16 {
    session
        .filter(|_| req.accepts_sse)
        .map_or(0, |s| s.client_caps)
}

/// The forwarded message: the minted id and the server's own name spliced in. Returns it with the
/// progress token the downstream sees and, when that differs, the client's own token.
fn splice_call(
    body: &Bytes,
    env: &Envelope,
    id_span: Span,
    minted: u64,
    name_edit: Option<(Span, Bytes)>,
    meta: Option<(Span, Bytes)>,
    route: &Route,
) -> (Pieces, Option<Bytes>, Option<Bytes>) {
    let minted_bytes = Bytes::copy_from_slice(rewrite::format_u64_id(minted).as_bytes());
    let mut edits: SmallVec<[(Span, Bytes); 3]> = SmallVec::new();
    edits.push((id_span, minted_bytes.clone()));
    edits.extend(name_edit);
    edits.extend(meta);
    // A stdio child is shared by every client: progress tokens are made unique there (the minted
    // id serves), and the relay puts the client's own token back.
    let (progress, client_token) = match (route, env.progress_token) {
        (Route::Mux(_), Some(span)) => {
            edits.push((span, minted_bytes.clone()));
            (
                Some(minted_bytes),
                Some(Bytes::copy_from_slice(span.get(body))),
            )
        }
        (_, Some(span)) => (Some(Bytes::copy_from_slice(span.get(body))), None),
        _ => (None, None),
    };
    (rewrite::splice(body, &mut edits), progress, client_token)
}

/// A reply of one piece.
fn one(b: Bytes) -> Pieces {
    let mut p = Pieces::new();
    p.push(b);
    p
}

/// Phase: respond, for errors. The one place a [`GatewayError`] becomes a reply.
pub fn fail(e: &GatewayError, id: Option<&[u8]>) -> Outcome {
    Outcome::Json {
        status: e.http_status(),
        body: one(e.to_jsonrpc(id)),
        session: None,
    }
}

/// Phase: record.
fn record(w: &Worker, class: MethodClass, ok: bool, received: Instant) {
    w.stats
        .borrow_mut()
        .record_request(class, ok, received.elapsed());
}

/// The metric class of a method.
fn classify(method: &str, kind: Kind) -> MethodClass {
    if kind != Kind::Request {
        return MethodClass::Notification;
    }
    match method {
        method::INITIALIZE => MethodClass::Initialize,
        method::PING => MethodClass::Ping,
        method::TOOLS_CALL => MethodClass::ToolsCall,
        method::PROMPTS_GET => MethodClass::PromptsGet,
        method::RESOURCES_READ => MethodClass::ResourcesRead,
        method::COMPLETION_COMPLETE => MethodClass::Complete,
        m if ListKind::from_method(m).is_some() => MethodClass::List,
        _ => MethodClass::Other,
    }
}
