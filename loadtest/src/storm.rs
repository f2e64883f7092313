//! The reload storm (issue #5): while the load runs, the spawned gateway's config is rewritten
//! through `POST /v1/reload` every few hundred milliseconds, alternating between two variants of
//! its start-up config. Variant A adds `storm_other` (prefix `storm_a`); variant B gives it prefix
//! `storm_b` and adds `storm_extra`. The server the load calls (`bench`) never changes, so every
//! failed request during the storm is a fault of the reload, and every failed reload is reported.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the storm did. Shared with the storm's own thread: the load thread's pacer spins, so the
/// storm runs beside it on a plain thread with blocking I/O (five small POSTs a second).
#[derive(Default)]
pub struct Storm {
    ok: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
    stop: AtomicBool,
}

impl Storm {
    /// Ends the storm after the reload in flight.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Reloads that failed.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Acquire)
    }

    /// One line for the report.
    pub fn summary(&self, every: Duration) -> String {
        let mut s = format!(
            "reload storm: {} reloads applied, {} failed (one every {} ms, alternating add/remove a server and a prefix change)",
            self.ok.load(Ordering::Acquire),
            self.failed(),
            every.as_millis()
        );
        if let Some(e) = self.last_error.lock().ok().and_then(|e| e.clone()) {
            s.push_str(&format!("; last failure: {e}"));
        }
        s
    }
}

/// The two configs the storm alternates between, derived from the start-up config.
pub fn variants(base: &str, server_url: &str) -> [String; 2] {
    let other = |prefix: &str| {
        format!("\n[[server]]\nname = \"storm_other\"\ntransport = \"http\"\nurl = \"{server_url}\"\nprefix = \"{prefix}\"\nrequired = false\n")
    };
    let extra = format!("\n[[server]]\nname = \"storm_extra\"\ntransport = \"http\"\nurl = \"{server_url}\"\nrequired = false\n");
    [
        format!("{base}{}", other("storm_a")),
        format!("{base}{}{extra}", other("storm_b")),
    ]
}

/// Starts the storm's thread: posts the variants in turn every `every` until stopped.
pub fn start(
    storm: Arc<Storm>,
    admin: SocketAddr,
    variants: [String; 2],
    every: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("reload-storm".into())
        .spawn(move || {
            let mut i = 0usize;
            while !storm.stop.load(Ordering::Acquire) {
                std::thread::sleep(every);
                if storm.stop.load(Ordering::Acquire) {
                    break;
                }
                match post(admin, &variants[i % 2]) {
                    Ok((200, _)) => {
                        storm.ok.fetch_add(1, Ordering::AcqRel);
                    }
                    Ok((status, body)) => {
                        storm.failed.fetch_add(1, Ordering::AcqRel);
                        let text: String = body.chars().take(200).collect();
                        if let Ok(mut e) = storm.last_error.lock() {
                            *e = Some(format!("HTTP {status}: {text}"));
                        }
                    }
                    Err(err) => {
                        storm.failed.fetch_add(1, Ordering::AcqRel);
                        if let Ok(mut e) = storm.last_error.lock() {
                            *e = Some(err.to_string());
                        }
                    }
                }
                i += 1;
            }
        })
}

/// One blocking `POST /v1/reload` with `Connection: close`; returns the status and body.
fn post(admin: SocketAddr, config: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&admin, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "POST /v1/reload HTTP/1.1\r\nhost: {admin}\r\nconnection: close\r\ncontent-type: application/toml\r\ncontent-length: {}\r\n\r\n",
        config.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(config.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_keep_the_base_and_differ_in_the_storm_servers() {
        let [a, b] = variants("[gateway]\n", "http://127.0.0.1:1/mcp");
        assert!(a.starts_with("[gateway]\n") && b.starts_with("[gateway]\n"));
        assert!(a.contains("prefix = \"storm_a\"") && !a.contains("storm_extra"));
        assert!(b.contains("prefix = \"storm_b\"") && b.contains("storm_extra"));
    }
}
