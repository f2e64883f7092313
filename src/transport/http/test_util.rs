//! Test helpers: loopback TCP pairs, raw socket I/O, and an in-memory scripted stream
//! that hands out input a few bytes per read (deterministic split reads).

use std::{any::Any, io};

use bytes::{Bytes, BytesMut};
use monoio::{
    buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut, Slice},
    io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt},
    net::{TcpListener, TcpStream},
    BufResult,
};

use super::HttpLimits;

/// A connected (client, server) pair on 127.0.0.1.
pub(super) async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let client = TcpStream::connect_addr(addr).await.expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    (client, server)
}

/// Writes all of `data`.
pub(super) async fn send_raw<S: AsyncWriteRent>(stream: &mut S, data: &[u8]) {
    let (res, _) = stream.write_all(data.to_vec()).await;
    res.expect("write");
}

/// Reads until EOF.
pub(super) async fn read_to_close<S: AsyncReadRent>(stream: &mut S) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let buf = Vec::with_capacity(4096);
        let (res, buf) = stream.read(buf).await;
        match res {
            Ok(0) | Err(_) => return out,
            Ok(_) => out.extend_from_slice(&buf),
        }
    }
}

/// Reads until `needle` has been seen; returns everything read.
pub(super) async fn read_until<S: AsyncReadRent>(stream: &mut S, needle: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    while !out.windows(needle.len()).any(|w| w == needle) {
        out.reserve(4096);
        let len = out.len();
        let (res, window) = stream.read(out.slice_mut(len..)).await;
        out = window.into_inner();
        assert!(res.expect("read") > 0, "eof before {needle:?}");
    }
    out.to_vec()
}

/// Small limits with short timeouts for tests.
pub(super) fn test_limits() -> HttpLimits {
    HttpLimits {
        max_header_bytes: 1024,
        max_headers: 16,
        max_body_bytes: 256,
        header_read_timeout: std::time::Duration::from_millis(200),
        idle_timeout: std::time::Duration::from_millis(200),
        max_sse_event_bytes: 1024,
    }
}

/// An in-memory stream: reads return at most `max_read` bytes of `input`, then EOF;
/// writes are appended to `output`.
pub(super) struct MemStream {
    input: Vec<u8>,
    pos: usize,
    max_read: usize,
    /// Everything written so far.
    pub output: Vec<u8>,
}

impl MemStream {
    /// A stream replaying `input` in reads of at most `max_read` bytes.
    pub(super) fn new(input: &[u8], max_read: usize) -> Self {
        Self {
            input: input.to_vec(),
            pos: 0,
            max_read: max_read.max(1),
            output: Vec::new(),
        }
    }
}

fn unsupported() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "vectored i/o not used")
}

impl AsyncReadRent for MemStream {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        let end = (self.pos + self.max_read).min(self.input.len());
        let mut src: &[u8] = &self.input[self.pos..end];
        let (res, buf) = src.read(buf).await;
        if let Ok(n) = res {
            self.pos += n;
        }
        (res, buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        (Err(unsupported()), buf)
    }
}

/// The bytes of the buffer types this layer writes (possibly wrapped in the `Slice` that
/// `write_all` passes down); reading an arbitrary `IoBuf` would need `unsafe`.
fn view<T: IoBuf>(buf: &T) -> Option<&[u8]> {
    fn plain(any: &dyn Any) -> Option<&[u8]> {
        any.downcast_ref::<Bytes>()
            .map(|b| &b[..])
            .or_else(|| any.downcast_ref::<BytesMut>().map(|b| &b[..]))
            .or_else(|| any.downcast_ref::<Vec<u8>>().map(|b| &b[..]))
    }
    fn sliced<B: Any + std::ops::Deref<Target = [u8]>>(any: &dyn Any) -> Option<&[u8]> {
        let s = any.downcast_ref::<Slice<B>>()?;
        s.get_ref().get(s.begin()..s.end())
    }
    let any = buf as &dyn Any;
    plain(any)
        .or_else(|| sliced::<Bytes>(any))
        .or_else(|| sliced::<BytesMut>(any))
        .or_else(|| sliced::<Vec<u8>>(any))
}

impl AsyncWriteRent for MemStream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let Some(bytes) = view(&buf) else {
            return (Err(unsupported()), buf);
        };
        self.output.extend_from_slice(bytes);
        let n = bytes.len();
        (Ok(n), buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        (Err(unsupported()), buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        Ok(())
    }
}
