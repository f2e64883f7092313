//! The Snapshot: everything a request needs to be routed, in one immutable value behind `ArcSwap`.
//!
//! Key types: [`Snapshot`] (validated gateway config, the servers, routing tables, the merged catalog
//! as pre-encoded pages, the capabilities the gateway advertises, the policy), [`Target`] (where a
//! namespaced name goes), [`ListKind`].
//!
//! Invariants: a request loads the snapshot once and keeps it to completion; publishing a new one is
//! a single store (see `runtime`). Names are namespaced `prefix__name` (DESIGN §2) so adding a server
//! never renames another's tools; resource URIs route by an owner table built from `resources/list`
//! and templates, never by guessing. List pages are encoded once per snapshot, so answering
//! `tools/list` is a lookup plus an id splice.
//!
//! Error behaviour: lookups return `None`; the request path turns that into the right JSON-RPC error.

mod build;
pub mod cursor;
pub mod hint;
pub mod params;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::GatewayConfig;
use crate::policy::Policy;
use crate::session::downstream::ServerLink;

pub use build::{build, ServerLists, ServerView};
pub use hint::{CacheHint, LEGACY_HINT};

/// The four mergeable lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list` → `tools`
    Tools = 0,
    /// `prompts/list` → `prompts`
    Prompts = 1,
    /// `resources/list` → `resources`
    Resources = 2,
    /// `resources/templates/list` → `resourceTemplates`
    Templates = 3,
}

impl ListKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ListKind; 4] = [
        ListKind::Tools,
        ListKind::Prompts,
        ListKind::Resources,
        ListKind::Templates,
    ];

    /// The JSON-RPC method that lists this kind.
    pub fn method(self) -> &'static str {
        use crate::wire::method;
        match self {
            ListKind::Tools => method::TOOLS_LIST,
            ListKind::Prompts => method::PROMPTS_LIST,
            ListKind::Resources => method::RESOURCES_LIST,
            ListKind::Templates => method::RESOURCES_TEMPLATES_LIST,
        }
    }

    /// The key of the array in the list result.
    pub fn result_key(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::Templates => "resourceTemplates",
        }
    }

    /// The `list_changed` notification clients get when this list changes.
    pub fn changed_notification(self) -> &'static str {
        use crate::wire::method;
        match self {
            ListKind::Tools => method::TOOLS_LIST_CHANGED,
            ListKind::Prompts => method::PROMPTS_LIST_CHANGED,
            ListKind::Resources | ListKind::Templates => method::RESOURCES_LIST_CHANGED,
        }
    }

    /// The kind listed by `method`, if it is a list method.
    pub fn from_method(method: &str) -> Option<ListKind> {
        ListKind::ALL.into_iter().find(|k| k.method() == method)
    }

    /// Whether a downstream with these capabilities (raw JSON object) offers this list.
    pub fn capability_key(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources | ListKind::Templates => "resources",
        }
    }
}

/// Where a namespaced tool or prompt goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// Index into [`Snapshot::servers`].
    pub server: usize,
    /// The name the downstream knows, JSON-escaped as it appears inside a string literal.
    pub original: Bytes,
    /// Tools only: the arguments its schema marks `x-mcp-header`, mirrored into `Mcp-Param-*`
    /// headers when the call goes to a modern HTTP downstream (read once, at list fetch).
    pub params: Option<Arc<[params::Param]>>,
}

/// A server as this snapshot sees it.
pub struct ServerEntry {
    /// The shared link (config, downstream session, health).
    pub link: Arc<ServerLink>,
    /// Whether the server was available when the snapshot was built.
    pub available: bool,
    /// Tools this server contributes.
    pub tools: usize,
    /// Which lists the server offers, per [`ListKind`] (from its advertised capabilities).
    pub offers: [bool; 4],
}

/// Routing tables from namespaced names and URIs to servers.
#[derive(Default)]
pub struct Routes {
    /// Namespaced tool name → target.
    pub tools: HashMap<Box<str>, Target>,
    /// Namespaced prompt name → target.
    pub prompts: HashMap<Box<str>, Target>,
    /// Exact resource URI → server index.
    pub resources: HashMap<Box<str>, usize>,
    /// Resource templates: (literal prefix before the first `{`, server index), longest first.
    pub templates: Vec<(Box<str>, usize)>,
    /// Exact `uriTemplate` → server index (for `completion/complete` on `ref/resource`).
    pub template_exact: HashMap<Box<str>, usize>,
}

/// The immutable state every request routes with.
pub struct Snapshot {
    /// Increments with every publish.
    pub generation: u64,
    /// Gateway-level settings in force.
    pub gateway: Arc<GatewayConfig>,
    /// `gateway.server_name`, shared (the downstream client name; no per-call allocation).
    pub server_name: Arc<str>,
    /// The servers, in config order.
    pub servers: Vec<ServerEntry>,
    /// Routing tables.
    pub routes: Routes,
    /// Pre-encoded list result pages, per [`ListKind`].
    pub pages: [Vec<Bytes>; 4],
    /// Cache hints of the merged lists, per [`ListKind`] (see [`hint`]).
    pub hints: [CacheHint; 4],
    /// The `capabilities` object the gateway advertises at `initialize` (raw JSON).
    pub capabilities: Bytes,
    /// Merged downstream instructions, if any.
    pub instructions: Option<String>,
    /// The policy in force.
    pub policy: Policy,
    /// Mints and opens the opaque list cursors.
    pub cursors: Arc<cursor::CursorCodec>,
}

impl Snapshot {
    /// The target of a namespaced tool name.
    pub fn tool(&self, name: &str) -> Option<&Target> {
        self.routes.tools.get(name)
    }

    /// The target of a namespaced prompt name.
    pub fn prompt(&self, name: &str) -> Option<&Target> {
        self.routes.prompts.get(name)
    }

    /// The unavailable server whose namespace `name` falls in (for a clear error when its entries
    /// were omitted from the catalog).
    pub fn unavailable_owner(&self, name: &str) -> Option<&ServerEntry> {
        self.servers.iter().find(|s| {
            let prefix = &s.link.config.prefix;
            !s.link.is_up()
                && !prefix.is_empty()
                && name.len() > prefix.len() + 2
                && name.starts_with(prefix.as_str())
                && name[prefix.len()..].starts_with(crate::config::NAMESPACE_SEPARATOR)
        })
    }

    /// The server owning a resource URI: exact match first, then the longest matching template
    /// prefix, then the only server offering resources (if exactly one does).
    pub fn resource_owner(&self, uri: &str) -> Option<usize> {
        if let Some(&s) = self.routes.resources.get(uri) {
            return Some(s);
        }
        if let Some((_, s)) = self
            .routes
            .templates
            .iter()
            .find(|(prefix, _)| !prefix.is_empty() && uri.starts_with(&**prefix))
        {
            return Some(*s);
        }
        let mut offering = self
            .servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.available && s.offers[ListKind::Resources as usize]);
        match (offering.next(), offering.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// The server owning a resource template (for completions).
    pub fn template_owner(&self, uri_template: &str) -> Option<usize> {
        self.routes.template_exact.get(uri_template).copied()
    }

    /// The cache hint of a merged list: the minimum `ttlMs` of the servers contributing to it,
    /// `private` if any is.
    pub fn list_hint(&self, kind: ListKind) -> CacheHint {
        self.hints[kind as usize]
    }

    /// The cache hint of an answer drawn from every list (`server/discover`).
    pub fn merged_hint(&self) -> CacheHint {
        self.hints
            .iter()
            .copied()
            .reduce(CacheHint::merge)
            .unwrap_or(LEGACY_HINT)
    }

    /// Page `page` of a merged list, if it exists.
    pub fn page(&self, kind: ListKind, page: usize) -> Option<&Bytes> {
        self.pages[kind as usize].get(page)
    }

    /// A snapshot with no servers (before the first build, and in tests).
    pub fn empty(gateway: Arc<GatewayConfig>, cursors: Arc<cursor::CursorCodec>) -> Snapshot {
        build(0, gateway, &[], cursors)
    }
}

/// Whether a server's advertised capabilities include `kind`.
pub fn offers(link: &ServerLink, kind: ListKind) -> bool {
    let Some(session) = link.session.load_full() else {
        return false;
    };
    let mut caps = session.capabilities.to_vec();
    match simd_json::to_owned_value(&mut caps) {
        Ok(v) => simd_json::prelude::ValueAsObject::as_object(&v)
            .is_some_and(|o| o.contains_key(kind.capability_key())),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
