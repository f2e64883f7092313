#!/usr/bin/env python3
"""Tiny dual-era MCP server on the official Python SDK (`mcp` 2.x), used as a
downstream by the interop suite.

A v2 MCPServer answers both the legacy `initialize` handshake (<= 2025-11-25)
and the stateless 2026-07-28 protocol (`server/discover`, per-request _meta) on
the same endpoint, so it is the "modern" peer next to server-everything
(TypeScript SDK v1, legacy only). Always binds 127.0.0.1.

    python py_server.py stdio
    python py_server.py http  [--port 3002]   -> http://127.0.0.1:3002/mcp
    python py_server.py sse   [--port 3003]   -> http://127.0.0.1:3003/sse
"""

import argparse
from typing import Annotated

from pydantic import BaseModel

from mcp.server import MCPServer
from mcp.server.mcpserver import Elicit, Resolve

mcp = MCPServer("py-peer", instructions="test peer for the ringgate interop suite")


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@mcp.tool()
def echo(message: str) -> str:
    """Echo the message back."""
    return f"Echo: {message}"


class Name(BaseModel):
    name: str


def ask_for_name() -> Elicit[Name]:
    return Elicit("What is your name?", Name)


@mcp.tool()
def greet_user(who: Annotated[Name, Resolve(ask_for_name)]) -> str:
    """Ask the user's name (elicitation), then greet them.

    2026-07-28 clients get an input_required result (multi round-trip); legacy
    clients get a standalone elicitation/create request mid-call.
    """
    return f"Hello, {who.name}!"


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("transport", choices=["stdio", "http", "sse"])
    p.add_argument("--port", type=int, default=3002)
    ns = p.parse_args()
    if ns.transport == "stdio":
        mcp.run()
    elif ns.transport == "http":
        # A client's subscriptions/listen stream (the gateway keeps one to every modern server) stays
        # open as long as the client wants: uvicorn's graceful shutdown would wait for it forever,
        # so it is bounded (the suite stops peers with SIGTERM).
        import uvicorn

        app = mcp.streamable_http_app(host="127.0.0.1")
        config = uvicorn.Config(app, host="127.0.0.1", port=ns.port, timeout_graceful_shutdown=1)
        uvicorn.Server(config).run()
    else:
        mcp.run(transport="sse", host="127.0.0.1", port=ns.port)
