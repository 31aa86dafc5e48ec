"""ACE (RFC 9431) helpers for the integration tests, written independently of acemq's C code.

Tokens are minted here with python3-cbor2 and python3-cryptography (COSE_Sign1 ES256, COSE_Mac0
HMAC 256/256, JWT HS256), proofs of possession are computed here, and TLS sessions come from
pyOpenSSL so that the tests can read the RFC 5705 exporter value (export_keying_material) the broker
must bind the PoP to. Nothing here calls the broker's token engine or tools.
"""

import base64
import hashlib
import hmac
import json
import os
import select
import socket
import struct
import subprocess
import time

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi, lib as _lib

import mqttraw

LABEL = b"EXPORTER-ACE-MQTT-Sign-Challenge"
AUD = "acemq-test"
AS_URI = "https://as.example/token"  # what the ace_env brokers name in their AS hints
NOT_AUTHORIZED = 0x87
SCOPE = [["s/#", ["pub", "sub"]]]


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def exi_cti(seq, prefix=AUD):
    """RFC 9200 §5.10.3: cti = an identifier of the RS, then the sequence number (here 4 bytes)."""
    return prefix.encode() + seq.to_bytes(4, "big")


def hmac256(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def es256_sign(priv, msg):
    r, s = decode_dss_signature(priv.sign(msg, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class Issuer:
    """An authorization server's signing key, written where the broker's ace_issuer reads it."""

    def __init__(self, directory, name="as1", kind="es256"):
        self.name = name
        self.kind = kind
        if kind == "es256":
            self.priv = ec.generate_private_key(ec.SECP256R1())
            pem = self.priv.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
            self.keyfile = os.path.join(directory, name + ".pem")
            with open(self.keyfile, "wb") as f:
                f.write(pem)
        else:
            self.key = os.urandom(32)
            self.keyfile = os.path.join(directory, name + ".hex")
            with open(self.keyfile, "w") as f:
                f.write(self.key.hex() + "\n")

    def config(self):
        return "ace_issuer %s %s" % (self.name, self.keyfile)

    def cwt(self, claims):
        payload = cbor2.dumps(claims)
        if self.kind == "es256":
            prot = cbor2.dumps({1: -7})
            tbs = cbor2.dumps(["Signature1", prot, b"", payload])
            return cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload, es256_sign(self.priv, tbs)]))
        prot = cbor2.dumps({1: 5})  # HMAC 256/256
        tbs = cbor2.dumps(["MAC0", prot, b"", payload])
        return cbor2.dumps(cbor2.CBORTag(17, [prot, {}, payload, hmac256(self.key, tbs)]))

    def jwt_hs256(self, claims):
        assert self.kind == "hmac"
        head = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64u(json.dumps(claims).encode())
        sig = b64u(hmac256(self.key, ("%s.%s" % (head, body)).encode()))
        return ("%s.%s.%s" % (head, body, sig)).encode()


class PopKey:
    """The client's proof-of-possession key: symmetric (HMAC-SHA-256) or EC2 P-256 (ES256)."""

    def __init__(self, kind="sym", kid=None):
        self.kind = kind
        self.kid = kid or os.urandom(6).hex().encode()
        if kind == "sym":
            self.k = os.urandom(32)
        else:
            self.priv = ec.generate_private_key(ec.SECP256R1())

    def cose_key(self):
        if self.kind == "sym":
            return {1: 4, 2: self.kid, -1: self.k}
        n = self.priv.public_key().public_numbers()
        return {1: 2, 2: self.kid, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")}

    def pop(self, msg):
        return hmac256(self.k, msg) if self.kind == "sym" else es256_sign(self.priv, msg)


def claims(scope, key=None, exp_in=300, iss="as1", aud=AUD, nbf_in=None, sub=None, cnonce=None,
           exi=None, cti=None):
    """CWT claims: scope as an AIF list (bstr-wrapped, what RFC 9431 tools write). exp_in=None
    leaves exp out (for exi tokens); cnonce (39), exi (40) and cti (7) go in when given."""
    now = int(time.time())
    c = {1: iss, 3: aud, 6: now, 9: cbor2.dumps(scope)}
    if exp_in is not None:
        c[4] = now + exp_in
    if cnonce is not None:
        c[39] = cnonce
    if exi is not None:
        c[40] = exi
    if cti is not None:
        c[7] = cti
    if nbf_in is not None:
        c[5] = now + nbf_in
    if sub:
        c[2] = sub
    if key is not None:
        c[8] = {1: key.cose_key()}
    return c


def auth_data(token, pop=b""):
    return struct.pack("!H", len(token)) + token + pop


def ace_props(data=None):
    p = [(mqttraw.AUTH_METHOD, "ace")]
    if data is not None:
        p.append((mqttraw.AUTH_DATA, data))
    return p


def auth_packet(rc, data=None):
    body = bytes([rc]) + mqttraw.props(ace_props(data))
    return mqttraw.packet(mqttraw.AUTH, 0, body)


def psk_identity(kid):
    """RFC 9202 §3.3.2: {8: {1: {1: 4, 2: kid}}}."""
    return cbor2.dumps({8: {1: {1: 4, 2: kid}}})


# ---------------------------------------------------------------------------------------------
# TLS

def make_cert(directory):
    key = os.path.join(directory, "server.key")
    crt = os.path.join(directory, "server.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    return crt, key


class TlsRaw(mqttraw.RawClient):
    """mqttraw over a pyOpenSSL TLS 1.2 session (so the exporter value is at hand)."""

    def __init__(self, host, port, version=5, timeout=5.0, psk=None, options=0, session=None):
        """options: SSL_OP_* bits for the context; session: one from get_session() to resume."""
        self.version = version
        self.buf = bytearray()
        self.closed = False
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
        ctx.set_options(options)
        if psk is not None:
            ctx.set_cipher_list(b"PSK-AES128-GCM-SHA256:ECDHE-PSK-CHACHA20-POLY1305")
            self._psk_cb = self._psk_callback(*psk)
            _lib.SSL_CTX_set_psk_client_callback(ctx._context, self._psk_cb)
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.raw = raw
        self.sock = SSL.Connection(ctx, raw)
        self.sock.set_connect_state()
        if session is not None:
            self.sock.set_session(session)
        raw.settimeout(None)  # pyOpenSSL wants a blocking socket; reads wait in select() instead
        self.sock.do_handshake()

    @staticmethod
    def _psk_callback(identity, key):
        @_ffi.callback("unsigned int(SSL *, const char *, char *, unsigned int, unsigned char *,"
                       " unsigned int)")
        def cb(ssl, hint, ident, max_ident, out, max_psk):
            _ffi.memmove(ident, identity + b"\0", len(identity) + 1)
            _ffi.memmove(out, key, len(key))
            return len(key)
        return cb

    def exporter(self, zero_length_context=True):
        return self.sock.export_keying_material(LABEL, 32, b"" if zero_length_context else None)

    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except (OSError, SSL.Error):
            return False

    def _fill(self, deadline):
        while True:
            if not self.sock.pending():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no data from broker")
                r, _, _ = select.select([self.raw], [], [], remaining)
                if not r:
                    raise TimeoutError("no data from broker")
            try:
                chunk = self.sock.recv(65536)
            except SSL.WantReadError:
                continue
            except (SSL.ZeroReturnError, SSL.SysCallError, ConnectionResetError):
                chunk = b""
            except SSL.Error:
                chunk = b""
            if not chunk:
                self.closed = True
                raise mqttraw.Closed()
            self.buf += chunk
            return

    def close(self):
        try:
            self.raw.close()
        except OSError:
            pass


class Env:
    """A broker started by the ace_env fixture (conftest.py), with its issuer and directory."""

    def __init__(self, b, iss, d):
        self.b, self.iss, self.dir = b, iss, d

    def tls(self, version=5, psk=None):
        return TlsRaw(self.b.host, self.b.tls_port, version, 5.0, psk)

    def token(self, scope, key, **kw):
        return self.iss.cwt(claims(scope, key, **kw))
