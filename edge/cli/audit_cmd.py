"""`consentcam audit show|verify|head`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge.cli.common import Context, add_json_option, console, emit_json, print_table
from edge.errors import IntegrityError, NotFoundError

# The handlers import the audit log and keys (cryptography) when they run: parsing stays light (see main.py).


def register(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("audit", help="the tamper-evident local audit log")
    asub = a.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    show = asub.add_parser("show", help="list audit entries")
    show.add_argument("--kind", help="only entries whose kind starts with this (e.g. request)")
    show.add_argument("--last", type=int, metavar="N", help="only the last N entries")
    add_json_option(show)
    show.set_defaults(handler=cmd_show)

    ver = asub.add_parser("verify", help="check the hash chain and the signed head")
    ver.add_argument("--head", metavar="FILE", help="an earlier exported head that must still be on the chain")
    add_json_option(ver)
    ver.set_defaults(handler=cmd_verify)

    head = asub.add_parser("head", help="print or export the current signed head")
    head.add_argument("--out", metavar="FILE", help="write the head to FILE (keep it off the device)")
    head.set_defaults(handler=cmd_head)


def cmd_show(ctx: Context) -> int:
    from edge import audit

    ctx.state.require_initialised()
    kind = ctx.args.kind or ""
    entries = [e for e in audit.read_entries(ctx.state.audit) if e["kind"].startswith(kind)]
    if ctx.args.last:
        entries = entries[-ctx.args.last :]
    if ctx.json:
        emit_json(entries)
        return 0
    rows = [[e["seq"], e["time"], e["kind"], _summary(e["data"])] for e in entries]
    print_table(None, ["seq", "time", "kind", "details"], rows)
    return 0


def _summary(data: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(data.items()) if not isinstance(v, dict | list))


def cmd_verify(ctx: Context) -> int:
    from edge import audit, keys
    from edge.signing import decode_public

    info = keys.load_device_info(ctx.state)
    earlier = None
    if ctx.args.head:
        try:
            earlier = audit.Head.from_dict(json.loads(Path(ctx.args.head).read_text()))
        except FileNotFoundError as exc:
            raise NotFoundError(f"{ctx.args.head}: no such head file") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"{ctx.args.head}: not a consentcam audit head") from exc
    report = audit.verify_log(ctx.state.audit, decode_public(info.device_public_key), earlier)
    if ctx.json:
        emit_json(report.to_dict())
    elif report.ok:
        console().print(f"audit log OK: {report.entries} entries, head at {report.head_seq}")
    if not report.ok:
        if not ctx.json:
            for problem in report.problems:
                console().print(f"[red]FAIL[/red] {problem}")
        return IntegrityError.exit_code
    return 0


def cmd_head(ctx: Context) -> int:
    from edge import audit

    ctx.state.require_initialised()
    head = audit.read_head(ctx.state.audit / audit.HEAD_NAME)
    if head is None:
        raise NotFoundError("the audit log has no signed head yet")
    text = json.dumps(head.to_dict(), indent=2) + "\n"
    if ctx.args.out:
        Path(ctx.args.out).write_text(text)
    else:
        print(text, end="")
    return 0
