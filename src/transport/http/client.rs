//! Client side of one HTTP/1.1 connection: send requests upstream, read responses whole or
//! as a stream of body pieces (for SSE replies).
//!
//! Key types: [`ClientConn`] (one connection, generic over any monoio stream),
//! [`ResponseHead`] (status, zero-copy headers, body framing), and `BodyState` for
//! incremental reads.
//!
//! Usage: `send_request` → `read_response_head` → either `read_body` (whole) or
//! `read_body_chunk` until `Ok(None)`; then `is_reusable()` decides whether the connection
//! may go back to a pool. Interim 1xx responses (other than 101) are skipped.
//!
//! Invariants: a connection is reusable only when the last response was fully consumed,
//! allowed persistence, left no stray bytes behind, and no operation failed or was
//! abandoned — every public async method marks the connection broken on entry and clears
//! the mark only on success, so dropping one of its futures (e.g. a caller's timeout) can
//! never return a desynchronised connection to a pool. This layer applies no timeouts of
//! its own: SSE replies may legitimately idle for minutes.
//!
//! Errors: `HttpError`; `is_closed_before_response()` flags the stale-pooled-connection
//! case (safe to retry idempotent requests). Perf: request head + body up to 64 KiB is one
//! write syscall; body pieces are zero-copy views of the read buffer.

use std::{io, net::SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};
use monoio::{
    io::{AsyncReadRent, AsyncWriteRent},
    net::TcpStream,
};

use super::{
    body::{next_piece, read_to_end, BodyFraming},
    head::{
        content_length, detach_head, header_scratch, header_spans, map_parse_error, read_head,
        transfer_coding, wants_keep_alive, HeadTimeouts, HeadWait, Span, TransferCoding,
    },
    write::{
        check_header, check_token, check_visible, put_dec, put_header, total_len, write_parts,
    },
    Headers, HttpError, HttpLimits,
};

pub use super::body::BodyState;

/// A response's status line and headers, plus how its body is framed.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// Status code (never 1xx except 101).
    pub status: u16,
    /// Minor HTTP version of the response.
    pub version: u8,
    /// Header fields (zero-copy views of the received head).
    pub headers: Headers,
    /// How the body is delimited.
    pub framing: BodyFraming,
    /// Whether the server allows another request on this connection.
    pub keep_alive: bool,
}

impl ResponseHead {
    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name)
    }
}

/// One client-side HTTP/1.1 connection.
pub struct ClientConn<S> {
    stream: S,
    buf: BytesMut,
    limits: HttpLimits,
    /// The request in flight was HEAD (its response has no body).
    head_request: bool,
    /// A request was sent and its final response head not yet read.
    awaiting: bool,
    /// A response head was read and its body not fully consumed.
    body_pending: bool,
    /// The last response allows another request.
    keep_alive: bool,
    /// An operation failed or was abandoned mid-way.
    broken: bool,
}

/// Opens a TCP connection with TCP_NODELAY (requests are written whole, so Nagle only
/// adds latency) and default limits.
pub async fn connect(addr: SocketAddr) -> io::Result<ClientConn<TcpStream>> {
    let stream = TcpStream::connect_addr(addr).await?;
    stream.set_nodelay(true)?;
    Ok(ClientConn::new(stream, HttpLimits::default()))
}

/// Response head as offsets, before the buffer is split.
struct ParsedResponse {
    len: usize,
    status: u16,
    version: u8,
    spans: smallvec::SmallVec<[Span; 16]>,
}

impl<S: AsyncReadRent + AsyncWriteRent> ClientConn<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S, limits: HttpLimits) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            limits,
            head_request: false,
            awaiting: false,
            body_pending: false,
            keep_alive: true,
            broken: false,
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Gives back the stream; buffered unread bytes are discarded.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// True when the connection can carry another request: nothing failed or was
    /// abandoned, the last response was fully read and allowed persistence, and the
    /// server sent nothing unsolicited.
    pub fn is_reusable(&self) -> bool {
        !self.broken
            && self.keep_alive
            && !self.awaiting
            && !self.body_pending
            && self.buf.is_empty()
    }

    /// Sends one request with `host` and an exact `content-length` (HTTP/1.1, persistent).
    ///
    /// `headers` must not repeat `host`, `content-length` or `transfer-encoding`; such
    /// entries are ignored. Invalid method, target, host or header bytes fail with
    /// `InvalidInput` before anything is written.
    pub async fn send_request(
        &mut self,
        method: &str,
        path_and_query: &str,
        host: &str,
        headers: &[(&str, &[u8])],
        body: &[Bytes],
    ) -> io::Result<()> {
        if !self.is_reusable() {
            return Err(io::Error::other("connection not reusable"));
        }
        check_token(method)?;
        check_visible(path_and_query, "invalid request target")?;
        check_visible(host, "invalid host")?;
        let given: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        let mut head = BytesMut::with_capacity(64 + method.len() + path_and_query.len() + given);
        head.put_slice(method.as_bytes());
        head.put_u8(b' ');
        head.put_slice(path_and_query.as_bytes());
        head.put_slice(b" HTTP/1.1\r\nhost: ");
        head.put_slice(host.as_bytes());
        head.put_slice(b"\r\ncontent-length: ");
        put_dec(&mut head, total_len(body) as u64);
        head.put_slice(b"\r\n");
        for (name, value) in headers {
            check_header(name, value)?;
            let framing = ["host", "content-length", "transfer-encoding"];
            if !framing.iter().any(|f| name.eq_ignore_ascii_case(f)) {
                put_header(&mut head, name, value);
            }
        }
        head.put_slice(b"\r\n");
        self.broken = true;
        write_parts(&mut self.stream, head, body, b"").await?;
        self.head_request = method == "HEAD";
        self.awaiting = true;
        self.broken = false;
        Ok(())
    }

    /// Reads the final response head of the request in flight (skipping 1xx interims).
    pub async fn read_response_head(&mut self) -> Result<ResponseHead, HttpError> {
        if !self.awaiting || self.broken {
            return Err(HttpError::Io(io::Error::other(
                "no request awaiting a response",
            )));
        }
        self.broken = true;
        let limits = self.limits;
        let no_timeouts = HeadTimeouts {
            idle: None,
            head: None,
        };
        let mut interim_seen = false;
        loop {
            let wait = read_head(
                &mut self.stream,
                &mut self.buf,
                &limits,
                no_timeouts,
                |buf| parse_response(buf, &limits),
            )
            .await?;
            let parsed = match wait {
                HeadWait::Parsed(p) => p,
                HeadWait::Closed | HeadWait::Idle if interim_seen => {
                    return Err(HttpError::unexpected_eof())
                }
                HeadWait::Closed | HeadWait::Idle => {
                    return Err(HttpError::closed_before_response())
                }
            };
            let headers = detach_head(&mut self.buf, parsed.len, parsed.spans).headers;
            if (100..200).contains(&parsed.status) && parsed.status != 101 {
                interim_seen = true;
                continue;
            }
            return self.accept_head(parsed.status, parsed.version, headers);
        }
    }

    /// Records a final response head and derives its framing (RFC 9112 §6.3).
    fn accept_head(
        &mut self,
        status: u16,
        version: u8,
        headers: Headers,
    ) -> Result<ResponseHead, HttpError> {
        let te = transfer_coding(&headers);
        let bodyless = self.head_request || status < 200 || status == 204 || status == 304;
        let framing = match (bodyless, te, content_length(&headers)?) {
            (true, _, _) => BodyFraming::None,
            (false, TransferCoding::Chunked, _) => BodyFraming::Chunked,
            (false, TransferCoding::Other { .. }, _) => {
                return Err(HttpError::UnsupportedTransferEncoding)
            }
            (false, TransferCoding::Absent, Some(n)) => BodyFraming::Length(n),
            (false, TransferCoding::Absent, None) => BodyFraming::UntilClose,
        };
        // Both framings at once is a broken or hostile server: read by chunks, never reuse.
        let ambiguous = te != TransferCoding::Absent && headers.get("content-length").is_some();
        let keep_alive = wants_keep_alive(version, &headers)
            && framing != BodyFraming::UntilClose
            && status != 101
            && !ambiguous;
        self.awaiting = false;
        self.keep_alive = keep_alive;
        self.body_pending = !matches!(framing, BodyFraming::None | BodyFraming::Length(0));
        self.broken = false;
        Ok(ResponseHead {
            status,
            version,
            headers,
            framing,
            keep_alive,
        })
    }

    /// A fresh incremental-read state for `head`'s body, for `read_body_chunk`.
    pub fn body_state(&self, head: &ResponseHead) -> BodyState {
        BodyState::new(head.framing, self.limits.max_header_bytes)
    }

    /// Reads the whole body of `head` (the response just read), failing with
    /// `BodyTooLarge` beyond `max` bytes — before reading, when the length is announced.
    pub async fn read_body(&mut self, head: &ResponseHead, max: usize) -> Result<Bytes, HttpError> {
        if !self.body_pending {
            return Ok(Bytes::new());
        }
        let mut state = self.body_state(head);
        self.broken = true;
        let body = read_to_end(&mut self.stream, &mut self.buf, &mut state, max, None).await?;
        self.body_pending = false;
        self.broken = false;
        Ok(body)
    }

    /// Returns the next piece of body as soon as any arrives (never waits for the whole
    /// body); `Ok(None)` once the body is complete. Call until `None` before reusing the
    /// connection. `state` comes from [`ClientConn::body_state`] for the current response.
    pub async fn read_body_chunk(
        &mut self,
        state: &mut BodyState,
    ) -> Result<Option<Bytes>, HttpError> {
        if !self.body_pending || state.is_done() {
            self.body_pending = false;
            return Ok(None);
        }
        self.broken = true;
        let piece = next_piece(&mut self.stream, &mut self.buf, state).await?;
        self.body_pending = !state.is_done();
        self.broken = false;
        Ok(piece)
    }
}

/// Parses a response head at the start of `buf` into offsets.
fn parse_response(
    buf: &mut BytesMut,
    limits: &HttpLimits,
) -> Result<Option<ParsedResponse>, HttpError> {
    let mut scratch = header_scratch(limits);
    let mut resp = httparse::Response::new(&mut scratch);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(map_parse_error(e)),
    };
    if len > limits.max_header_bytes {
        return Err(HttpError::HeadersTooLarge);
    }
    let (Some(status), Some(version)) = (resp.code, resp.version) else {
        return Err(HttpError::Malformed("incomplete status line"));
    };
    Ok(Some(ParsedResponse {
        len,
        status,
        version,
        spans: header_spans(buf, resp.headers),
    }))
}
