"""Where everything lives inside the state directory, and the file-permission rules for it.

Directories are 0700 and files 0600: the state directory holds the device key and the
passphrase-protected owner key, and nothing in it is for other users.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edge.errors import StateError

DIR_MODE = 0o700
FILE_MODE = 0o600
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # errnos that mean "no space left"


@dataclass(frozen=True)
class StateDir:
    root: Path

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def owner_recipient(self) -> Path:
        return self.keys / "owner.pub"

    @property
    def owner_identity(self) -> Path:
        """The owner's age identity, encrypted with the owner's passphrase (age scrypt)."""
        return self.keys / "owner.key.age"

    @property
    def device_key(self) -> Path:
        return self.keys / "device.key"

    @property
    def device_info(self) -> Path:
        return self.root / "device.json"

    @property
    def vault(self) -> Path:
        return self.root / "vault"

    @property
    def trust_store(self) -> Path:
        return self.root / "trust.json"

    @property
    def requests(self) -> Path:
        return self.root / "requests"

    @property
    def audit(self) -> Path:
        return self.root / "audit"

    @property
    def runtime(self) -> Path:
        """Small runtime facts the daemon shares with `consentcam status` (never footage)."""
        return self.root / "run"

    def require_initialised(self) -> None:
        if not self.device_info.exists():
            raise StateError(f"{self.root}: not a consentcam state directory (run 'consentcam init' first)")

    def ensure_dir(self, path: Path) -> Path:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        return path


def write_private(path: Path, data: bytes | Iterable[bytes], *, mode: int = FILE_MODE) -> None:
    """Atomically replace ``path``: temp file in the same directory, fsync, rename.

    ``data`` may be an iterable of chunks (streamed, e.g. decrypted footage). If it raises part
    way, the temp file is removed and ``path`` is untouched: nothing half-written ever appears.
    """
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    chunks = [data] if isinstance(data, bytes | bytearray | memoryview) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename or create durable: fsync the directory entry."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(path: Path, data: bytes | bytearray | memoryview) -> None:
    """Write data to a new file and fdatasync it (data and size: all a reader needs; the caller's
    rename is made durable by a directory fsync). The file is removed if anything fails."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fdatasync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
