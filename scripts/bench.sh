#!/usr/bin/env bash
# pqdrop end-to-end benchmark: one command, one markdown table.
#
# Usage:
#   bash scripts/bench.sh [--runs N] [--size-gib N] [--quick] [--install-peers] [--only LIST]
#
#   --runs N          runs per measurement; the table shows medians (default 3)
#   --size-gib N      size of the "big file" test in GiB (default 1)
#   --quick           skip the 4 GiB memory test (and default to --runs 1)
#   --only LIST       only these cases, comma-separated: big (the big file, LAN
#                     and relay), files (5,000 × 4 KiB), empty (200,000 empty
#                     files in 200 folders), small (1 byte); default: all
#   --install-peers   install missing peers first: magic-wormhole with its
#                     mailbox and transit servers (pip), wormhole-rs
#                     (cargo install magic-wormhole-cli) and sendme (cargo install)
#
# Environment:
#   PQDROP_BIN=/path/to/pqdrop   use this binary instead of building
#                                `cargo build --release --locked -p pqdrop`
#   PQDROP_ALT_BIN=/path/to/pqdrop  also measure this second pqdrop binary in
#                                LAN mode, in the same run (an A/B: for example
#                                an installed build, or an older commit);
#                                PQDROP_ALT_LABEL names it in the table
#   BENCH_TMP=/dir               where to put the test data (default: /dev/shm
#                                when it has room, otherwise /tmp)
#   BENCH_SIZE_MIB=N             big-file size in MiB instead of --size-gib (to
#                                try the script out quickly)
#
# What it measures, all on this machine only:
#   - baselines: raw loopback TCP, `iperf3 -c 127.0.0.1 -t 5` (one stream);
#     a plain file-to-file copy over loopback TCP, `iperf3 -F` on both ends
#     (the big file, one stream, read from and written to the same file
#     system as the transfers, so it pays the page cache as they do); and for
#     the folders the local floor `tar cf - DIR | tar xf - -C OUT`;
#   - pqdrop LAN mode bound to loopback (PQDROP_LAN_BIND=127.0.0.1, its own
#     PQDROP_LAN_PORT) and through `pqdrop relay --listen 127.0.0.1:PORT`:
#     a file of random data (--size-gib), 5,000 random files of 4 KiB in a
#     folder, and a 1-byte file;
#   - peak RSS and CPU time of each side (/usr/bin/time -v), also for a 4 GiB
#     file (without --quick), to show that memory does not grow with size;
#   - the same transfers with magic-wormhole, wormhole-rs and sendme when they
#     are installed. Peers run ONLY inside a private network namespace
#     (`unshare --net`, loopback up, their own mailbox/transit servers inside),
#     because they reach for servers on the internet otherwise.
# A time is the receiver's wall time from its launch to its exit; the sender is
# started first and the receiver is launched once the sender says it waits.
# Every received file or tree is compared with its source; a mismatch stops
# the script with an error. MB/s are 10^6 bytes per second.
#
# Network: loopback only (127.0.0.1), or namespaces this script creates. Every
# process runs under `timeout`; processes and temporary files are removed on exit.
set -uo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
ROOT="$(cd "$(dirname "$SELF")/.." && pwd)"
WORDS="tiger-zebra"
MB_PORT=4000 # inside a peer's namespace only
TR_PORT=4001

die() {
  echo "bench.sh: ERROR: $*" >&2
  exit 1
}
note() { echo "bench.sh: $*" >&2; }
now_ns() { date +%s%N; }

# ---------------------------------------------------------------- one transfer
# run_transfer TOOL SRC OUT CODE DIR
#   TOOL: pqdrop-lan | pqdrop-relay | wormhole | wormhole-rs | sendme
#   Starts the sender on SRC, waits for its "waiting" line, then runs and times
#   the receiver into OUT. Logs go to DIR. Sets R_WALL (s), R_RSS_TX, R_RSS_RX
#   (KiB), R_CPU_TX, R_CPU_RX (s). Returns non-zero on failure.
TIMEOUT_S=600
BG_PIDS=()

wait_for() { # wait_for REGEX SECONDS PID FILE...: until a FILE matches, PID dies or time runs out
  local re=$1 secs=$2 pid=$3 i
  shift 3
  for ((i = 0; i < secs * 100; i++)); do
    grep -qsE "$re" "$@" && return 0
    kill -0 "$pid" 2>/dev/null || {
      grep -qsE "$re" "$@"
      return
    }
    sleep 0.01
  done
  return 1
}

children_of() { pgrep -P "$1" 2>/dev/null || cat /proc/"$1"/task/*/children 2>/dev/null; }
kill_tree() { # kill_tree PID [SIGNAL]: PID and everything it started
  local c
  for c in $(children_of "$1"); do kill_tree "$c" "${2:-TERM}"; done
  kill -s "${2:-TERM}" "$1" 2>/dev/null
}
# stop_timed PID [SIGNAL]: PID runs `/usr/bin/time -v -o F timeout ... CMD`.
# Signal the `timeout` below it (it passes the signal on to CMD) so that time
# still writes F.
stop_timed() {
  local pid=$1 c i
  for c in $(children_of "$pid"); do kill -s "${2:-TERM}" "$c" 2>/dev/null; done
  for ((i = 0; i < 1000; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  kill -0 "$pid" 2>/dev/null && kill_tree "$pid" KILL
  wait "$pid" 2>/dev/null
}

wait_port() { # wait_port PORT SECONDS
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

time_field() { # time_field FILE "Label" -> value after the last colon
  awk -F': ' -v k="$2" 'index($0, k) { v = $NF } END { print v }' "$1"
}
cpu_of() { # user + system seconds from a /usr/bin/time -v file
  awk -F': ' '/User time \(seconds\)/ { u = $2 } /System time \(seconds\)/ { s = $2 } END { printf "%.2f", u + s }' "$1"
}

run_transfer() {
  local tool=$1 src=$2 out=$3 code=$4 dir=$5
  local tx_pid rc_rx rc_tx start end wait_re ticket=""
  local -a send_cmd recv_cmd
  local recv_dir=$out
  mkdir -p "$out" "$dir"
  rm -f "$dir"/tx.* "$dir"/rx.*
  case $tool in
    pqdrop-lan | pqdrop-relay | pqdrop-alt)
      local net=() bin=$BIN
      [[ $tool == pqdrop-relay ]] && net=(--relay "127.0.0.1:$RELAY_PORT")
      [[ $tool == pqdrop-alt ]] && bin=$ALT_BIN
      send_cmd=("$bin" send "${net[@]}" --code "$code" "$src")
      recv_cmd=("$bin" receive "${net[@]}" --yes --lan-timeout 60 -o "$out" "$code")
      wait_re='Waiting for the receiver'
      ;;
    wormhole)
      local w=(wormhole --relay-url "ws://127.0.0.1:$MB_PORT/v1" --transit-helper "tcp:127.0.0.1:$TR_PORT")
      send_cmd=("${w[@]}" send --hide-progress --no-qr --code "$code" "$src")
      recv_cmd=("${w[@]}" receive --hide-progress --accept-file "$code")
      wait_re='wormhole receive'
      ;;
    wormhole-rs)
      local w=(--rendezvous-server "ws://127.0.0.1:$MB_PORT/v1" --relay-server "tcp://127.0.0.1:$TR_PORT")
      send_cmd=(wormhole-rs send "${w[@]}" --no-qr --code "$code" "$src")
      recv_cmd=(wormhole-rs receive "${w[@]}" --noconfirm --out-dir "$out" "$code")
      wait_re='This wormhole.s code is'
      ;;
    sendme)
      # No relay: none is reachable from the namespace, so don't wait for one.
      send_cmd=(sendme send --relay disabled --no-progress "$src")
      recv_cmd=(sendme receive --relay disabled --no-progress TICKET)
      wait_re='sendme receive [A-Za-z0-9]+'
      ;;
    *) die "unknown tool $tool" ;;
  esac
  # The sender runs from DIR (sendme keeps its store in the working directory).
  (cd "$dir" && exec /usr/bin/time -v -o "$dir/tx.time" timeout "$TIMEOUT_S" "${send_cmd[@]}" >"$dir/tx.out" 2>"$dir/tx.err" </dev/null) &
  tx_pid=$!
  BG_PIDS+=("$tx_pid")
  if ! wait_for "$wait_re" 120 "$tx_pid" "$dir/tx.out" "$dir/tx.err"; then
    note "$tool: the sender never said it was waiting; its output:"
    tail -n 20 "$dir/tx.out" "$dir/tx.err" >&2
    stop_timed "$tx_pid"
    return 1
  fi
  if [[ $tool == sendme ]]; then
    ticket=$(grep -ohE 'sendme receive [A-Za-z0-9]+' "$dir/tx.out" "$dir/tx.err" | head -n 1 | awk '{ print $3 }')
    recv_cmd=(sendme receive --relay disabled --no-progress "$ticket")
  fi
  start=$(now_ns)
  (cd "$recv_dir" && exec /usr/bin/time -v -o "$dir/rx.time" timeout "$TIMEOUT_S" "${recv_cmd[@]}" >"$dir/rx.out" 2>"$dir/rx.err" </dev/null)
  rc_rx=$?
  end=$(now_ns)
  # The sender should finish on its own right after the receiver (sendme
  # serves until it is stopped).
  local i
  if [[ $tool != sendme ]]; then
    for ((i = 0; i < 3000; i++)); do
      kill -0 "$tx_pid" 2>/dev/null || break
      sleep 0.01
    done
  fi
  if kill -0 "$tx_pid" 2>/dev/null; then
    if [[ $tool == sendme ]]; then
      stop_timed "$tx_pid" INT # its Ctrl-C path
      rm -rf "$dir"/.sendme-*
    else
      note "$tool: the sender did not exit 30 s after the receiver; stopping it"
      stop_timed "$tx_pid"
    fi
    rc_tx=1
  else
    wait "$tx_pid"
    rc_tx=$?
  fi
  if ((rc_rx != 0)); then
    note "$tool: the receiver failed (exit $rc_rx); its output:"
    tail -n 20 "$dir/rx.out" "$dir/rx.err" >&2
    return 1
  fi
  if ((rc_tx != 0)) && [[ $tool != sendme ]]; then
    note "$tool: the sender failed (exit $rc_tx); its output:"
    tail -n 20 "$dir/tx.out" "$dir/tx.err" >&2
    return 1
  fi
  R_WALL=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
  R_RSS_TX=$(time_field "$dir/tx.time" "Maximum resident set size")
  R_RSS_RX=$(time_field "$dir/rx.time" "Maximum resident set size")
  R_CPU_TX=$(cpu_of "$dir/tx.time")
  R_CPU_RX=$(cpu_of "$dir/rx.time")
  return 0
}

# -------------------------------------------- inner mode: a peer in a namespace
start_wormhole_servers() { # inside the namespace
  local dir=$1
  # From $dir: the mailbox keeps its database (relay.sqlite) in the working directory.
  (cd "$dir" && exec timeout "$TIMEOUT_S" twist wormhole-mailbox --port "tcp:$MB_PORT:interface=127.0.0.1" >"$dir/mailbox.log" 2>&1) &
  BG_PIDS+=($!)
  (cd "$dir" && exec timeout "$TIMEOUT_S" twist transitrelay --port "tcp:$TR_PORT:interface=127.0.0.1" >"$dir/transit.log" 2>&1) &
  BG_PIDS+=($!)
  wait_port "$MB_PORT" 30 && wait_port "$TR_PORT" 30 || {
    cat "$dir/mailbox.log" "$dir/transit.log" >&2
    return 1
  }
}

if [[ ${1:-} == --inner ]]; then
  # bench.sh --inner TOOL SRC OUT CODE DIR RESULT_FILE   (run by `unshare --net`)
  shift
  tool=$1 src=$2 out=$3 code=$4 dir=$5 result=$6
  trap 'for p in "${BG_PIDS[@]}"; do kill_tree "$p"; done; wait 2>/dev/null' EXIT
  ip link set lo up || die "cannot bring up lo in the namespace"
  if [[ $tool == wormhole || $tool == wormhole-rs ]]; then
    start_wormhole_servers "$dir" || die "the wormhole mailbox/transit servers did not start"
  fi
  # Peers write their state into $HOME; keep it inside the run's directory
  # (pyenv, if used, still needs its root).
  [[ -d $HOME/.pyenv && -z ${PYENV_ROOT:-} ]] && export PYENV_ROOT="$HOME/.pyenv"
  export HOME="$dir/home" XDG_CONFIG_HOME="$dir/home/.config" XDG_DATA_HOME="$dir/home/.local/share"
  mkdir -p "$XDG_CONFIG_HOME" "$XDG_DATA_HOME"
  # pyenv shims need the real HOME's pyenv root, which PATH already names.
  if run_transfer "$tool" "$src" "$out" "$code" "$dir"; then
    echo "$R_WALL $R_RSS_TX $R_RSS_RX $R_CPU_TX $R_CPU_RX" >"$result"
    exit 0
  fi
  exit 1
fi

# ------------------------------------------------------------------ arguments
RUNS="" SIZE_GIB=1 QUICK=0 INSTALL_PEERS=0 ONLY="big,files,empty,small"
CMDLINE="bash scripts/bench.sh${*:+ $*}"
while (($#)); do
  case $1 in
    --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
    --size-gib) SIZE_GIB=${2:?--size-gib needs a number}; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --install-peers) INSTALL_PEERS=1; shift ;;
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$SELF" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ -z $RUNS ]] && { ((QUICK)) && RUNS=1 || RUNS=3; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $SIZE_GIB =~ ^[1-9][0-9]*$ ]] || die "--size-gib must be a positive integer"
[[ ,$ONLY, =~ ^(,(big|files|empty|small))+,$ ]] || die "--only takes a comma-separated list of big, files, empty, small"
want() { [[ ,$ONLY, == *",$1,"* ]]; }
SCRIPT_START=$(now_ns)

# ------------------------------------------------------------------ cleanup
WORK=""
RELAY_PID=""
cleanup() {
  local p
  for p in "${BG_PIDS[@]}" $RELAY_PID; do
    kill_tree "$p"
  done
  wait 2>/dev/null
  [[ -n $WORK && -d $WORK ]] && rm -rf "$WORK"
  [[ -n ${WORK4:-} && -d ${WORK4:-} ]] && rm -rf "$WORK4"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ tools
as_root() {
  if ((EUID == 0)); then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}
APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || return 1
  if ((APT_UPDATED == 0)); then
    as_root apt-get update -qq >/dev/null 2>&1
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

[[ -x /usr/bin/time ]] || apt_install time || true
[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed (Debian package 'time')"
command -v iperf3 >/dev/null || apt_install iperf3 || note "iperf3 could not be installed: no baseline"
command -v timeout >/dev/null || die "timeout (coreutils) is needed"

if ((INSTALL_PEERS)); then
  if ! command -v wormhole >/dev/null || ! command -v twist >/dev/null; then
    note "installing magic-wormhole and its servers (pip)"
    python3 -m pip install --quiet magic-wormhole magic-wormhole-mailbox-server magic-wormhole-transit-relay >&2 ||
      note "pip could not install magic-wormhole"
    hash -r
  fi
  command -v wormhole-rs >/dev/null || {
    note "installing wormhole-rs (cargo install magic-wormhole-cli; this compiles for a while)"
    cargo install --locked magic-wormhole-cli >&2 || note "cargo could not install wormhole-rs"
  }
  command -v sendme >/dev/null || {
    note "installing sendme (cargo install sendme; this compiles for a while)"
    cargo install --locked sendme >&2 || note "cargo could not install sendme"
  }
  hash -r
fi

# Peers run in a private network namespace.
if ((EUID == 0)); then UNSHARE=(unshare --net); else UNSHARE=(unshare --user --map-root-user --net); fi
NETNS_OK=0
if command -v unshare >/dev/null && command -v ip >/dev/null &&
  "${UNSHARE[@]}" bash -c 'ip link set lo up' >/dev/null 2>&1; then
  NETNS_OK=1
fi
PEERS=()
PEER_NOTES=()
peer_check() { # peer_check TOOL needs...
  local tool=$1 c
  shift
  for c in "$@"; do
    if ! command -v "$c" >/dev/null; then
      PEER_NOTES+=("$tool: not installed (\`$c\` missing; see --install-peers)")
      return
    fi
  done
  if ((NETNS_OK == 0)); then
    PEER_NOTES+=("$tool: skipped, no private network namespace available (unshare --net)")
    return
  fi
  PEERS+=("$tool")
}
peer_check wormhole wormhole twist
peer_check wormhole-rs wormhole-rs twist
peer_check sendme sendme

peer_version() {
  case $1 in
    wormhole) wormhole --version 2>/dev/null | head -n 1 ;;
    wormhole-rs) wormhole-rs --version 2>/dev/null | head -n 1 ;;
    sendme) sendme --version 2>/dev/null | head -n 1 ;;
  esac
}

# ------------------------------------------------------------------ pqdrop binary
if [[ -n ${PQDROP_BIN:-} ]]; then
  BIN=$PQDROP_BIN
else
  note "building pqdrop (cargo build --release --locked -p pqdrop)"
  (cd "$ROOT" && cargo build --release --locked -p pqdrop >&2) || die "cargo build failed"
  BIN="$ROOT/target/release/pqdrop"
fi
GIT_DESC=""
if [[ -z ${PQDROP_BIN:-} ]] && git -C "$ROOT" rev-parse --short HEAD >/dev/null 2>&1; then
  dirty=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | wc -l)
  GIT_DESC="git $(git -C "$ROOT" rev-parse --short HEAD)"
  ((dirty)) && GIT_DESC+=" plus uncommitted changes in $dirty file(s)"
fi
[[ -x $BIN ]] || die "no pqdrop binary at $BIN"
BIN=$(readlink -f "$BIN")
ALT_BIN=""
if [[ -n ${PQDROP_ALT_BIN:-} ]]; then
  [[ -x $PQDROP_ALT_BIN ]] || die "no pqdrop binary at PQDROP_ALT_BIN=$PQDROP_ALT_BIN"
  ALT_BIN=$(readlink -f "$PQDROP_ALT_BIN")
fi
ALT_LABEL=${PQDROP_ALT_LABEL:-$ALT_BIN}

# Keep a user's config (relay = ...) and environment out of the measurements.
unset PQDROP_RELAY PQDROP_CODE
export XDG_CONFIG_HOME
export PQDROP_LAN_BIND=127.0.0.1

# ------------------------------------------------------------------ space
GIB=$((1024 * 1024 * 1024))
avail_bytes() { df -PB1 "$1" 2>/dev/null | awk 'NR == 2 { print $4 }'; }
mem_avail_bytes() { awk '/^MemAvailable:/ { printf "%.0f\n", $2 * 1024 }' /proc/meminfo; }
pick_base() { # pick_base NEED_BYTES -> a directory with room (tmpfs first)
  local need=$1
  if [[ -n ${BENCH_TMP:-} ]]; then
    echo "$BENCH_TMP"
    return 0
  fi
  # tmpfs lives in RAM: also leave 4 GiB of memory to the programs.
  if [[ -d /dev/shm && -w /dev/shm ]] && (($(avail_bytes /dev/shm) > need)) && (($(mem_avail_bytes) > need + 4 * GIB)); then
    echo /dev/shm
  elif (($(avail_bytes /tmp) > need)); then
    echo /tmp
  else
    return 1
  fi
}

BIG=$((SIZE_GIB * GIB))
BIG_LABEL="$SIZE_GIB GiB"
if [[ -n ${BENCH_SIZE_MIB:-} ]]; then # for trying the script out quickly
  [[ $BENCH_SIZE_MIB =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZE_MIB must be a positive integer"
  BIG=$((BENCH_SIZE_MIB * 1024 * 1024))
  BIG_LABEL="$BENCH_SIZE_MIB MiB"
fi
# The big file and one received copy, plus a little for the small tests.
NEED=$((2 * BIG + 256 * 1024 * 1024))
BASE=$(pick_base "$NEED") || die "not enough space for $((NEED / 1024 / 1024)) MiB in /dev/shm or /tmp"
WORK=$(mktemp -d "$BASE/pqdrop-bench.XXXXXX")
export XDG_CONFIG_HOME="$WORK/xdg"
mkdir -p "$XDG_CONFIG_HOME" "$WORK/src" "$WORK/logs"
FSKIND=$(df -PT "$WORK" | awk 'NR == 2 { print $2 }')

gen_random() { # gen_random FILE BYTES: incompressible data, fast
  if command -v openssl >/dev/null; then
    openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$RANDOM$RANDOM$$" </dev/zero 2>/dev/null | head -c "$2" >"$1"
  else
    head -c "$2" /dev/urandom >"$1"
  fi
  [[ $(stat -c %s "$1") == "$2" ]] || die "could not write $2 bytes to $1"
}

note "generating test data in $WORK ($FSKIND)"
BIGNAME="random-${BIG_LABEL// /}.bin"
want big && gen_random "$WORK/src/$BIGNAME" "$BIG"
printf 'x' >"$WORK/src/one-byte.txt"
mkdir -p "$WORK/src/files-5000x4KiB"
head -c $((5000 * 4096)) /dev/urandom | (cd "$WORK/src/files-5000x4KiB" && split -b 4096 -a 4 -d - f)
(($(find "$WORK/src/files-5000x4KiB" -type f | wc -l) == 5000)) || die "could not create 5,000 files"
EMPTY_DIR="$WORK/src/empty-200x1000"
if want empty; then
  python3 - "$EMPTY_DIR" <<'PY' || die "could not create 200,000 empty files"
import os, sys
root = sys.argv[1]
for d in range(200):
    p = os.path.join(root, f"d{d:03}")
    os.makedirs(p)
    for f in range(1000):
        open(os.path.join(p, f"e{f:04}"), "wb").close()
PY
fi

# In a VM whose memory the host hands out lazily, the first write to pages
# the guest never touched is several times slower than later writes (here:
# about 0.5 GB/s instead of 3 GB/s). On tmpfs, touch as much memory as a
# transfer will receive into before timing, so the first run is not an outlier.
prefault() { # prefault DIR BYTES
  [[ $(df -PT "$1" | awk 'NR == 2 { print $2 }') == tmpfs ]] || return 0
  dd if=/dev/zero of="$1/.prefault" bs=1M count=$(($2 / 1024 / 1024)) status=none 2>/dev/null
  rm -f "$1/.prefault"
}
want big && prefault "$WORK" "$BIG"

tree_digest() { # one SHA-256 over every file's relative path and SHA-256
  (cd "$1" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' -r sha256sum) | sha256sum | awk '{ print $1 }'
}
declare -A TREE_DIGESTS
TREE_DIGESTS[files-5000x4KiB]=$(tree_digest "$WORK/src/files-5000x4KiB")
want empty && TREE_DIGESTS[empty-200x1000]=$(tree_digest "$EMPTY_DIR")

verify() { # verify SRC RECEIVED_PATH LABEL
  local src=$1 got=$2 label=$3
  if [[ -d $src ]]; then
    [[ -d $got ]] || die "$label: MISMATCH: $got is not a folder"
    [[ $(tree_digest "$got") == "${TREE_DIGESTS[$(basename "$src")]}" ]] || die "$label: MISMATCH: the received folder differs from the source"
  else
    [[ -f $got ]] || die "$label: MISMATCH: $got was not received"
    cmp -s "$src" "$got" || die "$label: MISMATCH: $got differs from $src"
  fi
}

# ------------------------------------------------------------------ helpers
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -n 1; }

free_tcp_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || {
      echo "$p"
      return
    }
  done
}
free_udp_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    if ! command -v ss >/dev/null || [[ -z $(ss -Hlun "sport = :$p" 2>/dev/null) ]]; then
      echo "$p"
      return
    fi
  done
}

NAMEPLATE=$((100 + RANDOM % 8000))
next_code() {
  NAMEPLATE=$((NAMEPLATE + 1))
  CODE="$NAMEPLATE-$WORDS"
}

TAR_NOTE=0
declare -A WALLS RSS_TX RSS_RX CPU_TX CPU_RX BYTES
# measure KEY TOOL SRC [RUNS]: RUNS transfers of SRC, each verified; results under KEY.
measure() {
  local key=$1 tool=$2 src=$3 runs=${4:-$RUNS} r out dir name
  name=$(basename "$src")
  for ((r = 1; r <= runs; r++)); do
    next_code
    out="$(dirname "$(dirname "$src")")/recv-$tool"
    rm -rf "$out"
    mkdir -p "$out"
    dir="$WORK/logs/$key/$tool/run$r"
    mkdir -p "$dir"
    note "$key: $tool run $r/$runs"
    if [[ $tool == pqdrop-* ]]; then
      export PQDROP_LAN_PORT
      PQDROP_LAN_PORT=$(free_udp_port)
      run_transfer "$tool" "$src" "$out" "$CODE" "$dir" || die "$key: $tool run $r failed (logs were in $dir)"
    else
      rm -f "$dir/result"
      timeout $((TIMEOUT_S + 60)) "${UNSHARE[@]}" bash "$SELF" --inner "$tool" "$src" "$out" "$CODE" "$dir" "$dir/result" ||
        { note "$key: $tool run $r failed; leaving $tool out of this test"; rm -rf "$out"; return 1; }
      read -r R_WALL R_RSS_TX R_RSS_RX R_CPU_TX R_CPU_RX <"$dir/result"
    fi
    if [[ -d $src && ! -e $out/$name && -f $out/$name.tar ]]; then
      # wormhole-rs saves a folder as NAME.tar; unpack it (untimed) to verify.
      mkdir -p "$out/.untar"
      tar -xf "$out/$name.tar" -C "$out/.untar" || die "$key/$tool run $r: MISMATCH: cannot unpack $out/$name.tar"
      verify "$src" "$out/.untar/$name" "$key/$tool run $r"
      TAR_NOTE=1
    else
      verify "$src" "$out/$name" "$key/$tool run $r"
    fi
    rm -rf "$out"
    WALLS[$key/$tool]+="$R_WALL "
    RSS_TX[$key/$tool]+="$R_RSS_TX "
    RSS_RX[$key/$tool]+="$R_RSS_RX "
    CPU_TX[$key/$tool]+="$R_CPU_TX "
    CPU_RX[$key/$tool]+="$R_CPU_RX "
  done
}

# ------------------------------------------------------------------ baseline
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
IPERF_MBS=()
listening() { command -v ss >/dev/null && [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }
wait_listening() { # wait_listening PORT: until an iperf3 server listens (5 s at most; 1 s without ss)
  local i
  for ((i = 0; i < 100; i++)); do
    listening "$1" && return
    command -v ss >/dev/null || { sleep 1; return; }
    sleep 0.05
  done
}
# received_bps: the receiver's bits per second from iperf3 -J on stdin.
received_bps() { awk '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { gsub(/[^0-9.eE+]/, "", $2); print $2; exit }'; }
if command -v iperf3 >/dev/null; then
  for ((r = 1; r <= RUNS; r++)); do
    port=$(free_tcp_port)
    note "baseline: iperf3 run $r/$RUNS"
    timeout 60 iperf3 -s -B 127.0.0.1 -p "$port" >"$WORK/logs/iperf3-server.log" 2>&1 &
    srv=$!
    BG_PIDS+=("$srv")
    wait_listening "$port"
    bps=$(timeout 60 iperf3 -c 127.0.0.1 -p "$port" -t 5 -J 2>/dev/null |
      received_bps)
    kill_tree "$srv"
    wait "$srv" 2>/dev/null
    [[ -n $bps ]] || die "iperf3 gave no result"
    IPERF_MBS+=("$(awk -v b="$bps" 'BEGIN { printf "%.1f", b / 8 / 1e6 }')")
  done
fi
IPERF=$(median "${IPERF_MBS[@]}")

# A plain file-to-file copy over loopback TCP: iperf3 -F on both ends.
IPERF_F_MBS=()
if want big && command -v iperf3 >/dev/null; then
  for ((r = 1; r <= RUNS; r++)); do
    port=$(free_tcp_port)
    sink="$WORK/iperf-F.out"
    rm -f "$sink"
    note "baseline: iperf3 -F file-to-file run $r/$RUNS"
    timeout 300 iperf3 -s -1 -B 127.0.0.1 -p "$port" -F "$sink" >"$WORK/logs/iperf3-F-server.log" 2>&1 &
    srv=$!
    BG_PIDS+=("$srv")
    wait_listening "$port"
    bps=$(timeout 300 iperf3 -c 127.0.0.1 -p "$port" -F "$WORK/src/$BIGNAME" -n "$BIG" -J 2>/dev/null |
      received_bps)
    wait "$srv" 2>/dev/null
    [[ -n $bps ]] || die "iperf3 -F gave no result"
    # iperf3's server stops at the end of the test, a little before the last
    # bytes in flight reach the file; its rate counts what it received. What
    # it wrote must be the source's first bytes.
    # Some iperf3 builds also write the whole last buffer, past the end of
    # the source: compare what both have.
    got=$(stat -c %s "$sink" 2>/dev/null || echo 0)
    ((got * 10 >= BIG * 9)) || die "iperf3 -F wrote only $got of $BIG bytes"
    n=$((got < BIG ? got : BIG))
    if ! cmp -s -n "$n" "$sink" "$WORK/src/$BIGNAME"; then
      # A baseline that did not copy faithfully is not a baseline: leave
      # this run out (and say so) rather than stop the whole benchmark.
      note "iperf3 -F run $r: the first $n bytes of its copy differ from the source (it wrote $got); run left out"
      rm -f "$sink"
      continue
    fi
    rm -f "$sink"
    IPERF_F_MBS+=("$(awk -v b="$bps" 'BEGIN { printf "%.1f", b / 8 / 1e6 }')")
  done
fi
IPERF_F=$(median "${IPERF_F_MBS[@]}")

# ------------------------------------------------------------------ pqdrop
RELAY_PORT=$(free_tcp_port)
/usr/bin/time -v -o "$WORK/logs/relay.time" timeout 7200 "$BIN" relay --listen "127.0.0.1:$RELAY_PORT" >"$WORK/logs/relay.log" 2>&1 &
RELAY_PID=$!
wait_for 'listening on' 30 "$RELAY_PID" "$WORK/logs/relay.log" || die "the relay did not start: $(cat "$WORK/logs/relay.log")"

SMALL_KEY="1-byte"
FILES_KEY="5000x4KiB"
EMPTY_KEY="200000x0B"
BIG_KEY="${BIG_LABEL// /}"
KEYS=()
want big && KEYS+=("$BIG_KEY")
want files && KEYS+=("$FILES_KEY")
want empty && KEYS+=("$EMPTY_KEY")
want small && KEYS+=("$SMALL_KEY")
src_of() {
  case $1 in
    "$SMALL_KEY") echo "$WORK/src/one-byte.txt" ;;
    "$FILES_KEY") echo "$WORK/src/files-5000x4KiB" ;;
    "$EMPTY_KEY") echo "$EMPTY_DIR" ;;
    *) echo "$WORK/src/$BIGNAME" ;;
  esac
}

for key in "${KEYS[@]}"; do
  measure "$key" pqdrop-lan "$(src_of "$key")"
  [[ $key == "$BIG_KEY" ]] && measure "$key" pqdrop-relay "$(src_of "$key")"
  [[ -n $ALT_BIN ]] && measure "$key" pqdrop-alt "$(src_of "$key")"
done
BYTES[$SMALL_KEY]=1
BYTES[$FILES_KEY]=$((5000 * 4096))
BYTES[$EMPTY_KEY]=0
BYTES[$BIG_KEY]=$BIG

# ------------------------------------------------------------------ local floor for folders
# tar cf - DIR | tar xf - -C OUT on the same file system: what any tool that
# reads and writes the tree costs, with no network and no crypto.
declare -A FLOOR=()
for key in "$FILES_KEY" "$EMPTY_KEY"; do
  want "$([[ $key == "$FILES_KEY" ]] && echo files || echo empty)" || continue
  src=$(src_of "$key")
  for ((r = 1; r <= RUNS; r++)); do
    out="$WORK/tar-out"
    rm -rf "$out"
    mkdir -p "$out"
    note "$key: tar floor run $r/$RUNS"
    start=$(now_ns)
    tar cf - -C "$(dirname "$src")" "$(basename "$src")" | tar xf - -C "$out" || die "tar failed"
    end=$(now_ns)
    verify "$src" "$out/$(basename "$src")" "$key/tar run $r"
    FLOOR[$key]+="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f", (b - a) / 1e9 }') "
    rm -rf "$out"
  done
done

# ------------------------------------------------------------------ peers
PEERS_RAN=()
for p in "${PEERS[@]}"; do
  ok=1
  for key in "${KEYS[@]}"; do
    # 200,000 files are left to pqdrop and the tar floor.
    [[ $key == "$EMPTY_KEY" ]] && continue
    src=$(src_of "$key")
    measure "$key" "$p" "$src" || { PEER_NOTES+=("$p: failed on $key (see the script's messages)"); ok=0; }
  done
  ((ok)) && PEERS_RAN+=("$p")
  [[ -n $(peer_version "$p") ]] && PEER_NOTES+=("$p: $(peer_version "$p")")
done

# ------------------------------------------------------------------ 4 GiB memory test
FOUR_NOTE=""
if ((QUICK)); then
  FOUR_NOTE="4 GiB test skipped (--quick)"
elif ! want big; then
  FOUR_NOTE="4 GiB test skipped (--only without big)"
else
  rm -rf "$WORK/src/$BIGNAME"
  NEED4=$((8 * GIB + 256 * 1024 * 1024))
  if BASE4=$(pick_base "$NEED4"); then
    WORK4=$(mktemp -d "$BASE4/pqdrop-bench4.XXXXXX")
    mkdir -p "$WORK4/src"
    note "generating 4 GiB in $WORK4"
    gen_random "$WORK4/src/random-4GiB.bin" $((4 * GIB))
    FS4=$(df -PT "$WORK4" | awk 'NR == 2 { print $2 }')
    prefault "$WORK4" $((4 * GIB))
    measure "4GiB" pqdrop-lan "$WORK4/src/random-4GiB.bin"
    BYTES[4GiB]=$((4 * GIB))
    rm -rf "$WORK4"
    [[ $FS4 != "$FSKIND" ]] && FOUR_NOTE="the 4 GiB test ran on $FS4 (not enough room on $FSKIND)"
  else
    FOUR_NOTE="4 GiB test skipped: not enough room for 8 GiB in /dev/shm (with 4 GiB of RAM to spare) or /tmp"
  fi
fi

stop_timed "$RELAY_PID"
RELAY_RSS=$(time_field "$WORK/logs/relay.time" "Maximum resident set size")
RELAY_CPU=$(cpu_of "$WORK/logs/relay.time")
RELAY_PID=""

# ------------------------------------------------------------------ report
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
fmt_time() { awk -v t="$1" 'BEGIN { if (t < 1) printf "%.0f ms", t * 1000; else printf "%.2f s", t }'; }
row() { # row KEY TOOL LABEL
  local key=$1 tool=$2 label=$3 w mbs ratio vs rsstx rssrx cputx cpurx
  # shellcheck disable=SC2086
  w=$(median ${WALLS[$key/$tool]})
  mbs=$(awk -v b="${BYTES[$key]}" -v t="$w" 'BEGIN { printf "%.1f", b / t / 1e6 }')
  ratio="–"
  if [[ -n $IPERF && $key != "$SMALL_KEY" ]]; then
    ratio=$(awk -v a="$mbs" -v b="$IPERF" 'BEGIN { printf "%.0f %%", 100 * a / b }')
  fi
  vs="–"
  if [[ $tool != pqdrop-lan && $tool != pqdrop-relay && -n ${WALLS[$key/pqdrop-lan]:-} ]]; then
    # shellcheck disable=SC2086
    vs=$(awk -v p="$(median ${WALLS[$key/pqdrop-lan]})" -v t="$w" 'BEGIN { printf "%.2f×", t / p }')
  fi
  # shellcheck disable=SC2086
  rsstx=$(mib "$(maxof ${RSS_TX[$key/$tool]})")
  # shellcheck disable=SC2086
  rssrx=$(mib "$(maxof ${RSS_RX[$key/$tool]})")
  # shellcheck disable=SC2086
  cputx=$(median ${CPU_TX[$key/$tool]})
  # shellcheck disable=SC2086
  cpurx=$(median ${CPU_RX[$key/$tool]})
  local pct
  pct=$(awk -v a="$cputx" -v b="$cpurx" -v t="$w" 'BEGIN { printf "%.0f %% / %.0f %%", 100 * a / t, 100 * b / t }')
  local runs_n
  # shellcheck disable=SC2086
  runs_n=$(printf '%s\n' ${WALLS[$key/$tool]} | wc -l)
  if [[ $key == "$SMALL_KEY" ]]; then mbs="–"; fi
  echo "| $label | $tool | $(fmt_time "$w") | $mbs | $ratio | $vs | $rsstx / $rssrx | $cputx / $cpurx ($pct) | $runs_n |"
}

host_cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
aes=$(grep -qw aes /proc/cpuinfo && echo yes || echo no)
echo
echo "## pqdrop benchmark"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- machine: $(nproc) CPU(s), $host_cpu (AES-NI: $aes), $(awk '/^MemTotal:/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
echo "- kernel: $(uname -sr)"
echo "- load average (1, 5, 15 min) when measuring started: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- command: \`$CMDLINE\`"
echo "- pqdrop: $BIN ($("$BIN" --version 2>/dev/null | head -n 1))"
[[ -n $GIT_DESC ]] && echo "- source: $GIT_DESC"
echo "- data: $FSKIND ($BASE), received into the same file system (on tmpfs, as much memory as a transfer receives is touched once before timing); medians of $RUNS run(s); every transfer verified (cmp / SHA-256 of the tree)"
echo
echo "| test | tool | time (median) | MB/s | ÷ iperf3 | tool time ÷ pqdrop LAN time | peak RSS send / recv (MiB) | CPU s send / recv (% of wall) | runs |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
if [[ -n $IPERF ]]; then
  echo "| loopback TCP baseline | iperf3 -t 5, 1 stream | – | $IPERF | 100 % | – | – | – | ${#IPERF_MBS[@]} |"
  [[ -n $IPERF_F ]] && echo "| file-to-file baseline | iperf3 -F on both ends, 1 stream | – | $IPERF_F | $(awk -v a="$IPERF_F" -v b="$IPERF" 'BEGIN { printf "%.0f %%", 100 * a / b }') | – | – | – | ${#IPERF_F_MBS[@]} |"
else
  echo "| loopback TCP baseline | iperf3 | not installed | | | | | | |"
fi
for key in "${KEYS[@]}"; do
  case $key in
    "$BIG_KEY") label="$BIG_LABEL random file" ;;
    "$FILES_KEY") label="5,000 × 4 KiB files (folder)" ;;
    "$EMPTY_KEY") label="200,000 empty files in 200 folders" ;;
    *) label="1-byte file" ;;
  esac
  for tool in pqdrop-lan pqdrop-relay pqdrop-alt "${PEERS[@]}"; do
    [[ -n ${WALLS[$key/$tool]:-} ]] && row "$key" "$tool" "$label"
  done
done
[[ -n ${WALLS[4GiB/pqdrop-lan]:-} ]] && row 4GiB pqdrop-lan "4 GiB random file"
echo
if [[ -n $IPERF_F && -n ${WALLS[$BIG_KEY/pqdrop-lan]:-} ]]; then
  echo "Against the file-to-file copy (iperf3 -F, $IPERF_F MB/s), $BIG_LABEL:"
  echo
  for tool in pqdrop-lan pqdrop-relay pqdrop-alt; do
    [[ -n ${WALLS[$BIG_KEY/$tool]:-} ]] || continue
    # shellcheck disable=SC2086
    echo "- $tool: $(awk -v b="$BIG" -v t="$(median ${WALLS[$BIG_KEY/$tool]})" -v f="$IPERF_F" 'BEGIN { printf "%.0f %%", 100 * b / t / 1e6 / f }')"
  done
  echo
fi
if ((${#FLOOR[@]})); then
  echo "Against the local floor \`tar cf - DIR | tar xf - -C OUT\` (same file system, medians):"
  echo
  for key in "$FILES_KEY" "$EMPTY_KEY"; do
    [[ -n ${FLOOR[$key]:-} ]] || continue
    # shellcheck disable=SC2086
    f=$(median ${FLOOR[$key]})
    line="- $key: tar $(fmt_time "$f")"
    for tool in pqdrop-lan pqdrop-alt; do
      # shellcheck disable=SC2086
      [[ -n ${WALLS[$key/$tool]:-} ]] && line+="; $tool $(fmt_time "$(median ${WALLS[$key/$tool]})") = $(awk -v t="$(median ${WALLS[$key/$tool]})" -v f="$f" 'BEGIN { printf "%.2f×", t / f }') the floor"
    done
    echo "$line"
  done
  echo
fi
echo "Per-run receiver times (s):"
echo
for k in "${!WALLS[@]}"; do echo "- $k: ${WALLS[$k]% }"; done | LC_ALL=C sort
((${#IPERF_MBS[@]})) && echo "- iperf3 MB/s: ${IPERF_MBS[*]}"
((${#IPERF_F_MBS[@]})) && echo "- iperf3 -F MB/s: ${IPERF_F_MBS[*]}"
for k in "${!FLOOR[@]}"; do echo "- tar floor $k: ${FLOOR[$k]% }"; done
echo
echo "Notes:"
echo "- time: the receiver's wall time from launch to exit (the sender was started first and had printed its waiting line)."
echo "- CPU s: user + system seconds of each process (/usr/bin/time -v); the % is of the receiver's wall time. The sender's"
echo "  figure includes its work before the receiver started (reading the folder, hashing for tools that do it up front)."
echo "- pqdrop-relay: through \`pqdrop relay --listen 127.0.0.1:$RELAY_PORT\`; the relay process over the whole script:"
echo "  peak RSS $(mib "${RELAY_RSS:-0}") MiB, CPU $RELAY_CPU s."
echo "- peers run inside \`unshare --net\` (loopback only) with their own servers there (magic-wormhole mailbox + transit relay)."
for n in "${PEER_NOTES[@]}"; do echo "- $n"; done
[[ -n $ALT_BIN ]] && echo "- pqdrop-alt: $ALT_LABEL ($("$ALT_BIN" --version 2>/dev/null | head -n 1)), LAN mode, measured in the same run."
((TAR_NOTE)) && echo "- wormhole-rs saves a received folder as NAME.tar; its time does not include unpacking it (done afterwards, untimed, to verify)."
[[ -n $FOUR_NOTE ]] && echo "- $FOUR_NOTE"
echo "- the script took $(awk -v a="$SCRIPT_START" -v b="$(now_ns)" 'BEGIN { printf "%.0f", (b - a) / 1e9 }') s."
