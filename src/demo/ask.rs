//! The demo's `ask` tool: asks the user for a name (`elicitation/create`) `rounds` times (default
//! 1, at most 5) and answers `hello <names>`. Listed when [`super::DemoOptions::ask`] or
//! [`super::DemoOptions::modern`] is set. In legacy mode, a call that asked for progress gets a
//! progress notification before each question.
//!
//! It asks the way the server's era does, which is what the gateway's era bridge translates:
//! - legacy ([`call`]): real server-to-client requests on the call's SSE reply, answered by POST;
//! - modern ([`modern_call`], 2026-07-28): multi round-trip requests. Each round returns
//!   `resultType: "input_required"` with one `inputRequests` entry (`name`) and a `requestState`
//!   carrying the names so far; the client's retry brings `inputResponses.name` and the state
//!   back. A request that did not declare the `elicitation` capability gets -32021. With
//!   `poll: true` the first round is state-only (`requestState`, no `inputRequests`).

use bytes::Bytes;
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use simd_json::prelude::*;
use simd_json::OwnedValue;

use super::sampling::{self, Asks};
use super::tools::{self, params};
use crate::transport::http::ServerConn;
use crate::wire::{code, encode, method, Envelope};

/// The tool's `tools/list` entry.
pub const TOOL: &str = r#"{"name":"ask","description":"Asks the user for a name (elicitation), rounds times.","inputSchema":{"type":"object","properties":{"rounds":{"type":"integer"}}}}"#;

/// The `tools/list` entry of `cancellations` (how many `notifications/cancelled` the server got;
/// listed with `ask`, so tests can see a gateway give up a call).
pub const CANCELLATIONS_TOOL: &str = r#"{"name":"cancellations","description":"How many notifications/cancelled this server received.","inputSchema":{"type":"object","properties":{}}}"#;

/// Most rounds one call may ask.
const MAX_ROUNDS: u64 = 5;

/// Prefix of the demo's (unprotected, demo-only) request state.
const STATE_PREFIX: &str = "demo-ask:";

/// Whether this is a `tools/call` of `ask`.
pub fn is_ask_call(body: &[u8], env: &Envelope) -> bool {
    env.method(body) == Some(method::TOOLS_CALL) && env.name_str(body).as_deref() == Some("ask")
}

fn rounds(p: Option<&OwnedValue>) -> u64 {
    p.and_then(|p| p.get("arguments"))
        .and_then(|a| a.get("rounds"))
        .and_then(|r| r.as_u64())
        .unwrap_or(1)
        .clamp(1, MAX_ROUNDS)
}

/// The `elicitation/create` params for round `round`.
fn elicit_params(round: usize) -> Vec<u8> {
    format!(
        r#"{{"mode":"form","message":"What is name #{round}?","requestedSchema":{{"type":"object","properties":{{"name":{{"type":"string"}}}},"required":["name"]}}}}"#
    )
    .into_bytes()
}

/// The name an `ElicitResult` gives (`declined` / `cancelled` otherwise).
fn name_of(result: Option<&OwnedValue>) -> String {
    let action = result
        .and_then(|r| r.get("action"))
        .and_then(|a| a.as_str())
        .unwrap_or("");
    match action {
        "accept" => result
            .and_then(|r| r.get("content"))
            .and_then(|c| c.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_string(),
        "decline" => "declined".into(),
        _ => "cancelled".into(),
    }
}

fn hello(names: &[String]) -> Vec<u8> {
    let mut out = b"{\"content\":[{\"type\":\"text\",\"text\":".to_vec();
    encode::write_json_string(&mut out, &format!("hello {}", names.join(", ")));
    out.extend_from_slice(b"}],\"isError\":false}");
    out
}

/// Legacy `ask`: the questions go out on this call's stream, the answers come back by POST.
pub async fn call<S: AsyncReadRent + AsyncWriteRent>(
    asks: &Asks,
    conn: &mut ServerConn<S>,
    body: &[u8],
    env: &Envelope,
) -> bool {
    let n = rounds(params(body, env).as_ref());
    if !sampling::start_stream(conn).await {
        return false;
    }
    let mut names = Vec::new();
    for round in 1..=n as usize {
        if let Some(token) = env.progress_token {
            let note = tools::progress(token.get(body), round as u64, n);
            if !sampling::send_event(conn, &note).await {
                return false;
            }
        }
        let question = elicit_params(round);
        let answer = sampling::ask(asks, conn, method::ELICITATION_CREATE, &question);
        let name = match answer.await {
            None => return false,
            Some(Ok(answer)) => {
                let mut scratch = answer.to_vec();
                let v = simd_json::to_owned_value(&mut scratch).ok();
                name_of(v.as_ref().and_then(|v| v.get("result")))
            }
            Some(Err(())) => "(no answer)".into(),
        };
        names.push(name);
    }
    let id = env.id_raw(body).unwrap_or(b"null");
    sampling::finish(conn, encode::result_response(id, &hello(&names))).await
}

/// Modern `ask`: one MRTR round per name.
pub fn modern_call(body: &[u8], env: &Envelope) -> Result<Vec<u8>, (i32, String)> {
    let p = params(body, env);
    let p = p.as_ref();
    let poll = p
        .and_then(|p| p.get("arguments"))
        .and_then(|a| a.get("poll"))
        .and_then(|v| v.as_bool())
        == Some(true);
    if poll {
        return Ok(poll_round(p));
    }
    let elicits = p
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get("io.modelcontextprotocol/clientCapabilities"))
        .and_then(|c| c.get("elicitation"))
        .is_some();
    if !elicits {
        return Err((
            code::MISSING_REQUIRED_CLIENT_CAPABILITY,
            "ask needs the elicitation capability".into(),
        ));
    }
    let mut names: Vec<String> = match p.and_then(|p| p.get("requestState")) {
        None => Vec::new(),
        Some(s) => {
            let state = s.as_str().and_then(|s| s.strip_prefix(STATE_PREFIX));
            let state = state.ok_or((code::INVALID_PARAMS, "Invalid requestState".to_string()))?;
            state
                .split('\u{1f}')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        }
    };
    if let Some(answer) = p
        .and_then(|p| p.get("inputResponses"))
        .and_then(|r| r.get("name"))
    {
        names.push(name_of(Some(answer)));
    }
    if names.len() as u64 >= rounds(p) {
        let mut out = hello(&names);
        out.pop();
        out.extend_from_slice(b",\"resultType\":\"complete\"}");
        return Ok(out);
    }
    let mut out = b"{\"resultType\":\"input_required\",\"inputRequests\":{\"name\":{\"method\":\"elicitation/create\",\"params\":".to_vec();
    out.extend_from_slice(&elicit_params(names.len() + 1));
    out.extend_from_slice(b"}},\"requestState\":");
    let mut state = STATE_PREFIX.to_string();
    for n in &names {
        state.push_str(n);
        state.push('\u{1f}');
    }
    encode::write_json_string(&mut out, &state);
    out.push(b'}');
    Ok(out)
}

/// `ask` with `poll: true`: a state-only round first (no input requests: "come back"), then done.
fn poll_round(p: Option<&OwnedValue>) -> Vec<u8> {
    let state = p
        .and_then(|p| p.get("requestState"))
        .and_then(|s| s.as_str());
    if state == Some("demo-poll") {
        br#"{"content":[{"type":"text","text":"polled"}],"isError":false,"resultType":"complete"}"#
            .to_vec()
    } else {
        br#"{"resultType":"input_required","requestState":"demo-poll"}"#.to_vec()
    }
}

/// The `server/discover` result of a modern demo server.
pub fn discover_result(name: &str) -> Vec<u8> {
    let mut out = br#"{"supportedVersions":["2026-07-28"],"capabilities":{"tools":{"listChanged":true},"resources":{},"prompts":{},"completions":{}},"resultType":"complete","ttlMs":0,"cacheScope":"private","_meta":{"io.modelcontextprotocol/serverInfo":{"name":"#.to_vec();
    encode::write_json_string(&mut out, name);
    out.extend_from_slice(br#","version":"1.0.0"}}}"#);
    out
}

/// The bytes of a result as a JSON-RPC response.
pub fn respond(body: &[u8], env: &Envelope, r: Result<Vec<u8>, (i32, String)>) -> Bytes {
    let id = env.id_raw(body).unwrap_or(b"null");
    match r {
        Ok(r) => encode::result_response(id, &r),
        Err((c, m)) => encode::error_response(Some(id), c, &m, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire;

    fn run(body: &str) -> serde_json::Value {
        let env = wire::parse(body.as_bytes()).unwrap();
        let out = respond(body.as_bytes(), &env, modern_call(body.as_bytes(), &env));
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn modern_rounds_ask_then_complete() {
        let caps = r#""_meta":{"io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}"#;
        let first = run(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"ask","arguments":{{"rounds":2}},{caps}}}}}"#
        ));
        assert_eq!(first["result"]["resultType"], "input_required");
        let state = first["result"]["requestState"]
            .as_str()
            .unwrap()
            .to_string();
        let second = run(&format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"ask","arguments":{{"rounds":2}},"inputResponses":{{"name":{{"action":"accept","content":{{"name":"Ada"}}}}}},"requestState":{},{caps}}}}}"#,
            serde_json::to_string(&state).unwrap()
        ));
        assert_eq!(second["result"]["resultType"], "input_required");
        let state = second["result"]["requestState"]
            .as_str()
            .unwrap()
            .to_string();
        let done = run(&format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"ask","arguments":{{"rounds":2}},"inputResponses":{{"name":{{"action":"decline"}}}},"requestState":{},{caps}}}}}"#,
            serde_json::to_string(&state).unwrap()
        ));
        assert_eq!(done["result"]["content"][0]["text"], "hello Ada, declined");
        let no_caps =
            run(r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"ask"}}"#);
        assert_eq!(no_caps["error"]["code"], -32021);
    }
}
