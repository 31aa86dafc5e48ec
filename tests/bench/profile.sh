#!/bin/sh
# tests/bench/profile.sh: `make profile`. Where build/acemqd spends its time, and whether
# `workers 2` puts both cores to work. Three parts, each against a fresh broker on a free loopback
# port (the configuration of run.sh's conf() for acemq, TCP listener only):
#   perf      perf record (cpu-clock, DWARF call graphs) on the broker during a QoS 0 fan-in
#             (8 -> 1) and a QoS 1 pairs run (16), then perf report: top symbols, syscalls
#             (inclusive), threads and objects;
#   callgrind the broker under valgrind --tool=callgrind during a short, rate-limited QoS 1 pairs
#             run: top functions by instructions (Ir), and Ir per delivered message;
#   cores     workers 1 and workers 2 in alternating rounds, each broker through the same fan-in
#             and pairs runs, with every broker thread's utime+stime (/proc/PID/task/*/stat)
#             sampled four times a second: per-thread CPU seconds, process CPU % (100 % = one
#             core), the CPUs each thread ran on, and the throughput acemq-bench reported.
#
# Usage: sh tests/bench/profile.sh [OUTDIR [SECONDS]]
#   OUTDIR   where the results go (default PROFILE_OUT, else a new directory under /tmp); kept
#   SECONDS  the measured window of each run (default PROFILE_SECONDS, else 10)
# Environment: ACEMQD, BENCH (binaries), PROFILE_CALLGRAPH (perf's --call-graph: dwarf, or fp;
# acemq is built -O2 without frame pointers, so fp stacks stop at the first acemq frame),
# PROFILE_CG_RATE (callgrind run: messages per second per publisher, default 50),
# PROFILE_ROUNDS (cores: rounds of workers 1 and 2, default 2), PROFILE_PARTS (any of
# "perf callgrind cores", default all three).
#
# Nothing here makes the machine quiet: the generator shares the cores with the broker, and
# anything else running at the time shows. /proc/loadavg is recorded at the start and end of
# every run, and the cores part also records the whole machine's busy and steal time before and
# during each run; read the figures with them.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
PY=/usr/bin/python3
. "$ROOT/tests/bench/lib.sh"
PERF=${PERF:-/usr/bin/perf}
BENCH=${BENCH:-$ROOT/build/acemq-bench}
ACEMQD=${ACEMQD:-$ROOT/build/acemqd}
OUT=${1:-${PROFILE_OUT:-}}
D=${2:-${PROFILE_SECONDS:-10}}
WARM=2
CALLGRAPH=${PROFILE_CALLGRAPH:-dwarf}
CG_RATE=${PROFILE_CG_RATE:-50}
CG_SECONDS=5
ROUNDS=${PROFILE_ROUNDS:-2}
PARTS=${PROFILE_PARTS:-perf callgrind cores}
TOP=25

[ -x "$BENCH" ] || { echo "profile: $BENCH missing; run make first" >&2; exit 1; }
[ -x "$ACEMQD" ] || { echo "profile: $ACEMQD missing; run make first" >&2; exit 1; }
[ "$D" -ge 4 ] 2>/dev/null || { echo "profile: SECONDS must be a number >= 4" >&2; exit 1; }
if [ -z "$OUT" ]; then
    OUT=$(mktemp -d /tmp/acemq-profile.XXXXXX) || exit 1
fi
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
ulimit -n "$(ulimit -Hn)" 2>/dev/null

# The broker under test is a copy, so that a rebuild of build/ while this runs changes neither
# the binary measured nor the symbols perf and callgrind resolve afterwards.
cp -p "$ACEMQD" "$OUT/acemqd" || exit 1
ACEMQD=$OUT/acemqd

BPID=""
PERFPID=""
cleanup() {
    for p in $PERFPID $BPID; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM



conf() { # $1 = workers, $2 = port: run.sh's acemq configuration without its TLS listener
    printf 'workers %s\nallow_anonymous true\nmax_inflight_messages 64\n' "$1"
    printf 'max_queued_messages 100000\npersistence false\nlog_dest none\n'
    printf 'set_tcp_nodelay true\nlistener %s 127.0.0.1\nmax_connections 100000\n' "$2"
}

# start_broker NAME WORKERS [WRAPPER...]: a fresh broker (NAME.conf, NAME.log) under WRAPPER
# (valgrind) if given; sets BPID and BPORT, or returns 1.
start_broker() {
    bname=$1; workers=$2; shift 2
    BPORT=$(free_port)
    conf "$workers" "$BPORT" >"$OUT/$bname.conf"
    echo "broker|$bname|$* $ACEMQD -c $bname.conf" | sed "s|$OUT/||g; s|$ROOT/||g" >>"$OUT/commands"
    "$@" "$ACEMQD" -c "$OUT/$bname.conf" >"$OUT/$bname.log" 2>&1 &
    BPID=$!
    limit=5
    [ $# -gt 0 ] && limit=60
    if ! wait_port "$BPORT" "$limit"; then
        echo "profile: $bname did not start:" >&2
        tail -5 "$OUT/$bname.log" >&2
        stop_broker
        return 1
    fi
}



load() { cut -d' ' -f1-3 /proc/loadavg; }

# The two loads every part uses; the callgrind run adds --rate.
FANIN="--scenario fan-in --qos 0 --publishers 8 --subscribers 1 --size 64"
PAIRS="--scenario pairs --qos 1 --publishers 16 --size 64"

# bench ID ARGS...: the generator in the background against BPORT (BENCHPID; the caller waits),
# its command in OUT/commands, the load average at its start in OUT/ID.load.
bench() {
    bid=$1; shift
    set -- "$BENCH" --port "$BPORT" --label "$bid" --json "$OUT/$bid.json" --quiet \
        --inflight 64 "$@"
    echo "$bid|bench|$*" | sed "s|$OUT/||g; s|$ROOT/||g" >>"$OUT/commands"
    echo "== $bid" >&2
    load >"$OUT/$bid.load"
    "$@" >"$OUT/$bid.txt" 2>&1 &
    BENCHPID=$!
}

bench_done() { # $1 = id: after the generator has been waited for
    load >>"$OUT/$1.load"
    sed -n '3,5p' "$OUT/$1.txt" >&2
}

# ---- perf ----------------------------------------------------------------------------------------
# perf_report ID: the reports of OUT/perf.ID.data. Flat symbols by self time (the top list:
# --sort symbol, no children); the kernel's syscall and scheduler entry points and acemq's own
# functions with their callees (--children), which is where time per syscall and per stage shows;
# the split by thread and by object; the call chains of the top symbols.
perf_report() {
    data=$OUT/perf.$1.data
    r="$PERF report -i $data --stdio --no-children"
    c="$PERF report -i $data --stdio --children --sort symbol -g none"
    k='(do_syscall_64|__x64_sys_[a-z0-9_]+|__sys_[a-z_]+|ksys_[a-z_]+|schedule|handle_softirqs)$'
    $r --sort symbol -g none >"$OUT/perf.$1.report" 2>/dev/null
    {
        echo "# perf report --no-children --sort symbol -g none (top $TOP): $1"
        grep -E '^# (Samples|Total Lost)' "$OUT/perf.$1.report"
        grep '%' "$OUT/perf.$1.report" | grep -v '^#' | head -n "$TOP" | sed 's/ *- *- *$//'
    } >"$OUT/perf.$1.top.txt"
    {
        echo "# perf report --children --sort symbol -g none: children (self + callees), self: $1"
        echo "# kernel entry points"
        $c 2>/dev/null | sed 's/ *- *- *$//' | grep -E "\[k\] $k" | head -n 20
        echo "# acemq, libuv and libc functions (top 30)"
        $c 2>/dev/null | sed 's/ *- *- *$//' | grep '%' | grep -v '^#' | grep -v '\[k\]' |
            grep -v -E '(start_thread|clone3?|0x[0-9a-f]+)$' | head -n 30
    } >"$OUT/perf.$1.children.txt"
    {
        echo "# perf report --no-children --sort pid (thread): $1"
        $r --sort pid -g none 2>/dev/null | grep '%' | grep -v '^#'
        echo "# perf report --no-children --sort dso: $1"
        $r --sort dso -g none 2>/dev/null | grep '%' | grep -v '^#' | head -n 12
    } >"$OUT/perf.$1.split.txt"
    $r --sort symbol -g caller,0.5,callee,function,percent --percent-limit 2 2>/dev/null |
        grep -v '^$' | sed 's/ *- *- *$//' >"$OUT/perf.$1.callers.txt"
}

profile_perf() {
    start_broker perf 2 || return 0
    for id in fanin-q0 pairs-q1; do
        set -- $FANIN
        [ $id = pairs-q1 ] && set -- $PAIRS
        echo "perf.$id|perf|$PERF record -F 999 --call-graph $CALLGRAPH -p BROKER_PID" \
            "-o perf.$id.data" >>"$OUT/commands"
        $PERF record -F 999 --call-graph "$CALLGRAPH" -p "$BPID" -o "$OUT/perf.$id.data" \
            >"$OUT/perf.$id.log" 2>&1 &
        PERFPID=$!
        sleep 1
        bench "perf.$id" "$@" --duration "$D" --warmup "$WARM"
        wait "$BENCHPID"
        kill -INT "$PERFPID" 2>/dev/null
        wait "$PERFPID"
        PERFPID=""
        bench_done "perf.$id"
        perf_report "$id"
    done
    stop_broker
}

# ---- callgrind -----------------------------------------------------------------------------------
# The counters are zeroed once the broker listens and dumped once the generator has exited, so the
# Ir cover the run's connects, subscribes, messages and disconnects, not start-up or shutdown.
# Threads that were inside a call when the counters were zeroed (start_thread, clone, worker_main)
# come out of callgrind_annotate with the whole total as their own; the top list leaves them out
# (callgrind.annotate.txt has the untouched output).
profile_callgrind() {
    if ! command -v valgrind >/dev/null; then
        echo "profile: no valgrind; callgrind skipped" >&2
        return 0
    fi
    start_broker callgrind 2 valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" ||
        return 0
    callgrind_control -z "$BPID" >/dev/null 2>&1
    bench callgrind.pairs-q1 $PAIRS --rate "$CG_RATE" --duration "$CG_SECONDS" --warmup 1
    wait "$BENCHPID"
    bench_done callgrind.pairs-q1
    callgrind_control -d "$BPID" >/dev/null 2>&1
    stop_broker
    cg=$OUT/callgrind.out.1
    [ -s "$cg" ] || { echo "profile: no callgrind dump" >&2; return 0; }
    callgrind_annotate --threshold=100 --auto=no "$cg" >"$OUT/callgrind.annotate.txt" 2>&1
    msgs=$(jget "$OUT/callgrind.pairs-q1.json" received_total)
    $PY - "$OUT/callgrind.annotate.txt" "${msgs:-0}" "$TOP" >"$OUT/callgrind.top.txt" <<'PYEOF'
import re, sys
path, msgs, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
total, rows = 0, []
for line in open(path):
    m = re.match(r'\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$', line)
    if not m:
        continue
    ir = int(m.group(1).replace(",", ""))
    if "PROGRAM TOTALS" in line:
        total = ir
    elif ir < 0.99 * total:  # not a thread root with the total as its own (see the comment)
        rows.append((ir, m.group(2)))
print(f"# callgrind_annotate (self Ir), QoS 1 pairs (16) at {sys.argv[2]} messages delivered")
print(f"# total Ir {total:,}; Ir per delivered message {total / msgs:,.0f}" if msgs else
      f"# total Ir {total:,}; messages unknown")
for ir, name in rows[:top]:
    name = re.sub(r' \[.*\]$', '', name)
    per = f"{ir / msgs:8,.0f}" if msgs else "       ?"
    print(f"{ir:14,} {100.0 * ir / total:5.1f}%  {per} Ir/msg  {name}")
PYEOF
}

# ---- cores ---------------------------------------------------------------------------------------
# sample OUTFILE: every 0.25 s while the generator runs, one line per broker thread
# (time tid comm utime stime processor), one for the generator (tid 0) and one for the whole
# machine (tid -1: busy, steal, all and softirq jiffies from /proc/stat); at the end one more.
sample() {
    $PY - "$BPID" "$BENCHPID" "$1" <<'PYEOF'
import os, sys, time
bpid, gpid, out = sys.argv[1], sys.argv[2], sys.argv[3]
def stat(path):
    with open(path) as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()  # fields from state on: utime [11], stime [12], cpu [36]
def alive(pid):
    try:
        return stat(f"/proc/{pid}/stat")[0] != "Z"
    except OSError:
        return False
with open(out, "w") as f:
    while True:
        running = alive(gpid)
        t = time.time()
        for tid in sorted(os.listdir(f"/proc/{bpid}/task"), key=int):
            try:
                s = stat(f"/proc/{bpid}/task/{tid}/stat")
                comm = open(f"/proc/{bpid}/task/{tid}/comm").read().strip()
            except OSError:
                continue
            f.write(f"{t:.3f} {tid} {comm} {s[11]} {s[12]} {s[36]}\n")
        with open("/proc/stat") as ps:
            c = [int(x) for x in ps.readline().split()[1:]]
        f.write(f"{t:.3f} -1 machine {c[0] + c[1] + c[2] + c[5] + c[6]} {c[7]} {sum(c[:8])} "
                f"{c[6]}\n")
        if running:
            try:
                s = stat(f"/proc/{gpid}/stat")
                f.write(f"{t:.3f} 0 acemq-bench {s[11]} {s[12]} {s[36]}\n")
            except OSError:
                pass
        if not running:
            break
        time.sleep(0.25)
PYEOF
}

machine_busy() { # $1 = seconds: how busy the whole machine was over them, % of one core
    $PY - "$1" <<'PYEOF'
import os, sys, time
def busy():
    with open("/proc/stat") as f:
        c = [int(x) for x in f.readline().split()[1:]]
    return c[0] + c[1] + c[2] + c[5] + c[6], time.time()
(b0, t0) = busy(); time.sleep(float(sys.argv[1])); (b1, t1) = busy()
print(f"{(b1 - b0) / os.sysconf('SC_CLK_TCK') / (t1 - t0) * 100:.0f}")
PYEOF
}

# ROUNDS rounds, workers 1 then 2 in odd rounds and 2 then 1 in even ones, so that a drift in the
# machine's load does not fall on one setting only.
measure_cores() {
    r=1
    while [ $r -le "$ROUNDS" ]; do
        order="1 2"
        [ $((r % 2)) = 0 ] && order="2 1"
        for w in $order; do
            cores_broker "r$r-w$w" "$w"
        done
        r=$((r + 1))
    done
    cores_report >"$OUT/cores.txt"
}

cores_broker() { # $1 = name, $2 = workers: one broker through the fan-in and pairs runs
    cname=cores-$1
    start_broker "$cname" "$2" || return 0
    echo "$BPID" >"$OUT/$cname.pid"
    for id in fanin-q0 pairs-q1; do
        set -- $FANIN
        [ $id = pairs-q1 ] && set -- $PAIRS
        machine_busy 2 >"$OUT/$cname.$id.before"
        bench "$cname.$id" "$@" --duration "$D" --warmup "$WARM"
        date +%s.%N >"$OUT/$cname.$id.start"
        sample "$OUT/$cname.$id.samples"
        wait "$BENCHPID"
        bench_done "$cname.$id"
    done
    stop_broker
}

cores_report() {
    $PY - "$OUT" "$D" "$WARM" "$(getconf CLK_TCK)" "$(nproc)" "$ROUNDS" <<'PYEOF'
import collections, json, os, sys
out, D, WARM, HZ, NCPU = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), \
    int(sys.argv[5])
runs = []
for r, w, sc in ((r, w, sc) for r in range(1, int(sys.argv[6]) + 1) for w in (1, 2)
                 for sc in ("fanin-q0", "pairs-q1")):
    id = f"cores-r{r}-w{w}.{sc}"
    try:
        rows = [l.split() for l in open(os.path.join(out, id + ".samples"))]
        t0 = float(open(os.path.join(out, id + ".start")).read())
        pid = open(os.path.join(out, f"cores-r{r}-w{w}.pid")).read().strip()
        res = json.load(open(os.path.join(out, id + ".json")))
        loads = [l.split()[0] for l in open(os.path.join(out, id + ".load"))]
    except (OSError, ValueError):
        continue
    by = collections.defaultdict(dict)  # tid -> time -> (ticks, cpu, steal, softirq)
    comms = {}
    for t, tid, comm, a, b, c, *d in rows:
        comms[tid] = comm
        if tid == "-1":  # the whole machine: busy, steal, all, softirq jiffies
            by[tid][float(t)] = (int(a), int(c), int(b), int(d[0]))
        else:
            by[tid][float(t)] = (int(a) + int(b), c, 0, 0)
    times = sorted({float(r[0]) for r in rows})
    lo, hi = t0 + WARM + 0.5, t0 + WARM + D - 0.5
    win = [t for t in times if lo <= t <= hi]
    wa, wb = win[0], win[-1]
    def pct(tid, a, b, k=0):
        x, y = by[tid].get(a), by[tid].get(b)
        return None if x is None or y is None else (y[k] - x[k]) / HZ / (b - a) * 100
    threads, proc_run, proc_win = [], 0.0, 0.0
    for tid in sorted((t for t in by if int(t) > 0), key=int):
        ts = sorted(by[tid])
        secs = (by[tid][ts[-1]][0] - by[tid][ts[0]][0]) / HZ
        proc_run += secs
        p = pct(tid, wa, wb) or 0.0
        proc_win += p
        tw = [t for t in ts if wa <= t <= wb]
        hist = collections.Counter(by[tid][b][1] for a, b in zip(tw, tw[1:])
                                   if by[tid][b][0] > by[tid][a][0])
        n = sum(hist.values())
        share = " / ".join(f"{100 * hist.get(str(c), 0) / n:.0f}" for c in range(NCPU)) \
            if n else "-"
        threads.append((f"{comms[tid]} {tid}" + (" (main)" if tid == pid else ""), secs, p, share))
    gen = pct("0", wa, wb) or 0.0
    mach = pct("-1", wa, wb)
    steal = pct("-1", wa, wb, 2)
    softirq = pct("-1", wa, wb, 3)
    try:
        before = float(open(os.path.join(out, id + ".before")).read())
    except (OSError, ValueError):
        before = None
    runs.append((f"{r}", w, sc, res, loads, proc_run / (times[-1] - times[0]) * 100, proc_win, gen,
                 mach, softirq, steal, before, threads))

print("# Broker CPU, workers 1 and 2, in rounds (1 then 2, then 2 then 1). 'run' = generator start")
print("# to exit (connect, warm-up, window, drain); 'window' = inside the generator's measured")
print("# window (warm-up end + 0.5 s to its end - 0.5 s). CPU % is of one core: this machine's")
print(f"# {NCPU} cores are {NCPU * 100} %. 'machine' is every process on it (/proc/stat:")
print("# user+nice+system+irq+softirq); 'before' is the machine in the 2 s before the generator")
print("# started (broker idle: everything else on the machine); 'rest' = machine - broker -")
print("# generator: softirq not charged to a thread (the loopback traffic's own share among it)")
print("# plus whatever else ran; steal = time the hypervisor gave elsewhere.\n")
print("| round | workers | run | msg/s received | load start -> end | machine % before "
      "| broker CPU % run | broker CPU % window | generator CPU % window | machine % window "
      "| softirq % window | rest % window | steal % window |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
f = lambda v: "n/a" if v is None else f"{v:.0f}"
for r, w, sc, res, loads, prun, pwin, gen, mach, softirq, steal, before, _ in runs:
    rest = None if mach is None else max(mach - pwin - gen, 0.0)
    print(f"| {r} | {w} | {sc} | {res.get('received_per_s', 0):,.0f} | {loads[0]} -> {loads[-1]} | "
          f"{f(before)} | {prun:.0f} | {pwin:.0f} | {gen:.0f} | {f(mach)} | {f(softirq)} | "
          f"{f(rest)} | {f(steal)} |")
print("\n# Mean over the rounds (a run whose 'machine % before' was high was disturbed).\n")
print("| workers | run | rounds | msg/s received | broker CPU % window | generator CPU % window |")
print("|---|---|---|---|---|---|")
for w in (1, 2):
    for sc in ("fanin-q0", "pairs-q1"):
        sel = [x for x in runs if x[1] == w and x[2] == sc]
        if sel:
            m = lambda k: sum(k(x) for x in sel) / len(sel)
            rate = m(lambda x: x[3].get("received_per_s", 0))
            print(f"| {w} | {sc} | {len(sel)} | {rate:,.0f} | {m(lambda x: x[6]):.0f} | "
                  f"{m(lambda x: x[7]):.0f} |")
print("\n# Per broker thread: its name (/proc/PID/task/TID/comm) and TID; main is TID = PID.")
print("# A build whose threads are all 'acemqd' has unnamed workers, in TID = creation order.")
print("# 'ran on' = of the window's 0.25 s samples in which the thread used CPU, the share on")
print("# each CPU.\n")
print("| round | workers | run | thread | CPU s run | CPU % window | ran on " +
      " / ".join(f"cpu{c}" for c in range(NCPU)) + " (%) |")
print("|---|---|---|---|---|---|---|")
for r, w, sc, *_, threads in runs:
    for name, secs, p, share in threads:
        print(f"| {r} | {w} | {sc} | {name} | {secs:.2f} | {p:.0f} | {share} |")
PYEOF
}

# ---- the run -------------------------------------------------------------------------------------
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "nproc=$(nproc)"
    echo "model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "kernel=$(uname -sr)"
    echo "perf=$($PERF --version 2>/dev/null)"
    echo "valgrind=$(valgrind --version 2>/dev/null)"
    echo "commit=$(git rev-parse --short HEAD 2>/dev/null)"
    echo "dirty=$(git status --short 2>/dev/null | awk '{print $2}' | tr '\n' ' ')"
    echo "acemqd=$(sha256sum "$ACEMQD" | cut -c1-16)" \
        "built $(date -u -r "$ACEMQD" '+%Y-%m-%d %H:%M:%S UTC')"
    echo "window=$D warmup=$WARM callgraph=$CALLGRAPH cg_rate=$CG_RATE"
    echo "load_start=$(load)"
} >"$OUT/machine"
: >"$OUT/commands"

for part in $PARTS; do
    case $part in
    perf)
        if "$PERF" record -o /dev/null -- true >/dev/null 2>&1; then
            profile_perf
        else
            echo "profile: perf record does not work here (perf_event_paranoid?); perf skipped" >&2
        fi ;;
    callgrind) profile_callgrind ;;
    cores) measure_cores ;;
    *) echo "profile: unknown part $part" >&2 ;;
    esac
done
echo "load_end=$(load)" >>"$OUT/machine"

{
    cat "$OUT/machine"
    for f in "$OUT"/perf.*.top.txt "$OUT"/perf.*.children.txt "$OUT"/perf.*.split.txt \
        "$OUT"/callgrind.top.txt "$OUT"/cores.txt; do
        [ -f "$f" ] && { echo; cat "$f"; }
    done
    echo
    echo "# commands (id|what|command)"
    cat "$OUT/commands"
} >"$OUT/summary.txt"
echo "profile: wrote $OUT (summary.txt; perf.*.txt, callgrind.*, cores.txt, *.json, commands)" >&2
