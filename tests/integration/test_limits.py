"""Limits: max_packet_size checked from the fixed header, queued bytes, many connections."""

import time

import pytest

from conftest import IS_MOSQ, uid, assert_serves, props, PacketTypes
import mqttraw as m


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


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
