"""Persistence (docs/persistence.md): what survives a crash (kill -9) and a restart, and what the
daemon does with damaged store files.

The crash tests run a publisher and a durable subscriber (clean start 0, Session Expiry > 0)
while the daemon is killed with SIGKILL, start it again on the same data directory, and check
the promise of each QoS against what the publisher saw acknowledged:
- QoS 1, `fsync always`: every PUBACKed message reaches the subscriber (at least once);
- QoS 2, `fsync always`: every PUBRECed message reaches it exactly once, including messages that
  were in flight to the subscriber when the daemon died (the subscriber keeps its QoS 2 packet
  ids until PUBREL, as the spec asks of a receiver);
- `everysec`: an acknowledgement may be sent before its record is written and fsynced, so a crash
  of the machine may lose up to the last second of acknowledged messages. A kill -9 keeps what
  the writer thread already handed to the kernel; what it had not written yet (a few
  milliseconds) may be lost. The test allows losses only in the last second before the kill.
Retained messages and subscriptions must be back, and the durable session resumes with
Session Present = 1.
"""

import os
import signal
import struct
import subprocess
import threading
import time
import zlib

import pytest

from conftest import HOST, IS_MOSQ, SANITIZER_MARKS, acemqd_path, free_port
import mqttraw as M

pytestmark = pytest.mark.skipif(IS_MOSQ, reason="acemq's store")

DURABLE = [(M.SESSION_EXPIRY, 3600)]


class Daemon:
    """acemqd on a fixed port and data directory, started again after each kill."""

    def __init__(self, tmp, fsync="always", extra=()):
        self.tmp = str(tmp)
        self.data = os.path.join(self.tmp, "data")
        self.port = free_port()
        self.conf = os.path.join(self.tmp, "acemq.conf")
        self.logpath = os.path.join(self.tmp, "stderr.log")
        lines = ["listener %d %s" % (self.port, HOST), "allow_anonymous true", "workers 2",
                 "persistence true", "persistence_location " + self.data, "fsync " + fsync,
                 # the queue limit would drop (and count) messages of a fast stream to a slow
                 # subscriber; that is the limits' business, not persistence's
                 "max_queued_messages 1000000"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines + list(extra)) + "\n")
        self.proc = None

    def start(self):
        self.logfile = open(self.logpath, "ab")
        self.proc = subprocess.Popen([acemqd_path(), "-c", self.conf], stdout=self.logfile,
                                     stderr=self.logfile, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "acemqd exited at start:\n" + self.log()
            try:
                with M.RawClient(HOST, self.port, 5, 1.0) as c:  # MQTT answers: store loaded
                    c.connect("probe-%d" % time.monotonic_ns())
                return self
            except (OSError, TimeoutError, M.Closed):
                time.sleep(0.05)
        raise AssertionError("acemqd not serving:\n" + self.log())

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.logfile.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(10)
        self.logfile.close()
        text = self.log()
        assert rc == 0, "exit %s:\n%s" % (rc, text[-3000:])
        assert not any(m in text for m in SANITIZER_MARKS), text[-6000:]

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def client(self, timeout=5.0):
        return M.RawClient(HOST, self.port, 5, timeout)


@pytest.fixture
def daemons():
    made = []
    yield made
    for d in made:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


class Publisher:
    """Pipelined QoS 1/2 publisher that remembers what the broker acknowledged, and when."""

    WINDOW = 16

    def __init__(self, qos, topic):
        self.qos, self.topic = qos, topic
        self.n = 0
        self.next_pid = 1
        self.unacked = {}   # pid -> payload: PUBLISH sent, no PUBACK / PUBREC yet
        self.released = {}  # pid -> payload: QoS 2 PUBREL sent, no PUBCOMP yet
        self.acked = []     # (payload, monotonic time of the acknowledgement)

    def _pid(self):
        while True:
            pid = self.next_pid
            self.next_pid = pid % 65535 + 1
            if pid not in self.unacked and pid not in self.released:
                return pid

    def _publish_next(self, c):
        pid = self._pid()
        payload = b"m%06d" % self.n
        self.n += 1
        self.unacked[pid] = payload
        c.publish(self.topic, payload, qos=self.qos, pid=pid)

    def _handle(self, c, p):
        if p.type in (M.PUBACK, M.PUBREC) and p.pid in self.unacked:
            payload = self.unacked.pop(p.pid)
            assert p.rc < 0x80, "refused: %r" % p
            self.acked.append((payload, time.monotonic()))
            if p.type == M.PUBREC:
                self.released[p.pid] = payload
                c.send(M.pubrel(p.pid))
        elif p.type == M.PUBCOMP:
            self.released.pop(p.pid, None)

    def stream(self, c, stop):
        """Publishes until stop is set or the connection breaks."""
        try:
            while not stop.is_set():
                while len(self.unacked) + len(self.released) < self.WINDOW:
                    self._publish_next(c)
                self._handle(c, c.recv(2.0))
        except (M.Closed, OSError, TimeoutError):
            pass

    def resume(self, c, timeout=10.0):
        """After a restart: finishes every flow the crash interrupted (QoS 2: DUP PUBLISH for
        what was never PUBRECed, PUBREL for the rest), as a client with a session does."""
        for pid, payload in self.unacked.items():
            c.publish(self.topic, payload, qos=self.qos, pid=pid, dup=True)
        for pid in self.released:
            c.send(M.pubrel(pid))
        deadline = time.monotonic() + timeout
        while (self.unacked or self.released) and time.monotonic() < deadline:
            self._handle(c, c.recv(timeout))
        assert not self.unacked and not self.released


class Subscriber:
    """A durable subscriber that acknowledges like a QoS client should: a QoS 2 packet id is
    remembered from PUBLISH to PUBREL (across reconnects), so a resent PUBLISH is not delivered
    to the application twice."""

    def __init__(self):
        self.delivered = []
        self.awaiting_rel = set()
        self.last = time.monotonic()

    def run(self, c, stop):
        try:
            while not stop.is_set():
                try:
                    p = c.recv(0.2)
                except TimeoutError:
                    continue
                self.last = time.monotonic()
                if p.type == M.PUBLISH and p.qos == 1:
                    self.delivered.append(p.payload)
                    c.send(M.puback(p.pid))
                elif p.type == M.PUBLISH and p.qos == 2:
                    if p.pid not in self.awaiting_rel:
                        self.delivered.append(p.payload)
                        self.awaiting_rel.add(p.pid)
                    c.send(M.pubrec(p.pid))
                elif p.type == M.PUBREL:
                    self.awaiting_rel.discard(p.pid)
                    c.send(M.pubcomp(p.pid))
        except (M.Closed, OSError):
            pass

    def connect(self, d, clean):
        c = d.client()
        ack = c.connect("durable-sub", clean=clean,
                        properties=DURABLE + [(M.RECEIVE_MAXIMUM, 20)])
        return c, ack


def start_thread(fn, *args):
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


def crash_run(d, qos, stream_seconds=0.8):
    """Retained message + durable subscriber + publisher stream, kill -9 in the middle, restart.
    Returns (publisher, subscriber, resumed subscriber connection, CONNACK after restart)."""
    d.start()
    with d.client() as c:
        c.connect("retainer")
        c.publish("keep/me", b"retained-before-crash", qos=1, retain=True, pid=1)
        assert c.recv_type(M.PUBACK).pid == 1
        c.disconnect()
    sub = Subscriber()
    sc, ack = sub.connect(d, clean=True)
    assert not ack.session_present
    assert sc.subscribe([("s/#", qos)]).codes == [qos]
    pub = Publisher(qos, "s/x")
    pc = d.client()
    pc.connect("durable-pub", clean=True, properties=DURABLE)
    stop = threading.Event()
    ts = start_thread(sub.run, sc, stop)
    tp = start_thread(pub.stream, pc, stop)
    time.sleep(stream_seconds)
    killed_at = time.monotonic()
    d.kill9()
    tp.join(5)
    ts.join(5)
    sc.close()
    pc.close()
    assert len(pub.acked) > 50, "the stream barely started: %d acked" % len(pub.acked)

    d.start()
    sc, ack = sub.connect(d, clean=False)
    stop = threading.Event()
    ts = start_thread(sub.run, sc, stop)
    pc = d.client()
    assert pc.connect("durable-pub", clean=False, properties=DURABLE).session_present
    pub.resume(pc)
    pc.disconnect()
    while time.monotonic() - sub.last < 1.0:  # until the queue is drained
        time.sleep(0.1)
    stop.set()
    ts.join(5)
    return pub, sub, sc, ack, killed_at


def check_recovered_extras(d, sc, qos):
    """Retained message and subscription are back."""
    with d.client() as c:
        c.connect("late-reader")
        c.subscribe([("keep/#", 1)])
        p = c.recv_type(M.PUBLISH)
        assert p.payload == b"retained-before-crash" and p.retain
        c.publish("s/x", b"after-restart", qos=1, pid=9)
    got = []
    while True:
        p = sc.recv(5)
        if p.type == M.PUBLISH:
            got.append(p.payload)
            sc.send(M.puback(p.pid) if p.qos == 1 else M.pubrec(p.pid))
            if p.payload == b"after-restart":
                break
    sc.disconnect()


def test_kill9_qos1_fsync_always(tmp_path, daemons):
    d = Daemon(tmp_path, "always")
    daemons.append(d)
    pub, sub, sc, ack, _ = crash_run(d, 1)
    assert ack.session_present, "the durable session did not survive"
    got = set(sub.delivered)
    missing = [p for p, _ in pub.acked if p not in got]
    assert not missing, "%d of %d acknowledged messages lost, first %r" % (
        len(missing), len(pub.acked), missing[:5])
    check_recovered_extras(d, sc, 1)
    d.stop()


def test_kill9_qos2_fsync_always_exactly_once(tmp_path, daemons):
    d = Daemon(tmp_path, "always")
    daemons.append(d)
    pub, sub, sc, ack, _ = crash_run(d, 2)
    assert ack.session_present
    counts = {}
    for p in sub.delivered:
        counts[p] = counts.get(p, 0) + 1
    dups = {p: n for p, n in counts.items() if n > 1}
    assert not dups, "delivered more than once: %r" % list(dups.items())[:5]
    missing = [p for p, _ in pub.acked if p not in counts]
    assert not missing, "%d PUBRECed messages lost: %r" % (len(missing), missing[:5])
    # the publisher finished every interrupted flow, so everything it sent arrived once
    assert len(counts) == pub.n
    check_recovered_extras(d, sc, 2)
    d.stop()


def test_kill9_qos1_fsync_everysec(tmp_path, daemons):
    """everysec may lose the acknowledged messages of the last second before a crash of the
    machine (with a kill -9 only those the writer had not written yet); nothing older."""
    d = Daemon(tmp_path, "everysec")
    daemons.append(d)
    pub, sub, sc, ack, killed_at = crash_run(d, 1, stream_seconds=1.8)
    assert ack.session_present
    got = set(sub.delivered)
    old_missing = [p for p, t in pub.acked if p not in got and t < killed_at - 1.0]
    assert not old_missing, "lost messages acknowledged more than 1 s before the crash: %r" % (
        old_missing[:5],)
    check_recovered_extras(d, sc, 1)
    d.stop()


# ---------------------------------------------------------------------------------------------
# Damaged files

def make_store(tmp_path):
    """A store holding a durable session with a subscription and two retained messages, the
    second one written last."""
    d = Daemon(tmp_path, "always")
    d.start()
    with d.client() as c:
        c.connect("keeper", clean=True, properties=DURABLE)
        c.subscribe([("k/#", 1)])
        c.disconnect()
    with d.client() as c:
        c.connect("retainer")
        c.publish("r/first", b"one", qos=1, retain=True, pid=1)
        c.recv_type(M.PUBACK)
        time.sleep(0.1)
        c.publish("r/last", b"two", qos=1, retain=True, pid=2)
        c.recv_type(M.PUBACK)
        c.disconnect()
    time.sleep(0.1)
    d.kill9()  # a SIGTERM would write more; the last record must be r/last
    return d, os.path.join(d.data, "acemq.db")


def retained_topics(d):
    with d.client() as c:
        c.connect("reader")
        c.subscribe([("r/#", 0)])
        topics = []
        try:
            while True:
                topics.append(c.recv_type(M.PUBLISH, 0.5).topic)
        except TimeoutError:
            return sorted(topics)


def run_refused(d):
    r = subprocess.run([acemqd_path(), "-c", d.conf], capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def test_truncated_last_record_is_cut(tmp_path, daemons):
    d, path = make_store(tmp_path)
    daemons.append(d)
    size = os.path.getsize(path)
    os.truncate(path, size - 3)
    d.start()
    assert "event=store_torn_tail" in d.log() and "dropped_bytes=" in d.log()
    assert retained_topics(d) == ["r/first"]  # the torn r/last is gone, nothing else
    with d.client() as c:
        assert c.connect("keeper", clean=False, properties=DURABLE).session_present
        c.disconnect()
    d.stop()
    assert os.path.getsize(path) > 16


def test_bad_checksum_on_last_record_is_cut(tmp_path, daemons):
    d, path = make_store(tmp_path)
    daemons.append(d)
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        b = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([b[0] ^ 0x55]))
    d.start()
    m = [l for l in d.log().splitlines() if "store_torn_tail" in l]
    assert m and "dropped_bytes=" in m[0]
    assert retained_topics(d) == ["r/first"]
    d.stop()


def test_bad_checksum_in_the_middle_refuses_to_start(tmp_path, daemons):
    d, path = make_store(tmp_path)
    daemons.append(d)
    with open(path, "r+b") as f:
        f.seek(16 + 8)  # inside the first record's payload
        b = f.read(1)
        f.seek(16 + 8)
        f.write(bytes([b[0] ^ 0xFF]))
    rc, out = run_refused(d)
    assert rc == 1
    assert path in out and "offset 16:" in out and "refusing" in out


def test_wrong_version_refuses_to_start(tmp_path, daemons):
    d, path = make_store(tmp_path)
    daemons.append(d)
    with open(path, "r+b") as f:
        head = bytearray(f.read(16))
        head[8:12] = struct.pack("<I", 2)
        head[12:16] = struct.pack("<I", zlib.crc32(bytes(head[:12])))
        f.seek(0)
        f.write(head)
    rc, out = run_refused(d)
    assert rc == 1
    assert path in out and "offset 8" in out and "version 2" in out


def test_garbage_file_refuses_to_start(tmp_path, daemons):
    d = Daemon(tmp_path, "always")
    daemons.append(d)
    os.makedirs(d.data)
    path = os.path.join(d.data, "acemq.db")
    with open(path, "wb") as f:
        f.write(os.urandom(4096))
    rc, out = run_refused(d)
    assert rc == 1
    assert path in out and "offset 0" in out


def test_dump_tool(tmp_path, daemons):
    d, path = make_store(tmp_path)
    daemons.append(d)
    tool = os.path.join(os.path.dirname(acemqd_path()), "acemq-store")
    for cmd in ([tool, d.data], [acemqd_path(), "--dump-store", d.data]):
        if not os.path.exists(cmd[0]):
            continue
        r = subprocess.run(cmd, capture_output=True, timeout=10)
        out = r.stdout.decode()
        assert r.returncode == 0, r.stderr
        assert 'session "keeper"' in out and 'subscription "k/#"' in out
        assert 'retained "r/last"' in out and "records:" in out and "size:" in out
