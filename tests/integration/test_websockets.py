"""MQTT over WebSockets: MQTT.js (the `mqtt` npm package, run by node) over ws:// and wss://, across
transports with paho over TCP, a page in headless Chromium, and the RFC 6455 rules spoken raw."""

import base64
import functools
import hashlib
import http.server
import json
import os
import queue
import shutil
import struct
import subprocess
import tempfile
import threading

import pytest

from conftest import HOST, ROOT, acemq_only, uid
import mqttraw as m
from wshelp import GUID, KEY, RawWS, frame, upgrade_request, ws_broker

pytestmark = acemq_only

NODE_DIR = os.path.join(ROOT, "build", "node")
MQTTJS = os.path.join(NODE_DIR, "node_modules", "mqtt")
PAGE_DIR = os.path.join(os.path.dirname(__file__), "ws_page")

# One MQTT.js client: `sub` prints READY once subscribed, then one JSON line per message, and ends
# after `count` messages; `pub` publishes `count` messages and ends.
NODE_CLIENT = r"""
const fs = require('fs');
const mqtt = require(process.env.MQTTJS);
const [mode, url, topic, count, qos, version, prefix] = process.argv.slice(2);
const opts = {protocolVersion: +version, reconnectPeriod: 0, connectTimeout: 5000,
              clientId: 'js-' + mode + '-' + Math.random().toString(16).slice(2)};
if (process.env.CA) opts.ca = [fs.readFileSync(process.env.CA)];
// synchronous writes: process.exit() would cut off what is still queued on a pipe
const say = (line) => {
  const b = Buffer.from(line + '\n');
  for (let off = 0; off < b.length;) {
    try { off += fs.writeSync(1, b, off); } catch (e) { if (e.code !== 'EAGAIN') throw e; }
  }
};
const c = mqtt.connect(url, opts);
const done = (code) => c.end(false, () => process.exit(code));
setTimeout(() => { say('TIMEOUT'); process.exit(3); }, 15000);
c.on('error', (e) => { say('ERR ' + e.message); process.exit(2); });
let got = 0;
c.on('message', (t, p, packet) => {
  say(JSON.stringify({topic: t, payload: p.toString('base64'), qos: packet.qos}));
  if (++got === +count) done(0);
});
c.on('connect', async () => {
  if (mode === 'sub') {
    c.subscribe(topic, {qos: +qos}, (err) => { if (err) process.exit(4); say('READY'); });
    return;
  }
  for (let i = 0; i < +count; i++) {
    const body = i === 1 ? Buffer.alloc(100000, i) : Buffer.from(prefix + '-' + i);
    await c.publishAsync(topic, body, {qos: +qos});
  }
  done(0);
});
"""


def payload_of(prefix, i):
    return bytes([i]) * 100000 if i == 1 else ("%s-%d" % (prefix, i)).encode()


@pytest.fixture(scope="module")
def mqttjs():
    """Path of the node script; MQTT.js is installed with npm under build/node/ when missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm not installed (tools/install-deps.sh installs Debian's nodejs/npm)")
    if not os.path.exists(os.path.join(MQTTJS, "package.json")):
        os.makedirs(NODE_DIR, exist_ok=True)
        r = subprocess.run([npm, "install", "--prefix", NODE_DIR, "--no-audit", "--no-fund",
                            "--loglevel=error", "mqtt@5"], capture_output=True, timeout=600)
        if r.returncode != 0:
            pytest.skip("npm could not install the mqtt package: %s" % r.stderr.decode()[-500:])
    d = tempfile.mkdtemp(prefix="acemq-mqttjs-")
    script = os.path.join(d, "client.js")
    with open(script, "w") as f:
        f.write(NODE_CLIENT)
    yield script
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def certs():
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI; it is its own CA."""
    d = tempfile.mkdtemp(prefix="acemq-wss-")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    yield cert, key
    shutil.rmtree(d, ignore_errors=True)


class Node:
    """One running MQTT.js client; lines of its stdout arrive in a queue."""

    def __init__(self, script, mode, url, topic, count, qos=1, version=5, prefix="p", ca=None):
        env = dict(os.environ, MQTTJS=MQTTJS)
        if ca:
            env["CA"] = ca
        self.proc = subprocess.Popen(["node", script, mode, url, topic, str(count), str(qos),
                                      str(version), prefix], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.decode().rstrip("\n"))
        self.lines.put(None)

    def line(self, timeout=15.0):
        try:
            ln = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("node said nothing for %.0fs" % timeout)
        assert ln is not None, "node ended early (exit %s)" % self.proc.wait()
        return ln

    def wait_ready(self):
        ln = self.line()
        assert ln == "READY", ln

    def messages(self, n):
        out = []
        while len(out) < n:
            ln = self.line()
            assert ln.startswith("{"), ln
            j = json.loads(ln)
            out.append((j["topic"], base64.b64decode(j["payload"]), j["qos"]))
        return out

    def finish(self, timeout=15.0):
        rc = self.proc.wait(timeout)
        rest = []
        while True:
            ln = self.lines.get(timeout=5)
            if ln is None:
                break
            rest.append(ln)
        assert rc == 0, "node exited %d: %s" % (rc, rest)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def nodes():
    made = []
    yield made
    for n in made:
        n.kill()


def run_node(nodes, *a, **kw):
    n = Node(*a, **kw)
    nodes.append(n)
    return n


# ---------------------------------------------------------------------------------------------
# MQTT.js

@pytest.mark.parametrize("version", [4, 5])
def test_mqttjs_over_ws(make_broker, mqttjs, nodes, version):
    b = ws_broker(make_broker)
    url = "ws://127.0.0.1:%d/mqtt" % b.ws_port
    topic = uid("ws") + "/t"
    sub = run_node(nodes, mqttjs, "sub", url, topic, 4, 1, version)
    sub.wait_ready()
    pub = run_node(nodes, mqttjs, "pub", "ws://127.0.0.1:%d/" % b.ws_port, topic, 4, 1, version,
                   "ws")
    pub.finish()
    got = sub.messages(4)
    sub.finish()
    assert [p for _, p, _ in got] == [payload_of("ws", i) for i in range(4)]
    assert all(t == topic and q == 1 for t, _, q in got)


def test_mqttjs_over_wss(make_broker, mqttjs, certs, nodes):
    b = ws_broker(make_broker, certs)
    url = "wss://127.0.0.1:%d/mqtt" % b.wss_port
    topic = uid("wss") + "/t"
    sub = run_node(nodes, mqttjs, "sub", url, topic, 3, 1, 5, ca=certs[0])
    sub.wait_ready()
    pub = run_node(nodes, mqttjs, "pub", url, topic, 3, 1, 5, "wss", ca=certs[0])
    pub.finish()
    assert [p for _, p, _ in sub.messages(3)] == [payload_of("wss", i) for i in range(3)]
    sub.finish()


def test_cross_transport(make_broker, mqttjs, certs, nodes, clients):
    b = ws_broker(make_broker, certs)
    # a WebSocket subscriber gets a TCP publisher's messages
    topic = uid("x") + "/t"
    sub = run_node(nodes, mqttjs, "sub", "ws://127.0.0.1:%d/mqtt" % b.ws_port, topic, 2, 1, 5)
    sub.wait_ready()
    tcp = clients(b)
    tcp.publish(topic, b"from tcp qos0", qos=0)
    tcp.publish(topic, b"from tcp qos1", qos=1)
    got = sub.messages(2)
    sub.finish()
    assert sorted(p for _, p, _ in got) == [b"from tcp qos0", b"from tcp qos1"]
    # a TCP subscriber gets a secure-WebSocket publisher's messages
    topic2 = uid("x") + "/u"
    assert tcp.subscribe(topic2, 1) == [1]
    pub = run_node(nodes, mqttjs, "pub", "wss://127.0.0.1:%d/mqtt" % b.wss_port, topic2, 3, 1, 5,
                   "wss", ca=certs[0])
    pub.finish()
    assert [msg.payload for msg in tcp.get_n(3)] == [payload_of("wss", i) for i in range(3)]


# ---------------------------------------------------------------------------------------------
# Headless Chromium

class PageServer:
    """http.server for the page and mqtt.min.js; GET /wait is answered once `release` is set."""

    def __init__(self, directory):
        self.release = threading.Event()
        release = self.release

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                if self.path.startswith("/wait"):
                    release.wait(30)
                    self.send_response(204)
                    self.end_headers()
                    return
                super().do_GET()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            (HOST, 0), functools.partial(Handler, directory=directory))
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_chromium_page(make_broker, mqttjs, clients, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium not installed (tools/install-deps.sh installs Debian's chromium)")
    b = ws_broker(make_broker)
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(os.path.join(PAGE_DIR, "index.html"), site / "index.html")
    shutil.copy(os.path.join(MQTTJS, "dist", "mqtt.min.js"), site / "mqtt.min.js")
    srv = PageServer(str(site))
    topic, ack = uid("page") + "/msg", uid("page") + "/ack"
    text = "hello browser " + uid("m")
    watcher = clients(b)
    assert watcher.subscribe(ack, 1) == [1]

    def steer():
        # the page says "subscribed", we publish over TCP, it says "shown:<text>", the load ends
        try:
            if watcher.get(30).payload == b"subscribed":
                watcher.publish(topic, text.encode(), qos=1)
                if watcher.get(30).payload == ("shown:" + text).encode():
                    srv.release.set()
        except AssertionError:
            pass
    t = threading.Thread(target=steer, daemon=True)
    t.start()
    url = "http://%s:%d/index.html?url=ws://127.0.0.1:%d/mqtt&topic=%s&ack=%s" % (
        HOST, srv.port, b.ws_port, topic, ack)
    try:
        r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                            "--user-data-dir=" + str(tmp_path / "profile"), "--dump-dom", url],
                           capture_output=True, timeout=90)
    finally:
        srv.close()
    dom = r.stdout.decode("utf-8", "replace")
    assert '<div id="message">%s</div>' % text in dom, (dom[-2000:], r.stderr.decode()[-2000:])
    assert '<div id="status">received</div>' in dom


# ---------------------------------------------------------------------------------------------
# The protocol, spoken raw (the client's side: wshelp.py)

@pytest.fixture
def rawws():
    made = []

    def make(port, request=None):
        c = RawWS(port, request)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def open_ws(rawws, b, **kw):
    c = rawws(b.ws_port, upgrade_request(**kw))
    status, headers = c.http_response()
    assert status == 101, (status, headers)
    return c, headers


def test_upgrade_answer(make_broker, rawws):
    b = ws_broker(make_broker)
    c, h = open_ws(rawws, b, path="/any/path?x=1")
    want = base64.b64encode(hashlib.sha1((KEY + GUID).encode()).digest()).decode()
    assert h["sec-websocket-accept"] == want
    assert h["upgrade"].lower() == "websocket"
    assert h["sec-websocket-protocol"] == "mqtt"
    c2, h2 = open_ws(rawws, b, protocol="mqttv3.1")
    assert h2["sec-websocket-protocol"] == "mqttv3.1"
    c3, h3 = open_ws(rawws, b, protocol="foo, mqtt")
    assert h3["sec-websocket-protocol"] == "mqtt"
    # headers split across reads, one byte at a time
    c4 = rawws(b.ws_port)
    for byte in upgrade_request():
        c4.send(bytes([byte]))
    assert c4.http_response()[0] == 101


@pytest.mark.parametrize("kw", [{"key": None}, {"key": "c2hvcnQ="}, {"version": "8"},
                                {"protocol": "wamp"}],
                         ids=["no-key", "short-key", "version-8", "wrong-subprotocol"])
def test_upgrade_refused(make_broker, rawws, kw):
    b = ws_broker(make_broker)
    c = rawws(b.ws_port, upgrade_request(**kw))
    status, _ = c.http_response()
    assert status == 400
    assert c.closed()


def test_plain_http_and_oversized_request_refused(make_broker, rawws):
    b = ws_broker(make_broker)
    c = rawws(b.ws_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.http_response()[0] == 400
    big = upgrade_request(extra="X-Big: %s\r\n" % ("a" * 8000))
    c2 = rawws(b.ws_port, big)
    assert c2.http_response()[0] == 400
    assert c2.closed()


def test_mqtt_in_fragmented_frames(make_broker, rawws):
    b = ws_broker(make_broker)
    c, _ = open_ws(rawws, b)
    pkt = m.connect(uid("raw"), version=5)
    # one byte per frame: a binary frame then continuations, a ping in the middle
    parts = [frame(0x2 if i == 0 else 0x0, pkt[i:i + 1], fin=(i == len(pkt) - 1))
             for i in range(len(pkt))]
    parts.insert(2, frame(0x9, b"mid"))
    c.send(b"".join(parts))
    fin, op, p = c.read_frame()
    assert (op, p) == (0xA, b"mid")          # pong echoes the ping's payload
    ptype, body = c.read_packet()
    assert ptype == m.CONNACK and body[1] == 0  # reason code: success
    # two MQTT packets in one frame (a 64-bit frame length), and the message comes back
    sub = m.subscribe(1, [("ws/raw", 0)], version=5)
    c.send(frame(0x2, sub + m.publish("ws/raw", b"x" * 70000, qos=0)))
    assert c.read_packet()[0] == m.SUBACK
    ptype, body = c.read_packet()
    assert ptype == m.PUBLISH and body.endswith(b"x" * 70000)


@pytest.mark.parametrize("send,code", [
    (lambda: frame(0x1, b"text"), 1003),
    (lambda: frame(0x2, b"abc", mask=False), 1002),
    (lambda: frame(0x2, b"abc", rsv=0x40), 1002),
    (lambda: frame(0x3, b"abc"), 1002),
    (lambda: frame(0x0, b"abc"), 1002),
    (lambda: frame(0x9, b"x" * 126), 1002),
    (lambda: frame(0x2, b"", length=5000)[:8], 1009),
], ids=["text", "unmasked", "rsv", "bad-opcode", "orphan-continuation", "long-ping", "too-big"])
def test_protocol_errors_close_with_code(make_broker, rawws, send, code):
    b = ws_broker(make_broker, None, "max_packet_size 1000")
    c, _ = open_ws(rawws, b)
    c.send(send())
    fin, op, p = c.read_frame()
    assert op == 0x8 and struct.unpack(">H", p[:2])[0] == code, (op, p)
    assert c.closed()
    assert b.alive()


def test_close_handshake(make_broker, rawws):
    b = ws_broker(make_broker)
    c, _ = open_ws(rawws, b)
    c.send(frame(0x8, struct.pack(">H", 1000) + b"bye"))
    fin, op, p = c.read_frame()
    assert op == 0x8 and struct.unpack(">H", p[:2])[0] == 1000
    assert c.closed()
    # the broker closing an MQTT connection sends a close frame first
    c2, _ = open_ws(rawws, b)
    c2.send(frame(0x2, m.connect(uid("raw"), version=5)))
    assert c2.read_packet()[0] == m.CONNACK
    c2.send(frame(0x2, m.connect(uid("raw"), version=5)))  # a second CONNECT is a protocol error
    ops = []
    try:
        while True:
            ops.append(c2.read_frame()[1])
    except (EOFError, ConnectionResetError):
        pass
    assert 0x8 in ops
