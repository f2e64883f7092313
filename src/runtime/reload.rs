//! Hot reload: a new config applied live, without closing a client connection or failing a call.
//!
//! Triggers: `POST /v1/reload` on the admin listener (the config file again, or a posted TOML
//! body), SIGHUP (`super::reload_on_sighup`), and a poll of the config file (`super::config_file`,
//! every `WATCH_INTERVAL`, debounced, atomic-rename safe; a version is its metadata plus a digest
//! of its contents, and a watch-triggered reload applies exactly the version that settled, never a
//! file caught while being written). All go through one queue ([`Reloader`]) served by one task on
//! the control thread ([`serve`]), so reloads never overlap.
//!
//! A reload is prepare → commit → drain:
//! 1. **prepare**: read and validate the whole config (every error is reported), diff it against
//!    what runs (`config::diff`), bind the new listeners if `gateway.listen` or
//!    `gateway.admin_listen` moved (`super::listeners`), start new and changed servers in fresh
//!    slots and warm them (handshake + list fetch). Nothing served changes yet.
//! 2. **commit**: one snapshot store ([`Control::commit`]); clients get `list_changed` for each
//!    list whose content changed; workers warm pools for the new servers and drop retired ones,
//!    and switch to moved listeners (the old ones stop accepting; connections they accepted stay).
//!    A request keeps the snapshot it loaded, so calls already running finish where they started.
//! 3. **drain**: removed and replaced servers are closed once the calls using them end, bounded by
//!    `gateway.shutdown_timeout_ms` ([`Control::close_retired`]): a stdio child is terminated, an
//!    HTTP+SSE session's stream closed, and a Streamable HTTP session ended with a best-effort
//!    `DELETE` carrying its `Mcp-Session-Id` (from the control thread, bounded). Slot states:
//!    `super::slots`.
//!
//! Failure is safe: an invalid config, a listener address that cannot be bound, or a required
//! server that cannot start, leaves everything as it was (listeners bound and servers started for
//! the reload are dropped) and is reported in the log, the `/v1/reload` answer, `/v1/servers` and
//! the metrics. An optional server (`required = false`) that cannot start does not fail the
//! reload: it is applied down and retried with backoff, as at startup. The worker count needs a
//! restart (how many cores a thread-per-core process runs on is decided when it starts); a change
//! to it is reported (`restartRequired`) and the rest of the reload still applies.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::config_file::{read_file, FileRead, FileStamp};
use super::control::Control;
use super::listeners::Listening;
use crate::catalog::ListKind;
use crate::config::diff::{self, GatewayChanges, Placement};
use crate::config::{self, Config, ConfigError};

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `POST /v1/reload`, or an in-process caller of [`Reloader::reload`].
    Api,
    /// SIGHUP.
    Signal,
    /// The config file changed on disk.
    File,
}

impl Trigger {
    /// The spelling in logs and the admin API.
    pub fn label(self) -> &'static str {
        match self {
            Trigger::Api => "api",
            Trigger::Signal => "signal",
            Trigger::File => "file",
        }
    }
}

/// Where the new config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadSource {
    /// The file the gateway was started with (`Config::source`), read again.
    File,
    /// TOML text (a `POST /v1/reload` body). `${VAR}` expands from the process environment.
    Text(String),
}

/// The outcome of one reload.
pub type ReloadResult = Result<ReloadReport, ReloadError>;

/// One queued reload.
pub struct ReloadRequest {
    source: ReloadSource,
    trigger: Trigger,
    reply: Option<async_channel::Sender<ReloadResult>>,
}

/// The way to ask for reloads from any thread (cheap to clone).
#[derive(Clone)]
pub struct Reloader {
    tx: async_channel::Sender<ReloadRequest>,
}

impl Reloader {
    /// A reloader and the queue [`serve`] consumes.
    pub fn channel() -> (Reloader, async_channel::Receiver<ReloadRequest>) {
        let (tx, rx) = async_channel::unbounded();
        (Reloader { tx }, rx)
    }

    /// Queues a reload without waiting for it; `false` when the gateway is shutting down.
    pub fn trigger(&self, source: ReloadSource, trigger: Trigger) -> bool {
        let request = ReloadRequest {
            source,
            trigger,
            reply: None,
        };
        self.tx.try_send(request).is_ok()
    }

    /// Queues a reload and waits for its outcome.
    pub async fn reload(&self, source: ReloadSource, trigger: Trigger) -> ReloadResult {
        let (reply, outcome) = async_channel::bounded(1);
        let request = ReloadRequest {
            source,
            trigger,
            reply: Some(reply),
        };
        self.tx
            .send(request)
            .await
            .map_err(|_| ReloadError::Unavailable)?;
        outcome.recv().await.map_err(|_| ReloadError::Unavailable)?
    }

    /// [`Reloader::reload`] for callers outside any async runtime (tests, embedding code).
    pub fn reload_blocking(&self, source: ReloadSource) -> ReloadResult {
        let (reply, outcome) = async_channel::bounded(1);
        let request = ReloadRequest {
            source,
            trigger: Trigger::Api,
            reply: Some(reply),
        };
        self.tx
            .send_blocking(request)
            .map_err(|_| ReloadError::Unavailable)?;
        outcome
            .recv_blocking()
            .map_err(|_| ReloadError::Unavailable)?
    }

    /// Refuses further reloads (shutdown).
    pub fn close(&self) {
        self.tx.close();
    }
}

/// What a successful reload did.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    /// What asked for it.
    pub trigger: Trigger,
    /// The configuration generation now in force (1 = the startup config).
    pub config_generation: u64,
    /// The snapshot generation now serving.
    pub snapshot_generation: u64,
    /// Whether anything changed (an identical config publishes nothing).
    pub changed_anything: bool,
    /// Servers started for the first time.
    pub added: Vec<String>,
    /// Servers stopped for good (drained, then closed).
    pub removed: Vec<String>,
    /// Servers restarted with a new config (the old instance is drained, then closed).
    pub changed: Vec<String>,
    /// Servers kept as they were (connections, sessions and processes untouched).
    pub unchanged: Vec<String>,
    /// Optional servers (`required = false`) applied although they could not start: (name, why).
    pub down: Vec<(String, String)>,
    /// Gateway keys applied and keys that need a restart.
    pub gateway: GatewayChanges,
    /// Lists whose content changed (clients were sent `list_changed` for them).
    pub lists_changed: Vec<&'static str>,
    /// The addresses served once the reload applied (moved listeners included).
    pub listening: Listening,
}

/// Why a reload did not apply (the running config stays in force).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadError {
    /// The config is invalid: every problem found.
    Invalid(Vec<ConfigError>),
    /// No body was posted and the gateway was not started from a file.
    NoSource,
    /// The request itself is unusable (e.g. a body that is not UTF-8).
    BadRequest(String),
    /// Required servers could not be started: (name, why) each.
    ServerFailed(Vec<(String, String)>),
    /// A moved listener address could not be bound (the old listeners keep serving).
    Bind(String),
    /// The config file changed while it was read, or since the watcher saw it settle: it is
    /// being written. Nothing is applied; the watcher applies it once it stays unchanged.
    FileChanging,
    /// The gateway is shutting down.
    Unavailable,
}

impl ReloadError {
    /// The HTTP status `/v1/reload` answers with.
    pub fn status(&self) -> u16 {
        match self {
            ReloadError::Invalid(_) => 422,
            ReloadError::NoSource | ReloadError::BadRequest(_) => 400,
            ReloadError::ServerFailed(_) => 502,
            ReloadError::Bind(_) => 500,
            ReloadError::FileChanging => 409,
            ReloadError::Unavailable => 503,
        }
    }
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::Invalid(errors) => {
                write!(f, "invalid config ({} problem(s))", errors.len())?;
                for e in errors {
                    write!(f, "; {e}")?;
                }
                Ok(())
            }
            ReloadError::NoSource => f.write_str(
                "the gateway was not started from a config file: post the TOML as the body",
            ),
            ReloadError::BadRequest(why) => f.write_str(why),
            ReloadError::Bind(why) => write!(f, "cannot bind the new listener: {why}"),
            ReloadError::ServerFailed(failed) => {
                f.write_str("required server(s) could not start")?;
                for (name, why) in failed {
                    write!(f, "; '{name}': {why}")?;
                }
                Ok(())
            }
            ReloadError::FileChanging => f.write_str(
                "the config file changed while it was read (still being written?); \
                 it is applied once it stays unchanged",
            ),
            ReloadError::Unavailable => f.write_str("the gateway is shutting down"),
        }
    }
}

/// Reload bookkeeping on the control thread (admin API and metrics read it).
#[derive(Debug, Default)]
pub struct ReloadStatus {
    /// The config file the gateway was started with, if any.
    pub source: Option<PathBuf>,
    /// Configurations applied: 1 for the startup config, +1 per successful reload.
    pub config_generation: u64,
    /// Successful reloads.
    pub ok_total: u64,
    /// Failed reloads.
    pub error_total: u64,
    /// The last reload: when, what asked for it, whether it applied.
    pub last: Option<(SystemTime, Trigger, bool)>,
    /// The last failure: when and why.
    pub last_error: Option<(SystemTime, String)>,
    /// When the last reload applied.
    pub last_ok: Option<SystemTime>,
    /// The file as it was when last read (the watcher does not reload it again).
    pub(super) file_stamp: Option<FileStamp>,
    /// The file as the watcher last saw it settle: a watch-triggered reload applies exactly that
    /// version, or nothing.
    pub(super) settled: Option<FileStamp>,
}

impl ReloadStatus {
    /// The status at startup, for a gateway started from `source` (stamped now).
    pub fn new(source: Option<PathBuf>) -> ReloadStatus {
        ReloadStatus {
            file_stamp: source.as_deref().and_then(FileStamp::of),
            source,
            config_generation: 1,
            ..ReloadStatus::default()
        }
    }
}

/// Serves the reload queue, one reload at a time, until every [`Reloader`] is closed or dropped.
pub async fn serve(control: Rc<Control>, requests: async_channel::Receiver<ReloadRequest>) {
    while let Ok(request) = requests.recv().await {
        let result = apply(&control, &request.source, request.trigger).await;
        record(&control, request.trigger, &result);
        if let Some(reply) = request.reply {
            let _ = reply.try_send(result);
        }
    }
}

/// Counts and logs a reload's outcome.
fn record(control: &Control, trigger: Trigger, result: &ReloadResult) {
    // The watcher saw the file settle, then it changed again: not a failure, and nothing to
    // report (a file being written must not leave an error behind); its next settled version
    // is applied.
    if trigger == Trigger::File && matches!(result, Err(ReloadError::FileChanging)) {
        log::info!("config file changed again while being reloaded: waiting for it to settle");
        return;
    }
    let now = SystemTime::now();
    let mut st = control.reload.borrow_mut();
    st.last = Some((now, trigger, result.is_ok()));
    match result {
        Ok(r) => {
            st.ok_total += 1;
            st.last_ok = Some(now);
            st.config_generation = r.config_generation;
            log::info!(
                "reload ({}): config generation {}; added {:?}, removed {:?}, changed {:?}{}",
                trigger.label(),
                r.config_generation,
                r.added,
                r.removed,
                r.changed,
                match r.gateway.restart_required.is_empty() {
                    true => String::new(),
                    false => format!("; needs a restart: {:?}", r.gateway.restart_required),
                }
            );
        }
        Err(e) => {
            st.error_total += 1;
            st.last_error = Some((now, e.to_string()));
            log::warn!(
                "reload ({}) failed; the running config stays: {e}",
                trigger.label()
            );
        }
    }
}

/// Reads and validates the new config. From the file: one settled version, exactly the one the
/// watcher saw settle when it asked.
fn read(control: &Control, source: &ReloadSource, trigger: Trigger) -> Result<Config, ReloadError> {
    match source {
        ReloadSource::File => {
            let path = control
                .reload
                .borrow()
                .source
                .clone()
                .ok_or(ReloadError::NoSource)?;
            let (bytes, stamp) = match read_file(&path) {
                Ok(read) => read,
                Err(FileRead::Changing) => return Err(ReloadError::FileChanging),
                Err(FileRead::Unreadable(e)) => {
                    let why = format!("cannot read {}: {e}", path.display());
                    return Err(ReloadError::Invalid(vec![ConfigError::new("<file>", why)]));
                }
            };
            if trigger == Trigger::File && control.reload.borrow().settled.as_ref() != Some(&stamp)
            {
                return Err(ReloadError::FileChanging);
            }
            // The watcher does not read this version again, valid or not.
            control.reload.borrow_mut().file_stamp = Some(stamp);
            let text = String::from_utf8(bytes).map_err(|_| {
                let why = format!("{} is not UTF-8", path.display());
                ReloadError::Invalid(vec![ConfigError::new("<file>", why)])
            })?;
            let mut config = config::parse_str(&text, &|name| std::env::var(name).ok())
                .map_err(|e| ReloadError::Invalid(e.0))?;
            config.source = Some(path);
            Ok(config)
        }
        ReloadSource::Text(text) => config::parse_str(text, &|name| std::env::var(name).ok())
            .map_err(|e| ReloadError::Invalid(e.0)),
    }
}

/// One reload: prepare, commit, drain.
async fn apply(control: &Rc<Control>, source: &ReloadSource, trigger: Trigger) -> ReloadResult {
    let config = read(control, source, trigger)?;
    let running = control.gateway();
    let gateway = diff::gateway_changes(&running, &config.gateway);
    let effective = Arc::new(diff::effective_gateway(&running, &config.gateway));
    let plan = diff::plan_servers(&control.current(), &config.servers);
    // Bound before anything starts; dropped (closed) if the reload fails further on.
    let moved = control.bind_moved(&running, &config.gateway)?;

    let (order, down) = start_servers(control, &plan, &config).await?;

    // Commit: one snapshot store. Then drain what left.
    let changed_anything = !plan.is_noop() || *effective != *running;
    let mut lists_changed = Vec::new();
    if changed_anything {
        let deadline = Instant::now() + effective.shutdown_timeout;
        // Requests still holding the snapshot being replaced may still use retiring servers.
        let previous = Arc::downgrade(&control.gw.snapshot.load_full());
        let (lists, retired) = control.commit(order, effective);
        control.serve_moved(moved);
        lists_changed = lists.iter().map(|k| list_label(*k)).collect();
        for slot in retired {
            let (control, previous) = (control.clone(), previous.clone());
            monoio::spawn(async move { control.close_retired(slot, deadline, previous).await });
        }
    }
    Ok(ReloadReport {
        trigger,
        config_generation: control.reload.borrow().config_generation + 1,
        snapshot_generation: control.gw.snapshot.load().generation,
        changed_anything,
        added: plan.added,
        removed: plan.removed,
        changed: plan.changed,
        unchanged: plan.unchanged,
        down,
        gateway,
        lists_changed,
        listening: control.listening(),
    })
}

/// Prepare: new and changed servers start in fresh slots, concurrently, before anything is
/// served. Returns the slots of the new config in its order, and the optional servers that could
/// not start; a required one that could not start fails the reload (what was started is stopped).
async fn start_servers(
    control: &Rc<Control>,
    plan: &diff::ServerPlan,
    config: &Config,
) -> Result<(Vec<usize>, Vec<(String, String)>), ReloadError> {
    let mut order = Vec::with_capacity(plan.placements.len());
    let mut started = Vec::new();
    for (placement, server) in plan.placements.iter().zip(&config.servers) {
        match placement {
            Placement::Keep(slot) => order.push(*slot),
            Placement::Start => {
                let link = control.add_pending(Arc::new(server.clone()));
                order.push(link.slot);
                started.push(link);
            }
        }
    }
    let joins: Vec<_> = started
        .iter()
        .map(|link| {
            let (control, slot) = (control.clone(), link.slot);
            monoio::spawn(async move { control.connect(slot).await })
        })
        .collect();
    for j in joins {
        j.await;
    }
    let (mut failed, mut down) = (Vec::new(), Vec::new());
    for link in started.iter().filter(|l| !l.is_up()) {
        let why = link
            .health()
            .last_error
            .map_or_else(|| "did not start".to_string(), |(_, e)| e);
        match link.config.required {
            true => failed.push((link.config.name.clone(), why)),
            false => down.push((link.config.name.clone(), why)),
        }
    }
    if !failed.is_empty() {
        for link in &started {
            control.discard(link.slot);
        }
        return Err(ReloadError::ServerFailed(failed));
    }
    Ok((order, down))
}

/// The name a changed list is reported by (resources and templates share one notification).
fn list_label(kind: ListKind) -> &'static str {
    match kind {
        ListKind::Tools => "tools",
        ListKind::Prompts => "prompts",
        ListKind::Resources | ListKind::Templates => "resources",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_changing_is_a_conflict_not_a_config_error() {
        assert_eq!(ReloadError::FileChanging.status(), 409);
        assert!(ReloadError::FileChanging
            .to_string()
            .contains("stays unchanged"));
    }
}
