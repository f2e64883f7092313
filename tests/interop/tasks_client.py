"""Experimental tasks (MCP 2025-11-25) through the gateway against a real task-capable peer.

    python tasks_client.py GATEWAY_URL SERVER_PREFIX

server-everything offers `simulate-research-query` (execution.taskSupport = "required"). Over raw
Streamable HTTP (no SDK task API needed): two sessions; the first creates a task through the
gateway and polls it, fetches its result and lists it; the second must neither list it nor reach
it by id. Prints nothing and exits 0 on success; prints the reason and exits 1 otherwise.
"""

import json
import sys
import time
import urllib.error
import urllib.request

URL, PREFIX = sys.argv[1], sys.argv[2]
TOOL = f"{PREFIX}__simulate-research-query"


def post(body, session=None):
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
    }
    if session:
        headers["mcp-session-id"] = session
    req = urllib.request.Request(URL, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            sid = r.headers.get("mcp-session-id")
    except urllib.error.HTTPError as e:
        text, sid = e.read().decode(), None
    if text.lstrip().startswith("{") or not text.strip():
        return (json.loads(text) if text.strip() else None), sid
    # SSE: the last message with our id
    found = None
    for line in text.splitlines():
        if line.startswith("data: "):
            msg = json.loads(line[6:])
            if msg.get("id") == body.get("id"):
                found = msg
    return found, sid


def session():
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "interop-tasks", "version": "0"}}}
    reply, sid = post(init)
    post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
    return reply, sid


def fail(why):
    print(why)
    sys.exit(1)


def task_call(method, task, sid, n):
    reply, _ = post({"jsonrpc": "2.0", "id": n, "method": method, "params": {"taskId": task}}, sid)
    return reply or {}


def main():
    init, mine = session()
    tasks_cap = ((init or {}).get("result", {}).get("capabilities", {}).get("tasks") or {})
    if "call" not in tasks_cap.get("requests", {}).get("tools", {}):
        fail(f"the gateway does not advertise tasks.requests.tools.call: {init}")
    _, other = session()
    deadline = time.time() + 15
    while True:
        tools, _ = post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, mine)
        names = [t["name"] for t in (tools or {}).get("result", {}).get("tools", [])]
        if TOOL in names:
            break
        if time.time() > deadline:
            fail(f"{TOOL} never listed: {names}")
        time.sleep(0.2)
    created, _ = post({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                       "params": {"name": TOOL, "arguments": {"topic": "gateways"},
                                  "task": {"ttl": 60000}}}, mine)
    task = ((created or {}).get("result", {}).get("task") or {}).get("taskId")
    if not task or not task.startswith("k1."):
        fail(f"CreateTaskResult without a sealed gateway task id: {created}")
    got = task_call("tasks/get", task, mine, 3)
    if got.get("result", {}).get("taskId") != task:
        fail(f"tasks/get by the owner: {got}")
    listed, _ = post({"jsonrpc": "2.0", "id": 4, "method": "tasks/list"}, mine)
    ids = [t.get("taskId") for t in (listed or {}).get("result", {}).get("tasks", [])]
    if task not in ids:
        fail(f"tasks/list of the owner lacks the task: {listed}")
    theirs, _ = post({"jsonrpc": "2.0", "id": 5, "method": "tasks/list"}, other)
    if (theirs or {}).get("result", {}).get("tasks", None) != []:
        fail(f"another session's tasks/list is not empty: {theirs}")
    for n, method in enumerate(["tasks/get", "tasks/result", "tasks/cancel"], start=6):
        refused = task_call(method, task, other, n)
        if refused.get("error", {}).get("code") != -32602:
            fail(f"{method} from another session was not refused with -32602: {refused}")
    result = task_call("tasks/result", task, mine, 9)
    content = result.get("result", {}).get("content")
    if not content:
        fail(f"tasks/result by the owner: {result}")
    related = result["result"].get("_meta", {}).get("io.modelcontextprotocol/related-task", {})
    if related and related.get("taskId") != task:
        fail(f"tasks/result related-task is not the gateway's id: {related}")
    done = task_call("tasks/get", task, mine, 10)
    if done.get("result", {}).get("status") != "completed":
        fail(f"the task did not complete: {done}")


main()
