"""Recovery of clips left behind by a crash, in the exact states a crash can leave on disk.

The states are produced by a real writer process that is SIGKILLed while it holds a clip
open (the helper below), then the files are arranged as a crash at other instants would have
left them (a half-written temp segment, a segment after a gap, a half-finished deletion).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PASSPHRASE, REPO, run_cli
from vault_support import open_vault, owner_identity, storage

from edge.audit import read_entries
from edge.errors import NotFoundError

CAP = 64 * 1024

HOLD_OPEN = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from edge import keys
from edge.config import StorageConfig
from edge.state import StateDir
from edge.vault import Vault
st = StateDir(Path(sys.argv[1]))
vault = Vault.open(st, StorageConfig(segment_max_bytes=65536), keys.load_owner_recipient(st), keys.load_device_key(st))
w = vault.begin_clip("porch", 1_790_000_000.0)
w.write(Path(sys.argv[2]).read_bytes())
w.segments  # waits until every complete segment is on disk
print(w.clip_id, flush=True)
time.sleep(60)
"""


def _killed_writer(state: Path, tmp_path: Path, data: bytes) -> str:
    """A real process writes `data` into a clip, then is SIGKILLed with the clip still open."""
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    script = tmp_path / "hold_open.py"
    script.write_text(HOLD_OPEN.format(repo=str(REPO)))
    proc = subprocess.Popen([sys.executable, str(script), str(state), str(src)], stdout=subprocess.PIPE, text=True)
    try:
        clip_id = proc.stdout.readline().strip() if proc.stdout else ""
        assert clip_id, "writer did not start"
        # While it lives, nobody else may recover its clip.
        other = open_vault(state, storage(CAP))
        assert other.get(clip_id).status == "recording"
        listed = run_cli("clips", "list", state=state)
        assert f"{clip_id}" in listed.stdout and "recording" in listed.stdout
        assert [c.id for c in other.list_clips()] == []
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
    return clip_id


def test_recovery_keeps_the_contiguous_complete_segments(state_dir: Path, tmp_path: Path) -> None:
    data = os.urandom(3 * CAP + 500)  # 3 complete segments on disk, 500 bytes only in RAM
    clip_id = _killed_writer(state_dir, tmp_path, data)
    clip = state_dir / "vault" / "clips" / clip_id
    assert sorted(p.name for p in clip.glob("seg-*")) == ["seg-000000.age", "seg-000001.age", "seg-000002.age"]
    # As if the crash had also hit while segment 3 was half written and after a later segment.
    (clip / ".seg-000003.age.tmp").write_bytes((clip / "seg-000000.age").read_bytes()[:1000])
    (clip / ".staged-000004.tmp").write_bytes((clip / "seg-000002.age").read_bytes())  # staged, never renamed
    (clip / "seg-000005.age").write_bytes((clip / "seg-000001.age").read_bytes())

    vault = open_vault(state_dir, storage(CAP))
    rec = vault.get(clip_id)
    assert (rec.status, rec.segments, rec.plaintext_size) == ("recovered", 3, 3 * CAP)
    assert sorted(p.name for p in clip.iterdir()) == ["seal.json", "seg-000000.age", "seg-000001.age",
                                                      "seg-000002.age"]
    assert b"".join(vault.iter_plaintext(clip_id, owner_identity(state_dir, PASSPHRASE))) == data[: 3 * CAP]
    assert json.loads((clip / "seal.json").read_text())["seal"]["status"] == "recovered"
    assert rec.end >= rec.start
    assert [c.ok for c in vault.verify()] == [True]


def test_a_clip_without_a_complete_segment_is_removed(state_dir: Path, tmp_path: Path) -> None:
    clip_id = _killed_writer(state_dir, tmp_path, os.urandom(1000))
    assert (state_dir / "vault" / "clips" / clip_id / "recording.json").exists()
    vault = open_vault(state_dir, storage(CAP))
    with pytest.raises(NotFoundError):
        vault.get(clip_id)  # an empty interrupted clip is not listed
    assert not (state_dir / "vault" / "clips" / clip_id).exists()


def test_an_interrupted_deletion_is_finished_and_audited(state_dir: Path) -> None:
    vault = open_vault(state_dir, storage(CAP))
    w = vault.begin_clip("porch", time.time())
    w.write(os.urandom(2000))
    rec = w.close(time.time())
    clips = state_dir / "vault" / "clips"
    # A deletion renames the clip aside first; a crash right after leaves this.
    os.rename(clips / rec.id, clips / f".trash-{rec.id}")
    vault = open_vault(state_dir, storage(CAP))
    assert not (clips / f".trash-{rec.id}").exists()
    assert vault.list_clips() == []
    entries = [e["data"] for e in read_entries(state_dir / "audit") if e["kind"] == "clip.deleted"]
    assert [(e["clip_id"], e["reason"]) for e in entries] == [(rec.id, "deletion completed after an interruption")]


def test_a_seal_written_but_not_indexed_is_picked_up(state_dir: Path) -> None:
    vault = open_vault(state_dir, storage(CAP))
    w = vault.begin_clip("porch", time.time())
    w.write(os.urandom(CAP + 1))
    rec = w.close(time.time())
    vault.index.delete(rec.id)  # as if the crash came between the seal and the index update
    vault.close()
    assert open_vault(state_dir, storage(CAP)).get(rec.id).digest == rec.digest
    shutil.rmtree(state_dir / "vault" / "clips" / rec.id)
    checks = open_vault(state_dir, storage(CAP)).verify()
    assert [(c.clip_id, c.kinds) for c in checks] == [(rec.id, ["missing"])]
