"""Several listeners on one broker, IPv4 and IPv6: each accepts clients and messages cross
between them."""
import socket

import mqttraw as m
from conftest import acemq_only, free_port, uid, wait_until


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
