//! The 2026-07-28 ("modern") era on the front: stateless requests on the same `/mcp` endpoint.
//!
//! ```text
//! era_of (headers only) ─ modern ─► header_first: plan + authorize on Mcp-Method / Mcp-Name
//!                                   → envelope → ladder (headers == body?) → execute
//!           └─ from body ─ `_meta` protocolVersion ─► body_first: envelope → ladder → plan → execute
//! ```
//!
//! Era, per request ([`era_of`], then the body if that is not enough): `initialize`, a session id
//! or a legacy `MCP-Protocol-Version` mean legacy; a modern `MCP-Protocol-Version` header, or (with
//! no header) a `_meta` carrying `io.modelcontextprotocol/protocolVersion`, mean modern.
//!
//! Header-first: when the client sent `Mcp-Method` (every modern HTTP client must), the route and
//! the policy verdict are decided from the headers before the body is parsed; nothing is acted on
//! until the ladder ([`verify`]) has shown the body agrees, so the headers can never steer a
//! request elsewhere than its body says. Errors found early are reported only after the body's own
//! errors, in the SDK's ladder order.
//!
//! What changes for a modern client: `server/discover` and list pages are answered with
//! `resultType` and cache hints; forwarded results get `resultType` spliced in (see [`result_edit`]);
//! errors carry the era's HTTP statuses; server-to-client requests are never sent on the response
//! stream: one the request declared the capability for parks the call and answers
//! `input_required`, whose retry (carrying the gateway's `requestState`) resumes it
//! (`proxy::bridge`); one it did not declare ends the call with -32021. Log messages are relayed
//! only at or above the request's `logLevel`.

mod answer;
mod headers;
mod listen;
mod meta;
mod params;
mod plan;
mod skim;
mod watches;

use std::sync::Arc;

use bytes::Bytes;

pub use answer::{
    error_edit, has_result_type, legacy_error_edit, legacy_view, result_edit, status_for,
    CacheHint, Reject, LEGACY_HINT,
};
pub use headers::{decode_value, RoutingHeaders};
pub use listen::Listen;
pub use meta::{
    capability_flags, declares_modern, log_level_of, required_capability_data, severity,
    RequestMeta,
};
pub use params::ParamIndex;
pub use plan::{plan, surface, Plan};
pub use skim::members;

use super::{classify, one, record, Answer, Gateway, Inbound, Outcome, Target, Worker};
use crate::catalog::Snapshot;
use crate::error::{ErrorKind, GatewayError};
use crate::policy::{Principal, RequestFacts};
use crate::session::versions;
use crate::wire::{self, code, Envelope, Kind, Message};

/// Which era a request belongs to, as far as its headers tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// Legacy: a session id or a legacy version header.
    Legacy,
    /// Modern: a modern `MCP-Protocol-Version` header.
    Modern,
    /// Undecided: the body decides (`initialize` → legacy, modern `_meta` → modern).
    FromBody,
}

/// The era as far as the headers tell (no body access).
pub fn era_of(version: Option<&[u8]>, session: Option<&[u8]>) -> Era {
    match version {
        Some(v) if versions::is_modern(v) => Era::Modern,
        Some(v) if versions::index_of(v).is_some() => Era::Legacy,
        _ if session.is_some() => Era::Legacy,
        _ => Era::FromBody,
    }
}

/// The stream-hub key of listen streams that watch no resource (they belong to no session).
const LISTEN_STREAM: u64 = 0;

/// What a forwarded call needs to know about its modern client.
#[derive(Debug, Clone)]
pub struct ModernCall {
    /// Where the request's `clientCapabilities` object sits in `request`; read only if a server
    /// request needs it ([`ModernCall::capability_flags`]).
    pub caps: Option<wire::Span>,
    /// Minimum severity of log messages to relay; `None`: relay none.
    pub log_level: Option<u8>,
    /// Cache hint to add to the result (`resources/read`), if the downstream gives none.
    pub hint: Option<CacheHint>,
    /// The request itself (shared, not copied): a parked call's `requestState` is bound to it.
    pub request: Bytes,
    /// Who made it (a `requestState` is bound to the principal too).
    pub principal: Principal,
}

impl ModernCall {
    /// The [`crate::session::caps`] flags the request declared.
    pub fn capability_flags(&self) -> u16 {
        self.caps
            .map_or(0, |c| capability_flags(c.get(&self.request)))
    }
}

/// Header-first entry: route and authorize on the headers, then parse and verify the body.
pub async fn header_first(
    gw: &Gateway,
    w: &Worker,
    snap: &Arc<Snapshot>,
    req: &Inbound<'_>,
    h: &RoutingHeaders<'_>,
) -> Outcome {
    let early = h.method.map(|m| decide_from_headers(snap, req, m, h.name));
    let env = match single_envelope(&req.body) {
        Ok(env) => env,
        Err((reject, id)) => return reject.outcome(id.map(|s| s.get(&req.body))),
    };
    run(gw, w, snap, req, env, Some(h), early).await
}

/// The header-first decision: the plan for `Mcp-Method` / `Mcp-Name`, and the policy verdict (the
/// principal it established).
pub fn decide_from_headers(
    snap: &Snapshot,
    req: &Inbound<'_>,
    method_header: &[u8],
    name_header: Option<&[u8]>,
) -> Result<(Plan, Principal), GatewayError> {
    let name = name_header.and_then(decode_value);
    let name = name.as_deref().and_then(|n| std::str::from_utf8(n).ok());
    let m = std::str::from_utf8(method_header).unwrap_or("");
    let plan = plan(snap, method_header, name)?;
    let facts = RequestFacts {
        method: m,
        target: name.map(str::as_bytes),
    };
    let who = super::policy(snap, req, facts)?;
    Ok((plan, who))
}

/// Body-first entry (no `Mcp-Method` header, e.g. stdio): the envelope is already parsed.
pub async fn body_first(
    gw: &Gateway,
    w: &Worker,
    snap: &Arc<Snapshot>,
    req: &Inbound<'_>,
    env: Envelope,
    h: Option<&RoutingHeaders<'_>>,
) -> Outcome {
    run(gw, w, snap, req, env, h, None).await
}

/// The envelope of a modern body, which must be one object (no batches in this era); on error,
/// the rejection and the id span to echo.
fn single_envelope(body: &Bytes) -> Result<Envelope, (Reject, Option<wire::Span>)> {
    match wire::parse_message(body) {
        Ok(Message::Single(env)) => Ok(env),
        Ok(Message::Batch(_)) => Err((
            Reject::new(
                code::INVALID_REQUEST,
                "Body must be a single JSON-RPC request or notification object",
            ),
            None,
        )),
        Err(e) => Err((Reject::new(e.code(), e.reason()), e.id().map(|(s, _)| s))),
    }
}

/// The phases after the envelope: ladder, plan, execute, record.
async fn run(
    gw: &Gateway,
    w: &Worker,
    snap: &Arc<Snapshot>,
    req: &Inbound<'_>,
    env: Envelope,
    h: Option<&RoutingHeaders<'_>>,
    early: Option<Result<(Plan, Principal), GatewayError>>,
) -> Outcome {
    let body = &req.body;
    let id = env.id_raw(body);
    let method_name = env.method(body).unwrap_or("");
    match env.kind {
        Kind::Request => {}
        Kind::Notification => return notification(h),
        Kind::Response | Kind::Error => {
            return Reject::new(
                code::INVALID_REQUEST,
                "Body must be a single JSON-RPC request or notification object",
            )
            .outcome(None)
        }
    }
    let class = classify(method_name, env.kind);
    let answer = phases(gw, w, snap, req, &env, method_name, h, early).await;
    match answer {
        Ok(Answer::Relay(relay)) => Outcome::Stream(relay),
        Ok(Answer::Reply(status, body)) => {
            record(w, class, status < 400, req.received);
            Outcome::Json {
                status,
                body,
                session: None,
            }
        }
        Ok(_) => {
            record(w, class, false, req.received);
            Reject::new(code::INTERNAL_ERROR, "unexpected answer").outcome(id)
        }
        Err(reject) => {
            record(w, class, false, req.received);
            reject.outcome(id)
        }
    }
}

/// Ladder, plan (unless decided from headers), then the answer.
#[allow(clippy::too_many_arguments)]
async fn phases(
    gw: &Gateway,
    w: &Worker,
    snap: &Arc<Snapshot>,
    req: &Inbound<'_>,
    env: &Envelope,
    method_name: &str,
    h: Option<&RoutingHeaders<'_>>,
    early: Option<Result<(Plan, Principal), GatewayError>>,
) -> Result<Answer, Reject> {
    let m = verify(&req.body, env, h)?;
    if let (Some(h), wire::method::TOOLS_CALL) = (h, method_name) {
        let index = w.param_index(snap);
        if !index.is_empty() {
            if let Some(tool) = env.name_str(&req.body) {
                params::check(&index, &tool, &req.body, env, h)?;
            }
        }
    }
    let (plan, who) = match early {
        Some(decided) => decided,
        None => decide_from_body(snap, req, env, method_name),
    }
    .map_err(|e| Reject::from_gateway(&e))?;
    execute(gw, w, snap, req, env, plan, &m, who).await
}

/// The ladder: reads the request's `_meta` and checks it, and the routing headers if any, against
/// the body. What passes is safe to act on, including a plan made from the headers.
pub fn verify(
    body: &[u8],
    env: &Envelope,
    h: Option<&RoutingHeaders<'_>>,
) -> Result<RequestMeta, Reject> {
    let m = meta::read(body, env);
    meta::check(body, env, env.method(body).unwrap_or(""), &m, h)?;
    Ok(m)
}

/// Body-first decision: the plan for the body's method and name, and the policy verdict (the
/// principal it established).
pub fn decide_from_body(
    snap: &Snapshot,
    req: &Inbound<'_>,
    env: &Envelope,
    method_name: &str,
) -> Result<(Plan, Principal), GatewayError> {
    let body = &req.body;
    let name = if method_name == wire::method::RESOURCES_READ {
        env.uri_str(body)
    } else {
        env.name_str(body)
    };
    let plan = plan(snap, method_name.as_bytes(), name.as_deref())?;
    let facts = RequestFacts {
        method: method_name,
        target: env.name.or(env.uri).map(|s| s.get(body)),
    };
    let who = super::policy(snap, req, facts)?;
    Ok((plan, who))
}

/// Acts on a verified plan for `who` (the principal the policy phase established).
#[allow(clippy::too_many_arguments)]
async fn execute(
    gw: &Gateway,
    w: &Worker,
    snap: &Arc<Snapshot>,
    req: &Inbound<'_>,
    env: &Envelope,
    plan: Plan,
    m: &RequestMeta,
    who: Principal,
) -> Result<Answer, Reject> {
    let body = &req.body;
    let id = env.id_raw(body).unwrap_or(b"null");
    let reject = |e: GatewayError| Reject::from_gateway(&e);
    let call = |hint| ModernCall {
        caps: m.caps,
        log_level: m.log_level,
        hint,
        request: body.clone(),
        principal: who.clone(),
    };
    let (server, name_edit, hint) = match plan {
        Plan::Discover => return Ok(Answer::Reply(200, one(answer::discover(snap, id)))),
        Plan::List(kind) => {
            let page = super::local::list_result(snap, body, env, kind).map_err(reject)?;
            let hint = snap.list_hint(kind);
            return Ok(Answer::Reply(200, answer::list_pieces(&page, id, hint)));
        }
        Plan::Listen => {
            if !req.accepts_sse {
                let mut r = Reject::new(
                    code::INVALID_REQUEST,
                    "subscriptions/listen answers with a stream: Accept must allow text/event-stream",
                );
                r.status = 406;
                return Err(r);
            }
            let mut filter = listen::Filter::read(body, env).ok_or_else(|| {
                Reject::new(
                    code::INVALID_PARAMS,
                    "params.notifications (a SubscriptionFilter object) is required",
                )
            })?;
            let uris = std::mem::take(&mut filter.uris);
            let watches = (!uris.is_empty()).then(|| watches::Watches::open(gw, w, snap, uris));
            let key = watches.as_ref().map_or(LISTEN_STREAM, |x| x.key);
            let listen = Listen::open(w.streams.add(key), id, filter, watches);
            return Ok(Answer::Relay(Box::new(super::Relay::Listen(listen))));
        }
        Plan::Complete => {
            let (server, edit) = super::by_reference(snap, body, env).map_err(reject)?;
            (server, edit, None)
        }
        Plan::Forward { server, original } => {
            let edit = match (original, env.name) {
                (Some(o), Some(span)) => Some((span, o)),
                (Some(_), None) => {
                    let e = GatewayError::new(ErrorKind::InvalidParams, "params.name is required");
                    return Err(reject(e));
                }
                (None, _) => None,
            };
            let read = env.method(body) == Some(wire::method::RESOURCES_READ);
            let hint = read.then_some(LEGACY_HINT);
            // A retry carrying the gateway's own requestState resumes a parked call.
            if !snap.servers[server].link.is_modern() {
                if let Some(fields) = super::bridge::retry_fields(env) {
                    return super::bridge::resume(
                        gw,
                        w,
                        snap,
                        req,
                        env,
                        server,
                        call(hint),
                        fields,
                    )
                    .await;
                }
            }
            (server, edit, hint)
        }
    };
    let target = Target {
        server,
        name_edit,
        session: None,
        modern: Some(call(hint)),
    };
    let method_name = env.method(body).unwrap_or("");
    super::forward(gw, w, snap, req, body, env, target, method_name)
        .await
        .map_err(reject)
}

/// A notification POSTed in the modern era: acknowledged and dropped (this era defines no client
/// notifications over HTTP; a client cancels by closing the response stream), unless the version
/// header names a version the gateway does not serve.
fn notification(h: Option<&RoutingHeaders<'_>>) -> Outcome {
    match h.and_then(|h| h.version) {
        Some(v) if !versions::is_modern(v) => {
            let mut data = b"{\"supported\":".to_vec();
            data.extend_from_slice(versions::ALL_JSON.as_bytes());
            data.extend_from_slice(b",\"requested\":");
            crate::wire::encode::write_json_string(&mut data, &String::from_utf8_lossy(v));
            data.push(b'}');
            Reject::new(
                code::UNSUPPORTED_PROTOCOL_VERSION,
                "Unsupported protocol version",
            )
            .with_data(data)
            .outcome(None)
        }
        _ => Outcome::Accepted,
    }
}
