//! The admin listener: metrics, health, readiness and the read-only admin API.
//!
//! Served on its own address (`gateway.admin_listen`), never on the public listener, by the control
//! thread. Endpoints: `GET /metrics` (Prometheus text; per-core stats are fetched from every worker
//! by message and merged here, so scraping costs the workers nothing but a clone), `GET /healthz`,
//! `GET /readyz` (200 only when every required server is up), `GET /v1/servers`, `GET /v1/catalog`.

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use monoio::net::TcpListener;

use super::control::Control;
use super::WorkerMsg;
use crate::catalog::ListKind;
use crate::telemetry::{prometheus, CoreStats};
use crate::transport::http::{HttpLimits, Method, Request, ServerConn};
use crate::wire::encode::write_json_string;

/// How long a scrape waits for each worker's stats.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// Accepts admin connections until the listener fails (shutdown drops the runtime).
pub async fn serve(control: Rc<Control>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
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
        (Method::Get, "/metrics") => (200, "text/plain; version=0.0.4", Bytes::from(metrics(control).await)),
        (Method::Get, "/healthz") => (200, TEXT, Bytes::from_static(b"ok\n")),
        (Method::Get, "/readyz") => readyz(control),
        (Method::Get, "/v1/servers") => (200, JSON, Bytes::from(servers_json(control))),
        (Method::Get, "/v1/catalog") => (200, JSON, Bytes::from(catalog_json(control))),
        (Method::Post, "/v1/reload") => (
            501,
            JSON,
            Bytes::from_static(b"{\"error\":\"hot reload is not available in this build; restart to apply a new config\"}"),
        ),
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
    let snap = control.gw.snapshot.load();
    let servers: Vec<(String, bool, usize)> = snap
        .servers
        .iter()
        .map(|s| (s.link.name.to_string(), s.link.is_up(), s.tools))
        .collect();
    prometheus::render(
        &merged,
        &prometheus::Gauges {
            generation: snap.generation,
            open_streams: streams,
            servers: &servers,
        },
    )
}

fn readyz(control: &Control) -> (u16, &'static str, Bytes) {
    let down: Vec<&str> = control
        .links
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

/// `GET /v1/servers`: each downstream's state.
pub fn servers_json(control: &Control) -> String {
    let snap = control.gw.snapshot.load();
    let mut out = Vec::with_capacity(256 * control.links.len() + 16);
    out.extend_from_slice(b"{\"generation\":");
    out.extend_from_slice(snap.generation.to_string().as_bytes());
    out.extend_from_slice(b",\"servers\":[");
    for (i, link) in control.links.iter().enumerate() {
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
            .map_or("null".to_string(), |c| c.pid.to_string());
        out.extend_from_slice(
            format!(",\"pid\":{pid},\"tools\":{},\"upSince\":", h.tools).as_bytes(),
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
