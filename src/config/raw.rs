//! The config file's shapes exactly as written, before expansion and validation.
//!
//! Every struct denies unknown fields so a typo (`urll = ...`) is an error, not a silently
//! ignored key. Serde stops at the first error, which would make an operator fix one typo per
//! round trip; so [`parse`] first checks every key *on its own* (deserializing a one-key table
//! into the same struct) to report all unknown keys and wrong types with their exact paths,
//! drops the bad keys, and only then deserializes the cleaned tree.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::{Table, Value};

use super::validate::Problems;
use super::{
    Transport, Unavailable, DEFAULT_ADMIN_LISTEN, DEFAULT_CALL_TIMEOUT_MS,
    DEFAULT_HEADER_READ_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_LISTEN,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_HEADERS, DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_JSON_DEPTH,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SSE_EVENT_BYTES,
    DEFAULT_PAGE_SIZE, DEFAULT_SERVER_NAME, DEFAULT_SHUTDOWN_TIMEOUT_MS,
    DEFAULT_STREAM_KEEPALIVE_MS, DEFAULT_UNAVAILABLE, DEFAULT_WORKERS,
};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawConfig {
    /// `[gateway]`.
    pub gateway: RawGateway,
    /// `[[server]]`, in file order.
    pub server: Vec<RawServer>,
}

/// `[gateway]`; see `GatewayConfig` for meanings. Defaults are applied here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawGateway {
    /// Front listener address.
    pub listen: String,
    /// Admin listener address.
    pub admin_listen: String,
    /// Worker count; 0 = one per core.
    pub workers: usize,
    /// Extra allowed `Origin` values.
    pub allowed_origins: Vec<String>,
    /// Extra allowed `Host` values.
    pub allowed_hosts: Vec<String>,
    /// `serverInfo.name`.
    pub server_name: String,
    /// Shutdown drain time, milliseconds.
    pub shutdown_timeout_ms: u64,
    /// Default per-call downstream timeout, milliseconds.
    pub call_timeout_ms: u64,
    /// How long a call waiting for the client's input may wait, milliseconds.
    pub input_timeout_ms: u64,
    /// Items per page in merged lists.
    pub page_size: usize,
    /// What a down server's catalog entries do.
    pub unavailable: Unavailable,
    /// `[gateway.limits]`.
    pub limits: RawLimits,
    /// `[gateway.tls]`: TLS termination on the front listener.
    pub tls: Option<RawTls>,
}

impl Default for RawGateway {
    fn default() -> Self {
        RawGateway {
            listen: DEFAULT_LISTEN.to_owned(),
            admin_listen: DEFAULT_ADMIN_LISTEN.to_owned(),
            workers: DEFAULT_WORKERS,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            server_name: DEFAULT_SERVER_NAME.to_owned(),
            shutdown_timeout_ms: DEFAULT_SHUTDOWN_TIMEOUT_MS,
            call_timeout_ms: DEFAULT_CALL_TIMEOUT_MS,
            input_timeout_ms: super::DEFAULT_INPUT_TIMEOUT_MS,
            page_size: DEFAULT_PAGE_SIZE,
            unavailable: DEFAULT_UNAVAILABLE,
            limits: RawLimits::default(),
            tls: None,
        }
    }
}

/// `[gateway.tls]`; see `FrontTls`. Both keys are required when the table is present.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawTls {
    /// PEM certificate chain, leaf first.
    pub cert_file: Option<String>,
    /// PEM private key.
    pub key_file: Option<String>,
}

/// `[gateway.limits]`; see `Limits` for meanings. Defaults are applied here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLimits {
    /// Maximum request head bytes.
    pub max_header_bytes: usize,
    /// Maximum request header count.
    pub max_headers: usize,
    /// Maximum request body bytes.
    pub max_body_bytes: usize,
    /// Request head read timeout, milliseconds.
    pub header_read_timeout_ms: u64,
    /// Keep-alive idle timeout, milliseconds.
    pub idle_timeout_ms: u64,
    /// Keep-alive comment interval on quiet event streams, milliseconds.
    pub stream_keepalive_ms: u64,
    /// Maximum downstream reply body bytes.
    pub max_response_bytes: usize,
    /// Maximum bytes of one server-sent event.
    pub max_sse_event_bytes: usize,
    /// Maximum JSON nesting depth.
    pub max_json_depth: usize,
    /// Maximum concurrent front sessions.
    pub max_sessions: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_read_timeout_ms: DEFAULT_HEADER_READ_TIMEOUT_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            stream_keepalive_ms: DEFAULT_STREAM_KEEPALIVE_MS,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_sse_event_bytes: DEFAULT_MAX_SSE_EVENT_BYTES,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

/// One `[[server]]`; see `ServerConfig` for meanings. Everything stays an `Option` because
/// validation must know whether a transport-specific key was *written*, to reject it when it
/// does not apply (e.g. `url` on a stdio server).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawServer {
    /// Unique name; required.
    pub name: Option<String>,
    /// `stdio`, `http` or `sse`; required.
    pub transport: Option<Transport>,
    /// Endpoint (http/sse).
    pub url: Option<String>,
    /// Extra trust roots for an https endpoint (http/sse).
    pub ca_file: Option<String>,
    /// Extra downstream headers (http/sse).
    pub headers: Option<BTreeMap<String, String>>,
    /// Program to spawn (stdio).
    pub command: Option<String>,
    /// Program arguments (stdio).
    pub args: Option<Vec<String>>,
    /// Extra child environment (stdio).
    pub env: Option<BTreeMap<String, String>>,
    /// Child working directory (stdio).
    pub cwd: Option<String>,
    /// Namespace prefix override.
    pub prefix: Option<String>,
    /// Whether readiness waits for this server.
    pub required: Option<bool>,
    /// Per-server call timeout, milliseconds.
    pub call_timeout_ms: Option<u64>,
    /// Keep-alive connections per worker (http/sse).
    pub pool_size: Option<usize>,
    /// One child per worker (stdio), for servers that keep no state between calls: each worker
    /// sends its calls to its own child (a sibling while its own one restarts).
    pub stateless: Option<bool>,
}

/// Parses TOML text into raw shapes. A syntax error is fatal (returns `None`) because nothing
/// after it can be trusted; key and type errors are recorded and the offending keys dropped so
/// validation can still report the rest of the file.
pub(super) fn parse(text: &str, problems: &mut Problems) -> Option<RawConfig> {
    let mut root: Table = match toml::from_str(text) {
        Ok(table) => table,
        Err(e) => {
            problems.push(position(text, e.span()), one_line(e.message()));
            return None;
        }
    };
    if let Some(gateway) = root.remove("gateway") {
        if let Some(gateway) = clean_gateway(gateway, problems) {
            root.insert("gateway".to_owned(), gateway);
        }
    }
    if let Some(servers) = root.remove("server") {
        if let Some(servers) = clean_servers(servers, problems) {
            root.insert("server".to_owned(), servers);
        }
    }
    let root = clean_struct::<RawConfig>(Value::Table(root), "", problems)?;
    match RawConfig::deserialize(root) {
        Ok(raw) => Some(raw),
        Err(e) => {
            // Unreachable in practice (every key was checked above); kept as an error, not a panic.
            problems.push("<config>", e.message());
            None
        }
    }
}

/// `[gateway]`: the nested `limits` and `tls` tables are cleaned first so their keys get their
/// own paths.
fn clean_gateway(gateway: Value, problems: &mut Problems) -> Option<Value> {
    let Value::Table(mut table) = gateway else {
        problems.push("gateway", expected_table(&gateway));
        return None;
    };
    if let Some(limits) = table.remove("limits") {
        if let Some(limits) = clean_struct::<RawLimits>(limits, "gateway.limits", problems) {
            table.insert("limits".to_owned(), limits);
        }
    }
    if let Some(tls) = table.remove("tls") {
        if let Some(tls) = clean_struct::<RawTls>(tls, "gateway.tls", problems) {
            table.insert("tls".to_owned(), tls);
        }
    }
    clean_struct::<RawGateway>(Value::Table(table), "gateway", problems)
}

/// `[[server]]`: must be an array of tables; each entry is cleaned with its index in the path.
fn clean_servers(servers: Value, problems: &mut Problems) -> Option<Value> {
    let Value::Array(entries) = servers else {
        problems.push(
            "server",
            format!(
                "expected an array of tables (write `[[server]]`, not `[server]`), found {}",
                servers.type_str()
            ),
        );
        return None;
    };
    let cleaned = entries
        .into_iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            clean_struct::<RawServer>(entry, &format!("server[{i}]"), problems)
        })
        .collect();
    Some(Value::Array(cleaned))
}

/// Checks each key of a table against `T` in isolation, recording one error per bad key and
/// returning the table without them.
fn clean_struct<T: DeserializeOwned>(
    value: Value,
    path: &str,
    problems: &mut Problems,
) -> Option<Value> {
    let Value::Table(table) = value else {
        problems.push(path, expected_table(&value));
        return None;
    };
    let cleaned = table
        .into_iter()
        .filter(|(key, value)| {
            let single: Table = std::iter::once((key.clone(), value.clone())).collect();
            match T::deserialize(single) {
                Ok(_) => true,
                Err(e) => {
                    problems.push(join(path, key), tidy(e.message()));
                    false
                }
            }
        })
        .collect();
    Some(Value::Table(cleaned))
}

/// Serde's unknown-field message lists every valid key, which is the most useful hint we can
/// give; only the wording of the lead-in is adjusted to TOML vocabulary.
fn tidy(message: &str) -> String {
    one_line(message).replacen("unknown field", "unknown key", 1)
}

/// toml's messages may span lines ("invalid string\nexpected ..."); errors print one per line.
fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        "invalid TOML".to_owned()
    } else {
        lines.join("; ")
    }
}

fn expected_table(value: &Value) -> String {
    format!("expected a table, found {}", value.type_str())
}

/// `parent.key`, quoting keys that are not bare TOML keys so the path stays unambiguous.
pub(super) fn join(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// `line L, column C` (1-based, columns in characters) for a byte span into `text`.
fn position(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return "<toml>".to_owned();
    };
    let start = span.start.min(text.len());
    // Spans are char boundaries in practice; step back defensively rather than panic.
    let start = (0..=start)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    format!("line {line}, column {column}")
}
