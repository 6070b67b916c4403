"""The SQLite index shared by several handles in one process and by other processes (the daemon
holds two vaults; `consentcam clips list` runs beside it)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from edge.vault import ClipRecord
from edge.vault.index import ClipIndex


def _record(n: int) -> ClipRecord:
    return ClipRecord(id=f"20261122T1200{n:02d}Z-abcdef", camera="cam", start=1000.0 + n, end=1001.0 + n,
                      duration=1.0, size=10, plaintext_size=9, segments=1, codec="h264", container="mpegts",
                      digest="00" * 32, motion_score=0.5, held=False, clock_synced=True, status="complete")


def _ids_seen_by_another_process(path: Path) -> list[str]:
    """Open, read and close the index in a separate process, as `consentcam clips list` does."""
    code = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
            "print(','.join(r[0] for r in db.execute('SELECT id FROM clips ORDER BY id'))); db.close()")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=30,
                         check=True).stdout.strip()
    return out.split(",") if out else []


def test_a_second_handle_does_not_cost_the_first_its_locks(tmp_path: Path) -> None:
    """Opening a second handle on the same index must not drop the first one's SQLite locks (POSIX
    locks belong to the process and any close() of the file releases them all). When that happened,
    another process closing its connection deleted the WAL under the daemon, and every later row went
    into a deleted file that no other process could see."""
    path = tmp_path / "index.sqlite"
    recorder = ClipIndex(path)
    recorder.upsert(_record(1))
    maintenance = ClipIndex(path)  # the daemon's second vault handle
    try:
        assert _ids_seen_by_another_process(path) == [_record(1).id]
        recorder.upsert(_record(2))
        assert (tmp_path / "index.sqlite-wal").exists()
        assert _ids_seen_by_another_process(path) == [_record(1).id, _record(2).id]
    finally:
        maintenance.close()
        recorder.close()
    reopened = sqlite3.connect(path)
    try:
        assert [r[0] for r in reopened.execute("SELECT id FROM clips ORDER BY id")] == [_record(1).id, _record(2).id]
    finally:
        reopened.close()
