//! TLS both ways, with a CA and certificates generated here at test time (rcgen): a gateway whose
//! front terminates TLS, reached by a small rustls client; the same gateway as the `https://`
//! downstream of a second gateway (trusted through `ca_file`, and untrusted without it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use ringgate::demo::{self, DemoOptions};
use rustls::pki_types::{CertificateDer, ServerName};

use crate::harness::*;

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"it","version":"1"}}}"#;

/// A test CA and a `localhost` / `127.0.0.1` / `::1` certificate it signed, as PEM files in a
/// fresh directory (removed on drop).
struct Pki {
    dir: PathBuf,
    ca_der: CertificateDer<'static>,
    ca_file: String,
    cert_file: String,
    key_file: String,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ringgate-it-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("ringgate test CA {tag}"));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let sans = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        let mut leaf_params = CertificateParams::new(sans).unwrap();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        Pki {
            ca_der: ca.der().clone(),
            ca_file: write("ca.pem", ca.pem()),
            cert_file: write("cert.pem", leaf.pem()),
            key_file: write("key.pem", leaf_key.serialize_pem()),
            dir,
        }
    }

    /// The `[gateway.tls]` table serving this certificate.
    fn front_table(&self) -> String {
        format!(
            "[gateway.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            self.cert_file, self.key_file
        )
    }

    /// A rustls client config trusting only this CA.
    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The address the gateway's resolver will pick for `localhost` (its first), with port 0.
fn localhost_listen() -> SocketAddr {
    let mut addr = ("localhost", 0).to_socket_addrs().unwrap().next().unwrap();
    addr.set_port(0);
    addr
}

/// A gateway fronting one demo server named `x`, serving HTTPS with `pki`'s certificate.
fn tls_gateway(pki: &Pki) -> Env {
    let demo = demo::spawn(DemoOptions::new("x")).expect("demo server");
    let toml = format!(
        "[gateway]\nlisten = \"{}\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n{}\
         [[server]]\nname = \"x\"\ntransport = \"http\"\nurl = \"{}\"\n",
        localhost_listen(),
        pki.front_table(),
        demo.url()
    );
    Env::with_config(vec![demo], &toml)
}

/// A raw HTTP response read off a TLS stream.
struct TlsResponse {
    status: u16,
    head: String,
    body: String,
    alpn: Option<Vec<u8>>,
}

impl TlsResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// POSTs `body` to `/mcp` over TLS (rustls on a std socket, `Connection: close`).
fn https_post(addr: SocketAddr, config: Arc<rustls::ClientConfig>, body: &str) -> TlsResponse {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // One write: one TLS record, one segment (Nagle would hold a second small one back).
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost:{}\r\nconnection: close\r\n\
         content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         content-length: {}\r\n\r\n{body}",
        addr.port(),
        body.len()
    );
    let sent = tls.write_all(request.as_bytes()).and_then(|()| tls.flush());
    if let Err(e) = sent {
        // The handshake runs on the first write: a refused certificate shows up here.
        return TlsResponse {
            status: 0,
            head: e.to_string(),
            body: String::new(),
            alpn: None,
        };
    }
    let mut raw = Vec::new();
    // The server may close without close_notify after `connection: close`; what arrived counts.
    let _ = tls.read_to_end(&mut raw);
    let alpn = tls.conn.alpn_protocol().map(<[u8]>::to_vec);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    TlsResponse {
        status,
        head: head.to_string(),
        body: body.to_string(),
        alpn,
    }
}

/// The `/v1/servers` entry of server `name`.
fn server_entry(admin: SocketAddr, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&get(admin, "/v1/servers").body).unwrap();
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no server {name} in {v}"))
}

#[test]
fn the_front_terminates_tls_and_refuses_plain_http() {
    let pki = Pki::new("front");
    let gw = tls_gateway(&pki);
    let r = https_post(gw.addr(), pki.client_config(), INIT);
    assert_eq!(r.status, 200, "{}\n{}", r.head, r.body);
    assert!(r.header("mcp-session-id").is_some(), "{}", r.head);
    assert!(r.body.contains("\"protocolVersion\""), "{}", r.body);
    assert_eq!(r.alpn.as_deref(), Some(&b"http/1.1"[..]));

    // Plain HTTP on the TLS port gets no HTTP response (the handshake fails, the port closes).
    let plain = post(gw.addr(), &[], INIT);
    assert_eq!(plain.status, 0, "plain HTTP was answered: {plain:?}");
    // A client that trusts another CA refuses the certificate.
    let other = Pki::new("other");
    let refused = https_post(gw.addr(), other.client_config(), INIT);
    assert_eq!(refused.status, 0);
    assert!(refused.head.contains("UnknownIssuer"), "{}", refused.head);
    // The front still serves after both failures.
    assert_eq!(https_post(gw.addr(), pki.client_config(), INIT).status, 200);
}

#[test]
fn https_downstreams_with_a_private_ca_work_through_a_second_gateway() {
    let pki = Pki::new("downstream");
    let inner = tls_gateway(&pki);
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n\
         [[server]]\nname = \"inner\"\ntransport = \"http\"\n\
         url = \"https://localhost:{0}/mcp\"\nca_file = \"{1}\"\n\
         [[server]]\nname = \"legacy\"\ntransport = \"sse\"\n\
         url = \"https://localhost:{0}/sse\"\nca_file = \"{1}\"\n",
        inner.addr().port(),
        pki.ca_file
    );
    let outer = Env::with_config(vec![], &toml);
    for name in ["inner", "legacy"] {
        let entry = server_entry(outer.admin(), name);
        assert_eq!(entry["lastError"], serde_json::Value::Null, "{entry}");
    }
    let s = outer.session("2025-06-18");
    let tools = outer
        .call(&s, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .json();
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"inner__x__echo"), "{names:?}");
    assert!(names.contains(&"legacy__x__echo"), "{names:?}");
    // Several calls: pooled TLS connections are reused across calls and workers; the HTTP+SSE
    // downstream keeps its one event stream over TLS.
    for i in 0..6 {
        let tool = ["inner__x__echo", "legacy__x__echo"][i % 2];
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"{tool}","arguments":{{"message":"over tls {i}"}}}}}}"#
        );
        let v = outer.call(&s, &body).json();
        assert_eq!(
            v["result"]["content"][0]["text"],
            format!("over tls {i}"),
            "{v}"
        );
    }
}

#[test]
fn an_untrusted_https_downstream_is_down_with_a_tls_error() {
    let pki = Pki::new("untrusted");
    let inner = tls_gateway(&pki);
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 1\n\
         [[server]]\nname = \"stranger\"\ntransport = \"http\"\nrequired = false\n\
         url = \"https://localhost:{}/mcp\"\n",
        inner.addr().port()
    );
    let outer = Env::with_config(vec![], &toml);
    let mut last = serde_json::Value::Null;
    let reported = eventually(Duration::from_secs(10), || {
        last = server_entry(outer.admin(), "stranger");
        last["lastError"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("TLS handshake") && m.contains("UnknownIssuer"))
    });
    assert!(reported, "{last}");
    assert_eq!(last["upSince"], serde_json::Value::Null, "{last}");
    let message = last["lastError"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("ca_file"),
        "the error says how to fix it: {message}"
    );
}

/// Rough cost of TLS on the downstream hop: the same demo server behind two gateways, one plain
/// and one terminating TLS; 1000 calls through an outer gateway to each. Run with
/// `cargo test --release --test it tls::measure -- --ignored --nocapture`.
#[test]
#[ignore = "measurement, not a check"]
fn measure_pooled_tls_call_versus_plain() {
    const CALLS: usize = 1000;
    let pki = Pki::new("measure");
    let tls_inner = tls_gateway(&pki);
    let plain_inner = Env::start(vec![DemoOptions::new("x")], "");
    let toml = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 1\n\
         [[server]]\nname = \"tls\"\ntransport = \"http\"\n\
         url = \"https://localhost:{}/mcp\"\nca_file = \"{}\"\n\
         [[server]]\nname = \"plain\"\ntransport = \"http\"\nurl = \"http://{}/mcp\"\n",
        tls_inner.addr().port(),
        pki.ca_file,
        plain_inner.addr()
    );
    let outer = Env::with_config(vec![], &toml);
    let s = outer.session("2025-06-18");
    for (label, tool) in [
        ("plain", "plain__alpha__echo"),
        ("tls", "tls__x__echo"),
        ("plain", "plain__alpha__echo"),
        ("tls", "tls__x__echo"),
    ] {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{{"message":"m"}}}}}}"#
        );
        assert_eq!(outer.call(&s, &body).status, 200);
        let started = Instant::now();
        for _ in 0..CALLS {
            assert_eq!(outer.call(&s, &body).status, 200);
        }
        let per_call = started.elapsed() / CALLS as u32;
        println!("{label:>5} downstream: {per_call:?} per call ({CALLS} calls)");
    }
    // The front, one connection per request: what a full handshake adds (no resumption: a new
    // client config, hence an empty session cache, per connection).
    let config = pki.client_config();
    for round in 0..2 {
        let started = Instant::now();
        for _ in 0..CALLS {
            assert_eq!(post(plain_inner.addr(), &[], INIT).status, 200);
        }
        let plain = started.elapsed() / CALLS as u32;
        let started = Instant::now();
        for _ in 0..CALLS {
            let fresh = Arc::new((*config).clone());
            assert_eq!(https_post(tls_inner.addr(), fresh, INIT).status, 200);
        }
        let tls = started.elapsed() / CALLS as u32;
        println!("front round {round}: plain {plain:?}, TLS with a full handshake {tls:?} per connection");
    }
}
