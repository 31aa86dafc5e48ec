#!/bin/sh
# tests/bench/run.sh: `make bench`. Measures build/acemqd against Debian's Mosquitto with
# build/acemq-bench, in one run on one machine, alternating brokers scenario by scenario so
# that drifts in the machine's load hit both alike, and writes docs/benchmarks.md (figures,
# ratios acemq/mosquitto, the machine, and the exact command of every run).
#
# Environment: BENCH_SECONDS (total budget, default 600), BENCH_OUT (default docs/benchmarks.md),
# BENCH, ACEMQD, MOSQUITTO (binaries), BENCH_INFLIGHT / BENCH_QUEUED (the limits both brokers get).
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
PY=/usr/bin/python3
BENCH_SECONDS=${BENCH_SECONDS:-600}
BENCH=${BENCH:-$ROOT/build/acemq-bench}
ACEMQD=${ACEMQD:-$ROOT/build/acemqd}
MOSQ=${MOSQUITTO:-/usr/sbin/mosquitto}
OUT=${BENCH_OUT:-$ROOT/docs/benchmarks.md}
INFLIGHT=${BENCH_INFLIGHT:-64}
QUEUED=${BENCH_QUEUED:-100000}
IDLE_N=10000
HOLD_N=19000

# Each measured window gets 1/30 of the budget: 12 timed runs and 3 idle holds, plus the
# warm-up, connect and drain time around each, come to about the budget.
D=$((BENCH_SECONDS / 30))
[ "$D" -lt 3 ] && D=3
WARM=2
[ "$D" -lt 6 ] && WARM=1

[ -x "$BENCH" ] || { echo "bench: $BENCH missing; run make first" >&2; exit 1; }
[ -x "$MOSQ" ] || { echo "bench: $MOSQ missing; run make deps" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null

work=$(mktemp -d)
BPID=""
PID_acemq=""
PID_mosquitto=""
cleanup() {
    for p in $BPID $PID_acemq $PID_mosquitto; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # $1 = port: true once something accepts there (5 s at most)
    $PY - "$1" <<'PYEOF'
import socket, sys, time
end = time.time() + 5
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PYEOF
}

conf() { # $1 = broker, $2 = port: the equivalent configurations of the two brokers
    if [ "$1" = acemq ]; then
        printf 'workers 2\nlistener %s 127.0.0.1\nmax_connections 100000\n' "$2"
    else
        printf 'listener %s 127.0.0.1\n' "$2"
    fi
    printf 'allow_anonymous true\nmax_inflight_messages %s\nmax_queued_messages %s\n' \
        "$INFLIGHT" "$QUEUED"
    printf 'persistence false\nlog_dest none\nset_tcp_nodelay true\n'
}

# Starts a fresh broker; sets BPID and BPORT, or returns 1 (the broker is then reported n/a).
start_broker() {
    BPORT=$(free_port)
    conf "$1" "$BPORT" >"$work/$1.conf"
    if [ "$1" = acemq ]; then
        [ -x "$ACEMQD" ] || return 1
        "$ACEMQD" -c "$work/$1.conf" >"$work/$1.log" 2>&1 &
    else
        "$MOSQ" -c "$work/$1.conf" >"$work/$1.log" 2>&1 &
    fi
    BPID=$!
    if ! wait_port "$BPORT"; then
        echo "bench: $1 did not start:" >&2
        tail -5 "$work/$1.log" >&2
        stop_broker
        return 1
    fi
}

stop_broker() {
    [ -n "$BPID" ] || return 0
    kill "$BPID" 2>/dev/null
    wait "$BPID" 2>/dev/null
    BPID=""
}

jget() { # $1 = json file, $2 = key path (a.b): prints the value, or nothing
    $PY -c 'import json,sys
try:
    v = json.load(open(sys.argv[1]))
    for k in sys.argv[2].split("."): v = v[k]
    print(v)
except Exception: pass' "$1" "$2"
}

# run BROKER ID ARGS...: one generator run against the broker started for it.
run() {
    b=$1; id=$2; shift 2
    echo "== $id $b" >&2
    set -- "$BENCH" --port "$BPORT" --label "$b" --json "$work/$id.$b.json" --quiet "$@"
    echo "$id|$b|$*" | sed "s|$ROOT/||g; s|$work/||g" >>"$work/commands"
    "$@" >"$work/$id.$b.txt" 2>&1 || echo "bench: $id against $b failed" >&2
    tail -n +1 "$work/$id.$b.txt" | sed -n '2,8p' >&2
}

# Throughput scenarios: both brokers stay up; the order alternates acemq, mosquitto per scenario.
COMMON="--duration $D --warmup $WARM --size 64 --inflight $INFLIGHT"
ups=""
for b in acemq mosquitto; do
    if start_broker "$b"; then
        eval "PORT_$b=$BPORT PID_$b=$BPID"
        ups="$ups $b"
        BPID=""
    fi
done
timed() { # id args...: the scenario against each broker that is up
    id=$1; shift
    for b in $ups; do
        eval "BPORT=\$PORT_$b"
        run "$b" "$id" "$@"
    done
}
timed fanin-q0 --scenario fan-in --qos 0 --publishers 8 --subscribers 1 $COMMON
timed fanout-q0 --scenario fan-out --qos 0 --publishers 1 --subscribers 32 $COMMON
timed pairs-q1 --scenario pairs --qos 1 --publishers 16 $COMMON
timed pairs-q2 --scenario pairs --qos 2 --publishers 16 $COMMON
# Latency at a fixed load: half of what Mosquitto sustained in pairs-q1, split over 16 publishers.
sat=$(jget "$work/pairs-q1.mosquitto.json" received_per_s)
RATE=$($PY -c "import sys; print(max(1, int(float(sys.argv[1] or 0) / 2 / 16)))" "${sat:-0}")
echo "$RATE" >"$work/latency_rate"
timed latency-q1 --scenario pairs --qos 1 --publishers 16 --rate "$RATE" $COMMON
timed storm --scenario connect-storm --clients 32 --duration "$D" --warmup "$WARM"
for b in $ups; do eval "kill \$PID_$b; wait \$PID_$b; PID_$b=''" 2>/dev/null; done

# Idle memory: a fresh broker for each, so its RSS before is its empty footprint.
for b in acemq mosquitto; do
    start_broker "$b" || continue
    sleep 1
    run "$b" idle-10k --scenario idle --clients "$IDLE_N" --duration "$D" --broker-pid "$BPID"
    stop_broker
done

# The 19,000-connection hold (acemqd only): one generator if its fd budget allows, else several.
if start_broker acemq; then
    hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] && hard=1048576
    per=$((hard - 100))
    nproc_gen=$(( (HOLD_N + per - 1) / per ))
    each=$(( (HOLD_N + nproc_gen - 1) / nproc_gen ))
    echo "$nproc_gen" >"$work/hold_procs"
    rss0=$(awk '/VmRSS/ {print $2}' /proc/"$BPID"/status)
    i=0; gens=""
    while [ $i -lt $nproc_gen ]; do
        set -- "$BENCH" --port "$BPORT" --label acemq --json "$work/hold-19k.$i.json" --quiet \
            --scenario idle --clients "$each" --duration "$((D + 10))"
        echo "hold-19k|acemq|$*" | sed "s|$ROOT/||g; s|$work/||g" >>"$work/commands"
        "$@" >"$work/hold-19k.$i.txt" 2>&1 &
        gens="$gens $!"
        i=$((i + 1))
    done
    # Read the broker in the middle of the hold, when every generator has connected.
    sleep $(( (D + 10) / 2 + 2 ))
    rss1=$(awk '/VmRSS/ {print $2}' /proc/"$BPID"/status)
    for g in $gens; do wait "$g"; done
    echo "$rss0 $rss1" >"$work/hold_rss"
    stop_broker
fi

# The report.
{
    echo "nproc=$(nproc)"
    echo "model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel=$(uname -sr)"
    echo "os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "mosquitto=$("$MOSQ" -h 2>/dev/null | awk 'NR==1 {print $3}')"
    echo "acemq=$(cat VERSION 2>/dev/null)"
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "seconds=$BENCH_SECONDS"
    echo "window=$D"
    echo "warmup=$WARM"
    echo "inflight=$INFLIGHT"
    echo "queued=$QUEUED"
} >"$work/machine"
$PY - "$work" "$OUT" <<'PYEOF' && echo "bench: wrote $OUT" >&2
import json, os, sys

work, out = sys.argv[1], sys.argv[2]
def load(name):
    try:
        with open(os.path.join(work, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
def get(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d
def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, float) and v != int(v) and abs(v) < 100:
        return f"{v:,.1f}{unit}"
    return f"{int(round(v)):,}{unit}"
machine = dict(l.rstrip("\n").split("=", 1) for l in open(os.path.join(work, "machine")))
rate = open(os.path.join(work, "latency_rate")).read().strip()

rows = [  # scenario id, what it is, metric path, unit, better
    ("fanin-q0", "QoS 0 fan-in, 8 pub -> 1 sub, 64 B", "received_per_s", "msg/s", "higher"),
    ("fanin-q0", "", "latency_us.p99", "us p99", "lower"),
    ("fanout-q0", "QoS 0 fan-out, 1 pub -> 32 sub, 64 B", "received_per_s", "msg/s", "higher"),
    ("fanout-q0", "", "latency_us.p99", "us p99", "lower"),
    ("pairs-q1", "QoS 1, 16 pairs, 64 B", "received_per_s", "msg/s", "higher"),
    ("pairs-q1", "", "lost", "lost", "lower"),
    ("pairs-q2", "QoS 2, 16 pairs, 64 B", "received_per_s", "msg/s", "higher"),
    ("pairs-q2", "", "lost", "lost", "lower"),
    ("pairs-q2", "", "duplicates", "duplicates", "lower"),
    ("latency-q1", f"QoS 1, 16 pairs at {rate} msg/s each (half of Mosquitto's pairs-q1)",
     "received_per_s", "msg/s", "higher"),
    ("latency-q1", "", "latency_us.p50", "us p50", "lower"),
    ("latency-q1", "", "latency_us.p99", "us p99", "lower"),
    ("latency-q1", "", "latency_us.p999", "us p99.9", "lower"),
    ("storm", "Connect storm, 32 concurrent connect/CONNACK/DISCONNECT", "connects_per_s",
     "connects/s", "higher"),
    ("storm", "", "connect_latency_us.p99", "us p99", "lower"),
    ("idle-10k", "10,000 idle connections", "idle.held", "held", "higher"),
    ("idle-10k", "", "idle.bytes_per_conn", "broker bytes/conn", "lower"),
]
L = []
w = L.append
w("# acemq benchmarks\n")
w("Generated by `make bench` (tests/bench/run.sh) on " + machine["date"] + "; do not edit by hand.")
w("Every figure comes from one short run on a machine that may be doing other work: treat "
  "differences under about 15 % as noise. Both brokers run on the same machine as the load "
  "generator (build/acemq-bench, see docs/bench-tool.md), over loopback TCP.\n")
w("## Machine\n")
w("| | |\n|---|---|")
for k, label in [("model", "CPU"), ("nproc", "cores (nproc)"), ("mem", "memory"),
                 ("kernel", "kernel"), ("os", "system"), ("mosquitto", "Mosquitto"),
                 ("acemq", "acemq")]:
    w(f"| {label} | {machine.get(k, '')} |")
w("")
w(f"Each timed run: {machine['window']} s measured after {machine['warmup']} s of warm-up. "
  f"Both brokers get max_inflight_messages {machine['inflight']} and max_queued_messages "
  f"{machine['queued']}; publishers keep at most {machine['inflight']} messages in flight "
  "end to end. Mosquitto is single-threaded; acemqd runs 2 workers.\n")
w("## Results\n")
w("| scenario | metric | acemq | mosquitto | acemq/mosquitto |")
w("|---|---|---:|---:|---:|")
for sid, what, path, unit, better in rows:
    a = get(load(f"{sid}.acemq.json"), path)
    m = get(load(f"{sid}.mosquitto.json"), path)
    ratio = f"{a / m:.2f}" if isinstance(a, (int, float)) and isinstance(m, (int, float)) and m else "n/a"
    w(f"| {what} | {unit} ({better} is better) | {fmt(a)} | {fmt(m)} | {ratio} |")
w("")
procs = open(os.path.join(work, "hold_procs")).read().strip() if os.path.exists(os.path.join(work, "hold_procs")) else "0"
holds = [load(f"hold-19k.{i}.json") for i in range(int(procs))]
holds = [h for h in holds if h]
w("## 19,000 idle connections (acemqd)\n")
if holds:
    conn = sum(get(h, "idle.connected") or 0 for h in holds)
    held = sum(get(h, "idle.held") or 0 for h in holds)
    line = f"{conn:,} connected, {held:,} still held at the end, from {procs} generator process(es)"
    try:
        r0, r1 = (int(x) for x in open(os.path.join(work, "hold_rss")).read().split())
        line += f"; broker RSS {r0:,} kB -> {r1:,} kB ({(r1 - r0) * 1024 / max(conn, 1):,.0f} bytes per connection)"
    except (OSError, ValueError):
        pass
    w(line + ".\n")
else:
    w("Not run (acemqd did not start).\n")
w("## Commands\n")
w("Broker configurations (PORT is a free port picked at run time):\n")
for b in ("acemq", "mosquitto"):
    try:
        conf = open(os.path.join(work, f"{b}.conf")).read()
    except OSError:
        continue
    lines = [l if not l.startswith("listener") else "listener PORT 127.0.0.1" for l in conf.splitlines()]
    w(f"{b}:\n```\n" + "\n".join(lines) + "\n```")
w("\nGenerator runs, in the order they ran:\n```")
for line in open(os.path.join(work, "commands")):
    sid, b, cmd = line.rstrip("\n").split("|", 2)
    w(cmd)
w("```")
os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
with open(out, "w") as f:
    f.write("\n".join(L) + "\n")
PYEOF
