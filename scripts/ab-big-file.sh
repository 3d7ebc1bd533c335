#!/usr/bin/env bash
# Quick A/B timing of one pqdrop binary on a big file in LAN mode (loopback only).
#
# Usage: bash scripts/ab-big-file.sh PQDROP_BIN FILE [RUNS]
# Prints the median and range of the receiver's wall time over RUNS (default 5).
# Use it to compare two builds side by side in one session; the full,
# verified benchmark is scripts/bench.sh.
set -euo pipefail
bin=$1 file=$2 runs=${3:-5}
out=$(mktemp -d "${TMPDIR:-/tmp}/pqdrop-ab.XXXXXX")
trap 'rm -rf "$out"' EXIT
times=()
for i in $(seq 1 "$runs"); do
  rm -rf "$out/r"; mkdir -p "$out/r"
  export PQDROP_LAN_BIND=127.0.0.1 PQDROP_LAN_PORT=$((48000 + RANDOM % 1000 * 2))
  code="$((100 + RANDOM % 800))-ocean-tiger"
  timeout 300 "$bin" send --code "$code" "$file" 2>/dev/null & sender=$!
  sleep 0.3
  start=$(date +%s.%N)
  timeout 300 "$bin" receive --yes -o "$out/r" "$code" 2>/dev/null
  end=$(date +%s.%N)
  wait "$sender"
  cmp -s "$file" "$out/r/$(basename "$file")" || { echo "received data differs" >&2; exit 1; }
  times+=("$(echo "$end - $start" | bc)")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median %.3f s (min %.3f, max %.3f, %d runs)\n", a[int((NR+1)/2)], a[1], a[NR], NR}'
