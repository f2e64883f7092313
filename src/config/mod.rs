//! Configuration: the TOML file, `${VAR}` expansion, and validate-everything-at-once.
//!
//! Loading is three passes, each in its own file:
//!
//! 1. `raw` — TOML text into serde shapes. Every key is checked on its own, so *all*
//!    unknown keys and wrong types are reported, each with its exact key path.
//! 2. `expand` — `${VAR}`, `${VAR:-default}` and `$$` in the string values that commonly carry
//!    secrets or machine-specific paths (url, header values, command, args, env values, cwd).
//! 3. `validate` — raw shapes into the typed [`Config`] below, collecting every semantic problem.
//!
//! The result is either a fully valid [`Config`] or [`ConfigErrors`] listing every problem found,
//! never just the first: an operator fixing a config file should need one round trip, not ten.
//! `docs/CONFIG.md` is the user-facing reference for every key documented here.

pub mod cli;
pub mod diff;
mod expand;
mod raw;
pub mod tls;
mod url;
mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_tls;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use self::tls::{ClientTls, FrontTls};
pub use self::url::{Scheme, Url};

/// Joins a server's prefix and a downstream item name: `prefix + "__" + name`.
pub const NAMESPACE_SEPARATOR: &str = "__";

/// Default `gateway.listen`: the MCP endpoint (Streamable HTTP at `/mcp`), loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
/// Default `gateway.admin_listen`: metrics, health and the admin API, loopback only.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8788";
/// Default `gateway.workers`: 0 means one worker per available core.
pub const DEFAULT_WORKERS: usize = 0;
/// Default `gateway.server_name`: the `serverInfo.name` the gateway reports.
pub const DEFAULT_SERVER_NAME: &str = "ringgate";
/// Default `gateway.shutdown_timeout_ms`: how long in-flight work may drain on shutdown.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 10_000;
/// Default `gateway.call_timeout_ms`: per-call downstream timeout, reset by progress.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 60_000;
/// Default `gateway.input_timeout_ms`: how long a call that asked the client for input (the era
/// bridge: a parked call, a bridged ask) waits for the client's answer before it is cancelled.
pub const DEFAULT_INPUT_TIMEOUT_MS: u64 = 300_000;
/// Default `gateway.page_size`: items per page in merged list results.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Default `gateway.unavailable`: a down server's catalog entries are omitted.
pub const DEFAULT_UNAVAILABLE: Unavailable = Unavailable::Omit;

/// Default `gateway.limits.max_header_bytes`: total request head size (request line + headers).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default `gateway.limits.max_headers`: number of request header fields.
pub const DEFAULT_MAX_HEADERS: usize = 64;
/// Default `gateway.limits.max_body_bytes`: larger request bodies are answered with 413.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Default `gateway.limits.header_read_timeout_ms`: time allowed to receive a request head.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// Default `gateway.limits.idle_timeout_ms`: an idle keep-alive connection is closed after this.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 60_000;
/// Default `gateway.limits.stream_keepalive_ms`: a quiet event stream (a GET stream, `/sse`, a
/// `subscriptions/listen` stream) gets a keep-alive comment after this long, so intermediaries keep
/// it open and a vanished client is noticed.
pub const DEFAULT_STREAM_KEEPALIVE_MS: u64 = 25_000;
/// Default `gateway.limits.max_response_bytes`: cap on one downstream reply body.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Default `gateway.limits.max_sse_event_bytes`: cap on one server-sent event.
pub const DEFAULT_MAX_SSE_EVENT_BYTES: usize = 4 * 1024 * 1024;
/// Default `gateway.limits.max_json_depth`: nesting depth accepted in JSON bodies.
pub const DEFAULT_MAX_JSON_DEPTH: usize = 128;
/// Default `gateway.limits.max_sessions`: concurrent front sessions across the gateway.
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

/// Default `server.required`: readiness waits for the server.
pub const DEFAULT_REQUIRED: bool = true;
/// Default `server.pool_size`: keep-alive connections per worker to one http/sse server.
pub const DEFAULT_POOL_SIZE: usize = 4;
/// Default `server.stateless`: one shared stdio child rather than one per worker.
pub const DEFAULT_STATELESS: bool = false;

/// Upper bound for `gateway.workers`; more is almost certainly a typo.
pub const MAX_WORKERS: usize = 1024;
/// Upper bound for `gateway.page_size`.
pub const MAX_PAGE_SIZE: usize = 10_000;
/// Upper bound for `server.pool_size`.
pub const MAX_POOL_SIZE: usize = 1024;
/// Upper bound for `gateway.limits.max_header_bytes`.
pub const MAX_HEADER_BYTES_CEILING: usize = 1024 * 1024;
/// Upper bound for `gateway.limits.max_headers`.
pub const MAX_HEADERS_CEILING: usize = 1024;
/// Upper bound for `gateway.limits.max_json_depth`; deeper nesting risks stack exhaustion.
pub const MAX_JSON_DEPTH_CEILING: usize = 1024;
/// Upper bound for the byte-size limits (body, response, SSE event): 1 GiB.
pub const MAX_BYTES_CEILING: usize = 1024 * 1024 * 1024;

/// A fully validated configuration. Every field is resolved (defaults applied, `0 workers`
/// turned into a core count, timeouts inherited), so consumers never re-derive anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The `[gateway]` table.
    pub gateway: GatewayConfig,
    /// The `[[server]]` entries, in file order.
    pub servers: Vec<ServerConfig>,
    /// The file this was loaded from; `None` when parsed from a string.
    pub source: Option<PathBuf>,
}

/// The `[gateway]` table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Front MCP listener (Streamable HTTP at `/mcp`).
    pub listen: SocketAddr,
    /// Admin listener (`/metrics`, `/healthz`, `/readyz`, `/v1/...`); differs from `listen`.
    pub admin_listen: SocketAddr,
    /// Worker threads, resolved: a configured 0 becomes the available parallelism.
    pub workers: usize,
    /// Extra allowed `Origin` values, lowercased, exact match (loopback origins always allowed).
    pub allowed_origins: Vec<String>,
    /// Extra allowed `Host` values, lowercased (loopback hosts and `listen` always allowed).
    pub allowed_hosts: Vec<String>,
    /// `serverInfo.name` reported to clients.
    pub server_name: String,
    /// Drain time on shutdown.
    pub shutdown_timeout: Duration,
    /// Default per-call downstream timeout (reset by progress notifications).
    pub call_timeout: Duration,
    /// How long a call waiting for the client's input (era bridge) may wait.
    pub input_timeout: Duration,
    /// Items per page in merged list results (>= 1).
    pub page_size: usize,
    /// What a down server's catalog entries do.
    pub unavailable: Unavailable,
    /// Resource limits on the front listener and downstream replies.
    pub limits: Limits,
    /// TLS termination on the front listener (`[gateway.tls]`); `None` serves plain HTTP.
    pub tls: Option<FrontTls>,
}

/// The `[gateway.limits]` table, validated: every value is > 0 and below its ceiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum request head size in bytes.
    pub max_header_bytes: usize,
    /// Maximum number of request header fields.
    pub max_headers: usize,
    /// Maximum request body size in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Time allowed to receive a complete request head.
    pub header_read_timeout: Duration,
    /// Idle keep-alive connections are closed after this.
    pub idle_timeout: Duration,
    /// A quiet event stream gets a keep-alive comment after this long.
    pub stream_keepalive: Duration,
    /// Maximum downstream reply body size in bytes.
    pub max_response_bytes: usize,
    /// Maximum size of one server-sent event in bytes.
    pub max_sse_event_bytes: usize,
    /// Maximum JSON nesting depth.
    pub max_json_depth: usize,
    /// Maximum concurrent front sessions.
    pub max_sessions: usize,
}

impl Default for Limits {
    /// The documented defaults (`DEFAULT_*`), handy for tests of other modules.
    fn default() -> Self {
        Limits {
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_read_timeout: Duration::from_millis(DEFAULT_HEADER_READ_TIMEOUT_MS),
            idle_timeout: Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS),
            stream_keepalive: Duration::from_millis(DEFAULT_STREAM_KEEPALIVE_MS),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_sse_event_bytes: DEFAULT_MAX_SSE_EVENT_BYTES,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

/// What a down server's catalog entries do (`gateway.unavailable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unavailable {
    /// Leave them out of list results until the server is back.
    Omit,
    /// Keep them listed (from the last known catalog); calls fail with an error.
    Error,
}

/// How the gateway talks to a downstream server (`server.transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A child process speaking MCP over stdin/stdout.
    Stdio,
    /// Streamable HTTP (a single MCP endpoint, POST + optional SSE responses).
    Http,
    /// Legacy HTTP+SSE (GET event stream + POST to the announced endpoint).
    Sse,
}

impl Transport {
    /// The config spelling: `"stdio"`, `"http"` or `"sse"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
            Transport::Sse => "sse",
        }
    }

    /// True for transports reached over the network (`http`, `sse`).
    pub fn is_remote(self) -> bool {
        !matches!(self, Transport::Stdio)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[server]]` entry, validated. Fields that do not apply to the transport hold their
/// neutral value (`None`, empty, or the default) — validation rejects them if they were set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerConfig {
    /// Unique server name (`[A-Za-z0-9_-]+`).
    pub name: String,
    /// Effective prefix (defaults to `name`; may be empty for bare names).
    pub prefix: String,
    /// How to reach the server.
    pub transport: Transport,
    /// Endpoint for `http`/`sse`; `None` for `stdio`.
    pub url: Option<Url>,
    /// Client TLS for an `https://` url (webpki roots plus `ca_file`); `None` otherwise.
    pub tls: Option<ClientTls>,
    /// Extra headers sent downstream (`http`/`sse`), env-expanded, sorted by name.
    pub headers: Vec<(String, String)>,
    /// Program to spawn (`stdio`), env-expanded.
    pub command: Option<String>,
    /// Program arguments (`stdio`), env-expanded.
    pub args: Vec<String>,
    /// Extra environment for the child (`stdio`), env-expanded, sorted by name.
    pub env: Vec<(String, String)>,
    /// Child working directory (`stdio`); `None` inherits the gateway's.
    pub cwd: Option<PathBuf>,
    /// Whether `/readyz` waits for this server.
    pub required: bool,
    /// Per-call timeout, resolved with the gateway default.
    pub call_timeout: Duration,
    /// Keep-alive connections per worker (`http`/`sse`).
    pub pool_size: usize,
    /// `stdio`: one child per worker instead of one shared child.
    pub stateless: bool,
}

impl ServerConfig {
    /// A hash of every field, stable across runs of the same build and platform. Reload
    /// reconciliation compares these to decide which servers must be restarted.
    pub fn config_hash(&self) -> u64 {
        let mut hasher = Fnv1a::default();
        self.hash(&mut hasher);
        hasher.finish()
    }

    /// The client-visible name of a downstream item: `prefix__name`, or `name` if the prefix
    /// is empty.
    pub fn namespaced(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            return name.to_owned();
        }
        let mut out =
            String::with_capacity(self.prefix.len() + NAMESPACE_SEPARATOR.len() + name.len());
        out.push_str(&self.prefix);
        out.push_str(NAMESPACE_SEPARATOR);
        out.push_str(name);
        out
    }
}

/// FNV-1a: `std`'s `DefaultHasher` is explicitly allowed to change between Rust releases, and a
/// hand-rolled 64-bit FNV is enough for change detection (not adversarial input).
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where: a key path such as `server[2].url` or `gateway.limits.max_headers`; for TOML
    /// syntax errors `line L, column C`; `<file>` when the file could not be read.
    pub path: String,
    /// What is wrong, phrased so the fix is obvious.
    pub message: String,
}

impl ConfigError {
    /// Builds an error from anything string-like.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a config file, in discovery order (file order, roughly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    /// One `path: message` per line, no trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Parses and validates config text. `env` resolves `${VAR}` references (inject a map in tests,
/// `std::env::var` in production).
///
/// # Errors
///
/// Every problem found, not just the first: a TOML syntax error (alone, as nothing after it
/// can be trusted), or all unknown keys, wrong types, unset variables and invalid values.
pub fn parse_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let mut problems = validate::Problems::default();
    let Some(raw) = raw::parse(text, &mut problems) else {
        return Err(ConfigErrors(problems.into_vec()));
    };
    let config = validate::validate(raw, env, &mut problems);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(problems.into_vec()))
    }
}

/// Reads, parses and validates a config file, expanding `${VAR}` from the process environment.
///
/// # Errors
///
/// An unreadable file is a single error with path `<file>`; otherwise as [`parse_str`].
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError::new(
            "<file>",
            format!("cannot read {}: {e}", path.display()),
        )])
    })?;
    let mut config = parse_str(&text, &|name| std::env::var(name).ok())?;
    config.source = Some(path.to_path_buf());
    Ok(config)
}
