//! Serialising heads and writing messages with few syscalls.
//!
//! Role: shared by server responses, streamed chunks and client requests. Heads are built
//! into one `BytesMut` (no `format!`); header names/values supplied by callers are validated
//! so no CR/LF can ever be injected into the stream.
//!
//! Perf: monoio's vectored writes need raw iovecs (an `unsafe` impl to pair them with
//! `Bytes`), so instead small pieces are coalesced: a message up to `COALESCE_MAX` bytes
//! goes out as a single write of head + body; larger pieces are written directly from their
//! own `Bytes` without copying.
//!
//! Errors: invalid caller input → `io::ErrorKind::InvalidInput` before anything is
//! written; transport failures are passed through (the stream is then unusable).

use std::io;

use bytes::{BufMut, Bytes, BytesMut};
use monoio::io::{AsyncWriteRent, AsyncWriteRentExt};

/// Everything up to this size is copied into one buffer and written with one syscall.
const COALESCE_MAX: usize = 64 * 1024;

/// The reason phrase for a status code (empty for unknown codes, which HTTP allows).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Appends `n` in decimal.
pub(crate) fn put_dec(buf: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.put_slice(&digits[i..]);
}

/// Appends `n` in lowercase hexadecimal (chunk sizes).
pub(crate) fn put_hex(buf: &mut BytesMut, mut n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = HEX[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    buf.put_slice(&digits[i..]);
}

fn invalid(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

/// True for RFC 9110 token characters (header names, methods).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks a caller-supplied header; rejects anything that could split the message.
pub(crate) fn check_header(name: &str, value: &[u8]) -> io::Result<()> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(invalid("invalid header name"));
    }
    if value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(invalid("invalid header value"));
    }
    Ok(())
}

/// Checks a request method token.
pub(crate) fn check_token(token: &str) -> io::Result<()> {
    if token.is_empty() || !token.bytes().all(is_token_byte) {
        return Err(invalid("invalid method"));
    }
    Ok(())
}

/// Checks a request target or host: visible ASCII only, no spaces or controls.
pub(crate) fn check_visible(s: &str, why: &'static str) -> io::Result<()> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(why));
    }
    Ok(())
}

/// Appends `name: value\r\n` (already validated).
pub(crate) fn put_header(buf: &mut BytesMut, name: &str, value: &[u8]) {
    buf.put_slice(name.as_bytes());
    buf.put_slice(b": ");
    buf.put_slice(value);
    buf.put_slice(b"\r\n");
}

/// Total length of body pieces.
pub(crate) fn total_len(body: &[Bytes]) -> usize {
    body.iter().map(Bytes::len).sum()
}

/// Writes one buffer completely.
async fn write_buf<S: AsyncWriteRent, B: monoio::buf::IoBuf>(
    stream: &mut S,
    buf: B,
) -> io::Result<()> {
    let (res, _) = stream.write_all(buf).await;
    res.map(|_| ())
}

/// Writes `prefix`, then the `body` pieces, then `suffix`, coalescing into as few writes
/// as the sizes allow (one for anything up to `COALESCE_MAX`).
pub(crate) async fn write_parts<S: AsyncWriteRent>(
    stream: &mut S,
    mut pending: BytesMut,
    body: &[Bytes],
    suffix: &[u8],
) -> io::Result<()> {
    let total = pending.len() + total_len(body) + suffix.len();
    if total <= COALESCE_MAX {
        pending.reserve(total - pending.len());
        for piece in body {
            pending.put_slice(piece);
        }
        pending.put_slice(suffix);
        return write_buf(stream, pending).await;
    }
    for piece in body {
        if pending.len() + piece.len() <= COALESCE_MAX {
            pending.put_slice(piece);
            continue;
        }
        if !pending.is_empty() {
            write_buf(stream, std::mem::take(&mut pending)).await?;
        }
        if piece.len() >= COALESCE_MAX / 2 {
            // Big enough that a copy costs more than the extra syscall.
            write_buf(stream, piece.clone()).await?;
        } else {
            pending.put_slice(piece);
        }
    }
    pending.put_slice(suffix);
    if pending.is_empty() {
        return Ok(());
    }
    write_buf(stream, pending).await
}
