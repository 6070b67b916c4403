"""The owner's queue of verified requests, one file per request.

``state/requests/pending/<id>.json`` holds the verified wire bytes (base64), the time received
and the signer's trust entry as it was then. Decisions move the file to
``state/requests/decided/<id>.json`` with the decision added. Requests past their expiry drop out
by themselves (moved to decided with ``"decision": "expired"``, audited as ``request.expired``)
whenever the queue is listed or the daemon sweeps it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge import clock
from edge.audit import AuditLog
from edge.encoding import b64decode, b64encode
from edge.errors import NotFoundError, StateError
from edge.protocol.request import HEADER_LEN, ID_RE, VerifiedRequest, parse_body, request_digest
from edge.protocol.trust import TrustEntry
from edge.state import DIR_MODE, FILE_MODE, fsync_dir, write_private

STAGED_SUFFIX = ".staged"
STAGED_MAX_AGE = 60.0  # a batch commits within milliseconds; older staged files are crash leftovers


@dataclass(frozen=True)
class PendingRequest:
    request: VerifiedRequest
    received: str
    path: Path

    @property
    def id(self) -> str:
        return self.request.body.id


class PendingQueue:
    def __init__(self, requests_dir: Path, *, durable: bool = True) -> None:
        self.root = requests_dir
        self.pending_dir = requests_dir / "pending"
        self.decided_dir = requests_dir / "decided"
        for d in (self.root, self.pending_dir, self.decided_dir):
            d.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        # durable=False skips the per-file fsync (benchmarks); the daemon keeps it on.
        self.durable = durable
        self._lock = threading.Lock()
        self._count: int | None = None
        self._count_at = 0.0
        self._promote_leftovers()

    # -- writing -----------------------------------------------------------------------------

    def add(self, request: VerifiedRequest, received: float, *, staged: bool = False) -> Path:
        """Write the request's file. ``staged`` writes it under a hidden name that :meth:`commit`
        makes visible, so the verifier can write its audit entries first (the owner never sees a
        pending request whose acceptance is not yet in the audit log)."""
        doc = {
            "v": 1,
            "id": request.body.id,
            "digest": request.digest,
            "raw": b64encode(request.raw),
            "received": clock.iso(received),
            "signer": request.signer.to_dict(),
        }
        path = self._path(self.pending_dir, request.body.id)
        if staged:
            if path.exists():
                raise FileExistsError(str(path))
            path = self.pending_dir / f".{request.body.id}{STAGED_SUFFIX}"
        data = json.dumps(doc, sort_keys=True).encode() + b"\n"
        # O_EXCL: one file per id, never overwritten (the replay cache already guards this).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            os.write(fd, data)
            if self.durable and not staged:  # staged files are made durable together by commit()
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            raise
        os.close(fd)
        if not staged:
            with self._lock:
                if self._count is not None:
                    self._count += 1
        return path

    def commit(self, staged: list[Path]) -> None:
        """Make staged files visible (rename each, then one directory fsync)."""
        if not staged:
            return
        if self.durable:
            _sync_files(staged, self.pending_dir)
        for path in staged:
            # Missing: a concurrent process already promoted it as a leftover (nothing lost).
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, self.pending_dir / (path.name[1 : -len(STAGED_SUFFIX)] + ".json"))
        if self.durable:
            fsync_dir(self.pending_dir)
        with self._lock:
            if self._count is not None:
                self._count += len(staged)

    def _promote_leftovers(self, min_age: float = STAGED_MAX_AGE) -> None:
        """A crash between staging and commit: the request was verified and accepted, keep it.
        Only files older than ``min_age`` count: younger ones belong to a running daemon's batch."""
        cutoff = time.time() - min_age
        leftovers = []
        for n in os.listdir(self.pending_dir):
            if n.startswith(".") and n.endswith(STAGED_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    if (self.pending_dir / n).stat().st_mtime < cutoff:
                        leftovers.append(self.pending_dir / n)
        self.commit(leftovers)

    def count(self) -> int:
        """Pending requests; cached for a second because the owner's CLI also moves files."""
        with self._lock:
            if self._count is None or time.monotonic() - self._count_at > 1.0:
                self._count = sum(1 for n in os.listdir(self.pending_dir) if n.endswith(".json"))
                self._count_at = time.monotonic()
            return self._count

    # -- reading -----------------------------------------------------------------------------

    def _path(self, directory: Path, request_id: str) -> Path:
        if not ID_RE.fullmatch(request_id):
            raise NotFoundError(f"{request_id!r} is not a request id")
        return directory / f"{request_id}.json"

    def load(self, path: Path) -> PendingRequest:
        try:
            doc = json.loads(path.read_text())
            raw = b64decode(doc["raw"])
            signer = TrustEntry.from_dict(doc["signer"])
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(f"{path}: damaged pending request: {exc}") from exc
        if request_digest(raw) != doc["digest"]:
            raise StateError(f"{path}: stored request bytes do not match their digest")
        body = parse_body(raw[HEADER_LEN:])
        verified = VerifiedRequest(body=body, digest=doc["digest"], signer=signer, raw=raw)
        return PendingRequest(verified, str(doc["received"]), path)

    def get(self, request_id: str) -> PendingRequest:
        path = self._path(self.pending_dir, request_id)
        try:
            return self.load(path)
        except FileNotFoundError:
            decided = self._path(self.decided_dir, request_id)
            if decided.exists():
                try:
                    decision = json.loads(decided.read_text()).get("decision", "decided")
                except (OSError, ValueError):
                    decision = "decided"
                raise NotFoundError(f"request {request_id} was already decided ({decision})") from None
            raise NotFoundError(f"no pending request {request_id}") from None

    def list(self) -> list[PendingRequest]:
        out = []
        for name in sorted(os.listdir(self.pending_dir)):
            if not name.endswith(".json"):
                continue
            with contextlib.suppress(FileNotFoundError):  # decided by someone else meanwhile
                out.append(self.load(self.pending_dir / name))
        out.sort(key=lambda p: p.received)
        return out

    def get_decided(self, request_id: str) -> dict[str, Any]:
        path = self._path(self.decided_dir, request_id)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise NotFoundError(f"no decided request {request_id}") from None

    # -- decisions ---------------------------------------------------------------------------

    def decide(self, request_id: str, decision: str, **extra: Any) -> Path:
        """Move a pending request to decided/ with the decision recorded (atomic per request)."""
        src = self._path(self.pending_dir, request_id)
        try:
            doc = json.loads(src.read_text())
        except FileNotFoundError:
            raise NotFoundError(f"no pending request {request_id}") from None
        doc["decision"] = decision
        doc["decided_at"] = clock.iso(clock.now())
        doc.update(extra)
        dst = self._path(self.decided_dir, request_id)
        write_private(dst, json.dumps(doc, sort_keys=True).encode() + b"\n")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(src)
        fsync_dir(self.pending_dir)
        with self._lock:
            self._count = None
        return dst

    def expire(self, now: float, audit: AuditLog | None) -> list[str]:
        """Move every pending request past its expiry to decided/ and audit ``request.expired``."""
        expired = []
        for item in self.list():
            if item.request.body.expires_ts < now:
                try:
                    self.decide(item.id, "expired")
                except NotFoundError:
                    continue
                if audit is not None:
                    audit.append("request.expired", id=item.id, digest=item.request.digest,
                                 signer=item.request.signer.name)
                expired.append(item.id)
        return expired


def _libc_syncfs() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS = _libc_syncfs()


def _sync_files(paths: list[Path], directory: Path) -> None:
    """Make a batch of new files durable: one syncfs(2) for several, an fsync each otherwise.

    syncfs flushes the state directory's filesystem in one journal commit instead of one per
    file; on the device that filesystem holds only consentcam's own (already fsynced) data.
    """
    if len(paths) > 2 and _SYNCFS is not None:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _SYNCFS(fd) == 0:
                return
        finally:
            os.close(fd)
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # promoted by another process meanwhile (and synced by it)
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
