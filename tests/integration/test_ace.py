"""ACE (RFC 9431) end to end: tokens minted here (acehelpers.py, not acemq's code), PoP over a real TLS
exporter (pyOpenSSL), the AUTH challenge/response with paho-mqtt and with raw packets, every row of the
response table of ace-profile.md §3, expiry, re-authentication, authz-info + TLS-PSK, the 3.1.1 form,
password/ACL files and bearer mode.
"""

import os
import signal
import ssl
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
import pytest

import mqttraw
from acehelpers import (AS_URI, AUD, NOT_AUTHORIZED, SCOPE, Issuer, PopKey, ace_props, auth_data,
                        auth_packet, b64u, claims, psk_identity)
from acetestenv import IntrospectionAS, connect_a, connect_b, hint_of, pw_line, reauth
from acetestenv import tmp_path  # noqa: F401 (our own tmp_path fixture)
from conftest import IS_MOSQ, uid, wait_until

pytestmark = pytest.mark.skipif(IS_MOSQ, reason="ACE is acemq's")


# ---------------------------------------------------------------------------------------------
# CONNECT


def test_form_a_exporter_pop_both_context_variants(ace_env):
    e = ace_env()
    key = PopKey("sym")
    tok = e.token(SCOPE, key)
    for zero_ctx in (True, False):
        with e.tls() as c:
            ack = connect_a(c, tok, key, zero_ctx=zero_ctx)
            assert ack.prop(mqttraw.AUTH_METHOD) == "ace"  # decision 7
            assert c.subscribe([("s/+", 1)]).codes == [1]
            c.publish("s/x", b"hi", qos=1, pid=3)
            got = {p.type: p for p in (c.recv(), c.recv())}
            assert got[mqttraw.PUBACK].rc == 0 and got[mqttraw.PUBLISH].payload == b"hi"


def test_form_a_ec2_pop_key_in_thread_pool(ace_env):
    e = ace_env()
    key = PopKey("p256")
    tok = e.token(SCOPE, key)
    for _ in range(2):  # the second connection hits the verified-token cache
        with e.tls() as c:
            connect_a(c, tok, key)


def test_exporter_pop_only_over_tls(ace_env):
    e = ace_env()
    key = PopKey("sym")
    with e.b.raw() as c:
        ack = c.connect(uid(), properties=ace_props(auth_data(e.token(SCOPE, key), bytes(32))),
                        expect_rc=NOT_AUTHORIZED)
        assert hint_of(ack)["AS"] == AS_URI


def test_missing_token_gets_as_hint(ace_env):
    e = ace_env()
    with e.tls() as c:
        ack = c.connect(uid(), properties=ace_props(), expect_rc=NOT_AUTHORIZED)
        assert hint_of(ack) == {"AS": AS_URI, "audience": AUD}
        c.wait_closed()


def test_other_method_0x8c(ace_env):
    e = ace_env()
    with e.tls() as c:
        c.connect(uid(), properties=[(mqttraw.AUTH_METHOD, "SCRAM-SHA-1")], expect_rc=0x8C)


def test_invalid_tokens_refused(ace_env, tmp_path):
    e = ace_env()
    key = PopKey("sym")
    other = Issuer(str(tmp_path), "as1-other")
    other.name = "as1"
    cases = {
        "bad signature": other.cwt(claims(SCOPE, key)),
        "wrong audience": e.token(SCOPE, key, aud="someone-else"),
        "expired": e.token(SCOPE, key, exp_in=-10),
        "not yet valid": e.token(SCOPE, key, nbf_in=120),
        "garbage": b"\xa1\x01\x02not a token",
    }
    for what, tok in cases.items():
        for form in ("A", "B"):
            with e.tls() as c:
                if form == "A":
                    ack = connect_a(c, tok, key, expect=NOT_AUTHORIZED)
                else:
                    ack = connect_b(c, tok, key, expect=NOT_AUTHORIZED)
                assert hint_of(ack) is not None, what
    good = e.token(SCOPE, key)
    with e.tls() as c:  # bad PoP, Form A
        connect_a(c, good, key, pop=bytes(32), expect=NOT_AUTHORIZED)
    with e.tls() as c:  # bad PoP, Form B
        c.send(mqttraw.connect(uid(), 5, properties=ace_props(auth_data(good))))
        p = c.recv_type(mqttraw.AUTH)
        c.send(auth_packet(0x18, os.urandom(8) + bytes(32)))
        assert c.recv_type(mqttraw.CONNACK).rc == NOT_AUTHORIZED
    with e.tls() as c:  # PoP by another key
        connect_a(c, good, PopKey("sym"), expect=NOT_AUTHORIZED)
    assert e.b.alive()


def test_will_topic_needs_pub(ace_env):
    e = ace_env()
    key = PopKey("sym")
    tok = e.token([["s/#", ["pub"]], ["w/#", ["sub"]]], key)
    with e.tls() as c:
        connect_a(c, tok, key, will={"topic": "w/x", "payload": b"bye"}, expect=NOT_AUTHORIZED)
    with e.tls() as c:
        connect_a(c, tok, key, will={"topic": "s/x", "payload": b"bye"})


# ---------------------------------------------------------------------------------------------
# PUBLISH, SUBSCRIBE, forwarding


def test_publish_outside_scope(ace_env):
    e = ace_env()
    key = PopKey("sym")
    tok = e.token([["s/#", ["pub"]]], key)
    with e.tls() as c:
        connect_a(c, tok, key)
        c.publish("other", b"x", qos=1, pid=1)
        assert c.recv_type(mqttraw.PUBACK).rc == NOT_AUTHORIZED
        c.publish("other", b"x", qos=2, pid=2)
        assert c.recv_type(mqttraw.PUBREC).rc == NOT_AUTHORIZED
        c.publish("s/ok", b"x", qos=1, pid=3)
        assert c.recv_type(mqttraw.PUBACK).rc in (0, 0x10)
        c.publish("other", b"x", qos=0)
        got = c.wait_closed()
        assert got and got[-1].type == mqttraw.DISCONNECT and got[-1].rc == NOT_AUTHORIZED


def test_subscribe_filters_inside_and_outside_grant(ace_env):
    e = ace_env()
    key = PopKey("sym")
    tok = e.token([["s/#", ["sub"]], ["p/+/t", ["sub"]], ["q", ["pub"]]], key)
    with e.tls() as c:
        connect_a(c, tok, key)
        filters = [("s/a", 0), ("s/#", 0), ("s/+/b", 0), ("p/x/t", 0), ("p/+/t", 0),
                   ("p/#", 0), ("#", 0), ("+/a", 0), ("q", 0), ("authz-info", 0),
                   ("$share/g/s/#", 0), ("public/x", 0)]
        codes = c.subscribe(filters).codes
        assert codes == [0, 0, 0, 0, 0, 0x87, 0x87, 0x87, 0x87, 0x87, 0, 0]


def test_forward_checks_subscriber_and_anonymous_public(ace_env):
    e = ace_env(workers=2)
    key = PopKey("sym")
    with e.tls() as pub, e.b.raw() as anon:
        connect_a(pub, e.token([["#", ["pub"]]], key), key)
        anon.connect(uid("anon"))
        assert anon.subscribe([("public/#", 0), ("s/#", 0)]).codes == [0, 0x87]
        pub.publish("public/1", b"p", qos=1, pid=1)
        pub.recv_type(mqttraw.PUBACK)
        assert anon.recv_type(mqttraw.PUBLISH).payload == b"p"
        anon.publish("s/x", b"nope", qos=1, pid=5)
        assert anon.recv_type(mqttraw.PUBACK).rc == NOT_AUTHORIZED


def test_expiry_disconnects_subscriber_and_stops_delivery(ace_env):
    e = ace_env(workers=2)
    ks, kp = PopKey("sym"), PopKey("sym")
    with e.tls() as sub, e.tls() as pub:
        connect_a(sub, e.token(SCOPE, ks, exp_in=2), ks)
        connect_a(pub, e.token(SCOPE, kp, exp_in=60), kp)
        assert sub.subscribe([("s/#", 1)]).codes == [1]
        pub.publish("s/1", b"before", qos=1, pid=1)
        pub.recv_type(mqttraw.PUBACK)
        assert sub.recv_type(mqttraw.PUBLISH).payload == b"before"
        t0 = time.time()
        got = sub.wait_closed(6)
        assert time.time() - t0 < 4.5
        assert [p.type for p in got] == [mqttraw.DISCONNECT] and got[0].rc == NOT_AUTHORIZED
        pub.publish("s/1", b"after", qos=1, pid=2)
        assert pub.recv_type(mqttraw.PUBACK).rc in (0, 0x10)


def connect_durable(c, token, key, cid):
    """Form A with a session that outlives the connection; returns the CONNACK."""
    props = ace_props(auth_data(token, key.pop(c.exporter(True)))) + [(mqttraw.SESSION_EXPIRY, 300)]
    return c.connect(cid, clean=False, properties=props)


def test_offline_deliveries_stop_at_token_deadline(ace_env):
    """Forwards to an offline session are checked against its token's deadline, to the second: a
    message published before it is kept for the session, one published after it is not."""
    e = ace_env(workers=2)
    ks, kp = PopKey("sym"), PopKey("sym")
    cid = uid("offline")
    t0 = time.time()
    tok = e.token(SCOPE, ks, exp_in=5)  # exp = int(time of minting) + 5: 4 s from t0 at least
    with e.tls() as sub:
        connect_durable(sub, tok, ks, cid)
        assert sub.subscribe([("s/#", 1)]).codes == [1]
        sub.send(mqttraw.disconnect())
        sub.wait_closed()
    with e.tls() as pub:
        connect_a(pub, e.token(SCOPE, kp), kp)
        pub.publish("s/1", b"before", qos=1, pid=1)
        assert pub.recv_type(mqttraw.PUBACK).rc == 0
        assert time.time() < int(t0) + 4  # still before the deadline (slack for slow handshakes)
        time.sleep(max(0.0, int(t0) + 6.1 - time.time()))  # past it, whatever second t0 was in
        pub.publish("s/2", b"after", qos=1, pid=2)
        assert pub.recv_type(mqttraw.PUBACK).rc == 0x10  # the one subscriber may not receive it
    with e.tls() as sub:
        assert connect_durable(sub, e.token(SCOPE, ks, exp_in=60), ks, cid).session_present
        p = sub.recv_type(mqttraw.PUBLISH)
        assert p.payload == b"before"
        sub.send(mqttraw.puback(p.pid))
        sub.recv_nothing(0.5)


def test_queued_for_a_restored_session_meets_the_token_it_comes_back_with(ace_env, tmp_path):
    """A restart loses the tokens of durable sessions (tokens are not stored). What was queued for
    such a session before the restart, and what is queued for it after, goes out only where the
    token it reconnects with allows: the rest is dropped and counted, never delivered."""
    store = ("persistence true", "persistence_location " + str(tmp_path / "store"),
             "fsync always")
    e = ace_env(global_lines=store, workers=2)
    ks, kp = PopKey("sym"), PopKey("sym")
    cid = uid("restored")

    def publish(env, topics):
        with env.tls() as pub:
            connect_a(pub, env.token(SCOPE, kp), kp)
            for i, t in enumerate(topics):
                pub.publish(t, t.encode(), qos=1, pid=1 + i)
                assert pub.recv_type(mqttraw.PUBACK).rc == 0

    with e.tls() as sub:
        connect_durable(sub, e.token(SCOPE, ks), ks, cid)
        assert sub.subscribe([("s/#", 1)]).codes == [1]
        sub.send(mqttraw.disconnect())
        sub.wait_closed()
    publish(e, ("s/a/1", "s/b/1"))
    e.b.proc.send_signal(signal.SIGTERM)
    assert e.b.proc.wait(10) == 0
    e.b.stopped_by_test = True
    e = ace_env(global_lines=store, workers=2, issuer=e.iss)
    publish(e, ("s/a/2", "s/b/2"))
    with e.tls() as sub:
        ack = connect_durable(sub, e.token([["s/a/#", ["sub"]]], ks), ks, cid)
        assert ack.session_present
        got = []
        for _ in range(2):
            p = sub.recv_type(mqttraw.PUBLISH)
            got.append(p.payload)
            sub.send(mqttraw.puback(p.pid))
        assert got == [b"s/a/1", b"s/a/2"]
        sub.recv_nothing(0.5)
    wait_until(lambda: "not authorized for the subscriber" in e.b.log(), what="the drop logged")


def test_reauth_narrowing_scope_stops_forwarding(ace_env):
    """Re-authentication replaces the grant the forwarding checks read (the connection's own, on
    its worker): topics the new token no longer covers stop at once, even those already queued,
    and those it still covers keep flowing."""
    e = ace_env(workers=2)
    ks, kp = PopKey("sym"), PopKey("sym")
    with e.tls() as sub, e.tls() as pub:
        connect_b(sub, e.token([["s/#", ["sub"]]], ks), ks)
        connect_a(pub, e.token(SCOPE, kp), kp)
        assert sub.subscribe([("s/#", 1)]).codes == [1]
        for i, t in enumerate(("s/a", "s/b")):
            pub.publish(t, t.encode(), qos=1, pid=1 + i)
            pub.recv_type(mqttraw.PUBACK)
            p = sub.recv_type(mqttraw.PUBLISH)
            assert p.payload == t.encode()
            sub.send(mqttraw.puback(p.pid))
        p = reauth(sub, e.token([["s/a", ["sub"]]], ks), ks)
        assert p.type == mqttraw.AUTH and p.rc == 0
        for i in range(3):  # the same topics again, answered from the new grant only
            for t in ("s/b", "s/a"):
                pub.publish(t, t.encode(), qos=1, pid=10 + i)
                pub.recv_type(mqttraw.PUBACK)
            p = sub.recv_type(mqttraw.PUBLISH)
            assert p.payload == b"s/a"
            sub.send(mqttraw.puback(p.pid))
        sub.recv_nothing(0.3)


def test_acl_patterns_on_publish_and_forwarding(ace_env, tmp_path):
    """%c and %u patterns of an acl_file, on PUBLISH and on forwarding."""
    pwf, aclf = tmp_path / "passwd", tmp_path / "acl"
    pwf.write_text(pw_line("alice", "wonder") + "\n" + pw_line("bob", "builder") + "\n")
    aclf.write_text("pattern readwrite c/%c/#\npattern read u/%u/#\nuser bob\ntopic write u/#\n")
    e = ace_env(global_lines=("password_file %s" % pwf, "acl_file %s" % aclf), workers=2)
    cid = uid("pat")
    with e.b.raw() as a, e.b.raw() as b:
        a.connect(cid, username="alice", password=b"wonder")
        b.connect(uid("bob"), username="bob", password=b"builder")
        assert a.subscribe([("u/alice/#", 1), ("u/bob/#", 1), ("c/%s/#" % cid, 1)]).codes == \
            [1, NOT_AUTHORIZED, 1]
        a.publish("c/%s/x" % cid, b"own", qos=1, pid=1)
        got = {p.type: p for p in (a.recv(), a.recv())}
        assert got[mqttraw.PUBACK].rc == 0 and got[mqttraw.PUBLISH].payload == b"own"
        a.send(mqttraw.puback(got[mqttraw.PUBLISH].pid))
        a.publish("c/other/x", b"x", qos=1, pid=2)
        assert a.recv_type(mqttraw.PUBACK).rc == NOT_AUTHORIZED
        b.publish("u/alice/1", b"for alice", qos=1, pid=3)
        assert b.recv_type(mqttraw.PUBACK).rc == 0
        assert a.recv_type(mqttraw.PUBLISH).payload == b"for alice"


def test_retained_message_ends_with_publisher_token_and_will_survives(ace_env):
    e = ace_env()
    kp, kw, ks = PopKey("sym"), PopKey("sym"), PopKey("sym")
    with e.tls() as pub:
        connect_a(pub, e.token(SCOPE, kp, exp_in=2), kp)
        pub.publish("s/ret", b"kept", qos=1, pid=1, retain=True)
        pub.recv_type(mqttraw.PUBACK)
        with e.tls() as w, e.tls() as watcher:
            connect_a(watcher, e.token(SCOPE, ks, exp_in=60), ks)
            assert watcher.subscribe([("s/will", 0)]).codes == [0]
            connect_a(w, e.token(SCOPE, kw, exp_in=2), kw,
                      will={"topic": "s/will", "payload": b"gone"})
            with e.tls() as early:
                connect_a(early, e.token(SCOPE, ks, exp_in=60), ks)
                early.send(mqttraw.subscribe(1, [("s/ret", 0)]))
                early.recv_type(mqttraw.SUBACK)
                assert early.recv_type(mqttraw.PUBLISH).payload == b"kept"
            w.wait_closed(5)  # expiry closes it; the will accepted at CONNECT still goes out
            assert watcher.recv_type(mqttraw.PUBLISH, 5).payload == b"gone"
    time.sleep(0.3)
    with e.tls() as late:
        connect_a(late, e.token(SCOPE, ks, exp_in=60), ks)
        late.send(mqttraw.subscribe(1, [("s/ret", 0)]))
        late.recv_type(mqttraw.SUBACK)
        late.recv_nothing(0.5)


# ---------------------------------------------------------------------------------------------
# Re-authentication


def test_reauth_extends_past_first_expiry(ace_env):
    e = ace_env()
    key = PopKey("sym")
    with e.tls() as c:
        connect_b(c, e.token(SCOPE, key, exp_in=2), key)
        p = reauth(c, e.token([["s/#", ["pub", "sub"]], ["n/#", ["pub"]]], key, exp_in=60), key)
        assert p.type == mqttraw.AUTH and p.rc == 0 and p.prop(mqttraw.AUTH_METHOD) == "ace"
        time.sleep(3)
        c.send(mqttraw.pingreq())
        assert c.recv_type(mqttraw.PINGRESP).type == mqttraw.PINGRESP
        c.publish("n/new", b"x", qos=1, pid=9)  # the new token's scope applies
        assert c.recv_type(mqttraw.PUBACK).rc in (0, 0x10)


def test_reauth_bad_pop_disconnects(ace_env):
    e = ace_env()
    key = PopKey("sym")
    with e.tls() as c:
        connect_a(c, e.token(SCOPE, key), key)
        p = reauth(c, e.token(SCOPE, key), key, good_pop=False)
        assert p.type == mqttraw.DISCONNECT and p.rc == NOT_AUTHORIZED


class AcePaho(mqtt.Client):
    """paho-mqtt 1.6.1 has no AUTH packet support: this adds the RFC 9431 challenge/response."""

    def __init__(self, key, **kw):
        super().__init__(protocol=mqtt.MQTTv5, **kw)
        self.ace_key = key

    def _packet_handle(self):
        if self._in_packet["command"] & 0xF0 != mqtt.AUTH:
            return super()._packet_handle()
        pkt = self._in_packet["packet"]
        props = Properties(PacketTypes.AUTH)
        props.unpack(pkt[1:])
        nonce = props.AuthenticationData
        cn = os.urandom(8)
        out = Properties(PacketTypes.AUTH)
        out.AuthenticationMethod = "ace"
        out.AuthenticationData = cn + self.ace_key.pop(nonce + cn)
        body = bytes([0x18]) + out.pack()
        packet = bytearray([mqtt.AUTH])
        self._pack_remaining_length(packet, len(body))
        packet += body
        return self._packet_queue(mqtt.AUTH, packet, 0, 0)


def test_paho_challenge_response(ace_env):
    e = ace_env()
    key = PopKey("sym")
    c = AcePaho(key, client_id=uid("paho"))
    c.tls_set(cert_reqs=ssl.CERT_NONE)
    c.tls_insecure_set(True)
    got, connected = [], threading.Event()
    c.on_connect = lambda cl, u, f, rc, p=None: (got.append(rc), connected.set())
    msgs = []
    c.on_message = lambda cl, u, m: msgs.append(m.payload)
    p = Properties(PacketTypes.CONNECT)
    p.AuthenticationMethod = "ace"
    p.AuthenticationData = auth_data(e.token(SCOPE, key), b"")
    c.connect(e.b.host, e.b.tls_port, properties=p)
    c.loop_start()
    try:
        assert connected.wait(5)
        assert got[0] == 0
        c.subscribe("s/#", 1)
        time.sleep(0.2)
        c.publish("s/paho", b"via paho", 1).wait_for_publish(5)
        wait_until(lambda: msgs, what="message")
        assert msgs == [b"via paho"]
    finally:
        c.disconnect()
        c.loop_stop()


# ---------------------------------------------------------------------------------------------
# authz-info and TLS-PSK, MQTT 3.1.1, password/ACL files, bearer


def test_authz_info_upload_then_psk_connection(ace_env):
    e = ace_env()
    key = PopKey("sym", kid=b"dev-1")
    tok = e.token([["d/#", ["pub", "sub"]]], key)
    with e.b.raw() as c:
        c.connect(uid("up"))
        assert c.subscribe([("authz-info", 0)]).codes == [NOT_AUTHORIZED]
        c.publish("authz-info", b"\xff\x00junk", qos=1, pid=1)
        assert c.recv_type(mqttraw.PUBACK).rc == 0x99
        c.publish("authz-info", e.token(SCOPE, key, aud="other"), qos=2, pid=2)
        assert c.recv_type(mqttraw.PUBREC).rc == NOT_AUTHORIZED
        c.publish("authz-info", tok, qos=1, pid=3)
        assert c.recv_type(mqttraw.PUBACK).rc == 0
        c.publish("authz-info", b"junk", qos=0)
        got = c.wait_closed()
        assert got[-1].type == mqttraw.DISCONNECT and got[-1].rc == 0x99
    for ident in (psk_identity(key.kid), key.kid):  # RFC 9202 form, and the raw kid
        with e.tls(psk=(ident, key.k)) as c:
            c.connect(uid("psk"))  # MQTT:none, authorized by the stored token
            assert c.subscribe([("d/#", 0), ("s/#", 0)]).codes == [0, NOT_AUTHORIZED]
            c.publish("d/1", b"x", qos=1, pid=1)
            got = {p.type: p for p in (c.recv(), c.recv())}
            assert got[mqttraw.PUBACK].rc == 0
    with e.tls(psk=(key.kid, key.k)) as c:  # MQTT 5 method ace without data: challenge
        c.send(mqttraw.connect(uid(), 5, properties=ace_props()))
        p = c.recv_type(mqttraw.AUTH)
        cn = os.urandom(8)
        c.send(auth_packet(0x18, cn + key.pop(p.prop(mqttraw.AUTH_DATA) + cn)))
        assert c.recv_type(mqttraw.CONNACK).rc == 0
    with pytest.raises(Exception):  # an identity naming no stored token fails the handshake
        e.tls(psk=(b"nobody", os.urandom(32))).connect(uid())


def test_v311_username_password(ace_env):
    e = ace_env()
    key = PopKey("sym")
    tok = e.token([["s/#", ["pub", "sub"]]], key)
    with e.tls(version=4) as c:
        c.connect(uid("v3"), username="ace" + b64u(tok), password=key.pop(c.exporter()))
        assert c.subscribe([("s/#", 1), ("x", 1)]).codes == [1, 0x80]
        c.publish("s/a", b"m", qos=1, pid=1)
        got = {p.type for p in (c.recv(), c.recv())}
        assert got == {mqttraw.PUBACK, mqttraw.PUBLISH}
        c.publish("x", b"no", qos=1, pid=2)  # 3.1.1 cannot be told: the connection closes
        c.wait_closed()
    with e.tls(version=4) as c:
        c.connect(uid(), username="ace" + b64u(tok), password=bytes(32), expect_rc=5)
    with e.tls(version=4) as c:
        c.connect(uid(), username="bob!", password=b"pw", expect_rc=4)


def test_password_and_acl_files(ace_env, tmp_path):
    pwf, aclf = tmp_path / "passwd", tmp_path / "acl"
    pwf.write_text(pw_line("alice", "wonder") + "\n")
    aclf.write_text("user alice\ntopic readwrite a/#\ntopic read r/#\n")
    e = ace_env(global_lines=("password_file %s" % pwf, "acl_file %s" % aclf))
    with e.b.raw() as c:
        c.connect(uid(), username="alice", password=b"wrong", expect_rc=0x86)
    with e.b.raw(version=4) as c:
        c.connect(uid(), username="alice", password=b"wrong", expect_rc=5)
    with e.b.raw() as c:
        c.connect(uid(), username="alice", password=b"wonder")
        assert c.subscribe([("a/#", 0), ("r/1", 0), ("b/#", 0)]).codes == [0, 0, 0x87]
        c.publish("r/1", b"x", qos=1, pid=1)
        assert c.recv_type(mqttraw.PUBACK).rc == NOT_AUTHORIZED
        c.publish("a/1", b"y", qos=1, pid=2)
        got = {p.type: p for p in (c.recv(), c.recv())}
        assert got[mqttraw.PUBACK].rc == 0 and got[mqttraw.PUBLISH].payload == b"y"


@pytest.mark.parametrize("scope", ["read write", " ".join(["read"] * 40 + ["write"] * 3)],
                         ids=["once", "named-repeatedly"])
def test_bearer_jwt_with_scope_map(ace_env, scope):
    """Bearer JWTs, their scope names mapped by ace_scope_map. A token may name one mapped scope
    many times: it grants that scope once (this wrote past the grant's entry array before; the
    sanitizer build catches a return of that)."""
    e = ace_env(global_lines=("ace_scope_map read sensors/# sub", "ace_scope_map write cmd/# pub"),
                tls_lines=("ace_bearer true",), issuer_kind="hmac")
    now = int(time.time())
    jwt = e.iss.jwt_hs256({"iss": "as1", "aud": AUD, "exp": now + 60, "iat": now,
                           "scope": scope, "sub": "svc"})
    with e.tls() as c:
        c.send(mqttraw.connect(uid("bearer"), 5, properties=ace_props(auth_data(jwt))))
        assert c.recv_type(mqttraw.CONNACK).rc == 0
        assert c.subscribe([("sensors/1", 0), ("cmd/1", 0)]).codes == [0, NOT_AUTHORIZED]
        c.publish("cmd/go", b"1", qos=1, pid=1)
        assert c.recv_type(mqttraw.PUBACK).rc in (0, 0x10)
    with e.b.raw() as c:  # not on the plain listener: it does not say ace_bearer
        c.send(mqttraw.connect(uid(), 5, properties=ace_props(auth_data(jwt))))
        assert c.recv_type(mqttraw.CONNACK).rc == NOT_AUTHORIZED


def test_reload_keeps_connections_and_serves_new_ones(ace_env):
    e = ace_env()
    key = PopKey("sym")
    tok = e.token(SCOPE, key)
    with e.tls() as old:
        connect_a(old, tok, key)
        e.b.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reloaded" in e.b.log(), what="reload")
        with e.tls() as new:
            connect_a(new, tok, key)
            assert new.subscribe([("s/#", 0)]).codes == [0]
        old.publish("s/x", b"x", qos=1, pid=1)
        assert old.recv_type(mqttraw.PUBACK).rc in (0, 0x10)


def test_reference_token_introspection(ace_env, tmp_path):
    key = PopKey("sym")
    active, inactive = "ref-" + os.urandom(8).hex(), "ref-" + os.urandom(8).hex()
    now = int(time.time())
    srv = IntrospectionAS({active: {
        "active": True, "aud": AUD, "exp": now + 60, "iss": "as1",
        "scope": [["r/#", ["pub", "sub"]]],
        "cnf": {"jwk": {"kty": "oct", "k": b64u(key.k), "kid": "r1"}}}})
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    try:
        e = ace_env(global_lines=("ace_introspection http://127.0.0.1:%d/introspect broker %s"
                                  % (srv.port, secret),))
        with e.tls() as c:
            connect_b(c, active.encode(), key)
            c.publish("r/1", b"x", qos=1, pid=1)
            assert c.recv_type(mqttraw.PUBACK).rc in (0, 0x10)
            c.publish("s/1", b"x", qos=1, pid=2)
            assert c.recv_type(mqttraw.PUBACK).rc == NOT_AUTHORIZED
        with e.tls() as c:
            connect_b(c, inactive.encode(), key, expect=NOT_AUTHORIZED)
        assert srv.requests and srv.requests[0][0].startswith("Basic ")
    finally:
        srv.close()
