#!/usr/bin/env python3
"""MCP test client for the interop suite, built on the official Python SDK
(`mcp` 2.x from PyPI; installed by tests/interop/setup.sh).

Connects once, optionally lists every tool (following `nextCursor` page by page)
and calls tools, then prints ONE JSON document on stdout describing what
happened, so run.sh can assert on it:

    {"protocol_version": "...", "server_info": "name version",
     "negotiated": "initialize" | "discover",
     "pages": [3, 3, 1],                  # tools per page (with --list)
     "tools": ["a__x", ...],              # all names, in order (with --list)
     "calls": [{"name": ..., "is_error": bool, "texts": [...], "structured": ...}
               | {"name": ..., "error": {"code": int, "message": str}}],
     "fatal": "..."}                      # only when connecting/listing failed

    python mcp_client.py http URL [--mode M] [--list] [--call NAME JSON]...
    python mcp_client.py sse  URL [--mode M] [--list] [--call NAME JSON]...
    python mcp_client.py stdio [--mode M] [--list] [--call NAME JSON]... -- CMD [ARG...]

--mode: auto (probe server/discover, fall back to initialize), legacy
        (initialize handshake only) or a modern version such as 2026-07-28.
Exit status: 0 when the connection (and listing) worked, even if a call failed
(the calls are reported in the JSON); 1 on a fatal error; --strict also makes a
failed call or an isError result exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import traceback
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError
from mcp.types import TextContent

MAX_PAGES = 1000  # a gateway that loops on cursors must not hang the suite


def build_target(ns: argparse.Namespace) -> Any:
    if ns.transport == "stdio":
        if not ns.command:
            sys.exit("stdio needs a command after --")
        return StdioServerParameters(command=ns.command[0], args=ns.command[1:])
    if not ns.url:
        sys.exit(f"{ns.transport} needs a URL")
    if ns.transport == "http":
        return ns.url  # a plain str means Streamable HTTP
    return sse_client(ns.url)  # legacy 2024-11-05 HTTP+SSE transport


def leaf_errors(exc: BaseException) -> list[BaseException]:
    """Flattens (nested) exception groups from anyio task groups."""
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for e in exc.exceptions:
            out.extend(leaf_errors(e))
        return out
    return [exc]


def describe(exc: BaseException) -> str:
    parts = []
    for e in leaf_errors(exc):
        if isinstance(e, MCPError):
            parts.append(f"MCPError {e.code}: {e.message}")
        else:
            parts.append(f"{type(e).__name__}: {e}")
    return "; ".join(parts)


async def list_all_tools(client: Client, report: dict[str, Any]) -> None:
    names: list[str] = []
    pages: list[int] = []
    cursors: list[str] = []
    cursor: str | None = None
    while True:
        # bypass the SDK's response cache: every page must come from the server
        page = await client.list_tools(cursor=cursor, cache_mode="bypass")
        pages.append(len(page.tools))
        names.extend(t.name for t in page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
        if cursor in cursors:
            raise RuntimeError(f"cursor repeated after {len(pages)} pages: {cursor!r}")
        cursors.append(cursor)
        if len(pages) >= MAX_PAGES:
            raise RuntimeError(f"more than {MAX_PAGES} pages")
    report["tools"] = names
    report["pages"] = pages


async def call(client: Client, name: str, args: dict[str, Any]) -> dict[str, Any]:
    try:
        result = await client.call_tool(name, args)
    except MCPError as e:
        return {"name": name, "error": {"code": e.code, "message": e.message, "data": e.data}}
    except Exception as e:  # transport trouble, timeouts
        return {"name": name, "error": {"code": None, "message": describe(e)}}
    texts = [b.text for b in result.content if isinstance(b, TextContent)]
    return {
        "name": name,
        "is_error": bool(result.is_error),
        "texts": texts,
        "structured": result.structured_content,
    }


async def _refuse(*_args: Any) -> Any:
    raise MCPError(code=-32601, message="the interop client does not answer this")


async def _no_roots(*_args: Any) -> Any:
    from mcp.types import ListRootsResult

    return ListRootsResult(roots=[])


async def run(ns: argparse.Namespace, report: dict[str, Any]) -> None:
    target = build_target(ns)
    extra: dict[str, Any] = {}
    if ns.declare_caps:
        # Declare what the gateway declares to its downstreams (sampling, elicitation, roots), so a
        # direct listing shows what a server offers to such a client (servers gate tools on them).
        extra = dict(sampling_callback=_refuse, elicitation_callback=_refuse, list_roots_callback=_no_roots)
    async with Client(target, mode=ns.mode, read_timeout_seconds=ns.timeout, **extra) as client:
        info = client.server_info
        report["protocol_version"] = client.protocol_version
        report["server_info"] = f"{info.name} {info.version}" if info else None
        session = client.session
        if session.initialize_result is not None:
            report["negotiated"] = "initialize"
        elif session.discover_result is not None:
            report["negotiated"] = "discover"
        else:
            report["negotiated"] = "adopted"
        if ns.list:
            await list_all_tools(client, report)
        for name, raw_args in ns.call or []:
            report["calls"].append(await call(client, name, json.loads(raw_args)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("transport", choices=["stdio", "http", "sse"])
    p.add_argument("url", nargs="?", help="endpoint URL for http/sse")
    p.add_argument("--mode", default="auto", help="auto | legacy | 2026-07-28")
    p.add_argument("--list", action="store_true", help="list all tools, following cursors")
    p.add_argument("--call", nargs=2, action="append", metavar=("NAME", "JSON"), help="call a tool (repeatable)")
    p.add_argument("--timeout", type=float, default=20.0, help="per-request read timeout, seconds")
    p.add_argument("--strict", action="store_true", help="exit 1 if any call failed or returned isError")
    p.add_argument("--declare-caps", action="store_true", help="declare sampling, elicitation and roots (as the gateway does downstream)")
    argv = sys.argv[1:]
    command: list[str] = []
    if "--" in argv:  # everything after "--" is the stdio server command line
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1 :]
    ns = p.parse_args(argv)
    ns.command = command

    report: dict[str, Any] = {"calls": []}
    status = 0
    try:
        asyncio.run(asyncio.wait_for(run(ns, report), timeout=ns.timeout * 3))
    except BaseException as e:  # noqa: BLE001 - report everything, including groups
        if isinstance(e, KeyboardInterrupt):
            raise
        report["fatal"] = describe(e) or type(e).__name__
        traceback.print_exc()  # stderr: run.sh keeps it in the check's log
        status = 1
    if ns.strict and any("error" in c or c.get("is_error") for c in report["calls"]):
        status = status or 1
    print(json.dumps(report, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
