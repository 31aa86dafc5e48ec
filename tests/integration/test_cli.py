"""acemqd's command line: help, version, config check (-t) and quick start (-p)."""

import os
import socket
import subprocess

import pytest

from conftest import ROOT, acemqd_path, free_port, wait_until, HOST, IS_MOSQ
import mqttraw

pytestmark = pytest.mark.skipif(IS_MOSQ, reason="acemqd command line")


def run(*args, timeout=10):
    return subprocess.run([acemqd_path()] + list(args), capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def write(tmp_path, text):
    p = tmp_path / "acemq.conf"
    p.write_text(text)
    return str(p)


def out(r):
    return (r.stdout + r.stderr).decode("utf-8", "replace")


def test_help():
    r = run("-h")
    assert r.returncode == 0, out(r)
    text = out(r)
    assert "-c" in text and "-t" in text and "-p" in text


def test_version():
    r = run("--version")
    assert r.returncode == 0, out(r)
    with open(os.path.join(ROOT, "VERSION")) as f:
        version = f.read().strip()
    assert version in out(r)


def test_check_valid_config(tmp_path):
    path = write(tmp_path, "# comment\n\nlistener %d 127.0.0.1\nallow_anonymous true\n"
                           "workers 2\nmax_packet_size 10000\nmax_inflight_messages 10\n"
                           "max_queued_messages 100\nmax_keepalive 60\nretain_available true\n"
                           "connect_timeout 5\nsys_interval 10\nmax_topic_alias 10\n"
                           "log_dest stderr\n" % free_port())
    r = run("-t", "-c", path)
    assert r.returncode == 0, out(r)


def test_check_unknown_directive(tmp_path):
    path = write(tmp_path, "listener %d 127.0.0.1\nno_such_directive 1\n" % free_port())
    r = run("-t", "-c", path)
    assert r.returncode == 1, out(r)
    assert "%s:2:" % path in out(r) or "acemq.conf:2:" in out(r), out(r)
    assert "no_such_directive" in out(r)


def test_check_bad_value(tmp_path):
    path = write(tmp_path, "listener %d 127.0.0.1\nallow_anonymous true\n"
                           "max_inflight_messages lots\n" % free_port())
    r = run("-t", "-c", path)
    assert r.returncode == 1, out(r)
    assert "acemq.conf:3:" in out(r), out(r)


@pytest.mark.parametrize("line", ["allow_anonymous maybe", "workers -1", "listener 99999",
                                  "max_packet_size", "retain_available 2"])
def test_check_invalid_lines(tmp_path, line):
    path = write(tmp_path, "log_dest stderr\n%s\n" % line)
    r = run("-t", "-c", path)
    assert r.returncode == 1, out(r)
    assert "acemq.conf:2:" in out(r), out(r)


def test_check_does_not_listen(tmp_path):
    port = free_port()
    path = write(tmp_path, "listener %d 127.0.0.1\n" % port)
    r = run("-t", "-c", path, timeout=5)
    assert r.returncode == 0, out(r)
    with socket.socket() as s:
        assert s.connect_ex((HOST, port)) != 0


def test_missing_config_file(tmp_path):
    r = run("-c", str(tmp_path / "nope.conf"), timeout=5)
    assert r.returncode != 0
    assert "nope.conf" in out(r)


def test_port_option():
    port = free_port()
    proc = subprocess.Popen([acemqd_path(), "-p", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        def listening():
            with socket.socket() as s:
                return s.connect_ex((HOST, port)) == 0
        wait_until(listening, 10, what="acemqd -p listening")
        with mqttraw.RawClient(HOST, port, 4) as c:
            c.connect("cli-p")          # anonymous allowed by default
            c.subscribe("cli/p")
            c.publish("cli/p", b"x")
            p = c.recv_type(mqttraw.PUBLISH)
            assert p.payload == b"x"
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode is not None
    assert b"ERROR: AddressSanitizer" not in err and b"runtime error:" not in err


def test_check_reports_every_bad_line(tmp_path):
    path = write(tmp_path, "listener %d 127.0.0.1\nno_such_directive 1\nallow_anonymous true\n"
                           "max_keepalive banana\nmax_qos 7\nworkers 1\n" % free_port())
    r = run("-t", "-c", path)
    assert r.returncode == 1, out(r)
    errors = [l for l in r.stderr.decode().splitlines() if l.startswith(path + ":")]
    assert [e.split(":")[1] for e in errors] == ["2", "4", "5"], out(r)
    assert "no_such_directive" in errors[0] and "banana" in errors[1] and "max_qos" in errors[2]
    assert b"configuration OK" not in r.stdout


@pytest.mark.parametrize("tls,why", [
    ("certfile {d}/missing.crt\nkeyfile {d}/server.key", "certfile {d}/missing.crt: No such file"),
    ("certfile {d}/server.crt\nkeyfile {d}/server.key\nciphers NOT-A-SUITE",
     "ciphers: unknown or unsupported cipher suite 'NOT-A-SUITE'"),
    ("certfile {d}/server.crt\nkeyfile {d}/other.key",
     "keyfile {d}/other.key does not match certfile {d}/server.crt"),
    ("certfile {d}/server.crt\nkeyfile {d}/server.key", None)])
def test_check_builds_tls_listeners(tmp_path, tls, why):
    """-t loads each TLS listener's files as the start would, and names the listener's line."""
    d = str(tmp_path)
    for name in ("server", "other"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
                        "-out", name + ".crt", "-days", "2", "-subj", "/CN=localhost"],
                       cwd=d, check=True, capture_output=True)
    port = free_port()
    path = write(tmp_path, "allow_anonymous true\nlistener %d 127.0.0.1\n%s\n"
                           % (port, tls.format(d=d)))
    r = run("-t", "-c", path)
    if why is None:
        assert r.returncode == 0 and b"configuration OK" in r.stdout, out(r)
        return
    assert r.returncode == 1, out(r)
    want = "%s:2: TLS listener on port %d: %s" % (path, port, why.format(d=d))
    assert r.stderr.decode().startswith(want), out(r)
    assert b"configuration OK" not in r.stdout
