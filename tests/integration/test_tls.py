"""MQTT over TLS 1.2: Mosquitto's clients, paho-mqtt and openssl s_client against TLS listeners.

Every certificate is made by the `pki` fixture (tlshelp.py) with the openssl CLI in a temporary
directory for the session (nothing is committed): a CA, ECDSA P-256 and RSA server certificates for
localhost/127.0.0.1, client certificates (good, expired, revoked, and one from an unknown CA) and
a CRL. The exporter value itself is checked against OpenSSL's by tests/unit/test_tls.c; here
s_client only shows that the exporter is available on a session that carries MQTT, and ACE clients
(pyOpenSSL) show that exporter proof of possession is refused without Extended Master Secret and on a
resumed session. Also: cipher suites and ECDHE groups, CA and CRL reload, and the handshake cap.
"""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
from OpenSSL._util import lib as ossl

import mqttraw
from acehelpers import AUD, Issuer, PopKey, TlsRaw, ace_props, auth_data, claims
from conftest import IS_MOSQ, acemq_only, uid, wait_until
from tlshelp import PSK_ID, PSK_KEY, issue, mq, mq_tls, sh, tls_lines

EXPORTER = "EXPORTER-ACE-MQTT-Sign-Challenge"


def client_auth_lines(pki, *extra):
    return tls_lines(pki, "server-ec", "cafile " + pki.p("ca.crt"), "require_certificate true",
                     *extra)


def s_client(b, *args, input=b"", timeout=10):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % b.port] + list(args),
                       input=input, capture_output=True, timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def log_has(b, *words, timeout=5.0):
    """Waits until one broker log line holds every word; returns that line."""
    def find():
        for line in b.log().splitlines():
            if all(w in line for w in words):
                return line
        return None
    return wait_until(find, timeout, what="a log line with %r" % (words,))


def tls_client(b, clients, pki, cert=None, **kw):
    c = clients(b, connect=False, **kw)
    c.c.tls_set(ca_certs=pki.p("ca.crt"), certfile=cert and pki.p(cert + ".crt"),
                keyfile=cert and pki.p(cert + ".key"))
    c.connect()
    return c


def pub_retained_then_sub(b, pki, cert=None):
    topic = uid("tls")
    r = mq("mosquitto_pub", b, *mq_tls(pki, cert), "-t", topic, "-m", "over-tls", "-q", "1", "-r")
    assert r.returncode == 0, r.stderr
    r = mq("mosquitto_sub", b, *mq_tls(pki, cert), "-t", topic, "-C", "1", "-W", "5")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == "over-tls"


def test_mosquitto_clients_with_cafile(make_broker, pki):
    b = make_broker(*tls_lines(pki))
    pub_retained_then_sub(b, pki)


def test_client_certificate_required(make_broker1, pki):
    b = make_broker1(*client_auth_lines(pki))
    r = mq("mosquitto_pub", b, *mq_tls(pki), "-t", uid("x"), "-m", "no cert")
    assert r.returncode != 0
    pub_retained_then_sub(b, pki, "client-good")
    if not IS_MOSQ:
        log_has(b, "tls_handshake_failed", "no client certificate")


@acemq_only
def test_identity_as_username(make_broker1, pki):
    b = make_broker1(*client_auth_lines(pki, "use_identity_as_username true"))
    cid = uid("ident")
    r = mq("mosquitto_pub", b, *mq_tls(pki, "client-good"), "-i", cid, "-t", uid("x"), "-m", "x")
    assert r.returncode == 0, r.stderr
    line = log_has(b, "event=connect", "client=" + cid)
    assert "user=client-good" in line, line


def test_paho_over_tls(make_broker1, clients, pki):
    b = make_broker1(*tls_lines(pki))
    sub = tls_client(b, clients, pki)
    topic = uid("paho")
    assert sub.subscribe(topic, 1) == [1]
    pub = tls_client(b, clients, pki, protocol=4)
    pub.publish(topic, b"paho-tls", qos=1)
    assert sub.get().payload == b"paho-tls"


def test_version_negotiation_and_exporter(make_broker1, pki):
    b = make_broker1(*tls_lines(pki))
    rc, out = s_client(b, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert rc != 0 and "Cipher is (NONE)" in out, out
    if not IS_MOSQ:
        assert "alert protocol version" in out, out
        log_has(b, "tls_handshake_failed", "version too old")
    rc, out = s_client(b, "-tls1_2", "-CAfile", pki.p("ca.crt"), "-verify_return_error",
                       "-keymatexport", EXPORTER, "-keymatexportlen", "32")
    assert rc == 0, out
    assert re.search(r"Protocol\s*: TLSv1\.2", out), out
    assert "Verify return code: 0 (ok)" in out
    assert re.search(r"Keying material: [0-9A-F]{64}", out), out


@pytest.mark.parametrize("cert,reason", [("client-unknown", "unknown CA"),
                                         ("client-expired", "client certificate expired"),
                                         ("client-revoked", "client certificate revoked")])
def test_bad_client_certificates_refused(make_broker1, pki, cert, reason):
    b = make_broker1(*client_auth_lines(pki, "crlfile " + pki.p("crl.pem")))
    r = mq("mosquitto_pub", b, *mq_tls(pki, cert), "-t", uid("x"), "-m", "refused")
    assert r.returncode != 0, r.stdout
    if not IS_MOSQ:
        line = log_has(b, "tls_handshake_failed", 'reason="%s"' % reason)
        assert "peer=127.0.0.1:" in line and "error=" in line, line
    # The good certificate still passes the same CRL.
    r = mq("mosquitto_pub", b, *mq_tls(pki, "client-good"), "-t", uid("x"), "-m", "ok")
    assert r.returncode == 0, r.stderr


def test_psk(make_broker1, pki):
    b = make_broker1("psk_hint acemq-test", "psk_file " + pki.p("psk.txt"))
    topic = uid("psk")
    args = ["--psk-identity", PSK_ID, "-t", topic, "-q", "1"]
    r = mq("mosquitto_pub", b, "--psk", PSK_KEY, "-m", "psk-ok", "-r", *args)
    assert r.returncode == 0, r.stderr
    r = mq("mosquitto_sub", b, "--psk", PSK_KEY, "-C", "1", "-W", "5", *args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == "psk-ok"
    rc, out = s_client(b, "-tls1_2", "-psk_identity", PSK_ID, "-psk", PSK_KEY)
    assert rc == 0 and re.search(r"Cipher\s*: \S*PSK", out), out
    wrong = "ff" + PSK_KEY[2:]
    r = mq("mosquitto_pub", b, "--psk", wrong, "-m", "psk-bad", *args)
    assert r.returncode != 0
    if not IS_MOSQ:
        log_has(b, "tls_handshake_failed", "bad PSK")


def test_session_resumption(make_broker1, pki, tmp_path):
    b = make_broker1(*tls_lines(pki))
    sess = str(tmp_path / "sess.pem")
    rc, out = s_client(b, "-tls1_2", "-CAfile", pki.p("ca.crt"), "-sess_out", sess)
    assert rc == 0 and out.count("New, TLSv1.2") >= 1, out
    rc, out = s_client(b, "-tls1_2", "-CAfile", pki.p("ca.crt"), "-sess_in", sess)
    assert rc == 0 and "Reused, TLSv1.2" in out, out
    if not IS_MOSQ:
        # Resumed handshakes are logged at info level with resumed=1.
        assert "resumed=1" in log_has(b, "tls_handshake_done", "resumed=1")


def server_subject(b):
    rc, out = s_client(b, "-tls1_2", "-showcerts")
    m = re.search(r"^subject=(.*)$", out, re.M)
    assert m, out
    return m.group(1)


@acemq_only
def test_sighup_reload(make_broker1, clients, pki):
    d = tempfile.mkdtemp(prefix="acemq-reload-")
    try:
        crt, key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
        shutil.copy(pki.p("server-ec.crt"), crt)
        shutil.copy(pki.p("server-ec.key"), key)
        b = make_broker1("certfile " + crt, "keyfile " + key)
        assert "acemq-ecdsa" in server_subject(b)
        sub = tls_client(b, clients, pki)
        topic = uid("reload")
        assert sub.subscribe(topic, 1) == [1]

        shutil.copy(pki.p("server-rsa.crt"), crt)
        shutil.copy(pki.p("server-rsa.key"), key)
        b.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "acemq-rsa" in server_subject(b), 5, what="the new certificate")
        pub = tls_client(b, clients, pki)
        pub.publish(topic, b"after-reload", qos=1)
        assert sub.get().payload == b"after-reload"

        # A broken key, then a missing one: the RSA certificate stays, and the log says why.
        with open(key, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
        b.proc.send_signal(signal.SIGHUP)
        log_has(b, "tls_reload_failed", "keeping the old")
        os.remove(key)
        b.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: b.log().count("tls_reload_failed") >= 2, 5, what="a second failure")
        assert "acemq-rsa" in server_subject(b)
        pub.publish(topic, b"still-serving", qos=1)
        assert sub.get().payload == b"still-serving"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_handshake_storm_keeps_delivering(make_broker1, clients, pki):
    b = make_broker1(*tls_lines(pki))
    sub = tls_client(b, clients, pki)
    pub = tls_client(b, clients, pki)
    topic = uid("storm")
    assert sub.subscribe(topic, 1) == [1]
    ctx = ssl.create_default_context(cafile=pki.p("ca.crt"))
    ok, errors = [], []
    start = threading.Barrier(51)

    def handshake():
        try:
            start.wait(10)
            with socket.create_connection((b.host, b.port), timeout=20) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    s.do_handshake()
                    ok.append(s.version())
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(e))

    threads = [threading.Thread(target=handshake) for _ in range(50)]
    for t in threads:
        t.start()
    start.wait(10)
    n = 40
    for i in range(n):
        pub.publish(topic, b"m%d" % i, qos=1)
    got = sub.get_n(n, timeout=20)
    for t in threads:
        t.join(30)
    assert [m.payload for m in got] == [b"m%d" % i for i in range(n)]
    assert not errors and len(ok) == 50, errors[:3]


@acemq_only
def test_capath_and_sni(make_broker1, pki, tmp_path):
    """Client certificates checked against a CA directory (capath); SNI from the client is
    accepted."""
    cas = tmp_path / "cas"
    cas.mkdir()
    shutil.copy(pki.p("ca.crt"), str(cas / "ca.crt"))
    b = make_broker1(*tls_lines(pki, "server-ec", "capath " + str(cas), "require_certificate true"))
    r = mq("mosquitto_pub", b, *mq_tls(pki, "client-good"), "-t", uid("x"), "-m", "x", "-q", "1")
    assert r.returncode == 0, r.stderr
    r = mq("mosquitto_pub", b, *mq_tls(pki), "-t", uid("x"), "-m", "x")
    assert r.returncode != 0
    rc, out = s_client(b, "-tls1_2", "-CAfile", pki.p("ca.crt"), "-servername", "localhost",
                       "-cert", pki.p("client-good.crt"), "-key", pki.p("client-good.key"))
    assert rc == 0 and "Verify return code: 0" in out, out


def peer(sock):
    """How the broker's log names the peer of this client socket."""
    return "peer=127.0.0.1:%d " % sock.getsockname()[1]


@acemq_only
def test_cipher_suites_and_ecdhe_groups(make_broker1, pki):
    """The default offers ECDHE with AEAD only; a `ciphers` list is exactly what is negotiated.
    The ECDHE group is the broker's choice: X25519, then P-256, whatever order the client lists."""
    b = make_broker1(*tls_lines(pki, "server-rsa"))  # an RSA key could do either suite
    rc, out = s_client(b, "-tls1_2", "-cipher", "AES128-SHA:ECDHE-RSA-AES128-SHA")  # CBC only
    assert rc != 0 and "Cipher is (NONE)" in out, out
    log_has(b, "tls_handshake_failed", 'reason="no shared cipher"')
    rc, out = s_client(b, "-tls1_2")
    assert rc == 0 and "Cipher is ECDHE-RSA-AES128-GCM-SHA256" in out, out
    assert "Server Temp Key: X25519" in out, out
    rc, out = s_client(b, "-tls1_2", "-groups", "P-521:P-384:P-256")
    assert rc == 0 and "Server Temp Key: ECDH, prime256v1" in out, out

    only = "ECDHE-ECDSA-CHACHA20-POLY1305"
    b = make_broker1(*tls_lines(pki, "server-ec", "ciphers " + only))
    rc, out = s_client(b, "-tls1_2")  # OpenSSL's whole default list
    assert rc == 0 and "Cipher is " + only in out, out
    rc, out = s_client(b, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert rc != 0 and "Cipher is (NONE)" in out, out
    log_has(b, "tls_handshake_failed", 'reason="no shared cipher"')
    # A shared suite, but the client's groups exclude the certificate's curve (P-256).
    rc, out = s_client(b, "-tls1_2", "-groups", "X25519")
    assert rc != 0, out
    log_has(b, "tls_handshake_failed", 'reason="no shared cipher suite usable with the '
            'certificate"')


@acemq_only
def test_sighup_reloads_ca_and_crl(make_broker1, clients, pki, tmp_path):
    """A client certificate revoked by a new CRL is refused after SIGHUP while its open connection
    keeps receiving; a CA added to cafile is trusted for new connections."""
    name = uid("client-hup")
    issue(pki.dir, name, "/CN=" + name)
    cafile, crl = str(tmp_path / "cas.pem"), str(tmp_path / "crl.pem")
    shutil.copy(pki.p("ca.crt"), cafile)
    shutil.copy(pki.p("crl.pem"), crl)
    b = make_broker1(*tls_lines(pki, "server-ec", "cafile " + cafile, "crlfile " + crl,
                                "require_certificate true"))
    sub = tls_client(b, clients, pki, cert=name)
    topic = uid("hup")
    assert sub.subscribe(topic, 1) == [1]
    assert mq("mosquitto_pub", b, *mq_tls(pki, "client-unknown"), "-t", topic, "-m", "x"
              ).returncode != 0
    log_has(b, "tls_handshake_failed", 'reason="unknown CA"')

    sh("openssl", "ca", "-config", "ca.cnf", "-revoke", name + ".crt", cwd=pki.dir)
    sh("openssl", "ca", "-config", "ca.cnf", "-gencrl", "-out", crl, cwd=pki.dir)
    with open(cafile, "a") as f, open(os.path.join(pki.dir, "..", "other", "ca.crt")) as other:
        f.write(other.read())
    b.proc.send_signal(signal.SIGHUP)
    log_has(b, "tls_reloaded", "result=ok")

    r = mq("mosquitto_pub", b, *mq_tls(pki, name), "-t", topic, "-m", "revoked now")
    assert r.returncode != 0, r.stdout
    log_has(b, "tls_handshake_failed", 'reason="client certificate revoked"')
    r = mq("mosquitto_pub", b, *mq_tls(pki, "client-unknown"), "-t", topic, "-m", "new CA",
           "-q", "1")
    assert r.returncode == 0, r.stderr
    pub = tls_client(b, clients, pki, cert="client-good")
    pub.publish(topic, b"after-reload", qos=1)
    got = [sub.get().payload, sub.get().payload]
    assert sorted(got) == [b"after-reload", b"new CA"], got


def client_hello():
    """A TLS 1.2 client's first flight, for a peer that sends it and then nothing more."""
    ctx = ssl.create_default_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def closed_by_peer(sock, timeout):
    """True once the broker closed the socket (EOF or reset), False if it was still open after
    timeout seconds."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return False
    return True


@acemq_only
def test_max_handshakes_queues_until_the_timeout_frees_the_slot(make_broker1, pki):
    """max_handshakes 1: a peer that stops after its ClientHello holds the only slot, a second
    client waits for it (queued, not refused) and completes once tls_handshake_timeout has closed
    the first. The second client starts halfway through the first one's 2 s, so that both the
    wait and what is left of its own deadline have a second of margin."""
    b = make_broker1(*tls_lines(pki, "server-ec", "tls_handshake_timeout 2"), "max_handshakes 1")
    stalled = socket.create_connection((b.host, b.port), timeout=10)
    t0 = time.monotonic()
    stalled.sendall(client_hello())
    assert stalled.recv(5), "no ServerHello: the handshake did not start"
    time.sleep(max(0.0, t0 + 1.0 - time.monotonic()))
    ctx = ssl.create_default_context(cafile=pki.p("ca.crt"))
    with socket.create_connection((b.host, b.port), timeout=10) as raw:
        second = peer(raw)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.version() == "TLSv1.2"
            s.sendall(mqttraw.connect(uid("queued"), 4))
            assert s.recv(4) == b"\x20\x02\x00\x00"  # CONNACK accepted
    assert closed_by_peer(stalled, 5)
    queued = log_has(b, "tls_handshake_queued", second, "max_handshakes")
    timed_out = log_has(b, "tls_handshake_timeout", peer(stalled),
                        'reason="handshake not completed in time"')
    done = log_has(b, "tls_handshake_done", second)
    lines = b.log().splitlines()
    assert lines.index(queued) < lines.index(timed_out) < lines.index(done)
    stalled.close()


# ---------------------------------------------------------------------------------------------
# RFC 9431 exporter proof of possession needs Extended Master Secret and a full handshake.

NO_EXTENDED_MASTER_SECRET = 0x1  # OpenSSL 3's SSL_OP_NO_EXTENDED_MASTER_SECRET; pyOpenSSL lacks it


def ace_tls_broker(make_broker1, pki, tmp_path):
    iss = Issuer(str(tmp_path), "as1")
    b = make_broker1("ace_audience " + AUD, iss.config(), *tls_lines(pki))
    key = PopKey("sym")
    return b, key, iss.cwt(claims([["s/#", ["pub", "sub"]]], key))


def form_a(c, token, key, expect):
    """CONNECT with the token and a PoP over this session's exporter value (RFC 9431 Form A)."""
    return c.connect(uid("pop"), properties=ace_props(auth_data(token, key.pop(c.exporter()))),
                     expect_rc=expect)


def assert_pop_refused(b, c, ack, why):
    assert ack.prop(mqttraw.REASON_STRING) == why, ack
    log_has(b, "connect_refused", peer(c.raw), "rc=0x87", 'reason="%s"' % why)


@acemq_only
def test_exporter_pop_refused_without_extended_master_secret(make_broker1, pki, tmp_path):
    b, key, token = ace_tls_broker(make_broker1, pki, tmp_path)
    with TlsRaw(b.host, b.port) as c:  # the same token and key pass with EMS
        form_a(c, token, key, 0)
    with TlsRaw(b.host, b.port, options=NO_EXTENDED_MASTER_SECRET) as c:
        log_has(b, "tls_handshake_done", peer(c.raw), "ems=0")
        ack = form_a(c, token, key, 0x87)
        assert_pop_refused(b, c, ack, "TLS session without Extended Master Secret")


@acemq_only
def test_exporter_pop_refused_on_resumed_session(make_broker1, pki, tmp_path):
    b, key, token = ace_tls_broker(make_broker1, pki, tmp_path)
    with TlsRaw(b.host, b.port) as first:
        form_a(first, token, key, 0)
        # taken while first is open: OpenSSL drops sessions of connections closed unshut
        with TlsRaw(b.host, b.port, session=first.sock.get_session()) as c:
            assert ossl.SSL_session_reused(c.sock._ssl) == 1
            log_has(b, "tls_handshake_done", peer(c.raw), "resumed=1", "ems=1")
            ack = form_a(c, token, key, 0x87)
            assert_pop_refused(b, c, ack,
                               "exporter proof of possession refused on a resumed TLS session")
