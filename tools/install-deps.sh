#!/bin/sh
# Installs the Debian packages acemq needs to build and test, if any are missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -e
PKGS="build-essential clang libclang-rt-14-dev pkg-config libuv1-dev libmbedtls-dev libcbor-dev libjansson-dev
node-llhttp libsodium-dev openssl mosquitto mosquitto-clients python3 python3-paho-mqtt
python3-pytest python3-cryptography python3-cbor2 python3-openssl dpkg-dev rpm glewlwyd sqlite3
python3-prometheus-client chromium $(command -v npm >/dev/null 2>&1 || echo nodejs npm)"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "acemq: missing build dependencies; run as root:" >&2
    echo "  apt-get install -y$missing" >&2
    exit 1
fi
echo "acemq: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
# Debian starts the mosquitto service where it can; acemq's tests and benchmarks start their own.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi
