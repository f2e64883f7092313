//! Raw shapes → validated [`Config`], collecting every problem.
//!
//! Validation never stops early: each check records into [`Problems`] and produces a
//! placeholder so later checks still run. The placeholders never escape, because any recorded
//! problem turns the whole result into `ConfigErrors`. [`Problems`] keeps only the first
//! error per key path, so a root cause (an unset `${VAR}` in `url`, a duplicate name) is not
//! followed by noise about the same key (an unparsable URL, a duplicate prefix).

use std::collections::hash_map::{Entry, HashMap};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use super::expand::expand;
use super::raw::{join, RawConfig, RawGateway, RawLimits, RawServer};
use super::tls::{client_tls, front_tls};
use super::{
    Config, ConfigError, GatewayConfig, Limits, ServerConfig, Transport, Url, DEFAULT_POOL_SIZE,
    DEFAULT_REQUIRED, DEFAULT_STATELESS, MAX_BYTES_CEILING, MAX_HEADERS_CEILING,
    MAX_HEADER_BYTES_CEILING, MAX_JSON_DEPTH_CEILING, MAX_PAGE_SIZE, MAX_POOL_SIZE, MAX_WORKERS,
    NAMESPACE_SEPARATOR,
};

/// Header names the gateway sets itself on downstream requests (framing, routing, MCP
/// session state); letting config override them would break the protocol, so they are
/// rejected. Lowercase.
const MANAGED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
    "content-type",
    "accept",
    "last-event-id",
    "mcp-session-id",
    "mcp-protocol-version",
];

/// Environment lookup used for `${VAR}` expansion.
pub(super) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The error collector: first error per path wins (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Problems {
    errors: Vec<ConfigError>,
}

impl Problems {
    /// Records a problem unless `path` already has one.
    pub(super) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        if !self.errors.iter().any(|e| e.path == path) {
            self.errors.push(ConfigError::new(path, message));
        }
    }

    /// True when nothing was recorded.
    pub(super) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The recorded problems, in discovery order.
    pub(super) fn into_vec(self) -> Vec<ConfigError> {
        self.errors
    }
}

/// Validates a whole raw config. Meaningful only if `problems` is still empty afterwards.
pub(super) fn validate(raw: RawConfig, env: Env<'_>, problems: &mut Problems) -> Config {
    let gateway = gateway(raw.gateway, env, problems);
    // Uniqueness first: a duplicate name explains a duplicate prefix at the same path.
    check_unique(&raw.server, problems);
    let servers = raw
        .server
        .into_iter()
        .enumerate()
        .filter_map(|(i, server)| validate_server(i, server, &gateway, env, problems))
        .collect();
    Config {
        gateway,
        servers,
        source: None,
    }
}

fn gateway(mut raw: RawGateway, env: Env<'_>, p: &mut Problems) -> GatewayConfig {
    let tls = front_tls(raw.tls.take(), env, p);
    let listen = socket_addr(&raw.listen, "gateway.listen", p);
    let admin_listen = socket_addr(&raw.admin_listen, "gateway.admin_listen", p);
    if let (Some(listen), Some(admin)) = (listen, admin_listen) {
        if addresses_conflict(listen, admin) {
            p.push(
                "gateway.admin_listen",
                format!("must differ from gateway.listen ({listen})"),
            );
        }
    }
    let workers = match raw.workers {
        0 => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
        n => bounded(n, MAX_WORKERS, "gateway.workers", p),
    };
    if raw.server_name.is_empty() || raw.server_name.chars().any(char::is_control) {
        p.push(
            "gateway.server_name",
            "must be non-empty and free of control characters",
        );
    }
    let placeholder = SocketAddr::from(([0, 0, 0, 0], 0));
    GatewayConfig {
        listen: listen.unwrap_or(placeholder),
        admin_listen: admin_listen.unwrap_or(placeholder),
        workers,
        allowed_origins: list(
            raw.allowed_origins,
            "gateway.allowed_origins",
            check_origin,
            p,
        ),
        allowed_hosts: list(raw.allowed_hosts, "gateway.allowed_hosts", check_host, p),
        server_name: raw.server_name,
        shutdown_timeout: positive_ms(raw.shutdown_timeout_ms, "gateway.shutdown_timeout_ms", p),
        call_timeout: positive_ms(raw.call_timeout_ms, "gateway.call_timeout_ms", p),
        input_timeout: positive_ms(raw.input_timeout_ms, "gateway.input_timeout_ms", p),
        page_size: bounded(raw.page_size, MAX_PAGE_SIZE, "gateway.page_size", p),
        unavailable: raw.unavailable,
        limits: limits(raw.limits, p),
        tls,
    }
}

fn limits(raw: RawLimits, p: &mut Problems) -> Limits {
    let path = |key: &str| format!("gateway.limits.{key}");
    Limits {
        max_header_bytes: bounded(
            raw.max_header_bytes,
            MAX_HEADER_BYTES_CEILING,
            &path("max_header_bytes"),
            p,
        ),
        max_headers: bounded(
            raw.max_headers,
            MAX_HEADERS_CEILING,
            &path("max_headers"),
            p,
        ),
        max_body_bytes: bounded(
            raw.max_body_bytes,
            MAX_BYTES_CEILING,
            &path("max_body_bytes"),
            p,
        ),
        header_read_timeout: positive_ms(
            raw.header_read_timeout_ms,
            &path("header_read_timeout_ms"),
            p,
        ),
        idle_timeout: positive_ms(raw.idle_timeout_ms, &path("idle_timeout_ms"), p),
        stream_keepalive: positive_ms(raw.stream_keepalive_ms, &path("stream_keepalive_ms"), p),
        max_response_bytes: bounded(
            raw.max_response_bytes,
            MAX_BYTES_CEILING,
            &path("max_response_bytes"),
            p,
        ),
        max_sse_event_bytes: bounded(
            raw.max_sse_event_bytes,
            MAX_BYTES_CEILING,
            &path("max_sse_event_bytes"),
            p,
        ),
        max_json_depth: bounded(
            raw.max_json_depth,
            MAX_JSON_DEPTH_CEILING,
            &path("max_json_depth"),
            p,
        ),
        max_sessions: bounded(raw.max_sessions, usize::MAX, &path("max_sessions"), p),
    }
}

fn socket_addr(text: &str, path: &str, p: &mut Problems) -> Option<SocketAddr> {
    match text.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            p.push(
                path,
                format!("invalid socket address {text:?} (expected IP:PORT, e.g. \"127.0.0.1:8787\" or \"[::1]:8787\")"),
            );
            None
        }
    }
}

/// Two listeners on the same port collide if either binds the wildcard address. Port 0 asks
/// the OS for a fresh port, so it never collides (tests use it for both listeners).
fn addresses_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn positive_ms(ms: u64, path: &str, p: &mut Problems) -> Duration {
    if ms == 0 {
        p.push(path, "must be greater than 0 (milliseconds)");
    }
    Duration::from_millis(ms)
}

fn bounded(value: usize, max: usize, path: &str, p: &mut Problems) -> usize {
    if value == 0 {
        p.push(path, "must be greater than 0");
    } else if value > max {
        p.push(path, format!("must be at most {max} (got {value})"));
    }
    value
}

/// Validates and lowercases each entry of an allow-list; comparisons at runtime are then
/// plain string equality on lowercased request values.
fn list(
    items: Vec<String>,
    path: &str,
    check: fn(&str) -> Result<(), &'static str>,
    p: &mut Problems,
) -> Vec<String> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let item = item.to_ascii_lowercase();
        match check(&item) {
            Ok(()) => out.push(item),
            Err(message) => p.push(format!("{path}[{i}]"), message),
        }
    }
    out
}

fn check_origin(origin: &str) -> Result<(), &'static str> {
    const SHAPE: &str = "must be scheme://host[:port] exactly as browsers send it, e.g. \"https://app.example.com\" (no path, no trailing `/`, no wildcards)";
    let Some((scheme, host)) = origin.split_once("://") else {
        return Err(SHAPE);
    };
    let scheme_ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    let host_ok = !host.is_empty()
        && !host.contains(['/', '?', '#', '*', '@'])
        && !host.chars().any(|c| c.is_whitespace() || c.is_control());
    if scheme_ok && host_ok {
        Ok(())
    } else {
        Err(SHAPE)
    }
}

fn check_host(host: &str) -> Result<(), &'static str> {
    let ok = !host.is_empty()
        && !host.contains(['/', '?', '#', '*', '@'])
        && !host.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err("must be host or host:port exactly as sent in the Host header (no scheme, path or wildcards)")
    }
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The prefix a server's names get, and the key path it came from (`prefix` or `name`).
fn effective_prefix<'a>(raw: &'a RawServer, path: &str) -> Option<(&'a str, String)> {
    match (&raw.prefix, &raw.name) {
        (Some(prefix), _) => Some((prefix.as_str(), format!("{path}.prefix"))),
        (None, Some(name)) => Some((name.as_str(), format!("{path}.name"))),
        (None, None) => None,
    }
}

/// Names must be unique; effective prefixes must be unique too, or two servers' tools would
/// land in the same namespace. At most one server may use the empty prefix for the same reason.
fn check_unique(servers: &[RawServer], p: &mut Problems) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut prefixes: HashMap<&str, usize> = HashMap::new();
    for (i, server) in servers.iter().enumerate() {
        let path = format!("server[{i}]");
        if let Some(name) = &server.name {
            match names.entry(name) {
                Entry::Occupied(first) => p.push(
                    format!("{path}.name"),
                    format!(
                        "duplicate server name \"{name}\" (also server[{}])",
                        first.get()
                    ),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        let Some((prefix, prefix_path)) = effective_prefix(server, &path) else {
            continue;
        };
        match prefixes.entry(prefix) {
            Entry::Occupied(first) if prefix.is_empty() => p.push(
                prefix_path,
                format!("more than one server has an empty prefix (also server[{}]); at most one server may expose bare names", first.get()),
            ),
            Entry::Occupied(first) => p.push(
                prefix_path,
                format!("two servers would share prefix \"{prefix}{NAMESPACE_SEPARATOR}\" (also server[{}]); set a distinct `prefix`", first.get()),
            ),
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }
}

/// Checks name and prefix syntax and returns (name, effective prefix).
///
/// Beyond the charset, an effective prefix may not contain `__` or end in `_`: then the first
/// `__` in a namespaced name always ends the prefix, so `prefix__tool` splits back unambiguously
/// and two distinct prefixes can never produce the same namespaced name.
fn name_and_prefix(raw: &RawServer, path: &str, p: &mut Problems) -> (String, String) {
    let name = raw.name.clone().unwrap_or_default();
    if raw.name.is_none() {
        p.push(
            format!("{path}.name"),
            "missing; every server needs a unique name",
        );
    } else if !is_name(&name) {
        p.push(format!("{path}.name"), "must match [A-Za-z0-9_-]+");
    }
    if let Some(prefix) = &raw.prefix {
        if !prefix.is_empty() && !is_name(prefix) {
            p.push(
                format!("{path}.prefix"),
                "must match [A-Za-z0-9_-]+ or be \"\"",
            );
        }
    }
    let Some((prefix, prefix_path)) = effective_prefix(raw, path) else {
        return (name, String::new());
    };
    if prefix.contains(NAMESPACE_SEPARATOR) || prefix.ends_with('_') {
        let hint = if raw.prefix.is_none() {
            "; set a `prefix` without it"
        } else {
            ""
        };
        p.push(
            prefix_path,
            format!("\"{prefix}\" cannot be used as a prefix: it contains `{NAMESPACE_SEPARATOR}` or ends with `_`, which makes namespaced names ambiguous{hint}"),
        );
    }
    (name, prefix.to_owned())
}

/// Validates one `[[server]]`; `None` only when the transport is unknown (nothing else can be
/// checked meaningfully then).
fn validate_server(
    i: usize,
    raw: RawServer,
    gateway: &GatewayConfig,
    env: Env<'_>,
    p: &mut Problems,
) -> Option<ServerConfig> {
    let path = format!("server[{i}]");
    let (name, prefix) = name_and_prefix(&raw, &path, p);
    let Some(transport) = raw.transport else {
        p.push(
            format!("{path}.transport"),
            "missing; set one of \"stdio\", \"http\", \"sse\"",
        );
        return None;
    };
    check_applicable(&raw, transport, &path, p);
    let call_timeout = match raw.call_timeout_ms {
        None => gateway.call_timeout,
        Some(ms) => positive_ms(ms, &format!("{path}.call_timeout_ms"), p),
    };
    let pool_size = raw.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
    let mut server = ServerConfig {
        name,
        prefix,
        transport,
        url: None,
        tls: None,
        headers: Vec::new(),
        command: None,
        args: Vec::new(),
        env: Vec::new(),
        cwd: None,
        required: raw.required.unwrap_or(DEFAULT_REQUIRED),
        call_timeout,
        pool_size: bounded(pool_size, MAX_POOL_SIZE, &format!("{path}.pool_size"), p),
        stateless: DEFAULT_STATELESS,
    };
    if transport.is_remote() {
        remote_fields(&mut server, raw, &path, env, p);
    } else {
        stdio_fields(&mut server, raw, &path, env, p);
    }
    Some(server)
}

/// Rejects keys written for the wrong transport: they would be silently ignored otherwise,
/// and a `url` on a stdio server almost always means the transport is what is wrong.
fn check_applicable(raw: &RawServer, transport: Transport, path: &str, p: &mut Problems) {
    let remote = transport.is_remote();
    let keys = [
        ("url", raw.url.is_some(), remote),
        ("ca_file", raw.ca_file.is_some(), remote),
        ("headers", raw.headers.is_some(), remote),
        ("pool_size", raw.pool_size.is_some(), remote),
        ("command", raw.command.is_some(), !remote),
        ("args", raw.args.is_some(), !remote),
        ("env", raw.env.is_some(), !remote),
        ("cwd", raw.cwd.is_some(), !remote),
        ("stateless", raw.stateless.is_some(), !remote),
    ];
    for (key, present, applies) in keys {
        if present && !applies {
            p.push(
                format!("{path}.{key}"),
                format!("not applicable to transport \"{transport}\""),
            );
        }
    }
}

fn remote_fields(
    server: &mut ServerConfig,
    raw: RawServer,
    path: &str,
    env: Env<'_>,
    p: &mut Problems,
) {
    let url_path = format!("{path}.url");
    match raw.url {
        None => p.push(
            &url_path,
            format!("required for transport \"{}\"", server.transport),
        ),
        Some(text) => {
            if let Some(text) = expand_at(&text, &url_path, env, p) {
                // The expanded text is not echoed: it may carry a token from the environment.
                match Url::parse(&text) {
                    Ok(url) => server.url = Some(url),
                    Err(reason) => p.push(&url_path, format!("invalid URL: {reason}")),
                }
            }
        }
    }
    server.tls = client_tls(server.url.as_ref(), raw.ca_file, path, &url_path, env, p);
    server.headers = headers(raw.headers.unwrap_or_default(), path, env, p);
}

fn headers(
    map: BTreeMap<String, String>,
    path: &str,
    env: Env<'_>,
    p: &mut Problems,
) -> Vec<(String, String)> {
    let parent = format!("{path}.headers");
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let key_path = join(&parent, &name);
        let lower = name.to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(is_tchar) {
            p.push(
                key_path,
                "invalid header name (allowed: letters, digits and !#$%&'*+-.^_`|~)",
            );
        } else if MANAGED_HEADERS.contains(&lower.as_str()) {
            p.push(
                key_path,
                format!("`{name}` is set by the gateway and cannot be configured"),
            );
        } else if !seen.insert(lower) {
            p.push(key_path, "duplicate header (names are case-insensitive)");
        } else if let Some(value) = expand_at(&value, &key_path, env, p) {
            // RFC 9110 field values: no control characters except horizontal tab.
            if value.chars().any(|c| c.is_control() && c != '\t') {
                p.push(
                    key_path,
                    "header value must not contain CR, LF, NUL or other control characters",
                );
            } else {
                out.push((name, value));
            }
        }
    }
    out
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn stdio_fields(
    server: &mut ServerConfig,
    raw: RawServer,
    path: &str,
    env: Env<'_>,
    p: &mut Problems,
) {
    let command_path = format!("{path}.command");
    match raw.command {
        None => p.push(command_path, "required for transport \"stdio\""),
        Some(command) => server.command = os_string(&command, &command_path, env, p),
    }
    for (i, arg) in raw.args.unwrap_or_default().into_iter().enumerate() {
        let arg_path = format!("{path}.args[{i}]");
        if let Some(arg) = expand_at(&arg, &arg_path, env, p) {
            if arg.contains('\0') {
                p.push(arg_path, "must not contain NUL");
            } else {
                server.args.push(arg);
            }
        }
    }
    let parent = format!("{path}.env");
    for (key, value) in raw.env.unwrap_or_default() {
        let key_path = join(&parent, &key);
        if key.is_empty() || key.contains(['=', '\0']) {
            p.push(
                key_path,
                "invalid environment variable name (empty, or contains `=` or NUL)",
            );
        } else if let Some(value) = expand_at(&value, &key_path, env, p) {
            if value.contains('\0') {
                p.push(key_path, "must not contain NUL");
            } else {
                server.env.push((key, value));
            }
        }
    }
    if let Some(cwd) = raw.cwd {
        server.cwd = os_string(&cwd, &format!("{path}.cwd"), env, p).map(PathBuf::from);
    }
    // One supervised child per worker (runtime::lanes); the catalog comes from one of them.
    server.stateless = raw.stateless.unwrap_or(DEFAULT_STATELESS);
}

/// Expands a value passed to the OS (program, directory): it must end up non-empty, NUL-free.
pub(super) fn os_string(text: &str, path: &str, env: Env<'_>, p: &mut Problems) -> Option<String> {
    let value = expand_at(text, path, env, p)?;
    if value.is_empty() || value.contains('\0') {
        p.push(path, "must be non-empty and must not contain NUL");
        return None;
    }
    Some(value)
}

/// Expands `${VAR}`s, recording all problems in the value as one error at `path`.
fn expand_at(text: &str, path: &str, env: Env<'_>, p: &mut Problems) -> Option<String> {
    match expand(text, env) {
        Ok(value) => Some(value),
        Err(problems) => {
            p.push(path, problems.join("; "));
            None
        }
    }
}
