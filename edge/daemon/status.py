"""The runtime status file ``state/run/status.json`` that `consentcam status` reads.

Written atomically (temp file + rename, 0600) every few seconds by the running daemon. It holds
counts, states and ids only: never footage, keys, passphrases or request contents.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge import clock
from edge.errors import StateError
from edge.state import StateDir, write_private

STATUS_FILE = "status.json"
WRITE_INTERVAL = 2.0  # seconds between writes
STALE_AFTER = 15.0  # older than this (or a dead pid): the daemon is not running


def status_path(state: StateDir) -> Path:
    return state.runtime / STATUS_FILE


def write_status(state: StateDir, data: dict[str, Any]) -> None:
    state.ensure_dir(state.runtime)
    payload = dict(data, updated=clock.now(), updated_iso=clock.iso(clock.now()))
    write_private(status_path(state), json.dumps(payload, sort_keys=True, default=str).encode() + b"\n")


def mark_stopped(state: StateDir, data: dict[str, Any]) -> None:
    """Leave a final record that says the daemon stopped (so status does not wait for staleness)."""
    write_status(state, dict(data, running=False, recording="stopped"))


@dataclass
class StatusReading:
    running: bool
    reason: str  # why we think it is (not) running
    data: dict[str, Any]


def read_status(state: StateDir, *, now: float | None = None, stale_after: float = STALE_AFTER) -> StatusReading:
    path = status_path(state)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return StatusReading(False, "no status file (the daemon has not run here)", {})
    except PermissionError as exc:
        # Not "not running": we simply may not look. Say so instead of guessing.
        raise StateError(f"{path}: permission denied (run as the daemon's user or root)") from exc
    except (OSError, ValueError) as exc:
        return StatusReading(False, f"unreadable status file: {exc}", {})
    if not isinstance(data, dict):
        return StatusReading(False, "unreadable status file: not a JSON object", {})
    now = clock.now() if now is None else now
    updated = data.get("updated")
    pid = data.get("pid")
    if data.get("running") is False:
        return StatusReading(False, "the daemon stopped", data)
    if not isinstance(updated, int | float) or now - updated > stale_after:
        return StatusReading(False, "status file is stale (the daemon is not running)", data)
    if not isinstance(pid, int) or not _pid_alive(pid):
        return StatusReading(False, f"process {pid} is gone (the daemon is not running)", data)
    return StatusReading(True, "running", data)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user (e.g. status run as root vs the service user)
        return True
    return True
