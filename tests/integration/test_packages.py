"""`make install`, `make deb` and `make rpm`: what lands where, and that the packaged daemon runs.

These build packages from the tree (a few seconds each) and, as root, install the .deb on this
machine and remove it again. They run once, against the normal build: with the sanitizer build
(ACEMQ_BUILD=.../build-asan) they are skipped, since packages are never made from it.
"""

import io
import os
import shutil
import subprocess
import tarfile

import pytest

from conftest import IS_MOSQ, ROOT, acemqd_path

with open(os.path.join(ROOT, "VERSION")) as f:
    VERSION = f.read().strip()

BUILD = os.path.dirname(acemqd_path())

pytestmark = [
    pytest.mark.skipif(IS_MOSQ, reason="acemq's packages"),
    pytest.mark.skipif(os.path.basename(os.path.normpath(BUILD)) != "build",
                       reason="packages are made from build/, checked in that run, not from %s"
                       % BUILD),
]

# Paths every package holds, whatever its format (the unit directory differs, see below).
COMMON = [
    "/usr/sbin/acemqd",
    "/usr/bin/acemq-token",
    "/usr/bin/acemq-passwd",
    "/etc/acemq/acemq.conf",
    "/usr/lib/sysusers.d/acemq.conf",
    "/usr/lib/tmpfiles.d/acemq.conf",
]
MAN = ["/usr/share/man/man8/acemqd.8", "/usr/share/man/man5/acemq.conf.5",
       "/usr/share/man/man1/acemq-token.1"]
RUNTIME_LIBS = ["libuv1", "libmbedtls14", "libmbedx509-1", "libmbedcrypto7", "libcbor0.8",
                "libjansson4", "libsodium23"]


def make(*targets, **env_vars):
    args = ["make", "--no-print-directory", "-C", ROOT] + list(targets)
    args += ["%s=%s" % kv for kv in env_vars.items()]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "make %s failed:\n%s%s" % (" ".join(targets), r.stdout, r.stderr)
    return r


def need(tool, package):
    if not shutil.which(tool):
        pytest.skip("%s is not installed (Debian package %s; tools/install-deps.sh installs it)"
                    % (tool, package))


def run_ok(*args):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "%s:\n%s%s" % (" ".join(args), r.stdout, r.stderr)
    return r.stdout


def check_config(acemqd, conf):
    r = subprocess.run([acemqd, "-t", "-c", conf], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "configuration OK" in r.stdout


# ---- make install ----------------------------------------------------------------------------------

def test_make_install(tmp_path):
    dest = tmp_path / "root"
    make("install", DESTDIR=str(dest))
    files = sorted("/" + str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    expected = ["/usr/local/sbin/acemqd", "/usr/local/bin/acemq-token",
                "/usr/local/bin/acemq-passwd", "/etc/acemq/acemq.conf",
                "/usr/local/lib/systemd/system/acemqd.service",
                "/usr/local/lib/sysusers.d/acemq.conf", "/usr/local/lib/tmpfiles.d/acemq.conf",
                "/usr/local/share/man/man8/acemqd.8", "/usr/local/share/man/man5/acemq.conf.5",
                "/usr/local/share/man/man1/acemq-token.1"]
    assert sorted(expected) == files
    assert os.access(dest / "usr/local/sbin/acemqd", os.X_OK)
    unit = (dest / "usr/local/lib/systemd/system/acemqd.service").read_text()
    assert "ExecStart=/usr/local/sbin/acemqd -c /etc/acemq/acemq.conf\n" in unit
    check_config(str(dest / "usr/local/sbin/acemqd"), str(dest / "etc/acemq/acemq.conf"))

    # A second install keeps the administrator's configuration.
    conf = dest / "etc/acemq/acemq.conf"
    conf.write_text("listener 1884\n")
    r = make("install", DESTDIR=str(dest), PREFIX="/opt/acemq")
    assert conf.read_text() == "listener 1884\n"
    assert "keeping the existing" in r.stdout
    unit = (dest / "opt/acemq/lib/systemd/system/acemqd.service").read_text()
    assert "ExecStart=/opt/acemq/sbin/acemqd " in unit


# ---- make deb ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def deb():
    need("dpkg-deb", "dpkg")
    make("deb")
    path = os.path.join(BUILD, "acemq_%s_%s.deb" % (VERSION, run_ok("dpkg", "--print-architecture")
                                                    .strip()))
    assert os.path.exists(path), os.listdir(BUILD)
    return path


def deb_files(path):
    out = run_ok("dpkg-deb", "-c", path)
    files = {}
    for line in out.splitlines():
        parts = line.split(None, 5)
        name = parts[5].split(" -> ")[0]
        files[name[1:].rstrip("/") or "/"] = parts[0]  # "./usr/sbin/acemqd" -> "/usr/sbin/acemqd"
    return files


def test_deb_contents(deb):
    files = deb_files(deb)
    for p in COMMON + ["/lib/systemd/system/acemqd.service"] + [m + ".gz" for m in MAN]:
        assert p in files, "%s missing from the .deb: %s" % (p, sorted(files))
    assert files["/usr/sbin/acemqd"].startswith("-rwxr-xr-x")
    assert files["/etc/acemq/acemq.conf"].startswith("-rw-r--r--")
    # Only these binaries: no bench tool, no test programs.
    assert sorted(p for p in files if p.startswith(("/usr/bin/", "/usr/sbin/"))
                  and not files[p].startswith("d")) == \
        ["/usr/bin/acemq-passwd", "/usr/bin/acemq-token", "/usr/sbin/acemqd"]
    # Owned by root whoever built it (dpkg-deb --root-owner-group).
    out = run_ok("dpkg-deb", "-c", deb)
    assert all(" root/root " in l for l in out.splitlines()), out


def test_deb_control(deb, tmp_path):
    fields = run_ok("dpkg-deb", "-f", deb, "Package", "Version", "Architecture", "Depends")
    assert "Package: acemq\n" in fields
    assert "Version: %s\n" % VERSION in fields
    for lib in RUNTIME_LIBS:
        assert lib in fields, "Depends lacks %s:\n%s" % (lib, fields)
    ctl = tmp_path / "DEBIAN"
    run_ok("dpkg-deb", "-e", deb, str(ctl))
    assert (ctl / "conffiles").read_text().split() == ["/etc/acemq/acemq.conf"]
    postinst = "\n".join(l for l in (ctl / "postinst").read_text().splitlines()
                         if not l.lstrip().startswith("#"))
    assert os.access(ctl / "postinst", os.X_OK)
    assert "systemd-sysusers" in postinst and "adduser --quiet --system" in postinst
    # It creates the user and enables nothing.
    for word in ("systemctl enable", "systemctl start", "deb-systemd-helper enable",
                 "deb-systemd-invoke start"):
        assert word not in postinst, word
    for script in ("postinst", "prerm", "postrm"):
        run_ok("sh", "-n", str(ctl / script))


def test_deb_daemon_runs(deb, tmp_path):
    # The packaged (stripped) binary loads the packaged configuration, without installing.
    root = tmp_path / "x"
    run_ok("dpkg-deb", "-x", deb, str(root))
    check_config(str(root / "usr/sbin/acemqd"), str(root / "etc/acemq/acemq.conf"))
    r = subprocess.run([str(root / "usr/bin/acemq-token"), "--help"], capture_output=True)
    assert r.returncode == 0


def _dpkg_status(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


def test_deb_installs_and_removes(deb):
    if os.geteuid() != 0:
        pytest.skip("installing the .deb with dpkg -i needs root (CI runs as root)")
    if "installed" in _dpkg_status("acemq") and "not-installed" not in _dpkg_status("acemq"):
        pytest.skip("an acemq package is already installed here; not replacing it")
    if os.path.exists("/etc/acemq"):
        pytest.skip("/etc/acemq exists on this machine; not overwriting it")
    wants = "/etc/systemd/system/multi-user.target.wants/acemqd.service"
    try:
        r = subprocess.run(["dpkg", "-i", deb], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "install ok installed" in _dpkg_status("acemq")
        check_config("/usr/sbin/acemqd", "/etc/acemq/acemq.conf")
        # postinst made the user and its directories, and enabled nothing.
        pw = run_ok("getent", "passwd", "acemq").strip().split(":")
        assert pw[5] == "/var/lib/acemq", pw
        for d in ("/var/lib/acemq", "/var/log/acemq"):
            st = os.stat(d)
            assert st.st_uid == int(pw[2]), d
        assert not os.path.lexists(wants)
        assert os.path.exists("/lib/systemd/system/acemqd.service")
        if shutil.which("man"):
            man = subprocess.run(["man", "-w", "acemqd"], capture_output=True, text=True)
            assert man.returncode == 0 and "acemqd.8" in man.stdout, man.stderr
    finally:
        # Purge rather than remove, so that no conffile is left behind for the next run.
        r = subprocess.run(["dpkg", "-P", "acemq"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists("/usr/sbin/acemqd")
    assert not os.path.exists("/etc/acemq/acemq.conf")
    assert "installed" not in _dpkg_status("acemq") or "not-installed" in _dpkg_status("acemq")


# ---- make rpm ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rpm():
    need("rpmbuild", "rpm")
    make("rpm")
    arch = run_ok("rpm", "--eval", "%{_arch}").strip()
    path = os.path.join(BUILD, "acemq-%s-1.%s.rpm" % (VERSION, arch))
    assert os.path.exists(path), os.listdir(BUILD)
    return path


def test_rpm_contents(rpm):
    files = run_ok("rpm", "-qlp", rpm).split()
    for p in COMMON + ["/usr/lib/systemd/system/acemqd.service"]:
        assert p in files, "%s missing from the rpm: %s" % (p, files)
    for m in MAN:
        assert m in files or m + ".gz" in files, (m, files)
    assert "/var/lib/acemq" in files and "/var/log/acemq" in files
    assert not [f for f in files if "/.build-id" in f or "acemq-bench" in f], files
    assert run_ok("rpm", "-qcp", rpm).split() == ["/etc/acemq/acemq.conf"]
    info = run_ok("rpm", "-qp", "--qf", "%{NAME} %{VERSION}\n", rpm)
    assert info.strip() == "acemq %s" % VERSION


def test_rpm_metadata(rpm):
    requires = run_ok("rpm", "-qp", "--requires", rpm)
    for so in ("libuv.so.1", "libsodium.so.23"):
        assert so in requires, requires
    scripts = run_ok("rpm", "-qp", "--scripts", rpm)
    assert "useradd -r -g acemq" in scripts
    assert "systemctl" in scripts and "enable" not in scripts.replace("disable", "")


def test_rpm_daemon_runs(rpm, tmp_path):
    need("rpm2archive", "rpm")
    data = subprocess.run(["rpm2archive", "-"], stdin=open(rpm, "rb"), capture_output=True,
                          timeout=60)
    assert data.returncode == 0, data.stderr
    with tarfile.open(fileobj=io.BytesIO(data.stdout), mode="r:gz") as t:
        t.extractall(tmp_path)
    check_config(str(tmp_path / "usr/sbin/acemqd"), str(tmp_path / "etc/acemq/acemq.conf"))
