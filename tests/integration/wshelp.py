"""WebSockets from the tests' side: a broker with ws:// and wss:// listeners, and RFC 6455 spoken
raw (the upgrade request, client frames, a client that reads server frames and the MQTT in them)."""

import base64
import os
import socket
import struct

from conftest import HOST, connectable, free_port, wait_until


def ws_broker(make_broker, certs=None, *extra):
    """A broker with its TCP listener plus ws:// (b.ws_port) and, given certs, wss:// (b.wss_port)."""
    for attempt in range(3):
        ws_port = free_port()
        lines = ["listener %d 127.0.0.1" % ws_port, "protocol websockets"]
        wss_port = None
        if certs:
            wss_port = free_port()
            lines += ["listener %d 127.0.0.1" % wss_port, "protocol websockets",
                      "certfile " + certs[0], "keyfile " + certs[1]]
        try:
            b = make_broker(*(list(extra) + lines))
            break
        except AssertionError as e:  # free_port() can hand the fixture's own port out again
            if attempt == 2 or "already defined" not in str(e):
                raise
    b.ws_port, b.wss_port = ws_port, wss_port
    for port in (ws_port, wss_port):  # the fixture waits for the first listener only
        if port:
            wait_until(lambda: connectable(port), what="listener %d" % port)
    return b


KEY = base64.b64encode(b"0123456789abcdef").decode()
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def upgrade_request(path="/mqtt", protocol="mqtt", key=KEY, version="13", extra=""):
    """The HTTP upgrade request; an empty key or protocol leaves its header out; extra: more
    header lines."""
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1", "Upgrade: websocket",
             "Connection: keep-alive, Upgrade", "Sec-WebSocket-Version: " + version]
    if key:
        lines.append("Sec-WebSocket-Key: " + key)
    if protocol:
        lines.append("Sec-WebSocket-Protocol: " + protocol)
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """One client frame, masked unless mask=False; length: a length for the header other than the
    payload's."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | rsv | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


class RawWS:
    """A WebSocket client over a plain socket to 127.0.0.1:port; sends request first if given."""

    def __init__(self, port, request=None):
        self.s = socket.create_connection((HOST, port), timeout=5)
        self.buf = b""
        self.mqtt = b""  # MQTT bytes out of binary frames, not yet consumed
        if request is not None:
            self.s.sendall(request)

    def http_response(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in
                   (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        return int(lines[0].split()[1]), headers

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("closed with %d of %d bytes" % (len(self.buf), n))
            self.buf += chunk

    def read_frame(self):
        """(fin, opcode, payload) of one server frame, which must be unmasked."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "server frames are never masked"
        n, at = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, at = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(at + n)
        payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def read_mqtt(self, n):
        """n bytes of MQTT carried in binary frames, however they were cut."""
        while len(self.mqtt) < n:
            fin, op, p = self.read_frame()
            assert op in (0, 2), op
            self.mqtt += p
        out, self.mqtt = self.mqtt[:n], self.mqtt[n:]
        return out

    def read_packet(self):
        """(type, body) of the next MQTT packet."""
        first = self.read_mqtt(1)[0]
        n, shift = 0, 0
        while True:
            b = self.read_mqtt(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        return first >> 4, self.read_mqtt(n)

    def closed(self, timeout=3.0):
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(4096)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def send(self, data):
        self.s.sendall(data)

    def close(self):
        self.s.close()
