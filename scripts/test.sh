#!/usr/bin/env bash
# Set up (scripts/bootstrap.sh) and run the whole test suite, lint included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
.venv/bin/ruff check edge tests bench scripts
exec .venv/bin/python -m pytest "$@"
