"""A real OAuth 2.0 authorization server for the tests: Debian's glewlwyd (2.7.5), run from a temp dir.

Recipe (see also docs/ace-introspection.md): a minimal libconfig file, a fresh SQLite DB from the init
script Debian ships, glewlwyd started on a free loopback port (plain HTTP, or HTTPS with a certificate
for `localhost` made by the openssl CLI), then configured through its admin REST API (admin/password
from the init script): one OIDC plugin instance `oidc` that issues ES256 JWT access tokens (RFC 9068)
with the client-credentials grant, RFC 7662 introspection and RFC 7009 revocation, RFC 8707 `resource`
-> `aud`; and two confidential clients:

  - the broker (`broker_id` / `broker_secret`), scope `mqtt_introspect`, which may introspect and
    revoke any token;
  - a device (`device_id` / `device_secret`) whose scopes are the `scopes` argument;
  - more devices from the `devices` argument ({client_id: [scopes]}), secrets in `secrets`.

How to get a token and the key that verifies it (for bearer-mode tests):

    with Glewlwyd(tmpdir) as g:
        tok = g.token(scope="mqtt_pub_sensors", resource=g.resource)  # a compact JWS string
        tok2 = g.token(resource=g.resource, client="mqtt-device-2")    # another device's token
        g.jwks_file         # {"keys":[{kty EC, crv P-256, x, y, kid, alg ES256, use sig}]}, the public
                            # signing key, written before start: usable with `ace_issuer <iss> <file>`
        g.pubkey_pem_file   # the same key as a PEM public key
        g.issuer            # the `iss` claim of its tokens: <base>/api/oidc
        g.jwks()            # the JWKS as glewlwyd serves it at /api/oidc/jwks (same key)
        g.introspect(tok)   # RFC 7662 answer (dict) with the broker's credentials
        g.revoke(tok)       # after this, introspection says {"active": false}

Token claims: iss, aud (the `resource` URI if one was asked for, else the granted scope string), sub
and client_id (the device), iat, nbf, exp (iat + token_duration), jti, scope (space-separated).
glewlwyd never puts cnf.jwk (RFC 7800) in a token: ACE PoP tests mint their own tokens.

Skipped (pytest.skip) when /usr/bin/glewlwyd or the init script is missing; tools/install-deps.sh
installs it.
"""

import base64
import gzip
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

GLEWLWYD = "/usr/bin/glewlwyd"
INIT_SQL = "/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz"
LIBDIR = "/usr/lib/glewlwyd"


def available():
    return os.access(GLEWLWYD, os.X_OK) and os.path.exists(INIT_SQL) and shutil.which("sqlite3")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64url_uint(n, size=32):
    return base64.urlsafe_b64encode(n.to_bytes(size, "big")).rstrip(b"=").decode()


def _es256_keypair(kid):
    """(private JWK dict, public JWK dict, public PEM bytes) of a fresh P-256 key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    nums = key.private_numbers()
    pub = {"kty": "EC", "crv": "P-256", "x": _b64url_uint(nums.public_numbers.x),
           "y": _b64url_uint(nums.public_numbers.y), "kid": kid, "alg": "ES256", "use": "sig"}
    priv = dict(pub, d=_b64url_uint(nums.private_value))
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return priv, pub, pem


class Glewlwyd:
    def __init__(self, workdir, https=False, scopes=("mqtt_pub_sensors", "mqtt_sub_cmds"),
                 token_duration=300, resource="https://mqtt.broker.test/", devices=None):
        self.dir = workdir
        self.https = https
        self.port = _free_port()
        self.host = "localhost" if https else "127.0.0.1"  # TLS: a name the certificate carries
        self.base = "%s://%s:%d" % ("https" if https else "http", self.host, self.port)
        self.issuer = self.base + "/api/oidc"
        self.scopes = list(scopes)
        self.token_duration = token_duration
        self.resource = resource
        self.broker_id, self.broker_secret = "acemq-broker", os.urandom(16).hex()
        self.device_id, self.device_secret = "mqtt-device-1", os.urandom(16).hex()
        self.devices = {self.device_id: list(scopes)}
        self.devices.update({k: list(v) for k, v in (devices or {}).items()})
        self.secrets = {k: os.urandom(16).hex() for k in self.devices}
        self.secrets[self.device_id] = self.device_secret
        self.cafile = None
        self.proc = None
        self.cookie = None
        self.broker_secret_file = os.path.join(workdir, "broker-secret")
        self.jwks_file = os.path.join(workdir, "as-jwks.json")
        self.pubkey_pem_file = os.path.join(workdir, "as-pub.pem")
        self.log_file = os.path.join(workdir, "glewlwyd.log")

    # ---- set-up ----

    def _write_files(self):
        self.priv_jwk, pub_jwk, pem = _es256_keypair("as-es256-1")
        with open(self.jwks_file, "w") as f:
            json.dump({"keys": [pub_jwk]}, f)
        with open(self.pubkey_pem_file, "wb") as f:
            f.write(pem)
        with open(self.broker_secret_file, "w") as f:
            f.write(self.broker_secret + "\n")
        os.chmod(self.broker_secret_file, 0o600)
        tls = ""
        if self.https:
            key, crt = os.path.join(self.dir, "as.key"), os.path.join(self.dir, "as.crt")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                            "-days", "2", "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=DNS:localhost"], check=True,
                           capture_output=True)
            self.cafile = crt
            # Only write use_secure_connection when true: any such line makes glewlwyd demand
            # the key and certificate settings.
            tls = ('use_secure_connection=true\nsecure_connection_key_file="%s"\n'
                   'secure_connection_pem_file="%s"\n' % (key, crt))
        conf = """port=%d
bind_address="127.0.0.1"
external_url="%s"
api_prefix="api"
log_mode="file"
log_level="INFO"
log_file="%s"
cookie_secure=0
admin_session_authentication="cookie,api_key"
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="%s/user"
client_module_path="%s/client"
user_auth_scheme_module_path="%s/scheme"
plugin_module_path="%s/plugin"
hash_algorithm="SHA512"
%sdatabase = { type = "sqlite3"; path = "%s"; };
""" % (self.port, self.base, self.log_file, LIBDIR, LIBDIR, LIBDIR, LIBDIR, tls,
            os.path.join(self.dir, "glewlwyd.db"))
        self.conf_file = os.path.join(self.dir, "glewlwyd.conf")
        with open(self.conf_file, "w") as f:
            f.write(conf)
        with gzip.open(INIT_SQL, "rb") as f:  # one transaction: ~15 ms instead of ~150
            sql = b"BEGIN;\n" + f.read() + b"\nCOMMIT;\n"
        subprocess.run(["sqlite3", os.path.join(self.dir, "glewlwyd.db")], input=sql, check=True,
                       capture_output=True)

    def _ssl(self):
        return ssl.create_default_context(cafile=self.cafile) if self.https else None

    def _req(self, method, path, body=None, form=None, auth=None, expect=(200,)):
        headers = {}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % auth).encode()).decode()
        if self.cookie:
            headers["Cookie"] = self.cookie
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10, context=self._ssl()) as r:
                status, raw, hdrs = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            status, raw, hdrs = e.code, e.read(), e.headers
        if status not in expect:
            raise RuntimeError("glewlwyd %s %s -> %d %r" % (method, path, status, raw[:300]))
        return status, (json.loads(raw) if raw.strip() else None), hdrs

    def _wait_ready(self, timeout=10.0):
        # Not the "Glewlwyd started" log line: it comes before the bind, even when the port is busy.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("glewlwyd exited: " + self.log())
            try:
                if self._req("GET", "/config")[0] == 200:
                    return
            except (OSError, RuntimeError):
                pass
            time.sleep(0.05)
        raise RuntimeError("glewlwyd did not answer /config: " + self.log())

    def _configure(self):
        _, _, hdrs = self._req("POST", "/api/auth/", body={"username": "admin",
                                                          "password": "password"})
        self.cookie = hdrs["Set-Cookie"].split(";")[0]
        params = {
            "iss": self.issuer, "jwks-private": json.dumps({"keys": [self.priv_jwk]}),
            "jwks-show": True, "access-token-duration": self.token_duration,
            "allow-non-oidc": True, "auth-type-client-enabled": True,
            "auth-type-code-enabled": False, "auth-type-token-enabled": False,
            "auth-type-id-token-enabled": False, "auth-type-password-enabled": False,
            "auth-type-refresh-enabled": False, "auth-type-device-enabled": False,
            "introspection-revocation-allowed": True,
            "introspection-revocation-allow-target-client": True,
            "introspection-revocation-auth-scope": ["mqtt_introspect"],
            "resource-allowed": True, "resource-client-property": "resource",
            "subject-type": "public", "scope": []}
        self._req("POST", "/api/mod/plugin/", body={
            "module": "oidc", "name": "oidc", "display_name": "acemq test AS", "enabled": True,
            "parameters": params})
        clients = [(self.broker_id, self.broker_secret, ["mqtt_introspect"])]
        clients += [(cid, self.secrets[cid], sc) for cid, sc in self.devices.items()]
        for cid, secret, scope in clients:
            self._req("POST", "/api/client/", body={
                "client_id": cid, "name": cid, "confidential": True, "enabled": True,
                "client_secret": secret, "authorization_type": ["client_credentials"],
                "token_endpoint_auth_method": ["client_secret_basic", "client_secret_post"],
                "scope": scope, "resource": [self.resource]})
        self.cookie = None

    def start(self):
        self._write_files()
        self.proc = subprocess.Popen([GLEWLWYD, "--config-file=" + self.conf_file],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        try:
            self._wait_ready()
            self._configure()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        try:
            with open(self.log_file) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    # ---- the OAuth endpoints ----

    @property
    def introspection_url(self):
        return self.issuer + "/introspect"

    def token(self, scope=None, resource=None, client=None):
        client = client or self.device_id
        form = {"grant_type": "client_credentials",
                "scope": scope or " ".join(self.devices[client])}
        if resource:
            form["resource"] = resource
        _, body, _ = self._req("POST", "/api/oidc/token", form=form,
                               auth=(client, self.secrets[client]))
        return body["access_token"]

    def introspect(self, token):
        return self._req("POST", "/api/oidc/introspect",
                         form={"token": token, "token_type_hint": "access_token"},
                         auth=(self.broker_id, self.broker_secret))[1]

    def revoke(self, token):
        self._req("POST", "/api/oidc/revoke",
                  form={"token": token, "token_type_hint": "access_token"},
                  auth=(self.broker_id, self.broker_secret))

    def jwks(self):
        return self._req("GET", "/api/oidc/jwks")[1]
