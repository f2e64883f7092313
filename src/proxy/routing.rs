//! Routing by what a request names: a namespaced tool or prompt, a resource URI, or a completion
//! reference. Pure lookups in the snapshot; the errors say whether the name is unknown or its
//! server is down.

use bytes::Bytes;

use crate::catalog::{ListKind, Snapshot, Target};
use crate::error::{ErrorKind, GatewayError};
use crate::wire::{self, Envelope, Span};

/// Route by a namespaced name (`params.name`): the server and the splice restoring its own name.
pub(super) fn by_name(
    snap: &Snapshot,
    body: &[u8],
    env: &Envelope,
    kind: ListKind,
) -> Result<(usize, Option<(Span, Bytes)>), GatewayError> {
    let span = env
        .name
        .ok_or_else(|| GatewayError::new(ErrorKind::InvalidParams, "params.name is required"))?;
    let name = env.name_str(body).ok_or_else(|| {
        GatewayError::new(
            ErrorKind::InvalidParams,
            "params.name is not a valid string",
        )
    })?;
    let target = named_target(snap, &name, kind)?;
    Ok((target.server, Some((span, target.original.clone()))))
}

/// The tool or prompt a namespaced name routes to; a name under the prefix of a server that is
/// down is reported as that server's outage, not as a typo.
pub(super) fn named_target<'s>(
    snap: &'s Snapshot,
    name: &str,
    kind: ListKind,
) -> Result<&'s Target, GatewayError> {
    let target = match kind {
        ListKind::Tools => snap.tool(name),
        _ => snap.prompt(name),
    };
    target.ok_or_else(|| {
        if let Some(down) = snap.unavailable_owner(name) {
            return GatewayError::new(
                ErrorKind::DownstreamUnavailable,
                format!(
                    "server '{}' is unavailable: {}",
                    down.link.name,
                    down.link
                        .health()
                        .last_error
                        .map_or_else(|| "not connected".to_string(), |(_, e)| e)
                ),
            );
        }
        let what = if kind == ListKind::Tools {
            "tool"
        } else {
            "prompt"
        };
        GatewayError::new(ErrorKind::InvalidParams, format!("unknown {what} '{name}'"))
    })
}

/// Route by resource URI through the owner table.
pub(super) fn by_uri(snap: &Snapshot, body: &[u8], env: &Envelope) -> Result<usize, GatewayError> {
    let uri = env
        .uri_str(body)
        .ok_or_else(|| GatewayError::new(ErrorKind::InvalidParams, "params.uri is required"))?;
    snap.resource_owner(&uri).ok_or_else(|| {
        GatewayError::new(
            ErrorKind::ResourceNotFound,
            format!("no server owns resource '{uri}'"),
        )
    })
}

/// Route `completion/complete` by its `ref`: a prompt name, or a resource template URI.
pub(super) fn by_reference(
    snap: &Snapshot,
    body: &[u8],
    env: &Envelope,
) -> Result<(usize, Option<(Span, Bytes)>), GatewayError> {
    let r = env
        .reference
        .as_ref()
        .ok_or_else(|| GatewayError::new(ErrorKind::InvalidParams, "params.ref is required"))?;
    let content = |s: Span| wire::envelope::content_str(body, s, r.escaped);
    match content(r.kind).as_deref() {
        Some("ref/prompt") => {
            let span = r.name.ok_or_else(|| {
                GatewayError::new(ErrorKind::InvalidParams, "ref.name is required")
            })?;
            let name = content(span).unwrap_or_default();
            let t = snap.prompt(&name).ok_or_else(|| {
                GatewayError::new(ErrorKind::InvalidParams, format!("unknown prompt '{name}'"))
            })?;
            Ok((t.server, Some((span, t.original.clone()))))
        }
        Some("ref/resource") => {
            let uri = r.uri.and_then(content).ok_or_else(|| {
                GatewayError::new(ErrorKind::InvalidParams, "ref.uri is required")
            })?;
            let owner = snap
                .template_owner(&uri)
                .or_else(|| snap.resource_owner(&uri));
            owner.map(|s| (s, None)).ok_or_else(|| {
                GatewayError::new(
                    ErrorKind::ResourceNotFound,
                    format!("no server owns '{uri}'"),
                )
            })
        }
        _ => Err(GatewayError::new(
            ErrorKind::InvalidParams,
            "ref.type must be ref/prompt or ref/resource",
        )),
    }
}
