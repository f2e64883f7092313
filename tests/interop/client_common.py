"""What the SDK clients of this suite share (bridge_client.py, s2c_client.py): the target a
URL names, the answer a "user" gives to an elicitation form, the stdio command after `--`,
and running a client to ONE JSON report on stdout."""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from mcp import StdioServerParameters
from mcp.client.sse import sse_client
from mcp.types import ElicitRequestParams, ElicitResult


def target(url: str, command: list[str]) -> Any:
    """`stdio` launches COMMAND; a URL ending in /sse is legacy HTTP+SSE; else Streamable HTTP."""
    if url == "stdio":
        return StdioServerParameters(command=command[0], args=command[1:])
    if url.endswith("/sse"):
        return sse_client(url)
    return url


def fill_form(params: ElicitRequestParams, name: str, email: str, date: str) -> ElicitResult:
    """A URL elicitation is declined; a form gets every field filled (`name`, and every other
    text field without a default or enum, with NAME)."""
    if params.mode == "url":
        return ElicitResult(action="decline")
    content: dict[str, Any] = {}
    for key, prop in (params.requested_schema or {}).get("properties", {}).items():
        kind = prop.get("type")
        value = prop.get("default", {"string": name, "integer": 7, "number": 1.5, "boolean": True}.get(kind, name))
        if "enum" in prop:
            value = prop["enum"][0]
        if kind == "string" and prop.get("format") == "email":
            value = email
        elif kind == "string" and prop.get("format") == "uri":
            value = "https://example.com"
        elif kind == "string" and prop.get("format") == "date":
            value = date
        elif kind == "string" and key == "name":
            value = name
        content[key] = value
    return ElicitResult(action="accept", content=content)


def split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """The arguments, and everything after "--" (the stdio server command line)."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def report_run(run: Callable[[], Awaitable[None]], report: dict[str, Any], timeout: float) -> int:
    """Runs the client within TIMEOUT seconds, then prints REPORT (with `fatal` if it failed)."""
    status = 0
    try:
        asyncio.run(asyncio.wait_for(run(), timeout=timeout))
    except BaseException as e:  # noqa: BLE001 - report everything
        if isinstance(e, KeyboardInterrupt):
            raise
        report["fatal"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
        status = 1
    print(json.dumps(report, default=str))
    return status
