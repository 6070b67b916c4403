"""The clip index: SQLite in WAL mode at ``vault/index.sqlite``.

The index is a cache for fast listing. The truth is on disk (segments + signed seals + hold
files), so a lost or corrupt index is rebuilt with ``consentcam clips reindex``. WAL mode keeps
the index consistent across crashes and lets the daemon write while the CLI reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edge.errors import StateError
from edge.state import FILE_MODE
from edge.vault.records import FINISHED, ClipRecord

SCHEMA_VERSION = 1
COLUMNS = (
    "id", "camera", "start", "end", "duration", "size", "plaintext_size", "segments", "codec", "container",
    "digest", "motion_score", "held", "hold_reason", "clock_synced", "status", "extra",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clips (
    id TEXT PRIMARY KEY,
    camera TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    duration REAL NOT NULL,
    size INTEGER NOT NULL,
    plaintext_size INTEGER NOT NULL,
    segments INTEGER NOT NULL,
    codec TEXT NOT NULL,
    container TEXT NOT NULL,
    digest TEXT NOT NULL,
    motion_score REAL NOT NULL,
    held INTEGER NOT NULL DEFAULT 0,
    hold_reason TEXT NOT NULL DEFAULT '',
    clock_synced INTEGER NOT NULL,
    status TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS clips_start ON clips (start);
"""


class IndexCorruptError(StateError):
    """The SQLite index cannot be read. Nothing is lost: it is rebuilt from the seals."""


def corrupt_message(path: Path, detail: str) -> str:
    return f"{path}: the clip index is damaged ({detail}); rebuild it with 'consentcam clips reindex'"


class ClipIndex:
    """Thread-safe wrapper around one SQLite connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        _private_files(path)
        try:
            self._db = sqlite3.connect(path, timeout=10.0, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            # Small, frequently checkpointed WAL: SD cards and full disks have no room for a 4 MB log.
            self._db.execute("PRAGMA wal_autocheckpoint=64")
            self._db.execute("PRAGMA journal_size_limit=262144")
            row = self._db.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise IndexCorruptError(corrupt_message(path, f"integrity check: {row[0] if row else 'no answer'}"))
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            version = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0]
            cols = [r[1] for r in self._db.execute("PRAGMA table_info(clips)")]
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(corrupt_message(path, str(exc))) from exc
        if version != str(SCHEMA_VERSION) or tuple(cols) != COLUMNS:
            raise IndexCorruptError(corrupt_message(path, f"unexpected schema version {version}"))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower():
                    raise  # disk full: callers on the recording path log it and carry on
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower():
                    raise
                raise IndexCorruptError(corrupt_message(self.path, str(exc))) from exc

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                cur = self._db.execute(sql, params)
                return cur.fetchall()
            except sqlite3.DatabaseError as exc:
                raise IndexCorruptError(corrupt_message(self.path, str(exc))) from exc

    def upsert(self, rec: ClipRecord) -> None:
        values = _row_values(rec)
        placeholders = ",".join("?" for _ in COLUMNS)
        names = ",".join(f'"{c}"' for c in COLUMNS)
        with self._tx() as db:
            db.execute(f"INSERT OR REPLACE INTO clips ({names}) VALUES ({placeholders})", values)

    def delete(self, clip_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM clips WHERE id=?", (clip_id,))

    def set_hold(self, clip_id: str, held: bool, reason: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE clips SET held=?, hold_reason=? WHERE id=?", (int(held), reason, clip_id))

    def replace_all(self, records: list[ClipRecord]) -> None:
        placeholders = ",".join("?" for _ in COLUMNS)
        names = ",".join(f'"{c}"' for c in COLUMNS)
        with self._tx() as db:
            db.execute("DELETE FROM clips")
            db.executemany(f"INSERT INTO clips ({names}) VALUES ({placeholders})", [_row_values(r) for r in records])

    def get(self, clip_id: str) -> ClipRecord | None:
        rows = self._query(f"SELECT {_select()} FROM clips WHERE id=?", (clip_id,))
        return _record(rows[0]) if rows else None

    def ids(self) -> set[str]:
        return {r[0] for r in self._query("SELECT id FROM clips")}

    def statuses(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self._query("SELECT id, status FROM clips")}

    def list(self, start: float | None = None, end: float | None = None, *,
             include_recording: bool = False) -> list[ClipRecord]:
        sql = f"SELECT {_select()} FROM clips WHERE 1=1"
        params: list[Any] = []
        if start is not None:
            sql += ' AND "end" >= ?'
            params.append(start)
        if end is not None:
            sql += " AND start <= ?"
            params.append(end)
        if not include_recording:
            sql += f" AND status IN ({','.join('?' for _ in FINISHED)})"
            params.extend(FINISHED)
        sql += " ORDER BY start, id"
        return [_record(r) for r in self._query(sql, tuple(params))]


def _private_files(path: Path) -> None:
    """Create the database 0600 before SQLite does (it would use the umask, typically 0644); SQLite
    gives its -wal and -shm files the database's mode. Older files are tightened too.

    Never open an existing database here: POSIX locks belong to the process, and closing *any*
    descriptor of the file drops every lock another connection of this process holds on it (SQLite
    guards its own descriptors against this, not ours). Another process could then delete the WAL
    under that connection, and its later writes would vanish. O_EXCL only ever opens a new file."""
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE))
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            if os.stat(f"{path}{suffix}").st_mode & 0o777 != FILE_MODE:
                os.chmod(f"{path}{suffix}", FILE_MODE)


def _select() -> str:
    return ",".join(f'"{c}"' for c in COLUMNS)


def _row_values(rec: ClipRecord) -> tuple[Any, ...]:
    return (
        rec.id, rec.camera, rec.start, rec.end, rec.duration, rec.size, rec.plaintext_size, rec.segments,
        rec.codec, rec.container, rec.digest, rec.motion_score, int(rec.held), rec.hold_reason,
        int(rec.clock_synced), rec.status, json.dumps(rec.extra, sort_keys=True),
    )


def _record(row: tuple[Any, ...]) -> ClipRecord:
    d = dict(zip(COLUMNS, row, strict=True))
    return ClipRecord(
        id=d["id"], camera=d["camera"], start=d["start"], end=d["end"], duration=d["duration"], size=d["size"],
        plaintext_size=d["plaintext_size"], segments=d["segments"], codec=d["codec"], container=d["container"],
        digest=d["digest"], motion_score=d["motion_score"], held=bool(d["held"]), clock_synced=bool(d["clock_synced"]),
        status=d["status"], extra=json.loads(d["extra"] or "{}"), hold_reason=d["hold_reason"],
    )
