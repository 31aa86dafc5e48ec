"""QoS 0/1/2 in both directions, ordering, packet ids, redelivery, offline queues, flow control."""

import pytest

from conftest import IS_MOSQ, mosquitto_deviation, uid, wait_until, assert_serves, props, PacketTypes
import mqttraw as m


def test_qos_downgrade_matrix(broker, clients):
    topic = uid("qos")
    subs = {}
    for q in (0, 1, 2):
        subs[q] = clients(broker)
        assert subs[q].subscribe(topic, q) == [q]
    pub = clients(broker)
    for q in (0, 1, 2):
        pub.publish(topic, b"q%d" % q, qos=q)
    for sq, s in subs.items():
        got = sorted((msg.payload, msg.qos) for msg in s.get_n(3))
        assert got == [(b"q%d" % pq, min(pq, sq)) for pq in (0, 1, 2)]
        s.no_message(0.1)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_ordering(broker, clients, qos):
    topic = uid("order")
    sub = clients(broker, protocol=4)
    sub.subscribe(topic, qos)
    pub = clients(broker, protocol=4)
    infos = [pub.c.publish(topic, b"%d" % i, qos) for i in range(100)]
    for i in infos:
        i.wait_for_publish(5)
    got = [int(msg.payload) for msg in sub.get_n(100)]
    assert got == list(range(100))


def test_inbound_qos1_and_qos2_acks(broker, raws):
    c = raws(broker, 5)
    c.connect(uid("acks"))
    topic = uid("acks")
    c.publish(topic, b"one", qos=1, pid=10)
    ack = c.recv_type(m.PUBACK)
    assert ack.pid == 10 and ack.rc in (0x00, 0x10)   # 0x10: no matching subscribers
    c.publish(topic, b"two", qos=2, pid=11)
    rec = c.recv_type(m.PUBREC)
    assert rec.pid == 11 and rec.rc in (0x00, 0x10)
    c.send(m.pubrel(11))
    comp = c.recv_type(m.PUBCOMP)
    assert comp.pid == 11 and comp.rc == 0


def test_outbound_packet_ids(broker, raws, clients):
    sub = raws(broker, 5)
    sub.connect(uid("pids"))
    topic = uid("pids")
    sub.subscribe([(topic, 2)])
    pub = clients(broker)
    for i in range(5):
        pub.publish(topic, b"%d" % i, qos=1 + i % 2)
    pids = []
    for i in range(5):
        p = sub.recv_type(m.PUBLISH)
        assert p.payload == b"%d" % i and p.qos == 1 + i % 2 and not p.dup
        assert p.pid != 0
        pids.append(p.pid)
    assert len(set(pids)) == 5, pids
    # Complete the flows: QoS 1 PUBACK, QoS 2 PUBREC -> PUBREL -> PUBCOMP.
    for i, pid in enumerate(pids):
        if i % 2 == 0:
            sub.send(m.puback(pid))
        else:
            sub.send(m.pubrec(pid))
            rel = sub.recv_type(m.PUBREL)
            assert rel.pid == pid and rel.flags == 2
            sub.send(m.pubcomp(pid))
    sub.recv_nothing(0.2)


@pytest.mark.parametrize("version", [4, 5])
def test_redelivery_with_dup(broker, raws, clients, version):
    cid = uid("dup")
    topic = uid("dup")
    kw = {"clean": False}
    if version == 5:
        kw["properties"] = [(m.SESSION_EXPIRY, 60)]
    c = raws(broker, version)
    c.connect(cid, **kw)
    c.subscribe([(topic, 2)])
    pub = clients(broker)
    pub.publish(topic, b"q1", qos=1)
    pub.publish(topic, b"q2", qos=2)
    pub.publish(topic, b"q2-rec", qos=2)
    first = [c.recv_type(m.PUBLISH) for _ in range(3)]
    assert [p.payload for p in first] == [b"q1", b"q2", b"q2-rec"]
    assert not any(p.dup for p in first)
    c.send(m.pubrec(first[2].pid, version=version))    # third: PUBREC sent, PUBREL pending
    c.recv_type(m.PUBREL)
    c.close()                                          # no PUBACK, no PUBREC, no PUBCOMP

    c = raws(broker, version)
    assert c.connect(cid, **kw).session_present is True
    again = [c.recv() for _ in range(3)]
    pubs = [p for p in again if p.type == m.PUBLISH]
    rels = [p for p in again if p.type == m.PUBREL]
    assert [(p.payload, p.pid, p.qos, p.dup) for p in pubs] == \
        [(b"q1", first[0].pid, 1, True), (b"q2", first[1].pid, 2, True)]
    assert [p.pid for p in rels] == [first[2].pid]
    c.send(m.puback(first[0].pid, version=version))
    c.send(m.pubrec(first[1].pid, version=version))
    assert c.recv_type(m.PUBREL).pid == first[1].pid
    c.send(m.pubcomp(first[1].pid, version=version))
    c.send(m.pubcomp(first[2].pid, version=version))
    c.recv_nothing(0.3)
    c.disconnect()
    # Everything acknowledged: nothing comes back on the next resume.
    c = raws(broker, version)
    assert c.connect(cid, **kw).session_present is True
    c.recv_nothing(0.3)


def test_qos2_exactly_once_inbound(broker, raws, clients):
    topic = uid("once")
    sub = clients(broker)
    sub.subscribe(topic, 2)
    p = raws(broker, 5)
    p.connect(uid("once-pub"))
    p.publish(topic, b"only-once", qos=2, pid=42)
    assert p.recv_type(m.PUBREC).pid == 42
    p.publish(topic, b"only-once", qos=2, pid=42, dup=True)   # re-sent before PUBREL
    assert p.recv_type(m.PUBREC).pid == 42
    p.send(m.pubrel(42))
    assert p.recv_type(m.PUBCOMP).pid == 42
    # After PUBCOMP the id is free: a new message with it is a new message.
    p.publish(topic, b"second", qos=2, pid=42)
    assert p.recv_type(m.PUBREC).pid == 42
    p.send(m.pubrel(42))
    assert p.recv_type(m.PUBCOMP).pid == 42
    got = [msg.payload for msg in sub.get_n(2)]
    assert got == [b"only-once", b"second"]
    sub.no_message(0.3)


def test_qos2_redelivered_before_pubrel_after_reconnect(broker, raws, clients):
    # A publisher that reconnects and re-sends an unreleased QoS 2 PUBLISH: still one delivery.
    topic = uid("once")
    sub = clients(broker)
    sub.subscribe(topic, 2)
    cid = uid("once-pub")
    p = raws(broker, 5)
    p.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 60)])
    p.publish(topic, b"x", qos=2, pid=7)
    p.recv_type(m.PUBREC)
    p.close()
    p = raws(broker, 5)
    assert p.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 60)]).session_present
    p.publish(topic, b"x", qos=2, pid=7, dup=True)
    assert p.recv_type(m.PUBREC).pid == 7
    p.send(m.pubrel(7))
    assert p.recv_type(m.PUBCOMP).pid == 7
    assert sub.get().payload == b"x"
    sub.no_message(0.3)


def durable(clients, b, cid, protocol=5):
    if protocol == 5:
        return clients(b, cid, protocol, clean=False,
                       properties=props(PacketTypes.CONNECT, SessionExpiryInterval=300))
    return clients(b, cid, protocol, clean=False)


@pytest.mark.parametrize("protocol", [4, 5])
def test_offline_queue(broker, clients, protocol):
    cid = uid("offline")
    topic = uid("offline")
    s = durable(clients, broker, cid, protocol)
    s.subscribe(topic, 2)
    s.disconnect()
    pub = clients(broker)
    pub.publish(topic, b"q0", qos=0)
    pub.publish(topic, b"q1", qos=1)
    pub.publish(topic, b"q2", qos=2)
    pub.publish(topic, b"q1b", qos=1)
    s = durable(clients, broker, cid, protocol)
    assert s.session_present
    got = [(msg.payload, msg.qos) for msg in s.get_n(3)]
    # Order is guaranteed per QoS (paho hands a QoS 2 message over only at PUBREL).
    assert [g for g in got if g[1] == 1] == [(b"q1", 1), (b"q1b", 1)]
    assert sorted(got) == sorted([(b"q1", 1), (b"q2", 2), (b"q1b", 1)])
    s.no_message(0.3)


def test_qos0_waiting_at_disconnect_is_dropped(broker, raws, clients):
    """A QoS 0 message queued behind a full in-flight window when the connection ends is not kept
    for the offline session (as if it had been published a moment later)."""
    cid, topic = uid("q0wait"), uid("q0wait")
    s = raws(broker, 5)
    s.connect(cid, clean=True, properties=[(m.SESSION_EXPIRY, 60), (m.RECEIVE_MAXIMUM, 1)])
    s.subscribe([(topic, 1)])
    pub = clients(broker)
    pub.publish(topic, b"a", qos=1)
    first = s.recv_type(m.PUBLISH)
    assert first.payload == b"a"
    pub.publish(topic, b"b", qos=1)
    pub.publish(topic, b"zero", qos=0)
    pub.publish(topic, b"c", qos=1)          # its PUBACK means "zero" was routed before it
    s.recv_nothing(0.2)                      # the window of 1 holds b, zero and c back
    s.disconnect()
    s = raws(broker, 5)
    assert s.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 60),
                                                   (m.RECEIVE_MAXIMUM, 1)]).session_present
    got = []
    for _ in range(3):
        p = s.recv_type(m.PUBLISH)
        got.append(p.payload)
        assert p.qos == 1, got
        s.send(m.puback(p.pid))
    assert got == [b"a", b"b", b"c"]
    s.recv_nothing(0.3)


def test_offline_queue_qos0_when_configured(make_broker, clients):
    b = make_broker("queue_qos0_messages true")
    cid = uid("offline0")
    topic = uid("offline0")
    s = durable(clients, b, cid)
    s.subscribe(topic, 1)
    s.disconnect()
    pub = clients(b)
    pub.publish(topic, b"a", qos=0)
    pub.publish(topic, b"b", qos=1)
    s = durable(clients, b, cid)
    assert [msg.payload for msg in s.get_n(2)] == [b"a", b"b"]


def test_max_queued_messages(make_broker, clients):
    b = make_broker("max_queued_messages 5")
    cid = uid("limit")
    topic = uid("limit")
    s = durable(clients, b, cid)
    s.subscribe(topic, 1)
    s.disconnect()
    pub = clients(b)
    for i in range(20):
        pub.publish(topic, b"%d" % i, qos=1)
    s = durable(clients, b, cid)
    got = [int(msg.payload) for msg in s.drain(1.0)]
    # The oldest ones are kept, in order; the rest dropped.
    assert got == list(range(len(got)))
    assert len(got) == 5, got


def test_receive_maximum_from_client(broker, raws, clients):
    c = raws(broker, 5)
    c.connect(uid("rm"), properties=[(m.RECEIVE_MAXIMUM, 2)])
    topic = uid("rm")
    c.subscribe([(topic, 1)])
    pub = clients(broker)
    for i in range(10):
        pub.publish(topic, b"%d" % i, qos=1)
    inflight = [c.recv_type(m.PUBLISH), c.recv_type(m.PUBLISH)]
    c.recv_nothing(0.4)                       # a third would exceed Receive Maximum 2
    received = []
    while inflight:
        p = inflight.pop(0)
        received.append(int(p.payload))
        c.send(m.puback(p.pid))
        if len(received) + len(inflight) < 10:
            inflight.append(c.recv_type(m.PUBLISH))
            assert len(inflight) <= 2
    assert received == list(range(10))
    c.recv_nothing(0.2)


@mosquitto_deviation("answers PUBREC 0x97 instead of DISCONNECT 0x93")
def test_receive_maximum_of_broker(make_broker, raws):
    b = make_broker("max_inflight_messages 3")
    c = raws(b, 5)
    ack = c.connect(uid("brm"))
    assert ack.prop(m.RECEIVE_MAXIMUM) == 3
    topic = uid("brm")
    for pid in (1, 2, 3):
        c.publish(topic, b"x", qos=2, pid=pid)
        assert c.recv_type(m.PUBREC).pid == pid
    c.publish(topic, b"x", qos=2, pid=4)           # a fourth unreleased QoS 2: over the quota
    pkts = c.wait_closed(3)
    assert [(p.type, p.rc) for p in pkts] == [(m.DISCONNECT, 0x93)], pkts
    assert_serves(b)


def test_receive_maximum_released_quota(make_broker, raws):
    b = make_broker("max_inflight_messages 2")
    c = raws(b, 5)
    c.connect(uid("brm"))
    topic = uid("brm")
    for rnd in range(3):                           # completing flows frees the quota
        for pid in (1, 2):
            c.publish(topic, b"x", qos=2, pid=pid)
            assert c.recv_type(m.PUBREC).pid == pid
        for pid in (1, 2):
            c.send(m.pubrel(pid))
            assert c.recv_type(m.PUBCOMP).pid == pid
