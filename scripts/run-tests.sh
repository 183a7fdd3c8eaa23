#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every test: the in-process suites ($BUILD/tests/run), each tests/e2e/test_*.sh script
# (exit 0 = pass, 77 = skipped, anything else = fail) and the Python binding's tests. Ends with
# "N passed, N failed". With arguments (a filter), only the in-process suites, filtered.
#
# Most end-to-end scripts spend their time waiting (timers, keepalives, transfers paced by the
# tunnel), so they run side by side, E2E_JOBS at a time (default 3 per CPU), the in-process
# suites and the Python tests among them. Each running script gets its own slice of ports
# (E2E_SLOT of E2E_SLOTS, see tests/e2e/ports.sh); everything else a script uses (temp dir,
# network namespace and interface names) is its own already. The longest ones start first,
# by the durations of the last run ($BUILD/test-durations, else build/test-durations; scripts
# not listed there start before all others). Each verdict is printed as its job ends, with the
# job's wall time; the log of each script is $BUILD/e2e-NAME.log.
# A script still running after E2E_TIMEOUT seconds (default 1200) is stopped (SIGTERM, so its
# EXIT trap stops what it started) and fails: one hung script cannot hang the whole run.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
E2E_TIMEOUT=${E2E_TIMEOUT:-1200}
E2E_JOBS=${E2E_JOBS:-$(( $(nproc 2>/dev/null || echo 2) * 3 ))}
[ "$E2E_JOBS" -ge 1 ] 2>/dev/null || E2E_JOBS=1
mkdir -p "$BUILD"
passed=0 failed=0 skipped=0
t_start=$(date +%s)

# unit_verdict FILE: adds the in-process suites' counts from their output FILE.
unit_verdict() {
    local last
    last=$(tail -n 1 "$1")
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
    else
        echo "FAIL unit runner did not finish: $last"
        failed=$((failed + 1))
    fi
}

if [ $# -gt 0 ]; then
    out=$(mktemp)
    "$BUILD/tests/run" "$@" | tee "$out"
    unit_verdict "$out"
    rm -f "$out"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi

# The Python binding's tests (python/tests, pytest): each test counts as one. Needs
# $BUILD/libktun.so (`make test` builds it) and python3-cffi/python3-pytest. In a sanitizer
# build the interpreter, which is not instrumented, gets the ASan and UBSan runtimes preloaded
# (leak detection off: the interpreter keeps its own memory at exit).
PY=${PYTHON:-python3}
[ -z "${PYTHON:-}" ] && [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
preload=
if [ "$BUILD" != build ]; then
    for rt in libasan.so libubsan.so; do
        f=$(${CC:-cc} -print-file-name=$rt 2>/dev/null)
        [ -f "$f" ] && preload="$preload $f"
    done
fi
py_skip=
if [ ! -f "$BUILD/libktun.so" ]; then
    py_skip="$BUILD/libktun.so not built (make libktun.so)"
elif ! "$PY" -c 'import cffi, pytest' 2>/dev/null; then
    py_skip="$PY lacks cffi or pytest (scripts/deps.sh installs them)"
elif [ "$BUILD" != build ] && [ -z "$preload" ]; then
    py_skip="sanitizer build and no ASan runtime to preload into $PY"
fi
run_pytest() {
    env ${preload:+LD_PRELOAD="${preload# }" ASAN_OPTIONS=detect_leaks=0 KTUN_SANITIZED=1} \
        KTUN_LIBRARY="$PWD/$BUILD/libktun.so" PYTHONDONTWRITEBYTECODE=1 \
        timeout 600 "$PY" -m pytest -q -p no:cacheprovider python/tests
}
py_verdict() {
    local log=$1 rc=$2 dur=$3 summary p f e
    summary=$(grep -E '^=*.*[0-9]+ (passed|failed|error)' "$log" | tail -n 1)
    p=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+'); p=${p:-0}
    f=$(grep -oE '[0-9]+ failed' <<<"$summary" | grep -oE '[0-9]+'); f=${f:-0}
    e=$(grep -oE '[0-9]+ errors?' <<<"$summary" | grep -oE '[0-9]+'); e=${e:-0}
    passed=$((passed + p))
    failed=$((failed + f + e))
    if [ "$rc" -ne 0 ] && [ $((f + e)) -eq 0 ]; then
        failed=$((failed + 1))   # pytest itself failed (crash, timeout, collection)
    fi
    if [ "$rc" -eq 0 ]; then
        echo "ok   python/tests: $p passed (${dur} s)"
    else
        echo "FAIL python/tests (exit $rc, ${dur} s), last lines of $log:"
        tail -n 30 "$log" | sed 's/^/    /'
    fi
}

# The jobs: "unit", each e2e script, "python/tests"; longest first by the last run's figures.
jobs_all=(unit)
for t in tests/e2e/test_*.sh; do [ -e "$t" ] && jobs_all+=("$t"); done
if [ -n "$py_skip" ]; then
    skipped=$((skipped + 1))
    echo "skip python/tests: $py_skip"
else
    jobs_all+=(python/tests)
fi
durs=$BUILD/test-durations
[ -f "$durs" ] || durs=build/test-durations
declare -A last_dur=()
if [ -f "$durs" ]; then
    while read -r d name; do last_dur[$name]=$d; done <"$durs"
fi
order=()
while read -r _ name; do order+=("$name"); done < <(
    for j in "${jobs_all[@]}"; do echo "${last_dur[$j]:-999999} $j"; done | sort -s -k1,1nr)

declare -A job_of=() start_of=() slot_of=()
free_slots=()
for ((s = 0; s < E2E_JOBS; s++)); do free_slots+=("$s"); done
new_durs=$(mktemp)

start_job() {
    local j=$1 slot=${free_slots[0]} pid
    free_slots=("${free_slots[@]:1}")
    case $j in
        unit) "$BUILD/tests/run" >"$BUILD/unit.log" 2>&1 & pid=$! ;;
        python/tests) run_pytest >"$BUILD/pytest.log" 2>&1 & pid=$! ;;
        *) E2E_SLOT=$slot E2E_SLOTS=$E2E_JOBS \
               timeout --kill-after=30 "$E2E_TIMEOUT" bash "$j" >"$BUILD/e2e-$(basename "$j" .sh).log" 2>&1 &
           pid=$! ;;
    esac
    job_of[$pid]=$j
    start_of[$pid]=$(date +%s)
    slot_of[$pid]=$slot
}

end_job() {
    local pid=$1 rc=$2 j=${job_of[$1]} dur log
    dur=$(( $(date +%s) - start_of[$pid] ))
    free_slots+=("${slot_of[$pid]}")
    unset "job_of[$pid]" "start_of[$pid]" "slot_of[$pid]"
    echo "$dur $j" >>"$new_durs"
    case $j in
        unit)
            cat "$BUILD/unit.log"
            echo "(in-process suites: ${dur} s)"
            unit_verdict "$BUILD/unit.log" ;;
        python/tests)
            py_verdict "$BUILD/pytest.log" "$rc" "$dur" ;;
        *)
            log="$BUILD/e2e-$(basename "$j" .sh).log"
            [ "$rc" -eq 124 ] && echo "(timed out after $E2E_TIMEOUT s)" >>"$log"
            if [ "$rc" -eq 0 ]; then
                passed=$((passed + 1)); echo "ok   $j (${dur} s)"
            elif [ "$rc" -eq 77 ]; then
                skipped=$((skipped + 1)); echo "skip $j: $(tail -n 1 "$log")"
            else
                failed=$((failed + 1)); echo "FAIL $j (exit $rc, ${dur} s), last lines of $log:"
                tail -n 30 "$log" | sed 's/^/    /'
            fi ;;
    esac
}

# Interrupted: stop the running jobs (timeout passes SIGTERM on to the script, whose EXIT trap
# stops what it started).
stop_jobs() {
    local p
    for p in "${!job_of[@]}"; do kill -TERM "$p" 2>/dev/null; done
    wait
    rm -f "$new_durs"
    exit 130
}
trap stop_jobs INT TERM

for j in "${order[@]}"; do
    while [ ${#job_of[@]} -ge "$E2E_JOBS" ]; do
        wait -n -p done_pid; rc=$?
        [ -n "${job_of[$done_pid]:-}" ] && end_job "$done_pid" "$rc"
    done
    start_job "$j"
done
while [ ${#job_of[@]} -gt 0 ]; do
    wait -n -p done_pid; rc=$?
    [ -n "${job_of[$done_pid]:-}" ] && end_job "$done_pid" "$rc"
done
sort -k1,1nr "$new_durs" >"$BUILD/test-durations"
rm -f "$new_durs"

echo "tests took $(( $(date +%s) - t_start )) s ($E2E_JOBS jobs side by side)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
