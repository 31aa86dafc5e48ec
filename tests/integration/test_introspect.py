"""The RFC 7662 introspection client (ace/introspect.c) against a local HTTPS authorization server.

The AS is Python's http.server behind ssl with a certificate the openssl CLI makes per test session;
the client is build/acemq-introspect, which runs the broker's own code on a libuv loop. Covered:
active / inactive answers, application/ace+json with an AIF scope, chunked bodies, HTTP errors, bad
JSON, bad credentials, an AS that is down (closed port), an AS slower than the timeout, a certificate
that does not verify, the answer cache, and cancelling a request in flight.
"""

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT, free_port
from tlshelp import self_signed

BUILD = os.environ.get("ACEMQ_BUILD", os.path.join(ROOT, "build"))
TOOL = os.path.join(BUILD, "acemq-introspect")
CLIENT_ID, SECRET = "acemq-broker", "s3cr3t:with%odd chars"

pytestmark = pytest.mark.skipif(not os.access(TOOL, os.X_OK), reason="acemq-introspect not built")


def answer_for(token):
    """(status, content type, body bytes, chunked, delay) for each test token."""
    now = int(time.time())
    active = {"active": True, "client_id": "dev-1", "scope": "sensors/+/temp cmds/#",
              "exp": now + 300, "iat": now, "jti": "jti-" + token, "aud": "mqtt-broker"}
    if token == "inactive":
        return 200, "application/json", b'{"active":false}', False, 0
    if token == "slow":
        return 200, "application/json", json.dumps(active).encode(), False, 3
    if token == "bad-json":
        return 200, "application/json", b'{"active":true,', False, 0
    if token == "no-active":
        return 200, "application/json", b'{"scope":"x"}', False, 0
    if token == "error-500":
        return 500, "text/plain", b"boom", False, 0
    if token == "wrong-type":
        return 200, "text/html", json.dumps(active).encode(), False, 0
    if token == "expired":
        active["exp"] = now - 3600
    if token == "chunked":
        return 200, "application/json; charset=utf-8", json.dumps(active).encode(), True, 0
    if token == "ace-json":
        active.update(scope=[["sensors/+/temp", ["pub"]], ["cmds/#", ["sub"]]],
                      cnf={"kid": "device-key-1"})
        return 200, "application/ace+json", json.dumps(active).encode(), False, 0
    return 200, "application/json", json.dumps(active).encode(), False, 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        auth = self.headers.get("Authorization", "")
        want = "Basic " + base64.b64encode(("%s:%s" % (urllib.parse.quote(CLIENT_ID, safe=""),
                                                       urllib.parse.quote(SECRET, safe="")))
                                           .encode()).decode()
        ok = (auth == want and self.headers.get("Content-Type") ==
              "application/x-www-form-urlencoded" and form.get("token_type_hint") == ["access_token"])
        token = form.get("token", [""])[0]
        self.server.seen.append(token)
        if not ok:
            status, ctype, body, chunked, delay = 401, "application/json", b'{"error":"invalid_client"}', False, 0
        else:
            status, ctype, body, chunked, delay = answer_for(token)
        time.sleep(delay)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Connection", "close")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 7):  # small chunks, so they straddle reads
                part = body[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


@pytest.fixture(scope="module")
def tmp():
    d = tempfile.mkdtemp(prefix="acemq-introspect-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def start_as(crt, key, tls=True):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.seen = []
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture(scope="module")
def as_https(tmp):
    crt, key = self_signed(tmp, "localhost")
    srv = start_as(crt, key)
    yield srv, "https://localhost:%d/introspect" % srv.server_address[1], crt
    srv.shutdown()


@pytest.fixture(scope="module")
def secret_file(tmp):
    p = os.path.join(tmp, "secret")
    with open(p, "w") as f:
        f.write(SECRET + "\n")
    return p


def run(url, token, secret, cafile=None, *extra, timeout=20):
    args = [TOOL, "--url", url, "--client-id", CLIENT_ID, "--secret-file", secret]
    if cafile:
        args += ["--cafile", cafile]
    r = subprocess.run(args + list(extra) + [token], capture_output=True, timeout=timeout)
    lines = [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]
    assert "AddressSanitizer" not in r.stderr.decode(), r.stderr.decode()
    return r.returncode, lines


def test_active(as_https, secret_file):
    srv, url, ca = as_https
    rc, out = run(url, "good-token", secret_file, ca, "--audience", "mqtt-broker")
    assert rc == 0, out
    a = out[0]
    assert a["status"] == "active" and a["sub"] == "dev-1" and a["cti"] == "jti-good-token"
    assert a["scope"] == "sensors/+/temp cmds/#" and a["scope_kind"] == "text"
    assert a["iss"] == url  # the AS left iss out: the configured AS names the issuer
    assert a["exp"] > time.time()


def test_inactive(as_https, secret_file):
    _, url, ca = as_https
    rc, out = run(url, "inactive", secret_file, ca)
    assert rc == 1 and out[0]["status"] == "inactive" and out[0]["code"] == -40


def test_ace_json_and_aif_scope(as_https, secret_file):
    _, url, ca = as_https
    rc, out = run(url, "ace-json", secret_file, ca)
    assert rc == 0, out
    assert out[0]["scope_kind"] == "json"
    assert json.loads(out[0]["scope"]) == [["sensors/+/temp", ["pub"]], ["cmds/#", ["sub"]]]
    assert out[0]["cnf"] == {"kid": "device-key-1"}


def test_chunked(as_https, secret_file):
    _, url, ca = as_https
    rc, out = run(url, "chunked", secret_file, ca)
    assert rc == 0 and out[0]["sub"] == "dev-1"


@pytest.mark.parametrize("token,code", [("bad-json", -44), ("no-active", -44), ("wrong-type", -44),
                                        ("error-500", -43), ("expired", -6)])
def test_bad_answers(as_https, secret_file, token, code):
    _, url, ca = as_https
    rc, out = run(url, token, secret_file, ca)
    assert rc == 2 and out[0]["code"] == code, out


def test_wrong_audience(as_https, secret_file):
    _, url, ca = as_https
    rc, out = run(url, "good-token", secret_file, ca, "--audience", "another-broker")
    assert rc == 2 and out[0]["code"] == -5


def test_bad_credentials(as_https, tmp):
    _, url, ca = as_https
    wrong = os.path.join(tmp, "wrong-secret")
    with open(wrong, "w") as f:
        f.write("not-the-secret\n")
    rc, out = run(url, "good-token", wrong, ca)
    assert rc == 2 and out[0]["code"] == -43  # 401


def test_as_down(secret_file):
    url = "http://127.0.0.1:%d/introspect" % free_port()  # nobody listens there
    rc, out = run(url, "good-token", secret_file)
    assert rc == 2 and out[0]["code"] == -41


def test_slow_as_times_out(as_https, secret_file):
    _, url, ca = as_https
    t0 = time.monotonic()
    rc, out = run(url, "slow", secret_file, ca, "--timeout-ms", "500")
    assert rc == 2 and out[0]["code"] == -42
    assert 400 <= out[0]["ms"] < 2500 and time.monotonic() - t0 < 2.9


def test_untrusted_certificate(as_https, secret_file, tmp):
    _, url, _ = as_https
    other_ca, _ = self_signed(tmp, "other.example")
    rc, out = run(url, "good-token", secret_file, other_ca)
    assert rc == 2 and out[0]["code"] == -45


def test_name_mismatch(tmp, secret_file):
    crt, key = self_signed(tmp, "as.example")  # trusted, but issued for another name
    srv = start_as(crt, key)
    try:
        url = "https://localhost:%d/introspect" % srv.server_address[1]
        rc, out = run(url, "good-token", secret_file, crt)
        assert rc == 2 and out[0]["code"] == -45
        assert srv.seen == []  # no request went out over the unverified connection
    finally:
        srv.shutdown()


def test_cache_serves_repeats(as_https, secret_file):
    srv, url, ca = as_https
    before = srv.seen.count("cache-me")
    rc, out = run(url, "cache-me", secret_file, ca, "--repeat", "3")
    assert rc == 0 and [o["cached"] for o in out] == [False, True, True]
    assert all(o["status"] == "active" for o in out)
    assert srv.seen.count("cache-me") - before == 1
    rc, out = run(url, "inactive", secret_file, ca, "--repeat", "2")
    assert rc == 1 and [o["cached"] for o in out] == [False, True]
    rc, out = run(url, "cache-off", secret_file, ca, "--repeat", "2", "--cache-ttl", "0")
    assert srv.seen.count("cache-off") == 2


def test_plain_http(tmp, secret_file):
    srv = start_as(None, None, tls=False)
    try:
        url = "http://127.0.0.1:%d/introspect" % srv.server_address[1]
        rc, out = run(url, "good-token", secret_file)
        assert rc == 0 and out[0]["sub"] == "dev-1"
    finally:
        srv.shutdown()


def test_cancel_in_flight(as_https, secret_file):
    _, url, ca = as_https
    rc, out = run(url, "slow", secret_file, ca, "--cancel-after-ms", "200", "--timeout-ms", "5000")
    assert rc == 3 and out == [{"status": "cancelled"}]


def test_cancel_during_connect(secret_file):
    # A listener that never accepts: the connect may complete in the kernel backlog, the answer never.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(0)
        url = "https://localhost:%d/x" % s.getsockname()[1]
        rc, out = run(url, "t", secret_file, None, "--cancel-after-ms", "50")
        assert rc == 3, out


def test_https_ip_literal_refused(secret_file):
    # mbedTLS 2.28 cannot match an IP address against a certificate: refused at start with the reason.
    r = subprocess.run([TOOL, "--url", "https://127.0.0.1:1/x", "--client-id", CLIENT_ID,
                        "--secret-file", secret_file, "t"], capture_output=True, timeout=10)
    assert r.returncode == 2 and b"DNS name" in r.stderr
