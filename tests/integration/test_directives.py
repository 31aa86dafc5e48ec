"""Mosquitto directives whose meaning acemq shares: clientid_prefixes, upgrade_outgoing_qos,
connection_messages, log_timestamp and log_timestamp_format."""
import time

from conftest import acemq_only, uid, wait_until


def test_clientid_prefixes(make_broker1, clients):
    b = make_broker1("clientid_prefixes dev-")
    ok = clients(b, "dev-" + uid("p"))
    ok.publish(uid("t"), b"x", qos=1)
    clients(b, uid("other"), expect_rc=0x87)                      # MQTT 5: not authorized
    clients(b, uid("other"), protocol=4, expect_rc=5)             # 3.1.1: not authorized


def test_upgrade_outgoing_qos(make_broker1, clients):
    topic = uid("up")
    b = make_broker1("upgrade_outgoing_qos true")
    sub = clients(b)
    sub.subscribe(topic, 1)
    clients(b).publish(topic, b"hello", qos=0)
    assert sub.get().qos == 1
    b2 = make_broker1()
    sub2 = clients(b2)
    sub2.subscribe(topic, 1)
    clients(b2).publish(topic, b"hello", qos=0)
    assert sub2.get().qos == 0


@acemq_only
def test_connection_messages_off(make_broker1, clients):
    b = make_broker1("connection_messages false")
    cid = uid("quiet")
    clients(b, cid).publish(uid("t"), b"x", qos=1)
    loud = make_broker1()
    cid2 = uid("loud")
    clients(loud, cid2).publish(uid("t"), b"x", qos=1)
    wait_until(lambda: cid2 in loud.log(), what="the connect line with messages on")
    assert cid not in b.log()


@acemq_only
def test_log_timestamp_off_and_format(make_broker1, clients):
    b = make_broker1("log_timestamp false")
    cid = uid("nots")
    clients(b, cid)
    line = wait_until(lambda: next((l for l in b.log().splitlines() if cid in l), None),
                      what="a connect line")
    assert line.startswith("level="), line
    b2 = make_broker1("log_timestamp_format %Y/%m/%d-%H:%M")
    cid2 = uid("fmt")
    clients(b2, cid2)
    line2 = wait_until(lambda: next((l for l in b2.log().splitlines() if cid2 in l), None),
                       what="a connect line")
    assert line2.startswith('ts="%s' % time.strftime("%Y/")), line2
