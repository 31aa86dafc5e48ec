#!/bin/sh
# Runs every test: the C unit tests and the integration suite, first against the normal build,
# then against the AddressSanitizer/UBSan build (any sanitizer report fails the run).
# Ends with one line a CI runner reads: `total: N passed, N failed`.
cd "$(dirname "$0")/.." || exit 1
PY=/usr/bin/python3
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

count() { # $1 = label; reads the runner output in $log, adds its counts
    p=$(grep -Eo '[0-9]+ passed' "$log" | tail -1 | grep -Eo '[0-9]+')
    f=$(grep -Eo '[0-9]+ (failed|error|errors)' "$log" | grep -Eo '[0-9]+' | awk '{s+=$1} END {print s+0}')
    p=${p:-0}; f=${f:-0}
    if [ "$2" != 0 ] && [ "$f" = 0 ]; then f=1; fi   # a crash or a sanitizer report with no count
    passed=$((passed + p)); failed=$((failed + f))
    echo "== $1: $p passed, $f failed"
}

export ASAN_OPTIONS=abort_on_error=0:detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for build in build build-asan; do
    [ -d "$build/tests" ] || continue
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] || continue
        "$t" >"$log" 2>&1; rc=$?
        grep -E 'FAIL|ERROR|runtime error' "$log" | head -20
        count "$t" $rc
    done
done

for build in build build-asan; do
    [ -x "$build/acemqd" ] || continue
    ACEMQD="$PWD/$build/acemqd" ACEMQ_BUILD="$PWD/$build" \
        $PY -m pytest -q -p no:cacheprovider tests/integration >"$log" 2>&1; rc=$?
    grep -vE '^\.+|^$' "$log" | tail -40
    [ $rc = 5 ] && rc=0   # no tests collected is not a failure of the suite
    count "integration ($build)" $rc
done

# libFuzzer targets (clang): each replays its committed corpus, then fuzzes a few seconds.
# Without clang, tests/fuzz/run.sh says so and fails: a fuzz step that could not run is not a pass.
sh tests/fuzz/run.sh --ci >"$log" 2>&1; rc=$?
grep -E '^fuzz' "$log" | grep -v ': [0-9]* passed'
count "fuzz (tests/fuzz/run.sh --ci)" $rc

echo "total: $passed passed, $failed failed"
[ "$failed" = 0 ]
