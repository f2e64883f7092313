#!/usr/bin/env python3
"""Assertions for tests/interop/run.sh over the JSON reports mcp_client.py writes
(and other outputs saved in the suite's work dir).

    python judge.py WORKDIR CHECK [ARGS...]

Exit 0 when the check holds; otherwise prints one line saying what was expected
and what was seen, and exits 1. Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, NoReturn

WORK = ""
PROBLEMS: list[str] = []


def die(msg: str) -> NoReturn:
    print("; ".join(PROBLEMS + [msg]))
    sys.exit(1)


def problem(msg: str) -> None:
    """Records a failed expectation and carries on, so one run reports all of them."""
    PROBLEMS.append(msg)


def load(name: str) -> Any:
    path = os.path.join(WORK, name + ".json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        die(f"cannot read {name}.json: {e}")


def text(name: str) -> str:
    with open(os.path.join(WORK, name)) as f:
        return f.read()


def no_fatal(r: dict[str, Any], what: str) -> None:
    if r.get("fatal"):
        die(f"{what}: {r['fatal']}")


def prefixed(prefix: str, names: list[str]) -> set[str]:
    return {f"{prefix}__{n}" for n in names}


def call_of(r: dict[str, Any], name: str) -> dict[str, Any]:
    for c in r.get("calls", []):
        if c["name"] == name:
            return c
    die(f"no report for the call of {name}")


def ok_call(r: dict[str, Any], name: str, expect_text: str) -> dict[str, Any] | None:
    """The call returned a non-error result with text containing expect_text."""
    c = call_of(r, name)
    if "error" in c:
        e = c["error"]
        problem(f"tools/call {name}: expected a result, got JSON-RPC error {e['code']}: {e['message']}")
    elif c.get("is_error"):
        problem(f"tools/call {name}: expected a result, got isError with {c['texts']}")
    elif not any(expect_text in t for t in c["texts"]):
        problem(f"tools/call {name}: expected text containing {expect_text!r}, got {c['texts']}")
    else:
        return c
    return None


def error_naming_server(r: dict[str, Any], tool: str, server: str, when: str) -> None:
    """The call failed with a JSON-RPC error that names the server by itself (not only
    inside the echoed tool name)."""
    c = call_of(r, tool)
    if "error" not in c:
        problem(f"tools/call {tool} {when}: expected a JSON-RPC error, got a result {c}")
        return
    e = c["error"]
    said = f"{e['code']}: {e['message']} (data: {json.dumps(e.get('data'))})"
    if server not in (e["message"] + " " + json.dumps(e.get("data"))).replace(tool, ""):
        problem(f"tools/call {tool} {when}: expected a JSON-RPC error naming server {server!r}, got {said}")


def require_peer_tools(r: dict[str, Any], what: str, peers: list[tuple[str, str]]) -> None:
    listed = set(r.get("tools") or [])
    for prefix, ref in peers:
        want = prefixed(prefix, load(ref)["tools"])
        missing = sorted(want - listed)
        if missing:
            problem(
                f"{what}: tools/list lacks {len(missing)} of the {len(want)} {prefix} tools, "
                f"e.g. {missing[:5]}; listed {len(listed)}: {sorted(listed)[:12]}"
            )


# ---------------------------------------------------------------- checks


def direct(*refs: str) -> None:
    for ref in refs:
        r = load(ref)
        no_fatal(r, ref)
        if not r.get("tools"):
            die(f"{ref}: the peer listed no tools")


def legacy(ev: str, py: str, demo: str) -> None:
    r = load("legacy")
    no_fatal(r, "legacy-mode client through the gateway")
    names = r["tools"]
    require_peer_tools(r, "legacy mode", [(ev, "direct_everything"), (py, "direct_pysdk")])
    bare = [n for n in names if "__" not in n]
    if bare:
        problem(f"tools listed without a server prefix: {bare[:5]}")
    ok_call(r, f"{ev}__get-sum", "42")
    c = ok_call(r, f"{py}__add", "42")
    if c and c.get("structured") not in (None, {"result": 42}):
        problem(f"{py}__add: structuredContent {c['structured']}, expected {{'result': 42}}")
    ok_call(r, f"{demo}__add", "42")


def paged(ev: str, py: str, page_size: str) -> None:
    size = int(page_size)
    r = load("paged")
    no_fatal(r, f"listing through the page_size={size} gateway")
    names, pages = r["tools"], r["pages"]
    want = prefixed(ev, load("direct_everything")["tools"]) | prefixed(py, load("direct_pysdk")["tools"])
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        die(f"tools repeated across pages: {dups[:5]} (page sizes {pages})")
    got = set(names)
    if len(names) != len(want) or got != want:
        die(
            f"{len(names)} tools over page sizes {pages}, expected {len(want)} (the direct counts summed); "
            f"missing {sorted(want - got)[:5]}, unexpected {sorted(got - want)[:5]}"
        )
    if any(p > size for p in pages):
        die(f"a page holds more than page_size={size} tools: page sizes {pages}")
    if len(pages) < -(-len(want) // size):
        die(f"only {len(pages)} pages for {len(want)} tools at page_size={size}: {pages}")


def auto(ev: str, py: str) -> None:
    r = load("auto")
    no_fatal(r, "auto-mode client through the gateway")
    what = f"auto mode (negotiated via {r.get('negotiated')}, protocol {r.get('protocol_version')})"
    require_peer_tools(r, what, [(ev, "direct_everything"), (py, "direct_pysdk")])
    ok_call(r, f"{ev}__get-sum", "42")
    ok_call(r, f"{py}__add", "42")
    print(f"{what}: ok", file=sys.stderr)


def dead(report: str, when: str, ev: str, py: str, demo: str) -> None:
    r = load(report)
    no_fatal(r, f"client {when}")
    error_naming_server(r, f"{py}__add", py, when)
    ok_call(r, f"{ev}__get-sum", "42")
    ok_call(r, f"{demo}__add", "42")


def servers_down(py: str, ev: str) -> None:
    doc = load("v1_servers")
    by = {s.get("name"): s for s in doc.get("servers", [])}
    if py not in by:
        die(f"GET /v1/servers lists no server {py!r}: {sorted(by)}")
    s = by[py]
    if s.get("up") is not False:
        die(f"GET /v1/servers: {py} has up={s.get('up')!r}, expected false")
    msg = (s.get("lastError") or {}).get("message")
    if not msg:
        die(f"GET /v1/servers: {py} is down but has no lastError.message: {s}")
    if by.get(ev, {}).get("up") is not True:
        die(f"GET /v1/servers: {ev} should still be up: {by.get(ev)}")


def ghost(gh: str) -> None:
    doc = load("v1_servers_ghost")
    by = {s.get("name"): s for s in doc.get("servers", [])}
    s = by.get(gh)
    if s is None:
        die(f"GET /v1/servers lists no server {gh!r}: {sorted(by)}")
    if s.get("up") is not False:
        problem(f"GET /v1/servers: {gh} (nothing listens there) has up={s.get('up')!r}, expected false")
    if not (s.get("lastError") or {}).get("message"):
        problem(f"GET /v1/servers: {gh} is unreachable but has no lastError.message: {s}")
    listed = [n for n in load("legacy").get("tools") or [] if n.startswith(f"{gh}__")]
    if listed:
        problem(f"tools/list shows tools of the unreachable server {gh}: {listed[:5]}")


def metrics(ev: str) -> None:
    t = text("metrics.txt")
    lbl = re.escape(f'server="{ev}"')
    m = re.findall(r"^ringgate_downstream_calls_total\{" + lbl + r"\}\s+(\S+)\s*$", t, re.M)
    if not m:
        found = [ln for ln in t.splitlines() if ln.startswith("ringgate_downstream_calls_total")]
        problem(f'no ringgate_downstream_calls_total{{server="{ev}"}} sample; found {found[:6]}')
    elif len(m) > 1 or float(m[0]) < 1:
        problem(f'ringgate_downstream_calls_total{{server="{ev}"}} is {m}, expected one sample >= 1 after several calls')
    if not re.search(r"^ringgate_server_call_seconds\w*\{[^}]*" + lbl, t, re.M):
        found = [ln for ln in t.splitlines() if ln.startswith("ringgate_server_call_seconds")]
        problem(f'no ringgate_server_call_seconds line for server="{ev}"; found {found[:6]}')


def metrics_unique() -> None:
    """Every series (metric name + label set) is exposed once, as Prometheus requires."""
    seen: dict[str, int] = {}
    for ln in text("metrics.txt").splitlines():
        if not ln or ln.startswith("#"):
            continue
        series = ln.rsplit(None, 1)[0]
        seen[series] = seen.get(series, 0) + 1
    dups = [f"{k} x{n}" for k, n in seen.items() if n > 1]
    if dups:
        problem(f"/metrics exposes {len(dups)} series more than once, e.g. {dups[:4]}")


# ---------------------------------------------------------------- the 3x3 transport matrix


def require_catalog(r: dict[str, Any], what: str, specs: list[str]) -> None:
    """specs: PREFIX=REF, the reference being the peer listed directly (same client, same
    mode): every tool it offers must be listed under PREFIX__; nothing may be listed bare."""
    listed = set(r.get("tools") or [])
    for spec in specs:
        prefix, ref = spec.split("=", 1)
        ref_report = load(ref)
        if ref_report.get("fatal") or not ref_report.get("tools"):
            problem(f"reference listing {ref} (the peer behind {prefix}, listed directly) failed: "
                    f"{ref_report.get('fatal') or 'no tools'}")
            continue
        want = prefixed(prefix, ref_report["tools"])
        missing = sorted(want - listed)
        if missing:
            problem(
                f"{what}: tools/list lacks {len(missing)} of the {len(want)} {prefix}__ tools, "
                f"e.g. {missing[:4]}; listed {len(listed)}: {sorted(listed)[:8]}"
            )
    bare = sorted(n for n in listed if "__" not in n)
    if bare:
        problem(f"{what}: tools listed without a server prefix: {bare[:5]}")


def exact_echo(r: dict[str, Any], what: str, ds: str, args: dict[str, Any]) -> None:
    """server-everything's echo answers exactly `Echo: <message>`."""
    msg = args["message"]
    args_json = json.dumps(args, ensure_ascii=False)
    c = call_of(r, f"{ds}__echo")
    if "error" in c:
        e = c["error"]
        problem(f"{what}: tools/call {ds}__echo {args_json}: expected text {'Echo: ' + msg!r}, "
                f"got JSON-RPC error {e['code']}: {e['message']}")
    elif c.get("is_error"):
        problem(f"{what}: tools/call {ds}__echo: expected a result, got isError with {c['texts']}")
    elif c.get("texts") != [f"Echo: {msg}"]:
        problem(f"{what}: tools/call {ds}__echo {args_json}: expected texts {['Echo: ' + msg]!r}, got {c.get('texts')!r}")


def routed_to(r: dict[str, Any], what: str, ds: str, role: str) -> None:
    """`<ds>__get-env` reached the server-everything process started for that transport: each
    one runs with INTEROP_ROLE=<its mode> (the stdio one through the config's `env`). Only the
    role is reported, never the rest of the environment."""
    c = call_of(r, f"{ds}__get-env")
    if "error" in c or c.get("is_error") or not c.get("texts"):
        problem(f"{what}: tools/call {ds}__get-env: expected the peer's environment, got "
                f"{c.get('error') or c.get('texts')}")
        return
    try:
        seen = json.loads(c["texts"][0]).get("INTEROP_ROLE")
    except (ValueError, AttributeError):
        problem(f"{what}: {ds}__get-env did not return a JSON object: {c['texts'][0][:120]!r}")
        return
    if seen != role:
        problem(f"{what}: {ds}__get-env ran in the server-everything started as {seen!r}, expected "
                f"the {role!r} one (INTEROP_ROLE): the prefix routes to the wrong downstream")


def matrix(report: str, what: str, calls: str, *specs: str) -> None:
    """calls: DS:ROLE[,DS:ROLE...]: for each, the report holds DS__echo (its arguments in
    <report>.args.json, {DS: {"message": ...}}, written by run.sh) and DS__get-env."""
    r = load(report)
    no_fatal(r, what)
    require_catalog(r, what, list(specs))
    args = load(report + ".args")
    for item in calls.split(","):
        ds, role = item.split(":", 1)
        exact_echo(r, what, ds, args[ds])
        routed_to(r, what, ds, role)


def time_stdio(report: str, prefix: str, ref: str) -> None:
    """mcp-server-time (Python, stdio downstream) through the gateway: its catalog, and
    get_current_time for UTC is a well-formed time within a few minutes of now."""
    from datetime import datetime, timezone

    r = load(report)
    no_fatal(r, "client of the matrix gateway")
    require_catalog(r, "matrix gateway", [f"{prefix}={ref}"])
    name = f"{prefix}__get_current_time"
    c = ok_call(r, name, "UTC")
    if not c:
        return
    doc = c.get("structured")
    if not isinstance(doc, dict):
        try:
            doc = json.loads(c["texts"][0])
        except (ValueError, IndexError):
            die(f"tools/call {name}: neither structuredContent nor JSON text: {c}")
    if doc.get("timezone") != "UTC":
        problem(f"tools/call {name} {{'timezone':'UTC'}}: timezone {doc.get('timezone')!r}, expected 'UTC'")
    try:
        at = datetime.fromisoformat(str(doc.get("datetime")))
    except ValueError:
        die(f"tools/call {name}: datetime {doc.get('datetime')!r} is not ISO 8601")
    if at.utcoffset() is None or at.utcoffset().total_seconds() != 0:
        problem(f"tools/call {name}: datetime {doc.get('datetime')!r} is not at UTC offset +00:00")
    else:
        skew = abs((at - datetime.now(timezone.utc)).total_seconds())
        if skew > 300:
            problem(f"tools/call {name}: datetime {doc.get('datetime')!r} is {skew:.0f}s away from now")


def fallback(name: str, url: str, plain: str, report: str, ref: str) -> None:
    """A transport="http" server at an HTTP+SSE-only URL: detected, shown in /v1/servers,
    its tools listed and callable; a real Streamable HTTP server is not marked as fallback."""
    doc = load("v1_servers_matrix")
    by = {s.get("name"): s for s in doc.get("servers", [])}
    s = by.get(name)
    if s is None:
        die(f"GET /v1/servers lists no server {name!r}: {sorted(by)}")
    brief = {k: s.get(k) for k in ("up", "transport", "url", "tools", "lastError")}
    if s.get("transport") != "http+sse (fallback)":
        problem(f"GET /v1/servers: {name} (transport = \"http\", url {url}) shows transport "
                f"{s.get('transport')!r}, expected 'http+sse (fallback)': {brief}")
    if s.get("up") is not True:
        problem(f"GET /v1/servers: {name} has up={s.get('up')!r}, expected true: {brief}")
    p = by.get(plain, {})
    if p.get("transport") != "streamable-http":
        problem(f"GET /v1/servers: {plain} (a Streamable HTTP server) shows transport "
                f"{p.get('transport')!r}, expected 'streamable-http'")
    matrix(report, f"through the fallback server {name}", f"{name}:sse", f"{name}={ref}")


def servers_clean(report: str, *names: str) -> None:
    """Healthy peers, nothing killed: every matrix server is up and never recorded an error."""
    doc = load(report)
    by = {s.get("name"): s for s in doc.get("servers", [])}
    for name in names:
        s = by.get(name)
        if s is None:
            problem(f"GET /v1/servers lists no server {name!r}")
            continue
        if s.get("up") is not True:
            problem(f"{name} ({s.get('transport')}): up={s.get('up')!r}, expected true")
        if s.get("lastError") is not None:
            problem(f"{name} ({s.get('transport')}): lastError {s['lastError'].get('message')!r}, expected null "
                    f"(a healthy peer, never restarted)")


def bridge(report: str, protocol: str, *expected: str) -> None:
    """The era bridge: the client (bridge_client.py) ran in `protocol` mode, every call
    completed with text containing what its answer put there (spec NAME=TEXT), and the
    client's callbacks saw each request kind the server asked."""
    r = load(report)
    no_fatal(r, report)
    if r.get("protocol_version") != protocol:
        problem(f"{report}: the client negotiated {r.get('protocol_version')!r}, expected {protocol!r}")
    kinds = []
    for spec in expected:
        name, _, rest = spec.partition("=")
        want, _, kind = rest.partition("@")
        ok_call(r, name, want)
        kinds.append(kind)
    seen = r.get("seen", [])
    for kind in kinds:
        if not any(s.startswith(kind) for s in seen):
            problem(f"{report}: the client was never asked {kind} (its callbacks saw {seen})")


CHECKS = {
    "bridge": bridge,
    "direct": direct,
    "legacy": legacy,
    "paged": paged,
    "auto": auto,
    "dead": dead,
    "servers_down": servers_down,
    "ghost": ghost,
    "metrics": metrics,
    "metrics_unique": metrics_unique,
    "matrix": matrix,
    "time_stdio": time_stdio,
    "fallback": fallback,
    "servers_clean": servers_clean,
}


def main() -> None:
    global WORK
    if len(sys.argv) < 3 or sys.argv[2] not in CHECKS:
        die(f"usage: judge.py WORKDIR {{{'|'.join(CHECKS)}}} [ARGS...]")
    WORK = sys.argv[1]
    CHECKS[sys.argv[2]](*sys.argv[3:])
    if PROBLEMS:
        print("; ".join(PROBLEMS))
        sys.exit(1)


if __name__ == "__main__":
    main()
