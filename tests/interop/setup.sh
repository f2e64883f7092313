#!/usr/bin/env bash
# Installs the real MCP peers the interop suite runs against, from the package
# registries only (pinned versions). Idempotent: a second run is a quick no-op.
#
#   PEERS=/some/dir bash tests/interop/setup.sh    (default: <repo>/.peers)
#
# Result:
#   $PEERS/.venv/bin/python                          Python with mcp==2.3.0, mcp-server-time
#   $PEERS/npm/node_modules/.bin/mcp-server-everything
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PEERS="${PEERS:-$REPO/.peers}"

MCP_PY="mcp==2.3.0"
TIME_PY="mcp-server-time==2026.10.19"
EVERYTHING_NPM="@modelcontextprotocol/server-everything@2026.8.31"

mkdir -p "$PEERS"
cd "$PEERS"

# Python: the official SDK v2 (both eras) + a stdio reference server.
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp_py=".venv/.ringgate-interop-installed"
want_py="$MCP_PY $TIME_PY"
if [ ! -f "$stamp_py" ] || [ "$(cat "$stamp_py")" != "$want_py" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q "$MCP_PY" "$TIME_PY"
  echo "$want_py" > "$stamp_py"
fi

# npm: the "everything" reference server (legacy era; stdio | sse | streamableHttp).
mkdir -p npm
stamp_npm="npm/.ringgate-interop-installed"
if [ ! -f "$stamp_npm" ] || [ "$(cat "$stamp_npm")" != "$EVERYTHING_NPM" ] \
   || [ ! -x npm/node_modules/.bin/mcp-server-everything ]; then
  ( cd npm && { [ -f package.json ] || npm init -y >/dev/null; } && \
    npm install --no-fund --no-audit "$EVERYTHING_NPM" >/dev/null )
  echo "$EVERYTHING_NPM" > "$stamp_npm"
fi

echo "peers ready in $PEERS"
