"""The audit log detects edits, removals, reordering and truncation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge import audit, keys
from edge.signing import decode_public
from edge.state import StateDir
from tests.conftest import run_cli


def _log(state_dir: Path) -> tuple[audit.AuditLog, StateDir]:
    state = StateDir(state_dir)
    return audit.AuditLog(state.audit, keys.load_device_key(state)), state


def _public(state: StateDir):  # type: ignore[no-untyped-def]
    return decode_public(keys.load_device_info(state).device_public_key)


def _fill(state_dir: Path, n: int = 5) -> StateDir:
    log, state = _log(state_dir)
    for i in range(n):
        log.append("test.event", index=i, note=f"entry {i}")
    return state


def test_intact_log_verifies(state_dir: Path) -> None:
    state = _fill(state_dir)
    report = audit.verify_log(state.audit, _public(state))
    assert report.ok, report.problems
    assert report.entries == 6  # keys.created + 5
    res = run_cli("audit", "verify", state=state_dir)
    assert res.returncode == 0 and "6 entries" in res.stdout


def _rewrite_lines(state: StateDir, change) -> None:  # type: ignore[no-untyped-def]
    path = state.audit / audit.LOG_NAME
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(change(lines)))


def _edit(lines: list[str]) -> list[str]:
    entry = json.loads(lines[2])
    entry["data"]["note"] = "something else"
    lines[2] = json.dumps(entry) + "\n"
    return lines


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_edit, "edited"),
        (lambda lines: lines[:2] + lines[3:], "removed, inserted or reordered"),
        (lambda lines: [lines[0], lines[2], lines[1], *lines[3:]], "removed, inserted or reordered"),
        (lambda lines: lines[:-2], "truncated"),
    ],
    ids=["edited", "removed", "reordered", "truncated"],
)
def test_tampering_is_detected(state_dir: Path, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    state = _fill(state_dir)
    _rewrite_lines(state, change)
    report = audit.verify_log(state.audit, _public(state))
    assert not report.ok
    assert any(expected in p for p in report.problems), report.problems
    res = run_cli("audit", "verify", "--json", state=state_dir)
    assert res.returncode == 6
    assert json.loads(res.stdout)["ok"] is False


def test_truncation_with_resigned_head_is_caught_by_an_exported_head(state_dir: Path, tmp_path: Path) -> None:
    state = _fill(state_dir, 3)
    exported = tmp_path / "head.json"
    assert run_cli("audit", "head", "--out", str(exported), state=state_dir).returncode == 0
    log, _ = _log(state_dir)
    log.append("test.after_export")
    # An attacker holding the device key rewrites history from entry 2 and re-signs the head.
    _rewrite_lines(state, lambda lines: lines[:2])
    (state.audit / audit.HEAD_NAME).unlink()
    log.append("test.forged", note="replacement history")
    log.append("test.forged", note="more")
    assert audit.verify_log(state.audit, _public(state)).ok  # self-consistent on its own...
    res = run_cli("audit", "verify", "--head", str(exported), state=state_dir)
    assert res.returncode == 6  # ...but not with the head the owner kept
    assert "history rewritten" in res.stdout


def test_head_signed_by_another_device_is_rejected(state_dir: Path, tmp_path: Path, passphrase_file: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(state_dir, other)
    (other / "keys" / "device.key").unlink()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edge.signing import private_to_pem

    (other / "keys" / "device.key").write_bytes(private_to_pem(Ed25519PrivateKey.generate()))
    log, _ = _log(other)
    log.append("test.event")
    shutil.copy(other / "audit" / audit.HEAD_NAME, state_dir / "audit" / audit.HEAD_NAME)
    report = audit.verify_log(StateDir(state_dir).audit, _public(StateDir(state_dir)))
    assert not report.ok and any("signature" in p for p in report.problems)


def test_torn_last_line_from_a_crash_is_dropped_on_next_append(state_dir: Path) -> None:
    state = _fill(state_dir, 2)
    path = state.audit / audit.LOG_NAME
    with open(path, "ab") as fh:
        fh.write(b'{"data":{},"kind":"torn')  # crash mid-write: no newline, head never signed
    log, _ = _log(state_dir)
    entry = log.append("test.next")
    assert entry["seq"] == 3
    assert audit.verify_log(state.audit, _public(state)).ok


def test_show_lists_entries_as_json(state_dir: Path) -> None:
    _fill(state_dir, 2)
    res = run_cli("audit", "show", "--json", "--kind", "test", state=state_dir)
    assert res.returncode == 0
    entries = json.loads(res.stdout)
    assert [e["data"]["index"] for e in entries] == [0, 1]


def test_batched_appends_chain_like_single_ones(state_dir: Path) -> None:
    log, state = _log(state_dir)
    entries = log.append_many([("test.batch", {"index": i}) for i in range(4)])
    log.append("test.single")
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert [e["prev"] for e in entries[1:]] == [e["hash"] for e in entries[:-1]]
    report = audit.verify_log(state.audit, _public(state))
    assert report.ok and report.entries == 6 and report.head_seq == 5, report.problems
