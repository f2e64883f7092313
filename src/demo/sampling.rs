//! The demo's `sample` tool: asks the client's model for a completion (`sampling/createMessage`)
//! on the call's SSE reply, waits for the client's answer (a separate POST), and returns its text.
//! It exercises the server-to-client path end to end: a gateway in between must route the request
//! to the right client and the answer back to this server.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use simd_json::prelude::*;

use crate::session::streams::StreamHub;
use crate::transport::http::ServerConn;
use crate::wire::{encode, method, sse, Envelope, Kind};

/// How long the demo waits for the client's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The `sampling/createMessage` params `sample` sends.
const SAMPLE_PARAMS: &[u8] =
    br#"{"messages":[{"role":"user","content":{"type":"text","text":"Say hello"}}],"maxTokens":20}"#;

/// Requests the demo sent to clients and is waiting on.
#[derive(Default)]
pub struct Asks {
    next: Cell<u64>,
    pending: RefCell<HashMap<Bytes, local_sync::oneshot::Sender<Bytes>>>,
}

impl Asks {
    /// A fresh id for a request to the client, and where its answer will arrive.
    fn register(&self) -> (Bytes, local_sync::oneshot::Receiver<Bytes>) {
        let n = self.next.get();
        self.next.set(n + 1);
        let ask_id = Bytes::from(format!("\"demo-ask-{n}\""));
        let (tx, rx) = local_sync::oneshot::channel();
        self.pending.borrow_mut().insert(ask_id.clone(), tx);
        (ask_id, rx)
    }
}

/// Starts the call's SSE reply; `false` if the connection broke.
pub async fn start_stream<S: AsyncReadRent + AsyncWriteRent>(conn: &mut ServerConn<S>) -> bool {
    conn.start_stream(200, &[("content-type", &b"text/event-stream"[..])])
        .await
        .is_ok()
}

/// The `sample` call's result: `sampled: TEXT`.
fn sampled(body: &[u8], env: &Envelope, text: &str) -> Bytes {
    let mut result = b"{\"content\":[{\"type\":\"text\",\"text\":".to_vec();
    encode::write_json_string(&mut result, &format!("sampled: {text}"));
    result.extend_from_slice(b"}]}");
    encode::result_response(env.id_raw(body).unwrap_or(b"null"), &result)
}

/// Whether this is a `tools/call` of `sample`.
pub fn is_sample_call(body: &[u8], env: &Envelope) -> bool {
    env.method(body) == Some(method::TOOLS_CALL) && env.name_str(body).as_deref() == Some("sample")
}

/// Hands a client's response to the waiting `sample` call; `true` if it was one of ours.
pub fn take_answer(asks: &Asks, body: &Bytes, env: &Envelope) -> bool {
    if !matches!(env.kind, Kind::Response | Kind::Error) {
        return false;
    }
    let Some(id) = env.id_raw(body) else {
        return false;
    };
    match asks.pending.borrow_mut().remove(id) {
        Some(tx) => tx.send(body.clone()).is_ok(),
        None => false,
    }
}

/// Runs `sample`: the request goes out on this call's stream, the answer comes back by POST.
pub async fn call<S: AsyncReadRent + AsyncWriteRent>(
    asks: &Asks,
    conn: &mut ServerConn<S>,
    body: &[u8],
    env: &Envelope,
) -> bool {
    if !start_stream(conn).await {
        return false;
    }
    let cancel_after = cancel_after(body, env);
    let asked = ask_within(
        asks,
        conn,
        method::SAMPLING_CREATE_MESSAGE,
        SAMPLE_PARAMS,
        cancel_after,
    );
    let text = match asked.await {
        Some(Ok(answer)) => answer_text(&answer),
        Some(Err(())) if cancel_after.is_some() => "the server cancelled its request".to_string(),
        Some(Err(())) => "the client did not answer".to_string(),
        None => return false,
    };
    finish(conn, sampled(body, env, &text)).await
}

/// Whether `sample` was called with `"standalone": true`: the request then goes out on the
/// server's standalone GET stream(s), naming no call (as server-everything sends `roots/list`).
pub fn is_standalone(body: &[u8], env: &Envelope) -> bool {
    super::tools::params(body, env).is_some_and(|p| {
        p.get("arguments")
            .and_then(|a| a.get("standalone"))
            .and_then(|v| v.as_bool())
            == Some(true)
    })
}

/// Runs `sample` with `standalone`: the sampling request is broadcast on the demo's GET streams,
/// the answer comes back by POST; the call's reply is the usual result (or the error text).
pub async fn call_standalone<S: AsyncReadRent + AsyncWriteRent>(
    asks: &Asks,
    streams: &StreamHub,
    conn: &mut ServerConn<S>,
    body: &[u8],
    env: &Envelope,
) -> bool {
    if !start_stream(conn).await {
        return false;
    }
    let (ask_id, rx) = asks.register();
    streams.broadcast(&encode::request(
        &ask_id,
        method::SAMPLING_CREATE_MESSAGE,
        Some(SAMPLE_PARAMS),
    ));
    let text = match monoio::time::timeout(ANSWER_TIMEOUT, rx).await {
        Ok(Ok(answer)) => answer_text(&answer),
        _ => {
            asks.pending.borrow_mut().remove(&ask_id);
            "the client did not answer".to_string()
        }
    };
    finish(conn, sampled(body, env, &text)).await
}

/// Sends the client a `method` request on this call's (started) stream and waits for its answer:
/// `None` if the stream broke, `Some(Err)` if no answer came in time.
pub async fn ask<S: AsyncReadRent + AsyncWriteRent>(
    asks: &Asks,
    conn: &mut ServerConn<S>,
    method_name: &str,
    params: &[u8],
) -> Option<Result<Bytes, ()>> {
    ask_within(asks, conn, method_name, params, None).await
}

/// [`ask`], but with `cancel_after` set the server gives up after that long and tells the client
/// with `notifications/cancelled` for its own request.
async fn ask_within<S: AsyncReadRent + AsyncWriteRent>(
    asks: &Asks,
    conn: &mut ServerConn<S>,
    method_name: &str,
    params: &[u8],
    cancel_after: Option<Duration>,
) -> Option<Result<Bytes, ()>> {
    let (ask_id, rx) = asks.register();
    if !send_event(conn, &encode::request(&ask_id, method_name, Some(params))).await {
        return None;
    }
    match monoio::time::timeout(cancel_after.unwrap_or(ANSWER_TIMEOUT), rx).await {
        Ok(Ok(answer)) => Some(Ok(answer)),
        _ => {
            asks.pending.borrow_mut().remove(&ask_id);
            if cancel_after.is_some() && !send_event(conn, &cancelled(&ask_id)).await {
                return None;
            }
            Some(Err(()))
        }
    }
}

/// Writes one message as an event on the call's (started) stream.
pub async fn send_event<S: AsyncReadRent + AsyncWriteRent>(
    conn: &mut ServerConn<S>,
    message: &[u8],
) -> bool {
    let mut out = Vec::new();
    sse::encode_event(&mut out, Some("message"), None, message);
    conn.write_chunk(&[Bytes::from(out)]).await.is_ok()
}

/// Writes the call's response as the last event and ends the stream.
pub async fn finish<S: AsyncReadRent + AsyncWriteRent>(
    conn: &mut ServerConn<S>,
    response: Bytes,
) -> bool {
    send_event(conn, &response).await && conn.finish_stream().await.is_ok()
}

/// `arguments.cancel_after_ms`: wait that long for the answer, then cancel the request.
fn cancel_after(body: &[u8], env: &Envelope) -> Option<Duration> {
    let params = super::tools::params(body, env)?;
    let ms = params.get("arguments")?.get("cancel_after_ms")?.as_u64()?;
    Some(Duration::from_millis(ms.min(60_000)))
}

/// The server's `notifications/cancelled` for its own request `ask_id`.
fn cancelled(ask_id: &[u8]) -> Bytes {
    let mut params = b"{\"requestId\":".to_vec();
    params.extend_from_slice(ask_id);
    params.extend_from_slice(b",\"reason\":\"no answer in time\"}");
    encode::notification(method::CANCELLED, Some(&params))
}

/// `sample` over stdio: the request is a stdout line, the answer arrives on stdin (handed over by
/// [`take_answer`]); the same `cancel_after_ms` behaviour as over HTTP.
pub async fn call_lines(asks: &Asks, body: &[u8], env: &Envelope, write: impl Fn(&[u8])) {
    let (ask_id, rx) = asks.register();
    write(&encode::request(
        &ask_id,
        method::SAMPLING_CREATE_MESSAGE,
        Some(SAMPLE_PARAMS),
    ));
    let cancel_after = cancel_after(body, env);
    let text = match monoio::time::timeout(cancel_after.unwrap_or(ANSWER_TIMEOUT), rx).await {
        Ok(Ok(answer)) => answer_text(&answer),
        _ => {
            asks.pending.borrow_mut().remove(&ask_id);
            if cancel_after.is_some() {
                write(&cancelled(&ask_id));
            }
            "the client did not answer".to_string()
        }
    };
    // Progress after the answer (a call resumed through the era bridge must carry it back).
    if let Some(token) = env.progress_token {
        write(&super::tools::progress(token.get(body), 1, 1));
    }
    write(&sampled(body, env, &text));
}

/// The text of a sampling result, or the error message.
fn answer_text(answer: &[u8]) -> String {
    let mut scratch = answer.to_vec();
    let Ok(v) = simd_json::to_owned_value(&mut scratch) else {
        return "unreadable answer".into();
    };
    if let Some(e) = v.get("error") {
        return format!(
            "error: {}",
            e.get("message").and_then(|m| m.as_str()).unwrap_or("")
        );
    }
    v.get("result")
        .and_then(|r| r.get("content"))
        .and_then(|c| c.get("text"))
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_from_results_and_errors() {
        assert_eq!(answer_text(br#"{"jsonrpc":"2.0","id":"a","result":{"role":"assistant","content":{"type":"text","text":"hi"},"model":"m"}}"#), "hi");
        assert!(answer_text(
            br#"{"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"no"}}"#
        )
        .starts_with("error: no"));
    }
}
