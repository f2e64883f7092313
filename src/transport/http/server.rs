//! Server side of one HTTP/1.1 connection: read requests, write responses or streams.
//!
//! Key types: [`ServerConn`] (one accepted connection, generic over any monoio stream so
//! plain TCP, TLS or an in-memory pipe all fit) and [`Request`] (a fully-read request whose
//! path, query, headers and body are zero-copy `Bytes` views of the read buffer).
//!
//! Usage: `while let Some(req) = conn.read_request().await? { ...; conn.write_response(..)
//! .await?; if !conn.keep_alive() { break } }`. On `Err(e)`: if `e.should_respond()`, send
//! `e.status()` with `write_response` (it adds `connection: close`), then drop the
//! connection; the read position is lost, so never read another request after an error.
//!
//! Invariants: bytes after the current request (pipelining) stay buffered for the next
//! `read_request`. Reads are only abandoned by the idle timeout (nothing read yet), the
//! head timeout and body-stall timeouts — all of which end the connection — because a
//! dropped in-flight read loses data. Responses are HTTP/1.1 with an exact
//! `content-length` (or chunked when streaming); HTTP/1.0 peers get `connection:
//! keep-alive` when they asked for it and close-delimited streams otherwise.
//!
//! Errors: see `HttpError`; write errors are `io::Error` and leave `keep_alive()` false.
//! Perf: a response head plus a body up to 64 KiB is one write syscall.

use std::io;

use bytes::{BufMut, Bytes, BytesMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use smallvec::SmallVec;

use super::{
    body::{read_to_end, BodyFraming, BodyState},
    head::{
        content_length, detach_head, header_scratch, header_spans, map_parse_error, offsets,
        read_head, transfer_coding, wants_keep_alive, HeadTimeouts, HeadWait, Span, TransferCoding,
    },
    write::{check_header, put_dec, put_header, put_hex, reason, total_len, write_parts},
    Headers, HttpError, HttpLimits, Method,
};

/// A complete request; all byte fields share the connection's read buffer.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// Request path without the query (absolute-form targets are reduced to their path).
    pub path: Bytes,
    /// The query string after `?`, without the `?`.
    pub query: Option<Bytes>,
    /// All header fields.
    pub headers: Headers,
    /// The de-chunked body (empty when none).
    pub body: Bytes,
    /// Whether the client allows another request on this connection.
    pub keep_alive: bool,
    /// Minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
}

impl Request {
    /// The path as text (request targets are ASCII, so this only fails on hostile input,
    /// which then reads as an empty path).
    pub fn path_str(&self) -> &str {
        std::str::from_utf8(&self.path).unwrap_or("")
    }
}

/// What the current response is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No streamed response open.
    Idle,
    /// A chunked stream is open.
    Chunked,
    /// A close-delimited stream is open (HTTP/1.0 peer).
    Raw,
}

/// One server-side HTTP/1.1 connection.
pub struct ServerConn<S> {
    stream: S,
    buf: BytesMut,
    limits: HttpLimits,
    /// The current exchange allows another request afterwards.
    keep_alive: bool,
    /// The current request was HEAD: responses carry headers only.
    head_request: bool,
    /// The current request was HTTP/1.0.
    http10: bool,
    mode: Mode,
    /// An operation failed or was abandoned; no further request may be read.
    broken: bool,
}

/// Request head fields as offsets into the read buffer, before it is split off.
struct ParsedRequest {
    len: usize,
    method: Method,
    target: (u32, u32),
    version: u8,
    spans: SmallVec<[Span; 16]>,
}

impl<S: AsyncReadRent + AsyncWriteRent> ServerConn<S> {
    /// Wraps an accepted stream.
    pub fn new(stream: S, limits: HttpLimits) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            limits,
            keep_alive: true,
            head_request: false,
            http10: false,
            mode: Mode::Idle,
            broken: false,
        }
    }

    /// The limits this connection enforces.
    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    /// True when another request may be read after the current response: the client asked
    /// for persistence, the response did not close it, and nothing failed.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive && !self.broken && self.mode == Mode::Idle
    }

    /// The underlying stream (e.g. for peer address or socket options).
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Gives back the stream; buffered unread bytes are discarded.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Reads the next request, including its whole body.
    ///
    /// `Ok(None)`: the client closed cleanly or stayed idle past `idle_timeout` between
    /// requests; just drop the connection. An `Expect: 100-continue` request gets its
    /// interim `100 Continue` before the body is read (and not at all if the announced
    /// body is already too large).
    pub async fn read_request(&mut self) -> Result<Option<Request>, HttpError> {
        if self.broken || self.mode != Mode::Idle {
            return Err(HttpError::Io(io::Error::other("connection not reusable")));
        }
        // Pessimistic until the request is fully read: an error or an abandoned future
        // must leave the connection closing.
        self.broken = true;
        self.keep_alive = false;
        // An error response must not inherit the previous request's HEAD / 1.0 traits.
        self.head_request = false;
        self.http10 = false;
        let limits = self.limits;
        let timeouts = HeadTimeouts {
            idle: Some(limits.idle_timeout),
            head: Some(limits.header_read_timeout),
        };
        let parsed = read_head(&mut self.stream, &mut self.buf, &limits, timeouts, |buf| {
            parse_request(buf, &limits)
        })
        .await?;
        let parsed = match parsed {
            HeadWait::Parsed(p) => p,
            HeadWait::Closed | HeadWait::Idle => return Ok(None),
        };
        let raw = detach_head(&mut self.buf, parsed.len, parsed.spans);
        let (start, end) = (parsed.target.0 as usize, parsed.target.1 as usize);
        if start > end || end > raw.block.len() {
            return Err(HttpError::Malformed("invalid request target"));
        }
        let (path, query) = split_target(raw.block.slice(start..end));
        let headers = raw.headers;
        self.head_request = parsed.method == Method::Head;
        self.http10 = parsed.version == 0;
        let framing = request_framing(parsed.version, &headers)?;
        let body = self
            .read_request_body(parsed.version, &headers, framing)
            .await?;
        let keep_alive = wants_keep_alive(parsed.version, &headers);
        self.keep_alive = keep_alive;
        self.broken = false;
        Ok(Some(Request {
            method: parsed.method,
            path,
            query,
            headers,
            body,
            keep_alive,
            version: parsed.version,
        }))
    }

    /// Reads the body per `framing`, sending `100 Continue` first when asked to.
    async fn read_request_body(
        &mut self,
        version: u8,
        headers: &Headers,
        framing: BodyFraming,
    ) -> Result<Bytes, HttpError> {
        let max = self.limits.max_body_bytes;
        if let BodyFraming::Length(n) = framing {
            if n > max as u64 {
                return Err(HttpError::BodyTooLarge);
            }
        }
        if matches!(framing, BodyFraming::None | BodyFraming::Length(0)) {
            return Ok(Bytes::new());
        }
        let expects = version >= 1 && headers.has_token("expect", "100-continue");
        // Only worth sending while the client is still holding the body back.
        if expects && self.buf.is_empty() {
            let (res, _) = self
                .stream
                .write_all(Bytes::from_static(b"HTTP/1.1 100 Continue\r\n\r\n"))
                .await;
            res?;
        }
        let mut state = BodyState::new(framing, self.limits.max_header_bytes);
        let stall = Some(self.limits.idle_timeout);
        read_to_end(&mut self.stream, &mut self.buf, &mut state, max, stall).await
    }

    /// Writes a complete response with an exact `content-length`.
    ///
    /// `headers` must not contain `content-length` / `transfer-encoding` (they are
    /// computed and any given are ignored); a `connection: close` among them ends the
    /// connection after this response. For HEAD requests and 1xx/204/304 statuses the body
    /// is not sent.
    pub async fn write_response(
        &mut self,
        status: u16,
        headers: &[(&str, &[u8])],
        body: &[Bytes],
    ) -> io::Result<()> {
        if self.mode != Mode::Idle {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a streamed response is still open",
            ));
        }
        let bodyless = status < 200 || status == 204 || status == 304;
        let len = if bodyless {
            None
        } else {
            Some(total_len(body))
        };
        let head = self.response_head(status, headers, len.map(|n| n as u64))?;
        let body = if bodyless || self.head_request {
            &[][..]
        } else {
            body
        };
        self.guarded_write(head, body, b"").await
    }

    /// Starts a streamed response (e.g. `text/event-stream`): chunked for HTTP/1.1
    /// clients, close-delimited for HTTP/1.0 ones (then the connection ends with it).
    pub async fn start_stream(&mut self, status: u16, headers: &[(&str, &[u8])]) -> io::Result<()> {
        if self.mode != Mode::Idle {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a streamed response is already open",
            ));
        }
        if self.http10 {
            self.keep_alive = false;
        }
        let head = self.response_head(status, headers, None)?;
        self.guarded_write(head, &[], b"").await?;
        self.mode = if self.http10 {
            Mode::Raw
        } else {
            Mode::Chunked
        };
        Ok(())
    }

    /// Sends `data` as one chunk (pieces are concatenated). Empty data sends nothing,
    /// since an empty chunk would end the stream.
    pub async fn write_chunk(&mut self, data: &[Bytes]) -> io::Result<()> {
        let len = total_len(data);
        if len == 0 || self.head_request {
            return match self.mode {
                Mode::Idle => Err(not_streaming()),
                _ => Ok(()),
            };
        }
        match self.mode {
            Mode::Idle => Err(not_streaming()),
            Mode::Raw => self.guarded_write(BytesMut::new(), data, b"").await,
            Mode::Chunked => {
                let mut prefix = BytesMut::with_capacity(20);
                put_hex(&mut prefix, len as u64);
                prefix.put_slice(b"\r\n");
                self.guarded_write(prefix, data, b"\r\n").await
            }
        }
    }

    /// Ends the stream; afterwards the connection is reusable if `keep_alive()` says so.
    pub async fn finish_stream(&mut self) -> io::Result<()> {
        let mode = std::mem::replace(&mut self.mode, Mode::Idle);
        match mode {
            Mode::Idle => Err(not_streaming()),
            Mode::Raw => Ok(()),
            Mode::Chunked if self.head_request => Ok(()),
            Mode::Chunked => {
                let end = BytesMut::from(&b"0\r\n\r\n"[..]);
                self.guarded_write(end, &[], b"").await
            }
        }
    }

    /// Writes, marking the connection broken unless the write completes.
    async fn guarded_write(
        &mut self,
        head: BytesMut,
        body: &[Bytes],
        suffix: &[u8],
    ) -> io::Result<()> {
        let was_broken = std::mem::replace(&mut self.broken, true);
        write_parts(&mut self.stream, head, body, suffix).await?;
        self.broken = was_broken;
        Ok(())
    }

    /// Builds the status line and headers; `len` is the content length, or `None` for a
    /// streamed (chunked / close-delimited) body or a bodyless status.
    fn response_head(
        &mut self,
        status: u16,
        headers: &[(&str, &[u8])],
        len: Option<u64>,
    ) -> io::Result<BytesMut> {
        let given: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        let mut head = BytesMut::with_capacity(96 + given);
        head.put_slice(b"HTTP/1.1 ");
        put_dec(&mut head, u64::from(status.clamp(100, 999)));
        head.put_u8(b' ');
        head.put_slice(reason(status).as_bytes());
        head.put_slice(b"\r\n");
        let mut connection_given = false;
        for (name, value) in headers {
            check_header(name, value)?;
            if name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
            {
                continue;
            }
            if name.eq_ignore_ascii_case("connection") {
                connection_given = true;
                if contains_token(value, b"close") {
                    self.keep_alive = false;
                }
            }
            put_header(&mut head, name, value);
        }
        let bodyless = status < 200 || status == 204 || status == 304;
        match len {
            Some(n) => {
                head.put_slice(b"content-length: ");
                put_dec(&mut head, n);
                head.put_slice(b"\r\n");
            }
            None if !bodyless && !self.http10 => head.put_slice(b"transfer-encoding: chunked\r\n"),
            None => {}
        }
        if !connection_given {
            if !self.keep_alive() {
                head.put_slice(b"connection: close\r\n");
            } else if self.http10 {
                head.put_slice(b"connection: keep-alive\r\n");
            }
        }
        head.put_slice(b"\r\n");
        Ok(head)
    }
}

fn not_streaming() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "no streamed response is open")
}

/// Case-insensitive token membership in a comma-separated list.
fn contains_token(list: &[u8], token: &[u8]) -> bool {
    list.split(|b| *b == b',')
        .any(|t| super::head::trim_ows(t).eq_ignore_ascii_case(token))
}

/// Parses a request head at the start of `buf`, returning offsets only (the buffer is
/// split afterwards, once httparse's borrows have ended).
fn parse_request(
    buf: &mut BytesMut,
    limits: &HttpLimits,
) -> Result<Option<ParsedRequest>, HttpError> {
    let mut scratch = header_scratch(limits);
    let mut req = httparse::Request::new(&mut scratch);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(map_parse_error(e)),
    };
    if len > limits.max_header_bytes {
        return Err(HttpError::HeadersTooLarge);
    }
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HttpError::Malformed("incomplete request line"));
    };
    Ok(Some(ParsedRequest {
        len,
        method: Method::from_bytes(method.as_bytes()),
        target: offsets(buf, path.as_bytes()),
        version,
        spans: header_spans(buf, req.headers),
    }))
}

/// Splits a request target into path and query; absolute-form targets
/// (`http://host/p?q`) are reduced to their path, as RFC 9112 §3.2.2 requires of servers.
fn split_target(target: Bytes) -> (Bytes, Option<Bytes>) {
    let mut path = target;
    if let Some(scheme_end) = find(&path, b"://") {
        if path[..scheme_end].iter().all(u8::is_ascii_alphabetic) {
            let after = scheme_end + 3;
            path = match path[after..].iter().position(|b| matches!(b, b'/' | b'?')) {
                Some(i) if path[after + i] == b'/' => path.slice(after + i..),
                _ => Bytes::from_static(b"/"),
            };
        }
    }
    match path.iter().position(|b| *b == b'?') {
        Some(q) => (path.slice(..q), Some(path.slice(q + 1..))),
        None => (path, None),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decides request body framing (RFC 9112 §6). Messages carrying both Content-Length and
/// Transfer-Encoding are refused rather than resolved, since they are the usual shape of
/// request-smuggling attempts and no honest client sends them.
fn request_framing(version: u8, headers: &Headers) -> Result<BodyFraming, HttpError> {
    let te = transfer_coding(headers);
    let cl = content_length(headers)?;
    match (te, cl) {
        (TransferCoding::Absent, None) => Ok(BodyFraming::None),
        (TransferCoding::Absent, Some(n)) => Ok(BodyFraming::Length(n)),
        (_, Some(_)) => Err(HttpError::Malformed(
            "both content-length and transfer-encoding",
        )),
        (_, None) if version == 0 => Err(HttpError::Malformed("transfer-encoding in HTTP/1.0")),
        (TransferCoding::Chunked, None) => Ok(BodyFraming::Chunked),
        (TransferCoding::Other { .. }, None) => Err(HttpError::UnsupportedTransferEncoding),
    }
}
