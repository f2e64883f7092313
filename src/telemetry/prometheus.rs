//! Prometheus text exposition (format 0.0.4) of merged [`CoreStats`] plus gateway-level gauges.
//!
//! Latency histograms are exposed as summaries with fixed quantiles (0.5, 0.9, 0.99, 0.999), in
//! seconds, because HDR histograms give exact quantiles cheaply and bucket boundaries would have to be
//! guessed. Runs on the admin side only.

use std::fmt::Write;

use hdrhistogram::Histogram;

use super::{CoreStats, MethodClass};

/// Gateway-level facts rendered beside the per-core stats.
pub struct Gauges<'a> {
    /// Current snapshot generation.
    pub generation: u64,
    /// Open notification streams across workers.
    pub open_streams: usize,
    /// Per server: (name, up, tools offered).
    pub servers: &'a [(String, bool, usize)],
}

const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

fn summary(
    out: &mut String,
    name: &str,
    help: &str,
    labels: &str,
    h: &Histogram<u64>,
    header: bool,
) {
    if header {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} summary");
    }
    let sep = if labels.is_empty() { "" } else { "," };
    for q in QUANTILES {
        let v = h.value_at_quantile(q) as f64 / 1e9;
        let _ = writeln!(out, "{name}{{{labels}{sep}quantile=\"{q}\"}} {v:e}");
    }
    let sum = h.mean() * h.len() as f64 / 1e9;
    let brace = |l: &str| {
        if l.is_empty() {
            String::new()
        } else {
            format!("{{{l}}}")
        }
    };
    let _ = writeln!(out, "{name}_sum{} {sum:e}", brace(labels));
    let _ = writeln!(out, "{name}_count{} {}", brace(labels), h.len());
}

fn counter_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
}

/// Escapes a label value per the exposition format.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders merged stats and gauges as Prometheus text.
pub fn render(stats: &CoreStats, g: &Gauges<'_>) -> String {
    let mut out = String::with_capacity(8192);
    counter_header(
        &mut out,
        "ringgate_requests_total",
        "JSON-RPC requests handled, by method class.",
    );
    for c in MethodClass::ALL {
        let _ = writeln!(
            out,
            "ringgate_requests_total{{method=\"{}\"}} {}",
            c.label(),
            stats.requests[c as usize]
        );
    }
    counter_header(
        &mut out,
        "ringgate_request_errors_total",
        "Requests answered with an error, by method class.",
    );
    for c in MethodClass::ALL {
        let _ = writeln!(
            out,
            "ringgate_request_errors_total{{method=\"{}\"}} {}",
            c.label(),
            stats.errors[c as usize]
        );
    }
    counter_header(
        &mut out,
        "ringgate_rejected_total",
        "HTTP exchanges refused before the request path.",
    );
    let _ = writeln!(out, "ringgate_rejected_total {}", stats.rejected);
    summary(
        &mut out,
        "ringgate_gateway_added_seconds",
        "Gateway-internal time of forwarded calls.",
        "",
        &stats.gateway,
        true,
    );
    summary(
        &mut out,
        "ringgate_downstream_seconds",
        "Downstream time of forwarded calls.",
        "",
        &stats.downstream,
        true,
    );
    summary(
        &mut out,
        "ringgate_request_seconds",
        "End-to-end time of requests inside the gateway.",
        "",
        &stats.total,
        true,
    );
    render_servers(&mut out, stats, g);
    render_bridge(&mut out, stats);
    let _ = writeln!(out, "# HELP ringgate_snapshot_generation Generation of the serving snapshot.\n# TYPE ringgate_snapshot_generation gauge\nringgate_snapshot_generation {}", g.generation);
    let _ = writeln!(out, "# HELP ringgate_open_streams Open client notification streams.\n# TYPE ringgate_open_streams gauge\nringgate_open_streams {}", g.open_streams);
    out
}

/// The era bridge: parked calls now, and how parked calls ended.
fn render_bridge(out: &mut String, stats: &CoreStats) {
    let b = &stats.bridge;
    let _ = writeln!(out, "# HELP ringgate_bridge_parked_calls Calls parked for a modern client's input_required retry.\n# TYPE ringgate_bridge_parked_calls gauge\nringgate_bridge_parked_calls {}", b.parked);
    counter_header(
        out,
        "ringgate_bridge_resumes_total",
        "Parked calls resumed by the client's retry.",
    );
    let _ = writeln!(out, "ringgate_bridge_resumes_total {}", b.resumes);
    counter_header(
        out,
        "ringgate_bridge_expiries_total",
        "Parked calls given up (cancelled downstream) because no retry came in time.",
    );
    let _ = writeln!(out, "ringgate_bridge_expiries_total {}", b.expiries);
}

fn render_servers(out: &mut String, stats: &CoreStats, g: &Gauges<'_>) {
    counter_header(
        out,
        "ringgate_downstream_calls_total",
        "Calls forwarded to each server.",
    );
    for s in stats.servers.iter().flatten() {
        let _ = writeln!(
            out,
            "ringgate_downstream_calls_total{{server=\"{}\"}} {}",
            esc(&s.name),
            s.calls
        );
    }
    counter_header(
        out,
        "ringgate_downstream_errors_total",
        "Forwarded calls that failed, by server and kind.",
    );
    for s in stats.servers.iter().flatten() {
        let n = esc(&s.name);
        let _ = writeln!(
            out,
            "ringgate_downstream_errors_total{{server=\"{n}\",kind=\"error\"}} {}",
            s.errors
        );
        let _ = writeln!(
            out,
            "ringgate_downstream_errors_total{{server=\"{n}\",kind=\"timeout\"}} {}",
            s.timeouts
        );
    }
    for (i, s) in stats.servers.iter().flatten().enumerate() {
        let labels = format!("server=\"{}\"", esc(&s.name));
        summary(
            out,
            "ringgate_server_call_seconds",
            "Downstream call latency per server.",
            &labels,
            &s.latency,
            i == 0,
        );
    }
    let _ = writeln!(out, "# HELP ringgate_server_up Whether the server is connected and serving.\n# TYPE ringgate_server_up gauge");
    for (name, up, _) in g.servers {
        let _ = writeln!(
            out,
            "ringgate_server_up{{server=\"{}\"}} {}",
            esc(name),
            u8::from(*up)
        );
    }
    let _ = writeln!(out, "# HELP ringgate_server_tools Tools each server contributes to the catalog.\n# TYPE ringgate_server_tools gauge");
    for (name, _, tools) in g.servers {
        let _ = writeln!(
            out,
            "ringgate_server_tools{{server=\"{}\"}} {tools}",
            esc(name)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::CallOutcome;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn exposition_names_servers_and_counts() {
        let mut s = CoreStats::default();
        s.record_request(MethodClass::ToolsCall, true, Duration::from_micros(40));
        s.record_server(
            0,
            &Arc::from("time"),
            CallOutcome::Ok,
            Duration::from_micros(20),
        );
        let servers = vec![("time".to_string(), true, 2)];
        let text = render(
            &s,
            &Gauges {
                generation: 3,
                open_streams: 1,
                servers: &servers,
            },
        );
        assert!(text.contains("ringgate_requests_total{method=\"tools_call\"} 1"));
        assert!(text.contains("ringgate_downstream_calls_total{server=\"time\"} 1"));
        assert!(text.contains("ringgate_server_call_seconds_count{server=\"time\"} 1"));
        assert!(text.contains("ringgate_server_up{server=\"time\"} 1"));
        assert!(text.contains("ringgate_snapshot_generation 3"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert_eq!(line.split(' ').count(), 2, "sample line shape: {line}");
        }
    }
}
