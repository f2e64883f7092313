//! The demo server's catalog and behaviour: tools, a resource, a template, a prompt, completions.
//!
//! Tools: `echo` (message back), `add` (a + b, with structured content), `now` (UTC time), `sleep`
//! (waits `ms`, sending `steps` progress notifications when the caller asked for progress), `fail`
//! (an `isError` result), `set_extra_tools` (changes the tool list and notifies `list_changed`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use simd_json::prelude::*;
use simd_json::OwnedValue;

use super::Demo;
use crate::wire::{code, encode, method, Envelope};

const BUILTIN_TOOLS: &str = r#"{"name":"echo","description":"Echoes the message back.","inputSchema":{"type":"object","properties":{"message":{"type":"string"}},"required":["message"]}},{"name":"add","description":"Adds two numbers.","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}},{"name":"now","description":"The current UTC time.","inputSchema":{"type":"object","properties":{}}},{"name":"sleep","description":"Waits ms milliseconds, reporting progress in steps.","inputSchema":{"type":"object","properties":{"ms":{"type":"integer"},"steps":{"type":"integer"}},"required":["ms"]}},{"name":"fail","description":"Always fails (isError).","inputSchema":{"type":"object","properties":{}}},{"name":"set_extra_tools","description":"Sets how many generated tools exist; notifies list_changed.","inputSchema":{"type":"object","properties":{"count":{"type":"integer"}},"required":["count"]}},{"name":"sample","description":"Asks the client's model to say hello (sampling; needs an SSE reply).","inputSchema":{"type":"object","properties":{}}},{"name":"touch","description":"Marks a resource as updated (notifies its subscribers).","inputSchema":{"type":"object","properties":{"uri":{"type":"string"}},"required":["uri"]}}"#;

/// The `initialize` result.
pub fn initialize_result(demo: &Demo, body: &[u8], env: &Envelope) -> Bytes {
    let requested = params(body, env)
        .and_then(|p| {
            p.get("protocolVersion")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let version = if crate::session::versions::index_of(requested.as_bytes()).is_some() {
        requested
    } else {
        crate::session::versions::LATEST.to_string()
    };
    let mut r = format!(
        r#"{{"protocolVersion":"{version}","capabilities":{{"tools":{{"listChanged":true}},"resources":{{"subscribe":true}},"prompts":{{}},"completions":{{}},"logging":{{}},"tasks":{{"list":{{}},"cancel":{{}},"requests":{{"tools":{{"call":{{}}}}}}}}}},"serverInfo":{{"name":"#
    );
    let mut name = Vec::new();
    encode::write_json_string(&mut name, &demo.opts.name);
    r.push_str(&String::from_utf8_lossy(&name));
    r.push_str(
        r#","version":"1.0.0"},"instructions":"A demo server: try the echo and add tools."}"#,
    );
    encode::result_response(id(body, env), r.as_bytes())
}

fn id<'a>(body: &'a [u8], env: &Envelope) -> &'a [u8] {
    env.id_raw(body).unwrap_or(b"null")
}

/// The request's `params`, parsed.
pub(super) fn params(body: &[u8], env: &Envelope) -> Option<OwnedValue> {
    let mut scratch = env.params?.get(body).to_vec();
    simd_json::to_owned_value(&mut scratch).ok()
}

fn text_result(text: &str, is_error: bool) -> Vec<u8> {
    let mut out = b"{\"content\":[{\"type\":\"text\",\"text\":".to_vec();
    encode::write_json_string(&mut out, text);
    out.extend_from_slice(format!("}}],\"isError\":{is_error}}}").as_bytes());
    out
}

/// Answers one request.
pub async fn handle(demo: &Demo, body: &[u8], env: &Envelope) -> Bytes {
    let m = env.method(body).unwrap_or("");
    let p = params(body, env);
    let result: Result<Vec<u8>, (i32, String)> = match m {
        method::PING | method::LOGGING_SET_LEVEL | method::RESOURCES_SUBSCRIBE | method::RESOURCES_UNSUBSCRIBE => Ok(b"{}".to_vec()),
        method::TOOLS_LIST => Ok(tools_list(demo, p.as_ref())),
        method::TOOLS_CALL => call(demo, p.as_ref()).await,
        method::RESOURCES_LIST => Ok(format!(
            r#"{{"resources":[{{"uri":"demo://{}/readme","name":"readme","mimeType":"text/markdown"}}]}}"#,
            demo.opts.name
        )
        .into_bytes()),
        method::RESOURCES_TEMPLATES_LIST => Ok(format!(
            r#"{{"resourceTemplates":[{{"uriTemplate":"demo://{}/notes/{{id}}","name":"note","mimeType":"text/plain"}}]}}"#,
            demo.opts.name
        )
        .into_bytes()),
        method::RESOURCES_READ => read(demo, p.as_ref()),
        method::PROMPTS_LIST => Ok(br#"{"prompts":[{"name":"greet","description":"Greets someone.","arguments":[{"name":"name","required":true}]}]}"#.to_vec()),
        method::PROMPTS_GET => prompt(p.as_ref()),
        method::COMPLETION_COMPLETE => Ok(complete(p.as_ref())),
        method::TASKS_GET | method::TASKS_RESULT | method::TASKS_LIST | method::TASKS_CANCEL => {
            super::tasks::handle(demo, m, p.as_ref()).await
        }
        _ => Err((code::METHOD_NOT_FOUND, format!("Method not found: {m}"))),
    };
    match result {
        Ok(r) => encode::result_response(id(body, env), &r),
        Err((c, msg)) => encode::error_response(Some(id(body, env)), c, &msg, None),
    }
}

fn tools_list(demo: &Demo, p: Option<&OwnedValue>) -> Vec<u8> {
    let mut all: Vec<String> = BUILTIN_TOOLS_SPLIT.iter().map(|s| s.to_string()).collect();
    if demo.opts.ask || demo.opts.modern {
        all.push(super::ask::TOOL.to_string());
    }
    if demo.opts.ask {
        all.push(super::ask::CANCELLATIONS_TOOL.to_string());
    }
    for i in 0..demo.extra_tools.get() {
        all.push(format!(r#"{{"name":"tool_{i:03}","description":"Generated tool {i}.","inputSchema":{{"type":"object"}}}}"#));
    }
    let start: usize = p
        .and_then(|p| p.get("cursor"))
        .and_then(|c| c.as_str())
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let size = demo.opts.page_size.unwrap_or(usize::MAX);
    let end = start.saturating_add(size).min(all.len());
    let page = all.get(start.min(all.len())..end).unwrap_or(&[]);
    let mut out = format!("{{\"tools\":[{}]", page.join(","));
    if end < all.len() {
        out.push_str(&format!(",\"nextCursor\":\"{end}\""));
    }
    out.push('}');
    out.into_bytes()
}

/// The built-in tools as separate JSON objects.
static BUILTIN_TOOLS_SPLIT: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    let mut scratch = format!("[{BUILTIN_TOOLS}]").into_bytes();
    match simd_json::to_owned_value(&mut scratch) {
        Ok(OwnedValue::Array(a)) => a.iter().map(|t| t.encode()).collect(),
        _ => Vec::new(),
    }
});

async fn call(demo: &Demo, p: Option<&OwnedValue>) -> Result<Vec<u8>, (i32, String)> {
    let p = p.ok_or((code::INVALID_PARAMS, "params required".to_string()))?;
    let name = p.get("name").and_then(|n| n.as_str()).unwrap_or("");
    let args = p.get("arguments");
    let arg = |k: &str| args.and_then(|a| a.get(k));
    match name {
        "echo" => Ok(text_result(
            arg("message").and_then(|m| m.as_str()).unwrap_or(""),
            false,
        )),
        "add" => {
            let (a, b) = (
                arg("a").and_then(|v| v.cast_f64()),
                arg("b").and_then(|v| v.cast_f64()),
            );
            let (Some(a), Some(b)) = (a, b) else {
                return Err((code::INVALID_PARAMS, "a and b must be numbers".into()));
            };
            let mut r = text_result(&format!("{}", a + b), false);
            r.pop();
            r.extend_from_slice(
                format!(",\"structuredContent\":{{\"sum\":{}}}}}", a + b).as_bytes(),
            );
            Ok(r)
        }
        "now" => Ok(text_result(&utc_now(), false)),
        "sleep" => {
            let ms = arg("ms").and_then(|v| v.as_u64()).unwrap_or(0).min(600_000);
            if p.get("task").is_some() {
                return Ok(super::tasks::create(demo, ms, p));
            }
            monoio::time::sleep(Duration::from_millis(ms)).await;
            Ok(text_result(&format!("slept {ms} ms"), false))
        }
        "fail" => Ok(text_result("this tool always fails", true)),
        "set_extra_tools" => {
            let n = arg("count")
                .and_then(|v| v.as_u64())
                .unwrap_or(0)
                .min(10_000) as usize;
            demo.extra_tools.set(n);
            demo.streams
                .broadcast(&encode::notification(method::TOOLS_LIST_CHANGED, None));
            Ok(text_result(&format!("{n} extra tools"), false))
        }
        t if t.starts_with("tool_") => Ok(text_result(&format!("{t} called"), false)),
        "sample" => Ok(text_result(
            "sample needs a client that accepts an SSE reply",
            true,
        )),
        "cancellations" if demo.opts.ask => Ok(text_result(
            &format!("{} cancelled", demo.cancelled.get()),
            false,
        )),
        "touch" => {
            let uri = arg("uri").and_then(|u| u.as_str()).unwrap_or("");
            let mut params = b"{\"uri\":".to_vec();
            encode::write_json_string(&mut params, uri);
            params.push(b'}');
            let note = encode::notification(method::RESOURCES_UPDATED, Some(&params));
            demo.streams.broadcast(&note);
            Ok(text_result(&format!("touched {uri}"), false))
        }
        other => Err((code::INVALID_PARAMS, format!("Unknown tool: {other}"))),
    }
}

/// A `notifications/progress` for the raw progress token `token`: `progress` of `total`.
pub(super) fn progress(token: &[u8], progress: u64, total: u64) -> Bytes {
    let mut params = b"{\"progressToken\":".to_vec();
    params.extend_from_slice(token);
    params.extend_from_slice(format!(",\"progress\":{progress},\"total\":{total}}}").as_bytes());
    encode::notification(method::PROGRESS, Some(&params))
}

/// Whether this is a `tools/call` of `sleep` that asked for progress (the one streaming tool).
pub fn is_progress_sleep(body: &[u8], env: &Envelope) -> bool {
    env.method(body) == Some(method::TOOLS_CALL)
        && env.progress_token.is_some()
        && env.name_str(body).as_deref() == Some("sleep")
}

/// `tools/call` of `sleep` with a progress token: `emit` gets each progress notification, then
/// the response (the transport decides how to write them: SSE events or stdout lines).
pub async fn call_with_progress(body: &[u8], env: &Envelope, mut emit: impl FnMut(Bytes) -> bool) {
    let p = params(body, env);
    let args = p.as_ref().and_then(|p| p.get("arguments"));
    let ms = args
        .and_then(|a| a.get("ms"))
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
        .min(600_000);
    let steps = args
        .and_then(|a| a.get("steps"))
        .and_then(|v| v.as_u64())
        .unwrap_or(1)
        .clamp(1, 100);
    let token = env
        .progress_token
        .map(|t| t.get(body).to_vec())
        .unwrap_or_default();
    for step in 1..=steps {
        monoio::time::sleep(Duration::from_millis(ms / steps)).await;
        if !emit(progress(&token, step, steps)) {
            return;
        }
    }
    emit(encode::result_response(
        id(body, env),
        &text_result(&format!("slept {ms} ms"), false),
    ));
}

fn read(demo: &Demo, p: Option<&OwnedValue>) -> Result<Vec<u8>, (i32, String)> {
    let uri = p
        .and_then(|p| p.get("uri"))
        .and_then(|u| u.as_str())
        .unwrap_or("");
    let base = format!("demo://{}/", demo.opts.name);
    let text = match uri.strip_prefix(&base) {
        Some("readme") => format!(
            "# {}\nA demo MCP server shipped inside ringgate.",
            demo.opts.name
        ),
        Some(rest) if rest.starts_with("notes/") && rest != "notes/missing" => {
            format!("note {}", &rest[6..])
        }
        _ => {
            // "Resource not found" is -32002 in the legacy era, -32602 in 2026-07-28.
            let c = if demo.opts.modern {
                code::INVALID_PARAMS
            } else {
                code::RESOURCE_NOT_FOUND
            };
            return Err((c, format!("Resource not found: {uri}")));
        }
    };
    let mut out = b"{\"contents\":[{\"uri\":".to_vec();
    encode::write_json_string(&mut out, uri);
    out.extend_from_slice(b",\"text\":");
    encode::write_json_string(&mut out, &text);
    out.extend_from_slice(b"}]}");
    Ok(out)
}

fn prompt(p: Option<&OwnedValue>) -> Result<Vec<u8>, (i32, String)> {
    let p = p.ok_or((code::INVALID_PARAMS, "params required".to_string()))?;
    if p.get("name").and_then(|n| n.as_str()) != Some("greet") {
        return Err((code::INVALID_PARAMS, "Unknown prompt".into()));
    }
    let who = p
        .get("arguments")
        .and_then(|a| a.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("world");
    let mut out = br#"{"messages":[{"role":"user","content":{"type":"text","text":"#.to_vec();
    encode::write_json_string(&mut out, &format!("Please greet {who}."));
    out.extend_from_slice(b"}}]}");
    Ok(out)
}

fn complete(p: Option<&OwnedValue>) -> Vec<u8> {
    let prefix = p
        .and_then(|p| p.get("argument"))
        .and_then(|a| a.get("value"))
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let values: Vec<String> = ["Ada", "Alan", "Grace", "Linus"]
        .iter()
        .filter(|v| v.to_ascii_lowercase().starts_with(&prefix))
        .map(|v| format!("\"{v}\""))
        .collect();
    format!(
        r#"{{"completion":{{"values":[{}],"total":{},"hasMore":false}}}}"#,
        values.join(","),
        values.len()
    )
    .into_bytes()
}

/// Current UTC time as RFC 3339, without a date library.
pub(super) fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (proleptic Gregorian), after H. Hinnant's public-domain algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
