"""SIGTERM / SIGINT: stop accepting, send MQTT 5 clients DISCONNECT 0x8B (Server shutting
down), close 3.1.1 clients, flush the store, and exit 0 within a bound."""
import signal
import socket
import time

import mqttraw as m
from conftest import HOST, acemq_only, uid
from wshelp import RawWS, upgrade_request, ws_broker


@acemq_only
def test_sigterm_disconnects_v5_with_0x8b_and_exits_0(make_broker1, raws):
    b = make_broker1()
    c5 = raws(b, 5)
    c5.connect(uid("v5"))
    c4 = raws(b, 4)
    c4.connect(uid("v4"))
    t0 = time.monotonic()
    b.stopped_by_test = True
    b.proc.send_signal(signal.SIGTERM)
    d = c5.recv_type(m.DISCONNECT, timeout=5)
    assert d.rc == 0x8B
    c5.wait_closed(5)
    c4.wait_closed(5)              # no DISCONNECT exists in 3.1.1: the socket is closed
    assert b.proc.wait(timeout=5) == 0
    assert time.monotonic() - t0 < 5
    assert "event=stopped" in b.log()


@acemq_only
def test_sigint_with_persistence_flushes_and_exits_0(make_broker1, raws, tmp_path):
    b = make_broker1("persistence true", "persistence_location %s" % tmp_path,
                     "fsync everysec")
    c = raws(b, 5)
    c.connect(uid("p"))
    topic = uid("keep")
    c.publish(topic, b"retained-before-stop", qos=1, retain=True, pid=1)
    c.recv_type(m.PUBACK)
    b.stopped_by_test = True
    b.proc.send_signal(signal.SIGINT)
    assert b.proc.wait(timeout=5) == 0
    # written with "everysec", the retained message survives a clean stop and restart
    b2 = make_broker1("persistence true", "persistence_location %s" % tmp_path,
                      "fsync everysec")
    s = raws(b2, 5)
    s.connect(uid("s"))
    s.subscribe([(topic, 0)])
    p = s.recv_type(m.PUBLISH)
    assert p.payload == b"retained-before-stop" and p.retain


@acemq_only
def test_no_new_connection_while_stopping(make_broker1):
    b = ws_broker(make_broker1)
    ws = RawWS(b.ws_port, upgrade_request())
    try:
        assert ws.http_response()[0] == 101
        # At the stop the WebSocket gets a close frame and up to a second to answer it, which this
        # one never does: the broker is still up then, with its listeners already closed.
        b.stopped_by_test = True
        b.proc.send_signal(signal.SIGTERM)
        refused_while_up = False
        deadline = time.monotonic() + 5
        while not refused_while_up and b.proc.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, b.port), timeout=1).close()  # not stopping yet
            except (ConnectionRefusedError, ConnectionResetError):  # reset: queued as it closed
                refused_while_up = b.proc.poll() is None
            time.sleep(0.005)
        assert refused_while_up, "no connection refused while the broker was stopping"
        assert b.proc.wait(timeout=5) == 0
    finally:
        ws.s.close()
