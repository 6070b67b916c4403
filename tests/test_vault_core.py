"""The Vault API with real files, real keys and the real `age` binary."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyrage
import pytest
from conftest import PASSPHRASE, REPO
from vault_support import decode_frames, make_ts, open_vault, owner_identity, plaintext_leaks, storage

from edge import keys
from edge.encoding import canonical_json, sha256_hex
from edge.errors import NotFoundError, StateError
from edge.signing import DOMAIN_CLIP_SEAL, verify
from edge.state import StateDir
from edge.vault import ClipRecord
from edge.vault.seal import clip_digest

CAP = 64 * 1024
AGE = shutil.which("age")


def _identity(state: Path) -> pyrage.x25519.Identity:
    return owner_identity(state, PASSPHRASE)


def _write_clip(vault, data: bytes, *, chunk: int = 10_000, camera: str = "porch", start: float | None = None,
                end: float | None = None) -> ClipRecord:
    start = time.time() if start is None else start
    w = vault.begin_clip(camera, start)
    for i in range(0, len(data), chunk):
        w.write(data[i : i + chunk])
    return w.close(end if end is not None else start + 2.0)


def test_every_segment_decrypts_with_the_age_cli(state_dir: Path, tmp_path: Path) -> None:
    vault = open_vault(state_dir, storage(CAP))
    data = os.urandom(3 * CAP + 12345)
    rec = _write_clip(vault, data)
    assert rec.segments == 4 and rec.plaintext_size == len(data) and rec.status == "complete"

    identity_file = tmp_path / "owner.identity"
    identity_file.write_text(str(_identity(state_dir)) + "\n")
    identity_file.chmod(0o600)
    clip_dir = state_dir / "vault" / "clips" / rec.id
    out = b""
    for seg in sorted(clip_dir.glob("seg-*.age")):
        assert seg.read_bytes().startswith(b"age-encryption.org/v1\n")
        proc = subprocess.run([AGE, "-d", "-i", str(identity_file), str(seg)], capture_output=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        out += proc.stdout
    assert out == data


def test_owner_key_file_is_a_standard_age_passphrase_file(state_dir: Path, tmp_path: Path) -> None:
    """`age -d` with the passphrase typed on a terminal (a real pty) opens keys/owner.key.age."""
    out = tmp_path / "identity.txt"
    pid, fd = pty.fork()
    if pid == 0:  # child: the real age binary, reading the passphrase from its controlling tty
        os.execv(AGE, [AGE, "-d", "-o", str(out), str(state_dir / "keys" / "owner.key.age")])
    transcript = b""
    sent = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                break  # child closed the terminal
            if not chunk:
                break
            transcript += chunk
        if not sent and b"passphrase" in transcript.lower():
            os.write(fd, PASSPHRASE.encode() + b"\r")
            sent = True
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
    else:
        os.kill(pid, 9)
        pytest.fail(f"age did not finish: {transcript!r}")
    if not done:
        _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert sent, transcript
    assert os.waitstatus_to_exitcode(status) == 0, transcript
    assert out.read_text().strip() == str(_identity(state_dir))
    assert out.read_text().startswith("AGE-SECRET-KEY-1")


# 20 * CAP + 3: many more segments than buffers in flight, so every buffer is reused, and a short
# last segment in a reused (full-size) buffer: stale bytes past its end must not reach the file.
@pytest.mark.parametrize("size", [0, 1, CAP - 1, CAP, CAP + 1, 3 * CAP, 20 * CAP + 3])
def test_round_trip_bit_for_bit(state_dir: Path, tmp_path: Path, size: int) -> None:
    vault = open_vault(state_dir, storage(CAP))
    data = os.urandom(size)
    rec = _write_clip(vault, data, chunk=7919)
    assert rec.segments == -(-size // CAP)  # exact multiples make no empty trailing segment
    out = tmp_path / "out.bin"
    vault.export(rec.id, _identity(state_dir), out)
    assert out.read_bytes() == data
    assert out.stat().st_mode & 0o777 == 0o600
    assert b"".join(vault.iter_plaintext(rec.id, _identity(state_dir))) == data


def test_write_takes_any_buffer_and_keeps_a_copy(state_dir: Path, tmp_path: Path) -> None:
    """bytes, a reused bytearray, a memoryview and a strided numpy slice: each is copied at once,
    so a caller that reuses its buffer (as the muxer and importer do) cannot change stored footage."""
    import numpy as np

    vault = open_vault(state_dir, storage(CAP))
    w = vault.begin_clip("porch", 1_790_000_000.0)
    expected = bytearray()
    scratch = bytearray(os.urandom(CAP // 3))
    for round_ in range(4):
        w.write(scratch)
        expected += scratch
        scratch[:] = os.urandom(len(scratch))  # reused by the caller after write() returned
        piece = os.urandom(5000)
        w.write(memoryview(piece)[100:4100])
        expected += piece[100:4100]
        grid = np.frombuffer(os.urandom(64 * 64), dtype=np.uint8).reshape(64, 64)
        w.write(grid[:, ::2])  # not contiguous
        expected += grid[:, ::2].tobytes()
        w.write(b"tail %d" % round_)
        expected += b"tail %d" % round_
    rec = w.close(1_790_000_005.0)
    out = tmp_path / "out.bin"
    vault.export(rec.id, _identity(state_dir), out)
    assert out.read_bytes() == bytes(expected)


def test_seal_is_signed_by_the_device_and_binds_every_segment(state_dir: Path) -> None:
    vault = open_vault(state_dir, storage(CAP))
    w = vault.begin_clip("porch", 1_790_000_000.25, codec="h264", container="mpegts", clock_synced=False)
    w.write(os.urandom(2 * CAP + 5))
    w.note_motion(0.3)
    w.note_motion(0.9)
    w.note_motion(0.1)
    rec = w.close(1_790_000_010.5, {"fps": 15, "width": 64})
    doc = json.loads((state_dir / "vault" / "clips" / rec.id / "seal.json").read_text())
    body = doc["seal"]
    public = keys.load_device_key(StateDir(state_dir)).public_key()
    assert verify(public, DOMAIN_CLIP_SEAL, canonical_json(body), __import__("base64").b64decode(doc["signature"]))
    files = [state_dir / "vault" / "clips" / rec.id / s["name"] for s in body["segments"]]
    assert [sha256_hex(f.read_bytes()) for f in files] == [s["sha256"] for s in body["segments"]]
    assert body["digest"] == clip_digest([s["sha256"] for s in body["segments"]]) == rec.digest
    assert body["device_id"] == keys.load_device_info(StateDir(state_dir)).device_id
    assert (body["start"], body["end"], body["clock_synced"]) == ("2026-09-21T14:13:20.250Z",
                                                                  "2026-09-21T14:13:30.500Z", False)
    assert rec.motion_score == pytest.approx(0.9) and rec.extra == {"fps": 15, "width": 64}
    assert rec.duration == pytest.approx(10.25)


def test_segments_rotate_at_boundaries_once_segment_seconds_passed(state_dir: Path) -> None:
    vault = open_vault(state_dir, storage(10 * 1024 * 1024, segment_seconds=0.2))
    w = vault.begin_clip("porch", time.time())
    w.write(b"a" * 1000)
    w.boundary()  # too early: no rotation
    assert w.buffered == 1000 and len(w.segments) == 0
    time.sleep(0.25)
    w.boundary()
    assert w.buffered == 0 and len(w.segments) == 1
    w.write(b"b" * 10)
    time.sleep(0.45)  # more than 2 x segment_seconds with no boundary: the safety net cuts anyway
    w.write(b"c" * 10)
    assert len(w.segments) == 2 and w.buffered == 0
    rec = w.close(time.time())
    assert rec.plaintext_size == 1020 and rec.segments == 2


def test_list_get_and_in_progress_clips(state_dir: Path) -> None:
    vault = open_vault(state_dir, storage(CAP))
    a = _write_clip(vault, b"x" * 100, start=1000.0, end=1010.0)
    b = _write_clip(vault, b"y" * 100, start=2000.0, end=2010.0)
    live = vault.begin_clip("porch", 3000.0)
    live.write(os.urandom(CAP + 1))
    assert [c.id for c in vault.list_clips()] == [a.id, b.id]
    assert [c.id for c in vault.list_clips(1005.0, 1500.0)] == [a.id]
    assert [c.id for c in vault.list_clips(1011.0, 1999.0)] == []
    assert [c.id for c in vault.list_clips(2010.0, None)] == [b.id]
    listed = vault.list_clips(include_recording=True)
    assert [c.status for c in listed] == ["complete", "complete", "recording"]
    # Another process opening the vault meanwhile must not "recover" a clip that is still being written.
    other = open_vault(state_dir, storage(CAP))
    assert other.get(live.clip_id).status == "recording"
    assert [c.clip_id for c in other.verify()] == [a.id, b.id]
    rec = live.close(3005.0)
    assert rec.status == "complete" and other.get(rec.id).status == "complete"
    with pytest.raises(NotFoundError, match="no clip with id 'nope'"):
        vault.get("nope")


def test_abort_keeps_complete_segments_as_recovered(state_dir: Path) -> None:
    vault = open_vault(state_dir, storage(CAP))
    w = vault.begin_clip("porch", time.time())
    w.write(os.urandom(CAP + 100))
    w.abort()
    rec = vault.get(w.clip_id)
    assert rec.status == "recovered" and rec.plaintext_size == CAP
    empty = vault.begin_clip("porch", time.time())
    empty.write(b"only buffered")
    empty.abort()
    with pytest.raises(NotFoundError):
        vault.get(empty.clip_id)
    assert not (state_dir / "vault" / "clips" / empty.clip_id).exists()


def test_no_plaintext_in_any_file_while_recording_and_after(state_dir: Path) -> None:
    vault = open_vault(state_dir, storage(CAP))
    data = make_ts(90) + os.urandom(200_000)
    w = vault.begin_clip("porch", time.time())
    half = len(data) // 2
    w.write(data[:half])
    assert w.buffered > 0  # part of it is in RAM right now
    assert plaintext_leaks(data, state_dir) == []
    w.write(data[half:])
    rec = w.close(time.time())
    assert rec.plaintext_size == len(data)
    assert plaintext_leaks(data, state_dir) == []
    # The scanner itself finds a leak when there is one.
    (state_dir / "vault" / "leak.bin").write_bytes(b"header" + data[5000:9200])
    assert plaintext_leaks(data, state_dir) == [str(state_dir / "vault" / "leak.bin")]


RECORDER = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
from edge import audit, keys
from edge.config import StorageConfig
from edge.state import StateDir
from edge.vault import Vault
st = StateDir(Path(sys.argv[1]))
dk = keys.load_device_key(st)
vault = Vault.open(st, StorageConfig(segment_max_bytes=65536), keys.load_owner_recipient(st), dk,
                   audit.AuditLog(st.audit, dk))
w = vault.begin_clip("porch", time.time())
w.write(Path(sys.argv[2]).read_bytes())
rec = w.close(time.time())
print(rec.id)
print(sum("owner.key" in p for p in opened))
try:
    keys.unlock_owner_identity(st, sys.argv[3])
    print("opened")
except Exception as exc:
    print(type(exc).__name__)
"""


def test_recorder_needs_no_owner_key_and_cannot_open_clips(state_dir: Path, tmp_path: Path) -> None:
    recorder_state = tmp_path / "recorder-state"
    shutil.copytree(state_dir, recorder_state)
    (recorder_state / "keys" / "owner.key.age").unlink()  # the recorder's machine has only the public key
    data = os.urandom(150_000)
    (tmp_path / "footage").write_bytes(data)
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER.format(repo=str(REPO)))
    proc = subprocess.run([sys.executable, str(script), str(recorder_state), str(tmp_path / "footage"), PASSPHRASE],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    clip_id, opened_owner_key, unlock = proc.stdout.split()
    assert opened_owner_key == "0"  # the recording path never even tried to open owner.key.age
    assert unlock == StateError.__name__  # and it cannot get the identity: the file is not there
    # The owner (with the passphrase-sealed key) opens the clip the recorder wrote.
    moved = state_dir / "vault"
    shutil.rmtree(moved, ignore_errors=True)
    shutil.copytree(recorder_state / "vault", moved)
    vault = open_vault(state_dir, storage(CAP))
    assert b"".join(vault.iter_plaintext(clip_id, _identity(state_dir))) == data


def test_recorded_mpegts_decodes_after_the_round_trip(state_dir: Path) -> None:
    ts = make_ts(45)
    vault = open_vault(state_dir, storage(8 * 1024))
    w = vault.begin_clip("porch", time.time())
    for i in range(0, len(ts), 188 * 7):
        w.write(ts[i : i + 188 * 7])
        w.boundary()
    rec = w.close(time.time() + 3)
    assert rec.segments > 1
    plain = b"".join(vault.iter_plaintext(rec.id, _identity(state_dir)))
    assert plain == ts and decode_frames(plain) == 45


def test_clip_digest_test_vectors() -> None:
    """The vectors published in docs/VAULT.md."""
    doc = (REPO / "docs" / "VAULT.md").read_text()
    empty, zeros = clip_digest([]), clip_digest(["00" * 32])
    assert empty == "de31f47636c19383bbd9012023744f366fc6cd15a6d8dce45914f0fc11aa27d4"
    assert zeros == "ea293fb33b63fa419a33f5890b1ba4661bd18eb7ded539339068474531436533"
    assert empty in doc and zeros in doc
    assert clip_digest(["00" * 32, "11" * 32]) != clip_digest(["11" * 32, "00" * 32])  # order matters


def test_odd_recorder_metadata_never_stops_a_seal(state_dir: Path) -> None:
    import numpy as np

    vault = open_vault(state_dir, storage(CAP))
    w = vault.begin_clip("porch", 1000.0)
    w.write(b"x" * 10)
    w.note_motion(float("nan"))
    w.note_motion(np.float32(0.5))
    rec = w.close(1001.0, {"fps": np.int64(15), "gain": float("inf"), "box": (1, 2), "where": Path("/x")})
    assert rec.extra == {"fps": 15, "gain": None, "box": [1, 2], "where": "/x"}
    assert rec.motion_score == pytest.approx(0.5)
    assert [c.ok for c in vault.verify(rec.id)] == [True]
