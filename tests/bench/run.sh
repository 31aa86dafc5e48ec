#!/bin/sh
# tests/bench/run.sh: `make bench`. Measures build/acemqd against Debian's Mosquitto with
# build/acemq-bench, in one run on one machine, alternating brokers scenario by scenario so
# that drifts in the machine's load hit both alike, and writes docs/benchmarks.md (figures,
# ratios acemq/mosquitto, the machine, and the exact command of every run).
#
# Environment: BENCH_SECONDS (total budget, default 600), BENCH_OUT (default docs/benchmarks.md),
# BENCH, ACEMQD, MOSQUITTO (binaries), BENCH_INFLIGHT / BENCH_QUEUED (the limits both brokers get),
# BENCH_TLS_IDLE (idle TLS connections), BENCH_KEEP (keep the run's files in this directory),
# BENCH_REPORT_FROM (only rewrite the report from such a directory), TOKEN (build/acemq-token).
#
# Besides acemqd against Mosquitto, two comparisons only acemqd can make: ACE (RFC 9431) tokens
# against anonymous clients on one broker (Mosquitto has no ACE), and acemqd's persistence
# policies (off / fsync everysec / fsync always) beside Mosquitto with persistence on.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
PY=/usr/bin/python3
. "$ROOT/tests/bench/lib.sh"
BENCH_SECONDS=${BENCH_SECONDS:-600}
BENCH=${BENCH:-$ROOT/build/acemq-bench}
ACEMQD=${ACEMQD:-$ROOT/build/acemqd}
TOKEN=${TOKEN:-$ROOT/build/acemq-token}
MOSQ=${MOSQUITTO:-/usr/sbin/mosquitto}
OUT=${BENCH_OUT:-$ROOT/docs/benchmarks.md}
INFLIGHT=${BENCH_INFLIGHT:-64}
QUEUED=${BENCH_QUEUED:-100000}
IDLE_N=10000
HOLD_N=19000
TLS_IDLE_N=${BENCH_TLS_IDLE:-2000}
# Both brokers and the generator use this one ECDHE-ECDSA suite, so a TLS figure compares brokers,
# not ciphers (Mosquitto's OpenSSL would otherwise pick AES-256-GCM and acemq AES-128-GCM).
SUITE=TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256

# Each measured window gets 1/45 of the budget: 40 timed runs and 5 idle holds, plus the
# warm-up, connect and drain time around each, come to about the budget.
D=$((BENCH_SECONDS / 45))
[ "$D" -lt 3 ] && D=3
WARM=2
[ "$D" -lt 6 ] && WARM=1

[ -x "$BENCH" ] || { echo "bench: $BENCH missing; run make first" >&2; exit 1; }
[ -x "$MOSQ" ] || { echo "bench: $MOSQ missing; run make deps" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null

work=$(mktemp -d)
REPORT_ONLY=""
if [ -n "${BENCH_REPORT_FROM:-}" ]; then
    rmdir "$work"
    work=$BENCH_REPORT_FROM
    REPORT_ONLY=1
fi
BPID=""
PID_acemq=""
PID_mosquitto=""
PID_ace=""
PERSIST_PIDS=""
cleanup() {
    for p in $BPID $PID_acemq $PID_mosquitto $PID_ace $PERSIST_PIDS; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    [ -n "$REPORT_ONLY" ] && return
    if [ -n "${BENCH_KEEP:-}" ]; then
        mkdir -p "$BENCH_KEEP" && cp -r "$work"/. "$BENCH_KEEP"/
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The test PKI, made fresh for every run: a P-256 CA and a P-256 server certificate for
# localhost / 127.0.0.1. Readable by all, because Mosquitto started as root reads its files as
# the mosquitto user; nothing here is secret beyond the run.
make_pki() {
    pki=$work/pki
    mkdir -p "$pki" && chmod 755 "$work" "$pki" || return 1
    (
        cd "$pki" || exit 1
        openssl ecparam -name prime256v1 -genkey -noout -out ca.key &&
        openssl req -x509 -new -key ca.key -subj /CN=acemq-bench-ca -days 2 -out ca.crt &&
        openssl ecparam -name prime256v1 -genkey -noout -out server.key &&
        openssl req -new -key server.key -subj /CN=localhost -out server.csr &&
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext &&
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile ext -out server.crt 2>/dev/null &&
        chmod 644 ./*
    ) >/dev/null 2>&1
}
if [ -z "$REPORT_ONLY" ]; then
make_pki || { echo "bench: openssl could not make the test certificates" >&2; exit 1; }
fi



# conf BROKER PORT TLSPORT: the equivalent configurations of the two. PERSIST (persistence lines,
# default off) and ACE_CONF (acemqd's ACE lines) are added when set.
conf() {
    [ "$1" = acemq ] && printf 'workers 2\n'
    printf 'allow_anonymous true\nmax_inflight_messages %s\nmax_queued_messages %s\n' \
        "$INFLIGHT" "$QUEUED"
    printf '%s\nlog_dest none\nset_tcp_nodelay true\n' "${PERSIST:-persistence false}"
    [ "$1" = acemq ] && [ -n "${ACE_CONF:-}" ] && printf '%s\n' "$ACE_CONF"
    printf 'listener %s 127.0.0.1\n' "$2"
    [ "$1" = acemq ] && printf 'max_connections 100000\n'
    printf 'listener %s 127.0.0.1\ncertfile %s\nkeyfile %s\ntls_version tlsv1.2\n' "$3" \
        "$pki/server.crt" "$pki/server.key"
    [ "$1" = acemq ] && printf 'max_connections 100000\n'
    return 0
}

# start_broker BROKER [NAME]: starts a fresh broker (its files are NAME.conf and NAME.log, NAME
# defaulting to BROKER); sets BPID, BPORT and BTLSPORT, or returns 1 (then reported n/a).
start_broker() {
    bname=${2:-$1}
    BPORT=$(free_port)
    BTLSPORT=$(free_port)
    [ "$BTLSPORT" = "$BPORT" ] && BTLSPORT=$(free_port)
    conf "$1" "$BPORT" "$BTLSPORT" >"$work/$bname.conf"
    if [ "$1" = acemq ]; then
        [ -x "$ACEMQD" ] || return 1
        "$ACEMQD" -c "$work/$bname.conf" >"$work/$bname.log" 2>&1 &
    else
        "$MOSQ" -c "$work/$bname.conf" >"$work/$bname.log" 2>&1 &
    fi
    BPID=$!
    if ! wait_port "$BPORT" || ! wait_port "$BTLSPORT"; then
        echo "bench: $bname did not start:" >&2
        tail -5 "$work/$bname.log" >&2
        stop_broker
        return 1
    fi
}



cpu_ticks() { # $1 = pid: user + system CPU time of the process, in clock ticks
    awk '{print $14 + $15}' /proc/"$1"/stat 2>/dev/null || echo 0
}
HZ=$(getconf CLK_TCK)

# run BROKER ID ARGS...: one generator run against the broker started for it (BPORT, or
# BTLSPORT with --tls; CPU time of RUNPID is recorded beside the JSON).
run() {
    b=$1; id=$2; shift 2
    echo "== $id $b" >&2
    port=$BPORT
    case " $* " in *" --tls "*) port=$BTLSPORT ;; esac
    set -- "$BENCH" --port "$port" --label "$b" --json "$work/$id.$b.json" --quiet "$@"
    echo "$id|$b|$*" | sed "s|$ROOT/||g; s|$work/||g" >>"$work/commands"
    c0=$(cpu_ticks "${RUNPID:-0}")
    "$@" >"$work/$id.$b.txt" 2>&1 || echo "bench: $id against $b failed" >&2
    c1=$(cpu_ticks "${RUNPID:-0}")
    echo "$(( c1 - c0 )) $HZ" >"$work/$id.$b.cpu"
    tail -n +1 "$work/$id.$b.txt" | sed -n '2,9p' >&2
}

# ACE keys and tokens, made fresh for every run with build/acemq-token: the AS's P-256 key, two
# client (cnf) keys, one HMAC-bound token for the message runs (every client presents it; the
# broker's verified-token cache answers after the first), and ACE_TOKENS ES256-signed CWTs bound
# to the P-256 client key, each with its own cti, so every connect of the storm presents a token
# the broker has not verified yet (the JSON counts any the pool had to hand out twice).
# A full handshake with ACE costs the broker ~7 ms of CPU; two cores take at most ~300 a second,
# so 400 per second of the window (warm-up and drain included) leave none to reuse.
ACE_TOKENS=$(((D + WARM + 2) * 300))
ACE_SCOPE='[["bench/#",["pub","sub"]]]'
make_ace() {
    ace=$work/ace
    mkdir -p "$ace/storm" || return 1
    [ -x "$TOKEN" ] || return 1
    "$TOKEN" keygen --type p256 --out "$ace/as" >/dev/null &&
    "$TOKEN" keygen --type p256 --kid dev-p256 --out "$ace/dev-p256" >/dev/null &&
    "$TOKEN" keygen --type sym --kid dev-sym --out "$ace/dev-sym" >/dev/null &&
    "$TOKEN" mint --format cwt-sign1 --key "$ace/as.key" --iss bench-as --aud acemq-bench \
        --exp 7200 --scope "$ACE_SCOPE" --cnf-key "$ace/dev-sym.cose" --out "$ace/sym.cwt" &&
    seq -f %08g 1 "$ACE_TOKENS" | xargs -P 2 -I{} "$TOKEN" mint --format cwt-sign1 \
        --key "$ace/as.key" --iss bench-as --aud acemq-bench --exp 7200 --scope "$ACE_SCOPE" \
        --cnf-key "$ace/dev-p256.cose" --cti {} --out "$ace/storm/{}.cwt" &&
    [ "$(ls "$ace/storm" | wc -l)" -eq "$ACE_TOKENS" ]
}

# ACE (RFC 9431) against anonymous clients on acemqd, on its TLS listener, in one run.
# Under ACE, anonymous (MQTT:none) clients reach only the ace_public_topic filters, so they use
# topics under pub/ and ACE clients topics under bench/ (their token's scope): every ACE PUBLISH,
# SUBSCRIBE and forward is checked against the token's scope, every anonymous one against the
# public filter. Both sides speak MQTT 5 over TLS with the same suite and certificate, against
# the same configuration. Each message run gets a broker of its own (started afresh, so no run
# inherits another's heap), and the rounds alternate the order: anon, ACE in odd rounds, ACE,
# anon in even ones. The report pairs the runs of each round and gives the median ratio.
ACE_ROUNDS=${BENCH_ACE_ROUNDS:-4}
ace_broker() { # starts a fresh acemqd with the ACE lines; RUNPID follows it
    ACE_CONF=$(printf 'ace_audience acemq-bench\nace_issuer bench-as %s\nace_public_topic pub/# pubsub' \
        "$ace/as.pub")
    start_broker acemq acemq-ace
    rc=$?
    ACE_CONF=""
    PID_ace=$BPID
    RUNPID=$BPID
    return $rc
}
measure_ace() {
    echo "== ACE: keys and $ACE_TOKENS tokens" >&2
    if ! make_ace; then
        echo "bench: cannot make the ACE keys and tokens ($TOKEN); ACE runs skipped" >&2
        return 0
    fi
    anon="--mqtt 5 --topic-prefix pub"
    acesym="--ace-token $ace/sym.cwt --ace-pop-key $ace/dev-sym.key"
    acep256="--ace-token-dir $ace/storm --ace-pop-key $ace/dev-p256.key"
    ace_broker || return 0
    run anon ace-storm --scenario connect-storm --clients 32 --threads 2 $TLSN --mqtt 5 \
        --duration "$D" --warmup "$WARM"
    run ace ace-storm --scenario connect-storm --clients 32 --threads 2 $TLSN $acep256 \
        --duration "$D" --warmup "$WARM"
    stop_broker
    r=1
    while [ $r -le "$ACE_ROUNDS" ]; do
        order="anon ace"
        [ $((r % 2)) = 0 ] && order="ace anon"
        for sc in fanin-q0 pairs-q1; do
            for who in $order; do
                if [ $who = ace ]; then who_args=$acesym; else who_args=$anon; fi
                ace_broker || return 0
                if [ $sc = fanin-q0 ]; then
                    run $who ace-$sc.r$r --scenario fan-in --qos 0 --publishers 8 \
                        --subscribers 1 $TLSV $who_args $COMMON
                else
                    run $who ace-$sc.r$r --scenario pairs --qos 1 --publishers 16 $TLSV \
                        $who_args $COMMON
                fi
                stop_broker
            done
        done
        r=$((r + 1))
    done
    PID_ace=""
}

# QoS 1 pairs with durable sessions (3.1.1, clean session 0), so the in-flight messages are
# state a persistent broker stores: acemqd with persistence off, fsync everysec and fsync always,
# and Mosquitto with persistence on (autosave_interval left at its default, 1800 s), all four up
# at once, run one after the other.
measure_persistence() {
    pdir=$work/persist
    mkdir -p "$pdir" && chmod 777 "$pdir" || return 0
    plabels=""
    for mode in off everysec always mosquitto; do
        b=acemq
        case $mode in
        off) PERSIST="persistence false" ;;
        mosquitto)
            b=mosquitto
            mkdir -p "$pdir/$mode" && chmod 777 "$pdir/$mode"
            PERSIST=$(printf 'persistence true\npersistence_location %s/' "$pdir/$mode") ;;
        *)
            mkdir -p "$pdir/$mode"
            PERSIST=$(printf 'persistence true\npersistence_location %s\nfsync %s' \
                "$pdir/$mode" "$mode") ;;
        esac
        if start_broker $b persist-$mode; then
            eval "PPORT_$mode=$BPORT PPID_$mode=$BPID"
            PERSIST_PIDS="$PERSIST_PIDS $BPID"
            plabels="$plabels $mode"
        fi
        BPID=""
    done
    PERSIST=""
    for mode in $plabels; do
        eval "BPORT=\$PPORT_$mode RUNPID=\$PPID_$mode"
        run $mode persist-q1 --scenario pairs --qos 1 --publishers 16 --durable $COMMON
        du -sk "$pdir/$mode" 2>/dev/null | awk -v m=$mode '{print m, $1}' >>"$work/persist_kb"
    done
    for mode in $plabels; do eval "kill \$PPID_$mode; wait \$PPID_$mode" 2>/dev/null; done
    PERSIST_PIDS=""
    df -T "$pdir" | awk 'NR==2 {print $2}' >"$work/persist_fs"
}

measure() {
# Throughput scenarios: both brokers stay up; the order alternates acemq, mosquitto per scenario.
COMMON="--duration $D --warmup $WARM --size 64 --inflight $INFLIGHT"
ups=""
for b in acemq mosquitto; do
    if start_broker "$b"; then
        eval "PORT_$b=$BPORT TLSPORT_$b=$BTLSPORT PID_$b=$BPID"
        ups="$ups $b"
        BPID=""
    fi
done
timed() { # id args...: the scenario against each broker that is up
    id=$1; shift
    for b in $ups; do
        eval "BPORT=\$PORT_$b BTLSPORT=\$TLSPORT_$b RUNPID=\$PID_$b"
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
# The p99 comparison at this load is close and the machine is noisy: three rounds, alternating
# brokers, and the report takes the median of each figure.
for r in 1 2 3; do
    timed latency-q1.r$r --scenario pairs --qos 1 --publishers 16 --rate "$RATE" $COMMON
done
timed storm --scenario connect-storm --clients 32 --duration "$D" --warmup "$WARM"

# TLS 1.2, same certificates and suite for both. Connect storms do not verify the broker's
# certificate: that is the generator's CPU (two ECDSA verifications, about 4 ms in mbedTLS),
# which shares the two cores with the broker; the message runs verify it.
TLSV="--tls --cafile $pki/ca.crt --servername localhost --ciphers $SUITE"
TLSN="--tls --ciphers $SUITE"
timed tls-storm-full --scenario connect-storm --clients 32 --threads 2 $TLSN \
    --duration "$D" --warmup "$WARM"
timed tls-storm-resume --scenario connect-storm --clients 32 --threads 2 $TLSN --resume \
    --duration "$D" --warmup "$WARM"
timed tls-pairs-q1 --scenario pairs --qos 1 --publishers 16 $TLSV $COMMON
# Latency of established TLS clients (fan-in 8 -> 1, QoS 1, 250 msg/s per publisher), alone and
# while a storm of 32 concurrent full TLS handshakes runs from a second generator process.
LAT_RATE=250
timed tls-fanin-quiet --scenario fan-in --qos 1 --publishers 8 --subscribers 1 \
    --rate "$LAT_RATE" $TLSV $COMMON
for b in $ups; do
    eval "BPORT=\$PORT_$b BTLSPORT=\$TLSPORT_$b RUNPID=\$PID_$b"
    set -- "$BENCH" --port "$BTLSPORT" --label "$b" --json "$work/tls-stormbg.$b.json" --quiet \
        --scenario connect-storm --clients 32 --threads 1 $TLSN --duration "$((D + WARM + 3))" \
        --warmup 0
    echo "tls-stormbg|$b|$* &" | sed "s|$ROOT/||g; s|$work/||g" >>"$work/commands"
    "$@" >"$work/tls-stormbg.$b.txt" 2>&1 &
    sg=$!
    sleep 1
    run "$b" tls-fanin-storm --scenario fan-in --qos 1 --publishers 8 --subscribers 1 \
        --rate "$LAT_RATE" $TLSV $COMMON
    wait "$sg"
done
for b in $ups; do eval "kill \$PID_$b; wait \$PID_$b; PID_$b=''" 2>/dev/null; done

measure_ace
measure_persistence

# Idle memory: a fresh broker for each, so its RSS before is its empty footprint.
for b in acemq mosquitto; do
    start_broker "$b" || continue
    sleep 1
    RUNPID=$BPID run "$b" idle-10k --scenario idle --clients "$IDLE_N" --duration "$D" \
        --broker-pid "$BPID"
    stop_broker
done
for b in acemq mosquitto; do
    start_broker "$b" || continue
    sleep 1
    RUNPID=$BPID run "$b" idle-tls --scenario idle --clients "$TLS_IDLE_N" --threads 2 $TLSN \
        --duration "$D" --broker-pid "$BPID"
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

}
[ -n "$REPORT_ONLY" ] || measure

# The report.
[ -n "$REPORT_ONLY" ] || {
    echo "nproc=$(nproc)"
    echo "model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel=$(uname -sr)"
    echo "os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "mosquitto=$("$MOSQ" -h 2>/dev/null | awk 'NR==1 {print $3}')"
    echo "acemq=$(cat VERSION 2>/dev/null)"
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "load=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "seconds=$BENCH_SECONDS"
    echo "window=$D"
    echo "warmup=$WARM"
    echo "inflight=$INFLIGHT"
    echo "queued=$QUEUED"
    echo "tls_idle=$TLS_IDLE_N"
    echo "lat_rate=$LAT_RATE"
    echo "suite=$SUITE"
    echo "openssl=$(openssl version 2>/dev/null)"
    echo "mbedtls=$(dpkg-query -W -f '${Version}' libmbedtls-dev 2>/dev/null)"
} >"$work/machine"
$PY "$ROOT/tests/bench/report.py" "$work" "$OUT" && echo "bench: wrote $OUT" >&2
