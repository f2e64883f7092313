//! The one error type of the HTTP layer and its mapping to a response status.
//!
//! Key type: [`HttpError`]. Every variant except `Io` means "the peer sent something we
//! refuse"; the server answers with [`HttpError::status`] and closes the connection, the
//! client discards the connection. `Io` means the transport itself failed (or the peer left
//! mid-message): no response can be delivered, so [`HttpError::should_respond`] is false.
//!
//! A client-side marker distinguishes "the peer closed before sending a single byte of the
//! response" (a stale pooled connection; see [`HttpError::is_closed_before_response`]), so a
//! pool can retry idempotent work on a fresh connection without guessing from error text.

use std::{fmt, io};

/// Why reading or parsing an HTTP message failed.
#[derive(Debug)]
pub enum HttpError {
    /// The transport failed, or the peer closed mid-message. Nothing can be sent back.
    Io(io::Error),
    /// Syntactically or semantically invalid message; the text says which rule broke. (400)
    Malformed(&'static str),
    /// Head larger than `max_header_bytes` or with more than `max_headers` fields. (431)
    HeadersTooLarge,
    /// Body larger than `max_body_bytes`. (413)
    BodyTooLarge,
    /// Head not received within `header_read_timeout`, or a body read stalled. (408)
    Timeout,
    /// A transfer coding other than plain `chunked`. (501)
    UnsupportedTransferEncoding,
}

/// Marker payload of the `io::Error` returned when a response never started.
#[derive(Debug)]
struct ClosedBeforeResponse;

impl fmt::Display for ClosedBeforeResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection closed before any response byte")
    }
}

impl std::error::Error for ClosedBeforeResponse {}

impl HttpError {
    /// The HTTP status a server should answer with (400 for `Io`, which gets no answer).
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Io(_) | HttpError::Malformed(_) => 400,
            HttpError::HeadersTooLarge => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::Timeout => 408,
            HttpError::UnsupportedTransferEncoding => 501,
        }
    }

    /// False when the transport is gone, so writing an error response is pointless.
    pub fn should_respond(&self) -> bool {
        !matches!(self, HttpError::Io(_))
    }

    /// True when the peer closed the connection cleanly before sending any byte of the
    /// response: the request may never have been processed (typical of a pooled connection
    /// the server had already timed out), so an idempotent request can be retried.
    pub fn is_closed_before_response(&self) -> bool {
        match self {
            HttpError::Io(e) => e
                .get_ref()
                .is_some_and(|inner| inner.is::<ClosedBeforeResponse>()),
            _ => false,
        }
    }

    /// The error for "peer closed before the response started".
    pub(crate) fn closed_before_response() -> Self {
        HttpError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            ClosedBeforeResponse,
        ))
    }

    /// The error for "peer closed in the middle of a message".
    pub(crate) fn unexpected_eof() -> Self {
        HttpError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-message",
        ))
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Io(e) => write!(f, "http i/o error: {e}"),
            HttpError::Malformed(why) => write!(f, "malformed http message: {why}"),
            HttpError::HeadersTooLarge => f.write_str("http head too large"),
            HttpError::BodyTooLarge => f.write_str("http body too large"),
            HttpError::Timeout => f.write_str("http read timed out"),
            HttpError::UnsupportedTransferEncoding => {
                f.write_str("unsupported http transfer-encoding")
            }
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HttpError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        HttpError::Io(e)
    }
}
