//! The demo's experimental tasks (MCP 2025-11-25): `sleep` called with a `task` param returns a
//! `CreateTaskResult` at once and "runs" for `ms`; `tasks/get`, `tasks/result` (waits for the end),
//! `tasks/list` and `tasks/cancel` work on the demo's tasks. A cancellation also sends
//! `notifications/tasks/status` on the server's GET streams (outside any call), which lets tests
//! check that a gateway delivers it to the owning session only.
//!
//! Task state is computed when asked: a task is `completed` once its time is up, unless cancelled.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use simd_json::prelude::*;
use simd_json::OwnedValue;

use super::Demo;
use crate::wire::{code, encode, method};

/// Suggested poll interval, in milliseconds.
const POLL_MS: u64 = 50;

/// One demo task.
struct Task {
    created: String,
    due: Instant,
    ms: u64,
    ttl: Option<u64>,
    cancelled: bool,
}

impl Task {
    fn status(&self) -> &'static str {
        if self.cancelled {
            "cancelled"
        } else if Instant::now() >= self.due {
            "completed"
        } else {
            "working"
        }
    }
}

/// The demo's tasks, by id.
#[derive(Default)]
pub struct Table {
    next: Cell<u64>,
    tasks: RefCell<BTreeMap<String, Task>>,
}

type Answer = Result<Vec<u8>, (i32, String)>;

/// Starts a `sleep` task; returns the `CreateTaskResult`.
pub fn create(demo: &Demo, ms: u64, params: &OwnedValue) -> Vec<u8> {
    let n = demo.tasks.next.get();
    demo.tasks.next.set(n + 1);
    let id = format!("demo-task-{n}");
    let ttl = params
        .get("task")
        .and_then(|t| t.get("ttl"))
        .and_then(|t| t.as_u64());
    let task = Task {
        created: super::tools::utc_now(),
        due: Instant::now() + Duration::from_millis(ms),
        ms,
        ttl,
        cancelled: false,
    };
    let body = format!("{{\"task\":{}}}", task_json(&id, &task));
    demo.tasks.tasks.borrow_mut().insert(id, task);
    body.into_bytes()
}

fn task_json(id: &str, t: &Task) -> String {
    let ttl = t.ttl.map_or("null".to_string(), |v| v.to_string());
    format!(
        r#"{{"taskId":"{id}","status":"{}","createdAt":"{}","lastUpdatedAt":"{}","ttl":{ttl},"pollInterval":{POLL_MS}}}"#,
        t.status(),
        t.created,
        super::tools::utc_now()
    )
}

fn task_id(p: Option<&OwnedValue>) -> String {
    p.and_then(|p| p.get("taskId"))
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .to_string()
}

fn not_found() -> (i32, String) {
    (
        code::INVALID_PARAMS,
        "Failed to retrieve task: Task not found".into(),
    )
}

/// Answers `tasks/get`, `tasks/result`, `tasks/list` and `tasks/cancel`.
pub async fn handle(demo: &Demo, m: &str, p: Option<&OwnedValue>) -> Answer {
    let id = task_id(p);
    match m {
        method::TASKS_GET => {
            let tasks = demo.tasks.tasks.borrow();
            let t = tasks.get(&id).ok_or_else(not_found)?;
            Ok(task_json(&id, t).into_bytes())
        }
        method::TASKS_LIST => {
            let tasks = demo.tasks.tasks.borrow();
            let all: Vec<String> = tasks.iter().map(|(id, t)| task_json(id, t)).collect();
            Ok(format!("{{\"tasks\":[{}]}}", all.join(",")).into_bytes())
        }
        method::TASKS_CANCEL => cancel(demo, &id),
        _ => result(demo, &id).await,
    }
}

fn cancel(demo: &Demo, id: &str) -> Answer {
    let note = {
        let mut tasks = demo.tasks.tasks.borrow_mut();
        let t = tasks.get_mut(id).ok_or_else(not_found)?;
        if t.status() != "working" {
            return Err((
                code::INVALID_PARAMS,
                format!("Task is already {}", t.status()),
            ));
        }
        t.cancelled = true;
        task_json(id, t)
    };
    let status = encode::notification(method::TASKS_STATUS, Some(note.as_bytes()));
    demo.streams.broadcast(&status);
    Ok(note.into_bytes())
}

/// `tasks/result`: waits until the task ends, then the `sleep` result (with `related-task`).
async fn result(demo: &Demo, id: &str) -> Answer {
    let (due, ms) = {
        let tasks = demo.tasks.tasks.borrow();
        let t = tasks.get(id).ok_or_else(not_found)?;
        (t.due, t.ms)
    };
    monoio::time::sleep(due.saturating_duration_since(Instant::now())).await;
    let cancelled = demo
        .tasks
        .tasks
        .borrow()
        .get(id)
        .is_none_or(|t| t.cancelled);
    if cancelled {
        return Err((code::INTERNAL_ERROR, "the task was cancelled".into()));
    }
    Ok(format!(
        r#"{{"content":[{{"type":"text","text":"slept {ms} ms"}}],"isError":false,"_meta":{{"io.modelcontextprotocol/related-task":{{"taskId":"{id}"}}}}}}"#
    )
    .into_bytes())
}
