#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every test: the in-process suites ($BUILD/tests/run), then each tests/e2e/test_*.sh
# script (exit 0 = pass, 77 = skipped, anything else = fail). Ends with "N passed, N failed".
# A script still running after E2E_TIMEOUT seconds (default 1200) is stopped (SIGTERM, so its
# EXIT trap stops what it started) and fails: one hung script cannot hang the whole run.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
E2E_TIMEOUT=${E2E_TIMEOUT:-1200}
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
        timeout --kill-after=30 "$E2E_TIMEOUT" bash "$t" >"$log" 2>&1
        rc=$?
        dur=$(( $(date +%s) - start ))
        [ $rc -eq 124 ] && echo "(timed out after $E2E_TIMEOUT s)" >>"$log"
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

# The Python binding's tests (python/tests, pytest): each test counts as one. Needs
# $BUILD/libktun.so (`make test` builds it) and python3-cffi/python3-pytest. In a sanitizer
# build the interpreter, which is not instrumented, gets the ASan and UBSan runtimes preloaded
# (leak detection off: the interpreter keeps its own memory at exit).
if [ $# -eq 0 ]; then
    PY=${PYTHON:-python3}
    [ -z "${PYTHON:-}" ] && [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
    log="$BUILD/pytest.log"
    preload=
    if [ "$BUILD" != build ]; then
        for rt in libasan.so libubsan.so; do
            f=$(${CC:-cc} -print-file-name=$rt 2>/dev/null)
            [ -f "$f" ] && preload="$preload $f"
        done
    fi
    if [ ! -f "$BUILD/libktun.so" ]; then
        skipped=$((skipped + 1))
        echo "skip python/tests: $BUILD/libktun.so not built (make libktun.so)"
    elif ! "$PY" -c 'import cffi, pytest' 2>/dev/null; then
        skipped=$((skipped + 1))
        echo "skip python/tests: $PY lacks cffi or pytest (scripts/deps.sh installs them)"
    elif [ "$BUILD" != build ] && [ -z "$preload" ]; then
        skipped=$((skipped + 1))
        echo "skip python/tests: sanitizer build and no ASan runtime to preload into $PY"
    else
        start=$(date +%s)
        env ${preload:+LD_PRELOAD="${preload# }" ASAN_OPTIONS=detect_leaks=0 KTUN_SANITIZED=1} \
            KTUN_LIBRARY="$PWD/$BUILD/libktun.so" PYTHONDONTWRITEBYTECODE=1 \
            timeout 600 "$PY" -m pytest -q -p no:cacheprovider python/tests >"$log" 2>&1
        rc=$?
        dur=$(( $(date +%s) - start ))
        summary=$(grep -E '^=*.*[0-9]+ (passed|failed|error)' "$log" | tail -n 1)
        p=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+'); p=${p:-0}
        f=$(grep -oE '[0-9]+ failed' <<<"$summary" | grep -oE '[0-9]+'); f=${f:-0}
        e=$(grep -oE '[0-9]+ errors?' <<<"$summary" | grep -oE '[0-9]+'); e=${e:-0}
        passed=$((passed + p))
        failed=$((failed + f + e))
        if [ $rc -ne 0 ] && [ $((f + e)) -eq 0 ]; then
            failed=$((failed + 1))   # pytest itself failed (crash, timeout, collection)
        fi
        if [ $rc -eq 0 ]; then
            echo "ok   python/tests: $p passed (${dur} s)"
        else
            echo "FAIL python/tests (exit $rc, ${dur} s), last lines of $log:"
            tail -n 30 "$log" | sed 's/^/    /'
        fi
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
