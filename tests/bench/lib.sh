# tests/bench/lib.sh: shell helpers shared by run.sh (make bench) and profile.sh (make profile).
# Sourced, not run. Expects PY (the Python that runs the helpers) to be set.

free_port() {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # $1 = port, $2 = seconds (5): true once something accepts there
    $PY - "$1" "${2:-5}" <<'PYEOF'
import socket, sys, time
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PYEOF
}

stop_broker() { # stops the broker started as BPID, if any
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
