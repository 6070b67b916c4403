#!/usr/bin/env bash
# arm64-check.sh: install and smoke-test consentcam on an emulated aarch64 Debian Bookworm (the base of
# Raspberry Pi OS), through qemu-user and binfmt_misc. Opt-in: not part of the test suite or of CI.
#
#   sudo scripts/arm64-check.sh [--root DIR] [--mirror URL] [--tests] [--bench] [--dev] [--all]
#                               [--keep-mounts]
#
# Steps (each is skipped when already done; a second run re-copies this tree and re-runs the checks):
#   1. host: qemu-user-static, debootstrap, binfmt-support (apt) and qemu-aarch64 registered in binfmt_misc
#      with flag F (the emulator is opened once, so the chroot needs no copy of it)
#   2. an arm64 Bookworm root file system at DIR (default /var/tmp/consentcam-arm64; keep it outside the
#      repository) made by debootstrap; `uname -m` run inside it must say aarch64
#   3. inside: python3, python3-venv, python3-numpy (1.24, as Raspberry Pi OS ships it), age, mosquitto,
#      openssl, systemd (for systemd-sysusers/-tmpfiles, as on a Pi)
#   4. the host's own CAs (/usr/local/share/ca-certificates, e.g. a TLS-inspecting proxy) added to the
#      chroot's store; this working tree (tracked and new files, not .venv) copied to DIR/usr/local/src/consentcam and
#      scripts/install.sh run from there exactly as a Pi owner runs it (--model pi4 --camera imx708, since
#      there is no device tree under emulation). pip's log is kept: the report lists every installed
#      distribution with its wheel tag (manylinux..._aarch64 = binary wheel from PyPI, linux_aarch64 =
#      compiled here) and every "Building wheel for" line
#   5. smoke, as the consentcam user with a temporary state directory: --help, init, synth (10 s),
#      detect --json (must find the walker), clips import / list / verify / export (bit-for-bit), every
#      segment decrypted with the aarch64 `age` binary (bit-for-bit), and a tampered segment that
#      `clips verify` must report (exit 6)
#   --tests  a pytest subset in the installed venv (the pytest pins of pyproject.toml added to it);
#            ARM64_TESTS overrides the file list, ARM64_TEST_TIMEOUT (s, default 5400) bounds the run
#   --bench  bench/vault.py --mb 20 --runs 1 and bench/motion.py --quick, only to see that they run
#            (timings under emulation say nothing about a Pi)
#   --dev    scripts/bootstrap.sh in the copy (pyproject.toml's own pins: numpy 2.x, OpenCV 5), its wheel
#            report and a detect run with that venv
#   --demo   `consentcam demo --clips 1` as the consentcam user (mosquitto, paho-mqtt, the live daemon, a
#            signed request and a release). Not in --all: slow under emulation
# Everything heavy runs under nice -n 19. Logs: DIR/var/log/arm64-check/. Exit 0 only if every step passed.
set -euo pipefail
umask 022

SRC=$(cd "$(dirname "$0")/.." && pwd)
ROOT=/var/tmp/consentcam-arm64
MIRROR=""
DO_TESTS=0
DO_BENCH=0
DO_DEV=0
DO_DEMO=0
KEEP_MOUNTS=0
INNER=""
SRC_IN=/usr/local/src/consentcam    # where the copy lives inside the chroot (readable by the service user)
LOG_IN=/var/log/arm64-check         # logs inside the chroot
DEFAULT_TESTS="tests/test_age_encrypt.py tests/test_vault_core.py tests/test_motion.py tests/test_config.py"
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

die() { echo "arm64-check: $*" >&2; exit 1; }
note() { echo "arm64-check: $*" >&2; }
usage() { sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift 2 ;;
        --mirror) [ $# -ge 2 ] || die "--mirror needs a URL"; MIRROR=$2; shift 2 ;;
        --tests) DO_TESTS=1; shift ;;
        --bench) DO_BENCH=1; shift ;;
        --dev) DO_DEV=1; shift ;;
        --demo) DO_DEMO=1; shift ;;
        --all) DO_TESTS=1; DO_BENCH=1; DO_DEV=1; shift ;;
        --keep-mounts) KEEP_MOUNTS=1; shift ;;
        --inner) [ $# -ge 2 ] || die "--inner needs a step"; INNER=$2; shift 2 ;;
        -h|--help) usage 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done

# =========================================================================================================
# Inside the chroot (this same script, called by the host part below with --inner STEP).
# =========================================================================================================
VENV=/opt/consentcam/venv

# Which distributions a venv holds and how each arrived: the Tag of its WHEEL file.
wheel_report() {
    "$1" - <<'PY'
import importlib.metadata as md
import sys

rows = []
for dist in md.distributions():
    loc = str(dist.locate_file(""))
    if not loc.startswith(sys.prefix):
        continue  # the system's (apt) packages seen through --system-site-packages
    tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")]
    tag = tags[0] if tags else "-"
    if not tags:
        how = "from an sdist by legacy setup.py install (no WHEEL file)"
    elif "manylinux" in tag or "musllinux" in tag:
        how = "binary wheel (PyPI)"
    elif tag.endswith("linux_aarch64"):
        how = "COMPILED HERE from source"
    elif tag.endswith("-none-any"):
        how = "pure Python"
    else:
        how = "?"
    rows.append((dist.metadata["Name"], dist.version, tag, how))
for name, version, tag, how in sorted(rows, key=lambda r: r[0].lower()):
    print(f"{name:28} {version:14} {tag:70} {how}")
PY
}

# Throwaway directories made inside the chroot (synthetic footage, a test passphrase): removed when the
# inner step exits, also when it fails part-way.
SCRATCH=()
remove_scratch() { [ ${#SCRATCH[@]} -eq 0 ] || rm -rf "${SCRATCH[@]}"; }

inner_smoke() {
    local bin=${1:-/usr/local/bin/consentcam} py=${2:-$VENV/bin/python}
    [ "$(uname -m)" = aarch64 ] || die "not on aarch64: $(uname -m)"
    "$py" - <<'PY'
import platform
import sys

import av
import cryptography
import cv2
import numpy
import paho.mqtt
import pyrage  # noqa: F401
import yaml

assert platform.machine() == "aarch64", platform.machine()
print("python", sys.version.split()[0], platform.machine())
print("numpy", numpy.__version__, numpy.__file__)
print("opencv", cv2.__version__, "| av", av.__version__, "| cryptography", cryptography.__version__,
      "| paho-mqtt", paho.mqtt.__version__, "| PyYAML", yaml.__version__)
PY
    "$bin" --version
    "$bin" --help >/dev/null

    local t
    t=$(mktemp -d /tmp/consentcam-smoke.XXXXXX)
    SCRATCH+=("$t")
    cp /opt/consentcam/docs/config.example.yaml "$t/config.yaml"
    printf 'correct horse battery staple arm64\n' > "$t/pass"
    export CONSENTCAM_CONFIG=$t/config.yaml CONSENTCAM_STATE_DIR=$t/state

    "$bin" init --passphrase-file "$t/pass" --json > "$t/init.json"
    grep -q '"owner_recipient": "age1' "$t/init.json" || die "init: no owner recipient"
    note "smoke: init ok"

    "$bin" synth --seconds 10 --scenario walk "$t/walk.mp4" --json > "$t/synth.json"
    "$bin" detect "$t/walk.mp4" --json > "$t/detect.json"
    "$py" - "$t/walk.mp4.json" "$t/detect.json" <<'PY'
import json
import sys

truth = json.load(open(sys.argv[1]))["motion"]
events = json.load(open(sys.argv[2]))["events"]
assert truth and events, (truth, events)
hit = any(e["start"] < t["end"] and e["end"] > t["start"] for e in events for t in truth)
assert hit, (truth, events)
print("detect: events", json.dumps(events), "truth", json.dumps(truth))
PY
    note "smoke: synth + detect ok"

    # A second, busier scene (6 MB at 640x480) makes a clip of several segments.
    "$bin" synth --seconds 10 --scenario mixed "$t/mixed.mp4" --json > /dev/null
    "$bin" clips import --start 2026-01-02T03:04:05Z "$t/walk.mp4" "$t/mixed.mp4" --json > "$t/import.json"
    local ids=() id
    mapfile -t ids < <("$py" -c 'import json,sys; [print(c["id"]) for c in json.load(open(sys.argv[1]))]' \
        "$t/import.json")
    [ "${#ids[@]}" -eq 2 ] || die "clips import: expected 2 clips, got ${#ids[@]}"
    "$bin" clips list --json > "$t/list.json"
    for id in "${ids[@]}"; do grep -q "\"id\": \"$id\"" "$t/list.json" || die "clips list: $id missing"; done
    "$bin" clips verify >/dev/null || die "clips verify failed"
    local src=(walk mixed) i
    for i in 0 1; do
        "$bin" clips export "${ids[$i]}" --out "$t/export-$i.mp4" --passphrase-file "$t/pass" --json >/dev/null
        cmp "$t/${src[$i]}.mp4" "$t/export-$i.mp4" || die "export of ${ids[$i]} differs from ${src[$i]}.mp4"
    done
    note "smoke: import (2 clips), list, verify, export (bit-for-bit) ok"

    # The owner key is an age file sealed with the passphrase; the age CLI asks for passphrases on a
    # terminal only, so pyrage opens it and the aarch64 age binary decrypts the segments with it.
    "$py" -c 'import sys, pyrage
p = open(sys.argv[1]).readline().rstrip("\n")
sys.stdout.write(pyrage.passphrase.decrypt(open(sys.argv[2], "rb").read(), p).decode())' \
        "$t/pass" "$t/state/keys/owner.key.age" > "$t/owner.key"
    local seg segs=() total=0
    for i in 0 1; do
        segs=()
        for seg in "$t/state/vault/clips/${ids[$i]}"/seg-*.age; do segs+=("$seg"); done
        [ -e "${segs[0]}" ] || die "no segments in clip ${ids[$i]}"
        for seg in "${segs[@]}"; do age -d -i "$t/owner.key" "$seg"; done > "$t/age-$i.mp4"
        cmp "$t/${src[$i]}.mp4" "$t/age-$i.mp4" || die "age CLI output for ${ids[$i]} differs from ${src[$i]}.mp4"
        total=$((total + ${#segs[@]}))
    done
    [ "$total" -ge 3 ] || die "expected a clip of several segments, got $total segments in all"
    note "smoke: $total segments decrypted with $(command -v age) $(age --version): bit-for-bit ok"

    # A flipped byte in a segment must be reported (exit 6), or the checks above prove little.
    "$py" -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(200); b = f.read(1); f.seek(200); f.write(bytes([b[0] ^ 1]))' "${segs[0]}"
    local rc=0
    "$bin" clips verify >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 6 ] || die "clips verify after tampering: exit $rc, expected 6"
    note "smoke: tampered segment reported by clips verify (exit 6)"
    rm -rf "$t"
    echo "SMOKE PASSED"
}

inner_tests() {
    cd "$SRC_IN"
    local pins
    pins=$("$VENV/bin/python" -c 'import tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["test"]
print(" ".join(d for d in deps if not d.startswith("ruff")))')
    # shellcheck disable=SC2086  # pins are single words
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $pins
    local files=${ARM64_TESTS:-$DEFAULT_TESTS}
    # shellcheck disable=SC2086  # a list of test files
    timeout "${ARM64_TEST_TIMEOUT:-5400}" "$VENV/bin/python" -m pytest -q -p no:cacheprovider --timeout 1800 $files
}

inner_bench() {
    cd "$SRC_IN"
    "$VENV/bin/python" bench/vault.py --mb 20 --runs 1
    "$VENV/bin/python" bench/motion.py --quick
}

inner_demo() {
    local out
    out=$(mktemp -d /tmp/consentcam-demo-out.XXXXXX)
    SCRATCH+=("$out")
    rmdir "$out"
    consentcam demo --out "$out" --clips 1 --json
    rm -rf "$out"
}

inner_dev() {
    cd "$SRC_IN"
    scripts/bootstrap.sh
    wheel_report .venv/bin/python
    local t
    t=$(mktemp -d /tmp/consentcam-dev.XXXXXX)
    SCRATCH+=("$t")
    .venv/bin/consentcam synth --seconds 10 --scenario walk "$t/walk.mp4" --json >/dev/null
    .venv/bin/consentcam detect "$t/walk.mp4" --json
    inner_smoke "$SRC_IN/.venv/bin/consentcam" "$SRC_IN/.venv/bin/python"
    rm -rf "$t"
}

if [ -n "$INNER" ]; then
    trap remove_scratch EXIT
    case "$INNER" in
        smoke) inner_smoke ;;
        wheels) wheel_report "$VENV/bin/python" ;;
        tests) inner_tests ;;
        bench) inner_bench ;;
        dev) inner_dev ;;
        demo) inner_demo ;;
        *) die "unknown inner step '$INNER'" ;;
    esac
    exit 0
fi

# =========================================================================================================
# On the host.
# =========================================================================================================
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot and mounts need it)"
case "$ROOT" in
    /|"") die "--root must be a dedicated directory" ;;
    "$SRC"|"$SRC"/*) die "--root must be outside the repository ($SRC)" ;;
esac
mkdir -p "$(dirname "$ROOT")"
ROOT=$(cd "$(dirname "$ROOT")" && pwd)/$(basename "$ROOT")
LOG=$ROOT$LOG_IN
declare -a RESULTS=()
FAILED=0
MOUNTED=()

record() { RESULTS+=("$(printf '%-8s %s' "$1" "$2")"); if [ "$1" = FAIL ]; then FAILED=1; fi; }

host_packages() {
    local need=()
    command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
    command -v debootstrap >/dev/null || need+=(debootstrap)
    command -v update-binfmts >/dev/null || need+=(binfmt-support)
    if [ ${#need[@]} -gt 0 ]; then
        note "installing on the host: ${need[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
}

binfmt() {
    local bm=/proc/sys/fs/binfmt_misc
    [ -e "$bm/register" ] || mount -t binfmt_misc binfmt_misc "$bm"
    if [ ! -e "$bm/qemu-aarch64" ]; then
        update-binfmts --enable qemu-aarch64 2>/dev/null || true
    fi
    if [ ! -e "$bm/qemu-aarch64" ]; then
        # The line Debian's qemu-user-static registers, with F (fix binary: open the emulator now).
        local magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
        local mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
        printf '%s\n' ":qemu-aarch64:M::${magic}:${mask}:$(command -v qemu-aarch64-static):F" > "$bm/register"
    fi
    grep -qx enabled "$bm/qemu-aarch64" || die "binfmt_misc: qemu-aarch64 is registered but disabled"
    grep -q '^flags:.*F' "$bm/qemu-aarch64" \
        || die "binfmt_misc: qemu-aarch64 lacks the F flag (a chroot would need the emulator inside it)"
}

host_mirror() {
    if [ -n "$MIRROR" ]; then echo "$MIRROR"; return 0; fi
    local m=""
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        m=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' \
            /etc/apt/sources.list)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

rootfs() {
    if [ -f "$ROOT/.arm64-check-debootstrap-done" ]; then return 0; fi
    if [ ! -e "$ROOT/debootstrap" ] && [ -x "$ROOT/usr/bin/apt-get" ] && [ -f "$ROOT/etc/debian_version" ]; then
        touch "$ROOT/.arm64-check-debootstrap-done"   # made earlier by hand or by another run
        return 0
    fi
    if [ -e "$ROOT/debootstrap" ]; then
        die "$ROOT holds an unfinished debootstrap: remove it (rm -rf $ROOT) and run again"
    fi
    local mirror
    mirror=$(host_mirror)
    note "debootstrap arm64 bookworm into $ROOT from $mirror (takes a while under emulation)"
    mkdir -p "$ROOT"
    nice -n 19 debootstrap --arch=arm64 --include=ca-certificates bookworm "$ROOT" "$mirror" \
        > "$ROOT.debootstrap.log" 2>&1 || die "debootstrap failed: see $ROOT.debootstrap.log"
    touch "$ROOT/.arm64-check-debootstrap-done"
}

cleanup() {
    if [ "$KEEP_MOUNTS" -eq 1 ]; then return 0; fi
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTED[$i]}" 2>/dev/null || umount -l "${MOUNTED[$i]}" || true
    done
}

mounts() {
    trap cleanup EXIT
    local what
    for what in proc sys dev dev/pts; do
        mkdir -p "$ROOT/$what"
        if mountpoint -q "$ROOT/$what"; then continue; fi
        case "$what" in
            proc) mount -t proc proc "$ROOT/proc" ;;
            dev/pts) mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts" ;;
            *) mount --bind "/$what" "$ROOT/$what" ;;
        esac
        MOUNTED+=("$ROOT/$what")
    done
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
}

# CAs the host added itself (a TLS-inspecting proxy, a site CA) go into the chroot's store too, or pip
# there cannot reach the package index the host reaches. A Pi on a plain network needs nothing of this.
site_cas() {
    local crts=()
    if [ -d /usr/local/share/ca-certificates ]; then
        mapfile -t crts < <(find /usr/local/share/ca-certificates -name '*.crt' -type f)
    fi
    if [ ${#crts[@]} -eq 0 ]; then return 0; fi
    mkdir -p "$ROOT/usr/local/share/ca-certificates/arm64-check-host"
    cp "${crts[@]}" "$ROOT/usr/local/share/ca-certificates/arm64-check-host/"
    STEP_LIMIT=600 in_root update-ca-certificates >/dev/null
}

# Run a command inside the chroot, niced, with a clean environment, for at most STEP_LIMIT seconds.
in_root() {
    timeout "${STEP_LIMIT:-7200}" nice -n 19 chroot "$ROOT" /usr/bin/env -i PATH="$CHROOT_PATH" HOME=/root \
        LANG=C.UTF-8 "$@"
}

# Run one step inside, its output to a log; record PASS or FAIL.
step() {
    local name=$1 limit=$2
    shift 2
    note "step $name (log: $LOG/$name.log)"
    local rc=0
    STEP_LIMIT=$limit "$@" > "$LOG/$name.log" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then record PASS "$name"; else record FAIL "$name (exit $rc, see $LOG/$name.log)"; fi
    return 0
}

root_packages() {
    local pkgs=(python3 python3-venv python3-pip python3-numpy age mosquitto mosquitto-clients openssl systemd)
    local status
    # shellcheck disable=SC2016  # ${Status} is dpkg-query's format, not the shell's
    status=$(in_root dpkg-query -W -f='${Status}\n' "${pkgs[@]}" 2>/dev/null || true)
    if [ "$(grep -cx 'install ok installed' <<<"$status")" -eq "${#pkgs[@]}" ]; then
        echo "already installed: ${pkgs[*]}"
        return 0
    fi
    # No daemon starts inside the chroot.
    printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
    chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
    in_root apt-get update -qq
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
}

copy_tree() {
    rm -rf "$ROOT$SRC_IN"
    mkdir -p "$ROOT$SRC_IN"
    git -C "$SRC" ls-files -z --cached --others --exclude-standard \
        | tar -C "$SRC" --null --ignore-failed-read -T - -cf - 2>/dev/null \
        | tar -C "$ROOT$SRC_IN" -xf -
    [ -x "$ROOT$SRC_IN/scripts/install.sh" ] || die "copy of the tree into $ROOT$SRC_IN failed"
}

install_like_a_pi() {
    # The owner's path, unchanged; PIP_LOG keeps pip's full log although install.sh runs it --quiet.
    in_root env PIP_LOG="$LOG_IN/pip-install.log" bash "$SRC_IN/scripts/install.sh" --model pi4 --camera imx708
}

# ---------------------------------------------------------------------------------------------------------
host_packages
binfmt
rootfs
mkdir -p "$LOG"
if [ "$(chroot "$ROOT" /usr/bin/uname -m)" = aarch64 ]; then
    record PASS "aarch64 binaries run ($(chroot "$ROOT" /usr/bin/uname -m), $(qemu-aarch64-static --version | head -n1))"
else
    die "the aarch64 uname in $ROOT did not run as aarch64"
fi
mounts
step apt 3600 root_packages
in_root dpkg-query -W python3 python3-numpy age mosquitto openssl > "$LOG/versions.txt" 2>&1 || true
site_cas
copy_tree
rm -f "$LOG/pip-install.log"   # pip appends: keep this run's log only
step install 7200 install_like_a_pi
step wheels 600 in_root bash "$SRC_IN/scripts/arm64-check.sh" --inner wheels
grep -h 'Building wheel for' "$LOG/pip-install.log" > "$LOG/built-from-source.txt" 2>/dev/null || true
step smoke 3600 in_root chroot --userspec=consentcam:consentcam / /usr/bin/env -i PATH="$CHROOT_PATH" HOME=/tmp \
    LANG=C.UTF-8 bash "$SRC_IN/scripts/arm64-check.sh" --inner smoke
if [ "$DO_TESTS" -eq 1 ]; then
    step tests $((${ARM64_TEST_TIMEOUT:-5400} + 600)) in_root env ARM64_TESTS="${ARM64_TESTS:-$DEFAULT_TESTS}" \
        ARM64_TEST_TIMEOUT="${ARM64_TEST_TIMEOUT:-5400}" bash "$SRC_IN/scripts/arm64-check.sh" --inner tests
fi
if [ "$DO_BENCH" -eq 1 ]; then
    step bench 3600 in_root bash "$SRC_IN/scripts/arm64-check.sh" --inner bench
fi
if [ "$DO_DEMO" -eq 1 ]; then
    step demo 1800 in_root chroot --userspec=consentcam:consentcam / /usr/bin/env -i PATH="$CHROOT_PATH" HOME=/tmp \
        LANG=C.UTF-8 bash "$SRC_IN/scripts/arm64-check.sh" --inner demo
fi
if [ "$DO_DEV" -eq 1 ]; then
    step dev 7200 in_root bash "$SRC_IN/scripts/arm64-check.sh" --inner dev
fi

echo "== consentcam on emulated aarch64 ($ROOT)"
sed 's/^/   /' "$LOG/versions.txt"
echo "== venv /opt/consentcam/venv (install.sh):"
sed 's/^/   /' "$LOG/wheels.log" 2>/dev/null || true
if [ -s "$LOG/built-from-source.txt" ]; then
    echo "== built from source by pip:"
    sed 's/^/   /' "$LOG/built-from-source.txt"
fi
echo "== results"
printf '   %s\n' "${RESULTS[@]}"
if [ "$FAILED" -ne 0 ]; then die "some steps failed"; fi
echo "arm64-check: all steps passed"
