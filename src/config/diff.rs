//! The reconciliation diff of a hot reload: which servers to keep, start and retire, and which
//! gateway settings changed. Pure: it sees names, config hashes and slot numbers, never a socket.
//!
//! Servers are matched by name. One whose [`ServerConfig::config_hash`] is unchanged keeps its slot
//! (its link, worker pools, downstream session and child process stay); a new or changed one is
//! placed in a fresh slot and started before the commit; a removed or replaced one is retired after
//! it. Gateway keys are classified as applied at once (to new requests; the listener addresses by
//! binding the new listeners before the old ones close), or needing a restart (the worker count is
//! fixed when the process starts).

use super::{GatewayConfig, ServerConfig};

/// A server the gateway runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// Its configured name.
    pub name: String,
    /// [`ServerConfig::config_hash`] of the config it runs with.
    pub hash: u64,
    /// Its slot (never reused for another server within a process lifetime).
    pub slot: usize,
}

/// Where one server of the new config comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Unchanged: keep the running server in this slot.
    Keep(usize),
    /// New or changed: start it in a fresh slot.
    Start,
}

/// The server side of a reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerPlan {
    /// One entry per server of the new config, in its order.
    pub placements: Vec<Placement>,
    /// Names only in the new config.
    pub added: Vec<String>,
    /// Names in both whose config changed (restarted in a new slot).
    pub changed: Vec<String>,
    /// Names only in the running config.
    pub removed: Vec<String>,
    /// Names in both with the same config.
    pub unchanged: Vec<String>,
    /// Slots to retire after the commit (removed and replaced servers), in running order.
    pub retire: Vec<usize>,
    /// Whether the servers that stay change their relative order (the catalog follows it).
    pub reordered: bool,
}

impl ServerPlan {
    /// Whether the set of servers, their configs and their order stay exactly as they are.
    pub fn is_noop(&self) -> bool {
        self.added.is_empty()
            && self.changed.is_empty()
            && self.removed.is_empty()
            && !self.reordered
    }
}

/// Matches the new config's servers against the running ones.
pub fn plan_servers(current: &[Current], next: &[ServerConfig]) -> ServerPlan {
    let mut plan = ServerPlan::default();
    let mut kept = Vec::new();
    for server in next {
        match current.iter().find(|c| c.name == server.name) {
            Some(c) if c.hash == server.config_hash() => {
                plan.placements.push(Placement::Keep(c.slot));
                plan.unchanged.push(server.name.clone());
                kept.push(c.slot);
            }
            Some(_) => {
                plan.placements.push(Placement::Start);
                plan.changed.push(server.name.clone());
            }
            None => {
                plan.placements.push(Placement::Start);
                plan.added.push(server.name.clone());
            }
        }
    }
    for c in current {
        if !kept.contains(&c.slot) {
            plan.retire.push(c.slot);
            if !next.iter().any(|s| s.name == c.name) {
                plan.removed.push(c.name.clone());
            }
        }
    }
    let kept_before: Vec<usize> = current
        .iter()
        .map(|c| c.slot)
        .filter(|s| kept.contains(s))
        .collect();
    plan.reordered = kept_before != kept;
    plan
}

/// The gateway side of a reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayChanges {
    /// Keys whose new values apply to new requests at once.
    pub applied: Vec<&'static str>,
    /// Keys that only take effect after a restart (the running values stay in force).
    pub restart_required: Vec<&'static str>,
}

impl GatewayChanges {
    /// Whether no gateway key changed.
    pub fn is_empty(&self) -> bool {
        self.applied.is_empty() && self.restart_required.is_empty()
    }
}

/// Which `[gateway]` keys differ between the running and the new config.
pub fn gateway_changes(old: &GatewayConfig, new: &GatewayConfig) -> GatewayChanges {
    let mut c = GatewayChanges::default();
    let mut restart = |differs: bool, key: &'static str| {
        if differs {
            c.restart_required.push(key);
        }
    };
    restart(old.workers != new.workers, "gateway.workers");
    let (a, b) = (old, new);
    let (la, lb) = (&a.limits, &b.limits);
    let live = [
        // Bound before the reload commits; the old listeners close after it.
        (a.listen != b.listen, "gateway.listen"),
        (a.admin_listen != b.admin_listen, "gateway.admin_listen"),
        (
            a.allowed_origins != b.allowed_origins,
            "gateway.allowed_origins",
        ),
        (a.allowed_hosts != b.allowed_hosts, "gateway.allowed_hosts"),
        (a.server_name != b.server_name, "gateway.server_name"),
        (
            a.shutdown_timeout != b.shutdown_timeout,
            "gateway.shutdown_timeout_ms",
        ),
        (a.call_timeout != b.call_timeout, "gateway.call_timeout_ms"),
        (
            a.input_timeout != b.input_timeout,
            "gateway.input_timeout_ms",
        ),
        (a.page_size != b.page_size, "gateway.page_size"),
        (a.unavailable != b.unavailable, "gateway.unavailable"),
        (
            la.max_header_bytes != lb.max_header_bytes,
            "gateway.limits.max_header_bytes",
        ),
        (
            la.max_headers != lb.max_headers,
            "gateway.limits.max_headers",
        ),
        (
            la.max_body_bytes != lb.max_body_bytes,
            "gateway.limits.max_body_bytes",
        ),
        (
            la.header_read_timeout != lb.header_read_timeout,
            "gateway.limits.header_read_timeout_ms",
        ),
        (
            la.idle_timeout != lb.idle_timeout,
            "gateway.limits.idle_timeout_ms",
        ),
        (
            la.stream_keepalive != lb.stream_keepalive,
            "gateway.limits.stream_keepalive_ms",
        ),
        (
            la.max_response_bytes != lb.max_response_bytes,
            "gateway.limits.max_response_bytes",
        ),
        (
            la.max_sse_event_bytes != lb.max_sse_event_bytes,
            "gateway.limits.max_sse_event_bytes",
        ),
        (
            la.max_json_depth != lb.max_json_depth,
            "gateway.limits.max_json_depth",
        ),
        (
            la.max_sessions != lb.max_sessions,
            "gateway.limits.max_sessions",
        ),
        // Read per accepted connection, so new certificates apply to new connections.
        (a.tls != b.tls, "gateway.tls"),
    ];
    c.applied
        .extend(live.iter().filter(|(d, _)| *d).map(|(_, k)| *k));
    // Keys added to GatewayConfig after this list was written still take effect through the
    // snapshot; they are reported together until they are classified above.
    let mut rest = new.clone();
    rest.listen = old.listen;
    rest.admin_listen = old.admin_listen;
    rest.workers = old.workers;
    rest.allowed_origins.clone_from(&old.allowed_origins);
    rest.allowed_hosts.clone_from(&old.allowed_hosts);
    rest.server_name.clone_from(&old.server_name);
    rest.shutdown_timeout = old.shutdown_timeout;
    rest.call_timeout = old.call_timeout;
    rest.input_timeout = old.input_timeout;
    rest.page_size = old.page_size;
    rest.unavailable = old.unavailable;
    rest.limits = old.limits.clone();
    rest.tls.clone_from(&old.tls);
    if rest != *old {
        c.applied.push("gateway (other keys)");
    }
    c
}

/// The gateway settings a reload puts in force: the new ones, except the keys that need a restart
/// (the worker count), which keep their running values.
pub fn effective_gateway(old: &GatewayConfig, new: &GatewayConfig) -> GatewayConfig {
    let mut g = new.clone();
    g.workers = old.workers;
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_str, Config};

    fn cfg(gateway: &str, servers: &[(&str, &str)]) -> Config {
        let mut toml = format!("[gateway]\nworkers = 2\n{gateway}\n");
        for (name, extra) in servers {
            toml.push_str(&format!(
                "[[server]]\nname = \"{name}\"\ntransport = \"http\"\nurl = \"http://127.0.0.1:9/mcp\"\n{extra}\n"
            ));
        }
        parse_str(&toml, &|_| None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The running state for `config`, slots numbered from `first`.
    fn running(config: &Config, first: usize) -> Vec<Current> {
        config
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| Current {
                name: s.name.clone(),
                hash: s.config_hash(),
                slot: first + i,
            })
            .collect()
    }

    #[test]
    fn identical_config_keeps_every_slot() {
        let a = cfg("", &[("a", ""), ("b", "")]);
        let plan = plan_servers(&running(&a, 0), &a.servers);
        assert!(plan.is_noop());
        assert_eq!(plan.placements, [Placement::Keep(0), Placement::Keep(1)]);
        assert_eq!(plan.unchanged, ["a", "b"]);
        assert!(plan.retire.is_empty());
    }

    #[test]
    fn added_changed_and_removed_are_told_apart() {
        let old = cfg("", &[("a", ""), ("b", ""), ("c", "")]);
        let new = cfg("", &[("a", "prefix = \"x\""), ("c", ""), ("d", "")]);
        let plan = plan_servers(&running(&old, 10), &new.servers);
        assert_eq!(
            plan.placements,
            [Placement::Start, Placement::Keep(12), Placement::Start]
        );
        assert_eq!(plan.added, ["d"]);
        assert_eq!(plan.changed, ["a"]);
        assert_eq!(plan.removed, ["b"]);
        assert_eq!(plan.unchanged, ["c"]);
        // The replaced server's old slot is retired as well as the removed one's.
        assert_eq!(plan.retire, [10, 11]);
        assert!(!plan.reordered);
        assert!(!plan.is_noop());
    }

    #[test]
    fn any_server_field_counts_as_a_change() {
        let old = cfg("", &[("a", "")]);
        for extra in [
            "required = false",
            "pool_size = 9",
            "call_timeout_ms = 5",
            "headers = { x-key = \"2\" }",
        ] {
            let new = cfg("", &[("a", extra)]);
            let plan = plan_servers(&running(&old, 0), &new.servers);
            assert_eq!(plan.changed, ["a"], "{extra}");
            assert_eq!(plan.retire, [0], "{extra}");
        }
        // A gateway default a server inherits is part of its effective config.
        let new = cfg("call_timeout_ms = 5", &[("a", "")]);
        assert_eq!(plan_servers(&running(&old, 0), &new.servers).changed, ["a"]);
    }

    #[test]
    fn reordering_alone_is_a_change_of_the_catalog_order() {
        let old = cfg("", &[("a", ""), ("b", "")]);
        let new = cfg("", &[("b", ""), ("a", "")]);
        let plan = plan_servers(&running(&old, 0), &new.servers);
        assert_eq!(plan.placements, [Placement::Keep(1), Placement::Keep(0)]);
        assert!(plan.reordered);
        assert!(!plan.is_noop());
        assert!(plan.retire.is_empty());
    }

    #[test]
    fn empty_to_some_and_back() {
        let none = cfg("", &[]);
        let some = cfg("", &[("a", "")]);
        let up = plan_servers(&[], &some.servers);
        assert_eq!(up.added, ["a"]);
        assert_eq!(up.placements, [Placement::Start]);
        let down = plan_servers(&running(&some, 3), &none.servers);
        assert_eq!(down.removed, ["a"]);
        assert_eq!(down.retire, [3]);
        assert!(down.placements.is_empty());
    }

    #[test]
    fn gateway_keys_are_classified() {
        let old = cfg("", &[]).gateway;
        let mut new = cfg(
            "listen = \"127.0.0.1:1\"\npage_size = 7\nallowed_origins = [\"https://a.example\"]\n[gateway.limits]\nmax_body_bytes = 1000",
            &[],
        )
        .gateway;
        new.workers = 3;
        let c = gateway_changes(&old, &new);
        assert_eq!(c.restart_required, ["gateway.workers"]);
        assert_eq!(
            c.applied,
            [
                "gateway.listen",
                "gateway.allowed_origins",
                "gateway.page_size",
                "gateway.limits.max_body_bytes"
            ]
        );
        let eff = effective_gateway(&old, &new);
        assert_eq!(eff.listen, new.listen, "listener moves apply live");
        assert_eq!(
            eff.workers, old.workers,
            "the worker count waits for a restart"
        );
        assert_eq!(eff.page_size, 7);
        assert_eq!(eff.limits.max_body_bytes, 1000);
        assert!(gateway_changes(&old, &old).is_empty());
    }
}
