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
# check NAME FUNCTION : the function returns 0, or sets REASON and returns non-zero.
check() {
  local name=$1 fn=$2
  REASON=""
  echo "### $name" >>"$WORK/checks.err"
  if "$fn" 2>>"$WORK/checks.err"; then
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
read -r P_EV P_PY P_DEMO P_GW P_ADM P_GW3 P_ADM3 P_GHOST < <("$PY" -c '
import socket
socks = [socket.socket() for _ in range(8)]
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

# Server names in the gateway: their tools are listed as <name>__<tool>.
S_EV=everything
S_PY=pysdk
S_DEMO=demo
S_GHOST=ghost

# ---------------------------------------------------------------- downstreams
say "starting peers"
start everything env PORT="$P_EV" node --require "$HERE/loopback-only.cjs" "$EV" streamableHttp
start pysdk "$PY" "$HERE/py_server.py" http --port "$P_PY"
start demo "$BIN" demo-server --transport http --listen "127.0.0.1:$P_DEMO" --name "$S_DEMO"
wait_listening everything "$EV_URL"
wait_listening pysdk "$PY_URL"
wait_listening demo "$DEMO_URL"

# What each real peer offers directly (same client, same mode): the reference for the
# gateway's merged catalog.
client direct_everything http "$EV_URL" --mode legacy --list
client direct_pysdk http "$PY_URL" --mode legacy --list
judge direct direct_everything direct_pysdk || { echo "interop: listing the peers directly failed: $REASON"; exit 1; }

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

say "starting gateways"
start gateway "$BIN" serve --config "$WORK/main.toml"
start gateway_paged "$BIN" serve --config "$WORK/paged.toml"

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

# ---------------------------------------------------------------- run
say "checks (peers: everything=$P_EV pysdk=$P_PY demo=$P_DEMO; gateway=$P_GW admin=$P_ADM; paged=$P_GW3 admin=$P_ADM3)"
CHECKS_START=$SECONDS
check gateway-ready ready_main
check gateway-paged-ready ready_paged
check legacy-client-lists-and-calls c_legacy_client
check unreachable-optional-server c_ghost
check pagination-page-size-3 c_pagination
check auto-mode-client c_auto_client
check unknown-session-404 c_unknown_session
check bad-origin-403 c_bad_origin
check malformed-json-400 c_malformed_json
check oversized-body-413 c_oversized_body
check dead-downstream-isolated c_dead_downstream
check metrics-per-server c_metrics
check metrics-no-duplicate-series c_metrics_unique
check config-check-reports-all c_config_check
FINISHED=1

echo "$PASSED passed, $FAILED failed (checks $((SECONDS - CHECKS_START))s, total $((SECONDS - SUITE_START))s)"
[ "$FAILED" -eq 0 ]
