"""The Mosquitto command-line clients against the broker, in all three protocol versions."""

import select
import subprocess
import time

import pytest

from conftest import uid, mosquitto_pub, mosquitto_sub_start
import mqttraw as m

VERSIONS = ["mqttv31", "mqttv311", "mqttv5"]


def sub_until_ready(b, clients, args, ready_topic):
    """Start mosquitto_sub and wait until it is subscribed (it prints a probe message)."""
    s = mosquitto_sub_start(b, *args)
    pub = clients(b)
    deadline = time.monotonic() + 5
    while True:
        pub.publish(ready_topic, b"ready", qos=0)
        if select.select([s.stdout], [], [], 0.2)[0]:
            line = s.stdout.readline()
            assert b"ready" in line, line
            return s
        if s.poll() is not None or time.monotonic() > deadline:
            s.kill()
            raise AssertionError("mosquitto_sub not ready: %r" % s.stderr.read())


@pytest.mark.parametrize("pv", VERSIONS)
@pytest.mark.parametrize("sv", VERSIONS)
def test_pub_sub_versions(broker1, clients, pv, sv):
    topic = uid("cli")
    s = sub_until_ready(broker1, clients, ["-V", sv, "-t", topic, "-q", "2", "-v", "-C", "4",
                                           "-W", "10"], topic)
    try:
        for q in (0, 1, 2):
            r = mosquitto_pub(broker1, "-V", pv, "-t", topic, "-m", "q%d" % q, "-q", str(q))
            assert r.returncode == 0, r.stderr
        out, err = s.communicate(timeout=10)
    finally:
        if s.poll() is None:
            s.kill()
            s.wait()
    assert s.returncode == 0, err
    lines = out.decode().splitlines()
    assert lines == ["%s q0" % topic, "%s q1" % topic, "%s q2" % topic], lines


def test_sub_timeout_without_messages(broker1):
    t0 = time.monotonic()
    r = subprocess.run(["mosquitto_sub", "-h", broker1.host, "-p", str(broker1.port),
                        "-t", uid("none"), "-C", "1", "-W", "1"], capture_output=True, timeout=10)
    assert r.returncode != 0 and r.stdout == b""
    assert time.monotonic() - t0 < 5


def test_v5_properties_from_cli(broker1, raws):
    topic = uid("cli5")
    s = raws(broker1, 5)
    s.connect(uid("cli5"))
    s.subscribe([(topic, 1)])
    r = mosquitto_pub(broker1, "-V", "mqttv5", "-t", topic, "-m", "props", "-q", "1",
                      "-D", "publish", "user-property", "k1", "v1",
                      "-D", "publish", "user-property", "k2", "v2",
                      "-D", "publish", "content-type", "text/plain",
                      "-D", "publish", "message-expiry-interval", "100",
                      "-D", "publish", "response-topic", topic + "/r",
                      "-D", "publish", "correlation-data", "abc")
    assert r.returncode == 0, r.stderr
    p = s.recv_type(m.PUBLISH)
    assert p.payload == b"props"
    assert p.props_all(m.USER_PROPERTY) == [("k1", "v1"), ("k2", "v2")]
    assert p.prop(m.CONTENT_TYPE) == "text/plain"
    assert 0 < p.prop(m.MESSAGE_EXPIRY) <= 100
    assert p.prop(m.RESPONSE_TOPIC) == topic + "/r"
    assert p.prop(m.CORRELATION_DATA) == b"abc"


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_durable_cli_session(broker1, clients, version):
    # mosquitto_sub -c -i ID: a persistent session that collects QoS 1 messages while away.
    cid = uid("clidur")
    topic = uid("clidur")
    extra = ["-x", "300"] if version == "mqttv5" else []
    s = sub_until_ready(broker1, clients, ["-V", version, "-c", "-i", cid, "-q", "1", "-t", topic,
                                           "-t", topic + "/ready"] + extra, topic + "/ready")
    s.terminate()
    s.wait(5)
    for i in range(3):
        r = mosquitto_pub(broker1, "-V", version, "-t", topic, "-m", "m%d" % i, "-q", "1")
        assert r.returncode == 0
    r = subprocess.run(["mosquitto_sub", "-h", broker1.host, "-p", str(broker1.port), "-V", version,
                        "-c", "-i", cid, "-q", "1", "-t", topic, "-C", "3", "-W", "5"] + extra,
                       capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ["m0", "m1", "m2"]
