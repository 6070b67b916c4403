#!/usr/bin/env bash
# Set up everything consentcam needs to run and test on Debian / Raspberry Pi OS:
# system tools (age, mosquitto, openssl, systemd-analyze; with --test also shellcheck, which the script
# tests run) through apt when missing, then a virtualenv in .venv with the package and its test extras.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v age >/dev/null || need_apt+=(age)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v mosquitto_pub >/dev/null || need_apt+=(mosquitto-clients)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
if [ "${1:-}" = --test ]; then command -v shellcheck >/dev/null || need_apt+=(shellcheck); fi
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)

if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
        echo "bootstrap: please install: ${need_apt[*]} (apt-get install ${need_apt[*]})" >&2; exit 1
    fi
    echo "bootstrap: installing ${need_apt[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# On a Pi, picamera2 comes from apt (python3-picamera2): let the venv see system packages.
venv_flags=()
python3 -c 'import picamera2' 2>/dev/null && venv_flags+=(--system-site-packages)

if [ ! -x .venv/bin/python ]; then
    python3 -m venv "${venv_flags[@]}" .venv
fi
stamp=.venv/.consentcam-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
    touch "$stamp"
fi
