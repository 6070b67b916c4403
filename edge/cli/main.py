"""`consentcam`: the owner's and the daemon's command line.

Global options come before the subcommand: ``consentcam --state-dir DIR --config FILE clips list``.
Exit codes: 0 success, 1 generic failure, 2 usage error, 3 state directory problem, 4 wrong
passphrase, 5 not found, 6 integrity failure, 7 storage full, 8 protocol refusal, 78 config error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from edge import __version__
from edge.cli.common import Context
from edge.errors import ConsentcamError
from edge.logs import setup_logging
from edge.redact import without_credentials
from edge.state import StateDir

# Each module adds its subcommands through register(subparsers). One module per area. Every
# invocation imports them all, so they import only what parsing needs (argparse, edge.cli.common)
# at the top; each handler imports its heavy dependencies (numpy, cv2, cryptography, the vault...)
# when it runs. On a Pi Zero 2 W every import costs 8-10 times what it does on a PC.
COMMAND_MODULES = [
    "edge.cli.setup_cmd",
    "edge.cli.audit_cmd",
    "edge.cli.daemon_cmd",
    "edge.cli.clips_cmd",
    "edge.cli.trust_cmd",
    "edge.cli.requests_cmd",
    "edge.cli.detect_cmd",
    "edge.cli.camera_cmd",
]

log = logging.getLogger("consentcam")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consentcam",
        description="Home camera daemon: encrypted motion clips, released only with the owner's consent.",
    )
    parser.add_argument("--version", action="version", version=f"consentcam {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: $CONSENTCAM_CONFIG or /etc/consentcam/config.yaml)",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="state directory (default: $CONSENTCAM_STATE_DIR or /var/lib/consentcam)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from edge.config import resolve_paths  # not before parsing: --help and usage errors skip the config schema

    setup_logging("debug" if args.verbose else "info")
    config_path, state_path = resolve_paths(args.config, args.state_dir)
    explicit = bool(args.config or os.environ.get("CONSENTCAM_CONFIG"))
    ctx = Context(args=args, config_path=config_path, config_explicit=explicit, state=StateDir(state_path))
    try:
        return int(args.handler(ctx) or 0)
    except ConsentcamError as exc:
        print(f"consentcam: {without_credentials(str(exc))}", file=sys.stderr)  # camera URLs carry passwords
        return exc.exit_code
    except KeyboardInterrupt:
        print("consentcam: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
