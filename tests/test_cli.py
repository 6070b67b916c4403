"""The command line feels like the tools people know: --help everywhere, --json on every listing."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

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
