#!/usr/bin/env bash
# ringgate interop suite: the release binary against real MCP peers.
#
#   bash tests/interop/run.sh
#
# Starts, all on 127.0.0.1 with free ports:
#   - @modelcontextprotocol/server-everything (streamableHttp; TypeScript SDK, legacy era)
#   - py_server.py on the official Python SDK v2 (streamable-http; both eras)
#   - `ringgate demo-server` (the project's own downstream)
#   - gateway "main"  fronting all three, plus "ghost", an optional server that
#                     never answers (default page size)
#   - gateway "paged" fronting the two real peers (page_size = 3)
#   - for the 3x3 transport matrix: server-everything a second time in `sse` mode, and
#     gateway "matrix" fronting server-everything over all three transports (ev_stdio: a
#     child it spawns; ev_http: the streamableHttp one; ev_sse: the sse one), mcp-server-time
#     over stdio (time), and ev_fb, a transport = "http" server at the sse URL (fallback).
#     Its stdio front (`ringgate stdio`, same servers, own admin port) is launched by the
#     Python SDK client itself.
# then checks the gateway with the official Python SDK client and curl, printing
# `PASS name` / `FAIL name: why` per check and `N passed, M failed` at the end.
# Exit status is non-zero if anything failed.
#
# Environment:
#   PEERS=dir              where setup.sh installs the peers (default: <repo>/.peers)
#   RINGGATE_BIN=path      gateway binary (default: <repo>/target/release/ringgate,
#                          built with `cargo build --release` when missing)
#   INTEROP_BUILD=1        run `cargo build --release` even if the binary exists
#   INTEROP_READY_TIMEOUT  seconds to wait for peers and gateways (default 30)
#   KEEP_LOGS=1            keep the temp dir with all logs even when everything passed
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
export PEERS="${PEERS:-$REPO/.peers}"
BIN="${RINGGATE_BIN:-$REPO/target/release/ringgate}"
READY_TIMEOUT="${INTEROP_READY_TIMEOUT:-30}"
SUITE_START=$SECONDS

say() { echo "== $*"; }

# ---------------------------------------------------------------- processes & cleanup
WORK=""
declare -a PIDS=()
declare -A PID=()
PASSED=0
FAILED=0
FINISHED=0

print_logs() {
  [ -n "$WORK" ] && [ -d "$WORK" ] || return 0
  local f
  for f in "$WORK"/*.log "$WORK"/*.err; do
    [ -s "$f" ] || continue
    echo "----- ${f##*/} (last 80 lines) -----"
    tail -n 80 "$f"
  done
  echo "----- all logs and outputs kept in $WORK -----"
}

cleanup() {
  local rc=$?
  set +e
  local pid deadline
  # Only what this script started, by pid: TERM, a short grace, then KILL.
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
  done
  deadline=$((SECONDS + 5))
  for pid in "${PIDS[@]}"; do
    # bash reaps its exited children itself, so kill -0 fails once $pid is gone
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [ "$FINISHED" != 1 ]; then
    echo "interop: aborted before the checks finished (exit $rc)"
    print_logs
  elif [ "$FAILED" -gt 0 ]; then
    print_logs
  elif [ "${KEEP_LOGS:-0}" = 1 ]; then
    echo "logs kept in $WORK"
  elif [ -n "$WORK" ]; then
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD... : runs CMD in the background, output to $WORK/NAME.log
start() {
  local name=$1
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PID[$name]=$!
  PIDS+=("$!")
}

# http_code URL [curl args...] : prints the status code, 000 if nothing answered
http_code() {
  local url=$1
  shift
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url" 2>/dev/null || true
}

# wait_listening NAME URL : polls until something answers HTTP at URL (any status)
wait_listening() {
  local name=$1 url=$2 deadline=$((SECONDS + READY_TIMEOUT))
  while :; do
    [ "$(http_code "$url")" != 000 ] && return 0
    if ! kill -0 "${PID[$name]}" 2>/dev/null; then
      echo "interop: $name exited before listening (see $name.log)"
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "interop: $name not listening at $url after ${READY_TIMEOUT}s"
      return 1
    fi
    sleep 0.1
  done
}

# ---------------------------------------------------------------- checks
REASON=""
pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() {
  local why=$2
  printf 'FAIL %s: %s\n' "$1" "$why" >>"$WORK/checks.err"
  [ ${#why} -le 900 ] || why="${why:0:900}... (full text in checks.err)"
  echo "FAIL $1: $why"
  FAILED=$((FAILED + 1))
}
# check NAME FUNCTION [ARGS...] : the function returns 0, or sets REASON and returns non-zero.
check() {
  local name=$1 fn=$2
  shift 2
  REASON=""
  echo "### $name" >>"$WORK/checks.err"
  if "$fn" "$@" 2>>"$WORK/checks.err"; then
    pass "$name"
  else
    fail "$name" "${REASON:-no reason recorded}"
  fi
}

# client OUT ARGS... : the Python SDK client (mcp_client.py), JSON report into $WORK/OUT.json
client() {
  local out=$1
  shift
  timeout 90 "$PY" "$HERE/mcp_client.py" "$@" >"$WORK/$out.json" 2>"$WORK/$out.err" || true
  [ -s "$WORK/$out.json" ] || echo '{"fatal": "client produced no report (timeout or crash; see '"$out"'.err)", "calls": []}' >"$WORK/$out.json"
}

# judge CHECK [ARGS...] : assertions in judge.py over outputs in $WORK; on failure the
# reason it prints goes to REASON.
judge() {
  REASON="$("$PY" "$HERE/judge.py" "$WORK" "$@" 2>>"$WORK/checks.err")" && return 0
  [ -n "$REASON" ] || REASON="judge.py $1 failed without a message (see checks.err)"
  return 1
}

# ---------------------------------------------------------------- build & peers
if [ ! -x "$BIN" ] || [ "${INTEROP_BUILD:-0}" = 1 ]; then
  say "building the release binary"
  (cd "$REPO" && cargo build --release)
fi
[ -x "$BIN" ] || { echo "interop: no gateway binary at $BIN"; exit 1; }
if [ -z "${RINGGATE_BIN:-}" ] && [ -n "$(find "$REPO/src" "$REPO/Cargo.toml" -newer "$BIN" -print -quit 2>/dev/null)" ]; then
  say "warning: $BIN is older than the sources (INTEROP_BUILD=1 rebuilds it)"
fi

say "installing peers into $PEERS"
bash "$HERE/setup.sh"
PY="$PEERS/.venv/bin/python"
EV="$PEERS/npm/node_modules/.bin/mcp-server-everything"
[ -x "$PY" ] && [ -e "$EV" ] || { echo "interop: peers missing after setup"; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ringgate-interop.XXXXXX")"
say "work dir $WORK"

# Free loopback ports, all picked at once so they are distinct.
read -r P_EV P_PY P_DEMO P_GW P_ADM P_GW3 P_ADM3 P_GHOST P_EVS P_GWX P_ADMX P_STDX P_ADMS < <("$PY" -c '
import socket
socks = [socket.socket() for _ in range(13)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks:
    s.close()
')

EV_URL="http://127.0.0.1:$P_EV/mcp"
PY_URL="http://127.0.0.1:$P_PY/mcp"
DEMO_URL="http://127.0.0.1:$P_DEMO/mcp"
GW_URL="http://127.0.0.1:$P_GW/mcp"
ADMIN="http://127.0.0.1:$P_ADM"
GW3_URL="http://127.0.0.1:$P_GW3/mcp"
ADMIN3="http://127.0.0.1:$P_ADM3"
# Nothing ever listens here: an optional downstream that is down from the start.
GHOST_URL="http://127.0.0.1:$P_GHOST/mcp"
# The transport matrix: server-everything in sse mode, the "matrix" gateway (MCP at /mcp and
# legacy HTTP+SSE at /sse), and the admin port of the `ringgate stdio` it is also run as
# (P_STDX: its `listen`, required by the config but not bound over stdio).
EVS_URL="http://127.0.0.1:$P_EVS/sse"
GWX_URL="http://127.0.0.1:$P_GWX/mcp"
GWX_SSE_URL="http://127.0.0.1:$P_GWX/sse"
ADMINX="http://127.0.0.1:$P_ADMX"
ADMINS="http://127.0.0.1:$P_ADMS"

# Server names in the gateway: their tools are listed as <name>__<tool>.
S_EV=everything
S_PY=pysdk
S_DEMO=demo
S_GHOST=ghost

# ---------------------------------------------------------------- downstreams
say "starting peers"
# INTEROP_ROLE marks each server-everything process, so the matrix can see (via its get-env
# tool) that a prefix reached the process behind the right transport.
start everything env PORT="$P_EV" INTEROP_ROLE=streamableHttp node --require "$HERE/loopback-only.cjs" "$EV" streamableHttp
start everything_sse env PORT="$P_EVS" INTEROP_ROLE=sse node --require "$HERE/loopback-only.cjs" "$EV" sse
start pysdk "$PY" "$HERE/py_server.py" http --port "$P_PY"
start demo "$BIN" demo-server --transport http --listen "127.0.0.1:$P_DEMO" --name "$S_DEMO"
wait_listening everything "$EV_URL"
wait_listening pysdk "$PY_URL"
wait_listening demo "$DEMO_URL"
# (not /sse itself: that answers with a stream that never ends)
wait_listening everything_sse "http://127.0.0.1:$P_EVS/"

# What each real peer offers directly (same client, same mode, declaring the capabilities the
# gateway declares downstream, since servers offer some tools only to such clients): the reference for the
# gateway's merged catalog.
client direct_everything http "$EV_URL" --mode legacy --list --declare-caps
client direct_pysdk http "$PY_URL" --mode legacy --list --declare-caps
judge direct direct_everything direct_pysdk || { echo "interop: listing the peers directly failed: $REASON"; exit 1; }
# The references for the matrix; a failure here fails the matrix checks that need them.
client direct_ev_sse sse "$EVS_URL" --mode legacy --list --declare-caps
client direct_ev_stdio stdio --mode legacy --list --declare-caps -- node --require "$HERE/loopback-only.cjs" "$EV" stdio
client direct_time stdio --mode legacy --list --declare-caps -- "$PEERS/.venv/bin/mcp-server-time" --local-timezone UTC

# ---------------------------------------------------------------- gateways
cat >"$WORK/main.toml" <<EOF
[gateway]
listen = "127.0.0.1:$P_GW"
admin_listen = "127.0.0.1:$P_ADM"
workers = 2
call_timeout_ms = 15000

# First on purpose: a server that never connected, ahead of ones that do.
[[server]]
name = "$S_GHOST"
transport = "http"
url = "$GHOST_URL"
required = false

[[server]]
name = "$S_EV"
transport = "http"
url = "$EV_URL"

[[server]]
name = "$S_PY"
transport = "http"
url = "$PY_URL"

[[server]]
name = "$S_DEMO"
transport = "http"
url = "$DEMO_URL"
EOF

cat >"$WORK/paged.toml" <<EOF
[gateway]
listen = "127.0.0.1:$P_GW3"
admin_listen = "127.0.0.1:$P_ADM3"
workers = 2
page_size = 3

[[server]]
name = "$S_EV"
transport = "http"
url = "$EV_URL"

[[server]]
name = "$S_PY"
transport = "http"
url = "$PY_URL"
EOF

# tq STRING : STRING as a TOML basic string
tq() {
  local v=${1//\\/\\\\}
  printf '"%s"' "${v//\"/\\\"}"
}

# The matrix servers, one per downstream transport, the same in both matrix configs.
S_MX_STDIO=ev_stdio
S_MX_HTTP=ev_http
S_MX_SSE=ev_sse
S_TIME=time
S_FB=ev_fb
MATRIX_SERVERS="
[[server]]
name = \"$S_MX_STDIO\"
transport = \"stdio\"
command = \"node\"
args = [\"--require\", $(tq "$HERE/loopback-only.cjs"), $(tq "$EV"), \"stdio\"]
env = { INTEROP_ROLE = \"stdio\" }

[[server]]
name = \"$S_MX_HTTP\"
transport = \"http\"
url = \"$EV_URL\"

[[server]]
name = \"$S_MX_SSE\"
transport = \"sse\"
url = \"$EVS_URL\"

[[server]]
name = \"$S_TIME\"
transport = \"stdio\"
command = $(tq "$PEERS/.venv/bin/mcp-server-time")
args = [\"--local-timezone\", \"UTC\"]
"

cat >"$WORK/matrix.toml" <<EOF
[gateway]
listen = "127.0.0.1:$P_GWX"
admin_listen = "127.0.0.1:$P_ADMX"
workers = 2
call_timeout_ms = 15000
$MATRIX_SERVERS
# transport = "http" at a URL that only speaks HTTP+SSE: the gateway must fall back.
# Optional, so a fallback problem shows in sse-fallback-detected, not in the matrix.
[[server]]
name = "$S_FB"
transport = "http"
url = "$EVS_URL"
required = false
EOF

# Run by the Python SDK client as its stdio server: `ringgate stdio --config matrix_stdio.toml`.
cat >"$WORK/matrix_stdio.toml" <<EOF
[gateway]
listen = "127.0.0.1:$P_STDX"
admin_listen = "127.0.0.1:$P_ADMS"
call_timeout_ms = 15000
$MATRIX_SERVERS
EOF

say "starting gateways"
start gateway "$BIN" serve --config "$WORK/main.toml"
start gateway_paged "$BIN" serve --config "$WORK/paged.toml"
start gateway_matrix "$BIN" serve --config "$WORK/matrix.toml"

# wait_ready NAME ADMIN_URL : polls /readyz until 200, up to the shared GW_DEADLINE
GW_DEADLINE=$((SECONDS + READY_TIMEOUT))
wait_ready() {
  local name=$1 admin=$2 code
  while :; do
    code="$(http_code "$admin/readyz")"
    [ "$code" = 200 ] && return 0
    if ! kill -0 "${PID[$name]}" 2>/dev/null; then
      REASON="gateway process exited (see $name.log)"
      return 1
    fi
    if [ $SECONDS -ge $GW_DEADLINE ]; then
      REASON="GET /readyz still $code ${READY_TIMEOUT}s after start: $(curl -s --max-time 5 "$admin/readyz" | head -c 300); GET /v1/servers: $(curl -s --max-time 5 "$admin/v1/servers" | head -c 1500)"
      return 1
    fi
    sleep 0.1
  done
}
ready_main() { wait_ready gateway "$ADMIN"; }
ready_paged() { wait_ready gateway_paged "$ADMIN3"; }
ready_matrix() { wait_ready gateway_matrix "$ADMINX"; }

# ---------------------------------------------------------------- check bodies

# 1. Python SDK client, legacy mode: both peers' tools, prefixed; one call on each.
c_legacy_client() {
  client legacy http "$GW_URL" --mode legacy --list \
    --call "${S_EV}__get-sum" '{"a": 2, "b": 40}' \
    --call "${S_PY}__add" '{"a": 19, "b": 23}' \
    --call "${S_DEMO}__add" '{"a": 40, "b": 2}'
  judge legacy "$S_EV" "$S_PY" "$S_DEMO"
}

# 2. page_size = 3: following cursors yields every tool of both peers exactly once.
c_pagination() {
  client paged http "$GW3_URL" --mode legacy --list
  judge paged "$S_EV" "$S_PY" 3
}

# 9. Python SDK client, auto mode: probes server/discover, falls back to initialize.
c_auto_client() {
  client auto http "$GW_URL" --mode auto --list \
    --call "${S_EV}__get-sum" '{"a": 30, "b": 12}' \
    --call "${S_PY}__add" '{"a": 40, "b": 2}'
  judge auto "$S_EV" "$S_PY"
}

# bclient OUT URL MODE ARGS... : the Python SDK client answering elicitation/sampling/roots
# (bridge_client.py), JSON report into $WORK/OUT.json
bclient() {
  local out=$1 url=$2 mode=$3
  shift 3
  timeout 90 "$PY" "$HERE/bridge_client.py" "$url" --mode "$mode" "$@" >"$WORK/$out.json" 2>"$WORK/$out.err" || true
  [ -s "$WORK/$out.json" ] || echo '{"fatal": "client produced no report (timeout or crash; see '"$out"'.err)", "calls": []}' >"$WORK/$out.json"
}

# 10. The era bridge, modern client -> legacy server: the Python SDK client pinned to
#     2026-07-28 calls server-everything's elicitation and sampling tools through the gateway;
#     each server request reaches it as input_required, its callback answers, the SDK retries
#     with inputResponses + requestState, and the call completes with what it answered.
c_bridge_modern_client() {
  bclient bridge_modern "$GW_URL" 2026-07-28 \
    --call "${S_EV}__trigger-elicitation-request" '{}' \
    --call "${S_EV}__trigger-sampling-request" '{"prompt": "hi", "maxTokens": 10}'
  judge bridge bridge_modern 2026-07-28 \
    "${S_EV}__trigger-elicitation-request=Ada Lovelace@elicitation/create" \
    "${S_EV}__trigger-sampling-request=canned reply@sampling/createMessage"
}

# 11. The era bridge, legacy client -> modern server: the Python SDK client in legacy mode
#     calls py_server's greet_user, which asks with multi round-trip requests (2026-07-28, as
#     the gateway talks to it); the gateway sends the client a real elicitation/create on the
#     call's stream and retries the call with the answer.
c_bridge_legacy_client() {
  bclient bridge_legacy "$GW_URL" legacy --call "${S_PY}__greet_user" '{}'
  judge bridge bridge_legacy 2025-11-25 "${S_PY}__greet_user=Hello, Ada Lovelace!@elicitation/create"
}

# 12. The era bridge over the gateway's stdio front: a 2026-07-28 client on `ringgate stdio`
#     (body-first era, no HTTP) gets server-everything's elicitation as input_required.
c_bridge_stdio_front() {
  bclient bridge_stdio stdio 2026-07-28 --call "${S_MX_HTTP}__trigger-elicitation-request" '{}' \
    -- "$BIN" stdio --config "$WORK/matrix_stdio.toml"
  judge bridge bridge_stdio 2026-07-28 "${S_MX_HTTP}__trigger-elicitation-request=Ada Lovelace@elicitation/create"
}

# 1b. An optional server that is down from the start does not block readiness (the
#     gateway-ready check), contributes no tools, and /v1/servers shows it down.
c_ghost() {
  curl -s --max-time 5 "$ADMIN/v1/servers" >"$WORK/v1_servers_ghost.json" 2>/dev/null || true
  judge ghost "$S_GHOST"
}

JSON_HDRS=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
INIT_BODY='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"interop-curl","version":"0"}}}'
LIST_BODY='{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}'

# raw NAME CURL_ARGS... : POST to the main gateway; status in $WORK/NAME.code, headers/body files
raw() {
  local name=$1
  shift
  curl -s --max-time 30 -D "$WORK/$name.headers" -o "$WORK/$name.body" -w '%{http_code}' \
    "${JSON_HDRS[@]}" "$@" "$GW_URL" >"$WORK/$name.code" 2>>"$WORK/checks.err" || true
  cat "$WORK/$name.code"
}
body_of() { head -c 300 "$WORK/$1.body" 2>/dev/null | tr '\r\n' '  '; }

# 3. A forged or tampered Mcp-Session-Id is 404 (while the real one works).
c_unknown_session() {
  local code sid
  code="$(raw s_init --data-binary "$INIT_BODY")"
  sid="$(tr -d '\r' <"$WORK/s_init.headers" | awk -F': *' 'tolower($1) == "mcp-session-id" {print $2}')"
  if [ "$code" != 200 ] || [ -z "$sid" ]; then
    REASON="initialize: expected 200 with Mcp-Session-Id, got $code, session '${sid}': $(body_of s_init)"
    return 1
  fi
  raw s_initialized -H "Mcp-Session-Id: $sid" -H 'MCP-Protocol-Version: 2025-11-25' \
    --data-binary '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
  code="$(raw s_real -H "Mcp-Session-Id: $sid" -H 'MCP-Protocol-Version: 2025-11-25' --data-binary "$LIST_BODY")"
  if [ "$code" != 200 ]; then
    REASON="control: tools/list with the real session id: expected 200, got $code: $(body_of s_real)"
    return 1
  fi
  code="$(raw s_forged -H 'Mcp-Session-Id: forged-4f1c2a9e-0000-4000-8000-000000000000' \
    -H 'MCP-Protocol-Version: 2025-11-25' --data-binary "$LIST_BODY")"
  if [ "$code" != 404 ]; then
    REASON="tools/list with a forged Mcp-Session-Id: expected 404, got $code: $(body_of s_forged)"
    return 1
  fi
  # Two edits of the real id, same length and alphabet: a character in the middle changed
  # (a forgery), and the lowest bit of the last character flipped (for base64-style ids,
  # often a different spelling of the same bytes). Session ids are opaque strings: any
  # string other than the one issued is an unknown session.
  local kind edited
  while read -r kind edited; do
    code="$(raw "s_$kind" -H "Mcp-Session-Id: $edited" -H 'MCP-Protocol-Version: 2025-11-25' --data-binary "$LIST_BODY")"
    if [ "$code" != 404 ]; then
      REASON="tools/list with the issued Mcp-Session-Id $kind ($sid -> $edited): expected 404, got $code: $(body_of "s_$kind")"
      return 1
    fi
  done < <("$PY" -c '
import sys
sid = sys.argv[1]
abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
def flip(c, bit):
    return abc[abc.index(c) ^ bit] if c in abc else ("A" if c != "A" else "B")
mid = len(sid) // 2
print("middle-char-changed", sid[:mid] + flip(sid[mid], 16) + sid[mid + 1:])
print("last-char-low-bit-flipped", sid[:-1] + flip(sid[-1], 1))
' "$sid")
}

# 4. A non-loopback Origin is 403 (a loopback one is accepted).
c_bad_origin() {
  local code
  code="$(raw o_evil -H 'Origin: https://evil.example' --data-binary "$INIT_BODY")"
  if [ "$code" != 403 ]; then
    REASON="initialize with Origin: https://evil.example: expected 403, got $code: $(body_of o_evil)"
    return 1
  fi
  code="$(raw o_loopback -H "Origin: http://127.0.0.1:$P_GW" --data-binary "$INIT_BODY")"
  if [ "$code" != 200 ]; then
    REASON="control: initialize with Origin: http://127.0.0.1:$P_GW: expected 200, got $code: $(body_of o_loopback)"
    return 1
  fi
}

# 5. Malformed JSON is HTTP 400 with a JSON-RPC -32700 parse error.
c_malformed_json() {
  local code
  code="$(raw m_bad --data-binary '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{')"
  if [ "$code" != 400 ]; then
    REASON="POST of truncated JSON: expected HTTP 400, got $code: $(body_of m_bad)"
    return 1
  fi
  if ! grep -Eq '"code"[[:space:]]*:[[:space:]]*-32700' "$WORK/m_bad.body"; then
    REASON="POST of truncated JSON: HTTP 400 but no \"code\":-32700 in the body: $(body_of m_bad)"
    return 1
  fi
}

# 6. A 20 MB body (limit: 4 MiB by default) is 413.
c_oversized_body() {
  local code big="$WORK/big-body.json"
  {
    printf '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"%s__echo","arguments":{"message":"' "$S_EV"
    head -c 20000000 /dev/zero | tr '\0' 'x'
    printf '"}}}'
  } >"$big"
  code="$(raw big --data-binary @"$big")"
  rm -f "$big"
  if [ "$code" != 413 ]; then
    REASON="POST of a 20 MB body: expected 413, got $code (000 = no HTTP response): $(body_of big)"
    return 1
  fi
}

# 7. Killing the Python peer: calls to its tool fail with a JSON-RPC error naming it
#    (right after the kill, and again once the gateway has marked it down), the other
#    servers keep working, and /v1/servers shows it down with a lastError.
c_dead_downstream() {
  local pid=${PID[pysdk]} deadline fails=()
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 10))
  while [ "$(http_code "$PY_URL")" != 000 ]; do
    if [ $SECONDS -ge $deadline ]; then
      REASON="the Python peer (pid $pid) still answers after being killed"
      return 1
    fi
    sleep 0.1
  done
  client dead http "$GW_URL" --mode legacy \
    --call "${S_PY}__add" '{"a": 1, "b": 2}' \
    --call "${S_EV}__get-sum" '{"a": 20, "b": 22}' \
    --call "${S_DEMO}__add" '{"a": 21, "b": 21}'
  judge dead dead "right after its server was killed" "$S_EV" "$S_PY" "$S_DEMO" || fails+=("$REASON")
  # The gateway may notice asynchronously: poll /v1/servers with a deadline.
  deadline=$((SECONDS + 20))
  while :; do
    curl -s --max-time 5 "$ADMIN/v1/servers" >"$WORK/v1_servers.json" 2>/dev/null || true
    judge servers_down "$S_PY" "$S_EV" && break
    if [ $SECONDS -ge $deadline ]; then
      fails+=("after 20s: $REASON")
      break
    fi
    sleep 0.2
  done
  client dead_later http "$GW_URL" --mode legacy \
    --call "${S_PY}__add" '{"a": 1, "b": 2}' \
    --call "${S_EV}__get-sum" '{"a": 20, "b": 22}' \
    --call "${S_DEMO}__add" '{"a": 21, "b": 21}'
  judge dead dead_later "once /v1/servers showed it down" "$S_EV" "$S_PY" "$S_DEMO" || fails+=("$REASON")
  [ ${#fails[@]} -eq 0 ] && return 0
  REASON="$(printf '%s; ' "${fails[@]}")"
  REASON="${REASON%; }"
  return 1
}

# 8. Per-server metrics for server-everything after the calls above.
c_metrics() {
  local code
  code="$(curl -s --max-time 10 -o "$WORK/metrics.txt" -w '%{http_code}' "$ADMIN/metrics" || true)"
  if [ "$code" != 200 ]; then
    REASON="GET /metrics: expected 200, got $code"
    return 1
  fi
  judge metrics "$S_EV"
}

# 8b. The exposition is valid: no series (name + labels) appears twice.
c_metrics_unique() {
  [ -s "$WORK/metrics.txt" ] || curl -s --max-time 10 -o "$WORK/metrics.txt" "$ADMIN/metrics" || true
  judge metrics_unique
}

# 10. `ringgate check`: the suite's own config is valid; a broken one exits non-zero
#     and names every problem.
c_config_check() {
  local rc=0
  "$BIN" check --config "$WORK/main.toml" >"$WORK/check_ok.out" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then
    REASON="ringgate check on the suite's valid config exited $rc: $(head -c 300 "$WORK/check_ok.out")"
    return 1
  fi
  cat >"$WORK/broken.toml" <<'EOF'
[gateway]
listen = "localhost"
workers = "four"
page_size = 0

[gateway.limits]
max_headerz = 10

[[server]]
name = "a"
transport = "http"

[[server]]
name = "a"
transport = "stdio"
command = "x"
urll = "http://127.0.0.1:1/mcp"

[[server]]
name = "b"
transport = "http"
url = "http://127.0.0.1:1/mcp"
headers = { Authorization = "Bearer ${RINGGATE_INTEROP_SURELY_UNSET_VAR}" }
EOF
  rc=0
  env -u RINGGATE_INTEROP_SURELY_UNSET_VAR "$BIN" check --config "$WORK/broken.toml" >"$WORK/check_broken.out" 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then
    REASON="ringgate check on a broken config exited 0: $(head -c 300 "$WORK/check_broken.out")"
    return 1
  fi
  local missing=() key
  for key in 'gateway.listen' 'gateway.workers' 'gateway.page_size' 'gateway.limits.max_headerz' \
             'server[0].url' 'server[1].name' 'server[1].urll' 'server[2].headers.Authorization'; do
    grep -qF "$key" "$WORK/check_broken.out" || missing+=("$key")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    REASON="ringgate check (exit $rc) did not report: ${missing[*]}; output: $(tr '\n' ' ' <"$WORK/check_broken.out" | head -c 600)"
    return 1
  fi
}

# ---------------------------------------------------------------- the 3x3 transport matrix
# Client over {stdio, Streamable HTTP, HTTP+SSE} x downstream over {stdio, Streamable HTTP,
# HTTP+SSE}: every pair lists the whole merged catalog (each matrix server's tools, as the peer
# lists them directly, under its prefix), calls <downstream>__echo (exact text back) and
# <downstream>__get-env (it ran in the server-everything process behind that transport).

# Every tool of every matrix server, as the peers list them directly.
MX_CATALOG=("$S_MX_STDIO=direct_ev_stdio" "$S_MX_HTTP=direct_everything" "$S_MX_SSE=direct_ev_sse" "$S_TIME=direct_time")
declare -A MX_ROLE=([$S_MX_STDIO]=stdio [$S_MX_HTTP]=streamableHttp [$S_MX_SSE]=sse [$S_FB]=sse)

# mx_client OUT CLIENT_TRANSPORT MODE DS... : one Python SDK session with the matrix gateway
# over CLIENT_TRANSPORT (stdio: it launches `ringgate stdio` itself); lists the tools and, for
# each DS, calls DS__echo with a message unique to this run (arguments kept in OUT.args.json
# for the judge) and DS__get-env.
mx_client() {
  local out=$1 via=$2 mode=$3 ds args sep="" calls=()
  shift 3
  printf '{' >"$WORK/$out.args.json"
  for ds in "$@"; do
    # JSON escapes, so the non-ASCII text does not depend on the locale
    args="{\"message\": \"$out via $via to $ds: h\\u00e9llo \\u2713 $RANDOM\"}"
    printf '%s"%s": %s' "$sep" "$ds" "$args" >>"$WORK/$out.args.json"
    sep=", "
    calls+=(--call "${ds}__echo" "$args" --call "${ds}__get-env" '{}')
  done
  printf '}\n' >>"$WORK/$out.args.json"
  case $via in
    stdio) client "$out" stdio --mode "$mode" --list "${calls[@]}" -- "$BIN" stdio --config "$WORK/matrix_stdio.toml" ;;
    http) client "$out" http "$GWX_URL" --mode "$mode" --list "${calls[@]}" ;;
    sse) client "$out" sse "$GWX_SSE_URL" --mode "$mode" --list "${calls[@]}" ;;
  esac
}

# c_matrix CLIENT_TRANSPORT DS : one pair of the matrix.
c_matrix() {
  local via=$1 ds=$2 out="mx_${1}_to_$2"
  mx_client "$out" "$via" legacy "$ds"
  judge matrix "$out" "client over $via -> $ds (${MX_ROLE[$ds]})" "$ds:${MX_ROLE[$ds]}" "${MX_CATALOG[@]}"
}

# The auto-mode client (probes server/discover, falls back to initialize) over Streamable
# HTTP, reaching all three downstream transports in one session.
c_matrix_auto() {
  local ds calls=()
  for ds in "$S_MX_STDIO" "$S_MX_HTTP" "$S_MX_SSE"; do calls+=("$ds:${MX_ROLE[$ds]}"); done
  mx_client mx_http_auto http auto "$S_MX_STDIO" "$S_MX_HTTP" "$S_MX_SSE"
  judge matrix mx_http_auto "auto-mode client over http" "$(IFS=,; echo "${calls[*]}")" "${MX_CATALOG[@]}"
}

# mcp-server-time (Python SDK server, stdio downstream) through the gateway.
c_time_stdio() {
  client mx_time http "$GWX_URL" --mode legacy --list --call "${S_TIME}__get_current_time" '{"timezone": "UTC"}'
  judge time_stdio mx_time "$S_TIME" direct_time
}

# A transport = "http" server at server-everything's /sse URL: /v1/servers shows the detected
# "http+sse (fallback)" and its tools work. It is optional, so poll until it is up.
c_sse_fallback() {
  local deadline=$((SECONDS + 20))
  while :; do
    curl -s --max-time 5 "$ADMINX/v1/servers" >"$WORK/v1_servers_matrix.json" 2>/dev/null || true
    "$PY" -c '
import json, sys
try:
    doc = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit(1)
sys.exit(0 if any(s.get("name") == sys.argv[2] and s.get("up") is True for s in doc.get("servers", [])) else 1)
' "$WORK/v1_servers_matrix.json" "$S_FB" && break
    [ $SECONDS -ge $deadline ] && break # the judge says what /v1/servers shows
    sleep 0.2
  done
  mx_client mx_fallback http legacy "$S_FB"
  judge fallback "$S_FB" "$EVS_URL" "$S_MX_HTTP" mx_fallback direct_ev_sse
}

# After more than 5 s without traffic (Node's keepAliveTimeout: server-everything closes idle
# keep-alive connections), calls through the Streamable HTTP and HTTP+SSE downstreams still
# work: the gateway must not fail a call, or drop the server, because a pooled connection was
# closed while idle. Waits only for what is left of the 6 s since the matrix gateway last
# reached them (MX_LAST_USE).
MX_LAST_USE=""
c_idle_downstreams() {
  local wait
  wait="$("$PY" -c 'import sys; print(max(0.0, 6.0 - (float(sys.argv[1]) - float(sys.argv[2] or 0))))' \
    "$EPOCHREALTIME" "$MX_LAST_USE")"
  sleep "$wait"
  mx_client mx_idle http legacy "$S_MX_HTTP" "$S_MX_SSE"
  judge matrix mx_idle "6 s after the last call" "$S_MX_HTTP:${MX_ROLE[$S_MX_HTTP]},$S_MX_SSE:${MX_ROLE[$S_MX_SSE]}" "${MX_CATALOG[@]}"
}

# After everything above, the matrix gateway's view of its servers: all up, and none ever
# recorded an error (the peers are healthy and nothing was killed), so a failure that the
# gateway recovered from on its own (a failed list refresh, a dropped session) still shows.
c_matrix_servers_clean() {
  curl -s --max-time 5 "$ADMINX/v1/servers" >"$WORK/v1_servers_matrix_end.json" 2>/dev/null || true
  judge servers_clean v1_servers_matrix_end "$S_MX_STDIO" "$S_MX_HTTP" "$S_MX_SSE" "$S_TIME" "$S_FB"
}

# kill -9 of a real stdio peer (server-everything over stdio): its calls fail clearly, the gateway
# restarts it (new pid), its tools come back, and a call works again. Runs last: it leaves an
# error in /v1/servers on purpose.
c_stdio_child_restarts() {
  local old new deadline=$((SECONDS + 20)) body out
  old="$(curl -s --max-time 5 "$ADMINX/v1/servers" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(next(s["pid"] for s in d["servers"] if s["name"]==sys.argv[1]) or "")' "$S_MX_STDIO")"
  if [ -z "$old" ]; then
    REASON="no pid for $S_MX_STDIO in /v1/servers"
    return 1
  fi
  kill -9 "$old"
  while :; do
    new="$(curl -s --max-time 5 "$ADMINX/v1/servers" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); s=next(s for s in d["servers"] if s["name"]==sys.argv[1]); print(s["pid"] if s["up"] and s["tools"] else "")' "$S_MX_STDIO" 2>/dev/null)"
    [ -n "$new" ] && [ "$new" != "$old" ] && break
    if [ $SECONDS -ge $deadline ]; then
      REASON="$S_MX_STDIO (pid $old, killed -9) was not back up with its tools within 20 s: $(curl -s --max-time 5 "$ADMINX/v1/servers")"
      return 1
    fi
    sleep 0.2
  done
  mx_client mx_after_kill http legacy "$S_MX_STDIO"
  judge matrix mx_after_kill "after kill -9 of the stdio peer" "$S_MX_STDIO:${MX_ROLE[$S_MX_STDIO]}" "${MX_CATALOG[@]}"
}

# alive PID : the process exists and is not a zombie (an orphan's zombie may linger where
# pid 1 does not reap)
alive() {
  local st
  st="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ $st != Z* ]]
}

# `ringgate stdio` as a client launches it, run by the suite itself with a stdin it holds:
# it serves its admin listener (its own port), and when its stdin closes it exits and stops
# the stdio children it spawned. Also: the ones the matrix's stdio clients launched are gone
# (their admin port is free again).
c_stdio_front_lifecycle() {
  local deadline=$((SECONDS + 10)) fifo="$WORK/stdio_front.in" fd code pid children=() left=()
  while [ "$(http_code "$ADMINS/healthz")" != 000 ]; do
    if [ $SECONDS -ge $deadline ]; then
      REASON="a ringgate stdio launched by a matrix client still serves its admin port $P_ADMS 10s after that client exited (GET /healthz: $(http_code "$ADMINS/healthz"))"
      return 1
    fi
    sleep 0.1
  done
  rm -f "$fifo"
  mkfifo "$fifo"
  start stdio_front bash -c 'exec "$0" stdio --config "$1" <"$2"' "$BIN" "$WORK/matrix_stdio.toml" "$fifo"
  exec {fd}<>"$fifo" # read-write: never blocks, even if the gateway failed to start
  pid=${PID[stdio_front]}
  deadline=$((SECONDS + READY_TIMEOUT))
  while code="$(http_code "$ADMINS/readyz")" && [ "$code" != 200 ]; do
    if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      exec {fd}>&-
      REASON="ringgate stdio --config matrix_stdio.toml: its admin_listen 127.0.0.1:$P_ADMS never answered GET /readyz 200 (last: $code; process $(kill -0 "$pid" 2>/dev/null && echo running || echo exited); see stdio_front.log)"
      return 1
    fi
    sleep 0.1
  done
  curl -s --max-time 5 "$ADMINS/v1/servers" >"$WORK/v1_servers_stdio_front.json" 2>/dev/null || true
  read -r -a children < <("$PY" -c '
import json, sys
doc = json.load(open(sys.argv[1]))
print(*[s["pid"] for s in doc.get("servers", []) if s.get("transport") == "stdio" and s.get("pid")])
' "$WORK/v1_servers_stdio_front.json" 2>/dev/null || true)
  if [ ${#children[@]} -ne 2 ]; then
    exec {fd}>&-
    REASON="GET /v1/servers of ringgate stdio: expected the pids of its 2 stdio children ($S_MX_STDIO, $S_TIME), got '${children[*]}': $(head -c 600 "$WORK/v1_servers_stdio_front.json")"
    return 1
  fi
  exec {fd}>&- # EOF on its stdin: the client is gone
  deadline=$((SECONDS + 10))
  while alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if alive "$pid"; then
    REASON="ringgate stdio (pid $pid) still running 10s after its stdin was closed"
    return 1 # stopped by pid in cleanup
  fi
  deadline=$((SECONDS + 5))
  for code in "${children[@]}"; do
    while alive "$code" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if alive "$code"; then
      left+=("$code")
      kill -KILL "$code" 2>/dev/null || true # one of ours, left behind by the gateway
    fi
  done
  if [ ${#left[@]} -gt 0 ]; then
    REASON="ringgate stdio exited when its stdin closed, but its stdio children still ran 5s later: pids ${left[*]} (now killed)"
    return 1
  fi
}

# Experimental tasks (2025-11-25) with server-everything's task-required tool: sealed task ids,
# polling, result, and another session can neither list nor reach the task (tasks_client.py).
c_tasks_everything() {
  REASON="$(timeout 60 "$PY" "$HERE/tasks_client.py" "$GW_URL" "$S_EV" 2>>"$WORK/checks.err")" && return 0
  [ -n "$REASON" ] || REASON="tasks_client.py failed without a message (timeout or crash; see checks.err)"
  return 1
}

# Server-to-client traffic (issue #3): a legacy-mode Python SDK client declaring sampling,
# elicitation and roots, over each front (s2c_client.py), calls server-everything's
# trigger-sampling-request, trigger-elicitation-request, get-roots-list and
# trigger-long-running-operation behind each downstream transport: each request reaches its
# callback, the answer gets back, progress reaches its progress callback; then a session that
# declared nothing calls trigger-sampling-request and must get a clean error, not a hang. One
# client run per front (all three downstreams), judged per pair.
c_server_to_client() {
  local via=$1 ds=$2 out="$WORK/s2c_$1.json" ev dss=()
  if [ ! -s "$out" ]; then
    for ev in "$S_MX_STDIO" "$S_MX_HTTP" "$S_MX_SSE"; do dss+=(--ds "$ev"); done
    case $via in
      stdio) set -- stdio "${dss[@]}" -- "$BIN" stdio --config "$WORK/matrix_stdio.toml" ;;
      http) set -- "$GWX_URL" "${dss[@]}" ;;
      sse) set -- "$GWX_SSE_URL" "${dss[@]}" ;;
    esac
    timeout 150 "$PY" "$HERE/s2c_client.py" run "$@" >"$out" 2>"$WORK/s2c_$via.err" || true
    [ -s "$out" ] || echo '{"fatal": "client produced no report (timeout or crash; see s2c_'"$via"'.err)"}' >"$out"
  fi
  # server-everything over Streamable HTTP asks roots/list on its standalone GET stream; the gateway
  # hands it to the one session calling that server, so every pair is judged strictly.
  set --
  REASON="$("$PY" "$HERE/s2c_client.py" judge "$out" "$ds" "$@" 2>>"$WORK/checks.err")" && { echo "  ($via -> $ds: $REASON)"; return 0; }
  [ -n "$REASON" ] || REASON="s2c_client.py judge failed without a message (see checks.err)"
  return 1
}

# Hot reload under load (reload_check.py: its own peers and its own gateway, started from a
# config file, in front of server-everything over stdio and streamableHttp, py_server.py and the
# demo over stdio): the file rewritten many ways (in place, half-written, atomic rename, cp, a burst), SIGHUP, a broken config
# posted to /v1/reload; zero failed calls, zero dropped connections, the catalog follows the
# file, list_changed on GET and subscriptions/listen streams, the unchanged stdio child keeps its pid.
c_reload_live() {
  local rc=0
  # Its own peers too (other checks stop the shared ones), so it can run anywhere in the list.
  timeout 180 "$PY" "$HERE/reload_check.py" --bin "$BIN" --ev "$EV" --cjs "$HERE/loopback-only.cjs" \
    --work "$WORK" >"$WORK/reload_live.json" 2>>"$WORK/checks.err" || rc=$?
  [ "$rc" = 0 ] && return 0
  REASON="$("$PY" -c 'import json,sys; print("; ".join(json.load(open(sys.argv[1])).get("problems", [])))' \
    "$WORK/reload_live.json" 2>/dev/null)"
  [ -n "$REASON" ] || REASON="reload_check.py exited $rc without a report (see checks.err, reload_gateway.log)"
  return 1
}

# ---------------------------------------------------------------- run
say "checks (peers: everything=$P_EV everything-sse=$P_EVS pysdk=$P_PY demo=$P_DEMO; gateway=$P_GW admin=$P_ADM; paged=$P_GW3 admin=$P_ADM3; matrix=$P_GWX admin=$P_ADMX, stdio admin=$P_ADMS)"
CHECKS_START=$SECONDS
check gateway-ready ready_main
check gateway-paged-ready ready_paged
check legacy-client-lists-and-calls c_legacy_client
check unreachable-optional-server c_ghost
check pagination-page-size-3 c_pagination
check auto-mode-client c_auto_client
check bridge-modern-client-to-legacy-server c_bridge_modern_client
check bridge-legacy-client-to-modern-server c_bridge_legacy_client
check unknown-session-404 c_unknown_session
check bad-origin-403 c_bad_origin
check malformed-json-400 c_malformed_json
check oversized-body-413 c_oversized_body
check tasks-scoped-per-session c_tasks_everything
check dead-downstream-isolated c_dead_downstream
check metrics-per-server c_metrics
check metrics-no-duplicate-series c_metrics_unique
check config-check-reports-all c_config_check
check reload-live-under-load c_reload_live
check matrix-gateway-ready ready_matrix
for via in stdio http sse; do
  for ds in "$S_MX_STDIO" "$S_MX_HTTP" "$S_MX_SSE"; do
    check "matrix-$via-to-${ds#ev_}" c_matrix "$via" "$ds"
  done
done
check matrix-http-auto-mode-to-all c_matrix_auto
check time-server-over-stdio c_time_stdio
check bridge-over-stdio-front c_bridge_stdio_front
for via in stdio http sse; do
  for ds in "$S_MX_STDIO" "$S_MX_HTTP" "$S_MX_SSE"; do
    check "server-to-client-$via-to-${ds#ev_}" c_server_to_client "$via" "$ds"
  done
done
check sse-fallback-detected c_sse_fallback
MX_LAST_USE=$EPOCHREALTIME
check stdio-front-admin-and-clean-exit c_stdio_front_lifecycle
check matrix-downstreams-after-idle c_idle_downstreams
check matrix-servers-no-errors c_matrix_servers_clean
check stdio-peer-killed-restarts c_stdio_child_restarts
FINISHED=1

echo "$PASSED passed, $FAILED failed (checks $((SECONDS - CHECKS_START))s, total $((SECONDS - SUITE_START))s)"
[ "$FAILED" -eq 0 ]
