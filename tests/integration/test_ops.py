"""Running acemqd as a system service: the sd_notify protocol (READY, RELOADING, STOPPING, STATUS,
WATCHDOG) seen from a fake service manager, the systemd unit and its sysusers/tmpfiles snippets
checked by systemd's own tools, and the manual pages.

The fake service manager is what systemd is to a Type=notify service: a Unix datagram socket whose
address is passed in $NOTIFY_SOCKET, on which the daemon's messages arrive one datagram each.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest

from conftest import (HOST, IS_MOSQ, ROOT, SANITIZER_MARKS, acemqd_path, acemqd_process,
                      free_port, wait_until)

pytestmark = pytest.mark.skipif(IS_MOSQ, reason="acemqd's service integration")

UNIT = os.path.join(ROOT, "systemd", "acemqd.service")
SYSUSERS = os.path.join(ROOT, "systemd", "acemq.sysusers")
TMPFILES = os.path.join(ROOT, "systemd", "acemq.tmpfiles")
MAN = os.path.join(ROOT, "docs", "man")


class Manager:
    """A fake service manager: owns the notify socket and the daemon it starts."""

    def __init__(self, tmp_path, abstract=False, env=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "acemq-test-" + uuid.uuid4().hex
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = str(tmp_path / "notify")
            self.sock.bind(self.address)
        self.port = free_port()
        self.conf = tmp_path / "acemq.conf"
        self.conf.write_text("listener %d %s\nallow_anonymous true\nworkers 2\n"
                             "max_queued_messages 100\n" % (self.port, HOST))
        self.logpath = tmp_path / "stderr.log"
        self.log_f = open(self.logpath, "wb")
        e = dict(os.environ)
        e.pop("WATCHDOG_USEC", None)
        e.pop("WATCHDOG_PID", None)
        e["NOTIFY_SOCKET"] = self.address
        e.update(env or {})
        self.proc = subprocess.Popen([acemqd_path(), "-c", str(self.conf)], env=e,
                                     stdin=subprocess.DEVNULL, stdout=self.log_f,
                                     stderr=self.log_f)
        self.pending = []

    def log(self):
        return self.logpath.read_text(errors="replace")

    def recv(self, timeout=5.0):
        """The next datagram, as a dict of its assignments (plus "_raw")."""
        if self.pending:
            return self.pending.pop(0)
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            raise AssertionError("no notification within %.1fs; log:\n%s" % (timeout, self.log()))
        msg = {"_raw": data}
        for line in data.split("\n"):
            k, _, v = line.partition("=")
            msg[k] = v
        return msg

    def expect(self, key, value=None, timeout=5.0, skip=("WATCHDOG", "STATUS")):
        """Reads until a message with key (and value) arrives; returns it and the ones skipped."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            m = self.recv(max(deadline - time.monotonic(), 0.01))
            if key in m and (value is None or m[key] == value):
                return m, seen
            assert any(k in m for k in skip), "unexpected %r before %s" % (m["_raw"], key)
            seen.append(m)

    def stopped_cleanly(self):
        """After a stop signal: STOPPING=1 arrives, the daemon exits 0 with no sanitizer report."""
        self.expect("STOPPING", "1")
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            raise AssertionError("acemqd did not exit within 10 s of STOPPING=1:\n" + self.log())
        assert rc == 0, "exit %s:\n%s" % (rc, self.log())
        assert not any(mark in self.log() for mark in SANITIZER_MARKS), self.log()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log_f.close()
        self.sock.close()


@pytest.fixture
def manager(tmp_path):
    made = []

    def make(**kw):
        m = Manager(tmp_path, **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


def connects(port):
    with socket.create_connection((HOST, port), timeout=2):
        return True


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_notify_ready_reload_stop(manager, abstract):
    m = manager(abstract=abstract)
    ready, _ = m.expect("READY", "1")
    # READY=1 means clients can connect: no retry loop here.
    assert connects(m.port)
    status, _ = m.expect("STATUS")
    assert "running" in status["STATUS"]

    m.proc.send_signal(signal.SIGHUP)
    reloading, _ = m.expect("RELOADING", "1")
    usec = int(reloading["MONOTONIC_USEC"])
    assert abs(usec / 1e6 - time.clock_gettime(time.CLOCK_MONOTONIC)) < 10
    ready, seen = m.expect("READY", "1")
    assert any("reloaded" in s.get("STATUS", "") for s in seen), seen
    assert connects(m.port)

    m.proc.send_signal(signal.SIGTERM)
    m.stopped_cleanly()


def test_notify_failed_reload_keeps_serving(manager):
    m = manager()
    m.expect("READY", "1")
    m.conf.write_text("listener %d %s\nno_such_directive 1\n" % (m.port, HOST))
    m.proc.send_signal(signal.SIGHUP)
    m.expect("RELOADING", "1")
    _, seen = m.expect("READY", "1")
    assert any("failed" in s.get("STATUS", "") for s in seen), seen
    assert "reload_failed" in m.log()
    assert connects(m.port)
    m.proc.send_signal(signal.SIGINT)
    m.stopped_cleanly()


def test_watchdog(manager):
    m = manager(env={"WATCHDOG_USEC": "200000"})
    m.expect("READY", "1")
    # Every 100 ms (half the interval): at least 5 in a second, not a flood.
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < 1.0:
        msg = m.recv(1.0)
        if msg.get("WATCHDOG") == "1":
            n += 1
    assert 5 <= n <= 15, n
    m.proc.send_signal(signal.SIGTERM)
    m.stopped_cleanly()


def test_watchdog_for_another_pid_is_ignored(manager):
    # WATCHDOG_PID names the process the watchdog is for; a daemon that is not it stays quiet.
    m = manager(env={"WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"})
    m.expect("READY", "1")
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        try:
            msg = m.recv(0.2)
        except AssertionError:
            break
        assert "WATCHDOG" not in msg, msg
    m.proc.send_signal(signal.SIGTERM)
    m.stopped_cleanly()


def test_no_notify_socket_is_fine(tmp_path):
    # Started by hand, by another supervisor or in a container: nothing to notify, no complaint.
    port = free_port()
    conf = tmp_path / "c.conf"
    conf.write_text("listener %d %s\nallow_anonymous true\n" % (port, HOST))
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env["WATCHDOG_USEC"] = "100000"
    with acemqd_process(["-c", str(conf)], env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT) as p:
        wait_until(lambda: _try_connect(port), what="listening")
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
        assert p.returncode == 0
        assert b"notify_failed" not in out
        assert not any(m.encode() in out for m in SANITIZER_MARKS), out.decode(errors="replace")


def test_notify_socket_gone_is_logged_once(tmp_path):
    # A service manager that went away must not stop the broker, nor flood its log.
    port = free_port()
    conf = tmp_path / "c.conf"
    conf.write_text("listener %d %s\nallow_anonymous true\n" % (port, HOST))
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "nobody-listens"), WATCHDOG_USEC="20000")
    with acemqd_process(["-c", str(conf)], env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT) as p:
        wait_until(lambda: _try_connect(port), what="listening")
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
        assert p.returncode == 0
        assert out.count(b"notify_failed") == 1, out.decode(errors="replace")
        assert not any(m.encode() in out for m in SANITIZER_MARKS), out.decode(errors="replace")


def _try_connect(port):
    try:
        return connects(port)
    except OSError:
        return False


# ---- the unit and its snippets --------------------------------------------------------------------

def _unit_text():
    with open(UNIT) as f:
        return f.read()


def _directives(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            k, _, v = line.partition("=")
            out.setdefault(k, []).append(v)
    return out


def test_unit_settings():
    d = _directives(_unit_text())
    assert d["Type"] == ["notify"]
    assert d["ExecStart"] == ["/usr/sbin/acemqd -c /etc/acemq/acemq.conf"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["User"] == ["acemq"]
    assert d["CapabilityBoundingSet"] == [""]
    for k, v in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                 ("PrivateTmp", "yes"), ("StateDirectory", "acemq"), ("LogsDirectory", "acemq"),
                 ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX")]:
        assert d[k] == [v], k
    assert "@system-service" in d["SystemCallFilter"]
    # The watchdog is documented in the unit, off by default.
    assert "#WatchdogSec=" in _unit_text()


def _unit_for_this_tree(tmp_path):
    """The unit with ExecStart pointing at the built daemon: verify checks that the binary exists."""
    text = _unit_text().replace("/usr/sbin/acemqd", acemqd_path())
    p = tmp_path / "acemqd.service"
    p.write_text(text)
    return str(p)


def _systemd_tool(name):
    path = shutil.which(name)
    if not path:
        pytest.skip("%s is not installed (package systemd): cannot check the unit" % name)
    return path


def test_unit_verifies(tmp_path):
    tool = _systemd_tool("systemd-analyze")
    r = subprocess.run([tool, "verify", "--man=no", _unit_for_this_tree(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


def test_unit_verify_catches_a_broken_unit(tmp_path):
    # The check above is only worth something if verify fails on a bad unit.
    tool = _systemd_tool("systemd-analyze")
    p = tmp_path / "acemqd.service"
    p.write_text(_unit_text().replace("Type=notify", "Type=notfy")
                 .replace("/usr/sbin/acemqd", acemqd_path()))
    r = subprocess.run([tool, "verify", "--man=no", str(p)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 or "notfy" in r.stderr


def test_unit_security_exposure(tmp_path):
    tool = _systemd_tool("systemd-analyze")
    r = subprocess.run([tool, "security", "--offline=yes", _unit_for_this_tree(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    # 10 is an unsandboxed service; systemd calls anything below 4 "OK". The unit scores 1.1.
    assert float(m.group(1)) <= 2.0, r.stdout


def test_sysusers_snippet(tmp_path):
    tool = _systemd_tool("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    r = subprocess.run([tool, "--root", str(tmp_path), SYSUSERS], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    passwd = (tmp_path / "etc" / "passwd").read_text()
    line = [l for l in passwd.splitlines() if l.startswith("acemq:")]
    assert line, passwd
    assert line[0].split(":")[5:] == ["/var/lib/acemq", "/usr/sbin/nologin"]
    assert "acemq:" in (tmp_path / "etc" / "group").read_text()


def test_tmpfiles_snippet(tmp_path):
    tool = _systemd_tool("systemd-tmpfiles")
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("acemq:x:999:999::/var/lib/acemq:/usr/sbin/nologin\n")
    (etc / "group").write_text("acemq:x:999:\n")
    r = subprocess.run([tool, "--root", str(tmp_path), "--create", TMPFILES],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for d in ("var/lib/acemq", "var/log/acemq"):
        st = os.stat(tmp_path / d)
        assert oct(st.st_mode & 0o7777) == "0o750", d
        if os.geteuid() == 0:
            assert (st.st_uid, st.st_gid) == (999, 999), d


# ---- manual pages ----------------------------------------------------------------------------------

PAGES = ["acemqd.8", "acemq.conf.5", "acemq-token.1"]


@pytest.mark.parametrize("page", PAGES)
def test_man_page_renders_cleanly(page):
    groff = shutil.which("groff")
    if not groff:
        pytest.skip("groff is not installed: cannot render the manual pages")
    r = subprocess.run([groff, "-man", "-ww", "-z", "-t", os.path.join(MAN, page)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    if shutil.which("man"):
        r = subprocess.run(["man", "-l", os.path.join(MAN, page)], capture_output=True, text=True,
                           timeout=30, env=env)
        assert r.returncode == 0, r.stderr
        assert "NAME" in r.stdout and "SEE ALSO" in r.stdout


def _config_directives():
    """Every directive acemqd accepts, from the parser's table (refused and obsolete ones left out)."""
    with open(os.path.join(ROOT, "broker", "config_parse.c")) as f:
        src = f.read()
    table = src[src.index("cfg_directives[] = {"):]
    table = table[:table.index("};")]
    names = set(re.findall(r'^\s*[GLI]\((\w+),', table, re.M))
    names |= set(re.findall(r'^\s*F\("([\w.]+)"', table, re.M))
    names |= set(re.findall(r'^\s*\{"([\w.]+)", K_', table, re.M))
    return names


def test_man_page_lists_every_directive():
    names = _config_directives()
    assert len(names) > 80, names
    with open(os.path.join(MAN, "acemq.conf.5")) as f:
        page = f.read()
    # A directive is documented when an entry's tag (the line after .TP) starts with its name.
    lines = page.splitlines()
    tagged = set()
    for prev, line in zip(lines, lines[1:]):
        m = re.match(r'\.B[IR]? ([\w.]+)', line)
        if prev == ".TP" and m:
            tagged.add(m.group(1))
    missing = sorted(names - tagged)
    assert not missing, "acemq.conf.5 lacks: %s" % ", ".join(missing)


def test_token_man_page_covers_every_command():
    tool = os.path.join(os.path.dirname(acemqd_path()), "acemq-token")
    if not os.path.exists(tool):
        pytest.skip("acemq-token is not built next to acemqd")
    r = subprocess.run([tool, "--help"], capture_output=True, text=True, timeout=10)
    helptext = r.stdout + r.stderr
    with open(os.path.join(MAN, "acemq-token.1")) as f:
        page = f.read().replace("\\-", "-")
    commands = re.findall(r"^  (\w+) +--", helptext, re.M)
    assert set(commands) >= {"keygen", "mint", "pop", "inspect"}, helptext
    for c in commands:
        assert ".SS %s" % c in page, c
    for o in set(re.findall(r"(--[a-z0-9-]+)", helptext)):
        assert o in page, "acemq-token.1 does not mention %s" % o


@pytest.mark.skipif(IS_MOSQ, reason="acemqd's own threads")
def test_worker_threads_are_named(make_broker):
    """top -H and /proc show which thread is which: acemq-worker-N per worker."""
    b = make_broker("persistence false", workers=2)

    def names():
        return sorted(open("/proc/%d/task/%s/comm" % (b.proc.pid, t)).read().strip()
                      for t in os.listdir("/proc/%d/task" % b.proc.pid))

    # the listening socket accepts (in the kernel) before the worker threads are up: poll
    wait_until(lambda: {"acemq-worker-0", "acemq-worker-1"} <= set(names()),
               what="named worker threads")
