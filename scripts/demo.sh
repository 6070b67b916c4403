#!/usr/bin/env bash
# Set up what is missing (scripts/bootstrap.sh: age, mosquitto, a venv with consentcam) and run the
# demo: a synthetic camera, a private broker on a free loopback port, a signed request, the owner's
# approval and a verified release, all on this machine. Options go to `consentcam demo`
# (e.g. --out DIR, --json). Ctrl-C at any point stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/consentcam demo "$@"
