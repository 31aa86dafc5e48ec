"""acemq against a real OAuth 2.0 server: Debian's glewlwyd over HTTPS.

A device gets an ES256 JWT access token with the client-credentials grant; build/acemq-introspect
(the broker's code) introspects it at glewlwyd's RFC 7662 endpoint with the broker's own client
credentials: active, then inactive once the token is revoked (RFC 7009). The JWT is also verified
offline against the key file the helper writes.

End to end through acemqd, with paho-mqtt as the client (we did not write either side of the
token): bearer mode (listener `ace_bearer true`, glewlwyd's key as `ace_issuer`, its scope names
mapped by `ace_scope_map`), once with the MQTT 3.1.1 user name form and once with MQTT 5 method
`ace`; and acemqd introspecting glewlwyd's tokens itself (`ace_introspection`), active then revoked.
"""

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import types

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
import pytest

import glewlwyd
from acehelpers import b64u, make_cert
from conftest import IS_MOSQ, free_port, wait_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("ACEMQ_BUILD", os.path.join(ROOT, "build"))
TOOL = os.path.join(BUILD, "acemq-introspect")

pytestmark = [
    pytest.mark.skipif(not glewlwyd.available(), reason="glewlwyd not installed (tools/install-deps.sh)"),
    pytest.mark.skipif(not os.access(TOOL, os.X_OK), reason="acemq-introspect not built"),
]

DEV2 = "mqtt-device-2"
# glewlwyd's scope names -> topic filters (device 1: pub sensors, sub cmds; device 2: the reverse)
SCOPE_MAP = ("ace_scope_map mqtt_pub_sensors sensors/# pub",
             "ace_scope_map mqtt_sub_sensors sensors/# sub",
             "ace_scope_map mqtt_sub_cmds cmds/# sub",
             "ace_scope_map mqtt_pub_cmds cmds/# pub")


@pytest.fixture(scope="module")
def gw():
    d = tempfile.mkdtemp(prefix="acemq-glewlwyd-")
    g = glewlwyd.Glewlwyd(d, https=True, devices={DEV2: ["mqtt_sub_sensors", "mqtt_pub_cmds"]})
    try:
        g.start()
    except Exception:
        shutil.rmtree(d, ignore_errors=True)
        raise
    yield g
    g.stop()
    shutil.rmtree(d, ignore_errors=True)


def introspect(g, token, *extra, secret_file=None):
    args = [TOOL, "--url", g.introspection_url, "--client-id", g.broker_id,
            "--secret-file", secret_file or g.broker_secret_file, "--cafile", g.cafile,
            "--issuer", g.issuer] + list(extra) + [token]
    r = subprocess.run(args, capture_output=True, timeout=30)
    assert "AddressSanitizer" not in r.stderr.decode(), r.stderr.decode()
    out = [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]
    return r.returncode, out


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def test_active_then_revoked(gw):
    tok = gw.token(resource=gw.resource)
    rc, out = introspect(gw, tok, "--audience", gw.resource)
    assert rc == 0, (out, gw.log())
    a = out[0]
    claims = json.loads(b64d(tok.split(".")[1]))
    assert a["status"] == "active"
    assert a["sub"] == gw.device_id                  # client_id: introspection has no sub here
    assert a["iss"] == gw.issuer == claims["iss"]
    assert a["cti"] == claims["jti"]
    assert a["exp"] == claims["exp"] and a["iat"] == claims["iat"]
    assert a["scope"] == "mqtt_pub_sensors mqtt_sub_cmds" and a["scope_kind"] == "text"

    gw.revoke(tok)
    rc, out = introspect(gw, tok, "--cache-ttl", "0")
    assert rc == 1 and out[0]["status"] == "inactive", out


def test_cache_hides_revocation_until_ttl(gw):
    # Documented trade-off: within one broker process a cached active answer stands for up to
    # ace_introspection_cache_ttl seconds. Here: the same process asks, revokes, asks again.
    tok = gw.token()
    rc, out = introspect(gw, tok, "--repeat", "2")
    assert rc == 0 and [o["cached"] for o in out] == [False, True]


def test_wrong_audience(gw):
    tok = gw.token()  # no resource: glewlwyd puts the granted scope string in aud
    rc, out = introspect(gw, tok, "--audience", gw.resource)
    assert rc == 2 and out[0]["code"] == -5


def test_bad_broker_secret(gw, tmp_path):
    bad = tmp_path / "secret"
    bad.write_text("wrong\n")
    rc, out = introspect(gw, gw.token(), secret_file=str(bad))
    assert rc == 2 and out[0]["code"] == -43  # glewlwyd answers 401


def test_unknown_token(gw):
    rc, out = introspect(gw, "not-a-token-glewlwyd-issued")
    assert rc == 1 and out[0]["code"] == -40


def test_key_files_verify_the_jwt(gw):
    """The key written for bearer mode is the one glewlwyd signs with and serves at /jwks."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    with open(gw.jwks_file) as f:
        local = json.load(f)
    served = gw.jwks()
    assert [(k["kid"], k["x"], k["y"]) for k in served["keys"]] == \
        [(k["kid"], k["x"], k["y"]) for k in local["keys"]]
    tok = gw.token(resource=gw.resource)
    head, payload, sig = tok.split(".")
    assert json.loads(b64d(head)) == {"typ": "at+jwt", "alg": "ES256", "kid": "as-es256-1"}
    raw = b64d(sig)
    der = utils.encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    with open(gw.pubkey_pem_file, "rb") as f:
        pub = serialization.load_pem_public_key(f.read())
    pub.verify(der, (head + "." + payload).encode(), ec.ECDSA(hashes.SHA256()))


# ---------------------------------------------------------------------------------------------
# acemqd with glewlwyd's tokens


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="acemq-gw-broker-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def bearer_broker(make_broker1, d, *lines):
    """acemqd with a plain listener and a TLS listener that says ace_bearer true."""
    crt, key = make_cert(d)
    tport = free_port()
    b = make_broker1(*lines, "listener %d 127.0.0.1" % tport, "certfile " + crt, "keyfile " + key,
                     "ace_bearer true")

    def up():
        try:
            socket.create_connection((b.host, tport), timeout=0.5).close()
            return True
        except OSError:
            return not b.alive()
    wait_until(up, what="TLS listener")
    assert b.alive(), b.log()
    b.tls = types.SimpleNamespace(host=b.host, port=tport)
    return b


def paho_bearer(clients, endpoint, version, token, expect_rc=0):
    """paho-mqtt presenting a bearer JWT the two ways docs/ace.md gives: MQTT 3.1.1 user name
    "ace" + base64url(token) with no password, or MQTT 5 method "ace" with [u16 len][token]."""
    if version == 5:
        p = Properties(PacketTypes.CONNECT)
        p.AuthenticationMethod = "ace"
        p.AuthenticationData = len(token).to_bytes(2, "big") + token
        c = clients(endpoint, protocol=5, connect=False, properties=p)
    else:
        c = clients(endpoint, protocol=4, connect=False, username="ace" + b64u(token))
    c.c.tls_set(cert_reqs=ssl.CERT_NONE)
    c.c.tls_insecure_set(True)
    c.connect(expect_rc)
    return c


def rc_of(x):
    return getattr(x, "value", x)


@pytest.mark.skipif(IS_MOSQ, reason="ACE is acemq's")
@pytest.mark.parametrize("keyfile", ["jwks", "pem"])
def test_bearer_jwt_from_glewlwyd(gw, make_broker1, clients, workdir, keyfile):
    kf = gw.jwks_file if keyfile == "jwks" else gw.pubkey_pem_file
    b = bearer_broker(make_broker1, workdir, "ace_audience " + gw.resource,
                      "ace_issuer %s %s" % (gw.issuer, kf), *SCOPE_MAP)
    t1 = gw.token(resource=gw.resource).encode()              # mqtt_pub_sensors mqtt_sub_cmds
    t2 = gw.token(resource=gw.resource, client=DEV2).encode()  # mqtt_sub_sensors mqtt_pub_cmds
    dev1 = paho_bearer(clients, b.tls, 4, t1)
    dev2 = paho_bearer(clients, b.tls, 5, t2)
    assert dev2.connack_props.AuthenticationMethod == "ace"
    assert dev1.subscribe("cmds/#", 1) == [1]
    assert dev2.subscribe("sensors/#", 1) == [1]
    assert dev1.subscribe("sensors/#", 1) == [0x80]  # 3.1.1 failure code
    assert dev2.subscribe("cmds/#", 1) == [0x87]
    dev1.publish("sensors/dev1/temp", b"21.5", qos=1)
    m = dev2.get()
    assert (m.topic, m.payload) == ("sensors/dev1/temp", b"21.5")
    dev2.publish("cmds/dev1", b"on", qos=1)
    assert dev1.get().payload == b"on"
    # Outside the mapped scope: MQTT 5 QoS 0 -> DISCONNECT 0x87; 3.1.1 cannot be told -> closed.
    dev2.c.publish("sensors/dev2", b"no", 0)
    assert dev2.disconnected.wait(5) and rc_of(dev2.disconnect_rc) == 0x87
    dev1.c.publish("cmds/x", b"no", 1)
    assert dev1.disconnected.wait(5)
    dev2.no_message(0.3)
    # Without `resource` glewlwyd's aud is the scope string: not this broker's audience.
    paho_bearer(clients, b.tls, 5, gw.token().encode(), expect_rc=0x87)
    paho_bearer(clients, b.tls, 4, gw.token().encode(), expect_rc=5)
    # The plain listener does not say ace_bearer: a token without cnf is refused there.
    plain = clients(b, protocol=5, connect=False, properties=dev2.properties)
    plain.connect(0x87)
    assert "eyJ" not in b.log()  # never a token in the log


@pytest.mark.skipif(IS_MOSQ, reason="ACE is acemq's")
def test_broker_introspects_at_glewlwyd(gw, make_broker1, clients, workdir):
    # No ace_issuer for glewlwyd: the broker cannot verify its JWTs and asks its RFC 7662 endpoint.
    b = bearer_broker(make_broker1, workdir, "ace_audience " + gw.resource,
                      "ace_introspection %s %s %s" % (gw.introspection_url, gw.broker_id,
                                                      gw.broker_secret_file),
                      "ace_introspection_cafile " + gw.cafile,
                      "ace_introspection_cache_ttl 0", *SCOPE_MAP)
    tok = gw.token(resource=gw.resource).encode()
    c = paho_bearer(clients, b.tls, 5, tok)
    assert c.subscribe("cmds/#", 1) == [1]
    assert c.subscribe("sensors/#", 1) == [0x87]
    c.disconnect()
    c3 = paho_bearer(clients, b.tls, 4, tok)
    c3.disconnect()
    gw.revoke(tok)
    paho_bearer(clients, b.tls, 5, tok, expect_rc=0x87)
    paho_bearer(clients, b.tls, 4, tok, expect_rc=5)
    log = b.log()
    assert "token is not active" in log, log[-2000:]
    assert gw.broker_secret not in log and "eyJ" not in log
