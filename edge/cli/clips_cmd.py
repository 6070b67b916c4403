"""`consentcam clips ...`: import, list, show, export, hold/unhold, verify, prune, reindex."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge import clock
from edge.cli.common import (
    Context,
    add_json_option,
    add_passphrase_option,
    console,
    emit_json,
    make_progress,
    print_table,
)
from edge.errors import ConsentcamError, IntegrityError, NotFoundError
from edge.units import format_duration, format_size

if TYPE_CHECKING:
    from edge.vault import ClipRecord, Vault

# The handlers import the vault, the audit log, the keys (cryptography, pyrage) and PyAV when they run:
# parsing stays light (see main.py).

log = logging.getLogger("consentcam.clips")
READ_CHUNK = 1024 * 1024
KNOWN_CONTAINERS = frozenset({"mpegts", "mp4", "mov", "matroska", "webm", "avi", "h264", "hevc", "flv", "mjpeg"})


class UsageError(ConsentcamError):
    exit_code = 2


class OutputExistsError(ConsentcamError):
    exit_code = 1


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("clips", help="the encrypted clip vault")
    csub = c.add_subparsers(dest="clips_command", metavar="ACTION", required=True)

    p = csub.add_parser("import", help="encrypt existing video files into the vault (bytes unchanged)")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--camera", default=None, help="camera name (default: device.name from the config)")
    p.add_argument("--start", default=None, metavar="ISO", help="start time, e.g. 2026-11-22T11:35:00Z "
                   "(default: the file's modification time); several files follow each other")
    add_json_option(p)
    p.set_defaults(handler=cmd_import)

    p = csub.add_parser("list", help="clips, oldest first")
    p.add_argument("--since", metavar="ISO", help="only clips ending at or after this time")
    p.add_argument("--until", metavar="ISO", help="only clips starting at or before this time")
    add_json_option(p)
    p.set_defaults(handler=cmd_list)

    p = csub.add_parser("show", help="one clip's metadata")
    p.add_argument("clip_id", metavar="ID")
    add_json_option(p)
    p.set_defaults(handler=cmd_show)

    p = csub.add_parser("export", help="decrypt a clip to a file (needs the owner passphrase)")
    p.add_argument("clip_id", metavar="ID")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the decrypted video")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_passphrase_option(p)
    add_json_option(p)
    p.set_defaults(handler=cmd_export)

    p = csub.add_parser("hold", help="keep a clip past retention until unheld")
    p.add_argument("clip_id", metavar="ID")
    p.add_argument("--reason", default="", help="why (recorded in the audit log)")
    add_json_option(p)
    p.set_defaults(handler=cmd_hold)

    p = csub.add_parser("unhold", help="let retention delete a clip again")
    p.add_argument("clip_id", metavar="ID")
    add_json_option(p)
    p.set_defaults(handler=cmd_unhold)

    p = csub.add_parser("verify", help="check seals and segment digests (no passphrase needed); exit 6 on problems")
    p.add_argument("clip_id", nargs="?", metavar="ID")
    add_json_option(p)
    p.set_defaults(handler=cmd_verify)

    p = csub.add_parser("prune", help="apply the retention rules now")
    p.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
    add_json_option(p)
    p.set_defaults(handler=cmd_prune)

    p = csub.add_parser("reindex", help="rebuild the clip index from the signed seals on disk")
    add_json_option(p)
    p.set_defaults(handler=cmd_reindex)


def open_vault(ctx: Context) -> Vault:
    from edge import keys
    from edge.audit import AuditLog
    from edge.vault import Vault

    device_key = keys.load_device_key(ctx.state)
    recipient = keys.load_owner_recipient(ctx.state)
    storage = ctx.config.storage
    return Vault.open(ctx.state, storage, recipient, device_key, AuditLog(ctx.state.audit, device_key))


def parse_time(text: str, option: str) -> float:
    """RFC 3339 / ISO 8601; a time without a zone is taken as UTC."""
    try:
        return clock.parse_iso(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not a time like 2026-11-22T11:35:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


# -- import ------------------------------------------------------------------------------------


def probe(path: Path) -> tuple[str, str, float | None]:
    """(container, codec, duration seconds) via PyAV; ('unknown'/suffix, 'unknown', None) if it cannot tell."""
    container = path.suffix.lstrip(".").lower() or "unknown"
    try:
        import av

        with av.open(str(path)) as media:
            names = media.format.name.split(",")
            if not KNOWN_CONTAINERS.intersection(names):
                return container, "unknown", None  # ffmpeg guesses formats for any bytes; trust real ones only
            container = "mp4" if "mp4" in names else names[0]
            video = next(iter(media.streams.video), None)
            codec = video.codec_context.name if video is not None else "unknown"
            duration = media.duration / 1_000_000 if media.duration else None
            return container, codec, duration
    except Exception:  # any file PyAV cannot parse is still imported, byte for byte
        return container, "unknown", None


def cmd_import(ctx: Context) -> int:
    paths = [Path(v) for v in ctx.args.videos]
    for path in paths:  # check them all before writing anything
        if path.is_dir():
            raise UsageError(f"{path}: is a directory; give video files")
        if not path.is_file():
            raise NotFoundError(f"{path}: no such file")
        if not os.access(path, os.R_OK):
            raise ConsentcamError(f"{path}: cannot read it (permission denied)")
    camera = ctx.args.camera or ctx.config.device.name
    next_start = parse_time(ctx.args.start, "--start") if ctx.args.start else None
    synced = True if next_start is not None else clock.clock_synchronised(ctx.config.clock.mode)
    vault = open_vault(ctx)
    records: list[ClipRecord] = []
    with make_progress() as progress:
        for path in paths:
            container, codec, duration = probe(path)
            start = next_start if next_start is not None else path.stat().st_mtime - (duration or 0.0)
            records.append(_import_one(vault, path, camera, start, container, codec, duration, synced, progress))
            if next_start is not None:
                next_start = start + (duration or 0.0)
    if ctx.json:
        emit_json([r.to_dict() for r in records])
    else:
        for r in records:
            console().print(f"imported {r.id}  {format_size(r.plaintext_size)}  {r.segments} segments  "
                            f"{r.container}/{r.codec}")
    return 0


def _import_one(vault: Vault, path: Path, camera: str, start: float, container: str, codec: str,
                duration: float | None, synced: bool, progress: Any) -> ClipRecord:
    size = path.stat().st_size
    task = progress.add_task(path.name, total=size)
    writer = vault.begin_clip(camera, start, container=container, codec=codec, clock_synced=synced)
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(READ_CHUNK):
                writer.write(chunk)
                progress.advance(task, len(chunk))
    except BaseException:
        writer.abort()
        raise
    if writer.dropped_segments:
        writer.abort()
        raise ConsentcamError(f"{path}: storage full, {writer.dropped_segments} segments could not be stored; "
                              "the partial clip was kept as 'recovered'")
    extra: dict[str, Any] = {"imported": True}
    if duration is not None:
        extra["media_duration"] = round(duration, 3)
    return writer.close(start + (duration or 0.0), extra)


# -- reading -----------------------------------------------------------------------------------


def _row(r: ClipRecord) -> list[Any]:
    return [r.id, r.camera, clock.iso(r.start), format_duration(r.duration), format_size(r.size),
            r.status, "held" if r.held else "", f"{r.motion_score:.2f}"]


def cmd_list(ctx: Context) -> int:
    since = parse_time(ctx.args.since, "--since") if ctx.args.since else None
    until = parse_time(ctx.args.until, "--until") if ctx.args.until else None
    vault = open_vault(ctx)
    clips = vault.list_clips(since, until, include_recording=True)
    if ctx.json:
        emit_json([c.to_dict() for c in clips])
    elif not clips:
        console().print("no clips")
    else:
        # Plain aligned text: ids must never be cut short by a narrow terminal.
        header = ["id", "camera", "start (UTC)", "duration", "size", "status", "hold", "motion"]
        rows = [header] + [[str(v) for v in _row(c)] for c in clips]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for r in rows:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_show(ctx: Context) -> int:
    rec = open_vault(ctx).get(ctx.args.clip_id)
    if ctx.json:
        emit_json(rec.to_dict())
        return 0
    d = rec.to_dict()
    rows = [[k, d[k]] for k in ("id", "camera", "start_iso", "end_iso")]
    rows += [["duration", format_duration(rec.duration)], ["size", f"{rec.size} bytes (encrypted)"],
             ["plaintext size", f"{rec.plaintext_size} bytes"], ["segments", rec.segments],
             ["container / codec", f"{rec.container} / {rec.codec}"], ["digest", rec.digest],
             ["motion score", f"{rec.motion_score:.3f}"], ["status", rec.status],
             ["clock synchronised", "yes" if rec.clock_synced else "no"],
             ["held", f"yes ({rec.hold_reason})" if rec.held and rec.hold_reason else "yes" if rec.held else "no"]]
    rows += [[f"extra.{k}", v] for k, v in sorted(rec.extra.items())]
    print_table(None, ["field", "value"], rows)
    return 0


@contextlib.contextmanager
def _interrupt_on_termination() -> Iterator[None]:
    """SIGTERM/SIGHUP become KeyboardInterrupt while plaintext is being written: the export's temp
    file is then removed on the way out, instead of the default action killing the process and
    leaving decrypted footage next to the output."""
    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_export(ctx: Context) -> int:
    from edge import keys

    out = Path(ctx.args.out)
    if out.is_dir():
        raise OutputExistsError(f"{out}: is a directory; give a file name")
    if out.exists() and not ctx.args.force:
        raise OutputExistsError(f"{out}: already exists (use --force to replace it)")
    if not out.parent.is_dir():
        raise NotFoundError(f"{out.parent}: output directory does not exist")
    vault = open_vault(ctx)
    vault.get(ctx.args.clip_id)  # unknown id: say so before asking for the passphrase
    identity = keys.unlock_owner_identity(ctx.state, ctx.passphrase())
    with _interrupt_on_termination():
        rec = vault.export(ctx.args.clip_id, identity, out)
    if ctx.json:
        emit_json({"clip_id": rec.id, "out": str(out), "bytes": rec.plaintext_size})
    else:
        console().print(f"exported {rec.id} to {out} ({rec.plaintext_size} bytes)")
    return 0


# -- holds, integrity, retention ---------------------------------------------------------------


def cmd_hold(ctx: Context) -> int:
    rec = open_vault(ctx).hold(ctx.args.clip_id, ctx.args.reason)
    if ctx.json:
        emit_json(rec.to_dict())
    else:
        console().print(f"held {rec.id}: retention will keep it until 'consentcam clips unhold {rec.id}'")
    return 0


def cmd_unhold(ctx: Context) -> int:
    rec = open_vault(ctx).unhold(ctx.args.clip_id)
    if ctx.json:
        emit_json(rec.to_dict())
    else:
        console().print(f"released hold on {rec.id}")
    return 0


def cmd_verify(ctx: Context) -> int:
    checks = open_vault(ctx).verify(ctx.args.clip_id)
    bad = [c for c in checks if not c.ok]
    if ctx.json:
        emit_json({"ok": not bad, "clips": len(checks), "checks": [c.to_dict() for c in checks]})
    else:
        for c in bad:
            for problem in c.problems:
                print(f"clip {c.clip_id}: {problem}")
        if not bad:
            console().print(f"{len(checks)} clip(s) verified: all intact")
    if bad:
        if not ctx.json:
            raise IntegrityError(f"{len(bad)} of {len(checks)} clip(s) failed verification")
        return IntegrityError.exit_code
    return 0


def cmd_prune(ctx: Context) -> int:
    vault = open_vault(ctx)
    if ctx.args.dry_run:
        plan = vault.plan_retention()
        if ctx.json:
            emit_json({"dry_run": True, "delete": [{"clip_id": i, "reason": r} for i, r in plan]})
        else:
            for clip_id, reason in plan:
                print(f"would delete {clip_id} ({reason})")
            console().print(f"{len(plan)} clip(s) would be deleted")
        return 0
    plan = dict(vault.plan_retention())
    deleted = vault.enforce_retention()
    if ctx.json:
        emit_json({"dry_run": False, "deleted": [{"clip_id": i, "reason": plan.get(i, "")} for i in deleted]})
    else:
        for clip_id in deleted:
            print(f"deleted {clip_id} ({plan.get(clip_id, 'retention')})")
        console().print(f"{len(deleted)} clip(s) deleted")
    return 0


def cmd_reindex(ctx: Context) -> int:
    from edge import keys
    from edge.audit import AuditLog
    from edge.vault import Vault

    device_key = keys.load_device_key(ctx.state)
    recipient = None
    with contextlib.suppress(ConsentcamError):
        recipient = keys.load_owner_recipient(ctx.state)
    vault, problems = Vault.reindex(ctx.state, ctx.config.storage, recipient, device_key,
                                    AuditLog(ctx.state.audit, device_key))
    count = len(vault.list_clips(include_recording=True))
    if ctx.json:
        emit_json({"indexed": count, "skipped": problems})
    else:
        for line in problems:
            print(f"clip {line}")
        console().print(f"index rebuilt: {count} clip(s)")
    return 0
