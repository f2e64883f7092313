#!/usr/bin/env python3
"""The era bridge from a real client: the official Python SDK client (`mcp` 2.x)
calls tools that ask for client input (elicitation, sampling) and answers through
its callbacks, then prints ONE JSON document for judge.py:

    {"mode": "...", "protocol_version": "...",
     "seen": ["elicitation/create(form)", "sampling/createMessage", ...],
     "calls": [{"name": ..., "is_error": bool, "texts": [...]} | {"name": ..., "error": {...}}],
     "fatal": "..."}                      # only when connecting failed

    python bridge_client.py URL --mode 2026-07-28 --call NAME JSON [--call NAME JSON]...
    python bridge_client.py stdio --mode legacy --call NAME JSON -- CMD [ARG...]

URL: Streamable HTTP, or legacy HTTP+SSE when it ends in /sse; `stdio` launches CMD.

In 2026-07-28 mode the SDK answers `input_required` results (multi round-trip
requests) and retries; in legacy mode it answers server-to-client requests. Either
way the callbacks below run, and `seen` records them.
"""

from __future__ import annotations

import argparse
import json
import sys
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

seen: list[str] = []
NAME = "Ada Lovelace"  # what the "user" types into every text field


async def on_sampling(ctx: ClientRequestContext, params: CreateMessageRequestParams) -> CreateMessageResult:
    seen.append("sampling/createMessage")
    return CreateMessageResult(role="assistant", content=TextContent(type="text", text="canned reply"), model="fake-model")


async def on_elicit(ctx: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    seen.append(f"elicitation/create({params.mode})")
    return fill_form(params, NAME, "ada@example.com", "1815-12-10")


async def on_roots(ctx: ClientRequestContext) -> ListRootsResult:
    seen.append("roots/list")
    return ListRootsResult(roots=[Root(uri="file:///tmp", name="tmp")])


async def call(client: Client, name: str, args: dict[str, Any]) -> dict[str, Any]:
    try:
        result = await client.call_tool(name, args)
    except MCPError as e:
        return {"name": name, "error": {"code": e.code, "message": e.message, "data": e.data}}
    except Exception as e:  # noqa: BLE001 - transport trouble, timeouts, exception groups
        return {"name": name, "error": {"code": None, "message": f"{type(e).__name__}: {e}"}}
    texts = [b.text for b in result.content if isinstance(b, TextContent)]
    return {"name": name, "is_error": bool(result.is_error), "texts": texts}


async def run(ns: argparse.Namespace, report: dict[str, Any]) -> None:
    async with Client(
        target(ns.url, ns.command),
        mode=ns.mode,
        read_timeout_seconds=ns.timeout,
        sampling_callback=on_sampling,
        elicitation_callback=on_elicit,
        list_roots_callback=on_roots,
    ) as client:
        report["protocol_version"] = client.protocol_version
        for name, raw in ns.call or []:
            report["calls"].append(await call(client, name, json.loads(raw)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", help="endpoint URL, or 'stdio'")
    p.add_argument("--mode", default="2026-07-28", help="auto | legacy | 2026-07-28")
    p.add_argument("--call", nargs=2, action="append", metavar=("NAME", "JSON"))
    p.add_argument("--timeout", type=float, default=20.0)
    argv, command = split_command(sys.argv[1:])
    ns = p.parse_args(argv)
    ns.command = command
    report: dict[str, Any] = {"mode": ns.mode, "calls": [], "seen": seen}
    return report_run(lambda: run(ns, report), report, ns.timeout * 3)


if __name__ == "__main__":
    sys.exit(main())
