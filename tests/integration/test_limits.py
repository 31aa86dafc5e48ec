"""Limits: max_packet_size checked from the fixed header, partial CONNECTs, queued messages and
bytes, slow consumers, in-flight windows, subscriptions, connections, rates and memory_limit."""

import os
import re
import resource
import select
import socket
import time

import pytest

from conftest import (IS_MOSQ, PacketTypes, acemq_only, assert_serves, free_port, props, uid,
                      wait_until)
import mqttraw as m
from metricshelp import scrape, start as with_metrics, val


def status_kb(pid, key):
    """A figure of /proc/PID/status in KiB: VmRSS (resident), VmData (private writable mappings,
    which count memory that was allocated but never touched)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss_kb(pid):
    return status_kb(pid, "VmRSS")


@pytest.mark.parametrize("version", [4, 5])
def test_huge_remaining_length_refused_without_allocation(make_broker, raws, version):
    b = make_broker("max_packet_size 1000")
    c = raws(b, version)
    ack = c.connect(uid("huge"))
    if version == 5:
        assert ack.prop(m.MAXIMUM_PACKET_SIZE) == 1000
    before = rss_kb(b.proc.pid)
    c.send(bytes([0x30]) + m.varint(200 * 1024 * 1024))    # the fixed header only
    t0 = time.monotonic()
    pkts = c.wait_closed(2)
    assert time.monotonic() - t0 < 1.5
    if version == 5 and (pkts or not IS_MOSQ):     # mosquitto may just close
        assert [(p.type, p.rc) for p in pkts] == [(m.DISCONNECT, 0x95)], pkts
    else:
        assert pkts == [], pkts
    assert rss_kb(b.proc.pid) - before < 50 * 1024, "broker grew after a 200 MB claim"
    assert_serves(b)


@acemq_only
def test_partial_connect_declaring_1mb_costs_little(make_broker1, raws):
    """300 unauthenticated sockets each start a CONNECT that declares 1,000,000 bytes, send a few of
    them and stall: the broker keeps what arrived, not what was declared (300 MB), and
    connect_timeout closes every one of them."""
    timeout = 2
    b = make_broker1("connect_timeout %d" % timeout)
    assert_serves(b)                    # the worker's arena exists before the measure
    probe = raws(b, 5)
    probe.connect(uid("probe"))
    pid = b.proc.pid
    rss0, data0 = status_kb(pid, "VmRSS"), status_kb(pid, "VmData")
    start = b"\x10" + m.varint(1000000) + m.mqtt_str("MQTT") + b"\x05\x02\x00\x3c"
    opened, socks = {}, []
    try:
        for _ in range(300):
            s = socket.create_connection((b.host, b.port), timeout=5)
            s.sendall(start)
            opened[s] = time.monotonic()
            socks.append(s)
        open_now = list(socks)
        # two loop turns after the last bytes arrived: the broker has read them all
        assert held_open(probe) and held_open(probe)
        rss, data = status_kb(pid, "VmRSS") - rss0, status_kb(pid, "VmData") - data0
        assert rss < 40 * 1024, "RSS grew by %d KiB for 300 partial CONNECTs" % rss
        assert data < 40 * 1024, "VmData grew by %d KiB for 300 partial CONNECTs" % data
        lived = []
        deadline = time.monotonic() + timeout + 10
        while open_now and time.monotonic() < deadline:
            for s in select.select(open_now, [], [], 0.5)[0]:
                assert s.recv(16) == b"", "the broker answered a partial CONNECT"
                lived.append(time.monotonic() - opened[s])
                open_now.remove(s)
        assert not open_now, "%d sockets outlived connect_timeout %d by 10 s" \
            % (len(open_now), timeout)
        assert min(lived) > timeout - 0.5 and max(lived) < timeout + 4, (min(lived), max(lived))
    finally:
        for s in socks:
            s.close()
    assert_serves(b)


def test_packet_over_max_packet_size(make_broker, raws):
    b = make_broker("max_packet_size 1000")
    topic = uid("big")
    s = raws(b, 5)
    s.connect(uid("big"))
    s.subscribe([(topic, 0)])
    c = raws(b, 5)
    c.connect(uid("big"))
    c.publish(topic, b"y" * 900)                # under the limit: delivered
    assert len(s.recv_type(m.PUBLISH).payload) == 900
    c.publish(topic, b"x" * 1000)               # over it (header included)
    pkts = c.wait_closed(3)
    if not (IS_MOSQ and pkts == []):
        assert [(p.type, p.rc) for p in pkts] == [(m.DISCONNECT, 0x95)], pkts
    s.recv_nothing(0.2)
    assert_serves(b)


def test_big_messages_within_default_limit(broker, raws, clients):
    topic = uid("big")
    s = raws(broker, 5)
    s.connect(uid("big"))
    s.subscribe([(topic, 1)])
    payload = bytes(range(256)) * 2048          # 512 KiB (acemq's default max_packet_size: 1 MiB)
    clients(broker).publish(topic, payload, qos=1)
    p = s.recv_type(m.PUBLISH, timeout=10)
    assert p.payload == payload


def test_max_queued_bytes(make_broker, clients):
    b = make_broker("max_queued_bytes 1000")
    cid = uid("qb")
    topic = uid("qb")
    s = clients(b, cid, clean=False,
                properties=props(PacketTypes.CONNECT, SessionExpiryInterval=300))
    s.subscribe(topic, 1)
    s.disconnect()
    pub = clients(b)
    for i in range(10):
        pub.publish(topic, b"%03d" % i + b"." * 297, qos=1)     # 300-byte payloads
    s = clients(b, cid, clean=False,
                properties=props(PacketTypes.CONNECT, SessionExpiryInterval=300))
    got = [int(x.payload[:3]) for x in s.drain(1.0)]
    assert got == list(range(len(got)))
    assert 3 <= len(got) <= 4, got


def test_many_clients_fan_out(broker, raws):
    topic = uid("fan")
    subs = []
    for i in range(100):
        c = raws(broker, 4 if i % 2 else 5)
        c.connect(uid("fan"))
        c.subscribe([(topic, 1)])
        subs.append(c)
    pub = raws(broker, 5)
    pub.connect(uid("fan"))
    for i in range(5):
        pub.publish(topic, b"%d" % i, qos=1, pid=i + 1)
    for c in subs:
        got = []
        for _ in range(5):
            p = c.recv_type(m.PUBLISH)
            got.append(int(p.payload))
            c.send(m.puback(p.pid, version=c.version))
        assert got == list(range(5))


# ---- limits of issue 8: each enforced, each shown -----------------------------------------------


def refused(b, port=None, version=5):
    """True when a new connection gets no CONNACK: the broker closed it at accept."""
    try:
        c = m.RawClient(b.host, port or b.port, version, timeout=3)
    except OSError:
        return True
    with c:
        if not c.try_send(m.connect(uid("over"), version)):
            return True
        try:
            c.recv_type(m.CONNACK, 3)
            return False
        except (m.Closed, ConnectionError):
            return True


def connected(b, raws, version=5, port=None):
    """A connected raw client. Retries while sockets that just closed (the fixture's readiness
    probe, a refused attempt) still count against the limit for a moment."""
    deadline = time.monotonic() + 5
    while True:
        c = raws(b, version)
        if port:
            c.sock.close()
            c.sock = socket.create_connection((b.host, port), timeout=5)
        try:
            c.connect(uid("lim"))
            return c
        except (m.Closed, ConnectionError):
            c.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def held_open(c):
    """The connection still answers a PINGREQ."""
    c.send(m.pingreq())
    return c.recv_type(m.PINGRESP, 3) is not None


@acemq_only
def test_max_connections_per_listener(make_broker, raws):
    port2 = free_port()
    b = make_broker("max_connections 2", "listener %d 127.0.0.1" % port2)
    first = [connected(b, raws) for _ in range(2)]
    assert refused(b), "a third connection on a listener with max_connections 2 was served"
    for _ in range(3):                            # the other listener has no limit
        connected(b, raws, port=port2)
    assert all(held_open(c) for c in first), "the first two connections were hurt"
    wait_until(lambda: "max_connections reached" in b.log(), 3, what="a log line")
    first[0].close()                      # room again
    wait_until(lambda: not refused(b), 5, what="a connection after one left")


@acemq_only
def test_global_max_connections(make_broker, raws):
    port2 = free_port()
    b = make_broker("global_max_connections 3", "listener %d 127.0.0.1" % port2)
    a = connected(b, raws)
    connected(b, raws, 4)
    c = connected(b, raws, port=port2)
    assert refused(b) and refused(b, port2), "a 4th connection got through global_max_connections 3"
    assert held_open(a) and held_open(c)
    wait_until(lambda: "event=connection_refused" in b.log(), 3, what="a log line")
    c.close()
    wait_until(lambda: not refused(b, port2), 5, what="a connection after one left")


def count_for(sub, seconds):
    got, deadline = 0, time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        try:
            if sub.recv(left).type == m.PUBLISH:
                got += 1
        except TimeoutError:
            return got


@acemq_only
@pytest.mark.parametrize("directive,payload,per_second", [
    ("rate_limit_messages 50", b"m", 50),
    ("rate_limit_bytes 5000", b"b" * 500, 10),
], ids=["messages", "bytes"])
def test_rate_limits_throttle(make_broker1, raws, directive, payload, per_second):
    import threading
    b = make_broker1(directive)
    topic = uid("rate")
    sub = raws(b, 5)
    sub.connect(uid("rsub"))
    sub.subscribe([(topic, 0)])
    pub = raws(b, 5)
    pub.connect(uid("rpub"))
    pub.sock.settimeout(None)
    batch = m.publish(topic, payload) * 10
    offered = [0]

    def publish_fast():                    # blocks in sendall once the broker stops reading
        try:
            for _ in range(per_second * 3):
                pub.sock.sendall(batch)
                offered[0] += 10
        except OSError:
            pass

    threading.Thread(target=publish_fast, daemon=True).start()
    got = count_for(sub, 3.0)
    assert offered[0] >= 4 * per_second * 3, "the publisher did not go fast enough"
    assert 0 < got < 2 * per_second * 3, "%d messages in 3 s with %s" % (got, directive)
    assert count_for(sub, 1.2) > 0, "throttled, not stopped"
    assert not select.select([pub.sock], [], [], 0)[0], "the publisher was disconnected"
    assert "event=disconnect" not in b.log()


def heap_used(log):
    found = re.findall(r"event=memory_limit used=(\d+)", log)
    return int(found[0]) if found else None


def slow_reader(b):
    """A raw client with a tiny receive buffer, so that what it does not read stays in the broker."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((b.host, b.port))
    c = m.RawClient.__new__(m.RawClient)
    c.version, c.sock, c.buf, c.closed = 5, s, bytearray(), False
    return c


@acemq_only
def test_memory_limit_sheds_load_and_recovers(make_broker1, raws):
    probe = make_broker1("memory_limit 1")   # always over: its log says what idle costs
    idle = wait_until(lambda: heap_used(probe.log()), 5, what="the idle heap figure")
    b = with_metrics(make_broker1, "memory_limit %d" % (idle + 4 * 1024 * 1024),
                     "max_queued_messages 0")
    time.sleep(1.2)
    assert not refused(b), "refused while idle:\n" + b.log()[-2000:]
    topic = uid("mem")
    slow = slow_reader(b)
    slow.connect(uid("slow"))
    slow.subscribe([(topic, 0)])
    pub = raws(b, 5)
    pub.connect(uid("fast"))
    chunk = b"z" * 10000
    for i in range(1500):                  # 15 MB of QoS 0 the slow reader never takes
        pub.publish(topic, chunk)
    wait_until(lambda: "refusing new connections" in b.log(), 5, what="load shedding")
    assert refused(b), "a new connection was served over memory_limit"
    assert held_open(pub), "connected clients keep being served"
    # The other half: QoS 0 to a consumer with a backlog is dropped and counted, while a consumer
    # that keeps up (the publisher, subscribed now) gets every message: one at a time, and 20 in
    # one write (queued in one loop turn, they wait for its flush: no backlog of its own).
    assert pub.subscribe([(topic, 0)], pid=2).codes == [0]
    before = val(scrape(b), "acemq_messages_dropped_total", reason="other")
    for i in range(20):
        pub.publish(topic, b"shed %d" % i)
        assert pub.recv_type(m.PUBLISH).payload == b"shed %d" % i
    pub.send(b"".join(m.publish(topic, b"burst %d" % i) for i in range(20)))
    assert [pub.recv_type(m.PUBLISH).payload for _ in range(20)] == \
        [b"burst %d" % i for i in range(20)]
    wait_until(lambda: val(scrape(b), "acemq_messages_dropped_total", reason="other")
               == before + 40, 5, what="40 drops counted")
    assert "memory_limit reached: QoS 0 to a slow consumer" in b.log()
    assert val(scrape(b), "acemq_messages_dropped_total", reason="queue_full") == 0
    slow.close()                          # its queue goes with its session
    wait_until(lambda: "back to normal" in b.log(), 5, what="the end of load shedding")
    wait_until(lambda: not refused(b), 3, what="connections accepted again")
    assert_serves(b)


@acemq_only
def test_slow_consumer_drops_counted_others_served(make_broker1, raws):
    """A subscriber that does not read: its connection's writes pass the 1 MiB high-water, its
    queue fills to max_queued_messages, then its deliveries are dropped and counted, while another
    subscriber to the same topic gets every message in order and the publisher every PUBACK."""
    b = with_metrics(make_broker1, "max_queued_messages 50")
    topic = uid("slowc")
    slow = slow_reader(b)
    try:
        slow.connect(uid("slow"))
        slow.subscribe([(topic, 0)])      # QoS 0: only the write backpressure holds it back
        good = raws(b, 5)
        good.connect(uid("good"))
        good.subscribe([(topic, 1)])
        pub = raws(b, 5)
        pub.connect(uid("pub"))
        size, n, batch = 16 * 1024, 512, 8  # 8 MiB: the high-water, the kernel's buffers, 50 more
        for first in range(0, n, batch):
            for i in range(first, first + batch):
                pub.publish(topic, b"%05d" % i + b"." * (size - 5), qos=1, pid=i + 1)
            for i in range(first, first + batch):
                p = good.recv_type(m.PUBLISH, 10)
                assert int(p.payload[:5]) == i, "the good subscriber got %r" % p
                good.send(m.puback(p.pid))
            assert [pub.recv_type(m.PUBACK, 10).pid for _ in range(batch)] == \
                list(range(first + 1, first + batch + 1))
        assert held_open(pub) and held_open(good)
        assert_serves(b)
        dropped = val(scrape(b), "acemq_messages_dropped_total", reason="queue_full")
        # it kept a full write buffer and a full queue before dropping anything
        assert 0 < dropped <= n - 50 - (1 << 20) // size, dropped
        got = [int(p.payload[:5]) for p in publishes(slow, 2.0)]
        assert got == sorted(set(got)), "the slow consumer's messages are out of order"
        assert len(got) + dropped == n, "%d delivered + %d dropped of %d" % (len(got), dropped, n)
        wait_until(lambda: "reason=\"queue full\"" in b.log(), 3, what="a message_dropped line")
    finally:
        slow.close()


@acemq_only
def test_topic_levels_and_length(make_broker1, raws):
    b = make_broker1("max_topic_levels 4", "max_topic_length 40")
    c = raws(b, 5)
    c.connect(uid("lv"))
    ack = c.subscribe([("a/b/c/d", 0), ("a/b/c/d/e", 0), ("x" * 40, 0), ("x" * 41, 0),
                       ("$share/g/a/b/c/d", 0)])
    assert ack.codes == [0, 0x8F, 0, 0x8F, 0], ack
    c4 = raws(b, 4)
    c4.connect(uid("lv"))
    assert c4.subscribe([("a/b/c/d/e", 0), ("a/+/c", 0)]).codes == [0x80, 0]
    c.publish("a/b/c/d", b"ok")
    assert c.recv_type(m.PUBLISH).topic == "a/b/c/d"
    c.publish("a/b/c/d/e", b"deep")
    closing = [(p.type, p.rc) for p in c.wait_closed(3) if p.type != m.PUBLISH]  # $share copy
    assert closing == [(m.DISCONNECT, 0x90)]
    c2 = raws(b, 5)
    c2.connect(uid("lv"))
    c2.publish("y" * 41, b"long")
    assert [(p.type, p.rc) for p in c2.wait_closed(3)] == [(m.DISCONNECT, 0x90)]
    wait_until(lambda: "topic longer or deeper" in b.log(), 3, what="a log line")


@acemq_only
@pytest.mark.parametrize("version,refused", [(5, 0x97), (4, 0x80)])
def test_max_subscriptions(make_broker1, raws, version, refused):
    b = make_broker1("max_subscriptions 5")
    c = raws(b, version)
    c.connect(uid("ms"))
    mine = ["ms/%d" % k for k in range(5)]
    assert c.subscribe([(f, 0) for f in mine]).codes == [0] * 5
    ack = c.subscribe([("ms/new", 0), ("ms/2", 1), ("ms/new2", 1)], pid=2)
    assert ack.codes == [refused, 1, refused], ack   # an existing filter is still granted
    pub = raws(b, 5)
    pub.connect(uid("msp"))
    pub.publish("ms/new", b"refused")
    pub.publish("ms/2", b"kept")
    assert c.recv_type(m.PUBLISH).payload == b"kept"  # nothing from the refused filter
    c.send(m.unsubscribe(3, ["ms/0"], version=version))
    assert c.recv_type(m.UNSUBACK).pid == 3
    assert c.subscribe([("ms/new", 0), ("ms/new2", 0)], pid=4).codes == [0, refused]


@acemq_only
def test_max_properties_size(make_broker1, raws):
    b = make_broker1("max_properties_size 1000")
    topic = uid("props")
    s = raws(b, 5)
    s.connect(uid("ps"))
    s.subscribe([(topic, 0)])
    c = raws(b, 5)
    c.connect(uid("pp"))
    fits = [(m.USER_PROPERTY, ("k", "v" * 994))]       # 1 + 2 + 1 + 2 + 994 = 1000 bytes
    c.publish(topic, b"fits", properties=fits)
    assert s.recv_type(m.PUBLISH).prop(m.USER_PROPERTY) == ("k", "v" * 994)
    c.publish(topic, b"over", properties=[(m.USER_PROPERTY, ("k", "v" * 995))])
    assert [(p.type, p.rc) for p in c.wait_closed(3)] == [(m.DISCONNECT, 0x95)]
    s.recv_nothing(0.3)
    # CONNECT and will properties count together
    w = raws(b, 5)
    w.send(m.connect(uid("pw"), 5, properties=[(m.USER_PROPERTY, ("a", "x" * 600))],
                     will={"topic": "w", "properties": [(m.USER_PROPERTY, ("b", "y" * 600))]}))
    assert w.recv_type(m.CONNACK).rc == 0x95
    w.wait_closed(3)
    wait_until(lambda: "properties larger than" in b.log(), 3, what="a log line")
    assert_serves(b)


def publishes(c, quiet=1.0):
    """The PUBLISH packets c receives until nothing comes for `quiet` seconds."""
    got = []
    try:
        while True:
            p = c.recv(quiet)
            if p.type == m.PUBLISH:
                got.append(p)
    except TimeoutError:
        return got


@acemq_only
def test_max_inflight_messages(make_broker1, raws):
    """The outbound window: a subscriber that asks for no Receive Maximum (65535) and never
    acknowledges has exactly max_inflight_messages QoS 1 messages in flight."""
    b = make_broker1("max_inflight_messages 3")
    topic = uid("im")
    s = raws(b, 5)
    assert s.connect(uid("im")).prop(m.RECEIVE_MAXIMUM) == 3  # what it asks of clients
    s.subscribe([(topic, 1)])
    pub = raws(b, 5)
    pub.connect(uid("imp"))
    for i in range(10):
        pub.publish(topic, b"%d" % i, qos=1, pid=i + 1)
    got = publishes(s)
    assert [p.payload for p in got] == [b"0", b"1", b"2"], got
    s.send(m.puback(got[0].pid))           # room for one more, and only one
    assert s.recv_type(m.PUBLISH).payload == b"3"
    s.recv_nothing(0.5)


@acemq_only
def test_max_inflight_bytes(make_broker1, raws):
    b = make_broker1("max_inflight_bytes 3000", "max_inflight_messages 100")
    topic = uid("ib")
    s = raws(b, 5)
    s.connect(uid("ib"))
    s.subscribe([(topic, 1)])
    pub = raws(b, 5)
    pub.connect(uid("ibp"))
    for i in range(10):
        pub.publish(topic, b"%d" % i + b"." * 999, qos=1, pid=i + 1)
    got = publishes(s)
    assert len(got) == 3, "%d unacked 1000-byte messages in flight with max_inflight_bytes 3000" \
        % len(got)
    s.send(m.puback(got[0].pid))           # room for one more, and only one
    nxt = s.recv_type(m.PUBLISH)
    assert nxt.payload.startswith(b"3")
    s.recv_nothing(0.5)
    # one message bigger than the limit still goes when nothing else is in flight
    for p in got[1:] + [nxt]:
        s.send(m.puback(p.pid))
    for _ in range(6):
        s.send(m.puback(s.recv_type(m.PUBLISH).pid))
    pub.publish(topic, b"B" * 5000, qos=1, pid=99)
    assert len(s.recv_type(m.PUBLISH).payload) == 5000


@pytest.mark.parametrize("version", [4, 5])
def test_message_size_limit(make_broker1, raws, version):
    b = make_broker1("message_size_limit 100")
    topic = uid("msl")
    s = raws(b, 5)
    s.connect(uid("ms"))
    s.subscribe([(topic, 2)])
    c = raws(b, version)
    c.connect(uid("mp"))
    c.publish(topic, b"a" * 100, qos=1, pid=1)           # at the limit: delivered
    assert c.recv_type(m.PUBACK).rc == 0
    assert len(s.recv_type(m.PUBLISH).payload) == 100
    c.publish(topic, b"b" * 101, qos=1, pid=2)
    assert c.recv_type(m.PUBACK).rc == (0x95 if version == 5 else 0)
    c.publish(topic, b"c" * 101, qos=2, pid=3)
    assert c.recv_type(m.PUBREC).rc == (0x95 if version == 5 else 0)
    c.publish(topic, b"d" * 101, qos=0)
    s.recv_nothing(0.3)                                  # none of them was forwarded
    assert held_open(c), "the connection stays open"
    if not IS_MOSQ:
        assert "event=message_too_large" in b.log()


@acemq_only
def test_message_size_limit_applies_to_will(make_broker1, raws):
    b = make_broker1("message_size_limit 100")
    for version, rc in ((5, 0x95), (4, 5)):
        c = raws(b, version)
        c.send(m.connect(uid("wl"), version, will={"topic": "w", "payload": b"p" * 101}))
        assert c.recv_type(m.CONNACK).rc == rc
        c.wait_closed(3)


@acemq_only
def test_max_qos2_pending_v311(make_broker1, raws):
    b = make_broker1("max_qos2_pending 5")
    c = raws(b, 4)
    c.connect(uid("q2"))
    for pid in range(1, 6):                # five unreleased ids: allowed
        c.publish("q2/t", b"x", qos=2, pid=pid)
        assert c.recv_type(m.PUBREC).pid == pid
    c.publish("q2/t", b"x", qos=2, pid=3)  # a repeat is not a new one
    assert c.recv_type(m.PUBREC).pid == 3
    c.publish("q2/t", b"x", qos=2, pid=6)  # the sixth
    assert c.wait_closed(3) == []
    wait_until(lambda: "max_qos2_pending" in b.log(), 3, what="a log line")
    ok = raws(b, 4)
    ok.connect(uid("q2"))
    for pid in range(1, 10):               # released ids do not add up
        ok.publish("q2/t", b"x", qos=2, pid=pid)
        assert ok.recv_type(m.PUBREC).pid == pid
        ok.send(m.pubrel(pid, version=4))
        assert ok.recv_type(m.PUBCOMP).pid == pid


def _cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(IS_MOSQ, reason="acemqd's accept path and log line")
def test_descriptor_limit_is_said_and_clients_kept(make_broker, clients):
    """At the process's descriptor limit the broker says so, does not spin on the connections it
    cannot take, keeps serving the clients it has, and accepts again once descriptors are free."""
    b = make_broker("persistence false", "connect_timeout 60")
    sub, pub = clients(b), clients(b)
    topic = uid("fd")
    sub.subscribe(topic, 1)
    used = len(os.listdir("/proc/%d/fd" % b.proc.pid))
    resource.prlimit(b.proc.pid, resource.RLIMIT_NOFILE, (used + 8, used + 8))
    flood = []
    try:
        for _ in range(40):  # more than the 8 free descriptors: the kernel completes them all
            flood.append(socket.create_connection((b.host, b.port), timeout=2))
        wait_until(lambda: "accept_failed" in b.log(), what="the accept_failed log line")
        assert "file descriptor limit" in b.log()
        cpu0 = _cpu_seconds(b.proc.pid)
        time.sleep(1.0)
        assert _cpu_seconds(b.proc.pid) - cpu0 < 0.5, "the broker spins at its descriptor limit"
        pub.publish(topic, b"still served", qos=1)
        assert sub.get_n(1)[0].payload == b"still served"
    finally:
        for s in flood:
            s.close()
    wait_until(lambda: len(os.listdir("/proc/%d/fd" % b.proc.pid)) < used + 4,
               what="the flood's sockets to go")
    assert_serves(b)
