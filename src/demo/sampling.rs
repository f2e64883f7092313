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

use crate::transport::http::ServerConn;
use crate::wire::{encode, method, sse, Envelope, Kind};

/// How long the demo waits for the client's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests the demo sent to clients and is waiting on.
#[derive(Default)]
pub struct Asks {
    next: Cell<u64>,
    pending: RefCell<HashMap<Bytes, local_sync::oneshot::Sender<Bytes>>>,
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
    if conn
        .start_stream(200, &[("content-type", &b"text/event-stream"[..])])
        .await
        .is_err()
    {
        return false;
    }
    let params = br#"{"messages":[{"role":"user","content":{"type":"text","text":"Say hello"}}],"maxTokens":20}"#;
    let text = match ask(asks, conn, method::SAMPLING_CREATE_MESSAGE, params).await {
        Some(Ok(answer)) => answer_text(&answer),
        Some(Err(())) => "the client did not answer".to_string(),
        None => return false,
    };
    let id = env.id_raw(body).unwrap_or(b"null");
    let mut result = b"{\"content\":[{\"type\":\"text\",\"text\":".to_vec();
    encode::write_json_string(&mut result, &format!("sampled: {text}"));
    result.extend_from_slice(b"}]}");
    finish(conn, encode::result_response(id, &result)).await
}

/// Sends the client a `method` request on this call's (started) stream and waits for its answer:
/// `None` if the stream broke, `Some(Err)` if no answer came in time.
pub async fn ask<S: AsyncReadRent + AsyncWriteRent>(
    asks: &Asks,
    conn: &mut ServerConn<S>,
    method_name: &str,
    params: &[u8],
) -> Option<Result<Bytes, ()>> {
    let n = asks.next.get();
    asks.next.set(n + 1);
    let ask_id = Bytes::from(format!("\"demo-ask-{n}\""));
    let (tx, rx) = local_sync::oneshot::channel();
    asks.pending.borrow_mut().insert(ask_id.clone(), tx);
    let ask = encode::request(&ask_id, method_name, Some(params));
    let mut out = Vec::new();
    sse::encode_event(&mut out, Some("message"), None, &ask);
    if conn.write_chunk(&[Bytes::from(out)]).await.is_err() {
        return None;
    }
    match monoio::time::timeout(ANSWER_TIMEOUT, rx).await {
        Ok(Ok(answer)) => Some(Ok(answer)),
        _ => {
            asks.pending.borrow_mut().remove(&ask_id);
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
    let mut out = Vec::new();
    sse::encode_event(&mut out, Some("message"), None, &response);
    conn.write_chunk(&[Bytes::from(out)]).await.is_ok() && conn.finish_stream().await.is_ok()
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
