"""The metrics listener: /metrics in the Prometheus text format, checked against known traffic with
python3-prometheus-client's own parser, /healthz, 404s and refused requests."""

import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from acehelpers import AUD, NOT_AUTHORIZED, SCOPE, PopKey, b64u
from acetestenv import IntrospectionAS, connect_b, pw_line
from acetestenv import tmp_path as ace_tmp_path  # noqa: F401 (a fixture: our own directory)
from conftest import HOST, acemq_only, acemqd_path, free_port, uid, wait_until
from metricshelp import get, metrics_url, scrape, series, start, val
import mqttraw as m
from tlshelp import mq, mq_tls, tls_lines

pytestmark = acemq_only


@pytest.fixture
def mbroker(make_broker):
    return start(make_broker)


def test_counters_match_traffic(mbroker, clients):
    sub = clients(mbroker)
    assert sub.subscribe("m/#", 1) == [1]
    pub = clients(mbroker)
    n0, n1 = 5, 7
    for i in range(n0):
        pub.publish("m/zero", b"0123456789", qos=0)
    for i in range(n1):
        pub.publish("m/one", b"x" * 20, qos=1)
    got = sub.get_n(n0 + n1)
    assert sorted(msg.qos for msg in got) == [0] * n0 + [1] * n1
    pub.publish("r/kept", b"retained", qos=1, retain=True)

    s = wait_until(lambda: (lambda x: x if val(x, "acemq_messages_sent_total", qos="1") == n1
                            else None)(scrape(mbroker)), 3, what="the sent counters")
    assert val(s, "acemq_messages_received_total", qos="0") == n0
    assert val(s, "acemq_messages_received_total", qos="1") == n1 + 1
    assert val(s, "acemq_messages_received_total", qos="2") == 0
    assert val(s, "acemq_messages_sent_total", qos="0") == n0
    assert val(s, "acemq_messages_sent_total", qos="1") == n1
    assert val(s, "acemq_message_bytes_received_total", qos="0") == 10 * n0
    assert val(s, "acemq_message_bytes_received_total", qos="1") == 20 * n1 + len(b"retained")
    assert val(s, "acemq_message_bytes_sent_total", qos="0") == 10 * n0
    assert val(s, "acemq_message_bytes_sent_total", qos="1") == 20 * n1
    assert val(s, "acemq_clients_connected") == 2
    assert val(s, "acemq_connections") == 2
    assert val(s, "acemq_connections_total") >= 2
    assert val(s, "acemq_clients_total") == 2
    assert val(s, "acemq_sessions") == 2
    assert val(s, "acemq_subscriptions") == 1
    assert val(s, "acemq_retained_messages") == 1
    # every MQTT byte the clients sent is counted: at least the payloads and the topics
    assert val(s, "acemq_bytes_received_total") > 10 * n0 + 20 * n1 + 6 * (n0 + n1)
    assert val(s, "acemq_bytes_sent_total") > 10 * n0 + 20 * n1
    assert val(s, "acemq_packets_received_total") >= n0 + n1 + 4
    assert val(s, "acemq_listener_connections", port=str(mbroker.port), protocol="mqtt",
               tls="no") == 2
    assert val(s, "acemq_auth_successes_total") == 2  # the two anonymous clients
    assert series(s, "acemq_auth_success_kinds_total", "kind") == {"anonymous": 2}
    assert val(s, "acemq_auth_failures_total") == 0
    assert series(s, "acemq_auth_failure_reasons_total", "reason") == {}
    assert val(s, "acemq_uptime_seconds") >= 0
    for w in range(mbroker.workers):
        assert val(s, "acemq_worker_loop_lag_seconds", worker=str(w)) < 1.0
        assert ("acemq_worker_loop_lag_max_seconds", (("worker", str(w)),)) in s
    assert val(s, "acemq_messages_dropped_total", reason="queue_full") == 0


def test_dropped_by_reason(make_broker, clients):
    # An offline persistent session with max_queued_messages 2 keeps two and drops the rest.
    mbroker = start(make_broker, "max_queued_messages 2")
    cid = uid("slow")
    slow = clients(mbroker, cid, protocol=4, clean=False)
    assert slow.subscribe("d/#", 1) == [1]
    slow.disconnect()
    pub = clients(mbroker)
    for i in range(5):
        pub.publish("d/x", b"%d" % i, qos=1)
    s = scrape(mbroker)
    assert val(s, "acemq_messages_dropped_total", reason="queue_full") == 3
    assert val(s, "acemq_messages_dropped_total", reason="too_large") == 0
    assert val(s, "acemq_messages_dropped_total", reason="other") == 0
    assert val(s, "acemq_sessions") == 2
    assert val(s, "acemq_clients_connected") == 1


def test_healthz_and_unknown_paths(mbroker):
    status, headers, body = get(mbroker.metrics_url + "/healthz")
    assert status == 200 and body.strip() == "ok"
    assert headers["Connection"] == "close"
    for path in ("/", "/metric", "/metrics/x", "/healthz2"):
        with pytest.raises(urllib.error.HTTPError) as e:
            get(mbroker.metrics_url + path)
        assert e.value.code == 404, path
    req = urllib.request.Request(mbroker.metrics_url + "/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 405
    assert get(mbroker.metrics_url + "/metrics?x=1")[0] == 200


def raw_http(port, data, timeout=5.0):
    """Sends data and returns everything the server answers before it closes."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


def test_huge_and_malformed_requests_refused(mbroker):
    port = int(mbroker.metrics_url.rsplit(":", 1)[1])
    big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n"
    answer = raw_http(port, big)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
    long_url = b"GET /" + b"m" * 1000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert raw_http(port, long_url).startswith(b"HTTP/1.1 414 ")
    assert raw_http(port, b"\x16\x03\x01garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    # a request that never ends does not stop others from being served
    with socket.create_connection((HOST, port)) as idle:
        idle.sendall(b"GET /metr")
        assert get(mbroker.metrics_url + "/healthz")[0] == 200
    assert mbroker.alive()


def password_broker(make_broker, tmp_path, *lines, sys_interval=0):
    """A metrics broker where only alice (password wonder) may connect."""
    pwf = tmp_path / "passwd"
    pwf.write_text(pw_line("alice", "wonder") + "\n")
    return start(make_broker, "allow_anonymous false", "password_file %s" % pwf, *lines,
                 sys_interval=sys_interval)


def test_auth_successes_and_failures_by_reason(make_broker, tmp_path):
    b = password_broker(make_broker, tmp_path)
    with b.raw() as c:
        c.connect(uid("good"), username="alice", password=b"wonder")
    with b.raw() as c:  # a wrong password, MQTT 5 and 3.1.1
        c.connect(uid("bad"), username="alice", password=b"wrong", expect_rc=0x86)
    with b.raw(4) as c:
        c.connect(uid("bad"), username="alice", password=b"wrong", expect_rc=5)
    with b.raw() as c:  # no user name: anonymous, refused
        c.connect(uid("anon"), expect_rc=0x87)
    with b.raw() as c:  # an authentication method this broker does not have (ACE is off)
        c.connect(uid("meth"), properties=[(m.AUTH_METHOD, "SCRAM-SHA-1")], expect_rc=0x8C)
    s = scrape(b)
    assert val(s, "acemq_auth_successes_total") == 1
    assert series(s, "acemq_auth_success_kinds_total", "kind") == {"password": 1}
    assert val(s, "acemq_auth_failures_total") == 4
    assert series(s, "acemq_auth_failure_reasons_total", "reason") == {
        "bad_credentials": 2, "anonymous_refused": 1, "bad_auth_method": 1}


def test_certificate_identity_counted(make_broker1, pki):
    # use_identity_as_username: the client certificate names the user
    b = start(make_broker1, *tls_lines(pki, "server-ec", "cafile " + pki.p("ca.crt"),
                                       "require_certificate true", "use_identity_as_username true"))
    r = mq("mosquitto_pub", b, *mq_tls(pki, "client-good"), "-t", uid("c"), "-m", "x")
    assert r.returncode == 0, r.stderr
    s = scrape(b)
    assert series(s, "acemq_auth_success_kinds_total", "kind") == {"certificate": 1}
    assert val(s, "acemq_auth_failures_total") == 0


def sys_round(c, timeout=8.0):
    """{topic: int} of one whole $SYS round published after the subscription (not the retained
    copies): from one $SYS/broker/uptime to the next."""
    deadline = time.monotonic() + timeout
    current = None
    while time.monotonic() < deadline:
        try:
            p = c.recv(0.5)
        except TimeoutError:
            continue
        if p.type != m.PUBLISH or p.retain:
            continue
        if p.topic == "$SYS/broker/uptime":
            if current is not None:
                return current
            current = {}
        elif current is not None and p.payload.isdigit():
            current[p.topic] = int(p.payload)
    raise AssertionError("no complete $SYS round within %.0fs" % timeout)


def test_sys_mirror(make_broker1, clients, raws, tmp_path):
    b = password_broker(make_broker1, tmp_path, sys_interval=1)
    with b.raw() as c:
        c.connect(uid("bad"), username="alice", password=b"nope", expect_rc=0x86)
    with b.raw() as c:
        c.connect(uid("anon"), expect_rc=0x87)
    tiny = raws(b, 5)  # takes no packet over 64 bytes: the big message is dropped for it
    tiny.connect(uid("tiny"), username="alice", password=b"wonder",
                 properties=[(m.MAXIMUM_PACKET_SIZE, 64)])
    assert tiny.subscribe([("q/#", 1)]).codes == [1]
    login = dict(username="alice", password="wonder")
    sub = clients(b, **login)
    assert sub.subscribe("q/#", 2) == [2]
    pub = clients(b, **login)
    for qos, n in ((0, 2), (1, 3), (2, 1)):
        for i in range(n):
            pub.publish("q/%d" % qos, b"x", qos=qos)
    pub.publish("q/big", b"b" * 200, qos=1)
    sub.get_n(7)

    with b.raw() as c:  # traffic is over; this reader's own deliveries only add to sent/qos0
        c.connect(uid("sys"), username="alice", password=b"wonder")
        c.subscribe([("$SYS/broker/#", 0)])
        mirror = sys_round(c)
        s = scrape(b)
    topic = "$SYS/broker/"
    expected = {
        "auth/successes": val(s, "acemq_auth_successes_total"),
        "auth/failures": val(s, "acemq_auth_failures_total"),
    }
    for q in range(3):
        expected["publish/messages/received/qos%d" % q] = val(s, "acemq_messages_received_total",
                                                             qos=str(q))
        if q:
            expected["publish/messages/sent/qos%d" % q] = val(s, "acemq_messages_sent_total",
                                                             qos=str(q))
    for name, label, prefix in (("acemq_messages_dropped_total", "reason", "publish/messages/dropped"),
                                ("acemq_auth_failure_reasons_total", "reason", "auth/failures"),
                                ("acemq_auth_success_kinds_total", "kind", "auth/successes")):
        for k, v in series(s, name, label).items():
            expected["%s/%s" % (prefix, k)] = v
    for (n, lab), v in s.items():
        if n == "acemq_token_validations_total":
            d = dict(lab)
            expected["tokens/%s/%s" % (d["method"], d["result"])] = v
    got = {k: mirror.get(topic + k) for k in expected}
    assert got == expected
    # and the values are the traffic above, not zeros that happen to agree
    assert expected["auth/failures/bad_credentials"] == 1
    assert expected["auth/failures/anonymous_refused"] == 1
    assert expected["auth/successes/password"] == 4  # tiny, sub, pub, the reader
    assert [expected["publish/messages/received/qos%d" % q] for q in range(3)] == [2, 4, 1]
    assert expected["publish/messages/dropped/too_large"] == 1
    assert expected["tokens/local/valid"] == 0
    sent0 = mirror[topic + "publish/messages/sent/qos0"]
    assert 2 <= sent0 <= val(s, "acemq_messages_sent_total", qos="0")


def test_metrics_listener_default_address(make_broker1):
    # `metrics_listener <port>` alone: 127.0.0.1, as documented
    for attempt in range(3):
        port = free_port()
        try:
            b = make_broker1("metrics_listener %d" % port)
            break
        except AssertionError as e:
            if attempt == 2 or "metrics_listener: cannot listen" not in str(e):
                raise
    assert get(metrics_url(port) + "/healthz")[0] == 200
    assert "event=listening address=127.0.0.1:%d protocol=http purpose=metrics" % port in b.log()
    other = non_loopback_address()
    if other:  # the same port on another address of this host is not served
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex((other, port)) != 0


def non_loopback_address():
    """An IPv4 address of this host other than 127.x, or None (no route: nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


def test_busy_metrics_port_stops_start(tmp_path):
    port = free_port()
    conf = tmp_path / "busy.conf"
    conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\nmetrics_listener %d 127.0.0.1\n"
                    % (free_port(), port))
    with socket.socket() as hold:  # the port is taken: the broker must refuse to start
        hold.bind((HOST, port))
        hold.listen(1)
        r = subprocess.run([acemqd_path(), "-c", str(conf)], capture_output=True, timeout=20)
    assert r.returncode == 1
    assert b"metrics_listener: cannot listen on 127.0.0.1 port %d" % port in r.stderr


# ---- store fsync latency, token validations, introspection latency ---------------------------------

def histogram(s, name, **labels):
    """(count, sum, {le: cumulative}) of one histogram series, checked for consistency."""
    key = tuple(sorted(labels.items()))
    buckets = {}
    for (n, lab), v in s.items():
        d = dict(lab)
        le = d.pop("le", None)
        if n == name + "_bucket" and tuple(sorted(d.items())) == key:
            buckets[float(le)] = v
    count, total = s[(name + "_count", key)], s[(name + "_sum", key)]
    cums = [buckets[k] for k in sorted(buckets)]
    assert cums == sorted(cums), buckets  # cumulative
    assert buckets[float("inf")] == count
    return count, total, buckets


def test_store_fsync_latency(make_broker, clients, tmp_path):
    b = start(make_broker, "persistence true", "persistence_location %s" % tmp_path,
              "fsync always")
    c0, s0, _ = histogram(scrape(b), "acemq_store_fsync_seconds")
    pub = clients(b)
    n = 12
    for i in range(n):  # each retained message goes to the store; with fsync always its PUBACK
        pub.publish("f/%d" % i, b"keep me %d" % i, qos=1, retain=True)  # waits for the fsync
    s = scrape(b)
    count, total, buckets = histogram(s, "acemq_store_fsync_seconds")
    assert count - c0 >= n, (c0, count)
    assert total > s0
    worst = val(s, "acemq_store_fsync_max_seconds")
    assert 0 < worst <= total
    assert worst < 10
    assert buckets[1.0] <= count


def test_no_fsync_without_persistence(mbroker, clients):
    pub = clients(mbroker)
    pub.publish("nf/x", b"x", qos=1, retain=True)
    s = scrape(mbroker)
    assert histogram(s, "acemq_store_fsync_seconds")[0] == 0
    assert val(s, "acemq_store_fsync_max_seconds") == 0
    for method in ("local", "introspection"):
        for result in ("valid", "expired", "bad_signature", "inactive", "unavailable"):
            assert val(s, "acemq_token_validations_total", method=method, result=result) == 0
    for outcome in ("answered", "failed"):
        assert histogram(s, "acemq_introspection_seconds", outcome=outcome)[0] == 0


def test_token_validations_and_introspection(ace_env, ace_tmp_path):
    key = PopKey("sym")
    active, inactive = "ref-" + uid("a"), "ref-" + uid("i")
    now = int(time.time())
    srv = IntrospectionAS({active: {
        "active": True, "aud": AUD, "exp": now + 60, "iss": "as1",
        "scope": [["r/#", ["pub", "sub"]]],
        "cnf": {"jwk": {"kty": "oct", "k": b64u(key.k), "kid": "r1"}}}})
    secret = ace_tmp_path / "secret"
    secret.write_text("s3cret\n")
    mport = free_port()
    try:
        e = ace_env(global_lines=("ace_introspection http://127.0.0.1:%d/introspect broker %s"
                                  % (srv.port, secret), "metrics_listener %d 127.0.0.1" % mport))
        e.b.metrics_url = metrics_url(mport)
        with e.tls() as c:  # a self-contained token, verified here
            connect_b(c, e.token(SCOPE, key), key)
        with e.tls() as c:
            connect_b(c, e.token(SCOPE, key, exp_in=-10), key, expect=NOT_AUTHORIZED)
        with e.tls() as c:  # reference tokens: not CBOR here, so the AS is asked
            connect_b(c, active.encode(), key)
        with e.tls() as c:
            connect_b(c, inactive.encode(), key, expect=NOT_AUTHORIZED)
        s = scrape(e.b)
    finally:
        srv.close()

    def tokens(method, result):
        return val(s, "acemq_token_validations_total", method=method, result=result)
    assert tokens("local", "valid") == 1
    assert tokens("local", "expired") == 1
    assert tokens("local", "malformed") == 2  # the two reference tokens, before introspection
    assert tokens("introspection", "valid") == 1
    assert tokens("introspection", "inactive") == 1
    count, total, _ = histogram(s, "acemq_introspection_seconds", outcome="answered")
    assert count == 2 and 0 < total < 10
    assert histogram(s, "acemq_introspection_seconds", outcome="failed")[0] == 0
    assert 0 < val(s, "acemq_introspection_max_seconds") <= total
