"""`consentcam clips ...` as real subprocesses: round trips, integrity reports, errors, retention."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import PASSPHRASE, run_cli
from vault_support import make_ts, open_vault, owner_identity, storage

from edge.audit import read_entries
from edge.errors import IntegrityError

CAP = 64 * 1024
DAY = 86400.0


def _config(tmp_path: Path, retention: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"storage:\n  segment_max_bytes: 64KiB\n  retention:\n    min_free: 0\n{retention}")
    return path


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("consentcam:")]
    assert len(lines) == 1, stderr
    return lines[0]


def _add(vault, data: bytes, start: float, *, synced: bool = True) -> str:
    w = vault.begin_clip("porch", start, clock_synced=synced)
    w.write(data)
    return w.close(start + 10).id


def test_import_then_export_bit_for_bit(state_dir: Path, tmp_path: Path, passphrase_file: Path) -> None:
    config = _config(tmp_path)
    ts = make_ts(30)
    sizes = {"empty": 0, "one": 1, "cap": CAP, "two-caps": 2 * CAP, "odd": 2 * CAP + 7}
    files = []
    for name, size in sizes.items():
        files.append(tmp_path / f"{name}.bin")
        files[-1].write_bytes(os.urandom(size))
    files.append(tmp_path / "clip.ts")
    files[-1].write_bytes(ts)
    res = run_cli("clips", "import", *map(str, files), "--camera", "garden", "--start", "2026-11-22T10:00:00Z",
                  "--json", state=state_dir, config=config)
    assert res.returncode == 0, res.stderr
    records = json.loads(res.stdout)
    assert [r["plaintext_size"] for r in records] == [f.stat().st_size for f in files]
    assert [r["segments"] for r in records] == [0, 1, 1, 2, 3, -(-len(ts) // CAP)]
    assert records[0]["start_iso"] == "2026-11-22T10:00:00.000Z" and records[0]["camera"] == "garden"
    assert (records[-1]["container"], records[-1]["codec"]) == ("mpegts", "h264")
    assert records[-1]["duration"] == pytest.approx(2.0, abs=0.2)  # 30 frames at 15 fps, probed with PyAV

    # Through the CLI for a few (each unlocks the scrypt-sealed key), through the API for the rest.
    for rec, src in list(zip(records, files, strict=True))[::2]:
        out = tmp_path / f"{src.name}.out"
        res = run_cli("clips", "export", rec["id"], "--out", str(out), "--passphrase-file", str(passphrase_file),
                      state=state_dir, config=config)
        assert res.returncode == 0, res.stderr
        assert out.read_bytes() == src.read_bytes()
    vault = open_vault(state_dir, storage(CAP))
    identity = owner_identity(state_dir, PASSPHRASE)
    for rec, src in zip(records, files, strict=True):
        assert b"".join(vault.iter_plaintext(rec["id"], identity)) == src.read_bytes()

    listed = run_cli("clips", "list", state=state_dir, config=config)
    assert listed.returncode == 0 and all(r["id"] in listed.stdout for r in records)
    shown = run_cli("clips", "show", records[-1]["id"], "--json", state=state_dir, config=config)
    assert json.loads(shown.stdout)["digest"] == records[-1]["digest"]


def test_bad_input_gives_one_line_and_changes_nothing(state_dir: Path, tmp_path: Path,
                                                      passphrase_file: Path) -> None:
    config = _config(tmp_path)
    vault = open_vault(state_dir, storage(CAP))
    clip = _add(vault, os.urandom(1000), time.time())
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")

    res = run_cli("clips", "export", clip, "--out", str(out_dir / "x.ts"), "--passphrase-file", str(wrong),
                  state=state_dir, config=config)
    assert res.returncode == 4 and "wrong passphrase" in _one_line(res.stderr)
    assert list(out_dir.iterdir()) == []

    existing = out_dir / "keep.ts"
    existing.write_bytes(b"precious")
    res = run_cli("clips", "export", clip, "--out", str(existing), "--passphrase-file", str(passphrase_file),
                  state=state_dir, config=config)
    assert res.returncode == 1 and "already exists" in _one_line(res.stderr)
    assert existing.read_bytes() == b"precious"

    for args in (["show", "20991231T000000Z-abcdef"], ["hold", "nope"], ["unhold", "nope"], ["verify", "nope"],
                 ["export", "nope", "--out", str(out_dir / "y"), "--passphrase-file", str(passphrase_file)]):
        res = run_cli("clips", *args, state=state_dir, config=config)
        assert res.returncode == 5, (args, res.stderr)
        assert "no clip with id" in _one_line(res.stderr)

    res = run_cli("clips", "export", clip, "--out", str(tmp_path / "nowhere" / "x.ts"), "--passphrase-file",
                  str(passphrase_file), state=state_dir, config=config)
    assert res.returncode == 5 and "output directory does not exist" in _one_line(res.stderr)
    res = run_cli("clips", "export", clip, "--out", str(out_dir), "--passphrase-file", str(passphrase_file),
                  state=state_dir, config=config)
    assert res.returncode == 1 and "is a directory" in _one_line(res.stderr)

    before = vault.list_clips()
    res = run_cli("clips", "import", str(tmp_path / "missing.ts"), state=state_dir, config=config)
    assert res.returncode == 5 and "no such file" in _one_line(res.stderr)
    res = run_cli("clips", "list", "--since", "yesterday", state=state_dir, config=config)
    assert res.returncode == 2 and "--since" in _one_line(res.stderr)
    assert open_vault(state_dir, storage(CAP)).list_clips() == before
    assert list(out_dir.iterdir()) == [existing]


def test_missing_keys_are_named(state_dir: Path, tmp_path: Path, passphrase_file: Path) -> None:
    config = _config(tmp_path)
    clip = _add(open_vault(state_dir, storage(CAP)), b"abc", time.time())
    (state_dir / "keys" / "owner.key.age").unlink()
    res = run_cli("clips", "export", clip, "--out", str(tmp_path / "o"), "--passphrase-file", str(passphrase_file),
                  state=state_dir, config=config)
    assert res.returncode == 3 and "owner's key file is missing" in _one_line(res.stderr)
    assert not (tmp_path / "o").exists()
    (state_dir / "keys" / "device.key").unlink()
    res = run_cli("clips", "list", state=state_dir, config=config)
    assert res.returncode == 3 and "device key" in _one_line(res.stderr)


def _damage(clips: Path, ids: dict[str, str]) -> None:
    a = clips / ids["tampered"] / "seg-000001.age"
    data = bytearray(a.read_bytes())
    data[-100] ^= 0x01
    a.write_bytes(bytes(data))
    cut = clips / ids["truncated"] / "seg-000001.age"
    os.truncate(cut, cut.stat().st_size // 2)
    (clips / ids["missing"] / "seg-000000.age").unlink()
    extra = clips / ids["extra"]
    (extra / "seg-000003.age").write_bytes((extra / "seg-000000.age").read_bytes())
    r = clips / ids["reordered"]
    s0, s1 = (r / "seg-000000.age").read_bytes(), (r / "seg-000001.age").read_bytes()
    (r / "seg-000000.age").write_bytes(s1)
    (r / "seg-000001.age").write_bytes(s0)
    (clips / ids["swapped"] / "seg-000001.age").write_bytes((clips / ids["intact"] / "seg-000001.age").read_bytes())
    seal = clips / ids["bad-seal"] / "seal.json"
    seal.write_text(seal.read_text().replace('"camera": "porch"', '"camera": "street"'))


def test_verify_names_every_kind_of_damage_and_export_refuses(state_dir: Path, tmp_path: Path,
                                                               passphrase_file: Path) -> None:
    config = _config(tmp_path)
    vault = open_vault(state_dir, storage(CAP))
    kinds = ["tampered", "truncated", "missing", "extra", "reordered", "swapped", "bad-seal", "intact"]
    ids = {k: _add(vault, os.urandom(2 * CAP + 100), 1_790_000_000 + i * 60) for i, k in enumerate(kinds)}
    res = run_cli("clips", "verify", state=state_dir, config=config)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "8 clip(s) verified" in res.stdout

    _damage(state_dir / "vault" / "clips", ids)
    res = run_cli("clips", "verify", state=state_dir, config=config)
    assert res.returncode == 6
    lines = res.stdout.splitlines()
    for kind, clip in ids.items():
        mine = [line for line in lines if line.startswith(f"clip {clip}: ")]
        if kind == "intact":
            assert mine == []
        else:
            assert mine and all(line.startswith(f"clip {clip}: {kind}: ") for line in mine), (kind, lines)
    assert "seg-000001.age is seg-000001.age of clip " + ids["intact"] in res.stdout
    assert "7 of 8 clip(s) failed verification" in _one_line(res.stderr)

    res = run_cli("clips", "verify", "--json", state=state_dir, config=config)
    assert res.returncode == 6
    report = json.loads(res.stdout)
    assert report["ok"] is False
    by_id = {c["clip_id"]: c for c in report["checks"]}
    assert {k: sorted(set(by_id[c]["kinds"])) for k, c in ids.items()} == {
        k: ([] if k == "intact" else [k]) for k in ids
    }
    assert run_cli("clips", "verify", ids["intact"], state=state_dir, config=config).returncode == 0

    out = tmp_path / "out.ts"
    res = run_cli("clips", "export", ids["tampered"], "--out", str(out), "--passphrase-file", str(passphrase_file),
                  state=state_dir, config=config)
    assert res.returncode == 6 and "integrity check" in _one_line(res.stderr)
    assert not out.exists() and list(tmp_path.glob(".out.ts*")) == []
    identity = owner_identity(state_dir, PASSPHRASE)
    for kind in kinds[:-1]:
        with pytest.raises(IntegrityError, match=kind.split("-")[0]):
            list(vault.iter_plaintext(ids[kind], identity))


def test_corrupt_or_lost_index_is_rebuilt_from_seals(state_dir: Path, tmp_path: Path) -> None:
    config = _config(tmp_path)
    vault = open_vault(state_dir, storage(CAP))
    ids = [_add(vault, os.urandom(5000), 1_790_000_000 + i) for i in range(3)]
    assert run_cli("clips", "hold", ids[1], "--reason", "insurance claim", state=state_dir,
                   config=config).returncode == 0
    vault.close()
    index = state_dir / "vault" / "index.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(str(index) + suffix).unlink(missing_ok=True)
    index.write_bytes(b"this is not a database" * 100)

    res = run_cli("clips", "list", state=state_dir, config=config)
    assert res.returncode == 3
    line = _one_line(res.stderr)
    assert "index is damaged" in line and "consentcam clips reindex" in line

    res = run_cli("clips", "reindex", state=state_dir, config=config)
    assert res.returncode == 0, res.stderr
    assert "3 clip(s)" in res.stdout
    listed = json.loads(run_cli("clips", "list", "--json", state=state_dir, config=config).stdout)
    assert [c["id"] for c in listed] == ids
    assert [(c["held"], c["hold_reason"]) for c in listed] == [(False, ""), (True, "insurance claim"), (False, "")]

    # An index that is simply gone is recreated and refilled on the next open.
    for suffix in ("", "-wal", "-shm"):
        Path(str(index) + suffix).unlink(missing_ok=True)
    listed = json.loads(run_cli("clips", "list", "--json", state=state_dir, config=config).stdout)
    assert [c["id"] for c in listed] == ids and listed[1]["held"] is True


def test_retention_by_age_and_bytes_respects_holds_and_audits(state_dir: Path, tmp_path: Path) -> None:
    now = time.time()
    vault = open_vault(state_dir, storage(CAP, max_age=30 * DAY))
    old_held = _add(vault, b"a" * 1000, now - 45 * DAY)
    old = _add(vault, b"b" * 1000, now - 40 * DAY)
    old_unsynced = _add(vault, b"c" * 1000, now - 40 * DAY, synced=False)
    recent = _add(vault, b"d" * 1000, now - 1 * DAY)
    vault.hold(old_held, "court case")

    config = _config(tmp_path, "    max_age: 30d\n")
    res = run_cli("clips", "prune", "--dry-run", "--json", state=state_dir, config=config)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["delete"] == [{"clip_id": old, "reason": "max_age"}]
    assert old in [c.id for c in vault.list_clips()]  # dry run deleted nothing
    res = run_cli("clips", "prune", "--json", state=state_dir, config=config)
    assert json.loads(res.stdout)["deleted"] == [{"clip_id": old, "reason": "max_age"}]
    assert [c.id for c in vault.list_clips()] == [old_held, old_unsynced, recent]
    assert not (state_dir / "vault" / "clips" / old).exists()

    # Bytes: keep the total under max_bytes by deleting the oldest unheld clips first.
    sizes = {c.id: c.size for c in vault.list_clips()}
    newer = [_add(vault, os.urandom(20_000), now - 3600 + i) for i in range(3)]
    total = sum(c.size for c in vault.list_clips())
    limit = total - sizes[old_unsynced] - 1  # must drop old_unsynced and then recent; never old_held
    bytes_vault = open_vault(state_dir, storage(CAP, max_bytes=limit))
    assert bytes_vault.enforce_retention() == [old_unsynced, recent]
    assert [c.id for c in bytes_vault.list_clips()] == [old_held, *newer]

    deleted = [e["data"] for e in read_entries(state_dir / "audit") if e["kind"] == "clip.deleted"]
    assert [(d["clip_id"], d["reason"]) for d in deleted] == [(old, "max_age"), (old_unsynced, "max_bytes"),
                                                              (recent, "max_bytes")]
    held = [e["data"] for e in read_entries(state_dir / "audit") if e["kind"] == "clip.held"]
    assert held == [{"clip_id": old_held, "reason": "court case"}]
    res = run_cli("clips", "unhold", old_held, state=state_dir, config=config)
    assert res.returncode == 0
    res = run_cli("clips", "prune", state=state_dir, config=config)
    assert f"deleted {old_held} (max_age)" in res.stdout
