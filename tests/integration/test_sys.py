"""$SYS topics: the Mosquitto names, published every sys_interval."""

import re
import subprocess
import time

import pytest

from conftest import uid, wait_until
import mqttraw as m

NUMBER = re.compile(rb"^\d+(\.\d+)?( seconds)?$")


@pytest.fixture
def sys_broker(make_broker1):
    return make_broker1("sys_interval 1")


def collect(c, wanted, timeout=4.0):
    """Latest payload of each wanted topic."""
    got = {}
    deadline = time.monotonic() + timeout
    while not wanted <= set(got) and time.monotonic() < deadline:
        try:
            p = c.recv(max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        if p.type == m.PUBLISH:
            got[p.topic] = p.payload
    missing = wanted - set(got)
    assert not missing, "no %s (got %s)" % (sorted(missing), sorted(got))
    return got


def test_sys_counters(sys_broker, raws):
    topics = {"$SYS/broker/uptime", "$SYS/broker/clients/connected",
              "$SYS/broker/messages/received", "$SYS/broker/messages/sent",
              "$SYS/broker/bytes/received", "$SYS/broker/bytes/sent",
              "$SYS/broker/subscriptions/count", "$SYS/broker/version"}
    c = raws(sys_broker, 5)
    c.connect(uid("sys"))
    c.subscribe([("$SYS/broker/#", 0)])
    got = collect(c, topics)
    for t in topics - {"$SYS/broker/version"}:
        assert NUMBER.match(got[t]), (t, got[t])
    assert got["$SYS/broker/version"]
    # The first values may be retained ones from before we connected; the next count us.
    def counted():
        try:
            p = c.recv(0.5)
        except TimeoutError:
            return False
        got[p.topic] = p.payload
        return (int(got["$SYS/broker/clients/connected"]) >= 1
                and int(got["$SYS/broker/subscriptions/count"]) >= 1)
    wait_until(counted, 4, interval=0, what="$SYS to count this client")


def test_sys_counters_move(sys_broker, raws):
    c = raws(sys_broker, 5)
    c.connect(uid("sys"))
    c.subscribe([("$SYS/broker/messages/received", 0), ("$SYS/broker/bytes/received", 0),
                 ("$SYS/broker/clients/connected", 0)])
    first = collect(c, {"$SYS/broker/messages/received", "$SYS/broker/bytes/received"})
    others = []
    for _ in range(3):
        o = raws(sys_broker, 4)
        o.connect(uid("sysc"))
        others.append(o)
    for i in range(20):
        others[0].publish("sys/test", b"p" * 100)

    def moved():
        try:
            p = c.recv(0.5)
        except TimeoutError:
            return False
        if p.topic == "$SYS/broker/bytes/received":
            first.setdefault("bytes", []).append(int(p.payload))
        if p.topic == "$SYS/broker/messages/received":
            first.setdefault("msgs", []).append(int(p.payload))
        if p.topic == "$SYS/broker/clients/connected":
            first.setdefault("conn", []).append(int(p.payload))
        return (max(first.get("bytes", [0])) >= int(first["$SYS/broker/bytes/received"]) + 2000
                and max(first.get("msgs", [0])) >= int(first["$SYS/broker/messages/received"]) + 20
                and max(first.get("conn", [0])) >= 4)
    wait_until(moved, 5, interval=0, what="$SYS counters to count 20 publishes and 4 clients")


def test_sys_not_writable_by_clients(sys_broker, raws):
    c = raws(sys_broker, 5)
    c.connect(uid("sys"))
    c.subscribe([("$SYS/broker/version", 0)])
    real = c.recv_type(m.PUBLISH, timeout=3).payload
    w = raws(sys_broker, 5)
    w.connect(uid("sysw"))
    w.publish("$SYS/broker/version", b"forged", qos=1, pid=1)
    try:
        ack = w.recv(2)
        assert ack.type in (m.PUBACK, m.DISCONNECT)
    except m.Closed:
        pass
    # Whatever the broker answered, subscribers never see the forged value.
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        try:
            p = c.recv(max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        assert p.payload != b"forged"
    assert real


def test_sys_with_paho(sys_broker, clients):
    c = clients(sys_broker, protocol=4)
    c.subscribe("$SYS/broker/clients/connected", 0)
    c.subscribe("$SYS/broker/uptime", 0)
    seen = {}

    def counted_me():
        for msg in c.drain(0.3):
            assert NUMBER.match(msg.payload), (msg.topic, msg.payload)
            seen[msg.topic] = int(msg.payload.split()[0])
        return seen.get("$SYS/broker/clients/connected", 0) >= 1 and "$SYS/broker/uptime" in seen
    wait_until(counted_me, 5, interval=0, what="$SYS values counting this client")


def test_sys_with_mosquitto_sub(sys_broker):
    def sub(*args):
        return subprocess.run(["mosquitto_sub", "-h", sys_broker.host, "-p", str(sys_broker.port),
                               "-V", "mqttv5", "-C", "1", "-v"] + list(args),
                              capture_output=True, timeout=10)
    r = sub("-t", "$SYS/broker/uptime", "-W", "5")
    assert r.returncode == 0, r.stderr
    topic, value = r.stdout.decode().strip().split(" ", 1)
    assert topic == "$SYS/broker/uptime" and NUMBER.match(value.encode()), r.stdout
    # "#" matches no $SYS topic: neither the retained values nor the next updates.
    r = sub("-t", "#", "-W", "2")
    assert r.returncode != 0 and r.stdout == b"", r.stdout
