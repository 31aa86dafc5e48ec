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

Then: queue limits lowered at a restart hold in the file too; the wait for the disk (an
LD_PRELOAD library that makes fdatasync and fsync 300 ms slower shows that `always` acks after
the fsync, that everysec does not wait, and that concurrent records share one fsync); the
everysec fsync deadline; damaged files; the dump tool.
"""

import collections
import os
import signal
import struct
import subprocess
import threading
import time
import zlib

import pytest

from conftest import HOST, IS_MOSQ, SANITIZER_MARKS, acemqd_path, free_port
from metricshelp import metrics_url, scrape, val
import mqttraw as M

pytestmark = pytest.mark.skipif(IS_MOSQ, reason="acemq's store")

DURABLE = [(M.SESSION_EXPIRY, 3600)]


class Daemon:
    """acemqd on a fixed port and data directory, started again after each kill. metrics=True
    adds a metrics listener (metrics_url, set by start(); fsync_count()); env adds to the daemon's
    environment."""

    def __init__(self, tmp, fsync="always", extra=(), metrics=False, env=None):
        self.tmp = str(tmp)
        self.data = os.path.join(self.tmp, "data")
        self.port = free_port()
        self.conf = os.path.join(self.tmp, "acemq.conf")
        self.logpath = os.path.join(self.tmp, "stderr.log")
        self.base = ["listener %d %s" % (self.port, HOST), "allow_anonymous true", "workers 2",
                     "persistence true", "persistence_location " + self.data, "fsync " + fsync]
        self.metrics_port = free_port() if metrics else None
        if metrics:
            self.base.append("metrics_listener %d %s" % (self.metrics_port, HOST))
        self.env = dict(os.environ, **(env or {}))
        # the queue limit would drop (and count) messages of a fast stream to a slow
        # subscriber; that is the limits' business, not persistence's
        self.configure("max_queued_messages 1000000", *extra)
        self.proc = None

    def configure(self, *extra):
        """Rewrites the configuration: the base lines, then these (for the next start)."""
        with open(self.conf, "w") as f:
            f.write("\n".join(self.base + list(extra)) + "\n")

    def start(self):
        self.logfile = open(self.logpath, "ab")
        self.proc = subprocess.Popen([acemqd_path(), "-c", self.conf], stdout=self.logfile,
                                     stderr=self.logfile, stdin=subprocess.DEVNULL,
                                     env=self.env)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "acemqd exited at start:\n" + self.log()
            try:
                with M.RawClient(HOST, self.port, 5, 1.0) as c:  # MQTT answers: store loaded
                    c.connect("probe-%d" % time.monotonic_ns())
            except (OSError, TimeoutError, M.Closed):
                time.sleep(0.05)
                continue
            if self.metrics_port:
                self.metrics_url = metrics_url(self.metrics_port)
            return self
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
        self.first_seen = {}  # payload -> monotonic time of its first delivery
        self.awaiting_rel = set()
        self.last = time.monotonic()

    def _deliver(self, payload):
        self.delivered.append(payload)
        self.first_seen.setdefault(payload, self.last)

    def run(self, c, stop):
        try:
            while not stop.is_set():
                try:
                    p = c.recv(0.2)
                except TimeoutError:
                    continue
                self.last = time.monotonic()
                if p.type == M.PUBLISH and p.qos == 1:
                    self._deliver(p.payload)
                    c.send(M.puback(p.pid))
                elif p.type == M.PUBLISH and p.qos == 2:
                    if p.pid not in self.awaiting_rel:
                        self._deliver(p.payload)
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
    """Retained message + durable subscriber + publisher stream, kill -9 in the middle, restart;
    the publisher finishes its interrupted flows (Publisher.resume). Returns (publisher,
    subscriber, resumed subscriber connection, CONNACK after restart, time of the kill)."""
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
    counts = collections.Counter(sub.delivered)
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


def test_kill9_qos2_fsync_everysec(tmp_path, daemons):
    """QoS 2 under everysec. PUBREC, PUBREL and PUBCOMP go out before their records are on
    disk, so a crash loses the records of its last moments (a kill -9: what the writer had not
    written yet, milliseconds; a machine crash: up to the last second). What that allows, and
    only within the last second before the crash: a message PUBRECed then may be lost (its
    deliveries and packet id were not written: a resent PUBREL finds nothing), and a message
    delivered to the subscriber then may be delivered again (its `sent` or `done` record was
    not written, so it goes out again, and the subscriber may have released that packet id
    already). A message acknowledged earlier is neither lost nor delivered twice. A PUBCOMP
    waits until its record is written, so no flow the publisher saw completed is still open
    after a crash of the process: the publisher resumes (a stale packet id would count against
    Receive Maximum and swallow the next message that reuses it)."""
    d = Daemon(tmp_path, "everysec")
    daemons.append(d)
    pub, sub, sc, ack, killed_at = crash_run(d, 2, stream_seconds=1.8)
    assert ack.session_present
    counts = collections.Counter(sub.delivered)
    old_missing = [p for p, t in pub.acked if p not in counts and t < killed_at - 1.0]
    assert not old_missing, "lost messages PUBRECed more than 1 s before the crash: %r" % (
        old_missing[:5],)
    old_dups = [p for p, n in counts.items() if n > 1 and sub.first_seen[p] < killed_at - 1.0]
    assert not old_dups, "delivered twice, first more than 1 s before the crash: %r" % (
        old_dups[:5],)
    assert len(pub.acked) > 100 and sum(1 for _, t in pub.acked if t < killed_at - 1.0) > 50
    check_recovered_extras(d, sc, 2)
    d.stop()


# ---------------------------------------------------------------------------------------------
# Limits at restore

def dump(d):
    """acemq-store's report on the daemon's data directory (the daemon stopped)."""
    tool = os.path.join(os.path.dirname(acemqd_path()), "acemq-store")
    assert os.path.exists(tool), "%s is missing: build it (make all)" % tool
    r = subprocess.run([tool, d.data], capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def test_lowered_queue_limit_holds_on_disk(tmp_path, daemons):
    """100 messages queued for an offline durable session, then a restart with
    max_queued_messages 10: the restore keeps the oldest 10 and writes that the others left the
    queue, so the file holds 10 too and a later restart with a higher limit brings nothing
    back."""
    d = Daemon(tmp_path, "everysec")
    daemons.append(d)
    d.start()
    with d.client() as c:
        c.connect("offline-sub", clean=True, properties=DURABLE)
        assert c.subscribe([("q/#", 1)]).codes == [1]
        c.disconnect()
    with d.client() as c:
        c.connect("filler")
        for i in range(100):
            c.publish("q/x", b"q%03d" % i, qos=1, pid=i + 1)
            assert c.recv_type(M.PUBACK).pid == i + 1
        c.disconnect()
    d.stop()
    report = dump(d)
    assert 'session "offline-sub"' in report and " queued=100 " in report
    d.configure("max_queued_messages 10")
    d.start()
    d.stop()
    assert "queued_dropped=90" in d.log()
    assert " queued=10 " in dump(d)
    d.configure("max_queued_messages 1000")
    d.start()
    got = []
    with d.client() as c:
        assert c.connect("offline-sub", clean=False, properties=DURABLE).session_present
        try:
            while True:
                p = c.recv_type(M.PUBLISH, 1.0)
                got.append(p.payload)
                c.send(M.puback(p.pid))
        except TimeoutError:
            pass
        c.disconnect()
    assert got == [b"q%03d" % i for i in range(10)]
    d.stop()


# ---------------------------------------------------------------------------------------------
# Waiting for the disk

SLOW_SYNC_C = r"""
/* fdatasync and fsync take 300 ms longer, so that the wait for the disk shows */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void slow(void)
{
    struct timespec t = {0, 300 * 1000 * 1000};
    while (nanosleep(&t, &t) != 0)
        ;
}

int fdatasync(int fd)
{
    slow();
    return (int)syscall(SYS_fdatasync, fd);
}

int fsync(int fd)
{
    slow();
    return (int)syscall(SYS_fsync, fd);
}
"""
SLOW_SYNC_S = 0.3


@pytest.fixture(scope="module")
def slow_sync(tmp_path_factory):
    """The environment that preloads the slow-sync library (built with gcc)."""
    d = tmp_path_factory.mktemp("slow-sync")
    src, lib = d / "slow_sync.c", d / "slow_sync.so"
    src.write_text(SLOW_SYNC_C)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(lib), str(src)],
                   check=True)
    asan = os.environ.get("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1:halt_on_error=1")
    # a sanitizer build wants its runtime first; the library only wraps two calls
    return {"LD_PRELOAD": str(lib), "ASAN_OPTIONS": asan + ":verify_asan_link_order=0"}


def fsync_count(d):
    """acemq_store_fsync_seconds_count from the metrics listener: fsyncs of the log so far."""
    return val(scrape(d), "acemq_store_fsync_seconds_count")


def puback_seconds(c, topic, pid):
    """Time from a retained QoS 1 PUBLISH (a record in the store) to its PUBACK."""
    t0 = time.monotonic()
    c.publish(topic, b"keep", qos=1, retain=True, pid=pid)
    assert c.recv_type(M.PUBACK, 20).pid == pid
    return time.monotonic() - t0


@pytest.mark.parametrize("policy", ["always", "everysec"])
def test_puback_waits_for_the_fsync_only_under_always(tmp_path, daemons, slow_sync, policy):
    """`fsync always`: the PUBACK is sent after the fsync of the record, which starts after the
    PUBLISH arrived and takes at least 300 ms here (a lower bound, not a speed claim). everysec:
    the PUBACK goes out at once, while the writer's fsync takes 300 ms."""
    d = Daemon(tmp_path, policy, env=slow_sync)
    daemons.append(d)
    d.start()
    with d.client(20) as c:
        c.connect("puback-" + policy)
        times = [puback_seconds(c, "w/%d" % i, i + 1) for i in range(3)]
        c.disconnect()
    if policy == "always":
        assert min(times) >= SLOW_SYNC_S, times
    else:
        assert min(times) < SLOW_SYNC_S / 2, times
    d.stop()


def test_fsync_always_group_commit(tmp_path, daemons, slow_sync):
    """32 clients each publish one retained QoS 1 message at the same moment under `fsync
    always`. The records that arrive while an fsync runs (300 ms here) share the next one, so
    the fsync count rises by far less than 32; one fsync per message would be 32 (and ~10 s)."""
    d = Daemon(tmp_path, "always", metrics=True, env=slow_sync)
    daemons.append(d)
    d.start()
    clients = []
    for i in range(32):
        c = d.client(20)
        c.connect("group-%d" % i)
        clients.append(c)
    n0 = fsync_count(d)
    for i, c in enumerate(clients):
        c.publish("g/%d" % i, b"keep", qos=1, retain=True, pid=1)
    for c in clients:
        assert c.recv_type(M.PUBACK, 20).pid == 1
        c.close()
    rose = fsync_count(d) - n0
    assert 1 <= rose <= 8, "%d fsyncs for 32 concurrent messages" % rose
    d.stop()


def test_everysec_fsyncs_within_a_second_of_the_last_fsync(tmp_path, daemons):
    """everysec: what is written after an fsync is fsynced one second after that fsync, however
    the writer's rounds fall. Records land just after an fsync and again 0.8 s later (a round
    that, if the writer counted its second from its last round, would put the fsync off to
    1.8 s); the next fsync must follow the first within 1.5 s (1 s, plus room for a slow
    machine)."""
    d = Daemon(tmp_path, "everysec", metrics=True)
    daemons.append(d)
    d.start()

    def fsync_after(n, deadline):
        while time.monotonic() < deadline:
            v = fsync_count(d)
            if v > n:
                return v, time.monotonic()
            time.sleep(0.02)
        return None, None

    with d.client() as c:
        c.connect("everysec")
        n0 = fsync_count(d)
        puback_seconds(c, "e/1", 1)
        n1, t1 = fsync_after(n0, time.monotonic() + 5)
        assert n1 is not None, "a retained message not fsynced within 5 s"
        puback_seconds(c, "e/2", 2)
        time.sleep(max(0.0, t1 + 0.8 - time.monotonic()))
        puback_seconds(c, "e/3", 3)
        n2, _ = fsync_after(n1, t1 + 1.5)
        assert n2 is not None, "records written after an fsync not fsynced 1.5 s after it"
        c.disconnect()
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


def record_offsets(path):
    """Where each record of a store file starts (framing only: magic, type, u32 length, CRC)."""
    with open(path, "rb") as f:
        data = f.read()
    offsets, off = [], 16
    while off < len(data):
        assert data[off] == 0xA7, "no record at offset %d" % off
        offsets.append(off)
        off += struct.unpack_from("<I", data, off + 2)[0] + 10
    assert off == len(data)
    return offsets


def test_truncated_last_record_is_cut(tmp_path, daemons):
    d, path = make_store(tmp_path)
    daemons.append(d)
    size = os.path.getsize(path)
    last = record_offsets(path)[-1]  # r/last
    os.truncate(path, size - 3)
    d.start()
    assert "event=store_torn_tail" in d.log()
    assert "offset=%d dropped_bytes=%d " % (last, size - 3 - last) in d.log()
    assert os.path.getsize(path) == last  # cut at the end of the last whole record
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
    assert path in out and "offset 0: not an acemq store (bad magic)" in out


def test_dump_tool(tmp_path, daemons):
    d, path = make_store(tmp_path)
    daemons.append(d)
    r = subprocess.run([acemqd_path(), "--dump-store", d.data], capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    for out in (dump(d), r.stdout.decode()):  # build/acemq-store must exist
        assert 'session "keeper"' in out and 'subscription "k/#"' in out
        assert 'retained "r/last"' in out and "records:" in out and "size:" in out
