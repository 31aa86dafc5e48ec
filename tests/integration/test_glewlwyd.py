"""The introspection client against a real OAuth 2.0 server: Debian's glewlwyd over HTTPS.

A device gets an ES256 JWT access token with the client-credentials grant; build/acemq-introspect
(the broker's code) introspects it at glewlwyd's RFC 7662 endpoint with the broker's own client
credentials: active, then inactive once the token is revoked (RFC 7009). The JWT is also verified
offline against the key file the helper writes, which the bearer-mode tests use as `ace_issuer` key.
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile

import pytest

import glewlwyd

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("ACEMQ_BUILD", os.path.join(ROOT, "build"))
TOOL = os.path.join(BUILD, "acemq-introspect")

pytestmark = [
    pytest.mark.skipif(not glewlwyd.available(), reason="glewlwyd not installed (tools/install-deps.sh)"),
    pytest.mark.skipif(not os.access(TOOL, os.X_OK), reason="acemq-introspect not built"),
]


@pytest.fixture(scope="module")
def gw():
    d = tempfile.mkdtemp(prefix="acemq-glewlwyd-")
    g = glewlwyd.Glewlwyd(d, https=True)
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
