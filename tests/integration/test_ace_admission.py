"""ACE admission rules that hold state across connections: the cnonce the broker hands out in its AS
hints (RFC 9200 §5.3, ace-profile.md §3) and the exi sequence-number rule (RFC 9200 §5.10.3).

Both must give the same answer whether the token's signature check came from the broker's
verified-token cache or not: each case here presents tokens the broker has already verified and
cached, next to ones it has never seen. Tokens are minted with acehelpers (python3-cbor2 and
python3-cryptography), not with acemq's code.
"""

import os
import re
import time

import pytest

import mqttraw
from acehelpers import (AS_URI, AUD, NOT_AUTHORIZED, SCOPE, PopKey, ace_props, auth_data,
                        auth_packet, b64u_decode, claims, exi_cti, psk_identity)
from acetestenv import connect_a, connect_b, hint_of, reauth
from acetestenv import tmp_path  # noqa: F401 (our own tmp_path fixture)
from conftest import IS_MOSQ, uid

pytestmark = pytest.mark.skipif(IS_MOSQ, reason="ACE is acemq's")


def fresh_hint(e):
    """CONNECT with method ace and no token: CONNACK 0x87 and the AS hint."""
    with e.tls() as c:
        h = hint_of(c.connect(uid("hint"), properties=ace_props(), expect_rc=NOT_AUTHORIZED))
        c.wait_closed()
    return h


# ---------------------------------------------------------------------------------------------
# cnonce


def test_hint_carries_fresh_cnonce(ace_env):
    e = ace_env(global_lines=("ace_cnonce true",))
    hints = [fresh_hint(e) for _ in range(3)]
    for h in hints:
        assert h["AS"] == AS_URI and h["audience"] == AUD
        assert re.fullmatch(r"[A-Za-z0-9_-]+", h["cnonce"]), h  # base64url, no padding
        assert len(b64u_decode(h["cnonce"])) >= 8
    assert len({h["cnonce"] for h in hints}) == 3
    # without ace_cnonce the hint has none
    e2 = ace_env()
    assert "cnonce" not in fresh_hint(e2)


def test_token_must_bring_back_an_issued_cnonce_once(ace_env):
    e = ace_env(global_lines=("ace_cnonce true",))
    key = PopKey("sym")
    with e.tls() as c:  # no cnonce in the token: refused, and the refusal carries a new hint
        ack = connect_a(c, e.token(SCOPE, key), key, expect=NOT_AUTHORIZED)
        assert "cnonce" in hint_of(ack)
    with e.tls() as c:  # a cnonce the broker never issued
        connect_a(c, e.token(SCOPE, key, cnonce=os.urandom(16)), key, expect=NOT_AUTHORIZED)
    cn = b64u_decode(fresh_hint(e)["cnonce"])
    with e.tls() as c:  # a near miss: one bit off
        bad = bytes([cn[0] ^ 1]) + cn[1:]
        connect_a(c, e.token(SCOPE, key, cnonce=bad), key, expect=NOT_AUTHORIZED)
    good = e.token(SCOPE, key, cnonce=cn)
    with e.tls() as c:  # the issued one: accepted (the near miss did not use it up)
        connect_a(c, good, key)
        c.publish("s/x", b"x", qos=1, pid=1)
        assert c.recv_type(mqttraw.PUBACK).rc in (0, 0x10)
    with e.tls() as c:  # another token with the same cnonce: it was used
        connect_a(c, e.token(SCOPE, key, cnonce=cn, exp_in=200), key, expect=NOT_AUTHORIZED)
    with e.tls() as c:  # the same token again (now a cache hit): the cnonce is still used
        connect_a(c, good, key, expect=NOT_AUTHORIZED)
    cn2 = b64u_decode(fresh_hint(e)["cnonce"])
    with e.tls() as c:  # Form B (challenge/response) follows the same rule
        connect_b(c, e.token(SCOPE, key, cnonce=cn2), key)
    assert "ace_token_refused" in e.b.log() and "cnonce" in e.b.log()


def test_cnonce_on_reauth_and_authz_info(ace_env):
    e = ace_env(global_lines=("ace_cnonce true",))
    key = PopKey("sym", kid=b"cn-dev")
    with e.tls() as c:
        connect_b(c, e.token(SCOPE, key, cnonce=b64u_decode(fresh_hint(e)["cnonce"])), key)
        c.send(auth_packet(0x19, auth_data(e.token(SCOPE, key, exp_in=100))))  # no cnonce
        p = c.recv(5)
        assert p.type == mqttraw.DISCONNECT and p.rc == NOT_AUTHORIZED, p
    with e.tls() as c:
        connect_b(c, e.token(SCOPE, key, cnonce=b64u_decode(fresh_hint(e)["cnonce"])), key)
        cn = b64u_decode(fresh_hint(e)["cnonce"])
        p = reauth(c, e.token(SCOPE, key, exp_in=100, cnonce=cn), key)
        assert p.type == mqttraw.AUTH and p.rc == 0, p
    with e.b.raw() as c:
        c.connect(uid("up"))
        c.publish("authz-info", e.token(SCOPE, key), qos=1, pid=1)
        assert c.recv_type(mqttraw.PUBACK).rc == NOT_AUTHORIZED
        cn = b64u_decode(fresh_hint(e)["cnonce"])
        c.publish("authz-info", e.token(SCOPE, key, cnonce=cn), qos=1, pid=2)
        assert c.recv_type(mqttraw.PUBACK).rc == 0


# ---------------------------------------------------------------------------------------------
# exi


def exi_token(e, key, seq, exi=60, scope=SCOPE):
    return e.iss.cwt(claims(scope, key, exp_in=None, exi=exi, cti=exi_cti(seq)))


@pytest.mark.parametrize("kind", ["sym", "p256"])  # cached check on the loop / in the thread pool
def test_exi_sequence_rule_holds_on_cache_hits(ace_env, kind):
    e = ace_env()
    key = PopKey(kind)
    t5, t6 = exi_token(e, key, 5), exi_token(e, key, 6)
    with e.tls() as c:
        connect_a(c, t5, key)
    with e.tls() as c:  # the same token reconnecting inside its window: still the highest
        connect_a(c, t5, key)
    with e.tls() as c:
        connect_a(c, t6, key)
    with e.tls() as c:  # seq 5 is below 6 now; its signature check is cached, the rule still holds
        connect_a(c, t5, key, expect=NOT_AUTHORIZED)
    with e.tls() as c:  # Form B, same answer
        connect_b(c, t5, key, expect=NOT_AUTHORIZED)
    with e.tls() as c:  # another token with the same number 6 (never seen, so not cached)
        connect_a(c, exi_token(e, key, 6, scope=[["o/#", ["pub"]]]), key, expect=NOT_AUTHORIZED)
    with e.tls() as c:  # a lower number never seen before
        connect_a(c, exi_token(e, key, 4), key, expect=NOT_AUTHORIZED)
    with e.tls() as c:  # the highest one still works
        connect_a(c, t6, key)
    with e.tls() as c:
        connect_a(c, exi_token(e, key, 7), key)
    assert "already seen (exi)" in e.b.log()


def test_exi_window_starts_when_first_seen(ace_env):
    """A reconnect inside the window keeps the first deadline (a cache hit must not restart it),
    and after the window the token is refused."""
    e = ace_env()
    key = PopKey("sym")
    tok = exi_token(e, key, 100, exi=3)
    t0 = time.monotonic()
    with e.tls() as c:
        connect_a(c, tok, key)
    time.sleep(1.5)
    with e.tls() as c:
        connect_a(c, tok, key)
        got = c.wait_closed(6)
        waited = time.monotonic() - t0
        assert got and got[-1].type == mqttraw.DISCONNECT and got[-1].rc == NOT_AUTHORIZED
        assert waited < 4.2, "deadline restarted at the reconnect: %.1fs" % waited
    with e.tls() as c:
        connect_a(c, tok, key, expect=NOT_AUTHORIZED)


def test_exi_window_of_an_uploaded_token_starts_at_upload(ace_env):
    """A token uploaded to authz-info with exi: every TLS-PSK connection gets what is left of the
    window that started at the upload (not a fresh one each), and none after it."""
    e = ace_env()
    key = PopKey("sym", kid=b"exi-dev")
    with e.b.raw() as c:
        c.connect(uid("up"))
        t0 = time.monotonic()
        c.publish("authz-info", exi_token(e, key, 200, exi=3, scope=[["d/#", ["pub", "sub"]]]),
                  qos=1, pid=1)
        assert c.recv_type(mqttraw.PUBACK).rc == 0
    time.sleep(1.5)
    with e.tls(psk=(psk_identity(key.kid), key.k)) as c:
        c.connect(uid("psk"))  # authorized by the stored token, until upload + 3 s
        got = c.wait_closed(6)
        waited = time.monotonic() - t0
        assert got and got[-1].type == mqttraw.DISCONNECT and got[-1].rc == NOT_AUTHORIZED
        assert waited < 4.2, "window restarted at the PSK connection: %.1fs" % waited
    with pytest.raises(Exception):  # the window is over: the identity names no usable token
        e.tls(psk=(psk_identity(key.kid), key.k)).connect(uid())
