#!/usr/bin/env bash
# Relay load benchmark: one relay and a three-instance fleet, loopback only.
#
# Usage:
#   bash scripts/bench-relay.sh [--pairs N] [--mib N] [--rooms N] [--honest N] [--only SCENARIO]
#
#   --pairs N    concurrent paired sessions per "pairs" run (default 1000)
#   --mib N      MiB each pair moves, verified (default 4)
#   --rooms N    waiting rooms for the "waiting" run (default 10000)
#   --honest N   honest pairs during each attack (default 100)
#   --only S     run one scenario: pairs-fleet, pairs-single, waiting, attack-single, attack-fleet
#
# Environment: PQDROP_BIN, RELAY_LOAD_BIN to use built binaries instead of
# `cargo build --release --locked`.
#
# What it runs (every process under `timeout`, everything on 127.0.0.0/8, a
# redis-server of its own on a free loopback port):
#   pairs-fleet    N pairs across 3 instances sharing one Redis: each sender
#                  gets an allocated nameplate at instance i, its receiver
#                  arrives at instance i+1 and is redirected; all pairs are
#                  held idle 3 s, then each moves --mib MiB, verified.
#                  Three real `pqdrop` transfers of 32 MiB run through the
#                  fleet at the same time and are verified.
#   pairs-single   the same N pairs on one relay without Redis.
#   waiting        --rooms waiting rooms across the fleet.
#   attack-single  128 attacking addresses x 16 connections against one relay
#   attack-fleet   and against the fleet: slow hellos (1 byte/s) and bad hellos
#                  kept open 3 s, with --honest pairs during the attack, each
#                  counted as a success if paired within 1 s.
# Output: one JSON line per run on stdout (relay-load's), logs in a temp dir.
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
PAIRS=1000 MIB=4 ROOMS=10000 HONEST=100 ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) PAIRS="$2"; shift 2 ;;
    --mib) MIB="$2"; shift 2 ;;
    --rooms) ROOMS="$2"; shift 2 ;;
    --honest) HONEST="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    *) echo "bench-relay.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -z "${PQDROP_BIN:-}" ] || [ -z "${RELAY_LOAD_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --locked -q -p pqdrop && cargo build --release --locked -q -p pqdrop-relay --example relay-load)
fi
PQDROP_BIN="${PQDROP_BIN:-$ROOT/target/release/pqdrop}"
RELAY_LOAD_BIN="${RELAY_LOAD_BIN:-$ROOT/target/release/examples/relay-load}"
command -v redis-server >/dev/null || { echo "bench-relay.sh: needs redis-server (apt-get install redis-server)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"

TMP="$(mktemp -d /tmp/pqdrop-bench-relay.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_line() { # FILE NEEDLE
  for _ in $(seq 1 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "bench-relay.sh: no '$2' in $1" >&2; cat "$1" >&2; exit 1
}

start_redis() {
  REDIS_PORT="$(free_port)"
  timeout 900 redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "bench-relay.sh: redis-server did not start" >&2; exit 1
}

# start_relays N [fleet]: sets RELAYS (comma list) and RPIDS (comma list).
start_relays() {
  local n="$1" fleet="${2:-}" addrs=() pids=()
  for i in $(seq 1 "$n"); do
    local port; port="$(free_port)"
    local args=(relay --listen "127.0.0.1:$port")
    [ -n "$fleet" ] && args+=(--advertise "127.0.0.1:$port" --redis "redis://127.0.0.1:$REDIS_PORT")
    RUST_LOG=warn timeout 900 "$PQDROP_BIN" "${args[@]}" >"$TMP/relay-$i.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid"); addrs+=("127.0.0.1:$port")
    wait_line "$TMP/relay-$i.log" "pqdrop relay listening"
    # The relay itself, not its `timeout` wrapper, is measured.
    pids+=("$(cat "/proc/$pid/task/$pid/children" | tr -d ' ')")
  done
  RELAYS="$(IFS=,; echo "${addrs[*]}")"
  RPIDS="$(IFS=,; echo "${pids[*]}")"
}

stop_relays() {
  for p in ${RPIDS//,/ }; do kill "$p" 2>/dev/null || true; done
  sleep 1
}

run() { # NAME ARGS...
  local name="$1"; shift
  echo "bench-relay.sh: $name" >&2
  local out; out="$(timeout 600 "$RELAY_LOAD_BIN" "$@")"
  echo "{\"scenario\":\"$name\",\"result\":$out}"
}

want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

# Real pqdrop transfers next to the load: 3 files of 32 MiB, each sender on
# instance k and its receiver on instance k+1 (redirected), started in the
# background; real_transfers_check waits for them and verifies every byte.
real_transfers_start() {
  IFS=, read -ra R <<<"$RELAYS"
  REAL=()
  for k in 0 1 2; do
    [ -f "$TMP/real-$k.bin" ] || head -c $((32 << 20)) /dev/urandom >"$TMP/real-$k.bin"
    rm -rf "$TMP/real-out-$k"; mkdir -p "$TMP/real-out-$k"
    local code="$((5001 + k))-lemon-tiger" s="${R[$((k % ${#R[@]}))]}" r="${R[$(((k + 1) % ${#R[@]}))]}"
    (
      sleep 4 # into the load's transfer phase (it pairs, then idles 3 s)
      timeout 300 "$PQDROP_BIN" send --relay "$s" --code "$code" "$TMP/real-$k.bin" 2>"$TMP/real-send-$k.log" &
      sleep 0.5
      t0=$(date +%s.%N)
      timeout 300 "$PQDROP_BIN" receive --relay "$r" --yes -o "$TMP/real-out-$k" "$code" 2>"$TMP/real-recv-$k.log"
      rc=$?
      wait
      echo "$rc $(printf '%.3f' "$(echo "$(date +%s.%N) - $t0" | bc)")" >"$TMP/real-$k.result"
    ) &
    REAL+=($!)
  done
}

real_transfers_check() {
  local out="" ok=0
  for k in 0 1 2; do
    wait "${REAL[$k]}" || true
    read -r rc secs <"$TMP/real-$k.result" || { rc=1; secs=0; }
    if [ "$rc" = 0 ] && cmp -s "$TMP/real-$k.bin" "$TMP/real-out-$k/real-$k.bin"; then ok=$((ok + 1)); fi
    out="$out${out:+,}$secs"
  done
  echo "{\"scenario\":\"real-pqdrop-transfers-during-$1\",\"result\":{\"transfers\":3,\"mib_each\":32,\"verified\":$ok,\"receiver_wall_s\":[$out]}}"
}

start_redis
if want pairs-fleet; then
  start_relays 3 fleet
  real_transfers_start
  run pairs-fleet pairs --relays "$RELAYS" --pids "$RPIDS" --pairs "$PAIRS" --mib "$MIB"
  real_transfers_check pairs-fleet
  stop_relays
fi
if want pairs-single; then
  start_relays 1
  run pairs-single pairs --relays "$RELAYS" --pids "$RPIDS" --pairs "$PAIRS" --mib "$MIB"
  stop_relays
fi
if want waiting; then
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  start_relays 3 fleet
  run waiting waiting --relays "$RELAYS" --pids "$RPIDS" --rooms "$ROOMS"
  stop_relays
fi
for kind in slow bad; do
  if want attack-single; then
    start_relays 1
    run "attack-single-$kind" attack --relays "$RELAYS" --kind "$kind" --attackers 128 --per-attacker 16 --honest "$HONEST" --secs 12
    stop_relays
  fi
  if want attack-fleet; then
    redis-cli -p "$REDIS_PORT" flushall >/dev/null
    start_relays 3 fleet
    run "attack-fleet-$kind" attack --relays "$RELAYS" --kind "$kind" --attackers 128 --per-attacker 16 --honest "$HONEST" --secs 12
    stop_relays
  fi
done
