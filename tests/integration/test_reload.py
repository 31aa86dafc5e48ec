"""SIGHUP reload: what docs/operations.md promises changes live for new connections (limits, the
access policy, listener settings), what it does not (listeners) is logged as needing a restart, and
a configuration that does not load is refused with file:line while the old one keeps serving."""

import os
import re
import shutil
import signal
import socket

from acehelpers import NOT_AUTHORIZED, SCOPE, Issuer, PopKey, claims
from acetestenv import connect_b, pw_line
from conftest import HOST, acemq_only, acemqd_process, free_port, uid, wait_until
import mqttraw as m

pytestmark = acemq_only


def rewrite(b, *lines, anonymous=True):
    """Writes b's configuration again: its own listener, then lines."""
    cfg = ["listener %d %s" % (b.port, HOST), "log_dest stderr", "workers %d" % b.workers]
    if anonymous is not None:
        cfg.append("allow_anonymous %s" % ("true" if anonymous else "false"))
    cfg += list(lines)
    with open(b.conf, "w") as f:
        f.write("\n".join(cfg) + "\n")
    return cfg


def reload(b, event="reloaded"):
    """SIGHUP, then waits for the event line that ends the reload (reloaded / reload_failed)."""
    before = b.log().count("event=%s " % event)
    b.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: b.log().count("event=%s " % event) > before, 5,
               what="event=%s in the log" % event)
    assert b.alive()


def connack(b, version=5, keepalive=60, **kw):
    with b.raw(version) as c:
        ack = c.connect(uid("r"), keepalive=keepalive, **kw)
        c.disconnect()
        return ack


def works(c, topic):
    """An open client still publishes and gets its own message back."""
    c.publish(topic, b"still here", qos=1, pid=9)
    got = {}
    for _ in range(2):
        p = c.recv(5)
        got[p.type] = p
    assert got[m.PUBACK].pid == 9
    assert got[m.PUBLISH].payload == b"still here"


def test_limits_apply_to_new_connections(make_broker, raws):
    b = make_broker("max_inflight_messages 10", "max_keepalive 30")
    old = raws(b)
    ack = old.connect(uid("old"), keepalive=60)
    assert ack.prop(m.RECEIVE_MAXIMUM) == 10
    assert ack.prop(m.SERVER_KEEP_ALIVE) == 30
    topic = uid("keep")
    assert old.subscribe([(topic, 1)]).codes == [1]

    rewrite(b, "max_inflight_messages 25", "max_keepalive 45")
    reload(b)
    ack = connack(b)
    assert ack.prop(m.RECEIVE_MAXIMUM) == 25
    assert ack.prop(m.SERVER_KEEP_ALIVE) == 45
    works(old, topic)  # the client from before the reload is not disturbed

    # and back to the defaults: 20 in flight, and the client's own keep alive
    rewrite(b)
    reload(b)
    ack = connack(b)
    assert ack.prop(m.RECEIVE_MAXIMUM) == 20
    assert ack.prop(m.SERVER_KEEP_ALIVE) in (None, 60)
    assert "reload_needs_restart" not in b.log()


def test_allow_anonymous_turned_off(make_broker, raws):
    b = make_broker()
    old = raws(b)
    old.connect(uid("old"))
    topic = uid("anon")
    assert old.subscribe([(topic, 1)]).codes == [1]

    rewrite(b, anonymous=False)
    reload(b)
    assert connack(b, expect_rc=None).rc == 0x87  # MQTT 5: Not authorized
    assert connack(b, version=4, expect_rc=None).rc == 5  # 3.1.1: not authorized
    works(old, topic)

    rewrite(b, anonymous=True)
    reload(b)
    assert connack(b).rc == 0


def test_listener_settings_apply_to_new_connections(make_broker, raws):
    # max_connections and max_qos are listener directives documented as reloadable
    b = make_broker()
    first = raws(b)
    first.connect(uid("one"))
    rewrite(b, "max_connections 1", "max_qos 1")
    reload(b)
    assert not _can_connect(b)  # the listener is full: the new connection is closed at once
    assert "connection_refused" in b.log()
    first.disconnect()
    # (a slot frees when the broker has seen the close: retry until then)
    ack = wait_until(lambda: _can_connect(b), 5, what="a free slot on the listener")
    assert ack.prop(m.MAXIMUM_QOS) == 1


def _can_connect(b):
    """The CONNACK, or None when the connection was refused."""
    try:
        ack = connack(b, timeout=2)
        return ack if ack.rc == 0 else None
    except (m.Closed, ConnectionError, OSError, TimeoutError, AssertionError):
        return None


def failed_lines(b):
    return [l for l in b.log().splitlines() if "event=reload_failed" in l]


def test_broken_config_keeps_the_old_one(make_broker, raws):
    b = make_broker("max_inflight_messages 12")
    cfg = rewrite(b, "max_keepalive banana", "max_inflight_messages 40", "max_qos 7")
    bad = (len(cfg) - 2, len(cfg))  # two bad lines, a good one between them
    reload(b, "reload_failed")
    # every error is reported, each on a reload_failed line of its own
    lines = wait_until(lambda: (lambda ls: ls if len(ls) == 2 else None)(failed_lines(b)), 5,
                       what="two reload_failed lines")
    for line, n in zip(lines, bad):
        assert re.search(r'reason="%s:%d: ' % (re.escape(b.conf), n), line), line
        assert "keeping the running configuration" in line
    assert "max_keepalive" in lines[0] and "max_qos" in lines[1]
    assert "event=reloaded " not in b.log()
    # still serving, with the old limits
    ack = connack(b)
    assert ack.prop(m.RECEIVE_MAXIMUM) == 12

    # an unknown directive and a value out of range are refused the same way
    for bad in ("no_such_directive 1", "max_qos 7"):
        cfg = rewrite(b, bad)
        reload(b, "reload_failed")
        line = [l for l in b.log().splitlines() if "event=reload_failed" in l][-1]
        assert "%s:%d: " % (b.conf, len(cfg)) in line, line
        assert connack(b).prop(m.RECEIVE_MAXIMUM) == 12

    # a good file afterwards is taken
    rewrite(b, "max_inflight_messages 7")
    reload(b)
    assert connack(b).prop(m.RECEIVE_MAXIMUM) == 7


def test_listener_change_needs_restart(make_broker, raws):
    b = make_broker()
    extra = free_port()
    rewrite(b, "max_inflight_messages 9", "sys_interval 3", "listener %d %s" % (extra, HOST))
    rewrite_text = open(b.conf).read()
    # workers is read only at start too
    rewrite_text = rewrite_text.replace("workers %d" % b.workers, "workers %d" % (b.workers + 1))
    with open(b.conf, "w") as f:
        f.write(rewrite_text)
    reload(b)
    line = [l for l in b.log().splitlines() if "event=reload_needs_restart" in l][-1]
    assert "listener %s:%d added" % (HOST, extra) in line, line
    assert "workers changed" in line, line
    assert "sys_interval changed" in line, line
    # the new listener is not opened, the old one serves, and the live part of the file applies
    with socket.socket() as s:
        s.settimeout(1)
        assert s.connect_ex((HOST, extra)) != 0
    assert connack(b).prop(m.RECEIVE_MAXIMUM) == 9
    assert b.log().count("event=reloaded ") == 1


def test_command_line_port_is_no_change(tmp_path):
    # acemqd -p PORT: the listener the command line added is not "removed" by a reload
    port = free_port()
    out = tmp_path / "out.log"
    with open(out, "wb") as f, acemqd_process(["-p", str(port)], stdout=f, stderr=f) as p:
        wait_until(lambda: "event=started" in out.read_text(), 10, what="event=started")
        p.send_signal(signal.SIGHUP)
        wait_until(lambda: "event=reloaded" in out.read_text(), 5, what="event=reloaded")
        assert "reload_needs_restart" not in out.read_text()
        with m.RawClient(HOST, port, 5) as c:
            assert c.connect(uid("p")).rc == 0
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0


def replace_file(path, text):
    """Writes path anew the way an editor or a deployment tool does: aside, then renamed."""
    tmp = "%s.new" % path
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def test_password_file_read_again_and_missing_acl_refused(make_broker, raws, tmp_path):
    pwf = tmp_path / "passwd"
    pwf.write_text(pw_line("alice", "wonder") + "\n")
    b = make_broker("allow_anonymous false", "password_file %s" % pwf)
    old = raws(b)
    old.connect(uid("old"), username="alice", password=b"wonder")
    topic = uid("pw")
    assert old.subscribe([(topic, 1)]).codes == [1]

    replace_file(pwf, pw_line("bob", "builder") + "\n")  # the same path, bob only
    reload(b)
    assert connack(b, username="alice", password=b"wonder", expect_rc=None).rc == 0x86
    assert connack(b, username="bob", password=b"builder").rc == 0
    works(old, topic)  # connected before the reload: not disturbed

    # an acl_file that does not exist: the new policy is refused, bob's and alice's stay as they were
    missing = tmp_path / "missing.acl"
    rewrite(b, "password_file %s" % pwf, "acl_file %s" % missing, anonymous=False)
    reload(b, "auth_reload_failed")
    line = [l for l in b.log().splitlines() if "event=auth_reload_failed" in l][-1]
    assert str(missing) in line and "keeping the running access policy" in line, line
    assert connack(b, username="alice", password=b"wonder", expect_rc=None).rc == 0x86
    with b.raw() as c:  # no ACL in force: bob may still subscribe anywhere
        c.connect(uid("bob"), username="bob", password=b"builder")
        assert c.subscribe([(uid("any") + "/#", 1)]).codes == [1]
    works(old, topic)


def test_ace_issuer_key_rotated(ace_env):
    e = ace_env()
    key = PopKey("sym")
    old_token = e.token(SCOPE, key)
    with e.tls() as c:
        connect_b(c, old_token, key)
    before = e.tls()  # a client connected with the old key's token stays
    try:
        connect_b(before, e.token(SCOPE, key), key)
        assert before.subscribe([("s/before", 1)]).codes == [1]

        rotated = Issuer(e.dir, "rotated")  # the AS's new key, written over the file ace_issuer names
        shutil.copyfile(rotated.keyfile, e.iss.keyfile)
        reload(e.b)
        with e.tls() as c:  # the token accepted a moment ago, now checked against the new key
            connect_b(c, old_token, key, expect=NOT_AUTHORIZED)
        with e.tls() as c:
            connect_b(c, e.token(SCOPE, key), key, expect=NOT_AUTHORIZED)
        with e.tls() as c:
            connect_b(c, rotated.cwt(claims(SCOPE, key)), key)
        works(before, "s/before")
    finally:
        before.close()
