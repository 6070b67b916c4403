#!/usr/bin/env bash
# make-certs.sh: the certificate authority and certificates of a consentcam MQTT network (openssl only).
#
#   scripts/make-certs.sh [--dir DIR] [--days N] ca                      # once: DIR/ca.crt + DIR/ca.key
#   scripts/make-certs.sh [--dir DIR] broker NAME [NAME|IP ...]          # DIR/broker/{broker.crt,broker.key,ca.crt}
#   scripts/make-certs.sh [--dir DIR] device DEVICE_ID                   # DIR/clients/ID/{client.crt,client.key,ca.crt}
#   scripts/make-certs.sh [--dir DIR] investigator INBOX [--acl FILE]    # same, and a `user` block in the ACL
#   scripts/make-certs.sh [--dir DIR] client NAME                        # e.g. ha-home for Home Assistant
#
# The certificate's CN is the MQTT username the broker's ACL sees (%u): the device id for a device
# (`consentcam status` / `consentcam init` show it), the inbox name for an investigator. Device ids look like
# "cc" + 16 base32 characters; investigator and other names must not, so the two namespaces never overlap.
# Keys are EC P-256 (supported by every MQTT broker and client), written 0600; nothing is overwritten unless
# --force is given. Keep DIR/ca.key offline: whoever has it can admit clients to the network.
set -euo pipefail
umask 077

DIR=./consentcam-pki
DAYS=825
CA_DAYS=3650
FORCE=0
ACL=""

die() { echo "make-certs: $*" >&2; exit 1; }
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

command -v openssl >/dev/null || die "openssl is not installed (apt-get install openssl)"

args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) [ $# -ge 2 ] || die "--dir needs a directory"; DIR=$2; shift 2 ;;
        --days) [ $# -ge 2 ] || die "--days needs a number"; DAYS=$2; shift 2 ;;
        --acl) [ $# -ge 2 ] || die "--acl needs a file"; ACL=$2; shift 2 ;;
        --force) FORCE=1; shift ;;
        -h|--help) usage ;;
        --*) die "unknown option $1" ;;
        *) args+=("$1"); shift ;;
    esac
done
[ ${#args[@]} -ge 1 ] || usage
case "$DAYS" in ''|*[!0-9]*) die "--days must be a whole number, got '$DAYS'" ;; esac
cmd=${args[0]}

NAME_RE='^[a-z0-9][a-z0-9._-]{0,63}$'
DEVICE_RE='^cc[a-z2-7]{16}$'

check_name() {  # kind name
    [[ $2 =~ $NAME_RE ]] || die "$1 name '$2': use 1-64 of a-z 0-9 . _ - (starting with a letter or digit)"
    if [ "$1" = device ]; then
        [[ $2 =~ $DEVICE_RE ]] || die "device id '$2' is not a consentcam device id (cc + 16 base32 characters)"
    else
        [[ ! $2 =~ $DEVICE_RE ]] || die "$1 name '$2' looks like a device id; choose another name"
    fi
}

need_ca() {
    if [ ! -f "$DIR/ca.crt" ] || [ ! -f "$DIR/ca.key" ]; then die "no CA in $DIR: run '$0 --dir $DIR ca' first"; fi
}

refuse_overwrite() {  # path
    if [ -e "$1" ] && [ "$FORCE" -ne 1 ]; then
        die "$1 exists; not overwriting (use --force to replace it)"
    fi
}

# issue KIND CN OUTDIR BASENAME EXTFILE: a new key + certificate signed by the CA
issue() {
    local cn=$2 out=$3 base=$4 ext=$5 csr
    mkdir -p "$out"
    refuse_overwrite "$out/$base.crt"
    csr=$(mktemp)
    # shellcheck disable=SC2064  # expand now: the temp names are fixed
    trap "rm -f '$csr' '$ext'" EXIT
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$out/$base.key.tmp" -out "$csr" -subj "/O=consentcam/CN=$cn" 2>/dev/null \
        || die "openssl could not create a key for $cn"
    openssl x509 -req -in "$csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
        -days "$DAYS" -sha256 -extfile "$ext" -out "$out/$base.crt.tmp" 2>/dev/null \
        || die "openssl could not sign the certificate for $cn"
    chmod 0600 "$out/$base.key.tmp"
    chmod 0644 "$out/$base.crt.tmp"
    mv -f "$out/$base.key.tmp" "$out/$base.key"
    mv -f "$out/$base.crt.tmp" "$out/$base.crt"
    install -m 0644 "$DIR/ca.crt" "$out/ca.crt"
    rm -f "$csr" "$ext"
    trap - EXIT
    echo "make-certs: $1 certificate for CN=$cn in $out/ ($base.crt, $base.key, ca.crt)"
}

client_ext() {
    local ext
    ext=$(mktemp)
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=clientAuth" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" > "$ext"
    echo "$ext"
}

case "$cmd" in
    ca)
        [ ${#args[@]} -eq 1 ] || die "usage: $0 [--dir DIR] ca"
        mkdir -p "$DIR"
        refuse_overwrite "$DIR/ca.key"
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$DIR/ca.key" -out "$DIR/ca.crt" -days "$CA_DAYS" -sha256 \
            -subj "/O=consentcam/CN=consentcam network CA $(date -u +%Y%m%d%H%M%S)" \
            -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -addext "subjectKeyIdentifier=hash" 2>/dev/null || die "openssl could not create the CA"
        chmod 0600 "$DIR/ca.key"
        chmod 0644 "$DIR/ca.crt"
        echo "make-certs: CA in $DIR (ca.crt to share, ca.key to keep offline)"
        ;;
    broker)
        [ ${#args[@]} -ge 2 ] || die "usage: $0 [--dir DIR] broker HOSTNAME [HOSTNAME|IP ...]"
        need_ca
        sans=()
        for n in "${args[@]:1}"; do
            if [[ $n =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || [[ $n == *:* ]]; then
                sans+=("IP:$n")
            elif [[ $n =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$ ]]; then
                sans+=("DNS:$n")
            else
                die "broker name '$n' is neither a host name nor an IP address"
            fi
        done
        ext=$(mktemp)
        san=$(IFS=,; echo "${sans[*]}")
        printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
            "extendedKeyUsage=serverAuth" "subjectAltName=$san" "subjectKeyIdentifier=hash" \
            "authorityKeyIdentifier=keyid" > "$ext"
        issue broker "${args[1]}" "$DIR/broker" broker "$ext"
        echo "make-certs: install for mosquitto (it reads the key as user mosquitto):"
        echo "  install -d -m 0750 -o root -g mosquitto /etc/mosquitto/certs/consentcam"
        echo "  install -m 0644 $DIR/broker/ca.crt $DIR/broker/broker.crt /etc/mosquitto/certs/consentcam/"
        echo "  install -m 0600 -o mosquitto $DIR/broker/broker.key /etc/mosquitto/certs/consentcam/"
        ;;
    device|investigator|client)
        [ ${#args[@]} -eq 2 ] || die "usage: $0 [--dir DIR] $cmd NAME"
        name=${args[1]}
        check_name "$cmd" "$name"
        need_ca
        issue "$cmd" "$name" "$DIR/clients/$name" client "$(client_ext)"
        if [ "$cmd" = investigator ] && [ -n "$ACL" ]; then
            [ -f "$ACL" ] || die "ACL file $ACL not found"
            if grep -qx "user $name" "$ACL"; then
                echo "make-certs: $ACL already has a block for $name"
            else
                printf '\nuser %s\ntopic write consentcam/v1/device/+/request\ntopic write consentcam/v1/area/#\n' \
                    "$name" >> "$ACL"
                echo "make-certs: added investigator $name to $ACL (reload mosquitto to apply)"
            fi
        fi
        ;;
    *) die "unknown command '$cmd' (ca, broker, device, investigator, client)" ;;
esac
