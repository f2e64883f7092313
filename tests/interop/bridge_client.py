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
import asyncio
import json
import sys
import traceback
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.client import ClientRequestContext
from mcp.client.sse import sse_client
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
    if params.mode == "url":
        return ElicitResult(action="decline")
    content: dict[str, Any] = {}
    for key, prop in (params.requested_schema or {}).get("properties", {}).items():
        kind = prop.get("type")
        value = prop.get("default", {"string": NAME, "integer": 7, "number": 1.5, "boolean": True}.get(kind, NAME))
        if "enum" in prop:
            value = prop["enum"][0]
        if kind == "string" and prop.get("format") == "email":
            value = "ada@example.com"
        elif kind == "string" and prop.get("format") == "uri":
            value = "https://example.com"
        elif kind == "string" and prop.get("format") == "date":
            value = "1815-12-10"
        elif kind == "string" and key == "name":
            value = NAME
        content[key] = value
    return ElicitResult(action="accept", content=content)


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


def target(ns: argparse.Namespace) -> Any:
    if ns.url == "stdio":
        return StdioServerParameters(command=ns.command[0], args=ns.command[1:])
    if ns.url.endswith("/sse"):
        return sse_client(ns.url)
    return ns.url


async def run(ns: argparse.Namespace, report: dict[str, Any]) -> None:
    async with Client(
        target(ns),
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
    argv = sys.argv[1:]
    command: list[str] = []
    if "--" in argv:  # everything after "--" is the stdio server command line
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1 :]
    ns = p.parse_args(argv)
    ns.command = command
    report: dict[str, Any] = {"mode": ns.mode, "calls": [], "seen": seen}
    status = 0
    try:
        asyncio.run(asyncio.wait_for(run(ns, report), timeout=ns.timeout * 3))
    except BaseException as e:  # noqa: BLE001 - report everything
        if isinstance(e, KeyboardInterrupt):
            raise
        report["fatal"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
        status = 1
    print(json.dumps(report, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
