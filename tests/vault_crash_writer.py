"""Records an MPEG-TS file into the vault in real time, to be killed with SIGKILL by a test.

Usage: vault_crash_writer.py STATE_DIR TS_FILE PROGRESS_FILE FPS

Writes TS_FILE in frame-sized pieces at FPS pieces per second, calling boundary() once per
second (where the encoder put its keyframes). After every write it appends
``<monotonic time> <bytes fed>`` to PROGRESS_FILE (the first line is the clip id), so the test
knows exactly what was handed to the vault before the kill.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge import audit, keys
from edge.config import StorageConfig
from edge.state import StateDir
from edge.vault import Vault


def main() -> None:
    state, ts_file, progress_file, fps = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    data = ts_file.read_bytes()
    st = StateDir(state)
    dk = keys.load_device_key(st)
    vault = Vault.open(st, StorageConfig(segment_seconds=1.0), keys.load_owner_recipient(st), dk,
                       audit.AuditLog(st.audit, dk))
    writer = vault.begin_clip("crash-test", time.time())
    progress = os.open(progress_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(progress, f"{writer.clip_id}\n".encode())
    pieces = 1000  # the file is cut into this many equal pieces, fed at FPS pieces per second
    step = -(-len(data) // pieces)
    begin = time.monotonic()
    fed = 0
    for i in range(pieces):
        due = begin + i / fps
        time.sleep(max(0.0, due - time.monotonic()))
        if i % fps == 0:
            writer.boundary()
        piece = data[i * step : (i + 1) * step]
        writer.write(piece)
        fed += len(piece)
        os.write(progress, f"{time.monotonic():.6f} {fed}\n".encode())
    writer.close(time.time())
    os.write(progress, b"closed\n")


if __name__ == "__main__":
    main()
