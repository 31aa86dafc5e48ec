#!/bin/sh
# tests/fuzz/run.sh: builds every libFuzzer target (tests/fuzz/<name>_fuzz.c) with clang into
# build-fuzz/ and runs each one.
#
#   sh tests/fuzz/run.sh [SECONDS]   fuzz each target SECONDS (default 60), two at a time
#   sh tests/fuzz/run.sh --ci        replay each committed corpus, then fuzz FUZZ_CI_SECONDS (8)
#   FUZZ_TARGETS="proto_stream config" sh tests/fuzz/run.sh 300   only these targets
#
# The project sources are compiled once with -fsanitize=fuzzer-no-link,address,undefined into
# build-fuzz/libacemq-fuzz.a; each target links it with -fsanitize=fuzzer. The committed corpus
# (tests/fuzz/corpus/<name>/) is read but never written: new inputs go to
# build-fuzz/work/<name>/corpus (build-fuzz/ci/ in --ci mode), findings to the same directory
# (crash-*, leak-*, oom-*, timeout-*); copy a finding to tests/fuzz/crashes-found/ to keep it. Prints one line per target (exec/s, total executions, finding) and a count line;
# exits non-zero when a target failed to build or found something.
cd "$(dirname "$0")/../.." || exit 1

CI=0
SECS=${1:-60}
if [ "$1" = "--ci" ]; then
    CI=1
    SECS=${FUZZ_CI_SECONDS:-8}
fi
case "$SECS" in *[!0-9]* | "") echo "usage: $0 [SECONDS|--ci]" >&2; exit 2 ;; esac

CC=${FUZZ_CC:-clang}
OUT=build-fuzz
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CPPFLAGS="-I. -I/usr/share/include/llhttp -D_GNU_SOURCE"
CFLAGS="-std=c11 -g -O1 -Wall -Wextra -Wshadow -pthread"
LDLIBS="-luv -lmbedtls -lmbedx509 -lmbedcrypto -lcbor -ljansson -lsodium -lm -lpthread"

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz: $CC not found (tools/install-deps.sh installs clang and libclang-rt-14-dev)" >&2
    echo "fuzz: 0 passed, 1 failed"
    exit 1
fi

mkdir -p "$OUT/obj"

# ---- the library ------------------------------------------------------------------------------
# Rebuilt per object when the source or any project header is newer than the object.
newest_hdr=$(ls -t proto/*.h tls/*.h ace/*.h broker/*.h 2>/dev/null | head -1)
compile() { # $1 = source, $2 = object, $3 = extra flags
    # shellcheck disable=SC2086
    $CC $CPPFLAGS -DACEMQ_VERSION='"fuzz"' $CFLAGS $3 -fsanitize=fuzzer-no-link $SAN -c "$1" -o "$2" \
        >"$2.log" 2>&1 || { echo "fuzz: $1 did not compile with $CC:" >&2; head -5 "$2.log" >&2; rm -f "$2"; }
}
n=0
for src in proto/*.c tls/*.c ace/*.c broker/*.c /usr/share/llhttp/api.c /usr/share/llhttp/http.c \
           /usr/share/llhttp/llhttp.c; do
    [ -f "$src" ] || continue
    [ "$src" = broker/main.c ] && continue
    case "$src" in
        /usr/*) obj="$OUT/obj/llhttp/$(basename "$src" .c).o"; extra="-Wno-unused-parameter" ;;
        *) obj="$OUT/obj/${src%.c}.o"; extra="" ;;
    esac
    mkdir -p "$(dirname "$obj")"
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || { [ -n "$newest_hdr" ] && [ "$newest_hdr" -nt "$obj" ]; }; then
        compile "$src" "$obj" "$extra" &
        n=$((n + 1))
        [ "$n" -ge "$JOBS" ] && { wait; n=0; }
    fi
done
wait
objs=""
for o in $(find "$OUT/obj" -name '*.o'); do
    s=${o#"$OUT"/obj/}; s=${s%.o}.c
    case "$s" in llhttp/*) objs="$objs $o"; continue ;; esac
    [ -f "$s" ] && objs="$objs $o"   # drop objects of deleted sources
done
rm -f "$OUT/libacemq-fuzz.a"
# shellcheck disable=SC2086
ar rcs "$OUT/libacemq-fuzz.a" $objs

# ---- the targets ------------------------------------------------------------------------------
targets=${FUZZ_TARGETS:-$(for f in tests/fuzz/*_fuzz.c; do basename "$f" _fuzz.c; done)}
passed=0
failed=0
for t in $targets; do
    # shellcheck disable=SC2086
    if ! $CC $CPPFLAGS $CFLAGS -Werror=implicit-function-declaration -fsanitize=fuzzer $SAN -o "$OUT/$t" "tests/fuzz/${t}_fuzz.c" \
            "$OUT/libacemq-fuzz.a" $LDLIBS >"$OUT/$t.build.log" 2>&1; then
        echo "fuzz $t: BUILD FAILED (see $OUT/$t.build.log)"
        [ "$CI" = 1 ] || tail -5 "$OUT/$t.build.log"
        echo "$t" >>"$OUT/build-failed"
    fi
done

# CI runs keep their own work directories, so `make test` and `make fuzz` can run side by side.
WORK="$OUT/work"
[ "$CI" = 1 ] && WORK="$OUT/ci"

run_one() { # $1 = target; writes $WORK/$1/{log,rc} and any findings
    t=$1
    w="$WORK/$t"
    rm -rf "$w/crash-"* "$w/leak-"* "$w/oom-"* "$w/timeout-"* "$w/slow-unit-"*
    mkdir -p "$w/corpus" "tests/fuzz/corpus/$t"
    dict=""
    [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
    common="-malloc_limit_mb=512 -rss_limit_mb=2048 -timeout=20 -print_final_stats=1
            -artifact_prefix=$w/ $dict"
    rc=0
    if [ "$CI" = 1 ]; then
        # The committed corpus must replay cleanly, then a short run from it.
        # shellcheck disable=SC2086
        "$OUT/$t" $common -runs=0 "tests/fuzz/corpus/$t" >"$w/replay.log" 2>&1 || rc=$?
    fi
    if [ "$rc" = 0 ]; then
        # shellcheck disable=SC2086
        "$OUT/$t" $common -max_total_time="$SECS" "$w/corpus" "tests/fuzz/corpus/$t" \
            >"$w/log" 2>&1 || rc=$?
    else
        cp "$w/replay.log" "$w/log"
    fi
    echo "$rc" >"$w/rc"
}

for t in $targets; do
    [ -x "$OUT/$t" ] && ! grep -qx "$t" "$OUT/build-failed" 2>/dev/null || continue
    run_one "$t" &
    running=$((${running:-0} + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait
        running=0
    fi
done
wait

for t in $targets; do
    if grep -qx "$t" "$OUT/build-failed" 2>/dev/null; then
        failed=$((failed + 1))
        continue
    fi
    w="$WORK/$t"
    rc=$(cat "$w/rc" 2>/dev/null || echo 1)
    execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$w/log" | grep -Eo '[0-9]+$' | tail -1)
    rate=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$w/log" | grep -Eo '[0-9]+$' | tail -1)
    ncorp=$(ls "$w/corpus" 2>/dev/null | wc -l)
    found=$(ls "$w" 2>/dev/null | grep -E '^(crash|leak|oom|timeout)-' | head -3 | tr '\n' ' ')
    if [ "$rc" = 0 ] && [ -z "$found" ]; then
        passed=$((passed + 1))
        echo "fuzz $t: ok, ${rate:-?} exec/s, ${execs:-?} executions in ${SECS}s, new corpus entries: $ncorp"
    else
        failed=$((failed + 1))
        echo "fuzz $t: FINDING (exit $rc) ${found:-see $w/log}"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$w/log" | head -5
    fi
done
rm -f "$OUT/build-failed"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
