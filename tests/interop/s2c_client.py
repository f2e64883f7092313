#!/usr/bin/env python3
"""Server-to-client traffic through the gateway, from a real client (issue #3).

`run`: the official Python SDK client (`mcp` 2.x) in LEGACY mode (2025-11-25), declaring
sampling, elicitation and roots through its callbacks, connects to the gateway over one front
and, for each downstream prefix DS given, calls server-everything's

    DS__trigger-sampling-request, DS__trigger-elicitation-request, DS__get-roots-list,
    DS__trigger-long-running-operation (with a progress callback)

Then a second session over the same front that declares NO capability calls
DS__trigger-sampling-request: it must get a clean error (an error result or a JSON-RPC error)
within --refuse-timeout seconds, not a hang; the elapsed time is reported. Writes ONE JSON
report to stdout:

    {"via": ..., "protocol_version": ..., "seen": [...],
     "calls": [{"ds": ..., "name": ..., "is_error": bool, "texts": [...], "progress": [...],
                "elapsed": s} | {"ds": ..., "name": ..., "error": {...}, "elapsed": s}],
     "refused": [{"ds": ..., ...same shape...}], "fatal": "..."}

    python s2c_client.py run URL|stdio --ds DS [--ds DS]... [-- CMD ARG...]

URL: Streamable HTTP, or legacy HTTP+SSE when it ends in /sse; `stdio` launches CMD.

`judge`: reads such a report and checks one downstream's share of it; prints why and exits 1
if anything is wrong (run.sh turns that into `FAIL name: why`).

    python s2c_client.py judge REPORT.json DS [standalone-roots]

`standalone-roots`: DS is server-everything over Streamable HTTP, whose get-roots-list asks
`roots/list` without a related request, so on its standalone GET stream. That request belongs to
no call, and the gateway refuses it there by design (upstream::watch; DESIGN: refused, never
guessed): the tool must then end cleanly, reporting no roots, and the judge says so in its
output. If the gateway ever relays it to the caller, the strict check applies and passes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from typing import Any

from client_common import fill_form, report_run, split_command, target
from mcp import Client
from mcp.client import ClientRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestParams,
    ElicitResult,
    ListRootsResult,
    Root,
    TextContent,
)

SAMPLED = "canned s2c reply"  # what the "model" answers
NAME = "Grace Hopper"  # what the "user" types into every text field
ROOT = f"file:///s2c/{uuid.uuid4().hex[:12]}"  # the one root this client has (unique per run)
LONG_STEPS = 3

seen: list[str] = []


async def on_sampling(ctx: ClientRequestContext, params: CreateMessageRequestParams) -> CreateMessageResult:
    seen.append("sampling/createMessage")
    return CreateMessageResult(role="assistant", content=TextContent(type="text", text=SAMPLED), model="fake-model")


async def on_elicit(ctx: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    seen.append("elicitation/create")
    return fill_form(params, NAME, "grace@example.com", "1906-12-09")


async def on_roots(ctx: ClientRequestContext) -> ListRootsResult:
    seen.append("roots/list")
    return ListRootsResult(roots=[Root(uri=ROOT, name="s2c")])


async def call(
    client: Client, ds: str, tool: str, args: dict[str, Any], timeout: float, first: asyncio.Event | None = None
) -> dict[str, Any]:
    progress: list[list[float | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append([value, total])
        if first is not None:
            first.set()

    name = f"{ds}__{tool}"
    out: dict[str, Any] = {"ds": ds, "name": name}
    start, before = time.monotonic(), len(seen)
    try:
        result = await asyncio.wait_for(client.call_tool(name, args, progress_callback=on_progress), timeout)
        out.update(is_error=bool(result.is_error), texts=[b.text for b in result.content if isinstance(b, TextContent)])
    except MCPError as e:
        out["error"] = {"code": e.code, "message": e.message}
    except (asyncio.TimeoutError, TimeoutError):
        out["error"] = {"code": None, "message": f"no answer within {timeout}s (hang)"}
    except Exception as e:  # noqa: BLE001 - transport trouble, exception groups
        out["error"] = {"code": None, "message": f"{type(e).__name__}: {e}"}
    out["elapsed"] = round(time.monotonic() - start, 3)
    out["progress"] = progress
    out["asked"] = seen[before:]
    return out


async def roots_changed_during_long_call(client: Client, ds: str, timeout: float) -> dict[str, Any]:
    """trigger-long-running-operation; once its first progress arrived (it runs downstream), the
    client says its roots changed. The gateway tells every server; server-everything asks for the
    roots again (outside any call, from its point of view), and the gateway relays that to the one
    session with a call in flight there: this one. (A downstream session is shared by the gateway's
    clients and server-everything keeps the roots it got per session, so without this a client
    could see another's cached roots and never be asked.)"""
    first = asyncio.Event()
    args = {"duration": 1.0, "steps": LONG_STEPS}
    running = asyncio.create_task(call(client, ds, "trigger-long-running-operation", args, timeout, first))
    try:
        await asyncio.wait_for(first.wait(), timeout)
        await client.session.send_roots_list_changed()
    except (asyncio.TimeoutError, TimeoutError):
        pass  # no progress: the judge says so
    return await running


async def run(ns: argparse.Namespace, report: dict[str, Any]) -> None:
    async with Client(
        target(ns.url, ns.command),
        mode="legacy",
        read_timeout_seconds=ns.timeout,
        sampling_callback=on_sampling,
        elicitation_callback=on_elicit,
        list_roots_callback=on_roots,
    ) as client:
        report["protocol_version"] = client.protocol_version
        report["root"] = ROOT
        for ds in ns.ds:
            for tool, args in [
                ("trigger-sampling-request", {"prompt": "say hi", "maxTokens": 10}),
                ("trigger-elicitation-request", {}),
            ]:
                report["calls"].append(await call(client, ds, tool, args, ns.timeout))
            report["calls"].append(await roots_changed_during_long_call(client, ds, ns.timeout))
            report["calls"].append(await call(client, ds, "get-roots-list", {}, ns.timeout))
    # No callbacks: this session declares no client capability at all.
    async with Client(target(ns.url, ns.command), mode="legacy", read_timeout_seconds=ns.timeout) as bare:
        for ds in ns.ds:
            args = {"prompt": "say hi", "maxTokens": 10}
            report["refused"].append(await call(bare, ds, "trigger-sampling-request", args, ns.refuse_timeout))


def text_of(c: dict[str, Any]) -> str:
    return " | ".join(c.get("texts") or [])[:300]


NO_ROOTS = "no roots are currently configured"
notes: list[str] = []


def judge(report: dict[str, Any], ds: str, standalone_roots: bool = False) -> list[str]:
    """What is wrong with DS's calls in the report (empty: all good)."""
    if report.get("fatal"):
        return [f"client failed: {report['fatal']}"]
    if report.get("protocol_version") != "2025-11-25":
        return [f"negotiated {report.get('protocol_version')!r}, expected 2025-11-25"]
    calls = {c["name"].split("__", 1)[1]: c for c in report.get("calls", []) if c.get("ds") == ds}
    roots = calls.get("get-roots-list")
    if roots is not None and standalone_roots and NO_ROOTS not in text_of(roots):
        standalone_roots = False  # relayed after all: judged strictly
    wants = {
        "trigger-sampling-request": SAMPLED,
        "trigger-elicitation-request": NAME,
        "get-roots-list": NO_ROOTS if standalone_roots else report.get("root", "?"),
        "trigger-long-running-operation": "Long running operation completed",
    }
    bad = []
    for tool, want in wants.items():
        c = calls.get(tool)
        if c is None:
            bad.append(f"{tool}: never called")
        elif "error" in c:
            bad.append(f"{tool}: error {c['error']}")
        elif c.get("is_error") or want not in text_of(c):
            bad.append(f"{tool}: is_error={c.get('is_error')}, expected {want!r} in {text_of(c)!r}")
    long = calls.get("trigger-long-running-operation") or {}
    got = [p[0] for p in long.get("progress", [])]
    if got != list(range(1, LONG_STEPS + 1)):
        bad.append(f"trigger-long-running-operation: progress callback saw {got}, expected 1..{LONG_STEPS}")
    for tool, method in [
        ("trigger-sampling-request", "sampling/createMessage"),
        ("trigger-elicitation-request", "elicitation/create"),
    ]:
        if tool in calls and method not in calls[tool].get("asked", []):
            bad.append(f"{tool}: the client's {method} callback never ran during the call")
    during = ["trigger-long-running-operation", "get-roots-list"]
    asked_roots = [t for t in during if "roots/list" in calls.get(t, {}).get("asked", [])]
    if standalone_roots:
        notes.append("roots/list came on server-everything's standalone stream: refused by the gateway, the tool ended cleanly")
    elif not asked_roots:
        bad.append("the client's roots/list callback never ran (during the long call after roots/list_changed, or during get-roots-list)")
    refused = [c for c in report.get("refused", []) if c.get("ds") == ds]
    if not refused:
        bad.append("the undeclared client never called trigger-sampling-request")
    for c in refused:
        hung = "error" in c and c["error"].get("code") is None
        clean = ("error" in c and not hung) or c.get("is_error")
        if not clean:
            bad.append(f"undeclared client: trigger-sampling-request gave no clean error ({c}, {c['elapsed']}s)")
        elif SAMPLED in text_of(c):
            bad.append(f"undeclared client was sampled: {text_of(c)!r}")
    return bad


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["judge"]:
        with open(argv[1]) as f:
            report = json.load(f)
        bad = judge(report, argv[2], argv[3:4] == ["standalone-roots"])
        refused = [c for c in report.get("refused", []) if c.get("ds") == argv[2]]
        if bad:
            print("; ".join(bad))
            return 1
        print("; ".join([f"undeclared sampling refused in {refused[0]['elapsed']}s", *notes]))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("verb", choices=["run"])
    p.add_argument("url", help="endpoint URL, or 'stdio'")
    p.add_argument("--ds", action="append", required=True, help="a downstream's prefix")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--refuse-timeout", type=float, default=10.0)
    argv, command = split_command(argv)
    ns = p.parse_args(argv)
    ns.command = command
    report: dict[str, Any] = {"via": ns.url, "calls": [], "refused": [], "seen": seen}
    return report_run(lambda: run(ns, report), report, ns.timeout * 6)


if __name__ == "__main__":
    sys.exit(main())
