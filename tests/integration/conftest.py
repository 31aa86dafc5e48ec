"""Fixtures of the integration suite: a real broker on a free port, and clients to talk to it; also
brokers with ACE on (ace_env) and the TLS test PKI (pki, made by tlshelp.py).

The broker is acemqd ($ACEMQD, or $ACEMQ_BUILD/acemqd, or build/acemqd) unless ACEMQ_BROKER=mosquitto,
which runs /usr/sbin/mosquitto with the same configuration (acemq-only directives dropped) so that every
expectation here can be checked against a broker that is known to work. Tests that cover behaviour
mosquitto lacks, or where it departs from the MQTT spec, are marked `acemq_only` / `mosquitto_deviation`.
"""

import contextlib
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions
import pytest

import mqttraw
from acehelpers import AS_URI, AUD, Env, Issuer, make_cert
from tlshelp import pki  # noqa: F401 (a fixture, registered here for every module)

BROKER = os.environ.get("ACEMQ_BROKER", "acemqd")
IS_MOSQ = BROKER == "mosquitto"
HOST = "127.0.0.1"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Directives that mosquitto does not know; dropped from the config when running against it.
ACEMQ_ONLY_KEYS = {"workers", "connect_timeout"}

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def acemqd_path():
    if os.environ.get("ACEMQD"):
        return os.environ["ACEMQD"]
    build = os.environ.get("ACEMQ_BUILD", os.path.join(ROOT, "build"))
    return os.path.join(build, "acemqd")


def broker_binary():
    return "/usr/sbin/mosquitto" if IS_MOSQ else acemqd_path()


acemq_only = pytest.mark.skipif(IS_MOSQ, reason="acemq behaviour, not mosquitto's")


def mosquitto_deviation(why):
    """Skip on mosquitto where it departs from the spec or from acemq's documented behaviour."""
    return pytest.mark.skipif(IS_MOSQ, reason="mosquitto deviation: " + why)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def connectable(port, host=HOST):
    """True if a TCP connection to host:port is accepted now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def acemqd_process(args, **popen_kw):
    """acemqd started with args (stdin closed); killed when the block leaves it running (a test
    that failed before stopping it)."""
    p = subprocess.Popen([acemqd_path()] + list(args), stdin=subprocess.DEVNULL, **popen_kw)
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def wait_until(cond, timeout=5.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def uid(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


class Broker:
    """One broker process. host, port, proc; log() returns its stderr so far."""

    def __init__(self, lines=(), workers=1, whole_file=None, port=None):
        """whole_file: the config's lines as they are (for directives that must come before the
        first listener); port is then the listener the broker is waited on."""
        self.dir = tempfile.mkdtemp(prefix="acemq-it-")
        self.host = HOST
        self.port = port or free_port()
        self.workers = workers
        self.stopped_by_test = False  # a test that stops the broker itself and checks exit 0
        self.conf = os.path.join(self.dir, "broker.conf")
        self.logpath = os.path.join(self.dir, "stderr.log")
        cfg = list(whole_file) if whole_file is not None else self._config(lines, workers)
        with open(self.conf, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.logfile = open(self.logpath, "wb")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1:halt_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        self.proc = subprocess.Popen([broker_binary(), "-c", self.conf], stdout=self.logfile,
                                     stderr=subprocess.STDOUT if IS_MOSQ else self.logfile,
                                     stdin=subprocess.DEVNULL, env=env)
        self._wait_listening()

    def _config(self, lines, workers):
        cfg = ["listener %d %s" % (self.port, HOST), "allow_anonymous true", "log_dest stderr"]
        if not IS_MOSQ:
            cfg.append("workers %d" % workers)
        keys = {l.split()[0] for l in lines if l.strip()}
        if "allow_anonymous" in keys:
            cfg.remove("allow_anonymous true")
        for line in lines:
            if IS_MOSQ and line.split()[0] in ACEMQ_ONLY_KEYS:
                continue
            cfg.append(line)
        if IS_MOSQ:
            cfg.append("log_type all" if "log_type" not in keys else "")
        return cfg

    def _wait_listening(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("broker exited with %s at start:\n%s"
                                     % (self.proc.returncode, self.log()))
            if connectable(self.port, self.host):
                return
            time.sleep(0.02)
        raise AssertionError("broker not listening on %d after %.0fs:\n%s"
                             % (self.port, timeout, self.log()))

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """Stop the broker; returns a failure message or None."""
        problems = []
        if self.proc.poll() is not None:
            if not (self.stopped_by_test and self.proc.returncode == 0):
                problems.append("broker died during the test (exit %s)" % self.proc.returncode)
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("broker ignored SIGTERM for 5 s")
        self.logfile.close()
        text = self.log()
        if any(m in text for m in SANITIZER_MARKS):
            problems.append("sanitizer report")
        if problems:
            return "%s:\n%s" % ("; ".join(problems), text[-6000:])
        shutil.rmtree(self.dir, ignore_errors=True)
        return None

    # Conveniences used by most tests.
    def raw(self, version=5, timeout=5.0):
        return mqttraw.RawClient(self.host, self.port, version, timeout)

    def client(self, client_id=None, protocol=5, **kw):
        return Client(self, client_id, protocol, **kw)


class BrokerFactory:
    def __init__(self, workers=1):
        self.workers = workers
        self.brokers = []

    def __call__(self, *lines, workers=None):
        b = Broker(lines, workers or self.workers)
        self.brokers.append(b)
        return b

    def close(self):
        failures = [f for f in (b.stop() for b in self.brokers) if f]
        self.brokers = []
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)


WORKER_PARAMS = [1] if IS_MOSQ else [1, 2]


@pytest.fixture(params=WORKER_PARAMS, ids=lambda w: "w%d" % w)
def workers(request):
    return request.param


@pytest.fixture
def make_broker(workers):
    """Start a broker with extra config lines: make_broker("max_queued_messages 5")."""
    f = BrokerFactory(workers)
    yield f
    f.close()


@pytest.fixture
def make_broker1():
    """Like make_broker, single worker only (tests not worth running twice)."""
    f = BrokerFactory(1)
    yield f
    f.close()


@pytest.fixture
def broker(make_broker):
    """A default broker, once per worker count."""
    return make_broker()


@pytest.fixture
def broker1(make_broker1):
    return make_broker1()


@pytest.fixture(scope="module")
def module_broker():
    """One broker shared by a whole module (hostile tests check it still serves after each case)."""
    f = BrokerFactory(2 if not IS_MOSQ else 1)
    b = f()
    yield b
    f.close()


def assert_serves(b, timeout=5.0):
    """The broker is alive and a fresh client can subscribe, publish and receive."""
    assert b.alive(), "broker died:\n" + b.log()[-4000:]
    topic = uid("alive")
    with b.raw(5, timeout) as c:
        c.connect(uid("probe"))
        ack = c.subscribe([(topic, 1)])
        assert ack.codes == [1]
        c.publish(topic, b"ping", qos=1, pid=7)
        got = {}
        for _ in range(2):
            p = c.recv(timeout)
            got[p.type] = p
        assert got[mqttraw.PUBACK].pid == 7
        assert got[mqttraw.PUBLISH].payload == b"ping"
        c.disconnect()


# ---------------------------------------------------------------------------------------------
# paho-mqtt wrapper: connect/subscribe/publish that wait for their acknowledgement.

PROTO = {5: mqtt.MQTTv5, 4: mqtt.MQTTv311, 3: mqtt.MQTTv31}


def props(packet_type, **kw):
    """Properties(packet_type) with attributes set: props(PacketTypes.PUBLISH, ContentType='x')."""
    p = Properties(packet_type)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


class Client:
    """A paho client with a background loop, messages collected in a queue."""

    def __init__(self, b, client_id=None, protocol=5, clean=True, keepalive=60, properties=None,
                 will=None, username=None, password=None, connect=True, expect_rc=0):
        self.b = b
        self.protocol = protocol
        self.client_id = client_id if client_id is not None else uid("paho")
        kw = {}
        if protocol != 5:
            kw["clean_session"] = clean
        self.c = mqtt.Client(client_id=self.client_id, protocol=PROTO[protocol], **kw)
        self.messages = queue.Queue()
        self.connack = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.disconnect_rc = None
        self.acks = {}
        self.ack_cv = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = self._on_ack
        self.c.on_unsubscribe = self._on_ack
        if will is not None:
            self.c.will_set(**will)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.clean = clean
        self.keepalive = keepalive
        self.properties = properties
        if connect:
            self.connect(expect_rc)

    def _on_connect(self, c, u, flags, rc, properties=None):
        self.connack = (flags, rc, properties)
        self.connected.set()

    def _on_disconnect(self, c, u, rc, properties=None):
        self.disconnect_rc = rc
        # Never let paho reconnect behind the test's back.
        c._thread_terminate = True
        self.disconnected.set()

    def _on_ack(self, c, u, mid, *rest):
        with self.ack_cv:
            self.acks[mid] = rest
            self.ack_cv.notify_all()

    def connect(self, expect_rc=0, timeout=5.0):
        kw = {}
        if self.protocol == 5:
            kw["clean_start"] = self.clean
            kw["properties"] = self.properties
        self.c.connect(self.b.host, self.b.port, self.keepalive, **kw)
        self.c.loop_start()
        assert self.connected.wait(timeout), "no CONNACK"
        rc = self.connack[1]
        rc = rc.value if hasattr(rc, "value") else rc
        if expect_rc is not None:
            assert rc == expect_rc, "CONNACK rc %r" % (self.connack,)
        return self.connack

    @property
    def session_present(self):
        return bool(self.connack[0]["session present"])

    @property
    def connack_props(self):
        return self.connack[2]

    def _wait_ack(self, mid, timeout=5.0):
        with self.ack_cv:
            assert self.ack_cv.wait_for(lambda: mid in self.acks, timeout), "no ack for %d" % mid
            return self.acks.pop(mid)

    def subscribe(self, topic, qos=0, options=None, properties=None, timeout=5.0):
        """Returns the list of granted QoS / reason codes (as ints)."""
        if self.protocol == 5:
            opts = options or SubscribeOptions(qos=qos)
            rc, mid = self.c.subscribe(topic, options=opts, properties=properties)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        ack = self._wait_ack(mid, timeout)
        codes = ack[0]
        return [getattr(x, "value", x) for x in codes]

    def unsubscribe(self, topic, properties=None, timeout=5.0):
        if self.protocol == 5:
            rc, mid = self.c.unsubscribe(topic, properties=properties)
        else:
            rc, mid = self.c.unsubscribe(topic)
        return self._wait_ack(mid, timeout)

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None, timeout=5.0):
        info = self.c.publish(topic, payload, qos, retain, properties=properties)
        info.wait_for_publish(timeout)
        assert info.is_published(), "publish not acknowledged"
        return info

    def get(self, timeout=5.0):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no message within %.1fs" % timeout)

    def get_n(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            left = deadline - time.monotonic()
            try:
                out.append(self.messages.get(timeout=max(left, 0.001)))
            except queue.Empty:
                raise AssertionError("got %d of %d messages: %r"
                                     % (len(out), n, [m.payload for m in out]))
        return out

    def drain(self, timeout):
        """All messages that arrive within timeout (waits the whole time)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                return out

    def no_message(self, timeout=0.5):
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError("unexpected message %s %r" % (m.topic, m.payload))

    def disconnect(self, properties=None):
        if self.protocol == 5:
            self.c.disconnect(properties=properties)
        else:
            self.c.disconnect()
        self.disconnected.wait(3)
        self.c.loop_stop()

    def _wake_loop(self):
        """Ask the network thread to stop and wake it from its 1 s select."""
        self.c._thread_terminate = True
        try:
            self.c._sockpairW.send(b"0")
        except Exception:
            pass

    def kill(self):
        """Drop the TCP connection without DISCONNECT (an unexpected disconnect)."""
        self._wake_loop()
        self.c.loop_stop()
        s = self.c.socket()
        if s:
            s.close()

    def close(self):
        try:
            self._wake_loop()
            self.c.loop_stop()
            s = self.c.socket()
            if s:
                s.close()
        except Exception:
            pass


@pytest.fixture
def clients():
    """Clients made through this list are closed at the end of the test."""
    made = []

    class Maker:
        def __call__(self, b, client_id=None, protocol=5, connect=True, expect_rc=0, **kw):
            c = Client(b, client_id, protocol, connect=False, **kw)
            made.append(c)
            if connect:
                c.connect(expect_rc)
            return c

    yield Maker()
    for c in made:
        c._wake_loop()
    for c in made:
        c.close()


@pytest.fixture
def raws():
    """Raw clients made through this are closed at the end of the test."""
    made = []

    def make(b, version=5, timeout=5.0):
        c = b.raw(version, timeout)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


# ---------------------------------------------------------------------------------------------
# mosquitto_pub / mosquitto_sub

def mosquitto_pub(b, *args, timeout=10):
    r = subprocess.run(["mosquitto_pub", "-h", b.host, "-p", str(b.port)] + list(args),
                       capture_output=True, timeout=timeout)
    return r


def mosquitto_sub_start(b, *args):
    return subprocess.Popen(["mosquitto_sub", "-h", b.host, "-p", str(b.port)] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


# ---------------------------------------------------------------------------------------------
# ACE brokers (tokens, keys and TLS sessions: acehelpers.py; the client's side: acetestenv.py)

@pytest.fixture
def ace_env(make_broker1, tmp_path):
    """ace_env(global_lines, tls_lines, issuer_kind, workers, issuer) starts a broker with ACE on:
    the issuer (a new one in tmp_path unless given), audience AUD, AS hint AS_URI, no clock skew,
    public/# open to anyone, and a TLS listener on b.tls_port with a self-signed certificate and
    tls_lines. Returns an acehelpers.Env."""
    def start(global_lines=(), tls_lines=(), issuer_kind="es256", workers=1, issuer=None):
        d = str(tmp_path)
        iss = issuer or Issuer(d, "as1", issuer_kind)
        crt, key = make_cert(d)
        tport = free_port()
        b = make_broker1("ace_audience " + AUD, iss.config(), "ace_clock_skew 0",
                         "ace_as_hint " + AS_URI, "ace_public_topic public/# pubsub",
                         *global_lines, "listener %d 127.0.0.1" % tport, "certfile " + crt,
                         "keyfile " + key, *tls_lines, workers=workers)
        b.tls_port = tport
        wait_until(lambda: connectable(tport, b.host) or not b.alive(), what="TLS listener")
        assert b.alive(), b.log()
        return Env(b, iss, d)

    return start
