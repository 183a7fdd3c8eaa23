#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Replays every fuzz corpus (tests/fuzz/corpus/<target>/) through its harness, built without
# libFuzzer as $BUILD/fuzz-replay/<target> (gcc; ASan/UBSan under SANITIZE=). Fails on any crash,
# invariant failure, sanitizer report or leak. A few seconds.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
fail=0
n=0
for src in tests/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    t=${src#tests/fuzz/fuzz_}
    t=${t%.c}
    bin=$BUILD/fuzz-replay/$t
    corpus=tests/fuzz/corpus/$t
    if [ ! -x "$bin" ]; then
        echo "FAIL $t: missing $bin (make builds it with the tests)"
        fail=1
        continue
    fi
    if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
        echo "FAIL $t: empty corpus $corpus"
        fail=1
        continue
    fi
    out=$("$bin" "$corpus" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || ! grep -q '^replayed [1-9][0-9]* inputs$' <<<"$out"; then
        echo "FAIL $t (exit $rc):"
        tail -n 40 <<<"$out" | sed 's/^/    /'
        fail=1
        continue
    fi
    echo "ok   $t: $(tail -n 1 <<<"$out")"
    n=$((n + 1))
done
[ $n -gt 0 ] || { echo "FAIL no fuzz harness replayed"; exit 1; }
exit $fail
