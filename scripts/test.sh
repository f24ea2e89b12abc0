#!/usr/bin/env bash
# Runs every test: unit, integration (fake LLM + fake peers on loopback) and interop tests against
# the REAL Bindu echo agent from ../shared/peers (installed into a venv on first use).
#
#   PLANGATE_PEERS_DIR   where the peer scripts live (default: ../shared/peers)
#   PLANGATE_SKIP_PEERS  set to 1 to skip starting real peers (their tests then skip themselves)
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

start_bindu() { # VAR_NAME [--unsigned]
  local var="$1"; shift
  local port; port="$(free_port)"
  bash "$PEERS/run-bindu-echo.sh" "$port" "$@" > "target/bindu-$port.log" 2>&1 &
  pids+=("$!")
  if wait_http "http://127.0.0.1:$port/health" 90; then
    export "$var=http://127.0.0.1:$port"
    echo "test.sh: Bindu echo agent ${*:-signed} on port $port"
  else
    echo "test.sh: Bindu did not become healthy; log:" >&2
    tail -n 30 "target/bindu-$port.log" >&2
    return 1
  fi
}

if [[ "${PLANGATE_SKIP_PEERS:-0}" != 1 && -f "$PEERS/run-bindu-echo.sh" ]]; then
  rc=0
  bash "$PEERS/run-bindu-echo.sh" --install-only || rc=$?
  if (( rc == 0 )); then
    start_bindu PLANGATE_BINDU_URL
    start_bindu PLANGATE_BINDU_UNSIGNED_URL --unsigned
    # A peer that checks our request signatures with Bindu's own verifier. The key is the one of
    # the fixed test seed in fixtures/identity (tests/gateway/identity.rs signs with it).
    port="$(free_port)"
    "$PEERS_VENV_DIR/bindu/bin/python" tests/peers/verifying_peer.py "$port" \
      FAe4sisG95oZ42w7buUn5qEE4TAnfTTFPiguZUHmhiF verifying-peer-token > "target/verifying-peer.log" 2>&1 &
    pids+=("$!")
    wait_http "http://127.0.0.1:$port/health" 60 || { tail -n 30 target/verifying-peer.log >&2; exit 1; }
    export PLANGATE_VERIFYING_PEER_URL="http://127.0.0.1:$port"
    export PLANGATE_REQUIRE_PEERS=1
  elif (( rc == 69 )); then
    echo "test.sh: no Python >= 3.12 found; Bindu interop tests will be skipped" >&2
  else
    echo "test.sh: installing the Bindu peer failed (exit $rc)" >&2
    exit "$rc"
  fi
fi

start_a2a() { # VAR_NAME [--no-compat]
  local var="$1"; shift
  local port; port="$(free_port)"
  bash "$PEERS/run-a2a-echo.sh" "$port" "$@" > "target/a2a-$port.log" 2>&1 &
  pids+=("$!")
  if wait_http "http://127.0.0.1:$port/.well-known/agent-card.json" 60; then
    export "$var=http://127.0.0.1:$port"
    echo "test.sh: a2a-sdk echo agent ${*:-with v0.3 compat} on port $port"
  else
    echo "test.sh: the a2a-sdk agent did not become ready; log:" >&2
    tail -n 30 "target/a2a-$port.log" >&2
    return 1
  fi
}

if [[ "${PLANGATE_SKIP_PEERS:-0}" != 1 && -f "$PEERS/run-a2a-echo.sh" ]]; then
  rc=0
  bash "$PEERS/run-a2a-echo.sh" --install-only || rc=$?
  if (( rc == 0 )); then
    start_a2a PLANGATE_A2A_URL
    start_a2a PLANGATE_A2A_NOCOMPAT_URL --no-compat
    export PLANGATE_REQUIRE_A2A=1
  elif (( rc == 69 )); then
    echo "test.sh: no Python >= 3.10 found; a2a-sdk interop tests will be skipped" >&2
  else
    echo "test.sh: installing the a2a-sdk peer failed (exit $rc)" >&2
    exit "$rc"
  fi
fi

cargo test --locked --all-targets
