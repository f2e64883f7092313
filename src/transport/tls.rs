//! TLS handshakes on both sides, over monoio TCP streams, with rustls.
//!
//! Role: [`connect`] turns a connected TCP stream into a client-side [`NetStream::Tls`] (the
//! upstream pools call it when they open a connection, so a call never pays a handshake);
//! [`accept`] does the same for an accepted client on the front listener. The rustls configs
//! (roots, certificates, ALPN, crypto provider) are built elsewhere, once, and passed in as
//! `Arc`s; this module only runs sessions.
//!
//! Errors: handshake failures come back as `io::Error`s whose text is rustls' reason
//! ("invalid peer certificate: UnknownIssuer", ...); [`describe`] adds a hint for the common
//! certificate problems, for logs and the admin API.

use std::io;
use std::sync::Arc;

use monoio::net::TcpStream;
use monoio_rustls::{TlsAcceptor, TlsConnector};
use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig, ServerConfig};

use super::stream::{NetStream, TlsStream};

/// Runs the client handshake on `tcp`, verifying the server as `name` (also sent as SNI when
/// it is a DNS name).
///
/// # Errors
///
/// I/O errors, and rustls' reason when the handshake fails (untrusted or mismatched
/// certificate, no common protocol version or cipher suite, ...).
pub async fn connect(
    tcp: TcpStream,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
) -> io::Result<NetStream> {
    let stream = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(io::Error::from)?;
    Ok(NetStream::Tls(Box::new(TlsStream::client(stream))))
}

/// Runs the server handshake on an accepted `tcp` stream. Apply a timeout around it: a client
/// that connects and sends nothing would otherwise hold the task.
///
/// # Errors
///
/// I/O errors, and rustls' reason when the handshake fails (not TLS at all, no common
/// protocol, the client rejected the certificate, ...).
pub async fn accept(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<NetStream> {
    let stream = TlsAcceptor::from(config)
        .accept(tcp)
        .await
        .map_err(io::Error::from)?;
    Ok(NetStream::Tls(Box::new(TlsStream::server(stream))))
}

/// A one-line description of a handshake error, with a hint for certificate problems.
pub fn describe(e: &io::Error) -> String {
    let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return e.to_string();
    };
    let hint = match tls {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            " (the server's certificate is not signed by a trusted CA; set `ca_file` to trust a private CA)"
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => " (the certificate does not name the URL's host)",
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => " (the server's certificate has expired)",
        rustls::Error::InvalidMessage(_) => " (the peer may not speak TLS on this port)",
        _ => "",
    };
    format!("{tls}{hint}")
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use bytes::Bytes;
    use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
    use monoio::net::TcpListener;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    use super::*;
    use crate::transport::http::{ClientConn, HttpLimits, Method, ServerConn};
    use crate::transport::stream::tcp_connect;

    /// A self-signed certificate for `localhost` (subject `cn`) and the configs trusting and
    /// serving it.
    fn configs_named(cn: &str) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.self_signed(&key).unwrap();
        let der = CertificateDer::from(cert.der().to_vec());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der.clone()).unwrap();
        let mut client = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der], key)
            .unwrap();
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        (Arc::new(client), Arc::new(server))
    }

    fn configs() -> (Arc<ClientConfig>, Arc<ServerConfig>) {
        configs_named("ringgate test")
    }

    fn listener() -> (TcpListener, SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        (l, addr)
    }

    fn localhost() -> ServerName<'static> {
        ServerName::try_from("localhost").unwrap()
    }

    #[monoio::test(enable_timer = true)]
    async fn http_over_tls_both_ways_with_keep_alive() {
        let (client_cfg, server_cfg) = configs();
        let (l, addr) = listener();
        let server = monoio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let stream = accept(tcp, server_cfg).await.unwrap();
            let NetStream::Tls(tls) = &stream else {
                panic!("not TLS")
            };
            assert_eq!(tls.alpn_protocol().as_deref(), Some(&b"http/1.1"[..]));
            let mut conn = ServerConn::new(stream, HttpLimits::default());
            for _ in 0..2 {
                let req = conn.read_request().await.unwrap().unwrap();
                assert_eq!(req.method, Method::Post);
                let body = req.body.clone();
                conn.write_response(200, &[("content-type", b"application/json")], &[body])
                    .await
                    .unwrap();
            }
        });
        let tcp = tcp_connect(addr).await.unwrap();
        let stream = connect(tcp, client_cfg, localhost()).await.unwrap();
        assert!(stream.is_tls());
        let mut conn = ClientConn::new(stream, HttpLimits::default());
        for body in ["{\"a\":1}", "{\"b\":2}"] {
            conn.send_request("POST", "/mcp", "localhost", &[], &[Bytes::from(body)])
                .await
                .unwrap();
            let head = conn.read_response_head().await.unwrap();
            assert_eq!(head.status, 200);
            let got = conn.read_body(&head, 1 << 20).await.unwrap();
            assert_eq!(&got[..], body.as_bytes());
            assert!(conn.is_reusable());
        }
        server.await;
    }

    #[monoio::test(enable_timer = true)]
    async fn untrusted_certificate_is_refused_with_a_hint() {
        let (_, server_cfg) = configs();
        let (other_client, _) = configs_named("someone else");
        let (l, addr) = listener();
        let server = monoio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            assert!(accept(tcp, server_cfg).await.is_err());
        });
        let tcp = tcp_connect(addr).await.unwrap();
        let Err(e) = connect(tcp, other_client, localhost()).await else {
            panic!("handshake with an untrusted certificate succeeded")
        };
        let text = describe(&e);
        assert!(text.contains("UnknownIssuer"), "{text}");
        assert!(text.contains("ca_file"), "{text}");
        server.await;
    }

    #[monoio::test(enable_timer = true)]
    async fn close_without_close_notify_reads_as_eof() {
        let (client_cfg, server_cfg) = configs();
        let (l, addr) = listener();
        let server = monoio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let stream = accept(tcp, server_cfg).await.unwrap();
            drop(stream); // TCP close, no close_notify
        });
        let tcp = tcp_connect(addr).await.unwrap();
        let mut stream = connect(tcp, client_cfg, localhost()).await.unwrap();
        server.await;
        let (res, _) = stream.read(vec![0u8; 64]).await;
        assert_eq!(res.unwrap(), 0);
    }

    #[monoio::test(enable_timer = true)]
    async fn an_abandoned_read_poisons_the_stream_instead_of_panicking() {
        let (client_cfg, server_cfg) = configs();
        let (l, addr) = listener();
        let server = monoio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut stream = accept(tcp, server_cfg).await.unwrap();
            monoio::time::sleep(std::time::Duration::from_millis(200)).await;
            let _ = stream.write_all(b"late".to_vec()).await;
        });
        let tcp = tcp_connect(addr).await.unwrap();
        let mut stream = connect(tcp, client_cfg, localhost()).await.unwrap();
        let waited = monoio::time::timeout(
            std::time::Duration::from_millis(20),
            stream.read(vec![0u8; 64]),
        )
        .await;
        assert!(waited.is_err(), "nothing was sent yet");
        let (res, _) = stream.read(vec![0u8; 64]).await;
        let e = res.unwrap_err();
        assert!(e.to_string().contains("abandoned"), "{e}");
        server.await;
    }
}
