"""The outbox: approved releases waiting to be (or already) published.

Layout, one directory per approved request::

    state/outbox/<request_id>/
        bundle.age    the age-encrypted tar (ciphertext only; to the request's recipient); removed once sent
        header.bin    the signed release header, exactly as published
        meta.json     OutboxItem (status "queued" or "sent")
        lock          flock target: whoever holds it is the only publisher of this item

An item is built in ``state/outbox/.building-*`` and renamed into place only when complete, so a
publisher never sees half an item and a crash leaves only a stray build directory (removed by
:func:`clean_stale_builds`). The daemon and a ``requests approve --send-now`` CLI may race to
publish: :func:`claim` takes a non-blocking exclusive lock and re-reads the status under it, so an
item is published by one of them, and a sent item never again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edge import clock
from edge.errors import ConsentcamError, NotFoundError, StateError
from edge.state import DIR_MODE, FILE_MODE, StateDir, fsync_dir, write_private

BUNDLE_NAME = "bundle.age"
HEADER_NAME = "header.bin"
META_NAME = "meta.json"
LOCK_NAME = "lock"
BUILD_PREFIX = ".building-"


class OutboxBusyError(ConsentcamError):
    """Another process is publishing this item right now."""

    exit_code = 9


class ReleaseExistsError(ConsentcamError):
    """A release for this request was already built."""

    exit_code = 9


class ReleaseSendError(ConsentcamError):
    """Publishing did not complete (broker gone, timeout). The item stays queued for a retry."""

    exit_code = 10


@dataclass(frozen=True)
class OutboxItem:
    request_id: str
    request_digest: str  # hex
    inbox: str
    device_id: str
    bundle_sha256: str
    bundle_size: int
    chunk_size: int
    chunks: int
    clips: tuple[str, ...]
    created: str
    status: str = "queued"  # queued | sent
    sent_at: str | None = None
    attempts: int = 0
    directory: Path = field(default=Path("."), compare=False)

    @property
    def bundle_path(self) -> Path:
        return self.directory / BUNDLE_NAME

    @property
    def header_path(self) -> Path:
        return self.directory / HEADER_NAME

    def topic(self, topic_root: str) -> str:
        """Reply topic, derived only from signed request fields (the inbox and the request id)."""
        return f"{topic_root.rstrip('/')}/inbox/{self.inbox}/{self.request_id}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("directory")
        data["clips"] = list(self.clips)
        return data


def outbox_dir(state: StateDir) -> Path:
    return state.root / "outbox"


def write_meta(item: OutboxItem, directory: Path | None = None) -> None:
    target = (directory or item.directory) / META_NAME
    write_private(target, json.dumps(item.to_dict(), indent=2, sort_keys=True).encode() + b"\n")


def load_item(directory: Path) -> OutboxItem:
    try:
        data = json.loads((directory / META_NAME).read_text())
    except FileNotFoundError as exc:
        raise NotFoundError(f"{directory}: not an outbox item (no {META_NAME})") from exc
    except (OSError, ValueError) as exc:
        raise StateError(f"{directory / META_NAME}: unreadable outbox item: {exc}") from exc
    try:
        data["clips"] = tuple(data["clips"])
        return OutboxItem(**data, directory=directory)
    except (KeyError, TypeError) as exc:
        raise StateError(f"{directory / META_NAME}: outbox item has unexpected fields: {exc}") from exc


def get_item(state: StateDir, request_id: str) -> OutboxItem:
    directory = outbox_dir(state) / request_id
    if not directory.is_dir() or request_id.startswith("."):
        raise NotFoundError(f"no release in the outbox for request {request_id}")
    return load_item(directory)


def list_items(state: StateDir, status: str | None = None) -> list[OutboxItem]:
    """Items in creation order; ``status`` filters ("queued" or "sent")."""
    root = outbox_dir(state)
    if not root.is_dir():
        return []
    items = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        try:
            item = load_item(entry)
        except ConsentcamError:
            continue  # a damaged item must not stop the others from going out
        if status is None or item.status == status:
            items.append(item)
    items.sort(key=lambda i: (i.created, i.request_id))
    return items


@contextlib.contextmanager
def claim(item: OutboxItem) -> Iterator[OutboxItem]:
    """Exclusive, non-blocking: yields the item as re-read under the lock; OutboxBusyError if taken."""
    fd = os.open(item.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise OutboxBusyError(f"release {item.request_id} is being published by another process") from exc
        yield load_item(item.directory)
    finally:
        os.close(fd)  # closing drops the flock


def mark_sent(item: OutboxItem) -> OutboxItem:
    """Record the item as sent, then drop its bundle: the device cannot read it (it is encrypted to
    the requester) and a Pi's SD card should not carry it. header.bin and meta.json stay as the record."""
    done = replace(item, status="sent", sent_at=clock.iso(clock.now()), attempts=item.attempts + 1)
    write_meta(done)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(done.bundle_path)
    fsync_dir(done.directory)
    return done


def note_attempt(item: OutboxItem) -> OutboxItem:
    updated = replace(item, attempts=item.attempts + 1)
    write_meta(updated)
    return updated


def new_build_dir(state: StateDir, request_id: str) -> Path:
    root = outbox_dir(state)
    root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if (root / request_id).exists():
        raise ReleaseExistsError(f"a release for request {request_id} is already in the outbox")
    build = root / f"{BUILD_PREFIX}{request_id}-{os.urandom(4).hex()}"
    build.mkdir(mode=DIR_MODE)
    return build


def commit_build(build: Path, request_id: str) -> Path:
    """Atomically move a finished build into place (fails if a concurrent build won)."""
    final = build.parent / request_id
    try:
        os.rename(build, final)  # rename(2) onto an existing non-empty dir fails: no silent overwrite
    except OSError as exc:
        shutil.rmtree(build, ignore_errors=True)
        raise ReleaseExistsError(f"a release for request {request_id} is already in the outbox") from exc
    return final


def clean_stale_builds(state: StateDir) -> int:
    """Remove build directories left by a crash. Only ever ciphertext, but no point keeping it."""
    root = outbox_dir(state)
    removed = 0
    if not root.is_dir():
        return 0
    for entry in root.iterdir():
        if not entry.name.startswith(BUILD_PREFIX):
            continue
        try:
            fd = os.open(entry / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a live build holds its lock
        except BlockingIOError:
            os.close(fd)
            continue
        shutil.rmtree(entry, ignore_errors=True)
        os.close(fd)
        removed += 1
    return removed


@contextlib.contextmanager
def hold_build_lock(build: Path) -> Iterator[None]:
    fd = os.open(build / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
