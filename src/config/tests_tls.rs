//! Tests for the TLS keys: `[gateway.tls]` and `server.ca_file`, with certificates generated
//! here and written to a fresh temporary directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::diff::gateway_changes;
use super::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ringgate-config-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for localhost and its key, both PEM.
fn self_signed() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn check(text: &str) -> Result<Config, Vec<ConfigError>> {
    parse_str(text, &|_| None).map_err(|ConfigErrors(e)| e)
}

#[track_caller]
fn single_error(text: &str, path: &str, needle: &str) {
    let errors = check(text).expect_err("expected an error");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].path, path, "{errors:#?}");
    assert!(
        errors[0].message.contains(needle),
        "{:?} lacks {needle:?}",
        errors[0].message
    );
}

fn server(url: &str, extra: &str) -> String {
    format!("[[server]]\nname = \"a\"\ntransport = \"http\"\nurl = \"{url}\"\n{extra}\n")
}

#[test]
fn https_servers_get_client_tls_and_http_servers_do_not() {
    let config = check(&format!(
        "{}{}",
        server("https://Example.com/mcp", ""),
        "[[server]]\nname = \"b\"\ntransport = \"sse\"\nurl = \"http://127.0.0.1:9/sse\"\n"
    ))
    .unwrap();
    let tls = config.servers[0].tls.as_ref().expect("https gets TLS");
    assert_eq!(tls.server_name.to_str(), "example.com");
    assert_eq!(tls.ca_file, None);
    assert_eq!(tls.config().alpn_protocols, vec![b"http/1.1".to_vec()]);
    assert!(config.servers[1].tls.is_none());
}

#[test]
fn ip_literal_hosts_are_valid_server_names() {
    let config = check(&server("https://[::1]:8443/mcp", "")).unwrap();
    let tls = config.servers[0].tls.as_ref().unwrap();
    assert_eq!(tls.server_name.to_str(), "::1");
}

#[test]
fn ca_file_is_loaded_and_its_content_feeds_the_config_hash() {
    let dir = TempDir::new();
    let (ca, _) = self_signed();
    let path = dir.write("ca.pem", &ca);
    let text = server(
        "https://localhost:8443/mcp",
        &format!("ca_file = \"{path}\""),
    );
    let first = check(&text).unwrap();
    let tls = first.servers[0].tls.as_ref().unwrap();
    assert_eq!(tls.ca_file.as_deref(), Some(Path::new(&path)));
    assert_eq!(first, check(&text).unwrap(), "same files, same config");
    let (other, _) = self_signed();
    dir.write("ca.pem", &other);
    let second = check(&text).unwrap();
    assert_ne!(
        first.servers[0].config_hash(),
        second.servers[0].config_hash(),
        "a rotated CA bundle restarts the server on reload"
    );
}

#[test]
fn ca_file_problems_are_reported_at_their_key() {
    let dir = TempDir::new();
    let https = "https://localhost/mcp";
    single_error(
        &server(https, "ca_file = \"/nonexistent/ca.pem\""),
        "server[0].ca_file",
        "cannot read /nonexistent/ca.pem",
    );
    let junk = dir.write("junk.pem", "not a certificate\n");
    single_error(
        &server(https, &format!("ca_file = \"{junk}\"")),
        "server[0].ca_file",
        "no usable CA certificate",
    );
    let (ca, _) = self_signed();
    let ca = dir.write("ca.pem", &ca);
    single_error(
        &server("http://localhost/mcp", &format!("ca_file = \"{ca}\"")),
        "server[0].ca_file",
        "only applies to https://",
    );
    single_error(
        &format!("[[server]]\nname = \"s\"\ntransport = \"stdio\"\ncommand = \"x\"\nca_file = \"{ca}\"\n"),
        "server[0].ca_file",
        "not applicable to transport \"stdio\"",
    );
    single_error(
        &server(https, "ca_file = \"${CA_DIR}/ca.pem\""),
        "server[0].ca_file",
        "CA_DIR",
    );
}

#[test]
fn front_tls_loads_a_matching_chain_and_key() {
    let dir = TempDir::new();
    let (cert, key) = self_signed();
    let cert = dir.write("cert.pem", &cert);
    let key = dir.write("key.pem", &key);
    let config = check(&format!(
        "[gateway.tls]\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\n"
    ))
    .unwrap();
    let tls = config.gateway.tls.as_ref().expect("front TLS");
    assert_eq!(tls.cert_file, PathBuf::from(&cert));
    assert_eq!(tls.config().alpn_protocols, vec![b"http/1.1".to_vec()]);
    assert!(check("").unwrap().gateway.tls.is_none(), "off by default");
}

#[test]
fn front_tls_problems_are_reported_at_their_key() {
    let dir = TempDir::new();
    let (cert, key) = self_signed();
    let (_, other_key) = self_signed();
    let cert = dir.write("cert.pem", &cert);
    let key = dir.write("key.pem", &key);
    let other_key = dir.write("other.pem", &other_key);
    single_error(
        &format!("[gateway.tls]\ncert_file = \"{cert}\"\n"),
        "gateway.tls.key_file",
        "missing",
    );
    single_error(
        &format!("[gateway.tls]\ncert_file = \"{cert}\"\nkey_file = \"{other_key}\"\n"),
        "gateway.tls.key_file",
        "does not match the leaf certificate",
    );
    single_error(
        &format!("[gateway.tls]\ncert_file = \"{key}\"\nkey_file = \"{key}\"\n"),
        "gateway.tls.cert_file",
        "no PEM `CERTIFICATE` block",
    );
    single_error(
        &format!("[gateway.tls]\ncert_file = \"{cert}\"\nkey_file = \"{cert}\"\n"),
        "gateway.tls.key_file",
        "no usable PEM private key",
    );
    single_error(
        &format!("[gateway.tls]\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\nca = 1\n"),
        "gateway.tls.ca",
        "unknown key",
    );
    let errors = check("[gateway.tls]\ncert_file = \"/nope/c.pem\"\nkey_file = \"/nope/k.pem\"\n")
        .expect_err("unreadable files");
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["gateway.tls.cert_file", "gateway.tls.key_file"]);
}

#[test]
fn a_rotated_front_certificate_is_a_live_gateway_change() {
    let dir = TempDir::new();
    let (cert, key) = self_signed();
    let cert_path = dir.write("cert.pem", &cert);
    let key_path = dir.write("key.pem", &key);
    let text = format!("[gateway.tls]\ncert_file = \"{cert_path}\"\nkey_file = \"{key_path}\"\n");
    let old = check(&text).unwrap();
    let (cert, key) = self_signed();
    dir.write("cert.pem", &cert);
    dir.write("key.pem", &key);
    let new = check(&text).unwrap();
    let changes = gateway_changes(&old.gateway, &new.gateway);
    assert_eq!(changes.applied, vec!["gateway.tls"]);
    assert!(changes.restart_required.is_empty());
}
