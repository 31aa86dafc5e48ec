"""CONNECT handling: protocol levels, client identifiers, takeover, sessions, timeouts, keepalive."""

import time

import paho.mqtt.client as mqtt_client
import pytest

from conftest import (IS_MOSQ, acemq_only, uid, wait_until, assert_serves, mosquitto_pub, props,
                      PacketTypes)
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
    # acemq answers a level above 5 with MQTT 5's 0x84 Unsupported Protocol Version (a newer
    # client reads MQTT 5 framing); mosquitto with 3.1.1's 0x01.
    assert [(p.type, p.rc) for p in pkts] == [(m.CONNACK, 0x01 if IS_MOSQ else 0x84)], pkts


def test_bad_protocol_name(broker1, raws):
    c = raws(broker1, 4)
    body = m.mqtt_str("MQTX") + bytes([4, 0x02]) + m.u16(60) + m.mqtt_str("badname")
    c.send(m.packet(m.CONNECT, 0, body))
    assert c.wait_closed(3) == []        # not MQTT: closed without an answer
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


def test_disconnect_session_expiry(broker, raws):
    # Session Expiry Interval 0 on DISCONNECT ends a 60 s session with the connection.
    cid = uid("dse")
    c = raws(broker, 5)
    c.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 60)])
    c.subscribe([(uid("dse"), 1)])
    c.disconnect(properties=[(m.SESSION_EXPIRY, 0)])
    c = raws(broker, 5)
    assert c.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 60)]).session_present is False
    c.disconnect(properties=[(m.SESSION_EXPIRY, 0)])
    # Expiry 0 at CONNECT: a non-zero one on DISCONNECT is a protocol error, and is not applied.
    cid = uid("dse")
    c = raws(broker, 5)
    c.connect(cid, clean=False)
    c.send(m.disconnect(0, [(m.SESSION_EXPIRY, 30)]))
    pkts = c.wait_closed(3)
    if not (IS_MOSQ and pkts == []):          # mosquitto closes without a DISCONNECT
        assert [(p.type, p.rc) for p in pkts] == [(m.DISCONNECT, 0x82)], pkts
    c = raws(broker, 5)
    assert c.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 60)]).session_present is False
    c.disconnect(properties=[(m.SESSION_EXPIRY, 0)])


# Sessions with paho: it sends DISCONNECT and closes its socket at once, so a reconnect on a new
# socket (maybe served by another worker) could overtake it; paho_disconnect waits for the broker.

def connections_ended(b, cid):
    mark = ("Client %s disconnected" if IS_MOSQ else "event=disconnect client=%s ") % cid
    return b.log().count(mark)


def paho_disconnect(b, c, properties=None):
    n = connections_ended(b, c.client_id)
    c.disconnect(properties)
    wait_until(lambda: connections_ended(b, c.client_id) > n, what="the end of " + c.client_id)


def paho_durable(clients, b, cid, protocol=5, expiry=60, **kw):
    """paho on cid's durable session: clean session 0 (MQTT 5: Session Expiry Interval expiry)."""
    if protocol == 5:
        kw["properties"] = props(PacketTypes.CONNECT, SessionExpiryInterval=expiry)
    return clients(b, cid, protocol, clean=False, **kw)


def test_disconnect_session_expiry_paho(broker, clients):
    cid = uid("dse")
    c = paho_durable(clients, broker, cid)
    c.subscribe(uid("dse"), 1)
    paho_disconnect(broker, c, props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    c = paho_durable(clients, broker, cid)
    assert c.session_present is False
    paho_disconnect(broker, c, props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    # Expiry 0 at CONNECT, 30 on DISCONNECT: refused (protocol error), so the session still ends.
    cid = uid("dse")
    c = clients(broker, cid, clean=False)
    paho_disconnect(broker, c, props(PacketTypes.DISCONNECT, SessionExpiryInterval=30))
    assert paho_durable(clients, broker, cid).session_present is False
    if not IS_MOSQ:
        assert "event=protocol_error client=%s " % cid in broker.log()


@pytest.mark.parametrize("protocol", [4, 5], ids=["mqtt311", "mqtt5"])
def test_session_present_paho(broker, clients, protocol):
    cid, topic = uid("sp"), uid("sp")
    c = paho_durable(clients, broker, cid, protocol)
    assert c.session_present is False
    assert c.subscribe(topic, 1) == [1]
    paho_disconnect(broker, c)
    clients(broker, protocol=protocol).publish(topic, b"while-away", qos=1)
    c = paho_durable(clients, broker, cid, protocol)
    assert c.session_present is True
    assert c.get().payload == b"while-away"
    paho_disconnect(broker, c)
    # A clean session / Clean Start discards it, subscription included.
    c = clients(broker, cid, protocol, clean=True)
    assert c.session_present is False
    clients(broker, protocol=protocol).publish(topic, b"gone", qos=1)
    c.no_message(0.3)


def expires_after_a_second(clients, b, protocol):
    """A durable session that expires 1 s after its connection ends: resumed 0.3 s after a
    DISCONNECT, gone 2.6 s after one (1 s, plus the broker's once-a-second check)."""
    cid = uid("exp")
    c = paho_durable(clients, b, cid, protocol, expiry=1)
    c.subscribe(uid("exp"), 1)
    paho_disconnect(b, c)
    time.sleep(0.3)
    c = paho_durable(clients, b, cid, protocol, expiry=1)
    assert c.session_present is True
    paho_disconnect(b, c)
    time.sleep(2.6)
    assert paho_durable(clients, b, cid, protocol, expiry=1).session_present is False


def test_session_expiry_paho(broker1, clients):
    expires_after_a_second(clients, broker1, 5)


@pytest.mark.parametrize("protocol", [4, 5], ids=["mqtt311", "mqtt5"])
def test_takeover_paho(broker, clients, protocol):
    cid = uid("take")
    old = paho_durable(clients, broker, cid, protocol)
    new = paho_durable(clients, broker, cid, protocol)
    assert new.session_present is True
    assert old.disconnected.wait(3), "the old connection is still open"
    rc = getattr(old.disconnect_rc, "value", old.disconnect_rc)
    if protocol == 5 and not IS_MOSQ:          # mosquitto 2.0.11 closes without DISCONNECT
        assert rc == 0x8E, old.disconnect_rc
    else:
        assert rc == mqtt_client.MQTT_ERR_CONN_LOST, old.disconnect_rc
    topic = uid("take")
    new.subscribe(topic, 1)
    new.publish(topic, b"mine", qos=1)
    assert new.get().payload == b"mine"
    old.no_message(0.2)


@acemq_only      # mosquitto takes persistent_client_expiration in hours at least
def test_persistent_client_expiration(make_broker1, clients):
    # persistent_client_expiration 1 (seconds): a 3.1.1 durable session lives 1 s offline.
    expires_after_a_second(clients, make_broker1("persistent_client_expiration 1"), 4)


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


def closed_by(c, timeout):
    """The time c was seen closed (after at most a DISCONNECT 0x8D), or None if still open."""
    try:
        pkts = c.wait_closed(timeout)
    except TimeoutError:
        return None
    assert all(p.type == m.DISCONNECT and p.rc == 0x8D for p in pkts), pkts
    return time.monotonic()


def test_keepalive(broker1, raws):
    # Keep Alive 2 s: a client silent since its CONNECT is closed 1.5 x 2 = 3 s after it. Time is
    # measured from before each CONNECT went out, so a correct broker cannot close one earlier
    # than 3 s, however loaded the machine. Two silent clients connect half a second apart: a
    # broker that checks keepalives once a second and closes at 1 x closes at least one of them
    # before 2.9 s. A client that pings stays connected.
    limit = 8.0 if IS_MOSQ else 6.0        # mosquitto checks keepalives less often
    alive = raws(broker1, 5)
    alive.connect(uid("ka"), keepalive=2)
    silent = []
    for i in range(2):
        time.sleep(0.5 * i)
        c = raws(broker1, 5)
        sent = time.monotonic()
        c.send(m.connect(uid("ka"), 5, keepalive=2))
        assert c.recv_type(m.CONNACK).rc == 0
        silent.append({"c": c, "sent": sent, "closed": None})
    deadline = time.monotonic() + limit
    while any(s["closed"] is None for s in silent) and time.monotonic() < deadline:
        alive.send(m.pingreq())
        alive.recv_type(m.PINGRESP)
        for s in silent:
            if s["closed"] is None:
                s["closed"] = closed_by(s["c"], 0.1)
    after = [s["closed"] and s["closed"] - s["sent"] for s in silent]
    assert None not in after, "a silent client still connected after %.1f s" % limit
    assert min(after) >= 2.9, "closed %s s after the CONNECT, before 1.5 x 2 s" % after
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
    c3 = raws(b, 5)
    ack = c3.connect(uid("ska"), keepalive=0)            # none at all is longer than any maximum
    assert ack.prop(m.SERVER_KEEP_ALIVE) == 10


@acemq_only      # mosquitto 2.0.11 applies max_keepalive to MQTT 5 clients only
def test_max_keepalive_refuses_older_clients(make_broker1, raws, clients):
    # MQTT 3.1 / 3.1.1 have no Server Keep Alive: a client asking for more than max_keepalive
    # (or for none, 0) is refused with CONNACK 2, identifier rejected (docs/configuration.md).
    b = make_broker1("max_keepalive 10")
    for version in (3, 4):
        for keepalive in (11, 0):
            c = raws(b, version)
            ack = c.connect(uid("mka"), keepalive=keepalive, expect_rc=None)
            assert (ack.rc, ack.session_present) == (0x02, False), (version, keepalive, ack)
            assert c.wait_closed(3) == []
        assert raws(b, version).connect(uid("mka"), keepalive=10).rc == 0
    clients(b, protocol=4, keepalive=60, expect_rc=2)
    clients(b, protocol=4, keepalive=10)
    r = mosquitto_pub(b, "-V", "mqttv311", "-k", "60", "-t", uid("mka"), "-m", "x")
    assert r.returncode != 0, r
    r = mosquitto_pub(b, "-V", "mqttv311", "-k", "10", "-t", uid("mka"), "-m", "x")
    assert r.returncode == 0, r.stderr


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
