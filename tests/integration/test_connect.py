"""CONNECT handling: protocol levels, client identifiers, takeover, sessions, timeouts, keepalive."""

import time

import pytest

from conftest import (IS_MOSQ, acemq_only, mosquitto_deviation, uid, wait_until, assert_serves,
                      mosquitto_pub)
import mqttraw as m


@pytest.mark.parametrize("version", [3, 4, 5], ids=["mqtt31", "mqtt311", "mqtt5"])
def test_versions_accepted(broker, raws, version):
    c = raws(broker, version)
    ack = c.connect(uid("v"))
    assert ack.rc == 0 and ack.session_present is False
    # A working session: subscribe, publish to ourselves, receive.
    topic = uid("ver")
    assert c.subscribe([(topic, 1)]).codes == [1]
    c.publish(topic, b"hello", qos=1, pid=3)
    got = {p.type: p for p in (c.recv(), c.recv())}
    assert got[m.PUBACK].pid == 3
    assert got[m.PUBLISH].payload == b"hello" and got[m.PUBLISH].qos == 1
    c.send(m.pingreq())
    c.recv_type(m.PINGRESP)


@pytest.mark.parametrize("version", [3, 4, 5], ids=["mqtt31", "mqtt311", "mqtt5"])
def test_versions_with_paho(broker, clients, version):
    sub = clients(broker, protocol=version)
    pub = clients(broker, protocol=version)
    assert sub.subscribe("paho/v", 2) == [2]
    pub.publish("paho/v", b"p", qos=2)
    msg = sub.get()
    assert msg.payload == b"p" and msg.qos == 2


@pytest.mark.parametrize("framing", [4, 5])
def test_unsupported_protocol_level(broker1, raws, framing):
    c = raws(broker1, 4)
    body = m.mqtt_str("MQTT") + bytes([6, 0x02]) + m.u16(60)
    if framing == 5:
        body += m.props([])
    body += m.mqtt_str("lvl6")
    c.send(m.packet(m.CONNECT, 0, body))
    pkts = c.wait_closed(3)
    assert pkts, "closed without CONNACK"
    ack = pkts[0]
    assert ack.type == m.CONNACK
    # 0x84 Unsupported Protocol Version in v5 framing, or 0x01 in 3.1.1 framing.
    assert ack.rc in (0x01, 0x84), ack
    assert len(pkts) == 1


def test_bad_protocol_name(broker1, raws):
    c = raws(broker1, 4)
    body = m.mqtt_str("MQTX") + bytes([4, 0x02]) + m.u16(60) + m.mqtt_str("badname")
    c.send(m.packet(m.CONNECT, 0, body))
    pkts = c.wait_closed(3)
    assert all(p.type == m.CONNACK and p.rc != 0 for p in pkts), pkts
    assert_serves(broker1)


def test_assigned_client_identifier(broker, raws):
    ids = []
    for _ in range(2):
        c = raws(broker, 5)
        ack = c.connect("")
        cid = ack.prop(m.ASSIGNED_CLIENT_ID)
        assert cid, "no Assigned Client Identifier in %r" % ack
        ids.append(cid)
    assert ids[0] != ids[1]


def test_assigned_client_identifier_311(broker, raws):
    # 3.1.1 with an empty id and clean session 1: accepted, no property to report.
    c = raws(broker, 4)
    assert c.connect("", clean=True).rc == 0


def test_empty_client_id_without_clean_session_311(broker, raws):
    c = raws(broker, 4)
    ack = c.connect("", clean=False, expect_rc=None)
    assert ack.rc == 0x02 and ack.session_present is False
    c.wait_closed(3)


def test_takeover_v5(broker, raws):
    cid = uid("take")
    old = raws(broker, 5)
    old.connect(cid)
    new = raws(broker, 5)
    new.connect(cid)
    pkts = old.wait_closed(3)
    if IS_MOSQ and pkts == []:
        pass   # mosquitto 2.0.11 closes the old connection without DISCONNECT 0x8E
    else:
        assert [(p.type, p.rc) for p in pkts] == [(m.DISCONNECT, 0x8E)], pkts
    # The new connection is the live one.
    topic = uid("take")
    new.subscribe([(topic, 0)])
    new.publish(topic, b"mine")
    assert new.recv_type(m.PUBLISH).payload == b"mine"


def test_takeover_311(broker, raws):
    cid = uid("take")
    old = raws(broker, 4)
    old.connect(cid)
    new = raws(broker, 4)
    new.connect(cid)
    assert old.wait_closed(3) == []
    new.send(m.pingreq())
    new.recv_type(m.PINGRESP)


def test_takeover_keeps_durable_session(broker, raws):
    cid = uid("take")
    old = raws(broker, 5)
    old.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 60)])
    topic = uid("take")
    old.subscribe([(topic, 1)])
    new = raws(broker, 5)
    ack = new.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 60)])
    assert ack.session_present is True
    old.wait_closed(3)
    new.publish(topic, b"kept", qos=1, pid=9)
    got = {p.type: p for p in (new.recv(), new.recv())}
    assert got[m.PUBLISH].payload == b"kept"


def test_session_present_v5(broker, raws):
    cid = uid("sp")
    topic = uid("sp")
    c = raws(broker, 5)
    assert c.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 300)]).session_present is False
    c.subscribe([(topic, 1)])
    c.disconnect()
    c = raws(broker, 5)
    assert c.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 300)]).session_present is True
    # The subscription survived.
    c.publish(topic, b"again", qos=1, pid=2)
    got = {p.type: p for p in (c.recv(), c.recv())}
    assert got[m.PUBLISH].payload == b"again"
    c.disconnect()
    # Clean Start 1 discards it.
    c = raws(broker, 5)
    assert c.connect(cid, clean=True, properties=[(m.SESSION_EXPIRY, 300)]).session_present is False
    c.publish(topic, b"gone", qos=1, pid=3)
    assert c.recv_type(m.PUBACK).pid == 3
    c.recv_nothing(0.3)


def test_session_expiry_zero_ends_session(broker, raws):
    cid = uid("sp0")
    topic = uid("sp0")
    c = raws(broker, 5)
    c.connect(cid, clean=False)          # no Session Expiry Interval: 0
    c.subscribe([(topic, 1)])
    c.disconnect()
    pub = raws(broker, 5)
    pub.connect(uid("pub"))
    pub.publish(topic, b"while-away", qos=1, pid=1)
    pub.recv_type(m.PUBACK)
    c = raws(broker, 5)
    assert c.connect(cid, clean=False).session_present is False
    c.recv_nothing(0.3)


def test_session_expires_after_interval(broker1, raws):
    broker = broker1
    cid = uid("spx")
    c = raws(broker, 5)
    c.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 1)])
    c.subscribe([(uid("spx"), 1)])
    c.disconnect()
    time.sleep(0.3)
    c = raws(broker, 5)
    # Within the interval: resumes.
    assert c.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 1)]).session_present is True
    c.disconnect()
    # After it (1 s, plus timer granularity): gone.
    time.sleep(2.6)
    c = raws(broker, 5)
    assert c.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 1)]).session_present is False


def test_session_present_311(broker, raws):
    cid = uid("sp311")
    c = raws(broker, 4)
    assert c.connect(cid, clean=False).session_present is False
    c.subscribe([("x/" + cid, 1)])
    c.disconnect()
    c = raws(broker, 4)
    assert c.connect(cid, clean=False).session_present is True
    c.disconnect()
    c = raws(broker, 4)
    assert c.connect(cid, clean=True).session_present is False
    c.disconnect()
    c = raws(broker, 4)
    assert c.connect(cid, clean=False).session_present is False


@acemq_only
def test_connect_timeout(make_broker1, raws):
    b = make_broker1("connect_timeout 1")
    silent = raws(b, 5)
    partial = raws(b, 5)
    partial.send(m.connect("partial")[:5])      # starts a CONNECT and stalls
    t0 = time.monotonic()
    assert silent.wait_closed(4) == []
    partial.wait_closed(1.5)
    elapsed = time.monotonic() - t0
    assert 0.7 <= elapsed <= 3.5, elapsed
    assert_serves(b)


def test_keepalive(broker1, raws):
    broker = broker1
    # Keep Alive 2 s: a silent client is closed after 1.5 x 2 s; one that pings stays.
    # mosquitto checks keepalives only every few seconds, hence its wider window.
    limit = 8.0 if IS_MOSQ else 4.5
    silent = raws(broker, 5)
    silent.connect(uid("ka"), keepalive=2)
    alive = raws(broker, 5)
    alive.connect(uid("ka"), keepalive=2)
    t0 = time.monotonic()
    closed_at = None
    while closed_at is None and time.monotonic() - t0 < limit:
        alive.send(m.pingreq())
        alive.recv_type(m.PINGRESP)
        try:
            pkts = silent.wait_closed(0.5)
            closed_at = time.monotonic() - t0
            # A v5 broker may say why: 0x8D Keep Alive timeout.
            assert all(p.type == m.DISCONNECT and p.rc == 0x8D for p in pkts), pkts
        except TimeoutError:
            pass
    assert closed_at is not None, "silent client still connected after %.1f s" % limit
    assert closed_at >= 1.9, "closed before its keepalive: %.2f s" % closed_at
    alive.send(m.pingreq())
    alive.recv_type(m.PINGRESP)


def test_server_keep_alive(make_broker1, raws):
    b = make_broker1("max_keepalive 10")
    c = raws(b, 5)
    ack = c.connect(uid("ska"), keepalive=60)
    assert ack.prop(m.SERVER_KEEP_ALIVE) == 10
    c2 = raws(b, 5)
    ack = c2.connect(uid("ska"), keepalive=5)
    assert ack.prop(m.SERVER_KEEP_ALIVE) in (None, 5)


@pytest.mark.parametrize("version", [4, 5])
def test_second_connect(broker, raws, version):
    c = raws(broker, version)
    c.connect(uid("twice"))
    c.send(m.connect(uid("twice"), version))
    pkts = c.wait_closed(3)
    assert all(p.type == m.DISCONNECT and p.rc == 0x82 for p in pkts), pkts
    if version == 5 and not IS_MOSQ:
        assert [p.rc for p in pkts] == [0x82]
    assert_serves(broker)


@pytest.mark.parametrize("first", [m.pingreq(), m.publish("x", b"y"),
                                   m.subscribe(1, [("x", 0)])], ids=["pingreq", "publish",
                                                                     "subscribe"])
def test_first_packet_not_connect(broker1, raws, first):
    c = raws(broker1, 5)
    c.send(first)
    pkts = c.wait_closed(3)
    assert not any(p.type in (m.CONNACK, m.PINGRESP, m.SUBACK) for p in pkts), pkts
    assert_serves(broker1)


def test_anonymous_refused(make_broker, raws):
    b = make_broker("allow_anonymous false")
    c5 = raws(b, 5)
    ack = c5.connect(uid("anon"), expect_rc=None)
    assert ack.rc == 0x87
    c5.wait_closed(3)
    c4 = raws(b, 4)
    ack = c4.connect(uid("anon"), expect_rc=None)
    assert ack.rc == 0x05
    c4.wait_closed(3)
    r = mosquitto_pub(b, "-t", "a", "-m", "x", "-V", "mqttv311")
    assert r.returncode != 0
