"""Persistent replay cache and per-requester rate counters (``state/requests/replay.sqlite``).

SQLite in WAL mode with ``synchronous=NORMAL``: one small transaction per accepted request and
no fsync per commit (WAL checkpoints do that), which keeps intake fast on an SD card while a
power cut can at worst forget the last few acceptances (the pending files are written first).

- ``seen``: request ids that reached the replay check, kept until their expiry (plus skew), with
  the digest and first-seen time so identical copies from area fan-out are recognised as
  duplicates rather than replays.
- ``rate``: one row per accepted request per signer key id; the limit is a sliding 24 h window.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from edge.state import DIR_MODE

DAY = 86400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    signer TEXT NOT NULL,
    first_seen REAL NOT NULL,
    keep_until REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_keep ON seen(keep_until);
CREATE TABLE IF NOT EXISTS rate (
    signer TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_signer_ts ON rate(signer, ts);
"""


@dataclass(frozen=True)
class SeenRow:
    id: str
    digest: str
    signer: str
    first_seen: float
    keep_until: float


class ReplayStore:
    """Thread-safe (one connection behind a lock); several processes may open the same file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._batch = False
        path.chmod(0o600)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def lookup(self, request_id: str) -> SeenRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, digest, signer, first_seen, keep_until FROM seen WHERE id = ?", (request_id,)
            ).fetchone()
        return SeenRow(*row) if row else None

    def rate_count(self, signer: str, now: float) -> int:
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM rate WHERE signer = ? AND ts > ?", (signer, now - DAY)
            ).fetchone()
        return int(n)

    def begin(self) -> None:
        """Open one transaction for a batch of record() calls (committed by :meth:`commit`)."""
        with self._lock:
            if not self._db.in_transaction:
                self._db.execute("BEGIN IMMEDIATE")
                self._batch = True

    def commit(self) -> None:
        with self._lock:
            if self._db.in_transaction:
                self._db.execute("COMMIT")
            self._batch = False

    def record(self, request_id: str, digest: str, signer: str, now: float, keep_until: float) -> bool:
        """Remember an accepted request and count it against its signer. False if the id was taken
        meanwhile (another process won the race): treat as a replay."""
        with self._lock:
            own = not self._batch
            try:
                if own:
                    self._db.execute("BEGIN IMMEDIATE")
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO seen (id, digest, signer, first_seen, keep_until) VALUES (?, ?, ?, ?, ?)",
                    (request_id, digest, signer, now, keep_until),
                )
                if cur.rowcount != 1:
                    if own:
                        self._db.execute("ROLLBACK")
                    return False
                self._db.execute("INSERT INTO rate (signer, ts) VALUES (?, ?)", (signer, now))
                if own:
                    self._db.execute("COMMIT")
                return True
            except BaseException:
                if own and self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def forget(self, request_id: str) -> None:
        """Undo a record() whose pending write failed (so a retry is not refused as a replay)."""
        with self._lock:
            self._db.execute("DELETE FROM seen WHERE id = ?", (request_id,))

    def prune(self, now: float) -> int:
        """Drop ids past their keep time and rate rows older than a day."""
        with self._lock:
            a = self._db.execute("DELETE FROM seen WHERE keep_until < ?", (now,)).rowcount
            b = self._db.execute("DELETE FROM rate WHERE ts <= ?", (now - DAY,)).rowcount
        return int(a) + int(b)
