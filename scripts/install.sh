#!/usr/bin/env bash
# install.sh: install consentcam as a hardened systemd service on Raspberry Pi OS (Bookworm and later).
#
#   sudo scripts/install.sh [--model zero2w|pi3bplus|pi4|pi5] [--camera ov5647|imx219|imx477|imx708|imx296]
#                           [--broker-ip ADDR[,ADDR...]] [--no-apt] [--skip-pip] [--dry-run] [--prefix DIR]
#   sudo scripts/install.sh --uninstall [--purge]
#
# What it does (every step is safe to repeat):
#   1. apt packages: python3-venv, python3-picamera2 (Raspberry Pi OS), age, mosquitto-clients, openssl
#   2. the system user `consentcam` (groups video, render) via systemd-sysusers, /etc/consentcam (0750)
#      and /var/lib/consentcam (0700) via systemd-tmpfiles
#   3. a venv with --system-site-packages (picamera2 comes from apt) at /opt/consentcam/venv, with this
#      project pip-installed into it, and /usr/local/bin/consentcam pointing at it
#   4. /etc/consentcam/config.yaml from docs/config.example.yaml with the preset for the detected (or
#      given) Pi model and camera, only if no config exists yet; the matching config.txt lines are written
#      to /etc/consentcam/config.txt.suggested (the boot config is never edited for you)
#   5. systemd/consentcam.service installed and enabled (not started: keys do not exist yet)
# --uninstall removes the unit, the venv, /opt/consentcam and the user, and KEEPS /var/lib/consentcam
# (footage, keys, audit log) and /etc/consentcam; --purge deletes those too.
# --prefix DIR installs into a fake root (tests, image building): no apt, no running systemd touched.
set -euo pipefail
umask 022

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/
DRY_RUN=0
NO_APT=0
SKIP_PIP=0
MODEL=""
CAMERA=""
BROKER_IP=""
UNINSTALL=0
PURGE=0
MODELS="zero2w pi3bplus pi4 pi5"
CAMERAS="ov5647 imx219 imx477 imx708 imx296"

die() { echo "install.sh: $*" >&2; exit 1; }
note() { echo "install.sh: $*"; }
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        --no-apt) NO_APT=1; shift ;;
        --skip-pip) SKIP_PIP=1; shift ;;
        --model) [ $# -ge 2 ] || die "--model needs a value ($MODELS)"; MODEL=$2; shift 2 ;;
        --camera) [ $# -ge 2 ] || die "--camera needs a value ($CAMERAS)"; CAMERA=$2; shift 2 ;;
        --broker-ip) [ $# -ge 2 ] || die "--broker-ip needs an address"; BROKER_IP=$2; shift 2 ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge) PURGE=1; shift ;;
        -h|--help) usage 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done

[ "$PURGE" -eq 0 ] || [ "$UNINSTALL" -eq 1 ] || die "--purge only goes with --uninstall"
if [ -n "$MODEL" ] && [[ " $MODELS " != *" $MODEL "* ]]; then die "unknown --model '$MODEL' (one of: $MODELS)"; fi
if [ -n "$CAMERA" ] && [[ " $CAMERAS " != *" $CAMERA "* ]]; then
    die "unknown --camera '$CAMERA' (one of: $CAMERAS)"
fi
if [ -n "$BROKER_IP" ] && [[ ! $BROKER_IP =~ ^[0-9A-Fa-f.:/,]+$ ]]; then
    die "--broker-ip takes IP addresses or prefixes separated by commas, got '$BROKER_IP'"
fi

if [ "$PREFIX" = / ]; then
    ROOT=""
else
    [ -d "$PREFIX" ] || die "--prefix $PREFIX: no such directory"
    ROOT=$(cd "$PREFIX" && pwd)
    if [ "$UNINSTALL" -eq 0 ] && [ "$NO_APT" -eq 0 ] && [ "$DRY_RUN" -eq 0 ]; then
        die "apt cannot install into --prefix; add --no-apt"
    fi
fi
if [ -z "$ROOT" ] && [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo scripts/install.sh), or use --dry-run to see what it would do"
fi

OPT=$ROOT/opt/consentcam
VENV=$OPT/venv
ETC=$ROOT/etc/consentcam
STATE=$ROOT/var/lib/consentcam
UNIT_DIR=$ROOT/etc/systemd/system
UNIT=$UNIT_DIR/consentcam.service
DROPIN=$UNIT_DIR/consentcam.service.d
SYSUSERS=$ROOT/usr/lib/sysusers.d/consentcam.conf
TMPFILES=$ROOT/usr/lib/tmpfiles.d/consentcam.conf
BIN_LINK=$ROOT/usr/local/bin/consentcam

# Print what is about to happen; in --dry-run only print it.
run() {
    echo "+ $*" >&2
    if [ "$DRY_RUN" -eq 0 ]; then "$@"; fi
}

root_args() { if [ -n "$ROOT" ]; then echo "--root=$ROOT"; fi; }

systemd_live() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

# ---------------------------------------------------------------------------------------------------------
uninstall() {
    if systemd_live; then
        run systemctl disable --now consentcam.service || true
    elif [ -e "$UNIT" ] && command -v systemctl >/dev/null; then
        # shellcheck disable=SC2046  # root_args is one word or none
        run systemctl $(root_args) disable consentcam.service || true
    fi
    run rm -f "$UNIT" "$BIN_LINK" "$SYSUSERS" "$TMPFILES"
    run rm -rf "$DROPIN" "$OPT"
    if systemd_live; then run systemctl daemon-reload; fi
    remove_user
    if [ "$PURGE" -eq 1 ]; then
        run rm -rf "$STATE" "$ETC"
        note "purged: footage, keys, audit log and configuration are gone"
    else
        note "kept $STATE (footage, keys, audit log) and $ETC; --uninstall --purge deletes them"
    fi
    note "uninstalled"
}

remove_user() {
    if ! grep -q '^consentcam:' "$ROOT/etc/passwd" 2>/dev/null; then return 0; fi
    local r=()
    if [ -n "$ROOT" ]; then r=(--root "$ROOT"); fi
    if command -v userdel >/dev/null; then
        run userdel "${r[@]}" consentcam
        if grep -q '^consentcam:' "$ROOT/etc/group" 2>/dev/null; then run groupdel "${r[@]}" consentcam; fi
    else
        die "userdel not found: remove the user consentcam by hand"
    fi
}

# ---------------------------------------------------------------------------------------------------------
apt_packages() {
    if [ "$NO_APT" -eq 1 ]; then note "skipping apt (--no-apt)"; return 0; fi
    local pkgs=(python3-venv python3-pip age mosquitto-clients openssl ca-certificates)
    # python3-picamera2 exists in the Raspberry Pi OS archive only; elsewhere the synthetic/opencv sources work.
    if apt-cache show python3-picamera2 >/dev/null 2>&1; then
        pkgs+=(python3-picamera2)
    else
        note "python3-picamera2 is not available here (not Raspberry Pi OS?): the camera module will not work"
    fi
    run apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
}

user_and_dirs() {
    run install -D -m 0644 "$SRC/systemd/consentcam.sysusers" "$SYSUSERS"
    run install -D -m 0644 "$SRC/systemd/consentcam.tmpfiles" "$TMPFILES"
    if command -v systemd-sysusers >/dev/null; then
        # shellcheck disable=SC2046
        run systemd-sysusers $(root_args) "$SYSUSERS"
    elif ! grep -q '^consentcam:' "$ROOT/etc/passwd" 2>/dev/null; then
        local r=()
        if [ -n "$ROOT" ]; then r=(--root "$ROOT"); fi
        run useradd "${r[@]}" --system --home-dir /var/lib/consentcam --shell /usr/sbin/nologin \
            --groups video,render --user-group consentcam
    fi
    if command -v systemd-tmpfiles >/dev/null; then
        # shellcheck disable=SC2046
        run systemd-tmpfiles $(root_args) --create "$TMPFILES"
    else
        run install -d -m 0750 -o root -g consentcam "$ETC" "$ETC/tls"
        run install -d -m 0700 -o consentcam -g consentcam "$STATE"
    fi
    # After an --uninstall (which keeps footage) the user may come back with another uid: give the kept
    # state back to it. (systemd does the same for StateDirectory= on start; this covers `consentcam init`.)
    if [ "$DRY_RUN" -eq 0 ] && [ -d "$STATE" ]; then
        local uid gid
        uid=$(awk -F: '$1 == "consentcam" {print $3}' "$ROOT/etc/passwd")
        gid=$(awk -F: '$1 == "consentcam" {print $3}' "$ROOT/etc/group")
        if [ -n "$uid" ] && [ -n "$(find "$STATE" ! -uid "$uid" -print -quit)" ]; then
            run chown -R "$uid:$gid" "$STATE"
        fi
    fi
}

os_codename() {
    # VERSION_CODENAME of the target system (the fake root's when --prefix is given).
    local f="$ROOT/etc/os-release"
    [ -r "$f" ] || f=/etc/os-release
    sed -n 's/^VERSION_CODENAME=//p' "$f" 2>/dev/null | tr -d '"'
}

venv_and_package() {
    run install -d -m 0755 "$OPT"
    if [ ! -x "$VENV/bin/python" ]; then
        if [ "$SKIP_PIP" -eq 1 ]; then
            run python3 -m venv --system-site-packages --without-pip "$VENV"
        else
            run python3 -m venv --system-site-packages "$VENV"
        fi
    fi
    if [ "$SKIP_PIP" -eq 1 ]; then
        note "skipping pip install (--skip-pip)"
    else
        local pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir)
        if [ "$(os_codename)" = "bookworm" ]; then
            # Keep Bookworm's numpy 1.24 (picamera2's simplejpeg is built against it): see the file.
            run "${pip[@]}" -r "$SRC/deploy/requirements/bookworm.txt"
            run "${pip[@]}" --no-deps "$SRC"
        else
            run "${pip[@]}" "$SRC"
        fi
    fi
    # Documentation and firmware presets next to the venv (the unit's Documentation= points here).
    run rm -rf "$OPT/docs" "$OPT/firmware_configs"
    run cp -r "$SRC/docs" "$OPT/docs"
    run cp -r "$SRC/firmware_configs" "$OPT/firmware_configs"
    run install -d -m 0755 "$(dirname "$BIN_LINK")"
    run ln -sfn /opt/consentcam/venv/bin/consentcam "$BIN_LINK"
}

# The Python that runs edge.presets: the installed package if pip ran, else this source tree.
presets() {
    if [ "$SKIP_PIP" -eq 0 ] && [ -x "$VENV/bin/python" ]; then
        run env CONSENTCAM_FIRMWARE_DIR="$SRC/firmware_configs" "$VENV/bin/python" -m edge.presets "$@"
    else
        run env PYTHONPATH="$SRC" CONSENTCAM_FIRMWARE_DIR="$SRC/firmware_configs" \
            "${CONSENTCAM_PYTHON:-python3}" -m edge.presets "$@"
    fi
}

detect_model() {
    if [ -n "$MODEL" ]; then return 0; fi
    local f
    for f in "$ROOT/proc/device-tree/model" /proc/device-tree/model; do
        if [ -r "$f" ]; then
            MODEL=$(DRY_RUN=0 presets detect-model --file "$f" 2>/dev/null) || MODEL=""
            if [ -n "$MODEL" ]; then break; fi
        fi
    done
    [ -n "$MODEL" ] || die "could not detect the Raspberry Pi model; pass --model ($MODELS)"
}

detect_camera() {
    if [ -n "$CAMERA" ]; then return 0; fi
    local lister
    for lister in rpicam-hello libcamera-hello; do
        if [ -z "$ROOT" ] && command -v "$lister" >/dev/null; then
            CAMERA=$("$lister" --list-cameras 2>/dev/null | DRY_RUN=0 presets detect-camera 2>/dev/null) \
                || CAMERA=""
            break
        fi
    done
    if [ -z "$CAMERA" ]; then
        CAMERA=imx708
        note "no camera detected; using the Camera Module 3 (imx708) preset (--camera to choose)"
    fi
}

config_file() {
    local cfg=$ETC/config.yaml
    if [ -e "$cfg" ]; then
        note "keeping the existing $cfg"
        return 0
    fi
    detect_model
    detect_camera
    note "writing $cfg with the $MODEL + $CAMERA preset"
    presets apply --model "$MODEL" --camera "$CAMERA" --config-in "$SRC/docs/config.example.yaml" \
        --out "$cfg"
    local gid
    gid=$(awk -F: '$1 == "consentcam" {print $3}' "$ROOT/etc/group" 2>/dev/null || true)
    run chmod 0640 "$cfg"
    if [ -n "$gid" ]; then run chown "0:$gid" "$cfg"; fi
    if [ "$DRY_RUN" -eq 0 ]; then
        {
            echo "# Lines for /boot/firmware/config.txt ($MODEL + $CAMERA). Review, append, reboot."
            presets boot "$MODEL" "$CAMERA"
        } > "$ETC/config.txt.suggested"
        chmod 0644 "$ETC/config.txt.suggested"
    fi
}

unit_file() {
    run install -D -m 0644 "$SRC/systemd/consentcam.service" "$UNIT"
    if [ -n "$BROKER_IP" ]; then
        run install -d -m 0755 "$DROPIN"
        local allow
        allow=$(echo "$BROKER_IP" | tr ',' ' ')
        if [ "$DRY_RUN" -eq 0 ]; then
            printf '%s\n' "# Written by install.sh --broker-ip: outbound IP traffic only to the broker (and DNS on" \
                "# localhost). No inbound port is used. Change the broker address here too if it moves." \
                "[Service]" "IPAddressDeny=any" "IPAddressAllow=localhost $allow" > "$DROPIN/50-broker-ip.conf"
        fi
    fi
    if systemd_live; then
        run systemctl daemon-reload
        run systemctl enable consentcam.service
    elif command -v systemctl >/dev/null; then
        # shellcheck disable=SC2046
        run systemctl $(root_args) enable consentcam.service
    fi
}

# ---------------------------------------------------------------------------------------------------------
if [ "$UNINSTALL" -eq 1 ]; then
    uninstall
    exit 0
fi

apt_packages
user_and_dirs
venv_and_package
config_file
unit_file

cat <<EOF

consentcam is installed (not started). Next steps:
  1. Review ${ETC}/config.yaml (device name, location, mqtt) and ${ETC}/config.txt.suggested
     (camera lines for /boot/firmware/config.txt; reboot after changing it).
  2. Create the keys; you choose the owner's passphrase (it protects the only key that opens footage):
       sudo -u consentcam consentcam init
  3. Start it:  sudo systemctl start consentcam   and check:  sudo -u consentcam consentcam status
Docs: /opt/consentcam/docs/DEPLOY.md. Uninstall: scripts/install.sh --uninstall (keeps footage and keys).
EOF
