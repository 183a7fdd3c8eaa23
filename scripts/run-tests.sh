#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every test: the in-process suites ($BUILD/tests/run), then each tests/e2e/test_*.sh
# script (exit 0 = pass, 77 = skipped, anything else = fail). Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
passed=0 failed=0 skipped=0

out=$(mktemp)
"$BUILD/tests/run" "$@" | tee "$out"
last=$(tail -n 1 "$out")
rm -f "$out"
if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=${BASH_REMATCH[1]}
    failed=${BASH_REMATCH[2]}
else
    echo "FAIL unit runner did not finish: $last"
    failed=1
fi

if [ $# -eq 0 ]; then
    for t in tests/e2e/test_*.sh; do
        [ -e "$t" ] || continue
        start=$(date +%s)
        log="$BUILD/e2e-$(basename "$t" .sh).log"
        mkdir -p "$BUILD"
        bash "$t" >"$log" 2>&1
        rc=$?
        dur=$(( $(date +%s) - start ))
        if [ $rc -eq 0 ]; then
            passed=$((passed + 1)); echo "ok   $t (${dur} s)"
        elif [ $rc -eq 77 ]; then
            skipped=$((skipped + 1)); echo "skip $t: $(tail -n 1 "$log")"
        else
            failed=$((failed + 1)); echo "FAIL $t (exit $rc, ${dur} s), last lines of $log:"
            tail -n 30 "$log" | sed 's/^/    /'
        fi
    done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
