"""What every subcommand shares: the resolved context, passphrases, and output helpers.

Every invocation, `--help` included, imports this module: it stays light, and the config loader,
the keys and rich are imported where they are used.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import PassphraseError
from edge.state import StateDir

if TYPE_CHECKING:
    from edge.config import Config

Handler = Callable[["Context"], int]


@dataclass
class Context:
    args: argparse.Namespace
    config_path: Path
    config_explicit: bool
    state: StateDir

    @cached_property
    def config(self) -> Config:
        from edge.config import load_config

        # An explicitly named config must exist; the default path may be absent (built-in defaults).
        return load_config(self.config_path, must_exist=self.config_explicit)

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def passphrase(self, *, confirm: bool = False, prompt: str = "Owner passphrase: ") -> str:
        path = getattr(self.args, "passphrase_file", None)
        if path:
            from edge.keys import read_passphrase_file

            return read_passphrase_file(Path(path))
        return prompt_passphrase(prompt, confirm=confirm)


def prompt_passphrase(prompt: str, *, confirm: bool) -> str:
    if not sys.stdin.isatty():
        raise PassphraseError("no passphrase: use --passphrase-file FILE or run this in a terminal")
    first = getpass.getpass(prompt)
    if not first:
        raise PassphraseError("the passphrase must not be empty")
    if confirm and getpass.getpass("Repeat passphrase: ") != first:
        raise PassphraseError("the two passphrases differ; nothing was changed")
    return first


def add_passphrase_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help="read the owner passphrase from the first line of FILE instead of prompting",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def console():  # type: ignore[no-untyped-def]
    """A rich console for people; plain when stdout is not a terminal."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, show_edge=False, header_style="bold")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console().print(table)


def make_progress():  # type: ignore[no-untyped-def]
    """A byte-counting progress bar on stderr (stdout stays clean for --json); off when not a TTY."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not sys.stderr.isatty(),
        transient=True,
    )
