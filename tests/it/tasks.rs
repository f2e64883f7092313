//! Experimental tasks (2025-11-25) through the gateway: sealed task ids bound to the session that
//! created them, routed to the right downstream, listed per session, status to the owner only.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use ringgate::demo::DemoOptions;

const VERSION: &str = "2025-11-25";

fn create(e: &Env, s: &str, ms: u64) -> String {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"t","method":"tools/call","params":{{"name":"alpha__sleep","arguments":{{"ms":{ms}}},"task":{{"ttl":60000}}}}}}"#
    );
    let v = e.call(s, &body).json();
    assert_eq!(v["id"], "t", "{v}");
    assert_eq!(v["result"]["task"]["status"], "working", "{v}");
    v["result"]["task"]["taskId"]
        .as_str()
        .expect("a task id")
        .to_string()
}

fn task_request(e: &Env, s: &str, method: &str, task: &str) -> Value {
    let body =
        format!(r#"{{"jsonrpc":"2.0","id":7,"method":"{method}","params":{{"taskId":"{task}"}}}}"#);
    e.call(s, &body).json()
}

fn listed(e: &Env, s: &str) -> Vec<String> {
    let v = e
        .call(s, r#"{"jsonrpc":"2.0","id":8,"method":"tasks/list"}"#)
        .json();
    v["result"]["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("a task list: {v}"))
        .iter()
        .map(|t| t["taskId"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn the_gateway_advertises_tasks_when_a_server_takes_task_calls() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let init = post(e.addr(), &[], r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#).json();
    let tasks = &init["result"]["capabilities"]["tasks"];
    assert!(tasks["requests"]["tools"]["call"].is_object(), "{init}");
    assert!(tasks["list"].is_object() && tasks["cancel"].is_object());
}

#[test]
fn a_task_is_polled_listed_and_its_result_fetched_by_its_own_session_only() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let (mine, other) = (e.session(VERSION), e.session(VERSION));
    let task = create(&e, &mine, 200);
    assert!(
        task.starts_with("k1.") && !task.contains("demo-task"),
        "the downstream's id is sealed: {task}"
    );
    let got = task_request(&e, &mine, "tasks/get", &task);
    assert_eq!(got["result"]["taskId"], task.as_str(), "the same id: {got}");
    assert!(got["result"]["status"] == "working" || got["result"]["status"] == "completed");
    // tasks/result waits for the end; the related-task `_meta` carries the gateway's id.
    let result = task_request(&e, &mine, "tasks/result", &task);
    assert_eq!(
        result["result"]["content"][0]["text"], "slept 200 ms",
        "{result}"
    );
    assert_eq!(
        result["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        task.as_str()
    );
    assert_eq!(listed(&e, &mine), vec![task.clone()]);
    // Another session sees nothing of it, and cannot use its id.
    assert!(listed(&e, &other).is_empty());
    for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
        let refused = task_request(&e, &other, method, &task);
        assert_eq!(refused["error"]["code"], -32602, "{method}: {refused}");
    }
    let theirs = create(&e, &other, 10);
    assert_eq!(listed(&e, &other), vec![theirs]);
    assert_eq!(listed(&e, &mine), vec![task]);
}

#[test]
fn forged_or_downstream_task_ids_are_not_found() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let s = e.session(VERSION);
    create(&e, &s, 10);
    for forged in [
        "demo-task-0",
        "k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let v = task_request(&e, &s, "tasks/get", forged);
        assert_eq!(v["error"]["code"], -32602, "{forged}: {v}");
    }
    let v = e
        .call(
            &s,
            r#"{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{}}"#,
        )
        .json();
    assert_eq!(v["error"]["code"], -32602, "{v}");
}

#[test]
fn cancel_works_and_the_status_reaches_the_owning_session_only() {
    let e = Env::start(vec![DemoOptions::new("a")], "");
    let (mine, other) = (e.session(VERSION), e.session(VERSION));
    let mut my_stream = Stream::open(e.addr(), &mine);
    let mut other_stream = Stream::open(e.addr(), &other);
    let task = create(&e, &mine, 60_000);
    let cancelled = task_request(&e, &mine, "tasks/cancel", &task);
    assert_eq!(cancelled["result"]["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["result"]["taskId"], task.as_str());
    // The server's status notification (sent outside any call) goes to the owner, id sealed.
    let note = my_stream
        .next_data(Duration::from_secs(5))
        .expect("the owner hears the status");
    let note: Value = serde_json::from_str(&note).unwrap();
    assert_eq!(note["method"], "notifications/tasks/status", "{note}");
    assert_eq!(note["params"]["taskId"], task.as_str());
    assert_eq!(note["params"]["status"], "cancelled");
    assert_eq!(other_stream.next_data(Duration::from_millis(300)), None);
    // Cancelling again is the downstream's -32602 (already terminal).
    let again = task_request(&e, &mine, "tasks/cancel", &task);
    assert_eq!(again["error"]["code"], -32602, "{again}");
}

#[test]
fn tasks_of_a_stdio_server_are_sealed_and_scoped_the_same_way() {
    let e = Env::stdio_kid();
    let (mine, other) = (e.session(VERSION), e.session(VERSION));
    let mut my_stream = Stream::open(e.addr(), &mine);
    let body = r#"{"jsonrpc":"2.0","id":"t","method":"tools/call","params":{"name":"kid__sleep","arguments":{"ms":60000},"task":{}}}"#;
    let v = e.call(&mine, body).json();
    let task = v["result"]["task"]["taskId"].as_str().unwrap().to_string();
    assert!(task.starts_with("k1."), "{v}");
    assert_eq!(listed(&e, &mine), vec![task.clone()]);
    assert!(listed(&e, &other).is_empty());
    let refused = task_request(&e, &other, "tasks/cancel", &task);
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let cancelled = task_request(&e, &mine, "tasks/cancel", &task);
    assert_eq!(cancelled["result"]["status"], "cancelled", "{cancelled}");
    let note = my_stream
        .next_data(Duration::from_secs(5))
        .expect("the owner hears the status from the child");
    assert!(
        note.contains("notifications/tasks/status") && note.contains(&task),
        "{note}"
    );
}
