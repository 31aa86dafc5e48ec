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
