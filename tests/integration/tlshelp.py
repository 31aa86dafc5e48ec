"""The TLS material of the integration tests, made with the openssl CLI (nothing is committed).

The session's `pki` fixture (registered in conftest.py) holds a CA, ECDSA P-256 and RSA server
certificates for localhost/127.0.0.1, client certificates (good, expired, revoked, and one from an
unknown CA), a CRL and a PSK file. Also: broker configuration lines that use them, Mosquitto's
clients with TLS arguments, and self-signed certificates for one DNS name.
"""

import os
import shutil
import subprocess
import tempfile

import pytest

PSK_ID = "dev-psk-1"
PSK_KEY = "00112233445566778899aabbccddeeff"

CA_CNF = """[ ca ]
default_ca = ca_default
[ ca_default ]
dir = {d}
database = {d}/index.txt
new_certs_dir = {d}/newcerts
serial = {d}/serial
crlnumber = {d}/crlnumber
certificate = {d}/ca.crt
private_key = {d}/ca.key
default_md = sha256
default_days = 30
default_crl_days = 30
policy = policy_any
unique_subject = no
copy_extensions = copy
[ policy_any ]
commonName = supplied
organizationName = optional
"""


def sh(*args, cwd=None, input=None, timeout=30):
    r = subprocess.run(list(args), cwd=cwd, input=input, capture_output=True, timeout=timeout)
    assert r.returncode == 0, "%s failed: %s" % (" ".join(args), r.stderr.decode(errors="replace"))
    return r


class Pki:
    """Paths of the test PKI; p("name.crt") is a file in it."""

    def __init__(self, d):
        self.dir = d

    def p(self, name):
        return os.path.join(self.dir, name)


def _key(d, name, kind):
    if kind == "ec":
        sh("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", name, cwd=d)
    else:
        sh("openssl", "genrsa", "-out", name, "2048", cwd=d)


def issue(d, name, subj, kind="ec", san=None, dates=None, cnf="ca.cnf"):
    """Key + CSR + certificate signed by the CA of cnf (openssl ca, so dates can be chosen)."""
    _key(d, name + ".key", kind)
    req = ["openssl", "req", "-new", "-key", name + ".key", "-subj", subj, "-out", name + ".csr"]
    if san:
        req += ["-addext", "subjectAltName=" + san]
    sh(*req, cwd=d)
    ca = ["openssl", "ca", "-batch", "-notext", "-config", cnf, "-in", name + ".csr",
          "-out", name + ".crt"]
    if dates:
        ca += ["-startdate", dates[0], "-enddate", dates[1]]
    sh(*ca, cwd=d)


def _make_ca(d, cnf, name):
    os.makedirs(os.path.join(d, "newcerts"), exist_ok=True)
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")
    with open(os.path.join(d, "crlnumber"), "w") as f:
        f.write("1000\n")
    with open(os.path.join(d, cnf), "w") as f:
        f.write(CA_CNF.format(d=d))
    _key(d, "ca.key", "ec")
    sh("openssl", "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=" + name, "-days", "30",
       "-out", "ca.crt", cwd=d)


@pytest.fixture(scope="session")
def pki():
    """The test PKI of the module docstring, made once per session."""
    top = tempfile.mkdtemp(prefix="acemq-pki-")
    d = os.path.join(top, "ca")
    other = os.path.join(top, "other")
    os.makedirs(d)
    os.makedirs(other)
    _make_ca(d, "ca.cnf", "acemq-test-ca")
    san = "DNS:localhost,IP:127.0.0.1"
    issue(d, "server-ec", "/CN=localhost/O=acemq-ecdsa", "ec", san)
    issue(d, "server-rsa", "/CN=localhost/O=acemq-rsa", "rsa", san)
    issue(d, "client-good", "/CN=client-good")
    issue(d, "client-expired", "/CN=client-expired",
          dates=("20200101000000Z", "20200102000000Z"))
    issue(d, "client-revoked", "/CN=client-revoked")
    sh("openssl", "ca", "-config", "ca.cnf", "-revoke", "client-revoked.crt", cwd=d)
    sh("openssl", "ca", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem", cwd=d)
    # A client certificate from a CA the broker does not know.
    _make_ca(other, "ca.cnf", "unknown-ca")
    issue(other, "client-unknown", "/CN=client-unknown")
    for f in os.listdir(other):
        if f.startswith("client-unknown"):
            shutil.copy(os.path.join(other, f), d)
    with open(os.path.join(d, "psk.txt"), "w") as f:
        f.write("%s:%s\n" % (PSK_ID, PSK_KEY))
    # The broker may read its files as another user (Mosquitto started as root does).
    os.chmod(top, 0o755)
    for root in (d, other):
        os.chmod(root, 0o755)
        for f in os.listdir(root):
            if os.path.isfile(os.path.join(root, f)):
                os.chmod(os.path.join(root, f), 0o644)
    yield Pki(d)
    shutil.rmtree(top, ignore_errors=True)


def tls_lines(pki, cert="server-ec", *extra):
    """certfile/keyfile lines of a server certificate of the PKI, then extra."""
    return ("certfile " + pki.p(cert + ".crt"), "keyfile " + pki.p(cert + ".key")) + extra


def mq_tls(pki, cert=None):
    """mosquitto_pub/sub TLS arguments (host localhost, so the name in the certificate matches)."""
    a = ["--cafile", pki.p("ca.crt")]
    if cert:
        a += ["--cert", pki.p(cert + ".crt"), "--key", pki.p(cert + ".key")]
    return a


def mq(tool, b, *args, timeout=10):
    """Runs mosquitto_pub/sub (tool) against broker b at localhost; the CompletedProcess."""
    return subprocess.run([tool, "-h", "localhost", "-p", str(b.port)] + list(args),
                          capture_output=True, timeout=timeout)


def self_signed(d, cn):
    """A self-signed P-256 certificate for the DNS name cn (subject and subjectAltName): the paths
    of d/cn.crt and d/cn.key."""
    key, crt = os.path.join(d, cn + ".key"), os.path.join(d, cn + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=DNS:" + cn], check=True, capture_output=True)
    return crt, key
