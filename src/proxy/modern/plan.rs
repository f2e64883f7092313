//! Routing a 2026-07-28 request from what it names: its method and `Mcp-Name`, taken from the
//! headers before the body is parsed (header-first) or from the body when there are no headers
//! (stdio). The plan is only acted on once the body is known to agree with the headers.
//!
//! Key items: [`Plan`] (what the gateway will do), [`plan`] (method + name → plan), [`surface`]
//! (the methods this era defines: anything else is -32601, HTTP 404).
//!
//! Perf: a method match and one hash lookup; no body access, no allocation.

use bytes::Bytes;

use crate::catalog::{ListKind, Snapshot};
use crate::error::{ErrorKind, GatewayError};
use crate::wire::method;

/// What the gateway does with a modern request.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Answer `server/discover` itself.
    Discover,
    /// Answer a list page itself.
    List(ListKind),
    /// Forward to `server`, restoring its own name for the tool or prompt if given.
    Forward {
        /// The owning server's index in the snapshot.
        server: usize,
        /// The server's own name for a namespaced tool or prompt.
        original: Option<Bytes>,
    },
    /// `completion/complete`: routed by `params.ref` (read from the body).
    Complete,
    /// `subscriptions/listen`.
    Listen,
}

/// Whether `m` is a request method of the 2026-07-28 era (the ones the gateway answers or routes).
pub fn surface(m: &[u8]) -> bool {
    [
        method::SERVER_DISCOVER,
        method::TOOLS_LIST,
        method::TOOLS_CALL,
        method::PROMPTS_LIST,
        method::PROMPTS_GET,
        method::RESOURCES_LIST,
        method::RESOURCES_TEMPLATES_LIST,
        method::RESOURCES_READ,
        method::COMPLETION_COMPLETE,
        method::SUBSCRIPTIONS_LISTEN,
    ]
    .iter()
    .any(|s| s.as_bytes() == m)
}

/// The plan for `method_name` naming `name` (decoded `Mcp-Name`, or the body's name / uri).
///
/// Errors: unknown method (-32601), a missing or unknown name (-32602), an unowned resource
/// (-32002, which the modern reply turns into -32602), a name whose server is down.
pub fn plan(snap: &Snapshot, method_name: &[u8], name: Option<&str>) -> Result<Plan, GatewayError> {
    let m = std::str::from_utf8(method_name).unwrap_or("");
    if !surface(method_name) {
        return Err(GatewayError::new(
            ErrorKind::MethodNotFound,
            format!("Method not found: '{m}'"),
        ));
    }
    if let Some(kind) = ListKind::from_method(m) {
        return Ok(Plan::List(kind));
    }
    match m {
        method::SERVER_DISCOVER => Ok(Plan::Discover),
        method::COMPLETION_COMPLETE => Ok(Plan::Complete),
        method::SUBSCRIPTIONS_LISTEN => Ok(Plan::Listen),
        method::RESOURCES_READ => {
            let uri = name.ok_or_else(|| {
                GatewayError::new(ErrorKind::InvalidParams, "params.uri is required")
            })?;
            let server = snap.resource_owner(uri).ok_or_else(|| {
                GatewayError::new(
                    ErrorKind::ResourceNotFound,
                    format!("no server owns resource '{uri}'"),
                )
            })?;
            Ok(Plan::Forward {
                server,
                original: None,
            })
        }
        _ => {
            let kind = if m == method::TOOLS_CALL {
                ListKind::Tools
            } else {
                ListKind::Prompts
            };
            let name = name.ok_or_else(|| {
                GatewayError::new(ErrorKind::InvalidParams, "params.name is required")
            })?;
            let target = super::super::named_target(snap, name, kind)?;
            Ok(Plan::Forward {
                server: target.server,
                original: Some(target.original.clone()),
            })
        }
    }
}
