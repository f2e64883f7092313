#!/usr/bin/env python3
"""Hot reload under load, with real peers (run by run.sh's c_reload_live; also runs alone).

Starts its own gateway (`ringgate serve --config FILE`) in front of real peers:
server-everything over stdio (a child the gateway spawns) and over streamableHttp, the Python
SDK peer (py_server.py, streamable-http), and `ringgate demo-server` over stdio. Then, while
keep-alive callers run a steady tools/call load on the servers that stay:

  - a legacy session (initialize + a raw GET stream read here, so a drop is seen), a Python SDK
    legacy Client (its GET stream, list_changed through message_handler) and a Python SDK
    2026-07-28 Client with a `subscriptions/listen` stream stay open throughout;
  - the config FILE is rewritten many ways: in-place truncating writes (open(path, 'w')), one
    of them deliberately slow (a half-written file sits on disk for over a watch interval),
    write-temp + os.replace, `cp`, and a burst of writes (debounce: only the last applies);
    each adds/removes a server, changes a prefix, or changes nothing that matters; then a storm
    of in-place writes, each in two parts (the first alone a valid config lacking most servers),
    so reloads run while the file is being rewritten;
  - after each settle: tools/list follows the file, the stdio child of the unchanged server
    keeps its pid;
  - SIGHUP re-reads the file; POST /v1/reload with a broken config answers 422 with the
    errors and changes nothing (catalog, generation) but lastReloadError.

Counts that must be zero: failed requests, connections closed by the gateway. Prints one JSON
report on stdout; exit 0 only when every check held (the reasons are in "problems").

    python reload_check.py --bin target/release/ringgate --ev .../mcp-server-everything \
        --cjs tests/interop/loopback-only.cjs [--ev-url URL] [--py-url URL] [--work DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.sse import sse_client

HERE = Path(__file__).resolve().parent
LEGACY = "2025-11-25"
MODERN = "2026-07-28"
READY_S = float(os.environ.get("INTEROP_READY_TIMEOUT", "60"))  # peers and the gateway start
SETTLE_S = 15.0
STORM_WRITES = 16  # a reload (watch interval + debounce + warm-up of a new server) must land by then
STABLE = ("ev_stdio", "ev_http", "py")  # never change: the load runs on them
LOAD_CALLS = [
    ("ev_stdio__echo", {"message": "load"}),
    ("ev_http__echo", {"message": "load"}),
    ("py__add", {"a": 2, "b": 3}),
]
ACCEPT = "application/json, text/event-stream"

problems: list[str] = []


def problem(msg: str) -> None:
    problems.append(msg)
    print(f"reload_check: {msg}", file=sys.stderr, flush=True)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def tq(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string for these paths


# ----------------------------------------------------------------------------- configs
class Layout:
    """Renders the config variants: the stable servers, plus `demo` (prefix may change) and `py2`."""

    def __init__(self, ns: argparse.Namespace, gw: int, adm: int) -> None:
        self.ns, self.gw, self.adm = ns, gw, adm

    def render(self, demo_prefix: str | None, py2: bool, comment: str = "", order_swap: bool = False,
               ev_header: str | None = None) -> str:
        ns = self.ns
        head = (
            f"# {comment}\n[gateway]\nlisten = \"127.0.0.1:{self.gw}\"\nadmin_listen = \"127.0.0.1:{self.adm}\"\n"
            "workers = 2\ncall_timeout_ms = 15000\n"
        )
        stable = [
            "[[server]]\nname = \"ev_stdio\"\ntransport = \"stdio\"\ncommand = \"node\"\n"
            f"args = [\"--require\", {tq(ns.cjs)}, {tq(ns.ev)}, \"stdio\"]\n",
            f"[[server]]\nname = \"ev_http\"\ntransport = \"http\"\nurl = {tq(ns.ev_url)}\n"
            + (f"headers = {{ X-Reload = \"{ev_header}\" }}\n" if ev_header else ""),
            f"[[server]]\nname = \"py\"\ntransport = \"http\"\nurl = {tq(ns.py_url)}\n",
        ]
        if order_swap:
            stable.reverse()
        demo = (
            "[[server]]\nname = \"demo\"\ntransport = \"stdio\"\n"
            f"command = {tq(ns.bin)}\nargs = [\"demo-server\", \"--transport\", \"stdio\", \"--name\", \"demo\"]\n"
        )
        if demo_prefix is not None:
            demo += f"prefix = \"{demo_prefix}\"\n"
        parts = [head, *stable, demo]
        if py2:
            parts.append(f"[[server]]\nname = \"py2\"\ntransport = \"http\"\nurl = {tq(ns.py_url)}\nrequired = false\n")
        return "\n".join(parts)

    @staticmethod
    def prefixes(demo_prefix: str | None, py2: bool) -> list[str]:
        return [*STABLE, demo_prefix or "demo", *(["py2"] if py2 else [])]


BROKEN = """
[gateway]
listen = "127.0.0.1:1"
workers = "two"

[[server]]
name = "ev_http"
transport = "http"

[[server]]
name = "bad name!"
transport = "stdio"
"""


# ----------------------------------------------------------------------------- admin
def admin_get(adm: str, path: str) -> Any:
    with urllib.request.urlopen(adm + path, timeout=5) as r:
        return json.load(r)


def admin_post(adm: str, path: str, body: bytes) -> tuple[int, Any]:
    req = urllib.request.Request(adm + path, data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def reload_errors(adm: str) -> int:
    """ringgate_reload_total{result="error"} from /metrics."""
    with urllib.request.urlopen(adm + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith('ringgate_reload_total{result="error"}'):
                return int(float(line.split()[-1]))
    raise RuntimeError("/metrics has no ringgate_reload_total{result=\"error\"}")


def generation(adm: str) -> int:
    return int(admin_get(adm, "/v1/servers").get("configGeneration") or 0)


def stdio_pids(adm: str) -> dict[str, Any]:
    return {s["name"]: s.get("pid") for s in admin_get(adm, "/v1/servers").get("servers", []) if s.get("transport") == "stdio"}


def up_since(adm: str) -> dict[str, Any]:
    """When each server's running instance came up: a server kept across reloads keeps it."""
    return {s["name"]: s.get("upSince") for s in admin_get(adm, "/v1/servers").get("servers", [])}


# ----------------------------------------------------------------------------- raw MCP over HTTP
def sse_or_json(resp: http.client.HTTPResponse) -> list[dict[str, Any]]:
    body = resp.read()
    if "text/event-stream" in (resp.getheader("content-type") or ""):
        out = []
        for line in body.decode().splitlines():
            if line.startswith("data:") and line[5:].strip():
                out.append(json.loads(line[5:]))
        return out
    return [json.loads(body)] if body.strip() else []


class Conn:
    """One keep-alive HTTP/1.1 connection to the gateway; counts closes it did not ask for."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.drops = 0

    def post(self, body: dict[str, Any], session: str | None) -> tuple[int, dict[str, str], list[dict[str, Any]]]:
        headers = {"content-type": "application/json", "accept": ACCEPT, "mcp-protocol-version": LEGACY}
        if session:
            headers["mcp-session-id"] = session
        data = json.dumps(body).encode()
        try:
            self.c.request("POST", "/mcp", body=data, headers=headers)
            resp = self.c.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError) as e:
            self.drops += 1
            self.c.close()
            raise RuntimeError(f"connection closed by the gateway: {type(e).__name__}: {e}") from e
        msgs = sse_or_json(resp)
        if (resp.getheader("connection") or "").lower() == "close":
            self.drops += 1
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, msgs


def legacy_init(conn: Conn) -> str:
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "reload-check", "version": "0"}}}
    status, headers, _ = conn.post(init, None)
    sid = headers.get("mcp-session-id")
    if status != 200 or not sid:
        raise RuntimeError(f"initialize: HTTP {status}, session {sid!r}")
    conn.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
    return sid


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok = 0
        self.failed: list[str] = []
        self.drops = 0

    def fail(self, why: str) -> None:
        with self.lock:
            self.failed.append(why)


def caller(port: int, idx: int, stop: threading.Event, stats: Stats) -> None:
    """A keep-alive caller: one legacy session, tools/call on the stable servers in a loop."""
    conn = Conn(port)
    try:
        sid = legacy_init(conn)
    except Exception as e:  # noqa: BLE001
        stats.fail(f"caller {idx}: {e}")
        return
    n = 0
    while not stop.is_set():
        name, args = LOAD_CALLS[(n + idx) % len(LOAD_CALLS)]
        n += 1
        req = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": name, "arguments": args}}
        try:
            status, _, msgs = conn.post(req, sid)
        except Exception as e:  # noqa: BLE001
            stats.fail(f"caller {idx} {name}: {e}")
            conn = Conn(port)
            continue
        reply = next((m for m in msgs if m.get("id") == n), None)
        if status != 200 or reply is None or "error" in reply or reply.get("result", {}).get("isError"):
            stats.fail(f"caller {idx} {name}: HTTP {status}: {json.dumps(msgs)[:300]}")
            continue
        with stats.lock:
            stats.ok += 1
    with stats.lock:
        stats.drops += conn.drops


class GetStream(threading.Thread):
    """A legacy session's GET stream read raw: counts list_changed, and sees if the gateway ends it."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.tools_changed = 0
        self.ended: str | None = None
        self.opened = threading.Event()
        self.closing = False

    def run(self) -> None:
        try:
            conn = Conn(self.port)
            sid = legacy_init(conn)
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=None)
            self.sock.sendall(
                f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAccept: text/event-stream\r\n"
                f"Mcp-Session-Id: {sid}\r\nMcp-Protocol-Version: {LEGACY}\r\n\r\n".encode())
            f = self.sock.makefile("rb")
            status = f.readline()
            if b" 200 " not in status:
                self.ended = f"GET stream: {status!r}"
                return
            self.opened.set()
            for line in f:
                if b"notifications/tools/list_changed" in line:
                    self.tools_changed += 1
            if not self.closing:
                self.ended = "the gateway ended the GET stream"
        except Exception as e:  # noqa: BLE001
            if not self.closing:
                self.ended = f"GET stream: {type(e).__name__}: {e}"
        finally:
            self.opened.set()

    def close(self) -> None:
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # noqa: BLE001
            pass


# ----------------------------------------------------------------------------- SDK clients
class SdkWatch:
    """Python SDK clients kept open through the reloads: legacy (message_handler) and modern (listen)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.legacy_changed = 0
        self.sse_changed = 0
        self.modern_changed = 0
        self.modern_calls = 0
        self.sse_calls = 0
        self.errors: list[str] = []
        self.stop = asyncio.Event()
        self.ready = asyncio.Event()
        self.sse_ready = asyncio.Event()
        self.listen_ready = asyncio.Event()
        self.legacy: Client | None = None

    @staticmethod
    def is_tools_changed(message: Any) -> bool:
        method = getattr(message, "method", None) or getattr(getattr(message, "root", None), "method", None)
        return method == "notifications/tools/list_changed"

    async def on_message(self, message: Any) -> None:
        if self.is_tools_changed(message):
            self.legacy_changed += 1

    async def on_sse_message(self, message: Any) -> None:
        if self.is_tools_changed(message):
            self.sse_changed += 1

    async def run_sse(self) -> None:
        """A legacy HTTP+SSE session (GET /sse, POST /messages) on the gateway's SSE front."""
        url = self.url.removesuffix("/mcp") + "/sse"
        try:
            async with Client(sse_client(url), mode="legacy", message_handler=self.on_sse_message) as c:
                await c.list_tools()
                self.sse_ready.set()
                while not self.stop.is_set():  # calls over POST /messages, answers on the stream
                    r = await c.call_tool("ev_stdio__echo", {"message": "sse"})
                    if r.is_error:
                        self.errors.append(f"HTTP+SSE ev_stdio__echo isError: {r.content}")
                    self.sse_calls += 1
                    await asyncio.sleep(0.02)
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"HTTP+SSE SDK client: {type(e).__name__}: {e}")
        finally:
            self.sse_ready.set()

    async def run_legacy(self) -> None:
        try:
            async with Client(self.url, mode="legacy", message_handler=self.on_message) as c:
                self.legacy = c
                self.ready.set()
                await self.stop.wait()
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"legacy SDK client: {type(e).__name__}: {e}")
        finally:
            self.ready.set()

    async def run_modern(self) -> None:
        try:
            async with Client(self.url, mode=MODERN) as c:
                async with c.listen(tools_list_changed=True) as sub:
                    self.listen_ready.set()
                    call = asyncio.create_task(self.modern_load(c))
                    events = asyncio.create_task(self.count(sub))
                    await self.stop.wait()
                    call.cancel()
                    events.cancel()
                    await asyncio.gather(call, events, return_exceptions=True)
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"modern SDK client: {type(e).__name__}: {e}")
        finally:
            self.listen_ready.set()

    async def count(self, sub: Any) -> None:
        try:
            async for _ in sub:
                self.modern_changed += 1
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"subscriptions/listen stream lost: {type(e).__name__}: {e}")

    async def modern_load(self, c: Client) -> None:
        while True:
            try:
                r = await c.call_tool("py__add", {"a": 1, "b": 2})
                if r.is_error:
                    self.errors.append(f"modern py__add isError: {r.content}")
                self.modern_calls += 1
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"modern py__add: {type(e).__name__}: {e}")
            await asyncio.sleep(0.02)

    async def catalog(self) -> dict[str, int]:
        assert self.legacy is not None
        names: list[str] = []
        cursor = None
        while True:
            page = await self.legacy.list_tools(cursor=cursor, cache_mode="bypass")
            names.extend(t.name for t in page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        counts: dict[str, int] = {}
        for n in names:
            p = n.split("__", 1)[0]
            counts[p] = counts.get(p, 0) + 1
        return counts


STREAMS = ("raw GET stream", "SDK legacy (GET stream)", "SDK HTTP+SSE", "SDK subscriptions/listen")


def counters(get: GetStream, sdk: SdkWatch) -> tuple[int, ...]:
    """tools/list_changed received so far on each open stream, in STREAMS order."""
    return (get.tools_changed, sdk.legacy_changed, sdk.sse_changed, sdk.modern_changed)


# ----------------------------------------------------------------------------- writers
def write_inplace(path: Path, text: str) -> None:
    with open(path, "w") as f:  # truncates first: not atomic
        f.write(text)


def write_slow_inplace(path: Path, text: str) -> None:
    """Half the file (cut inside the `[gateway]` header: invalid TOML) sits on disk for over two
    watch intervals before the rest is written: the gateway may read it, must not apply it, and
    must apply the whole file once it is complete."""
    cut = text.index("[gateway]") + 4
    with open(path, "w") as f:
        f.write(text[:cut])
        f.flush()
        time.sleep(1.3)
        f.write(text[cut:])


def write_in_two_parts(path: Path, text: str) -> None:
    """An in-place write in two parts 40 ms apart, the cut right after the first server: the
    first part alone is a valid config that lacks the other servers."""
    first = text.index("[[server]]")
    cut = text.index("[[server]]", first + 1)
    with open(path, "w") as f:
        f.write(text[:cut])
        f.flush()
        time.sleep(0.04)
        f.write(text[cut:])


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_cp(path: Path, text: str) -> None:
    src = path.with_name("next.toml")
    src.write_text(text)
    subprocess.run(["cp", str(src), str(path)], check=True)


WRITERS = {"inplace": write_inplace, "slow-inplace": write_slow_inplace, "atomic": write_atomic, "cp": write_cp}


# ----------------------------------------------------------------------------- the run
class Run:
    def __init__(self, ns: argparse.Namespace, work: Path) -> None:
        self.ns = ns
        self.work = work
        gw, adm = free_ports(2)
        self.port, self.adm = gw, f"http://127.0.0.1:{adm}"
        self.layout = Layout(ns, gw, adm)
        self.path = work / "reload.toml"
        self.report: dict[str, Any] = {"steps": []}
        self.baseline: dict[str, int] = {}

    async def admin(self, path: str) -> Any:
        return await asyncio.to_thread(admin_get, self.adm, path)

    def expected(self, demo_prefix: str | None, py2: bool) -> dict[str, int]:
        base = dict(self.baseline)
        demo_n = base.pop("demo")
        out = {p: base[p] for p in STABLE}
        out[demo_prefix or "demo"] = demo_n
        if py2:
            out["py2"] = base["py"]
        return out

    async def settle(self, what: str, gen_before: int, want: dict[str, int], sdk: SdkWatch) -> dict[str, Any]:
        """Polls until a reload after gen_before applied and tools/list shows `want`."""
        deadline = time.monotonic() + SETTLE_S
        got: Any = None
        while True:
            gen = await asyncio.to_thread(generation, self.adm)
            if gen > gen_before:
                got = await sdk.catalog()
                if got == want:
                    return {"step": what, "generation": gen, "settled_s": round(SETTLE_S - (deadline - time.monotonic()), 2)}
            if time.monotonic() > deadline:
                problem(f"{what}: not applied within {SETTLE_S}s (generation {gen}, was {gen_before}); catalog {got} != {want}")
                return {"step": what, "generation": gen, "settled": False}
            await asyncio.sleep(0.1)

    async def changed_seen(self, what: str, before: tuple[int, ...], get: GetStream, sdk: SdkWatch) -> None:
        """Polls until every open stream got a tools/list_changed after `before`."""
        deadline = time.monotonic() + 5
        while True:
            now = counters(get, sdk)
            missing = [n for n, b, a in zip(STREAMS, before, now) if a <= b]
            if not missing:
                return
            if time.monotonic() > deadline:
                problem(f"{what}: no tools/list_changed on {', '.join(missing)} within 5s")
                return
            await asyncio.sleep(0.05)

    async def step(self, what: str, writer: str, variant: dict[str, Any], get: GetStream, sdk: SdkWatch,
                   changes_tools: bool) -> None:
        gen = await asyncio.to_thread(generation, self.adm)
        before = counters(get, sdk)
        await asyncio.to_thread(WRITERS[writer], self.path, self.layout.render(**variant))
        rec = await self.settle(f"{what} ({writer})", gen, self.expected(variant["demo_prefix"], variant["py2"]), sdk)
        if changes_tools:
            await self.changed_seen(f"{what} ({writer})", before, get, sdk)
        self.report["steps"].append(rec)

    def start_gateway(self) -> subprocess.Popen[bytes]:
        self.path.write_text(self.layout.render(demo_prefix=None, py2=False))
        log = open(self.work / "reload_gateway.log", "wb")
        gw = subprocess.Popen([self.ns.bin, "serve", "--config", str(self.path)], stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")})
        deadline = time.monotonic() + READY_S
        while True:
            try:
                with urllib.request.urlopen(self.adm + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return gw
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if gw.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gateway not ready (exit {gw.poll()}); see reload_gateway.log")
            time.sleep(0.1)

    async def scenario(self, gw: subprocess.Popen[bytes]) -> None:
        url = f"http://127.0.0.1:{self.port}/mcp"
        sdk = SdkWatch(url)
        legacy_task = asyncio.create_task(sdk.run_legacy())
        await sdk.ready.wait()
        if sdk.legacy is None:
            raise RuntimeError("; ".join(sdk.errors) or "the legacy SDK client did not connect")
        modern_task = asyncio.create_task(sdk.run_modern())
        sse_task = asyncio.create_task(sdk.run_sse())
        await asyncio.wait_for(asyncio.gather(sdk.sse_ready.wait(), sdk.listen_ready.wait()), 30)
        self.baseline = await sdk.catalog()
        self.report["baseline"] = self.baseline
        if set(self.baseline) != {*STABLE, "demo"}:
            raise RuntimeError(f"unexpected starting catalog {self.baseline}")
        get = GetStream(self.port)
        get.start()
        await asyncio.to_thread(get.opened.wait, 10)
        pids0 = await asyncio.to_thread(stdio_pids, self.adm)
        up0 = await asyncio.to_thread(up_since, self.adm)
        stats, stop = Stats(), threading.Event()
        callers = [threading.Thread(target=caller, args=(self.port, i, stop, stats), daemon=True) for i in range(self.ns.callers)]
        for t in callers:
            t.start()
        try:
            await self.rewrites(get, sdk)
            await self.sighup_and_broken(gw, get, sdk)
        finally:
            stop.set()
            for t in callers:
                await asyncio.to_thread(t.join, 30)
        pids1 = await asyncio.to_thread(stdio_pids, self.adm)
        up1 = await asyncio.to_thread(up_since, self.adm)
        self.report["up_since"] = {"start": up0, "end": up1}
        for name in ("ev_stdio", "py"):  # never changed: the same instance all along
            if not up0.get(name) or up0.get(name) != up1.get(name):
                problem(f"{name} was never changed but its instance was replaced (upSince {up0.get(name)} -> {up1.get(name)})")
        sdk.stop.set()
        await asyncio.gather(legacy_task, modern_task, sse_task, return_exceptions=True)
        get.close()
        self.judge(stats, get, sdk, pids0, pids1)

    async def rewrites(self, get: GetStream, sdk: SdkWatch) -> None:
        v = lambda p, y, **kw: {"demo_prefix": p, "py2": y, **kw}  # noqa: E731
        await self.step("add py2", "inplace", v(None, True), get, sdk, True)
        await self.step("demo prefix -> dm", "atomic", v("dm", True), get, sdk, True)
        await self.step("remove py2", "cp", v("dm", False), get, sdk, True)
        await self.step("comment only", "inplace", v("dm", False, comment="nothing else"), get, sdk, False)
        # ev_http takes load all along: replaced by a new instance (new downstream session), the
        # old one drained, without a failed call.
        await self.step("ev_http headers (restarted)", "atomic", v("dm", False, ev_header="1"), get, sdk, False)
        await self.step("ev_http headers again", "cp", v("dm", False, ev_header="2"), get, sdk, False)
        await self.step("prefix back, servers reordered", "atomic", v(None, False, order_swap=True), get, sdk, True)
        await self.step("add py2 again", "cp", v(None, True), get, sdk, True)
        errors_before = (await self.admin("/v1/servers")).get("lastReloadError")
        await self.step("half-written file, then whole", "slow-inplace", v("dm", False), get, sdk, True)
        after = (await self.admin("/v1/servers")).get("lastReloadError")
        self.report["half_written_error"] = after if after != errors_before else None
        # A burst: three writes within ~100 ms, each another way; only the last may count.
        gen = await asyncio.to_thread(generation, self.adm)
        for writer, var in (("inplace", v(None, True)), ("atomic", v("dm", True)), ("cp", v(None, False))):
            await asyncio.to_thread(WRITERS[writer], self.path, self.layout.render(**var))
            await asyncio.sleep(0.03)
        rec = await self.settle("burst of 3 writes", gen, self.expected(None, False), sdk)
        rec["reloads"] = rec.get("generation", gen) - gen
        self.report["steps"].append(rec)
        await self.storm(sdk)

    async def storm(self, sdk: SdkWatch) -> None:
        """Writes in place every 0.5-0.9 s, each in two parts 40 ms apart, cut after the first
        server (a valid config without the others): reloads run while the file is rewritten, and
        a read that caught it half-written must apply nothing and report nothing."""
        error0 = (await self.admin("/v1/servers")).get("lastReloadError")
        gen = await asyncio.to_thread(generation, self.adm)
        variants = [(None, True), ("dm", False), ("dm", True), (None, False)]
        for i in range(STORM_WRITES):
            text = self.layout.render(demo_prefix=variants[i % 4][0], py2=variants[i % 4][1])
            await asyncio.to_thread(write_in_two_parts, self.path, text)
            await asyncio.sleep(0.5 + 0.4 * ((i * 7) % 5) / 4)
        prefix, py2 = variants[(STORM_WRITES - 1) % 4]
        rec = await self.settle(f"storm of {STORM_WRITES} in-place writes", gen, self.expected(prefix, py2), sdk)
        rec["reloads"] = rec.get("generation", gen) - gen
        self.report["steps"].append(rec)
        error1 = (await self.admin("/v1/servers")).get("lastReloadError")
        if error1 != error0:
            problem(f"the storm of in-place writes left a reload error: {error1}")

    async def sighup_and_broken(self, gw: subprocess.Popen[bytes], get: GetStream, sdk: SdkWatch) -> None:
        # SIGHUP after a write: the file is read at once (the watcher may also see it; either applies it).
        gen = await asyncio.to_thread(generation, self.adm)
        before = counters(get, sdk)
        await asyncio.to_thread(write_atomic, self.path, self.layout.render(demo_prefix="dm", py2=True))
        gw.send_signal(signal.SIGHUP)
        rec = await self.settle("SIGHUP after an atomic write", gen, self.expected("dm", True), sdk)
        await self.changed_seen("SIGHUP", before, get, sdk)
        self.report["steps"].append(rec)
        # SIGHUP with the file unchanged: applies (a new generation) and restarts nothing.
        gen, pids, catalog = rec.get("generation", gen), await asyncio.to_thread(stdio_pids, self.adm), await sdk.catalog()
        gw.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + SETTLE_S
        while await asyncio.to_thread(generation, self.adm) <= gen:
            if time.monotonic() > deadline:
                problem("SIGHUP with the file unchanged: no reload recorded")
                break
            await asyncio.sleep(0.05)
        if await asyncio.to_thread(stdio_pids, self.adm) != pids or await sdk.catalog() != catalog:
            problem("SIGHUP with the file unchanged restarted a server or changed the catalog")
        servers = await self.admin("/v1/servers")
        last = servers.get("lastReload") or {}
        if last.get("trigger") not in ("signal", "file") or last.get("ok") is not True:
            problem(f"after SIGHUP, lastReload is {last}")
        # A broken config posted: 422 with every error, nothing else changes.
        catalog0 = await sdk.catalog()
        gen0 = servers.get("configGeneration")
        pids0 = await asyncio.to_thread(stdio_pids, self.adm)
        status, body = await asyncio.to_thread(admin_post, self.adm, "/v1/reload", BROKEN.encode())
        self.report["broken"] = {"status": status, "body": body}
        paths = {e.get("path") for e in (body or {}).get("errors", [])}
        if status != 422 or body.get("ok") is not False:
            problem(f"broken config: expected 422 ok:false, got {status} {body}")
        for want in ("gateway.workers", "server[0].url", "server[1].name"):
            if want not in paths:
                problem(f"broken config: error for {want} not reported (got {sorted(p for p in paths if p)})")
        servers = await self.admin("/v1/servers")
        if servers.get("configGeneration") != gen0:
            problem(f"broken config changed configGeneration {gen0} -> {servers.get('configGeneration')}")
        if not servers.get("lastReloadError"):
            problem("broken config: /v1/servers shows no lastReloadError")
        if (await sdk.catalog()) != catalog0:
            problem("broken config changed the catalog")
        if (await asyncio.to_thread(stdio_pids, self.adm)) != pids0:
            problem("broken config changed a stdio child")
        # Errors reported over the whole run: the posted broken config, and at most one for the
        # half-written file that sat on disk for over a second. Nothing else (no error spam from
        # files caught while being written).
        errors = await asyncio.to_thread(reload_errors, self.adm)
        self.report["reload_errors"] = errors
        if not 1 <= errors <= 2:
            problem(f"ringgate_reload_total{{result=\"error\"}} is {errors}, expected 1 or 2")

    def judge(self, stats: Stats, get: GetStream, sdk: SdkWatch, pids0: dict[str, Any], pids1: dict[str, Any]) -> None:
        self.report.update(
            calls_ok={"keep-alive callers": stats.ok, "SDK 2026-07-28": sdk.modern_calls, "SDK HTTP+SSE": sdk.sse_calls},
            calls_failed=len(stats.failed),
            connections_dropped=stats.drops,
            list_changed=dict(zip(STREAMS, counters(get, sdk))),
            stdio_pids={"start": pids0, "end": pids1},
        )
        if stats.failed:
            problem(f"{len(stats.failed)} failed request(s), e.g. {stats.failed[:3]}")
        if stats.drops:
            problem(f"{stats.drops} connection(s) closed by the gateway")
        if sdk.modern_calls < 10 or sdk.sse_calls < 10:
            problem(f"SDK clients barely called: 2026-07-28 {sdk.modern_calls}, HTTP+SSE {sdk.sse_calls}")
        if stats.ok < 100:
            problem(f"only {stats.ok} calls completed under load")
        if get.ended:
            problem(get.ended)
        for e in sdk.errors:
            problem(e)
        if not pids0.get("ev_stdio") or pids0.get("ev_stdio") != pids1.get("ev_stdio"):
            problem(f"the unchanged stdio server ev_stdio changed pid: {pids0.get('ev_stdio')} -> {pids1.get('ev_stdio')}")


def start_peers(ns: argparse.Namespace, work: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    """Starts server-everything (streamableHttp) and py_server.py unless their URLs were given."""
    want: list[tuple[str, list[str], dict[str, str]]] = []
    if not ns.ev_url:
        port = free_ports(1)[0]
        ns.ev_url = f"http://127.0.0.1:{port}/mcp"
        want.append(("everything", ["node", "--require", ns.cjs, ns.ev, "streamableHttp"], {"PORT": str(port)}))
    if not ns.py_url:
        port = free_ports(1)[0]
        ns.py_url = f"http://127.0.0.1:{port}/mcp"
        want.append(("pysdk", [sys.executable, str(HERE / "py_server.py"), "http", "--port", str(port)], {}))
    for name, cmd, env in want:
        log = open(work / f"reload_{name}.log", "wb")
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}))
    deadline = time.monotonic() + READY_S
    for url in (ns.ev_url, ns.py_url):
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except urllib.error.HTTPError:
                break  # something answers
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"peer at {url} not listening (see reload_*.log)")
                time.sleep(0.1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True, help="the ringgate binary")
    p.add_argument("--ev", required=True, help="mcp-server-everything (its bin script)")
    p.add_argument("--cjs", default=str(HERE / "loopback-only.cjs"))
    p.add_argument("--ev-url", help="a running server-everything streamableHttp (else started here)")
    p.add_argument("--py-url", help="a running py_server.py http (else started here)")
    p.add_argument("--callers", type=int, default=4, help="concurrent keep-alive callers (default 4)")
    p.add_argument("--work", help="where the config, logs and report go (default: a temp dir)")
    ns = p.parse_args()
    ns.bin, ns.cjs = str(Path(ns.bin).resolve()), str(Path(ns.cjs).resolve())
    work = Path(ns.work or tempfile.mkdtemp(prefix="ringgate-reload."))
    work.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    run: Run | None = None
    started = time.monotonic()
    try:
        start_peers(ns, work, procs)
        run = Run(ns, work)
        gw = run.start_gateway()
        procs.append(gw)
        asyncio.run(asyncio.wait_for(run.scenario(gw), timeout=120))
    except BaseException as e:  # noqa: BLE001 - report everything
        if isinstance(e, KeyboardInterrupt):
            raise
        problem(f"fatal: {type(e).__name__}: {e}")
    finally:
        for proc in reversed(procs):  # only what this script started, by pid
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    report = run.report if run else {}
    report["seconds"] = round(time.monotonic() - started, 1)
    report["problems"] = problems
    print(json.dumps(report, default=str))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
