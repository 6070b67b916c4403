"""Storage/recording review findings: each test failed before its fix (real components, no mocks)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from vault_support import open_vault, storage

from edge.capture.frames import EncodedPacket
from edge.recording.events import Ended, EventMachine, Phase
from edge.recording.preroll import PreRoll
from edge.vault import Vault

T0 = 1_790_000_000.0


def _small_clip(vault: Vault, start: float) -> str:
    """A finished one-second clip of 5000 zero bytes; returns its id."""
    w = vault.begin_clip("porch", start)
    w.write(bytes(5000))
    return w.close(start + 1).id


def test_preroll_stays_bounded_when_the_camera_never_sends_another_keyframe() -> None:
    # One keyframe, then only delta frames (infinite GOP, or a broken camera): the byte cap must
    # still hold, or RAM grows until the daemon is killed.
    ring = PreRoll(3.0, max_bytes=100_000)
    ring.push(EncodedPacket(pts=0, keyframe=True, data=bytes(1000), time=T0), keep=3.0)
    for i in range(1, 2000):
        ring.push(EncodedPacket(pts=i, keyframe=False, data=bytes(1000), time=T0 + i / 15), keep=3.0)
    assert ring.size <= 100_000 + 1000
    # Whatever it holds still starts at a keyframe (or it is empty): a clip must decode.
    kept = ring.since(T0 + 1e9)
    assert not kept or kept[0].keyframe


def test_event_ends_after_a_backward_clock_step_while_holding() -> None:
    # NTP stepping the wall clock back an hour while the event is in its merge gap must not keep
    # the recorder holding (and buffering every packet in RAM) for an hour.
    m = EventMachine(min_duration=0.3, post_roll=2.0, merge_gap=4.0)
    t, ended = 0.0, []
    for i in range(30):  # 3 s of motion at 10 fps
        t = i / 10
        ended += [x for x in m.update(t, True) if isinstance(x, Ended)]
    for _ in range(25):  # quiet until holding
        t += 0.1
        m.update(t, False)
    assert m.phase is Phase.HOLDING
    t -= 3600.0  # the clock steps back
    for _ in range(100):  # 10 s more of quiet frames: far more than merge_gap
        t += 0.1
        ended += [x for x in m.update(t, False) if isinstance(x, Ended)]
    assert m.phase is Phase.IDLE and len(ended) == 1


def test_event_ends_after_a_backward_clock_step_while_recording() -> None:
    m = EventMachine(min_duration=0.3, post_roll=2.0, merge_gap=0.0)
    t, ended = 0.0, []
    for i in range(30):
        t = i / 10
        m.update(t, True)
    assert m.phase is Phase.RECORDING
    t -= 3600.0
    for _ in range(50):  # 5 s of quiet: more than post_roll
        t += 0.1
        ended += [x for x in m.update(t, False) if isinstance(x, Ended)]
    assert m.phase is Phase.IDLE and len(ended) == 1


def test_retention_never_deletes_a_clip_whose_hold_file_exists(state_dir: Path) -> None:
    # `clips hold` writes hold.json, then updates the index. A crash (or a locked/full index)
    # between the two leaves the index saying "not held": retention must trust the hold file.
    vault = open_vault(state_dir, storage(max_bytes=1))
    start = time.time() - 100
    ids = []
    for n in range(2):
        ids.append(_small_clip(vault, start + n))
    vault.hold(ids[0], "evidence")
    db = sqlite3.connect(vault.root / "index.sqlite")
    db.execute("UPDATE clips SET held=0, hold_reason='' WHERE id=?", (ids[0],))
    db.commit()
    db.close()
    vault.close()
    vault = open_vault(state_dir, storage(max_bytes=1))
    deleted = vault.enforce_retention()
    assert ids[0] not in deleted
    assert (vault.clips_dir / ids[0] / "seal.json").exists()
    assert ids[1] in deleted


def test_every_file_under_the_vault_is_0600_and_every_directory_0700(state_dir: Path) -> None:
    # Under the default umask 022: SQLite creates its database, -wal and -shm files itself.
    vault = open_vault(state_dir, storage())
    start = time.time() - 100
    w = vault.begin_clip("porch", start)
    w.write(bytes(200_000))
    rec = w.close(start + 2)
    vault.hold(rec.id, "x")
    w = vault.begin_clip("porch", start + 5)
    w.write(bytes(1000))  # left open: marker, lock, index row "recording"
    loose = []
    for path in [vault.root, *vault.root.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        if mode != (0o700 if path.is_dir() else 0o600):
            loose.append(f"{path.relative_to(state_dir)} {mode:o}")
    w.close(start + 6)
    vault.close()
    assert loose == []


def test_export_killed_by_sigterm_leaves_no_plaintext_temp_file(state_dir: Path, tmp_path: Path,
                                                                 passphrase_file: Path) -> None:
    # SIGTERM (systemd stopping a session) or SIGHUP (terminal closed) mid-export must not leave the
    # decrypted temp file behind: it is plaintext footage.
    vault = open_vault(state_dir, storage(segment_max_bytes=2 * 1024 * 1024))
    start = time.time() - 100
    w = vault.begin_clip("porch", start)
    block = os.urandom(1024 * 1024)
    for _ in range(160):
        w.write(block)
    clip_id = w.close(start + 60).id
    vault.close()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    cmd = [sys.executable, "-c", "import sys; from edge.cli.main import main; sys.exit(main())",
           "--state-dir", str(state_dir), "clips", "export", clip_id, "--out", str(out_dir / "clip.ts"),
           "--passphrase-file", str(passphrase_file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    caught = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.endswith(".tmp") for p in out_dir.iterdir()):
                proc.send_signal(signal.SIGSTOP)  # freeze it with the temp file in place
                caught = any(p.name.endswith(".tmp") for p in out_dir.iterdir())
                proc.send_signal(signal.SIGTERM)
                proc.send_signal(signal.SIGCONT)
                break
            time.sleep(0.001)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert caught, "the export finished before the test could interrupt it"
    assert proc.returncode != 0
    assert sorted(p.name for p in out_dir.iterdir()) == []


def test_daemon_cannot_dump_core(state_dir: Path, tmp_path: Path) -> None:
    # A crash in FFmpeg/libx264 would otherwise write a core file (or hand one to systemd-coredump)
    # holding frames, pre-roll and segment buffers: plaintext footage on disk.
    from tests.daemon_helpers import DaemonProc, wait_for, write_config

    config = write_config(tmp_path / "config.yaml")
    daemon = DaemonProc(state_dir, config, tmp_path / "daemon.log")
    try:
        wait_for(lambda: daemon.daemon_status().get("running"), 60, "the daemon to run")
        limits = Path(f"/proc/{daemon.pid}/limits").read_text()
    finally:
        assert daemon.stop() == 0
    line = next(x for x in limits.splitlines() if x.startswith("Max core file size"))
    assert line.split()[4:6] == ["0", "0"], line


def test_a_stray_lock_file_in_a_sealed_clip_is_cleaned_up_on_open(state_dir: Path) -> None:
    # A CLI's recover() racing the daemon's close (seal written, lock removed between its two
    # checks) re-created .lock in a sealed clip; verify then calls it "extra" and export refuses
    # the clip forever. The next open must tidy it like a leftover marker.
    vault = open_vault(state_dir, storage())
    start = time.time() - 100
    clip_id = _small_clip(vault, start)
    (vault.clips_dir / clip_id / ".lock").touch(mode=0o600)
    vault.close()
    vault = open_vault(state_dir, storage())
    assert [c.problems for c in vault.verify(clip_id)] == [[]]


_DELETER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from vault_support import open_vault
vault = open_vault(__import__('pathlib').Path(sys.argv[1]))
ids = [c.id for c in vault.list_clips()]
print('ready', flush=True)
for clip_id in ids:
    vault.delete(clip_id, 'manual')
print('done', flush=True)
time.sleep(30)
"""


def test_kill9_during_deletions_never_loses_an_audit_entry(state_dir: Path) -> None:
    # Guarantee 10: every deletion is in the audit log. A kill -9 after the clip's files are gone
    # but before its audit entry was appended must not leave a silent deletion.
    import random

    from edge.audit import read_entries

    vault = open_vault(state_dir, storage())
    start = time.time() - 1000
    made: set[str] = set()
    for n in range(400):
        w = vault.begin_clip("porch", start + n)
        w.write(bytes(2000))
        made.add(w.close(start + n + 0.5).id)
    vault.close()
    tests_dir = str(Path(__file__).parent)
    rng = random.Random(7)
    for _ in range(15):
        proc = subprocess.Popen([sys.executable, "-c", _DELETER, str(state_dir), tests_dir],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.002, 0.025))
        finally:
            proc.kill()
            proc.wait(10)
        vault = open_vault(state_dir, storage())  # finishes any interrupted deletion
        on_disk = {p.name for p in vault.clips_dir.iterdir()}
        vault.close()
        audited = {e["data"]["clip_id"] for e in read_entries(state_dir / "audit") if e["kind"] == "clip.deleted"}
        gone = made - on_disk
        if len(gone) == len(made):
            break
        assert gone - audited == set()


def test_systemd_unit_keeps_plaintext_in_ram_out_of_swap_and_core_files() -> None:
    # Raspberry Pi OS swaps to the SD card by default (dphys-swapfile): pre-roll and segment
    # buffers must not be paged out there, nor written out as a core dump.
    unit = Path(__file__).resolve().parent.parent / "systemd" / "consentcam.service"
    settings = {}
    for line in unit.read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith(("#", ";")):
            settings[key] = value
    assert settings.get("MemorySwapMax") == "0"
    assert settings.get("LimitCORE") == "0"
    verify = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                            timeout=60)
    assert "MemorySwapMax" not in verify.stderr and "LimitCORE" not in verify.stderr, verify.stderr


def test_preroll_of_tiny_packets_without_keyframes_is_bounded_in_count_and_stays_fast() -> None:
    # A static scene gives P-frames of a few dozen bytes; with no further keyframe the 64 MiB byte
    # cap alone would allow millions of packet objects (far more RAM than their bytes) and make
    # every push scan them all.
    ring = PreRoll(3.0)
    ring.push(EncodedPacket(pts=0, keyframe=True, data=bytes(30), time=T0), keep=3.0)
    for i in range(1, 15_000):
        ring.push(EncodedPacket(pts=i, keyframe=False, data=bytes(30), time=T0 + i / 30), keep=3.0)
    assert len(ring) <= PreRoll.MAX_PACKETS < 15_000
    kept = ring.since(T0 + 1e9)
    assert not kept or kept[0].keyframe


_STARTER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from vault_support import open_vault
vault = open_vault(__import__('pathlib').Path(sys.argv[1]))
w = vault.begin_clip('porch', time.time())
print(w.clip_id, flush=True)
time.sleep(60)
"""


def test_index_row_of_a_clip_discarded_by_an_interrupted_recovery_is_dropped(state_dir: Path) -> None:
    # Recovery of a clip with no complete segment removes its directory, then its index row. A crash
    # in between left a "recording" row for a directory that no longer exists: listed forever, and
    # `clips verify` reporting the clip "missing" (exit 6) for good.
    import shutil

    proc = subprocess.Popen([sys.executable, "-c", _STARTER, str(state_dir), str(Path(__file__).parent)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        clip_id = proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait(10)
    shutil.rmtree(state_dir / "vault" / "clips" / clip_id)  # the discard's first step, then the crash
    vault = open_vault(state_dir, storage())
    assert clip_id not in [c.id for c in vault.list_clips(include_recording=True)]
    assert all(c.ok for c in vault.verify())


def test_recovery_leaves_a_clip_being_created_by_another_process_alone(state_dir: Path) -> None:
    # begin_clip makes .new-<id> and only then creates and locks .lock in it. A `clips list` (which
    # recovers) landing in between removed the directory under the daemon: the clip failed to
    # start and its pre-roll was lost. A fresh .new- directory is not abandoned yet.
    vault = open_vault(state_dir, storage())
    fresh = vault.clips_dir / ".new-20261122T120000Z-abcdef"
    stale = vault.clips_dir / ".new-20261122T110000Z-fedcba"
    fresh.mkdir(mode=0o700)
    stale.mkdir(mode=0o700)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    vault.close()
    vault = open_vault(state_dir, storage())
    assert fresh.is_dir()
    assert not stale.exists()


def test_a_damaged_audit_log_never_costs_footage(state_dir: Path) -> None:
    # Evicting an old clip to make room appends to the audit log. If the log cannot be appended
    # to (its last line damaged, by bit rot or by someone editing it), the eviction must still
    # happen and the new footage must still be stored: availability first, the error is logged.
    vault = open_vault(state_dir, storage())
    start = time.time() - 1000
    old_id = _small_clip(vault, start)
    vault.close()
    log_path = state_dir / "audit" / "log.jsonl"
    with open(log_path, "ab") as fh:
        fh.write(b"{this is not json}\n")
    vault = open_vault(state_dir, storage(min_free=1 << 62))  # every segment wants more room
    w = vault.begin_clip("porch", time.time())
    w.write(os.urandom(100_000))
    rec = w.close(time.time() + 1)
    assert w.dropped_segments == 0 and rec.segments >= 1
    assert not (vault.clips_dir / old_id).exists()


def test_a_damaged_index_never_costs_footage(state_dir: Path) -> None:
    # The index is only a cache: when it breaks under a running recorder, low free space must not
    # turn every new segment into a dropped one because eviction could not list the old clips.
    vault = open_vault(state_dir, storage(min_free=1 << 62))
    db = sqlite3.connect(vault.root / "index.sqlite")
    db.execute("DROP TABLE clips")
    db.commit()
    db.close()
    w = vault.begin_clip("porch", time.time())
    w.write(os.urandom(100_000))
    w.boundary()
    assert w.dropped_segments == 0 and len(w.segments) >= 1
    w.close(time.time() + 1)
