"""Will messages: when they are (not) published, Will Delay Interval, properties, retain, QoS."""

import select
import signal
import time

from paho.mqtt.reasoncodes import ReasonCodes
import pytest

from conftest import (mosquitto_deviation, uid, wait_until, mosquitto_sub_start, props,
                      PacketTypes)
import mqttraw as m


def watcher(raws, b, topic, qos=1):
    w = raws(b, 5)
    w.connect(uid("watch"))
    w.subscribe([(topic, qos)])
    return w


def will_client(raws, b, topic, version=5, payload=b"gone", qos=1, retain=False,
                will_props=None, conn_props=None, cid=None, clean=True):
    c = raws(b, version)
    c.connect(cid or uid("will"), clean=clean, properties=conn_props,
              will={"topic": topic, "payload": payload, "qos": qos, "retain": retain,
                    "properties": will_props})
    return c


@pytest.mark.parametrize("version", [3, 4, 5])
def test_will_on_socket_close(broker, raws, version):
    topic = uid("will")
    w = watcher(raws, broker, topic)
    c = will_client(raws, broker, topic, version)
    c.close()
    p = w.recv_type(m.PUBLISH)
    assert (p.topic, p.payload, p.qos, p.retain) == (topic, b"gone", 1, False)


@pytest.mark.parametrize("version", [4, 5])
def test_no_will_on_normal_disconnect(broker, raws, clients, version):
    topic = uid("will")
    w = watcher(raws, broker, topic)
    c = will_client(raws, broker, topic, version)
    c.disconnect()
    # Marker published after the DISCONNECT; the will, if wrongly sent, would come first or soon.
    time.sleep(0.1)
    clients(broker).publish(topic, b"marker", qos=1)
    p = w.recv_type(m.PUBLISH)
    assert p.payload == b"marker"
    w.send(m.puback(p.pid))
    w.recv_nothing(0.4)


def test_will_on_disconnect_with_will(broker, raws):
    topic = uid("will")
    w = watcher(raws, broker, topic)
    c = will_client(raws, broker, topic)
    c.disconnect(rc=0x04)              # Disconnect with Will Message
    p = w.recv_type(m.PUBLISH)
    assert p.payload == b"gone"


def test_will_on_protocol_error(broker, raws):
    topic = uid("will")
    w = watcher(raws, broker, topic)
    c = will_client(raws, broker, topic)
    c.send(m.publish("bad/+", b"x"))   # the broker closes the connection: not a normal disconnect
    c.wait_closed(3)
    assert w.recv_type(m.PUBLISH).payload == b"gone"


def test_will_delay(broker, raws):
    topic = uid("wd")
    w = watcher(raws, broker, topic)
    c = will_client(raws, broker, topic, will_props=[(m.WILL_DELAY, 2)],
                    conn_props=[(m.SESSION_EXPIRY, 30)])
    c.close()
    t0 = time.monotonic()
    p = w.recv_type(m.PUBLISH, timeout=5)
    elapsed = time.monotonic() - t0
    assert p.payload == b"gone"
    assert 1.5 <= elapsed <= 3.9, elapsed


@mosquitto_deviation("waits the Will Delay Interval although the session (expiry 0) ended")
def test_will_delay_capped_by_session_expiry(broker, raws):
    # Session Expiry 0: the session ends at once, and the will with it.
    topic = uid("wd")
    w = watcher(raws, broker, topic)
    c = will_client(raws, broker, topic, will_props=[(m.WILL_DELAY, 30)])
    c.close()
    t0 = time.monotonic()
    w.recv_type(m.PUBLISH, timeout=3)
    assert time.monotonic() - t0 < 2.0


def test_will_delay_cancelled_by_reconnect(broker, raws):
    topic = uid("wd")
    cid = uid("wd")
    w = watcher(raws, broker, topic)
    c = will_client(raws, broker, topic, cid=cid, clean=False,
                    will_props=[(m.WILL_DELAY, 2)], conn_props=[(m.SESSION_EXPIRY, 30)])
    c.close()
    time.sleep(0.5)
    c = raws(broker, 5)
    assert c.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 30)]).session_present
    w.recv_nothing(2.5)
    c.disconnect()
    w.recv_nothing(0.2)


def test_will_properties_passed_through(broker, raws):
    topic = uid("wp")
    w = watcher(raws, broker, topic)
    wprops = [(m.CONTENT_TYPE, "text/plain"), (m.USER_PROPERTY, ("k", "v1")),
              (m.MESSAGE_EXPIRY, 120), (m.PAYLOAD_FORMAT, 1), (m.RESPONSE_TOPIC, "reply/here"),
              (m.CORRELATION_DATA, b"\x00\x01corr"), (m.USER_PROPERTY, ("k", "v2"))]
    c = will_client(raws, broker, topic, payload="h\u00e9llo".encode(), will_props=wprops)
    c.close()
    p = w.recv_type(m.PUBLISH)
    assert p.payload == "h\u00e9llo".encode()
    assert p.prop(m.CONTENT_TYPE) == "text/plain"
    assert p.props_all(m.USER_PROPERTY) == [("k", "v1"), ("k", "v2")]
    assert 0 < p.prop(m.MESSAGE_EXPIRY) <= 120
    assert p.prop(m.PAYLOAD_FORMAT) == 1
    assert p.prop(m.RESPONSE_TOPIC) == "reply/here"
    assert p.prop(m.CORRELATION_DATA) == b"\x00\x01corr"


def test_will_retain(broker, raws):
    topic = uid("wr")
    c = will_client(raws, broker, topic, payload=b"last-words", retain=True, qos=1)
    c.close()
    # No subscriber at the time: the will is kept as the retained message.
    def retained():
        s = raws(broker, 5)
        s.connect(uid("wr"))
        s.subscribe([(topic, 1)])
        try:
            return s.recv_type(m.PUBLISH, timeout=0.3)
        except TimeoutError:
            return None
    p = wait_until(retained, 3, what="retained will")
    assert p.payload == b"last-words" and p.retain


def test_will_qos2(broker, raws):
    topic = uid("wq")
    w = watcher(raws, broker, topic, qos=2)
    c = will_client(raws, broker, topic, qos=2)
    c.close()
    p = w.recv_type(m.PUBLISH)
    assert p.qos == 2 and p.payload == b"gone"


def test_will_from_mosquitto_sub(broker, raws, clients):
    topic = uid("wcli")
    ready = uid("ready")
    w = watcher(raws, broker, topic)
    s = mosquitto_sub_start(broker, "-V", "mqttv311", "-t", ready, "--will-topic", topic,
                            "--will-payload", "sub-died", "--will-qos", "1")
    try:
        # Connected (and its will registered) once it prints what we publish.
        pub = clients(broker)
        deadline = time.monotonic() + 5
        while True:
            pub.publish(ready, b"up", qos=0)
            if select.select([s.stdout], [], [], 0.2)[0]:
                assert s.stdout.readline().strip() == b"up"
                break
            assert time.monotonic() < deadline, "mosquitto_sub never received"
        s.send_signal(signal.SIGKILL)
        s.wait(5)
    finally:
        if s.poll() is None:
            s.kill()
            s.wait()
    p = w.recv_type(m.PUBLISH)
    assert p.payload == b"sub-died"


# The same with paho as the client that leaves a will.

def paho_watcher(clients, b, topic, protocol=5):
    w = clients(b, protocol=protocol)
    assert w.subscribe(topic, 1) == [1]
    return w


def test_will_delay_paho(broker, clients):
    topic = uid("wd")
    w = paho_watcher(clients, broker, topic, protocol=4)
    will = {"topic": topic, "payload": b"gone", "qos": 1,
            "properties": props(PacketTypes.WILLMESSAGE, WillDelayInterval=2)}
    c = clients(broker, will=will, properties=props(PacketTypes.CONNECT, SessionExpiryInterval=30))
    c.kill()
    t0 = time.monotonic()
    msg = w.get(timeout=5)
    elapsed = time.monotonic() - t0
    assert msg.payload == b"gone"
    assert 1.5 <= elapsed <= 3.9, elapsed


def test_will_properties_paho(broker, clients):
    topic = uid("wp")
    w = paho_watcher(clients, broker, topic)
    wprops = props(PacketTypes.WILLMESSAGE, ContentType="text/plain",
                   UserProperty=[("k", "v1"), ("k", "v2")], MessageExpiryInterval=120,
                   PayloadFormatIndicator=1, ResponseTopic="reply/here",
                   CorrelationData=b"\x00\x01corr")
    c = clients(broker, will={"topic": topic, "payload": "h\u00e9llo".encode(), "qos": 1,
                              "properties": wprops})
    c.kill()
    msg = w.get()
    assert msg.payload == "h\u00e9llo".encode()
    p = msg.properties
    assert p.ContentType == "text/plain"
    assert p.UserProperty == [("k", "v1"), ("k", "v2")]
    assert 0 < p.MessageExpiryInterval <= 120
    assert p.PayloadFormatIndicator == 1
    assert p.ResponseTopic == "reply/here"
    assert p.CorrelationData == b"\x00\x01corr"


@pytest.mark.parametrize("rc", [0x04, 0x00], ids=["with-will", "normal"])
def test_disconnect_reason_paho(broker, clients, rc):
    # DISCONNECT 0x04 (Disconnect with Will Message) publishes the will; 0x00 does not.
    topic = uid("will")
    w = paho_watcher(clients, broker, topic)
    c = clients(broker, will={"topic": topic, "payload": b"gone", "qos": 1})
    c.c.disconnect(reasoncode=ReasonCodes(PacketTypes.DISCONNECT, identifier=rc))
    assert c.disconnected.wait(3)
    if rc == 0x04:
        assert w.get().payload == b"gone"
    else:
        time.sleep(0.1)
        clients(broker).publish(topic, b"marker", qos=1)
        assert w.get().payload == b"marker"
    w.no_message(0.4)
