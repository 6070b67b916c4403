"""Tamper-evident local audit log: a hash chain of JSON lines with a device-signed head.

Each line is one entry::

    {"data": {...}, "hash": H, "kind": "request.refused", "prev": P, "seq": N, "time": "...Z"}

where ``H = SHA-256("consentcam/v1/audit-entry\\0" || canonical_json(entry without "hash"))`` and
``P`` is the previous entry's hash (64 zeros for seq 0). After every append the device signs
the head ``{"device_id", "hash", "seq"}`` (domain ``consentcam/v1/audit-head\\0``).

What verification catches:
- an edited, removed, inserted or reordered entry: the chain breaks at that point;
- a truncated tail: the signed head names a later entry than the log has;
- a tail truncated *and* head re-signed (needs the device key): caught against a head the owner
  exported earlier (``consentcam audit head --out``), which must still be on the chain.

Several processes append (the daemon and the owner's CLI), so appends hold an exclusive
``flock`` on ``audit/lock``. No footage, keys or passphrases are ever written here.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge import clock
from edge.encoding import b64decode, b64encode, canonical_json, sha256_hex
from edge.signing import DOMAIN_AUDIT_HEAD, sign, verify
from edge.state import DIR_MODE, FILE_MODE, fsync_dir, write_private

ENTRY_DOMAIN = b"consentcam/v1/audit-entry\x00"
GENESIS = "0" * 64
LOG_NAME = "log.jsonl"
HEAD_NAME = "head.json"


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return sha256_hex(ENTRY_DOMAIN + canonical_json(body))


def head_message(device_id: str, seq: int, hash_: str) -> bytes:
    return canonical_json({"device_id": device_id, "hash": hash_, "seq": seq})


@dataclass(frozen=True)
class Head:
    device_id: str
    seq: int
    hash: str
    time: str
    signature: str  # base64

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Head:
        return cls(
            device_id=str(data["device_id"]),
            seq=int(data["seq"]),
            hash=str(data["hash"]),
            time=str(data["time"]),
            signature=str(data["signature"]),
        )

    def signature_ok(self, public: Ed25519PublicKey) -> bool:
        try:
            sig = b64decode(self.signature)
        except ValueError:
            return False
        return verify(public, DOMAIN_AUDIT_HEAD, head_message(self.device_id, self.seq, self.hash), sig)


class AuditLog:
    """Append-only writer. Safe across threads and processes."""

    def __init__(self, directory: Path, device_key: Ed25519PrivateKey, device_id: str | None = None) -> None:
        self.directory = directory
        self._key = device_key
        if device_id is None:
            from edge.keys import device_id_for  # late import: keys imports audit
            from edge.signing import public_raw

            device_id = device_id_for(public_raw(device_key))
        self.device_id = device_id
        self._thread_lock = threading.Lock()

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_NAME

    @property
    def head_path(self) -> Path:
        return self.directory / HEAD_NAME

    def append(self, kind: str, **data: Any) -> dict[str, Any]:
        """Append one entry durably and re-sign the head. Returns the entry."""
        return self.append_many([(kind, data)])[0]

    def append_many(self, events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Append several entries with one write, one fsync and one signed head.

        The entries are exactly those that one ``append`` per event would produce; batching only
        saves the per-entry fsync and signature, which otherwise cap request intake on an SD card.
        """
        if not events:
            return []
        with self._thread_lock, self._file_lock():
            seq, prev = self._tail()
            entries, lines = [], []
            for kind, data in events:
                entry: dict[str, Any] = {
                    "data": data,
                    "kind": kind,
                    "prev": prev,
                    "seq": seq,
                    "time": clock.iso(clock.now()),
                }
                entry["hash"] = entry_hash(entry)
                entries.append(entry)
                lines.append(canonical_json(entry) + b"\n")
                prev, seq = entry["hash"], seq + 1
            blob = memoryview(b"".join(lines))
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            try:
                while blob:  # os.write may write less than asked
                    blob = blob[os.write(fd, blob) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            self._write_head(seq - 1, prev)
            return entries

    def head(self) -> Head | None:
        return read_head(self.head_path)

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        self.directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _tail(self) -> tuple[int, str]:
        """(next seq, previous hash), repairing a line torn by a crash mid-write."""
        if not self.log_path.exists():
            fsync_dir(self.directory)
            return 0, GENESIS
        with open(self.log_path, "rb+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return 0, GENESIS
            start = max(0, size - 65536)
            fh.seek(start)
            tail = fh.read()
            if not tail.endswith(b"\n"):
                # A torn final line was never acknowledged (its head was never signed): drop it.
                cut = tail.rfind(b"\n")
                keep = start + cut + 1 if cut >= 0 else 0
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
                if keep == 0:
                    return 0, GENESIS
                fh.seek(max(0, keep - 65536))
                tail = fh.read(keep - max(0, keep - 65536))
            last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        entry = json.loads(last)
        return int(entry["seq"]) + 1, str(entry["hash"])

    def _write_head(self, seq: int, hash_: str) -> None:
        sig = sign(self._key, DOMAIN_AUDIT_HEAD, head_message(self.device_id, seq, hash_))
        head = Head(self.device_id, seq, hash_, clock.iso(clock.now()), b64encode(sig))
        write_private(self.head_path, json.dumps(head.to_dict(), indent=2).encode() + b"\n")


def read_head(path: Path) -> Head | None:
    try:
        return Head.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_entries(directory: Path) -> Iterator[dict[str, Any]]:
    path = directory / LOG_NAME
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.endswith(b"\n"):
                yield json.loads(raw)


@dataclass
class VerifyReport:
    ok: bool = True
    entries: int = 0
    head_seq: int | None = None
    problems: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.ok = False
        self.problems.append(message)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "head_seq": self.head_seq, "problems": self.problems}


def verify_log(directory: Path, public: Ed25519PublicKey, earlier: Head | None = None) -> VerifyReport:
    """Check the chain, the signed head, and optionally that an earlier exported head is still on it."""
    report = VerifyReport()
    hashes: list[str] = []
    prev = GENESIS
    path = directory / LOG_NAME
    lines = path.read_bytes().split(b"\n") if path.exists() else []
    if lines and lines[-1] == b"":
        lines.pop()
    for i, raw in enumerate(lines):
        try:
            entry = json.loads(raw)
            seq, stored = entry["seq"], entry["hash"]
        except (ValueError, KeyError, TypeError):
            report.fail(f"line {i + 1}: not a valid audit entry")
            break
        if seq != i:
            report.fail(f"line {i + 1}: sequence number {seq}, expected {i} (entry removed, inserted or reordered)")
            break
        if entry.get("prev") != prev:
            report.fail(f"entry {i}: does not link to entry {i - 1} (removed, inserted or reordered)")
            break
        if entry_hash(entry) != stored:
            report.fail(f"entry {i}: content does not match its hash (edited)")
            break
        hashes.append(stored)
        prev = stored
    report.entries = len(hashes)

    head = read_head(directory / HEAD_NAME)
    if head is None:
        if lines:
            report.fail("signed head is missing or unreadable")
    else:
        report.head_seq = head.seq
        if not head.signature_ok(public):
            report.fail("signed head: signature does not verify with the device key")
        elif head.seq >= len(hashes):
            report.fail(f"log ends at entry {len(hashes) - 1} but the signed head names entry {head.seq} (truncated)")
        elif hashes[head.seq] != head.hash:
            report.fail(f"signed head does not match entry {head.seq} (rewritten)")
        elif head.seq != len(hashes) - 1 and report.ok:
            report.fail(f"entries after the signed head ({head.seq}) are not covered by a signature")

    if earlier is not None:
        if not earlier.signature_ok(public):
            report.fail("the earlier head given is not signed by this device")
        elif earlier.seq >= len(hashes):
            report.fail(f"the earlier head names entry {earlier.seq}, but the log has {len(hashes)} (truncated)")
        elif hashes[earlier.seq] != earlier.hash:
            report.fail(f"entry {earlier.seq} differs from the earlier exported head (history rewritten)")
    return report
