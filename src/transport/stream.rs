//! One stream type for every network connection the gateway makes or accepts: plain TCP, or
//! TLS over TCP on either side, so `ServerConn<NetStream>` and `ClientConn<NetStream>` serve
//! both without a second instantiation of the HTTP code.
//!
//! Key types: [`NetStream`] (enum dispatch over [`AsyncReadRent`] / [`AsyncWriteRent`]) and
//! [`TlsStream`] (a client- or server-side rustls session over TCP, boxed because a rustls
//! connection is large and plain connections should not pay for its size).
//!
//! Invariants, TLS only:
//! - A peer that closes TCP without `close_notify` reads as a clean EOF (`Ok(0)`), as on
//!   plain TCP: HTTP/1.1 framing already detects truncated messages, and the HTTP client's
//!   stale-pooled-connection retry keys on a clean EOF before the response.
//! - An operation whose future was dropped mid-way leaves the TLS state unusable (its
//!   buffers travel with the abandoned kernel operation). The stream remembers that and fails
//!   every later operation with an error instead of touching the state; dropping it is fine.

use std::io;
use std::net::SocketAddr;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::BufResult;
use monoio_rustls::{ClientTlsStream, ServerTlsStream};

/// A connected stream: plain TCP or TLS over TCP.
pub enum NetStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (client or server side), after a completed handshake.
    Tls(Box<TlsStream>),
}

impl NetStream {
    /// Whether the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, NetStream::Tls(_))
    }
}

impl From<TcpStream> for NetStream {
    fn from(stream: TcpStream) -> Self {
        NetStream::Plain(stream)
    }
}

/// Opens a TCP connection with TCP_NODELAY (requests and responses are written whole, so Nagle
/// would only delay the last segment).
pub async fn tcp_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_addr(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A TLS session over TCP whose handshake is complete.
pub struct TlsStream {
    side: Side,
    /// An operation started and its future has not completed (yet, or ever: dropped).
    busy: bool,
}

enum Side {
    Client(ClientTlsStream<TcpStream>),
    Server(ServerTlsStream<TcpStream>),
}

/// Runs `$body` with `$s` bound to the inner stream of either side.
macro_rules! with_side {
    ($side:expr, $s:ident => $body:expr) => {
        match $side {
            Side::Client($s) => $body,
            Side::Server($s) => $body,
        }
    };
}

impl TlsStream {
    /// Wraps a client-side session (handshake done).
    pub(crate) fn client(stream: ClientTlsStream<TcpStream>) -> Self {
        TlsStream {
            side: Side::Client(stream),
            busy: false,
        }
    }

    /// Wraps a server-side session (handshake done).
    pub(crate) fn server(stream: ServerTlsStream<TcpStream>) -> Self {
        TlsStream {
            side: Side::Server(stream),
            busy: false,
        }
    }

    /// The negotiated ALPN protocol, if any (`http/1.1` when both sides offered it).
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        with_side!(&self.side, s => s.alpn_protocol())
    }

    /// Marks an operation as started; fails if an earlier one was abandoned mid-way.
    fn begin(&mut self) -> io::Result<()> {
        if self.busy {
            return Err(io::Error::other(
                "TLS stream unusable: an earlier read or write was abandoned mid-way",
            ));
        }
        self.busy = true;
        Ok(())
    }

    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        if let Err(e) = self.begin() {
            return (Err(e), buf);
        }
        let (res, buf) = with_side!(&mut self.side, s => s.read(buf).await);
        self.busy = false;
        (clean_eof(res), buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        if let Err(e) = self.begin() {
            return (Err(e), buf);
        }
        let (res, buf) = with_side!(&mut self.side, s => s.readv(buf).await);
        self.busy = false;
        (clean_eof(res), buf)
    }

    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        if let Err(e) = self.begin() {
            return (Err(e), buf);
        }
        let out = with_side!(&mut self.side, s => s.write(buf).await);
        self.busy = false;
        out
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        if let Err(e) = self.begin() {
            return (Err(e), buf);
        }
        let out = with_side!(&mut self.side, s => s.writev(buf).await);
        self.busy = false;
        out
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.begin()?;
        let out = with_side!(&mut self.side, s => s.flush().await);
        self.busy = false;
        out
    }

    /// Sends `close_notify`, then shuts the TCP write side.
    async fn shutdown(&mut self) -> io::Result<()> {
        self.begin()?;
        let out = with_side!(&mut self.side, s => s.shutdown().await);
        self.busy = false;
        out
    }
}

/// TCP closed without `close_notify` → EOF (see the module docs).
fn clean_eof(res: io::Result<usize>) -> io::Result<usize> {
    match res {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
        other => other,
    }
}

impl AsyncReadRent for NetStream {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            NetStream::Plain(s) => s.read(buf).await,
            NetStream::Tls(s) => s.read(buf).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            NetStream::Plain(s) => s.readv(buf).await,
            NetStream::Tls(s) => s.readv(buf).await,
        }
    }
}

impl AsyncWriteRent for NetStream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            NetStream::Plain(s) => s.write(buf).await,
            NetStream::Tls(s) => s.write(buf).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            NetStream::Plain(s) => s.writev(buf).await,
            NetStream::Tls(s) => s.writev(buf).await,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            NetStream::Plain(s) => s.flush().await,
            NetStream::Tls(s) => s.flush().await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            NetStream::Plain(s) => s.shutdown().await,
            NetStream::Tls(s) => s.shutdown().await,
        }
    }
}
