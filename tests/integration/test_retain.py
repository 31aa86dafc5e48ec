"""Retained messages: store, replace, clear, delivery on subscribe, Retain Handling and RAP."""

import subprocess

import pytest

from conftest import uid, assert_serves, mosquitto_pub, SubscribeOptions
import mqttraw as m


def sub_raw(raws, b, filt, opts=1, version=5):
    c = raws(b, version)
    c.connect(uid("rsub"))
    ack = c.subscribe([(filt, opts)])
    assert ack.codes == [opts & 3]
    return c


def test_retained_set_replace_clear(broker, raws, clients):
    topic = uid("ret")
    pub = clients(broker)
    pub.publish(topic, b"first", qos=1, retain=True)
    s = sub_raw(raws, broker, topic)
    p = s.recv_type(m.PUBLISH)
    assert (p.payload, p.retain, p.qos) == (b"first", True, 1)
    s.send(m.puback(p.pid))
    # A live message to an existing subscriber is not flagged retained (RAP 0).
    pub.publish(topic, b"second", qos=1, retain=True)
    p = s.recv_type(m.PUBLISH)
    assert (p.payload, p.retain) == (b"second", False)
    s.send(m.puback(p.pid))
    # Replaced: a new subscriber sees only the latest.
    s2 = sub_raw(raws, broker, topic)
    p = s2.recv_type(m.PUBLISH)
    assert (p.payload, p.retain) == (b"second", True)
    s2.send(m.puback(p.pid))
    s2.recv_nothing(0.2)
    # Cleared by an empty retained message: nothing for the next subscriber.
    pub.publish(topic, b"", qos=1, retain=True)
    s3 = sub_raw(raws, broker, topic)
    s3.recv_nothing(0.3)


def test_retained_wildcard_and_qos(broker, raws, clients):
    base = uid("retw")
    pub = clients(broker)
    pub.publish(base + "/a", b"A", qos=0, retain=True)
    pub.publish(base + "/b", b"B", qos=2, retain=True)
    pub.publish(base + "/c/d", b"CD", qos=1, retain=True)
    s = sub_raw(raws, broker, base + "/+", opts=1)
    got = {}
    for _ in range(2):
        p = s.recv_type(m.PUBLISH)
        assert p.retain
        got[p.topic] = (p.payload, p.qos)
        if p.qos:
            s.send(m.puback(p.pid))
    # Delivered at min(stored QoS, subscription QoS).
    assert got == {base + "/a": (b"A", 0), base + "/b": (b"B", 1)}
    s.recv_nothing(0.2)
    s2 = sub_raw(raws, broker, base + "/#", opts=0)
    assert sorted(s2.recv_type(m.PUBLISH).payload for _ in range(3)) == [b"A", b"B", b"CD"]


def test_retained_311(broker, clients):
    topic = uid("ret311")
    pub = clients(broker, protocol=4)
    pub.publish(topic, b"r", qos=1, retain=True)
    s = clients(broker, protocol=4)
    s.subscribe(topic, 1)
    msg = s.get()
    assert msg.payload == b"r" and msg.retain


def test_retained_with_command_line_clients(broker):
    topic = uid("retcli")
    r = mosquitto_pub(broker, "-V", "mqttv311", "-t", topic, "-m", "from-cli", "-r", "-q", "1")
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", "mqttv5",
                        "-t", topic, "-C", "1", "-W", "5", "-v"], capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == "%s from-cli" % topic


@pytest.mark.parametrize("rh", [0, 1, 2])
def test_retain_handling(broker, raws, clients, rh):
    topic = uid("rh")
    clients(broker).publish(topic, b"kept", qos=1, retain=True)
    c = raws(broker, 5)
    c.connect(uid("rh"))
    opts = 1 | (rh << 4)
    expect_first = rh in (0, 1)
    expect_again = rh == 0
    assert c.subscribe([(topic, opts)], pid=1).codes == [1]
    if expect_first:
        p = c.recv_type(m.PUBLISH)
        assert p.payload == b"kept" and p.retain
        c.send(m.puback(p.pid))
    c.recv_nothing(0.2)
    # The same subscription again: only Retain Handling 0 sends the retained message again.
    assert c.subscribe([(topic, opts)], pid=2).codes == [1]
    if expect_again:
        p = c.recv_type(m.PUBLISH)
        assert p.payload == b"kept" and p.retain
        c.send(m.puback(p.pid))
    c.recv_nothing(0.2)


@pytest.mark.parametrize("rap", [0, 1])
def test_retain_as_published(broker, raws, clients, rap):
    topic = uid("rap")
    c = raws(broker, 5)
    c.connect(uid("rap"))
    c.subscribe([(topic, 0 | (rap << 3))])
    pub = clients(broker)
    pub.publish(topic, b"r", retain=True, qos=1)
    pub.publish(topic, b"n", retain=False, qos=1)
    p1 = c.recv_type(m.PUBLISH)
    p2 = c.recv_type(m.PUBLISH)
    assert (p1.payload, p1.retain) == (b"r", bool(rap))
    assert (p2.payload, p2.retain) == (b"n", False)


@pytest.mark.parametrize("rh", [0, 1, 2])
def test_retain_handling_paho(broker, clients, rh):
    topic = uid("rh")
    clients(broker).publish(topic, b"kept", qos=1, retain=True)
    c = clients(broker)
    opts = SubscribeOptions(qos=1, retainHandling=rh)
    for first in (True, False):                     # subscribe, then the same again
        assert c.subscribe(topic, options=opts) == [1]
        if rh == 0 or (rh == 1 and first):
            msg = c.get()
            assert (msg.payload, msg.retain) == (b"kept", True)
        c.no_message(0.2)


@pytest.mark.parametrize("rap", [False, True])
def test_retain_as_published_paho(broker, clients, rap):
    topic = uid("rap")
    c = clients(broker)
    c.subscribe(topic, options=SubscribeOptions(qos=0, retainAsPublished=rap))
    pub = clients(broker, protocol=4)
    pub.publish(topic, b"r", qos=1, retain=True)
    pub.publish(topic, b"n", qos=1)
    assert [(x.payload, x.retain) for x in c.get_n(2)] == [(b"r", rap), (b"n", False)]


def test_retain_not_available(make_broker, raws):
    b = make_broker("retain_available false")
    c = raws(b, 5)
    ack = c.connect(uid("noret"))
    assert ack.prop(m.RETAIN_AVAILABLE) == 0
    c.publish(uid("noret"), b"x", qos=0)          # not retained: fine
    c.send(m.pingreq())
    c.recv_type(m.PINGRESP)
    c.publish(uid("noret"), b"x", qos=1, pid=5, retain=True)
    pkts = c.wait_closed(3)
    assert [(p.type, p.rc) for p in pkts] == [(m.DISCONNECT, 0x9A)], pkts
    assert_serves(b)
