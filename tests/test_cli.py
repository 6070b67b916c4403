"""The command line feels like the tools people know: --help everywhere, --json on every listing."""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

import pytest
from conftest import modules_imported_by

from edge.cli.main import build_parser, main


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(build_parser()))


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "consentcam")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as info:
        main([*path, "--help"])
    assert info.value.code == 0
    assert "usage: consentcam" in out.getvalue()


def test_every_listing_offers_json() -> None:
    listings = [p for p, _ in COMMANDS if p and p[-1] in {"list", "show", "status", "verify"}]
    assert listings, "no listing commands found"
    missing = []
    for path, parser in COMMANDS:
        if path in listings and not any("--json" in a.option_strings for a in parser._actions):
            missing.append(" ".join(path))
    assert not missing, f"listings without --json: {missing}"


def test_unknown_command_is_a_usage_error() -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "invalid choice" in err.getvalue()


# What no command needs just to parse its arguments or print help. Each invocation on a Pi Zero pays
# for every import (8-10 times the cost here); handlers import these when they run.
HEAVY_FOR_PARSING = (
    "numpy", "cv2", "av", "paho", "cryptography", "pyrage", "yaml", "rich",
    "edge.config", "edge.keys", "edge.audit", "edge.signing", "edge.vault", "edge.protocol", "edge.daemon",
    "edge.recording", "edge.capture", "edge.motion", "edge.mqtt_link",
)


def test_help_and_usage_errors_import_nothing_heavy() -> None:
    argvs = [[*path, "--help"] for path, _ in COMMANDS] + [["detect"], ["clips", "export", "ID"]]
    codes, loaded = modules_imported_by(argvs, HEAVY_FOR_PARSING)
    assert codes == [0] * len(COMMANDS) + [2, 2]
    assert loaded == [], f"parsing arguments imported {loaded}"


def test_commands_that_do_not_read_the_config_import_no_yaml_and_no_video_stack(state_dir: Path) -> None:
    commands = (["keys", "show"], ["audit", "verify"], ["trust", "list"])
    argvs = [["--state-dir", str(state_dir), *cmd] for cmd in commands]
    codes, loaded = modules_imported_by(argvs, ("yaml", "numpy", "cv2", "av", "paho", "edge.vault", "edge.daemon"))
    assert codes == [0, 0, 0]
    assert loaded == [], f"imported {loaded}"
