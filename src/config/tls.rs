//! TLS material named in the config, loaded and checked when the config is: PEM files in,
//! ready-to-use rustls configurations out.
//!
//! Key types: [`ClientTls`] (one `https://` downstream: trust roots, SNI name, ALPN) and
//! [`FrontTls`] (the front listener's certificate chain and key); `front_tls` and
//! `client_tls` are the validation steps for `[gateway.tls]` and `server.ca_file`. Both types
//! are built once per config load (on the thread that loads the config, never on a worker's
//! request path) and shared by `Arc`, so every pooled connection and every accepted client
//! reuses one rustls config.
//!
//! Invariants: the crypto provider is always rustls' `ring` provider, installed explicitly
//! ([`crypto_provider`]); nothing depends on a process-wide default. Only TLS 1.2 and 1.3 with
//! rustls' safe defaults; ALPN offers `http/1.1` only. Equality and hashing go by the file
//! paths *and* a fingerprint of the file contents, so a reload notices a rotated certificate or
//! CA bundle even when the paths stay the same.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::RootCertStore;

use super::raw::RawTls;
use super::validate::{os_string, Env, Problems};
use super::{Fnv1a, Scheme, Url};

/// The only application protocol the gateway speaks over TLS.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// rustls' `ring` crypto provider, built once per process and passed explicitly to every
/// config builder.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Client-side TLS for one `https://` downstream (`server.url` with `server.ca_file`).
#[derive(Clone)]
pub struct ClientTls {
    /// Extra trust roots (PEM bundle) on top of the built-in webpki roots, if configured.
    pub ca_file: Option<PathBuf>,
    /// The name sent as SNI and checked against the certificate: the URL host (a DNS name or
    /// an IP address; IP addresses are verified against IP SANs and send no SNI).
    pub server_name: ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
    fingerprint: u64,
}

impl ClientTls {
    /// Builds the client config for `host`: webpki roots plus every certificate in `ca_file`.
    ///
    /// # Errors
    ///
    /// A user-facing reason and whether it concerns the host (`true`) or the CA file (`false`).
    pub(super) fn load(host: &str, ca_file: Option<PathBuf>) -> Result<Self, (bool, String)> {
        let server_name = ServerName::try_from(host.to_owned()).map_err(|_| {
            (
                true,
                format!("host `{host}` is not a valid TLS server name"),
            )
        })?;
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let mut fingerprint = Fnv1a::default();
        if let Some(path) = &ca_file {
            let bytes = read(path).map_err(|e| (false, e))?;
            bytes.hash(&mut fingerprint);
            let certs = certificates(&bytes).map_err(|e| (false, e))?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err((
                    false,
                    format!(
                        "{} holds no usable CA certificate (PEM `CERTIFICATE` blocks)",
                        path.display()
                    ),
                ));
            }
        }
        let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| (false, format!("TLS setup failed: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(ClientTls {
            ca_file,
            server_name,
            config: Arc::new(config),
            fingerprint: fingerprint.finish(),
        })
    }

    /// The shared rustls client config (clone the `Arc` per connection).
    pub fn config(&self) -> &Arc<rustls::ClientConfig> {
        &self.config
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca_file", &self.ca_file)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        self.ca_file == other.ca_file
            && self.server_name == other.server_name
            && self.fingerprint == other.fingerprint
    }
}

impl Eq for ClientTls {}

impl Hash for ClientTls {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.ca_file.hash(state);
        self.server_name.to_str().hash(state);
        self.fingerprint.hash(state);
    }
}

/// TLS termination on the front listener (`[gateway.tls]`).
#[derive(Clone)]
pub struct FrontTls {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) matching the leaf certificate.
    pub key_file: PathBuf,
    config: Arc<rustls::ServerConfig>,
    fingerprint: u64,
}

/// Which `[gateway.tls]` key a [`FrontTls::load`] problem belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FrontKey {
    /// `cert_file`.
    Cert,
    /// `key_file`.
    Key,
}

impl FrontTls {
    /// Reads and checks the chain and key (parsable, non-empty, key matches the leaf).
    ///
    /// # Errors
    ///
    /// Every problem found, each with the key it concerns.
    pub(super) fn load(
        cert_file: PathBuf,
        key_file: PathBuf,
    ) -> Result<Self, Vec<(FrontKey, String)>> {
        let mut problems = Vec::new();
        let mut fingerprint = Fnv1a::default();
        let chain = match read_chain(&cert_file, &mut fingerprint) {
            Ok(chain) => Some(chain),
            Err(why) => {
                problems.push((FrontKey::Cert, why));
                None
            }
        };
        let key = match read_key(&key_file, &mut fingerprint) {
            Ok(key) => Some(key),
            Err(why) => {
                problems.push((FrontKey::Key, why));
                None
            }
        };
        let (Some(chain), Some(key)) = (chain, key) else {
            return Err(problems);
        };
        let config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| vec![(FrontKey::Cert, format!("TLS setup failed: {e}"))])?
            .with_no_client_auth()
            .with_single_cert(chain, key);
        let mut config = config.map_err(|e| {
            let why = match e {
                rustls::Error::InconsistentKeys(_) => format!(
                    "does not match the leaf certificate in {}",
                    cert_file.display()
                ),
                other => format!("unusable with the certificate chain: {other}"),
            };
            vec![(FrontKey::Key, why)]
        })?;
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(FrontTls {
            cert_file,
            key_file,
            config: Arc::new(config),
            fingerprint: fingerprint.finish(),
        })
    }

    /// The shared rustls server config (clone the `Arc` per accepted connection).
    pub fn config(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }
}

impl fmt::Debug for FrontTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrontTls")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl PartialEq for FrontTls {
    fn eq(&self, other: &Self) -> bool {
        self.cert_file == other.cert_file
            && self.key_file == other.key_file
            && self.fingerprint == other.fingerprint
    }
}

impl Eq for FrontTls {}

impl Hash for FrontTls {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.cert_file.hash(state);
        self.key_file.hash(state);
        self.fingerprint.hash(state);
    }
}

// Validation of the TLS keys (called from `validate`).

/// `[gateway.tls]`: both files required, readable, parsable, and the key must match the leaf.
pub(super) fn front_tls(raw: Option<RawTls>, env: Env<'_>, p: &mut Problems) -> Option<FrontTls> {
    let raw = raw?;
    const CERT: &str = "gateway.tls.cert_file";
    const KEY: &str = "gateway.tls.key_file";
    let cert = required_file(raw.cert_file, CERT, "the PEM certificate chain", env, p);
    let key = required_file(raw.key_file, KEY, "the PEM private key", env, p);
    match FrontTls::load(cert?, key?) {
        Ok(tls) => Some(tls),
        Err(problems) => {
            for (key, why) in problems {
                p.push(if key == FrontKey::Cert { CERT } else { KEY }, why);
            }
            None
        }
    }
}

/// A file path that must be given (expanded like other OS strings).
fn required_file(
    value: Option<String>,
    path: &str,
    what: &str,
    env: Env<'_>,
    p: &mut Problems,
) -> Option<PathBuf> {
    match value {
        None => {
            p.push(path, format!("missing; the path of {what}"));
            None
        }
        Some(text) => os_string(&text, path, env, p).map(PathBuf::from),
    }
}

/// Client TLS for an https url: webpki roots plus the optional `ca_file` (loaded and checked
/// now); `ca_file` on an http url is an error rather than silently ignored.
pub(super) fn client_tls(
    url: Option<&Url>,
    ca_file: Option<String>,
    path: &str,
    url_path: &str,
    env: Env<'_>,
    p: &mut Problems,
) -> Option<ClientTls> {
    let ca_path = format!("{path}.ca_file");
    let ca_file = match ca_file {
        None => None,
        Some(text) => Some(PathBuf::from(os_string(&text, &ca_path, env, p)?)),
    };
    let url = url?;
    if url.scheme != Scheme::Https {
        if ca_file.is_some() {
            p.push(ca_path, "only applies to https:// URLs");
        }
        return None;
    }
    match ClientTls::load(&url.host, ca_file) {
        Ok(tls) => Some(tls),
        Err((true, why)) => {
            p.push(url_path, why);
            None
        }
        Err((false, why)) => {
            p.push(ca_path, why);
            None
        }
    }
}

/// Reads a whole file, with the path in the error.
fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A non-empty certificate chain from a PEM file; its bytes go into `fingerprint`.
fn read_chain(
    path: &Path,
    fingerprint: &mut Fnv1a,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path)?;
    bytes.hash(fingerprint);
    let chain = certificates(&bytes)?;
    if chain.is_empty() {
        return Err(format!(
            "{} holds no PEM `CERTIFICATE` block",
            path.display()
        ));
    }
    Ok(chain)
}

/// The first private key of a PEM file; its bytes go into `fingerprint`.
fn read_key(path: &Path, fingerprint: &mut Fnv1a) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(path)?;
    bytes.hash(fingerprint);
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        format!(
            "{} holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
            path.display()
        )
    })
}

/// Every `CERTIFICATE` block of a PEM file (other block types are skipped).
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM: {e}"))
}
