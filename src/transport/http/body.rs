//! Message bodies: framing, the chunked decoder, and the read loops shared by server and
//! client (whole-body and incremental).
//!
//! Key types: [`BodyFraming`] (how a body is delimited), [`BodyState`] (progress through
//! one body, usable to pull bytes as they arrive), and the private `ChunkedDecoder`.
//!
//! Invariants: decoding consumes bytes from the connection buffer only when they belong to
//! the current body, so bytes of a pipelined next message stay in the buffer. Body bytes
//! are handed out as zero-copy `split_to(..).freeze()` views of the read buffer; a body
//! delimited by Content-Length is read into one contiguous buffer sized up front.
//! Chunked framing is strict: CRLF line endings only, 1–16 hex digits, bounded extension
//! and trailer lines (trailers are validated and discarded).
//!
//! Errors: bad framing → `Malformed`; over the size cap → `BodyTooLarge` (checked against
//! the announced size before reading where possible); EOF inside a delimited body →
//! `Io(UnexpectedEof)`. Nothing panics on input.

use std::{io, time::Duration};

use bytes::{Buf, Bytes, BytesMut};
use monoio::{buf::IoBufMut, io::AsyncReadRent};
use smallvec::SmallVec;

use super::HttpError;

/// Spare capacity requested for an ordinary read.
const READ_RESERVE: usize = 8 * 1024;
/// Spare room an idle connection's read buffer keeps while waiting for its next message.
const IDLE_RESERVE: usize = 2 * 1024;
/// Longest chunk-size line (size + extensions) accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// How the body of a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all (HEAD responses, 1xx/204/304, requests without length).
    None,
    /// Exactly this many bytes (Content-Length).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the peer closes (responses without length; never reusable).
    UntilClose,
}

/// Reads once, appending to `buf` in its spare capacity, making sure at least `want` bytes of
/// spare room exist (capped at a sane minimum). Returns the byte count; 0 means EOF.
///
/// The buffer is moved into the read and back (monoio's ownership-passing I/O); if this
/// future is dropped mid-read, `buf` is left empty, which is why callers only cancel reads
/// on connections they are about to close.
pub(crate) async fn read_more_hint<S: AsyncReadRent>(
    stream: &mut S,
    buf: &mut BytesMut,
    want: usize,
) -> io::Result<usize> {
    // An empty buffer is a connection waiting for its next message, possibly for a long time:
    // it holds only a small buffer meanwhile (most MCP requests fit; larger ones read on).
    let want = if buf.is_empty() {
        IDLE_RESERVE
    } else {
        want.max(READ_RESERVE / 8)
    };
    if buf.capacity() - buf.len() < want.min(READ_RESERVE) {
        buf.reserve(want);
    }
    // monoio reads into a buffer from its *start* (`write_ptr`), overwriting; reading
    // into the `len..capacity` window is what appends after the bytes already held.
    let owned = std::mem::take(buf);
    let len = owned.len();
    let (res, window) = stream.read(owned.slice_mut(len..)).await;
    *buf = window.into_inner();
    res
}

/// [`read_more_hint`] with the ordinary read size.
pub(crate) async fn read_more<S: AsyncReadRent>(
    stream: &mut S,
    buf: &mut BytesMut,
) -> io::Result<usize> {
    read_more_hint(stream, buf, READ_RESERVE).await
}

/// A body read that fails with `Timeout` if no byte arrives within `stall`.
async fn read_body_more<S: AsyncReadRent>(
    stream: &mut S,
    buf: &mut BytesMut,
    want: usize,
    stall: Option<Duration>,
) -> Result<usize, HttpError> {
    match stall {
        Some(d) => monoio::time::timeout(d, read_more_hint(stream, buf, want))
            .await
            .map_err(|_| HttpError::Timeout)?
            .map_err(HttpError::Io),
        None => Ok(read_more_hint(stream, buf, want).await?),
    }
}

/// One step of body decoding.
#[derive(Debug)]
pub(crate) enum Step {
    /// Some body bytes (never empty).
    Data(Bytes),
    /// The buffer holds no further complete unit; read more.
    NeedMore,
    /// The body is complete.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkPhase {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF that closes chunk data.
    DataEnd,
    /// Reading trailer lines after the last chunk.
    Trailer,
    /// Final CRLF seen.
    Done,
}

/// Incremental `Transfer-Encoding: chunked` decoder over a connection buffer.
#[derive(Debug, Clone)]
struct ChunkedDecoder {
    phase: ChunkPhase,
    trailer_bytes: usize,
    max_trailer_bytes: usize,
}

impl ChunkedDecoder {
    fn new(max_trailer_bytes: usize) -> Self {
        Self {
            phase: ChunkPhase::Size,
            trailer_bytes: 0,
            max_trailer_bytes,
        }
    }

    /// Bytes still announced for the current chunk (0 between chunks).
    fn announced(&self) -> u64 {
        match self.phase {
            ChunkPhase::Data(n) => n,
            _ => 0,
        }
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Step, HttpError> {
        loop {
            match self.phase {
                ChunkPhase::Size => {
                    let end = match find_line(buf, MAX_CHUNK_LINE) {
                        Ok(Some(end)) => end,
                        Ok(None) => return Ok(Step::NeedMore),
                        Err(LineError::TooLong) => {
                            return Err(HttpError::Malformed("chunk size line too long"))
                        }
                        Err(LineError::Bad(why)) => return Err(HttpError::Malformed(why)),
                    };
                    let size = parse_chunk_size(&buf[..end])?;
                    buf.advance(end + 2);
                    self.phase = if size == 0 {
                        ChunkPhase::Trailer
                    } else {
                        ChunkPhase::Data(size)
                    };
                }
                ChunkPhase::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let data = buf.split_to(n).freeze();
                    let left = left - n as u64;
                    self.phase = if left == 0 {
                        ChunkPhase::DataEnd
                    } else {
                        ChunkPhase::Data(left)
                    };
                    return Ok(Step::Data(data));
                }
                ChunkPhase::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(HttpError::Malformed("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.phase = ChunkPhase::Size;
                }
                ChunkPhase::Trailer => {
                    if !self.step_trailer(buf)? {
                        return Ok(Step::NeedMore);
                    }
                }
                ChunkPhase::Done => return Ok(Step::Done),
            }
        }
    }

    /// Consumes one trailer line; returns false when more bytes are needed.
    fn step_trailer(&mut self, buf: &mut BytesMut) -> Result<bool, HttpError> {
        let budget = self.max_trailer_bytes.saturating_sub(self.trailer_bytes);
        let end = match find_line(buf, budget) {
            Ok(Some(end)) => end,
            Ok(None) => return Ok(false),
            Err(LineError::TooLong) => return Err(HttpError::HeadersTooLarge),
            Err(LineError::Bad(why)) => return Err(HttpError::Malformed(why)),
        };
        if end == 0 {
            self.phase = ChunkPhase::Done;
        } else if !buf[..end].contains(&b':') {
            return Err(HttpError::Malformed("invalid trailer field"));
        }
        self.trailer_bytes += end + 2;
        buf.advance(end + 2);
        Ok(true)
    }
}

/// Why a framing line could not be taken.
enum LineError {
    /// No CRLF within the allowed length.
    TooLong,
    /// Syntax violation.
    Bad(&'static str),
}

/// Finds a CRLF-terminated line at the start of `buf`; returns the line length (without
/// CRLF). Bare LF, stray CR or control bytes inside the line are rejected: lenient line
/// parsing is a classic request-smuggling vector.
fn find_line(buf: &[u8], max_line: usize) -> Result<Option<usize>, LineError> {
    let window = &buf[..buf.len().min(max_line.saturating_add(2))];
    let Some(lf) = window.iter().position(|b| *b == b'\n') else {
        return if buf.len() > max_line.saturating_add(1) {
            Err(LineError::TooLong)
        } else {
            Ok(None)
        };
    };
    if lf == 0 || window[lf - 1] != b'\r' {
        return Err(LineError::Bad("bare LF in chunked framing"));
    }
    let line = &window[..lf - 1];
    if line
        .iter()
        .any(|b| (*b < 0x20 && *b != b'\t') || *b == 0x7f)
    {
        return Err(LineError::Bad("control byte in chunked framing"));
    }
    Ok(Some(lf - 1))
}

/// Parses `1*HEXDIG [BWS] [";" extensions]`; extensions are ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(HttpError::Malformed("invalid chunk size"));
    }
    let rest = super::head::trim_ows(&line[digits..]);
    if !rest.is_empty() && rest[0] != b';' {
        return Err(HttpError::Malformed("invalid chunk size"));
    }
    let size = line[..digits].iter().fold(0u64, |acc, d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        };
        (acc << 4) | u64::from(v)
    });
    Ok(size)
}

#[derive(Debug, Clone)]
enum Progress {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// Progress through one message body; feed it to `ClientConn::read_body_chunk` to pull
/// body bytes as they arrive.
#[derive(Debug, Clone)]
pub struct BodyState {
    progress: Progress,
}

impl BodyState {
    /// A fresh state for a body with the given framing; `max_trailer_bytes` bounds the
    /// trailer section of a chunked body.
    pub fn new(framing: BodyFraming, max_trailer_bytes: usize) -> Self {
        let progress = match framing {
            BodyFraming::None | BodyFraming::Length(0) => Progress::Done,
            BodyFraming::Length(n) => Progress::Length(n),
            BodyFraming::Chunked => Progress::Chunked(ChunkedDecoder::new(max_trailer_bytes)),
            BodyFraming::UntilClose => Progress::UntilClose,
        };
        Self { progress }
    }

    /// True once the whole body has been consumed.
    pub fn is_done(&self) -> bool {
        matches!(self.progress, Progress::Done)
    }

    /// Body bytes announced but not yet received (Content-Length rest or current chunk).
    fn announced(&self) -> u64 {
        match &self.progress {
            Progress::Length(n) => *n,
            Progress::Chunked(d) => d.announced(),
            _ => 0,
        }
    }

    /// Takes the next decodable piece of body from `buf`.
    pub(crate) fn step(&mut self, buf: &mut BytesMut) -> Result<Step, HttpError> {
        match &mut self.progress {
            Progress::Done => Ok(Step::Done),
            Progress::Length(left) => {
                if buf.is_empty() {
                    return Ok(Step::NeedMore);
                }
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                *left -= n as u64;
                if *left == 0 {
                    self.progress = Progress::Done;
                }
                Ok(Step::Data(buf.split_to(n).freeze()))
            }
            Progress::Chunked(dec) => {
                let step = dec.step(buf)?;
                if matches!(step, Step::Done) {
                    self.progress = Progress::Done;
                }
                Ok(step)
            }
            Progress::UntilClose if buf.is_empty() => Ok(Step::NeedMore),
            Progress::UntilClose => Ok(Step::Data(buf.split().freeze())),
        }
    }

    /// The peer closed: fine only for a close-delimited body.
    pub(crate) fn on_eof(&mut self) -> Result<(), HttpError> {
        match self.progress {
            Progress::UntilClose | Progress::Done => {
                self.progress = Progress::Done;
                Ok(())
            }
            _ => Err(HttpError::unexpected_eof()),
        }
    }
}

/// Reads the next piece of body, waiting for the peer only when the buffer holds nothing
/// decodable. `Ok(None)` once the body is complete.
pub(crate) async fn next_piece<S: AsyncReadRent>(
    stream: &mut S,
    buf: &mut BytesMut,
    state: &mut BodyState,
) -> Result<Option<Bytes>, HttpError> {
    loop {
        match state.step(buf)? {
            Step::Data(b) => return Ok(Some(b)),
            Step::Done => return Ok(None),
            Step::NeedMore => {
                if read_more(stream, buf).await? == 0 {
                    state.on_eof()?;
                }
            }
        }
    }
}

/// Reads a whole body into one `Bytes`, failing with `BodyTooLarge` past `max` bytes.
/// `stall` bounds each wait for the peer (the connection must be closed on `Timeout`).
pub(crate) async fn read_to_end<S: AsyncReadRent>(
    stream: &mut S,
    buf: &mut BytesMut,
    state: &mut BodyState,
    max: usize,
    stall: Option<Duration>,
) -> Result<Bytes, HttpError> {
    if let Progress::Length(n) = state.progress {
        let need = usize::try_from(n).ok().filter(|n| *n <= max);
        let need = need.ok_or(HttpError::BodyTooLarge)?;
        // One allocation of the exact size keeps the body contiguous: no regrowth copies.
        buf.reserve(need.saturating_sub(buf.len()));
        while buf.len() < need {
            let missing = need - buf.len();
            if read_body_more(stream, buf, missing, stall).await? == 0 {
                return Err(HttpError::unexpected_eof());
            }
        }
        state.progress = Progress::Done;
        return Ok(buf.split_to(need).freeze());
    }
    let mut pieces: SmallVec<[Bytes; 4]> = SmallVec::new();
    let mut total = 0usize;
    loop {
        let step = state.step(buf)?;
        if let Step::Data(b) = &step {
            total = total.saturating_add(b.len());
        }
        // Counting what is announced but unread refuses a huge chunk before reading it.
        let announced = usize::try_from(state.announced()).unwrap_or(usize::MAX);
        if total.saturating_add(announced) > max {
            return Err(HttpError::BodyTooLarge);
        }
        match step {
            Step::Data(b) => pieces.push(b),
            Step::Done => break,
            Step::NeedMore => {
                if read_body_more(stream, buf, READ_RESERVE, stall).await? == 0 {
                    state.on_eof()?;
                }
            }
        }
    }
    Ok(concat(pieces, total))
}

/// Joins body pieces, without copying when there is only one.
fn concat(mut pieces: SmallVec<[Bytes; 4]>, total: usize) -> Bytes {
    match pieces.len() {
        0 => Bytes::new(),
        1 => pieces.pop().unwrap_or_default(),
        _ => {
            let mut out = BytesMut::with_capacity(total);
            for p in &pieces {
                out.extend_from_slice(p);
            }
            out.freeze()
        }
    }
}
