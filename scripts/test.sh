#!/usr/bin/env bash
# Runs every test: unit, integration (fake LLM + fake peers on loopback) and interop tests against
# REAL peers: the Bindu and a2a-sdk echo agents from ../shared/peers (installed into venvs on first
# use) and echo agents on the official JavaScript A2A SDK (tests/peers/js, `npm ci`).
#
#   PLANGATE_PEERS_DIR   where the peer scripts live (default: ../shared/peers)
#   PLANGATE_SKIP_PEERS  set to 1 to skip starting real peers (their tests then skip themselves)
#   PLANGATE_SKIP_CLIENTS set to 1 to skip installing the client tests' packages, chromium and
#                         redis-server (the tests of several instances start their own redis-server)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PEERS="${PLANGATE_PEERS_DIR:-$ROOT/../shared/peers}"
export PEERS_VENV_DIR="${PEERS_VENV_DIR:-${HOME:-/tmp}/.cache/plangate-peers}"
mkdir -p target
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_http() { # URL SECONDS
  local url="$1" deadline=$((SECONDS + $2))
  while (( SECONDS < deadline )); do
    curl -sf -o /dev/null "$url" && return 0
    sleep 0.3
  done
  return 1
}

start_peer() { # VAR_NAME LABEL PROBE_PATH SECONDS COMMAND… ("{port}" in COMMAND becomes a free port)
  local var="$1" label="$2" probe="$3" secs="$4"; shift 4
  local port; port="$(free_port)"
  local args=("${@//\{port\}/$port}")
  "${args[@]}" > "target/$label-$port.log" 2>&1 &
  pids+=("$!")
  if wait_http "http://127.0.0.1:$port$probe" "$secs"; then
    export "$var=http://127.0.0.1:$port"
    echo "test.sh: $label on port $port"
  else
    echo "test.sh: $label did not become ready; log:" >&2
    tail -n 30 "target/$label-$port.log" >&2
    return 1
  fi
}

if [[ "${PLANGATE_SKIP_PEERS:-0}" != 1 && -f "$PEERS/run-bindu-echo.sh" ]]; then
  rc=0
  bash "$PEERS/run-bindu-echo.sh" --install-only || rc=$?
  if (( rc == 0 )); then
    start_peer PLANGATE_BINDU_URL bindu /health 90 bash "$PEERS/run-bindu-echo.sh" "{port}"
    start_peer PLANGATE_BINDU_UNSIGNED_URL bindu-unsigned /health 90 \
      bash "$PEERS/run-bindu-echo.sh" "{port}" --unsigned
    # A peer that checks our request signatures with Bindu's own verifier. The key is the one of
    # the fixed test seed in fixtures/identity (tests/gateway/identity.rs signs with it).
    start_peer PLANGATE_VERIFYING_PEER_URL verifying-peer /health 60 \
      "$PEERS_VENV_DIR/bindu/bin/python" tests/peers/verifying_peer.py "{port}" \
      FAe4sisG95oZ42w7buUn5qEE4TAnfTTFPiguZUHmhiF verifying-peer-token
    # A Bindu agent that returns a PNG and keeps the files it is sent (tests/gateway/files.rs).
    start_peer PLANGATE_BINDU_FILES_URL bindu-files /health 90 \
      env TELEMETRY_ENABLED=false SENTRY_ENABLED=false AUTH__ENABLED=false VAULT__ENABLED=false \
      TUNNEL_ENABLED=false STORAGE_TYPE=memory SCHEDULER_TYPE=memory OTEL_SDK_DISABLED=true \
      OTEL_TRACES_EXPORTER=none DO_NOT_TRACK=1 PYTHONDONTWRITEBYTECODE=1 \
      "$PEERS_VENV_DIR/bindu/bin/python" tests/peers/bindu_file_agent.py "{port}" "$ROOT/target/bindu-files-{port}"
    export PLANGATE_REQUIRE_PEERS=1
  elif (( rc == 69 )); then
    echo "test.sh: no Python >= 3.12 found; Bindu interop tests will be skipped" >&2
  else
    echo "test.sh: installing the Bindu peer failed (exit $rc)" >&2
    exit "$rc"
  fi
fi

if [[ "${PLANGATE_SKIP_PEERS:-0}" != 1 && -f "$PEERS/run-a2a-echo.sh" ]]; then
  rc=0
  bash "$PEERS/run-a2a-echo.sh" --install-only || rc=$?
  if (( rc == 0 )); then
    card=/.well-known/agent-card.json
    start_peer PLANGATE_A2A_URL a2a-compat "$card" 60 bash "$PEERS/run-a2a-echo.sh" "{port}"
    start_peer PLANGATE_A2A_NOCOMPAT_URL a2a "$card" 60 \
      bash "$PEERS/run-a2a-echo.sh" "{port}" --no-compat
    # An a2a-sdk agent that returns a PNG and reports the files it is sent (tests/gateway/files.rs).
    start_peer PLANGATE_A2A_FILES_URL a2a-files "$card" 60 \
      "$PEERS_VENV_DIR/a2a/bin/python" tests/peers/a2a_file_agent.py "{port}"
    export PLANGATE_REQUIRE_A2A=1
  elif (( rc == 69 )); then
    echo "test.sh: no Python >= 3.10 found; a2a-sdk interop tests will be skipped" >&2
  else
    echo "test.sh: installing the a2a-sdk peer failed (exit $rc)" >&2
    exit "$rc"
  fi
fi

# Agents on the official JavaScript A2A SDK (tests/peers/js, pinned by its package-lock.json).
if [[ "${PLANGATE_SKIP_PEERS:-0}" != 1 ]]; then
  if command -v node > /dev/null && command -v npm > /dev/null; then
    npm ci --prefix tests/peers/js --no-audit --no-fund --loglevel=error > target/js-install.log 2>&1 \
      || { echo "test.sh: npm ci in tests/peers/js failed; log:" >&2; tail -n 30 target/js-install.log >&2; exit 1; }
    start_peer PLANGATE_JS_A2A_URL js-a2a /_log 30 node tests/peers/js/echo_agent.mjs "{port}"
    start_peer PLANGATE_JS_A2A_V1CARD_URL js-a2a-v1card /_log 30 \
      node tests/peers/js/echo_agent.mjs "{port}" --card-v1-only
    export PLANGATE_REQUIRE_JS=1
  else
    echo "test.sh: node/npm not found; @a2a-js/sdk interop tests will be skipped" >&2
  fi
fi

# Client tests (tests/gateway/clients.rs, playground.rs): the Python example's packages and the
# OpenAPI validator in a venv, the TypeScript example built, Debian's chromium with playwright-core.
if [[ "${PLANGATE_SKIP_CLIENTS:-0}" != 1 ]]; then
  clients="$PEERS_VENV_DIR/clients"
  if [[ ! -x "$clients/bin/python" ]]; then python3 -m venv "$clients"; fi
  "$clients/bin/pip" install --quiet --disable-pip-version-check -r tests/clients/requirements.txt \
    > target/clients-install.log 2>&1 \
    || { echo "test.sh: installing the Python client packages failed; log:" >&2; tail -n 30 target/clients-install.log >&2; exit 1; }
  export PLANGATE_CLIENTS_PYTHON="$clients/bin/python"
  for dir in examples/typescript tests/browser; do
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error > target/npm-install.log 2>&1 \
      || { echo "test.sh: npm ci in $dir failed; log:" >&2; tail -n 30 target/npm-install.log >&2; exit 1; }
  done
  npm run --prefix examples/typescript --silent build
  # Debian packages the tests drive: chromium (the playground) and redis-server (several
  # instances on one Redis). One apt-get update, one install, only for what is missing.
  missing=()
  command -v chromium > /dev/null || missing+=(chromium)
  command -v redis-server > /dev/null || missing+=(redis-server)
  if (( ${#missing[@]} > 0 )); then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get > /dev/null; then
      echo "test.sh: installing Debian packages: ${missing[*]}"
      { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; } \
        > target/apt-install.log 2>&1 \
        || { echo "test.sh: apt-get install ${missing[*]} failed; log:" >&2; tail -n 30 target/apt-install.log >&2; exit 1; }
    else
      echo "test.sh: ${missing[*]} missing and cannot be installed (not root / no apt-get); their tests will be skipped" >&2
    fi
  fi
  if command -v redis-server > /dev/null; then export PLANGATE_REQUIRE_REDIS=1; fi
  export PLANGATE_REQUIRE_CLIENTS=1
  if command -v chromium > /dev/null; then export PLANGATE_REQUIRE_BROWSER=1; fi
fi

cargo test --locked --all-targets
# Traces are a cargo feature (off by default): its test needs the feature build.
cargo test --locked --features otel --test gateway otel
