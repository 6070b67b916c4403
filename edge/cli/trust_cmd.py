"""`consentcam trust add|list|remove`: whose signed requests this device will consider at all."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from edge.cli.common import Context, add_json_option, console, emit_json, print_table
from edge.state import FILE_MODE
from edge.units import format_duration, parse_duration

if TYPE_CHECKING:
    from edge.protocol.trust import TrustStore

# The handlers import the trust store, the audit log and the keys (cryptography) when they run:
# parsing stays light (see main.py).


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("trust", help="the requesters (investigators) this device accepts signed requests from")
    tsub = t.add_subparsers(dest="trust_command", metavar="ACTION", required=True)

    add = tsub.add_parser("add", help="trust a requester's signing key")
    add.add_argument("name", help="a short name for the requester, e.g. police-north")
    add.add_argument("key", help="ed25519:<base64>, or a file holding it (e.g. the investigator's card JSON)")
    add.add_argument("--max-window", metavar="DURATION",
                     help="longest footage window this requester may ask for (default: requests.max_window)")
    add.add_argument("--rate", metavar="N/day", help="requests accepted per day (default: requests.default_rate)")
    add_json_option(add)
    add.set_defaults(handler=cmd_add)

    ls = tsub.add_parser("list", help="list trusted requesters")
    add_json_option(ls)
    ls.set_defaults(handler=cmd_list)

    rm = tsub.add_parser("remove", help="stop trusting a requester (pending requests stay until decided)")
    rm.add_argument("name")
    add_json_option(rm)
    rm.set_defaults(handler=cmd_remove)


@contextmanager
def _locked(ctx: Context) -> Iterator[TrustStore]:
    """Serialise read-modify-write of trust.json between concurrent CLI invocations."""
    from edge.protocol.trust import TrustStore

    ctx.state.require_initialised()
    lock = ctx.state.root / ".trust.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield TrustStore.load(ctx.state.trust_store)
    finally:
        os.close(fd)


def read_key_argument(text: str) -> str:
    """``ed25519:...`` itself, or a file: an investigator card (JSON with signing_key) or the key as text."""
    from edge.protocol.trust import TrustError

    if text.strip().startswith("ed25519:"):
        return text.strip()
    path = Path(text)
    if not path.is_file():
        raise TrustError(f"{text!r} is neither an ed25519:... key nor a readable file")
    try:
        content = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustError(f"{path}: cannot read the key file: {exc}") from exc
    if content.startswith("{"):
        try:
            card = json.loads(content)
            key = card["signing_key"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TrustError(f"{path}: not an investigator card (JSON with a 'signing_key' field)") from exc
        if not isinstance(key, str):
            raise TrustError(f"{path}: 'signing_key' must be text (ed25519:...)")
        return key.strip()
    first = content.splitlines()[0].strip() if content else ""
    if not first.startswith("ed25519:"):
        raise TrustError(f"{path}: expected a line starting with ed25519:")
    return first


def cmd_add(ctx: Context) -> int:
    from edge import keys
    from edge.audit import AuditLog
    from edge.protocol.trust import TrustEntry, TrustError, parse_rate
    from edge.signing import decode_public, fingerprint

    key_text = read_key_argument(ctx.args.key)
    try:
        decode_public(key_text)
    except ValueError as exc:
        raise TrustError(f"key: {exc}") from exc
    owner_max = ctx.config.requests.max_window
    if ctx.args.max_window is None:
        max_window = owner_max
    else:
        try:
            max_window = parse_duration(ctx.args.max_window)
        except ValueError as exc:
            raise TrustError(f"--max-window {ctx.args.max_window!r}: {exc}") from exc
        if max_window <= 0:
            raise TrustError("--max-window must be positive")
    rate = parse_rate(ctx.args.rate if ctx.args.rate is not None else ctx.config.requests.default_rate)
    entry = TrustEntry.create(ctx.args.name, key_text, max_window, rate)
    with _locked(ctx) as store:
        store.add(entry)
        store.save()
    device_key = keys.load_device_key(ctx.state)
    AuditLog(ctx.state.audit, device_key).append(
        "trust.added", name=entry.name, key_id=entry.key_id, fingerprint=fingerprint(entry.public),
        max_window=entry.max_window, rate=entry.rate,
    )
    if ctx.json:
        emit_json({**entry.to_dict(), "fingerprint": fingerprint(entry.public)})
    else:
        note = "" if max_window <= owner_max else f" (capped by the owner limit {format_duration(owner_max)})"
        console().print(f"trusted {entry.name}: key id {entry.key_id}, max window "
                        f"{format_duration(entry.max_window)}{note}, {entry.rate}/day")
        console().print(f"fingerprint {fingerprint(entry.public)} (compare it with the requester out of band)")
        console().print("a running daemon picks this up on SIGHUP (systemctl reload consentcam)")
    return 0


def cmd_list(ctx: Context) -> int:
    from edge.protocol.trust import TrustStore
    from edge.signing import fingerprint

    ctx.state.require_initialised()
    entries = TrustStore.load(ctx.state.trust_store).entries()
    if ctx.json:
        emit_json([{**e.to_dict(), "fingerprint": fingerprint(e.public)} for e in entries])
        return 0
    if not entries:
        console().print("no trusted requesters (add one with 'consentcam trust add NAME KEY')")
        return 0
    rows = [[e.name, e.key_id, format_duration(e.max_window), f"{e.rate}/day", e.added] for e in entries]
    print_table(None, ["name", "key id", "max window", "rate", "added"], rows)
    return 0


def cmd_remove(ctx: Context) -> int:
    from edge import keys
    from edge.audit import AuditLog

    with _locked(ctx) as store:
        entry = store.remove(ctx.args.name)
        store.save()
    device_key = keys.load_device_key(ctx.state)
    AuditLog(ctx.state.audit, device_key).append("trust.removed", name=entry.name, key_id=entry.key_id)
    if ctx.json:
        emit_json(entry.to_dict())
    else:
        console().print(f"removed {entry.name} ({entry.key_id})")
    return 0
