"""Raw-socket MQTT for the integration tests.

Builds packets byte by byte and parses what the broker sends back, so that the tests can send what a
well-behaved client library refuses to send (malformed lengths, wrong flags, duplicate properties) and
can see exactly what the broker put on the wire (DUP flags, packet ids, property order). Independent of
the project's C codec on purpose: a bug shared by the codec and its tests would go unnoticed.
"""

import socket
import struct
import time

# Packet types.
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)

NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
         7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
         12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}

# MQTT 5 property identifiers and their wire types.
PAYLOAD_FORMAT = 0x01
MESSAGE_EXPIRY = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_ID = 0x0B
SESSION_EXPIRY = 0x11
ASSIGNED_CLIENT_ID = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTH_METHOD = 0x15
AUTH_DATA = 0x16
REQUEST_PROBLEM_INFO = 0x17
WILL_DELAY = 0x18
REQUEST_RESPONSE_INFO = 0x19
RESPONSE_INFO = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUB_AVAILABLE = 0x28
SUB_ID_AVAILABLE = 0x29
SHARED_SUB_AVAILABLE = 0x2A

_BYTE, _INT2, _INT4, _VARINT, _STR, _BIN, _PAIR = range(7)
PROP_TYPES = {
    0x01: _BYTE, 0x02: _INT4, 0x03: _STR, 0x08: _STR, 0x09: _BIN, 0x0B: _VARINT, 0x11: _INT4,
    0x12: _STR, 0x13: _INT2, 0x15: _STR, 0x16: _BIN, 0x17: _BYTE, 0x18: _INT4, 0x19: _BYTE,
    0x1A: _STR, 0x1C: _STR, 0x1F: _STR, 0x21: _INT2, 0x22: _INT2, 0x23: _INT2, 0x24: _BYTE,
    0x25: _BYTE, 0x26: _PAIR, 0x27: _INT4, 0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}


class MalformedResponse(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Encoding

def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def mqtt_str(s):
    """A length-prefixed string; bytes are sent as they are (for invalid UTF-8 tests)."""
    b = s if isinstance(s, (bytes, bytearray)) else s.encode("utf-8")
    return u16(len(b)) + bytes(b)


def props(plist):
    """Encode a property list [(id, value), ...] in the given order, length prefix included.

    Values: int for numeric types, str/bytes for strings and binary data, (k, v) for user
    properties. Duplicates are encoded as given, so hostile tests can send them.
    """
    body = bytearray()
    for pid, val in plist or ():
        body += varint(pid)
        t = PROP_TYPES[pid]
        if t == _BYTE:
            body.append(val)
        elif t == _INT2:
            body += u16(val)
        elif t == _INT4:
            body += u32(val)
        elif t == _VARINT:
            body += varint(val)
        elif t in (_STR, _BIN):
            body += mqtt_str(val)
        else:
            body += mqtt_str(val[0]) + mqtt_str(val[1])
    return varint(len(body)) + bytes(body)


def packet(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + bytes(body)


def connect(client_id="", version=5, clean=True, keepalive=60, properties=None, will=None,
            username=None, password=None):
    """CONNECT. will = dict(topic, payload, qos=0, retain=False, properties=[...])."""
    if version == 3:
        vh = mqtt_str("MQIsdp") + bytes([3])
    else:
        vh = mqtt_str("MQTT") + bytes([version])
    flags = 0x02 if clean else 0
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    vh += bytes([flags]) + u16(keepalive)
    if version == 5:
        vh += props(properties)
    pl = mqtt_str(client_id)
    if will is not None:
        if version == 5:
            pl += props(will.get("properties"))
        pl += mqtt_str(will["topic"]) + mqtt_str(will.get("payload", b""))
    if username is not None:
        pl += mqtt_str(username)
    if password is not None:
        pl += mqtt_str(password)
    return packet(CONNECT, 0, vh + pl)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None, properties=None,
            version=5):
    flags = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = mqtt_str(topic)
    if qos:
        body += u16(pid if pid is not None else 1)
    if version == 5:
        body += props(properties)
    if isinstance(payload, str):
        payload = payload.encode()
    return packet(PUBLISH, flags, body + payload)


def _ack(ptype, flags, pid, rc, properties, version):
    body = u16(pid)
    if version == 5 and (rc or properties):
        body += bytes([rc])
        if properties:
            body += props(properties)
    return packet(ptype, flags, body)


def puback(pid, rc=0, properties=None, version=5):
    return _ack(PUBACK, 0, pid, rc, properties, version)


def pubrec(pid, rc=0, properties=None, version=5):
    return _ack(PUBREC, 0, pid, rc, properties, version)


def pubrel(pid, rc=0, properties=None, version=5):
    return _ack(PUBREL, 2, pid, rc, properties, version)


def pubcomp(pid, rc=0, properties=None, version=5):
    return _ack(PUBCOMP, 0, pid, rc, properties, version)


def subscribe(pid, filters, properties=None, version=5, flags=2):
    """filters: [(filter, options_byte)]; options = qos | nl<<2 | rap<<3 | rh<<4."""
    body = u16(pid)
    if version == 5:
        body += props(properties)
    for f, opts in filters:
        body += mqtt_str(f) + bytes([opts])
    return packet(SUBSCRIBE, flags, body)


def unsubscribe(pid, filters, properties=None, version=5):
    body = u16(pid)
    if version == 5:
        body += props(properties)
    for f in filters:
        body += mqtt_str(f)
    return packet(UNSUBSCRIBE, 2, body)


def pingreq():
    return packet(PINGREQ, 0, b"")


def disconnect(rc=0, properties=None, version=5):
    if version == 5 and (rc or properties):
        return packet(DISCONNECT, 0, bytes([rc]) + (props(properties) if properties else b""))
    return packet(DISCONNECT, 0, b"")


# ---------------------------------------------------------------------------------------------
# Decoding

class Packet:
    def __init__(self, ptype, flags, body):
        self.type = ptype
        self.flags = flags
        self.body = body
        self.props = []          # [(id, value)] in wire order
        self.rc = 0
        self.pid = None
        self.topic = None
        self.payload = b""
        self.codes = []
        self.session_present = None

    @property
    def qos(self):
        return (self.flags >> 1) & 3

    @property
    def dup(self):
        return bool(self.flags & 8)

    @property
    def retain(self):
        return bool(self.flags & 1)

    def prop(self, pid, default=None):
        for k, v in self.props:
            if k == pid:
                return v
        return default

    def props_all(self, pid):
        return [v for k, v in self.props if k == pid]

    def __repr__(self):
        d = {"rc": hex(self.rc), "pid": self.pid}
        if self.type == PUBLISH:
            d.update(topic=self.topic, qos=self.qos, dup=self.dup, retain=self.retain,
                     payload=self.payload[:40])
        if self.codes:
            d["codes"] = [hex(c) for c in self.codes]
        if self.props:
            d["props"] = self.props
        return "<%s %s>" % (NAMES.get(self.type, self.type), d)


def _read_varint(buf, i):
    n, mult = 0, 1
    for k in range(4):
        if i >= len(buf):
            raise MalformedResponse("truncated varint")
        b = buf[i]
        i += 1
        n += (b & 0x7F) * mult
        if not b & 0x80:
            return n, i
        mult *= 128
    raise MalformedResponse("varint longer than 4 bytes")


def _read_str(buf, i):
    n = struct.unpack_from("!H", buf, i)[0]
    return bytes(buf[i + 2:i + 2 + n]), i + 2 + n


def parse_props(buf, i):
    n, i = _read_varint(buf, i)
    end = i + n
    out = []
    while i < end:
        pid, i = _read_varint(buf, i)
        t = PROP_TYPES.get(pid)
        if t is None:
            raise MalformedResponse("unknown property 0x%x" % pid)
        if t == _BYTE:
            v = buf[i]
            i += 1
        elif t == _INT2:
            v = struct.unpack_from("!H", buf, i)[0]
            i += 2
        elif t == _INT4:
            v = struct.unpack_from("!I", buf, i)[0]
            i += 4
        elif t == _VARINT:
            v, i = _read_varint(buf, i)
        elif t == _STR:
            b, i = _read_str(buf, i)
            v = b.decode("utf-8")
        elif t == _BIN:
            v, i = _read_str(buf, i)
        else:
            k, i = _read_str(buf, i)
            val, i = _read_str(buf, i)
            v = (k.decode(), val.decode())
        out.append((pid, v))
    if i != end:
        raise MalformedResponse("property length mismatch")
    return out, end


def parse(ptype, flags, body, version=5):
    p = Packet(ptype, flags, body)
    b = body
    if ptype == CONNACK:
        p.session_present = bool(b[0] & 1)
        p.rc = b[1]
        if version == 5 and len(b) > 2:
            p.props, _ = parse_props(b, 2)
    elif ptype == PUBLISH:
        t, i = _read_str(b, 0)
        p.topic = t.decode("utf-8", "surrogateescape")
        if p.qos:
            p.pid = struct.unpack_from("!H", b, i)[0]
            i += 2
        if version == 5:
            p.props, i = parse_props(b, i)
        p.payload = bytes(b[i:])
    elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        p.pid = struct.unpack_from("!H", b, 0)[0]
        if len(b) > 2:
            p.rc = b[2]
        if len(b) > 3:
            p.props, _ = parse_props(b, 3)
    elif ptype in (SUBACK, UNSUBACK):
        p.pid = struct.unpack_from("!H", b, 0)[0]
        i = 2
        if version == 5:
            p.props, i = parse_props(b, 2)
        p.codes = list(b[i:])
    elif ptype in (DISCONNECT, AUTH):
        if len(b) > 0:
            p.rc = b[0]
        if len(b) > 1:
            p.props, _ = parse_props(b, 1)
    return p


class Closed(Exception):
    """The broker closed the connection."""


class RawClient:
    """One TCP connection speaking hand-made MQTT."""

    def __init__(self, host, port, version=5, timeout=5.0):
        self.version = version
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.closed = False

    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        """Send, ignoring a connection the broker already closed (hostile tests)."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from broker")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from broker")
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise Closed()
        self.buf += chunk

    def recv(self, timeout=5.0):
        """The next packet; raises Closed on EOF, TimeoutError when nothing came in time."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                try:
                    n, i = _read_varint(self.buf, 1)
                except MalformedResponse:
                    if len(self.buf) < 5:
                        n = None
                    else:
                        raise
                if n is not None and len(self.buf) >= i + n:
                    first = self.buf[0]
                    body = bytes(self.buf[i:i + n])
                    del self.buf[:i + n]
                    return parse(first >> 4, first & 15, body, self.version)
            self._fill(deadline)

    def recv_type(self, ptype, timeout=5.0):
        """The next packet, asserting its type."""
        p = self.recv(timeout)
        assert p.type == ptype, "expected %s, got %r" % (NAMES[ptype], p)
        return p

    def recv_nothing(self, timeout):
        """Assert that no packet arrives within timeout seconds (the connection may stay open)."""
        try:
            p = self.recv(timeout)
        except TimeoutError:
            return
        raise AssertionError("unexpected packet %r" % p)

    def wait_closed(self, timeout=5.0):
        """Read until EOF; returns the packets received before it. TimeoutError if still open."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                got.append(self.recv(max(0.0, deadline - time.monotonic()) or 0.001))
            except Closed:
                return got
            except TimeoutError:
                raise TimeoutError("connection still open after %.1fs, got %r" % (timeout, got))

    def connect(self, client_id="", clean=True, keepalive=60, properties=None, will=None,
                username=None, password=None, expect_rc=0, timeout=5.0):
        self.send(connect(client_id, self.version, clean, keepalive, properties, will,
                          username, password))
        ack = self.recv_type(CONNACK, timeout)
        if expect_rc is not None:
            assert ack.rc == expect_rc, "CONNACK %r" % ack
        return ack

    def subscribe(self, filters, pid=1, properties=None, timeout=5.0):
        """filters: [(filter, options)] or a single filter string (QoS 0). Returns the SUBACK."""
        if isinstance(filters, str):
            filters = [(filters, 0)]
        self.send(subscribe(pid, filters, properties, self.version))
        return self.recv_type(SUBACK, timeout)

    def publish(self, topic, payload=b"", qos=0, retain=False, pid=1, properties=None,
                dup=False):
        self.send(publish(topic, payload, qos, retain, dup, pid, properties, self.version))

    def disconnect(self, rc=0, properties=None, wait=2.0):
        """Sends DISCONNECT and waits (up to `wait` s) for the broker to close, so that a test's
        next connection finds the broker done with this one."""
        self.try_send(disconnect(rc, properties, self.version))
        try:
            self.sock.settimeout(wait)
            while self.sock.recv(4096):
                pass
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
