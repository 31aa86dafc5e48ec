"""acemqd as a system daemon: started as root with `user`, it binds (a port below 1024 too) and then
runs as that user; its log goes to a file that logrotate can move away (SIGUSR2 / SIGHUP reopen
it), to syslog (/dev/log), and `log_type` picks the levels written."""

import os
import re
import pwd
import signal
import socket
import stat
import subprocess
import tempfile
import shutil

import pytest

from conftest import (HOST, IS_MOSQ, SANITIZER_MARKS, acemqd_path, acemqd_process, free_port,
                      uid, wait_until)
import mqttraw as m

pytestmark = pytest.mark.skipif(IS_MOSQ, reason="acemqd's daemon behaviour")

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root: the daemon must start as root to drop privileges")


class Daemon:
    """acemqd with a configuration of our own; stdout and stderr go to out.log."""

    def __init__(self, dirpath, lines, port=None):
        self.dir = dirpath
        self.port = port or free_port()
        self.conf = os.path.join(dirpath, "acemq.conf")
        self.write_conf(lines)
        self.outpath = os.path.join(dirpath, "out.log")
        self.out = open(self.outpath, "wb")
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1:halt_on_error=1")
        self.proc = subprocess.Popen([acemqd_path(), "-c", self.conf], stdout=self.out,
                                     stderr=self.out, stdin=subprocess.DEVNULL, env=env)

    def write_conf(self, lines):
        with open(self.conf, "w") as f:
            f.write("listener %d %s\nallow_anonymous true\nworkers 1\n" % (self.port, HOST))
            f.write("\n".join(lines) + "\n")
        os.chmod(self.conf, 0o644)

    def output(self):
        with open(self.outpath, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_listening(self, port=None):
        def up():
            assert self.proc.poll() is None, "exited %s:\n%s" % (self.proc.returncode,
                                                                  self.output())
            try:
                with socket.create_connection((HOST, port or self.port), timeout=0.5):
                    return True
            except OSError:
                return False
        wait_until(up, 10, what="acemqd listening")

    def connect(self, cid=None):
        """One MQTT 5 connect/disconnect (it makes the broker log a connect line)."""
        with m.RawClient(HOST, self.port, 5) as c:
            ack = c.connect(cid or uid("d"))
            c.disconnect()
            return ack

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("acemqd ignored SIGTERM:\n" + self.output())
        self.out.close()
        text = self.output()
        assert not any(mk in text for mk in SANITIZER_MARKS), text
        return self.proc.returncode


@pytest.fixture
def daemon_dir():
    d = tempfile.mkdtemp(prefix="acemq-daemon-")
    os.chmod(d, 0o755)  # the daemon may run as another user and must read its config
    made = []

    def make(lines, **kw):
        dm = Daemon(d, lines, **kw)
        made.append(dm)
        return dm

    make.dir = d
    yield make
    for dm in made:
        if dm.proc.poll() is None:
            dm.proc.kill()
            dm.proc.wait()
        dm.out.close()
    shutil.rmtree(d, ignore_errors=True)


def ids_of(pid):
    """{"Uid": [real, effective, saved, fs], "Gid": [...], "Groups": [...]} from /proc."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                out[k] = [int(x) for x in v.split()]
    return out


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


# ---- privileges -----------------------------------------------------------------------------------

@needs_root
def test_drops_privileges_after_binding(daemon_dir):
    nobody = pwd.getpwnam("nobody")
    low = 883 if port_free(883) else None  # below 1024: only root can bind it
    store = os.path.join(daemon_dir.dir, "state")
    os.mkdir(store)
    os.chown(store, nobody.pw_uid, nobody.pw_gid)
    lines = ["user nobody", "persistence true", "persistence_location %s" % store]
    if low:
        lines.append("listener %d %s" % (low, HOST))
    d = daemon_dir(lines)
    d.wait_listening()
    if low:
        d.wait_listening(low)
    wait_until(lambda: "event=started" in d.output(), 5, what="event=started")
    ids = ids_of(d.proc.pid)
    assert ids["Uid"] == [nobody.pw_uid] * 4, ids
    assert ids["Gid"] == [nobody.pw_gid] * 4, ids
    assert 0 not in ids["Groups"], ids  # root's supplementary groups are gone too
    assert "event=privileges_dropped user=nobody uid=%d" % nobody.pw_uid in d.output()
    # every thread, not only the main one (setuid(2) in glibc applies to all of them)
    for tid in os.listdir("/proc/%d/task" % d.proc.pid):
        with open("/proc/%d/task/%s/status" % (d.proc.pid, tid)) as f:
            uid_line = [l for l in f if l.startswith("Uid:")][0]
        assert [int(x) for x in uid_line.split()[1:]] == [nobody.pw_uid] * 4, (tid, uid_line)
    # it serves, on the privileged port too, and its store belongs to the user that writes it
    assert d.connect().rc == 0
    if low:
        with m.RawClient(HOST, low, 5) as c:
            assert c.connect(uid("low")).rc == 0
    files = os.listdir(store)
    assert files, "no store file"
    for name in files:
        assert os.stat(os.path.join(store, name)).st_uid == nobody.pw_uid, name
    # a reload still reads the (world-readable) file as the new user
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "event=reloaded" in d.output(), 5, what="event=reloaded")
    assert d.stop() == 0
    if not low:
        pytest.skip("port 883 is taken here: the port below 1024 was not checked")


@needs_root
def test_unknown_user_stops_the_start(daemon_dir):
    d = daemon_dir(["user no-such-user-%s" % uid("u")[-6:]])
    rc = d.proc.wait(10)
    assert rc == 1, d.output()
    assert "event=privilege_drop_failed" in d.output()
    assert 'reason="no such user"' in d.output()


def test_user_ignored_when_not_root(daemon_dir):
    # Not root (or root already dropped by the service manager): `user` is not an error.
    if os.geteuid() == 0:
        pytest.skip("running as root: covered by test_drops_privileges_after_binding")
    d = daemon_dir(["user nobody"])
    d.wait_listening()
    assert ids_of(d.proc.pid)["Uid"][1] == os.geteuid()
    assert d.stop() == 0


# ---- log file and logrotate -----------------------------------------------------------------------

def lines_with(path, text):
    try:
        with open(path) as f:
            return [l for l in f if text in l]
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("sig", [signal.SIGUSR2, signal.SIGHUP], ids=["SIGUSR2", "SIGHUP"])
def test_log_file_reopened_after_rotation(daemon_dir, sig):
    logpath = os.path.join(daemon_dir.dir, "acemq.log")
    d = daemon_dir(["log_dest file %s" % logpath, "log_type all"])
    d.wait_listening()
    wait_until(lambda: lines_with(logpath, "event=started"), 5, what="event=started in the file")
    assert "event=started" not in d.output()  # the file only: stderr was replaced
    first = uid("before")
    d.connect(first)
    wait_until(lambda: lines_with(logpath, "client=%s" % first), 5, what="the first connect")

    rotated = logpath + ".1"
    os.rename(logpath, rotated)  # what logrotate does (without copytruncate)
    d.proc.send_signal(sig)
    wait_until(lambda: os.path.exists(logpath), 5, what="the log file opened again")
    second = uid("after")
    d.connect(second)
    wait_until(lambda: lines_with(logpath, "client=%s" % second), 5,
               what="the second connect in the new file")
    assert not lines_with(rotated, "client=%s" % second)
    assert lines_with(rotated, "client=%s" % first)
    assert d.stop() == 0
    assert lines_with(logpath, "event=stopped")
    assert not lines_with(rotated, "event=stopped")
    assert stat.S_IMODE(os.stat(logpath).st_mode) & 0o007 == 0  # not world-readable


def test_log_type_filters_levels(daemon_dir):
    logpath = os.path.join(daemon_dir.dir, "acemq.log")
    d = daemon_dir(["log_dest file %s" % logpath, "log_type error"])
    d.wait_listening()
    d.connect()
    # an error: a reload of a file that does not load
    with open(d.conf, "a") as f:
        f.write("no_such_directive 1\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: lines_with(logpath, "event=reload_failed"), 5, what="reload_failed")
    assert d.stop() == 0
    with open(logpath) as f:
        text = f.read()
    levels = {tok.split("=", 1)[1] for tok in text.split() if tok.startswith("level=")}
    assert levels == {"error"}, text
    assert "event=started" not in text and "event=connect " not in text

    # warning and notice added: the start is there, the connect line (info) still is not
    logpath2 = os.path.join(daemon_dir.dir, "acemq2.log")
    d2 = daemon_dir(["log_dest file %s" % logpath2, "log_type error", "log_type warning",
                     "log_type notice"], port=free_port())
    d2.wait_listening()
    cid = uid("quiet")
    d2.connect(cid)
    assert d2.stop() == 0
    with open(logpath2) as f:
        text = f.read()
    assert "event=started" in text and "event=stopped" in text
    assert "client=%s" % cid not in text
    assert "level=info" not in text and "level=debug" not in text


def test_reload_moves_the_log_and_widens_log_type(daemon_dir):
    first, second = (os.path.join(daemon_dir.dir, n) for n in ("first.log", "second.log"))
    d = daemon_dir(["log_dest file %s" % first, "log_type error"])
    d.wait_listening()
    quiet = uid("quiet")
    d.connect(quiet)  # an info line: not written with log_type error
    d.write_conf(["log_dest file %s" % second, "log_type all"])
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: lines_with(second, "event=reloaded"), 5, what="event=reloaded in the new file")
    loud = uid("loud")
    d.connect(loud)
    wait_until(lambda: lines_with(second, "client=%s" % loud), 5, what="the connect in the new file")
    assert lines_with(second, "event=connect ")
    assert not lines_with(first, "client=%s" % loud)  # the old file gets nothing more
    assert not lines_with(first, "client=%s" % quiet) and not lines_with(second, "client=%s" % quiet)
    assert d.stop() == 0
    assert lines_with(second, "event=stopped") and not lines_with(first, "event=stopped")


def test_log_lines_go_to_stderr(tmp_path):
    # the default destination, as journald reads it under systemd: stderr, and nothing on stdout
    port = free_port()
    conf = tmp_path / "acemq.conf"
    conf.write_text("listener %d %s\nallow_anonymous true\nworkers 1\n" % (port, HOST))
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err, \
            acemqd_process(["-c", str(conf)], stdout=out, stderr=err, env=env) as p:
        wait_until(lambda: "event=started" in (tmp_path / "err").read_text(), 10,
                   what="event=started on stderr")
        cid = uid("e")
        with m.RawClient(HOST, port, 5) as c:
            c.connect(cid)
            c.disconnect()
        wait_until(lambda: "client=%s" % cid in (tmp_path / "err").read_text(), 5,
                   what="the connect line on stderr")
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    text = (tmp_path / "err").read_text()
    assert "event=connect " in text and "event=stopped" in text
    assert not any(mk in text for mk in SANITIZER_MARKS), text
    assert (tmp_path / "out").read_bytes() == b""


# ---- syslog ---------------------------------------------------------------------------------------

@pytest.fixture
def dev_log():
    """A datagram socket at /dev/log standing in for the syslog daemon (root, and only when
    nothing is there: a real syslog daemon's socket is never touched)."""
    if os.path.exists("/dev/log") or os.path.islink("/dev/log"):
        pytest.skip("/dev/log exists (a syslog daemon runs here): not replacing it; "
                    "log_dest syslog is not checked")
    if os.geteuid() != 0:
        pytest.skip("/dev/log is missing and only root may create a stand-in for syslog")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.bind("/dev/log")
    except OSError as e:
        s.close()
        pytest.skip("cannot bind /dev/log: %s" % e)
    try:
        yield s
    finally:
        s.close()
        try:
            os.unlink("/dev/log")
        except FileNotFoundError:
            pass


def test_log_dest_syslog(daemon_dir, dev_log):
    d = daemon_dir(["log_dest syslog"])
    d.wait_listening()
    cid = uid("sys")
    d.connect(cid)
    d.proc.send_signal(signal.SIGTERM)
    d.proc.wait(10)
    dev_log.settimeout(0.5)
    msgs = []
    while True:
        try:
            msgs.append(dev_log.recv(4096).decode(errors="replace"))
        except socket.timeout:
            break
    assert d.stop() == 0
    assert "event=started" not in d.output()  # syslog replaced stderr
    started = [x for x in msgs if "event=started" in x]
    assert started, msgs
    # <facility*8 + severity>: daemon (3) and notice (5); tag and pid; no second time stamp
    assert started[0].startswith("<29>"), started[0]
    assert "acemqd[%d]: level=notice event=started " % d.proc.pid in started[0], started[0]
    assert " ts=" not in started[0]
    conn = [x for x in msgs if "client=%s" % cid in x and "event=connect " in x]
    assert conn and conn[0].startswith("<30>"), msgs  # info
    assert any("event=stopped" in x for x in msgs), msgs


def cgroup_memory_max():
    """memory.max of this process's cgroup (v2), or 0 when unlimited or unreadable."""
    try:
        for line in open("/proc/self/cgroup"):
            if line.startswith("0::"):
                v = open("/sys/fs/cgroup%s/memory.max" % line[3:].strip()).read().strip()
                return int(v) if v.isdigit() else 0
    except OSError:
        pass
    return 0


@pytest.mark.skipif(IS_MOSQ, reason="acemqd's default")
def test_memory_limit_defaults_to_three_quarters_of_memory(make_broker1):
    """Without memory_limit the broker sheds load at 3/4 of the machine's (or its cgroup's)
    memory, before the OOM killer would end it; memory_limit 0 turns that off."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    cg = cgroup_memory_max()
    if cg and cg < total:
        total = cg
    for lines, want in (((), total // 4 * 3), (("memory_limit 0",), 0),
                        (("memory_limit 5000000",), 5000000)):
        b = make_broker1(*lines)
        m = wait_until(lambda: re.search(r"event=started .*memory_limit=(\d+)", b.log()),
                       what="the started line")
        assert int(m.group(1)) == want, (lines, m.group(0))
