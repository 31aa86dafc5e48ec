"""Several listeners on one broker, IPv4 and IPv6: each accepts clients and messages cross
between them; with per_listener_settings each has its own anonymous access."""
import socket
import types

import mqttraw as m
from conftest import HOST, IS_MOSQ, Broker, free_port, mosquitto_pub, uid, wait_until


def _accepts(host, port):
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_ipv6_and_ipv4_listeners(make_broker1):
    if not socket.has_ipv6 or not _accepts_v6_loopback():
        import pytest
        pytest.skip("no IPv6 loopback on this machine")
    p6, p4 = free_port(), free_port()
    b = make_broker1("listener %d ::1" % p6, "allow_anonymous true",
                     "listener %d 127.0.0.1" % p4, "allow_anonymous true")
    wait_until(lambda: _accepts("::1", p6) and _accepts("127.0.0.1", p4), what="both listeners")
    topic = uid("multi")
    sub = m.RawClient("::1", p6, 5, 5.0)
    sub.connect(uid("v6"))
    sub.subscribe([(topic, 1)])
    for port in (b.port, p4):                      # the fixture's listener and the second IPv4 one
        pub = m.RawClient("127.0.0.1", port, 4, 5.0)
        pub.connect(uid("v4"))
        pub.publish(topic, b"via %d" % port, qos=1, pid=1)
        pub.recv_type(m.PUBACK)
        pub.disconnect()
        p = sub.recv_type(m.PUBLISH)
        assert p.payload == b"via %d" % port
    sub.disconnect()


def _accepts_v6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_per_listener_anonymous(make_broker1, clients):
    # per_listener_settings true: listener A lets anonymous clients in, listener B does not.
    pa, pb = free_port(), free_port()
    lines = ["per_listener_settings true",
             "listener %d %s" % (pa, HOST), "allow_anonymous true",
             "listener %d %s" % (pb, HOST), "allow_anonymous false"]
    lines += ["log_dest stderr"] + (["log_type all"] if IS_MOSQ else ["workers 1"])
    a = Broker(whole_file=lines, port=pa)
    make_broker1.brokers.append(a)                 # stopped and checked at the end of the test
    wait_until(lambda: _accepts(HOST, pb), what="listener B")
    b = types.SimpleNamespace(host=HOST, port=pb)
    for protocol, refusal in ((5, 0x87), (4, 5)):
        clients(a, protocol=protocol)                       # CONNACK 0 asserted
        clients(b, protocol=protocol, expect_rc=refusal)
    for version in ("mqttv311", "mqttv5"):
        r = mosquitto_pub(a, "-V", version, "-t", uid("anon"), "-m", "x")
        assert r.returncode == 0, r.stderr
        r = mosquitto_pub(b, "-V", version, "-t", uid("anon"), "-m", "x")
        assert r.returncode != 0, r
