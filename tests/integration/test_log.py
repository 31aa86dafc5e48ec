"""What the broker writes to its log: connect lines with client and peer, never payloads."""

import re

from conftest import IS_MOSQ, acemq_only, uid, wait_until, mosquitto_pub
import mqttraw as m


@acemq_only
def test_connect_line_has_client_and_peer(broker, raws):
    cid = uid("logme")
    c = raws(broker, 5)
    c.connect(cid)
    port = c.sock.getsockname()[1]
    line = wait_until(lambda: next((l for l in broker.log().splitlines()
                                    if "event=connect" in l and "client=%s" % cid in l), None),
                      3, what="connect log line")
    assert "peer=127.0.0.1:%d" % port in line, line
    assert re.search(r"\blevel=\w+", line), line
    # key=value throughout
    for field in line.split():
        assert "=" in field, line
    c.disconnect()


@acemq_only
def test_disconnect_reason_logged(broker, raws):
    cid = uid("logbad")
    c = raws(broker, 5)
    c.connect(cid)
    c.send(m.publish("bad/+/topic", b"x"))
    c.wait_closed(3)
    wait_until(lambda: any("client=%s" % cid in l and "event=connect" not in l
                           for l in broker.log().splitlines()), 3,
               what="a log line about the refused client")


def test_payload_never_logged(broker, raws):
    secret = "s3cr3t-" + uid("payload")
    topic = uid("log")
    s = raws(broker, 5)
    sub_id = uid("log")
    s.connect(sub_id)
    s.subscribe([(topic, 1)])
    c = raws(broker, 5)
    c.connect(uid("log"), will={"topic": topic, "payload": secret + "-will", "qos": 1})
    c.publish(topic, secret.encode(), qos=1, pid=1, properties=[(m.USER_PROPERTY, ("k", "v"))])
    c.recv_type(m.PUBACK)
    r = mosquitto_pub(broker, "-V", "mqttv311", "-t", topic, "-m", secret + "-cli", "-q", "2")
    assert r.returncode == 0
    c.close()                                   # the will is published too
    got = set()
    while len(got) < 3:
        p = s.recv_type(m.PUBLISH)
        got.add(p.payload)
        s.send(m.puback(p.pid))
    assert got == {secret.encode(), (secret + "-cli").encode(), (secret + "-will").encode()}
    # The log is written (it names the clients) but holds no payload.
    log = wait_until(lambda: sub_id in broker.log() and broker.log(), 3, what="log lines")
    assert secret not in log
