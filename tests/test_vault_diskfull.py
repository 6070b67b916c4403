"""A real, small filesystem that fills up: a size-limited tmpfs (or a loop-mounted ext4 image)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PASSPHRASE
from vault_support import open_vault, owner_identity, storage

from edge.audit import read_entries

CAP = 64 * 1024
FS_BYTES = 3 * 1024 * 1024


def _mount_small_fs(mnt: Path, image: Path) -> str:
    tmpfs = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_BYTES},mode=0700", "tmpfs", str(mnt)],
                           capture_output=True, text=True)
    if tmpfs.returncode == 0:
        return "tmpfs"
    subprocess.run(["truncate", "-s", str(FS_BYTES), str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    loop = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True)
    if loop.returncode != 0:
        pytest.fail(f"cannot mount a small filesystem here (tmpfs: {tmpfs.stderr.strip()}; "
                    f"loop: {loop.stderr.strip()}); these tests need root")
    return "ext4"


@pytest.fixture
def small_state(state_dir: Path, tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    _mount_small_fs(mnt, tmp_path / "fs.img")
    try:
        dest = mnt / "state"
        shutil.copytree(state_dir, dest)
        yield dest
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _add(vault, size: int, start: float) -> str:
    w = vault.begin_clip("porch", start)
    w.write(os.urandom(size))
    return w.close(start + 5).id


def _deleted(state: Path) -> list[tuple[str, str]]:
    return [(e["data"]["clip_id"], e["data"]["reason"]) for e in read_entries(state / "audit")
            if e["kind"] == "clip.deleted"]


def test_full_disk_evicts_oldest_unheld_keeps_held_and_never_stops(small_state: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    vault = open_vault(small_state, storage(CAP))
    start = time.time() - 3600
    old = [_add(vault, 300_000, start + i) for i in range(6)]
    vault.hold(old[0], "evidence")

    data = os.urandom(80 * CAP)  # far more than the whole filesystem
    caplog.set_level(logging.INFO, logger="consentcam.vault")
    w = vault.begin_clip("porch", time.time())
    for i in range(0, len(data), 16 * 1024):  # must never raise
        w.write(data[i : i + 16 * 1024])
        w.boundary()
    rec = w.close(time.time())

    assert w.dropped_segments > 0 and rec.segments > 0
    assert _deleted(small_state) == [(c, "disk_full") for c in old[1:]]  # oldest first, the held one kept
    assert [c.id for c in vault.list_clips()] == [old[0], rec.id]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2, errors  # when the loss starts, and a summary when the clip ends: no flood
    assert "storage full" in errors[0] and "no unheld finished clip is left to delete" in errors[0]
    assert "footage is lost, recording continues" in errors[0]
    assert f"{w.dropped_segments} segment(s) of footage were dropped" in errors[1]

    # Everything that was written still verifies and decrypts; what was kept is the clip's start.
    assert all(c.ok for c in vault.verify()), [c.problems for c in vault.verify()]
    identity = owner_identity(small_state, PASSPHRASE)
    plain = b"".join(vault.iter_plaintext(rec.id, identity))
    assert len(plain) == rec.segments * CAP and data.startswith(plain)
    assert len(b"".join(vault.iter_plaintext(old[0], identity))) == 300_000

    # Once the owner releases the hold, newer footage wins over it.
    vault.unhold(old[0])
    before = len(_deleted(small_state))
    newer = _add(vault, 10 * CAP, time.time())
    assert _deleted(small_state)[before] == (old[0], "disk_full")
    assert vault.get(newer).plaintext_size == 10 * CAP
    reopened = open_vault(small_state, storage(CAP))
    assert all(c.ok for c in reopened.verify())


def test_min_free_is_kept_by_retention_and_while_recording(small_state: Path) -> None:
    vault = open_vault(small_state, storage(CAP))
    start = time.time() - 3600
    clips = [_add(vault, 200_000, start + i) for i in range(5)]
    vault.hold(clips[0], "")
    free = vault.free_bytes()
    floor = free + 450_000  # needs three ~200 kB clips gone; the held oldest must stay
    kept = open_vault(small_state, storage(CAP, min_free=floor))
    assert kept.plan_retention() == [(c, "min_free") for c in clips[1:4]]
    assert kept.enforce_retention() == clips[1:4]
    assert kept.free_bytes() >= floor
    assert [c.id for c in kept.list_clips()] == [clips[0], clips[4]]

    # While recording, the writer keeps min_free too: the last unheld old clip goes first.
    writer_vault = open_vault(small_state, storage(CAP, min_free=kept.free_bytes() - 100_000))
    new = _add(writer_vault, 4 * CAP, time.time())
    assert _deleted(small_state) == [(c, "min_free") for c in clips[1:5]]
    assert [c.id for c in writer_vault.list_clips()] == [clips[0], new]
