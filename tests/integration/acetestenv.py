"""What the ACE test modules share beyond acehelpers.py: the client's side of the CONNECT forms
and of re-authentication against an ace_env broker (conftest.py), a local RFC 7662 introspection
endpoint, password_file lines, and a tmp_path fixture of our own for the modules that import it.
"""

import base64
import hashlib
import http.server
import json
import os
import pathlib
import shutil
import tempfile
import threading
from urllib.parse import parse_qs

import pytest

import mqttraw
from acehelpers import ace_props, auth_data, auth_packet
from conftest import uid


@pytest.fixture
def tmp_path():
    """Our own directory: pytest's shared basetemp is pruned by concurrent pytest runs."""
    d = tempfile.mkdtemp(prefix="acemq-ace-")
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def connect_a(c, token, key, cid=None, zero_ctx=True, expect=0, will=None, pop=None):
    """CONNECT Form A: token + PoP over the TLS exporter value."""
    pop = pop if pop is not None else key.pop(c.exporter(zero_ctx))
    return c.connect(cid or uid("a"), properties=ace_props(auth_data(token, pop)),
                     expect_rc=expect, will=will)


def connect_b(c, token, key, cid=None, expect=0):
    """CONNECT Form B: token only, then the AUTH 0x18 nonce exchange."""
    c.send(mqttraw.connect(cid or uid("b"), 5, properties=ace_props(auth_data(token))))
    p = c.recv(5)
    if p.type == mqttraw.CONNACK:
        assert p.rc == expect, p
        return p
    assert p.type == mqttraw.AUTH and p.rc == 0x18, p
    nonce = p.prop(mqttraw.AUTH_DATA)
    assert len(nonce) == 8
    cn = os.urandom(8)
    c.send(auth_packet(0x18, cn + key.pop(nonce + cn)))
    ack = c.recv_type(mqttraw.CONNACK)
    assert ack.rc == expect, ack
    return ack


def reauth(c, token, key, good_pop=True):
    """AUTH 0x19 with a new token, then the nonce exchange; returns the broker's answer."""
    c.send(auth_packet(0x19, auth_data(token)))
    p = c.recv_type(mqttraw.AUTH)
    assert p.rc == 0x18, p
    nonce = p.prop(mqttraw.AUTH_DATA)
    cn = os.urandom(8)
    pop = key.pop(nonce + cn) if good_pop else bytes(32)
    c.send(auth_packet(0x18, cn + pop))
    return c.recv(5)


def hint_of(ack):
    """The AS hint (a dict) of a CONNACK, or None."""
    for name, value in ack.props_all(mqttraw.USER_PROPERTY):
        if name == "ace_as_hint":
            return json.loads(value)
    return None


def pw_line(user, password):
    """A password_file line: PBKDF2-SHA512, 101 rounds, in the `$7$` form."""
    salt = os.urandom(12)
    h = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101, 64)
    return "%s:$7$101$%s$%s" % (user, base64.b64encode(salt).decode(), base64.b64encode(h).decode())


class IntrospectionAS:
    """A local RFC 7662 introspection endpoint over plain HTTP: token -> JSON answer (none =
    inactive). requests holds (Authorization header, token) of each request."""

    def __init__(self, answers):
        outer = self
        self.answers = answers
        self.requests = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                tok = parse_qs(body)["token"][0]
                outer.requests.append((self.headers.get("Authorization"), tok))
                ans = outer.answers.get(tok) or {"active": False}
                data = json.dumps(ans).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
