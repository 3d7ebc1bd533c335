#!/usr/bin/env bash
# Smoke-runs every cargo-fuzz target of fuzz/ for a bounded time.
#
#   scripts/fuzz-smoke.sh                  # every target, FUZZ_SECONDS (20) each
#   FUZZ_SECONDS=60 scripts/fuzz-smoke.sh handshake record
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 20; 4 targets => 80 s of fuzzing
#                   plus a one-off build of about 3 minutes on 2 cores)
#   FUZZ_SANITIZER  address (default) or none (faster, no ASan)
#   FUZZ_NO_INSTALL set to 1 to skip instead of running `cargo install cargo-fuzz`
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer, sancov). The machine has
# one stable toolchain and no other can be fetched, so the build runs with
# RUSTC_BOOTSTRAP=1, which lets stable rustc accept them (on a nightly toolchain
# it changes nothing).
#
# Exit status: 0 when every target ran without a crash, or when cargo-fuzz is
# unavailable (the run is skipped with a message); 1 when any target crashed,
# timed out, ran out of memory or failed to build. A crashing input is kept in
# fuzz/artifacts/<target>/ and the script prints how to reproduce it.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
SANITIZER=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    if [[ ${FUZZ_NO_INSTALL:-0} == 1 ]]; then
        echo "fuzz-smoke: SKIPPED: cargo-fuzz is not installed (FUZZ_NO_INSTALL=1)"
        exit 0
    fi
    echo "fuzz-smoke: installing cargo-fuzz (cargo install cargo-fuzz --locked) ..."
    if ! cargo install cargo-fuzz --locked >"${TMPDIR:-/tmp}/fuzz-smoke-install.log" 2>&1; then
        tail -n 20 "${TMPDIR:-/tmp}/fuzz-smoke-install.log"
        echo "fuzz-smoke: SKIPPED: cargo-fuzz could not be installed (see above); no fuzz target was run"
        exit 0
    fi
fi
echo "fuzz-smoke: $(cargo fuzz --version), $(rustc --version), sanitizer=$SANITIZER, ${SECONDS_PER_TARGET}s per target"

cd "$ROOT/fuzz" || exit 1
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "fuzz-smoke: no fuzz targets found" >&2
    exit 1
fi

# Build first, so the time budget below is spent fuzzing.
for t in "${targets[@]}"; do
    if ! cargo fuzz build -s "$SANITIZER" "$t" >"${TMPDIR:-/tmp}/fuzz-smoke-build.log" 2>&1; then
        tail -n 40 "${TMPDIR:-/tmp}/fuzz-smoke-build.log"
        echo "fuzz-smoke: 0 passed, ${#targets[@]} failed (target $t does not build)"
        exit 1
    fi
done

LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-smoke.XXXXXX")
passed=0
failed=0
for t in "${targets[@]}"; do
    log="$LOGDIR/$t.log"
    mkdir -p "corpus/$t"
    start=$(date +%s)
    # -timeout: one input taking > 10 s is a hang; -rss_limit_mb: leaks/explosions.
    cargo fuzz run -s "$SANITIZER" "$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    elapsed=$(($(date +%s) - start))
    stats=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
    if [[ $rc -eq 0 ]]; then
        passed=$((passed + 1))
        echo "fuzz-smoke: $t ok in ${elapsed}s: ${stats:-$(tail -n 1 "$log")}"
    else
        failed=$((failed + 1))
        echo "fuzz-smoke: $t FAILED (exit $rc) after ${elapsed}s; last lines of $log:"
        grep -E "panicked|ERROR|SUMMARY|deadly signal|Test unit written|artifact_prefix" "$log" | head -n 20
        tail -n 40 "$log"
        artifact=$(grep -oE 'fuzz/artifacts/[^ ]+|artifacts/[^ ]+' "$log" | tail -n 1)
        if [[ -n $artifact ]]; then
            echo "fuzz-smoke: reproduce with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s $SANITIZER $t ${artifact#fuzz/}"
        fi
    fi
done
echo "fuzz-smoke: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
