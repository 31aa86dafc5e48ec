"""acemqd introspecting reference tokens (ace_introspection) at a local HTTPS authorization server.

The AS is Python's http.server behind ssl, with a certificate for the name "localhost" made by the
openssl CLI (acemq's HTTPS client cannot match IP addresses in certificates, so the URL says
localhost too). Covered through the broker, with MQTT clients: an active token (connected, its
scope applies), an inactive one (0x87), an AS that is down (0x87 at once, the broker keeps serving)
and an AS slower than ace_introspection_timeout (0x87 after the timeout, while a second client on
the same worker connects and exchanges a message).
"""

import json
import os
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import mqttraw
from acehelpers import AUD, NOT_AUTHORIZED, SCOPE, PopKey, auth_packet, b64u
from acetestenv import connect_a, connect_b, hint_of
from acetestenv import tmp_path  # noqa: F401 (our own tmp_path fixture)
from conftest import IS_MOSQ, free_port, uid
from tlshelp import self_signed

pytestmark = pytest.mark.skipif(IS_MOSQ, reason="ACE is acemq's")

SLOW_S = 3.0


class AS:
    """RFC 7662 endpoint: `good-*` tokens are active (bound to `key`), `slow-*` too but answered
    after SLOW_S seconds, anything else is inactive."""

    def __init__(self, d, key):
        crt, keyfile = self_signed(d, "localhost")
        self.cafile, self.key, self.seen = crt, key, []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                tok = urllib.parse.parse_qs(self.rfile.read(n).decode()).get("token", [""])[0]
                outer.seen.append(tok)
                if tok.startswith("slow-"):
                    time.sleep(SLOW_S)
                body = json.dumps(outer.answer(tok)).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the broker gave up waiting

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, keyfile)
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = "https://localhost:%d/introspect" % self.srv.server_address[1]

    def answer(self, tok):
        if not (tok.startswith("good-") or tok.startswith("slow-")):
            return {"active": False}
        return {"active": True, "aud": AUD, "exp": int(time.time()) + 120, "sub": "dev-ref",
                "scope": [["r/#", ["pub", "sub"]]],
                "cnf": {"jwk": {"kty": "oct", "k": b64u(self.key.k), "kid": "ref-1"}}}

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def as_env(ace_env, tmp_path):
    made = []

    def start(url=None, timeout=1):
        key = PopKey("sym")
        a = AS(str(tmp_path), key)
        made.append(a)
        secret = tmp_path / "as-secret"
        secret.write_text("s3cret\n")
        e = ace_env(global_lines=(
            "ace_introspection %s acemq-broker %s" % (url or a.url, secret),
            "ace_introspection_cafile " + a.cafile,
            "ace_introspection_timeout %d" % timeout,
            "ace_introspection_cache_ttl 0"), workers=1)
        return e, a, key

    yield start
    for a in made:
        a.close()


def ref(kind):
    return ("%s-%s" % (kind, os.urandom(8).hex())).encode()


def exchange(e, topic="s/alive"):
    """A client with a locally verified token connects, subscribes, and gets its own message."""
    k = PopKey("sym")
    with e.tls() as c:
        connect_a(c, e.token(SCOPE, k), k)
        assert c.subscribe([(topic, 1)]).codes == [1]
        c.publish(topic, b"hello", qos=1, pid=2)
        got = {p.type: p for p in (c.recv(), c.recv())}
        assert got[mqttraw.PUBLISH].payload == b"hello" and got[mqttraw.PUBACK].rc == 0


def test_active_and_inactive(as_env):
    e, a, key = as_env()
    tok = ref("good")
    with e.tls() as c:
        connect_b(c, tok, key)
        c.publish("r/1", b"x", qos=1, pid=1)
        assert c.recv_type(mqttraw.PUBACK).rc in (0, 0x10)
        c.publish("s/1", b"x", qos=1, pid=2)  # outside the scope the AS gave
        assert c.recv_type(mqttraw.PUBACK).rc == NOT_AUTHORIZED
    with e.tls() as c:  # a bad PoP over an active token
        c.send(mqttraw.connect(uid(), 5, properties=[(mqttraw.AUTH_METHOD, "ace"),
                                                     (mqttraw.AUTH_DATA, len(tok).to_bytes(2, "big") + tok)]))
        c.recv_type(mqttraw.AUTH)
        c.send(auth_packet(0x18, os.urandom(8) + bytes(32)))
        assert c.recv_type(mqttraw.CONNACK).rc == NOT_AUTHORIZED
    with e.tls() as c:
        ack = connect_b(c, ref("revoked"), key, expect=NOT_AUTHORIZED)
        assert hint_of(ack) is not None
    assert tok.decode() in a.seen
    assert tok.decode() not in e.b.log() and "s3cret" not in e.b.log()


def test_as_down(as_env):
    e, _, key = as_env(url="https://localhost:%d/introspect" % free_port(), timeout=5)
    t0 = time.monotonic()
    with e.tls() as c:
        connect_b(c, ref("good"), key, expect=NOT_AUTHORIZED)
    assert time.monotonic() - t0 < 2.0  # refused connection: no wait for the 5 s timeout
    exchange(e)
    assert "ace_introspection" in e.b.log()


def test_slow_as_times_out_while_others_are_served(as_env):
    e, a, key = as_env(timeout=1)
    tok = ref("slow")
    with e.tls() as slow:
        t0 = time.monotonic()
        slow.send(mqttraw.connect(uid("slow"), 5, properties=[
            (mqttraw.AUTH_METHOD, "ace"), (mqttraw.AUTH_DATA, len(tok).to_bytes(2, "big") + tok)]))
        while tok.decode() not in a.seen:  # the broker is waiting for the AS now
            assert time.monotonic() - t0 < 1.0, "the broker did not ask the AS"
            time.sleep(0.01)
        exchange(e)  # the one worker's loop is not blocked by the pending introspection
        during = time.monotonic() - t0
        assert during < 1.0, "second client took %.2fs" % during
        ack = slow.recv_type(mqttraw.CONNACK, 5)
        waited = time.monotonic() - t0
        assert ack.rc == NOT_AUTHORIZED and hint_of(ack) is not None
        assert 0.9 <= waited < SLOW_S - 0.5, "refused after %.2fs" % waited
    exchange(e, "s/after")
    assert "did not answer in time" in e.b.log()
