#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fuzzing helper for the libFuzzer harnesses of tests/fuzz/ (built by `make fuzz` into
# build-fuzz/fuzz/<target>).
#
#   scripts/fuzz.sh seed [TARGET...]        regenerate tests/fuzz/corpus/*/seed-* (python3)
#   scripts/fuzz.sh smoke [TARGET...]       CI: replay each corpus, then fuzz FUZZ_SECONDS each
#   scripts/fuzz.sh run TARGET [SECONDS]    long run into build-fuzz/corpus/TARGET (kept)
#   scripts/fuzz.sh min TARGET CRASH        minimise a crashing input (writes CRASH.min)
#   scripts/fuzz.sh replay TARGET [FILE...] rerun the corpus (or files) with the fuzz build
#
# New inputs found by smoke runs go to a scratch directory, never into tests/fuzz/corpus.
# Crashes are written to build-fuzz/artifacts/. Exit status is non-zero if any harness fails.
set -u
cd "$(dirname "$0")/.."
FB=build-fuzz
SECONDS_EACH=${FUZZ_SECONDS:-25}
COMMON=(-rss_limit_mb=2048 -timeout=20 -print_final_stats=1)

targets() {
    if [ $# -gt 0 ]; then
        echo "$@"
    else
        for f in tests/fuzz/fuzz_*.c; do
            t=${f#tests/fuzz/fuzz_}
            echo -n "${t%.c} "
        done
    fi
}

need_bin() {
    [ -x "$FB/fuzz/$1" ] || { echo "fuzz: missing $FB/fuzz/$1 (run make fuzz)"; exit 1; }
}

cmd=${1:-}
shift || true
case "$cmd" in
seed)
    exec python3 tests/fuzz/seed.py "$@"
    ;;
smoke)
    failed=0
    mkdir -p "$FB/artifacts"
    for t in $(targets "$@"); do
        need_bin "$t"
        corpus=tests/fuzz/corpus/$t
        scratch=$(mktemp -d)
        log=$FB/smoke-$t.log
        start=$(date +%s)
        # -runs=0 executes every corpus input once; then a bounded fuzzing run.
        if "$FB/fuzz/$t" "${COMMON[@]}" -runs=0 -artifact_prefix="$FB/artifacts/$t-" \
               "$corpus" >"$log" 2>&1 &&
           "$FB/fuzz/$t" "${COMMON[@]}" -max_total_time="$SECONDS_EACH" \
               -artifact_prefix="$FB/artifacts/$t-" "$scratch" "$corpus" >>"$log" 2>&1; then
            runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1 |
                   grep -o '[0-9]*$')
            echo "ok   fuzz $t ($(( $(date +%s) - start )) s, ${runs:-?} runs)"
        else
            failed=$((failed + 1))
            echo "FAIL fuzz $t, last lines of $log:"
            grep -v '^#' "$log" | tail -n 40 | sed 's/^/    /'
        fi
        rm -rf "$scratch"
    done
    [ "$failed" -eq 0 ]
    ;;
run)
    t=${1:?usage: fuzz.sh run TARGET [SECONDS]}
    secs=${2:-1800}
    need_bin "$t"
    mkdir -p "$FB/corpus/$t" "$FB/artifacts"
    exec "$FB/fuzz/$t" "${COMMON[@]}" -max_total_time="$secs" \
        -artifact_prefix="$FB/artifacts/$t-" "$FB/corpus/$t" "tests/fuzz/corpus/$t"
    ;;
min)
    t=${1:?usage: fuzz.sh min TARGET CRASH}
    crash=${2:?usage: fuzz.sh min TARGET CRASH}
    need_bin "$t"
    exec "$FB/fuzz/$t" -minimize_crash=1 -runs=100000 -exact_artifact_path="$crash.min" "$crash"
    ;;
replay)
    t=${1:?usage: fuzz.sh replay TARGET [FILE...]}
    shift
    need_bin "$t"
    if [ $# -eq 0 ]; then
        set -- "tests/fuzz/corpus/$t"
    fi
    exec "$FB/fuzz/$t" "${COMMON[@]}" -runs=0 "$@"
    ;;
*)
    sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
