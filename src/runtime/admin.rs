//! The admin listener: metrics, health, readiness and the read-only admin API.
//!
//! Served on its own address (`gateway.admin_listen`), never on the public listener, by the control
//! thread. Endpoints: `GET /metrics` (Prometheus text; per-core stats are fetched from every worker
//! by message and merged here, so scraping costs the workers nothing but a clone), `GET /healthz`,
//! `GET /readyz` (200 only when every required server is up), `GET /v1/servers`, `GET /v1/catalog`,
//! and `POST /v1/reload` (hot reload: the config file again, or the posted TOML body; answers the
//! diff it applied, or why nothing was applied — see `super::reload`).

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use monoio::net::TcpListener;

use super::control::Control;
use super::reload::{ReloadError, ReloadReport, ReloadSource, Trigger};
use super::WorkerMsg;
use crate::catalog::ListKind;
use crate::telemetry::{prometheus, CoreStats, ServerStats};
use crate::transport::http::{HttpLimits, Method, Request, ServerConn};
use crate::wire::encode::write_json_string;

/// How long a scrape waits for each worker's stats.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// Accepts admin connections until `stop` closes (a reload moved the admin listener; shutdown
/// drops the runtime). Connections already accepted are served to their end either way.
pub async fn serve(control: Rc<Control>, listener: TcpListener, stop: async_channel::Receiver<()>) {
    loop {
        let accepted = monoio::select! {
            a = listener.accept() => a,
            _ = stop.recv() => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let _ = crate::transport::listener::set_cloexec(&stream);
        let control = control.clone();
        monoio::spawn(async move {
            let mut conn = ServerConn::new(stream, HttpLimits::default());
            while let Ok(Some(req)) = conn.read_request().await {
                let (status, ctype, body) = route(&control, &req).await;
                let headers = [("content-type", ctype.as_bytes())];
                if conn
                    .write_response(status, &headers, &[body])
                    .await
                    .is_err()
                    || !conn.keep_alive()
                {
                    break;
                }
            }
        });
    }
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

async fn route(control: &Control, req: &Request) -> (u16, &'static str, Bytes) {
    match (req.method, req.path_str()) {
        (Method::Get, "/metrics") => (
            200,
            "text/plain; version=0.0.4",
            Bytes::from(metrics(control).await),
        ),
        (Method::Get, "/healthz") => (200, TEXT, Bytes::from_static(b"ok\n")),
        (Method::Get, "/readyz") => readyz(control),
        (Method::Get, "/v1/servers") => (200, JSON, Bytes::from(servers_json(control))),
        (Method::Get, "/v1/catalog") => (200, JSON, Bytes::from(catalog_json(control))),
        (Method::Post, "/v1/reload") => reload(control, req).await,
        _ => (404, TEXT, Bytes::from_static(b"not found\n")),
    }
}

/// Gathers every worker's stats (by message) and renders them.
async fn metrics(control: &Control) -> String {
    let workers = control.workers.borrow().clone();
    let mut merged = CoreStats::default();
    let mut streams = 0;
    for w in workers {
        let (tx, rx) = async_channel::bounded(1);
        if w.try_send(WorkerMsg::Scrape(tx)).is_err() {
            continue;
        }
        if let Ok(Ok((stats, open))) = monoio::time::timeout(SCRAPE_TIMEOUT, rx.recv()).await {
            merged.merge(&stats);
            streams += open;
        }
    }
    by_name(&mut merged);
    let snap = control.gw.snapshot.load();
    let servers: Vec<(String, bool, usize)> = snap
        .servers
        .iter()
        .map(|s| (s.link.name.to_string(), s.link.is_up(), s.tools))
        .collect();
    let mut text = prometheus::render(
        &merged,
        &prometheus::Gauges {
            generation: snap.generation,
            open_streams: streams,
            servers: &servers,
        },
    );
    reload_metrics(control, &mut text);
    text
}

/// Merges the per-slot server stats of one name: a server a reload replaced runs in a new slot,
/// and its series must continue, not appear twice.
fn by_name(stats: &mut CoreStats) {
    let mut merged: Vec<ServerStats> = Vec::new();
    for s in std::mem::take(&mut stats.servers).into_iter().flatten() {
        match merged.iter_mut().find(|m| m.name == s.name) {
            Some(m) => {
                m.calls += s.calls;
                m.errors += s.errors;
                m.timeouts += s.timeouts;
                let _ = m.latency.add(&s.latency);
            }
            None => merged.push(s),
        }
    }
    stats.servers = merged.into_iter().map(Some).collect();
}

/// The hot-reload series: outcomes, the config generation, when the last reloads happened.
fn reload_metrics(control: &Control, out: &mut String) {
    use std::fmt::Write;
    let st = control.reload.borrow();
    let at = |t: Option<SystemTime>| t.map_or(0, unix);
    let _ = writeln!(
        out,
        "# HELP ringgate_reload_total Config reloads, by result.\n# TYPE ringgate_reload_total counter\n\
         ringgate_reload_total{{result=\"ok\"}} {}\nringgate_reload_total{{result=\"error\"}} {}",
        st.ok_total, st.error_total
    );
    let _ = writeln!(
        out,
        "# HELP ringgate_config_generation Configs applied since start (1 = the startup config).\n\
         # TYPE ringgate_config_generation gauge\nringgate_config_generation {}",
        st.config_generation
    );
    let _ = writeln!(
        out,
        "# HELP ringgate_reload_last_success_timestamp_seconds When a reload last applied (0: never).\n\
         # TYPE ringgate_reload_last_success_timestamp_seconds gauge\n\
         ringgate_reload_last_success_timestamp_seconds {}",
        at(st.last_ok)
    );
    let _ = writeln!(
        out,
        "# HELP ringgate_reload_last_error_timestamp_seconds When a reload last failed (0: never).\n\
         # TYPE ringgate_reload_last_error_timestamp_seconds gauge\n\
         ringgate_reload_last_error_timestamp_seconds {}",
        at(st.last_error.as_ref().map(|(t, _)| *t))
    );
}

/// `POST /v1/reload`: an empty body reads the config file again; otherwise the body is the new
/// config (TOML). 200 with what was applied, or 4xx/5xx with why nothing was.
async fn reload(control: &Control, req: &Request) -> (u16, &'static str, Bytes) {
    let source = if req.body.iter().all(u8::is_ascii_whitespace) {
        ReloadSource::File
    } else {
        match std::str::from_utf8(&req.body) {
            Ok(text) => ReloadSource::Text(text.to_string()),
            Err(_) => {
                let e = ReloadError::BadRequest("the body must be a UTF-8 TOML config".into());
                return (e.status(), JSON, Bytes::from(error_json(&e)));
            }
        }
    };
    match control.reloader.reload(source, Trigger::Api).await {
        Ok(report) => (200, JSON, Bytes::from(report_json(&report))),
        Err(e) => (e.status(), JSON, Bytes::from(error_json(&e))),
    }
}

fn json_strings<'a>(out: &mut Vec<u8>, items: impl IntoIterator<Item = &'a str>) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_string(out, item);
    }
    out.push(b']');
}

/// A JSON string, or `null`.
fn json_opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_json_string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// `[{"name":..,"error":..}, ...]`
fn json_failures(out: &mut Vec<u8>, failures: &[(String, String)]) {
    out.push(b'[');
    for (i, (name, why)) in failures.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        write_json_string(out, name);
        out.extend_from_slice(b",\"error\":");
        write_json_string(out, why);
        out.push(b'}');
    }
    out.push(b']');
}

/// The `/v1/reload` answer for a reload that applied.
pub fn report_json(r: &ReloadReport) -> String {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"{\"ok\":true,\"trigger\":");
    write_json_string(&mut out, r.trigger.label());
    out.extend_from_slice(
        format!(
            ",\"configGeneration\":{},\"snapshotGeneration\":{},\"changedAnything\":{}",
            r.config_generation, r.snapshot_generation, r.changed_anything
        )
        .as_bytes(),
    );
    out.extend_from_slice(b",\"servers\":{\"added\":");
    json_strings(&mut out, r.added.iter().map(String::as_str));
    out.extend_from_slice(b",\"removed\":");
    json_strings(&mut out, r.removed.iter().map(String::as_str));
    out.extend_from_slice(b",\"changed\":");
    json_strings(&mut out, r.changed.iter().map(String::as_str));
    out.extend_from_slice(b",\"unchanged\":");
    json_strings(&mut out, r.unchanged.iter().map(String::as_str));
    out.extend_from_slice(b",\"down\":");
    json_failures(&mut out, &r.down);
    out.extend_from_slice(b"},\"gateway\":{\"applied\":");
    json_strings(&mut out, r.gateway.applied.iter().copied());
    out.extend_from_slice(b",\"restartRequired\":");
    json_strings(&mut out, r.gateway.restart_required.iter().copied());
    out.extend_from_slice(b"},\"listsChanged\":");
    json_strings(&mut out, r.lists_changed.iter().copied());
    let addr = |a: Option<std::net::SocketAddr>| a.map(|a| a.to_string());
    out.extend_from_slice(b",\"listening\":{\"listen\":");
    json_opt_string(&mut out, addr(r.listening.front).as_deref());
    out.extend_from_slice(b",\"admin\":");
    json_opt_string(&mut out, addr(r.listening.admin).as_deref());
    out.extend_from_slice(b"}}");
    String::from_utf8(out).unwrap_or_default()
}

/// The `/v1/reload` answer for a reload that did not apply: the summary, and every config
/// problem (`errors`) or every server that could not start (`servers`).
pub fn error_json(e: &ReloadError) -> String {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"ok\":false,\"error\":");
    write_json_string(&mut out, &e.to_string());
    match e {
        ReloadError::Invalid(errors) => {
            out.extend_from_slice(b",\"errors\":[");
            for (i, err) in errors.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"path\":");
                write_json_string(&mut out, &err.path);
                out.extend_from_slice(b",\"message\":");
                write_json_string(&mut out, &err.message);
                out.push(b'}');
            }
            out.push(b']');
        }
        ReloadError::ServerFailed(failed) => {
            out.extend_from_slice(b",\"servers\":");
            json_failures(&mut out, failed);
        }
        _ => {}
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

fn readyz(control: &Control) -> (u16, &'static str, Bytes) {
    let servers = control.servers();
    let down: Vec<&str> = servers
        .iter()
        .filter(|l| l.config.required && !l.is_up())
        .map(|l| &*l.name)
        .collect();
    if down.is_empty() {
        (200, TEXT, Bytes::from_static(b"ready\n"))
    } else {
        (
            503,
            TEXT,
            Bytes::from(format!(
                "not ready: required servers down: {}\n",
                down.join(", ")
            )),
        )
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `GET /v1/servers`: each downstream's state, and the state of hot reload.
pub fn servers_json(control: &Control) -> String {
    let snap = control.gw.snapshot.load();
    let links = control.servers();
    let mut out = Vec::with_capacity(256 * links.len() + 256);
    out.extend_from_slice(b"{\"generation\":");
    out.extend_from_slice(snap.generation.to_string().as_bytes());
    reload_json(control, &mut out);
    out.extend_from_slice(b",\"servers\":[");
    for (i, link) in links.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let h = link.health();
        let session = link.session.load_full();
        out.extend_from_slice(b"{\"name\":");
        write_json_string(&mut out, &link.name);
        out.extend_from_slice(
            format!(
                ",\"up\":{},\"required\":{},\"transport\":",
                link.is_up(),
                link.config.required
            )
            .as_bytes(),
        );
        write_json_string(&mut out, h.transport);
        out.extend_from_slice(b",\"era\":");
        write_json_string(&mut out, h.era);
        out.extend_from_slice(b",\"url\":");
        write_json_string(
            &mut out,
            &link
                .config
                .url
                .as_ref()
                .map(|u| u.to_string())
                .unwrap_or_default(),
        );
        out.extend_from_slice(b",\"prefix\":");
        write_json_string(&mut out, &link.config.prefix);
        out.extend_from_slice(b",\"protocolVersion\":");
        match &session {
            Some(s) => write_json_string(&mut out, &String::from_utf8_lossy(&s.protocol_version)),
            None => out.extend_from_slice(b"null"),
        }
        let pid = link
            .mux
            .load()
            .as_ref()
            .filter(|c| c.pid != 0) // HTTP+SSE sessions have no process
            .map_or("null".to_string(), |c| c.pid.to_string());
        // Every child: one for a shared child, one per worker for a stateless server.
        let pids: Vec<String> = link
            .channels()
            .iter()
            .filter(|c| c.pid != 0)
            .map(|c| c.pid.to_string())
            .collect();
        out.extend_from_slice(
            format!(
                ",\"pid\":{pid},\"pids\":[{}],\"tools\":{},\"upSince\":",
                pids.join(","),
                h.tools
            )
            .as_bytes(),
        );
        match h.up_since {
            Some(t) => out.extend_from_slice(unix(t).to_string().as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"lastError\":");
        match &h.last_error {
            Some((t, e)) => {
                out.extend_from_slice(b"{\"at\":");
                out.extend_from_slice(unix(*t).to_string().as_bytes());
                out.extend_from_slice(b",\"message\":");
                write_json_string(&mut out, e);
                out.push(b'}');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    String::from_utf8(out).unwrap_or_default()
}

/// `,"configGeneration":N,"lastReload":{..}|null,"lastReloadError":{..}|null`
fn reload_json(control: &Control, out: &mut Vec<u8>) {
    let st = control.reload.borrow();
    out.extend_from_slice(format!(",\"configGeneration\":{}", st.config_generation).as_bytes());
    out.extend_from_slice(b",\"lastReload\":");
    match st.last {
        Some((at, trigger, ok)) => {
            out.extend_from_slice(format!("{{\"at\":{},\"trigger\":", unix(at)).as_bytes());
            write_json_string(out, trigger.label());
            out.extend_from_slice(format!(",\"ok\":{ok}}}").as_bytes());
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"lastReloadError\":");
    match &st.last_error {
        Some((at, message)) => {
            out.extend_from_slice(format!("{{\"at\":{},\"message\":", unix(*at)).as_bytes());
            write_json_string(out, message);
            out.push(b'}');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// `GET /v1/catalog`: the merged lists as clients see them (all pages joined).
pub fn catalog_json(control: &Control) -> String {
    let snap = control.gw.snapshot.load();
    let mut out = String::from("{");
    out.push_str(&format!("\"generation\":{}", snap.generation));
    for kind in ListKind::ALL {
        out.push_str(",\"");
        out.push_str(kind.result_key());
        out.push_str("\":[");
        let mut first = true;
        for page in &snap.pages[kind as usize] {
            let text = String::from_utf8_lossy(page);
            // Each page is {"<key>":[items...] ...}: take the array's inside.
            let start = text.find('[').map_or(0, |i| i + 1);
            let end = array_end(&text, start);
            let inner = text[start..end].trim();
            if !inner.is_empty() {
                if !first {
                    out.push(',');
                }
                out.push_str(inner);
                first = false;
            }
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// Index of the `]` closing the array whose contents start at `start` (strings respected).
fn array_end(text: &str, start: usize) -> usize {
    let (mut depth, mut in_str, mut esc) = (0i32, false, false);
    for (i, c) in text[start..].char_indices() {
        match (in_str, esc, c) {
            (true, true, _) => esc = false,
            (true, false, '\\') => esc = true,
            (true, false, '"') => in_str = false,
            (true, false, _) => {}
            (false, _, '"') => in_str = true,
            (false, _, '[' | '{') => depth += 1,
            (false, _, ']') if depth == 0 => return start + i,
            (false, _, ']' | '}') => depth -= 1,
            _ => {}
        }
    }
    text.len()
}
