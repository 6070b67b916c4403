"""consentcam init / keys: permissions, passphrase handling, and interoperability with the real age tool."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from edge import audit, keys
from edge.errors import PassphraseError, StateError
from edge.state import StateDir
from tests.conftest import PASSPHRASE, run_cli


def _age_with_passphrase(passphrase: str, *args: str, timeout: float = 30) -> tuple[int, str]:
    """Run the real `age` on a pseudo-terminal (it only reads passphrases from a terminal)."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - child
        os.execvp("age", ["age", *args])
    output, sent, deadline = b"", False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if fd not in ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if not sent and b"passphrase" in output.lower():
            os.write(fd, passphrase.encode() + b"\n")
            sent = True
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_init_creates_private_files_and_directories(state_dir: Path) -> None:
    for path in [state_dir, *state_dir.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = 0o700 if path.is_dir() else 0o600
        assert mode == expected, f"{path} has mode {oct(mode)}"


def test_init_refuses_to_overwrite_keys(state_dir: Path, passphrase_file: Path) -> None:
    before = (state_dir / "keys" / "device.key").read_bytes()
    res = run_cli("init", "--passphrase-file", str(passphrase_file), state=state_dir)
    assert res.returncode == 3
    assert "already initialised" in res.stderr
    assert (state_dir / "keys" / "device.key").read_bytes() == before


def test_init_without_passphrase_source_and_no_terminal_fails_clearly(tmp_path: Path) -> None:
    res = run_cli("init", state=tmp_path / "s", input="")
    assert res.returncode == 4
    assert "--passphrase-file" in res.stderr
    assert not (tmp_path / "s" / "keys").exists()


def test_empty_passphrase_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    res = run_cli("init", "--passphrase-file", str(empty), state=tmp_path / "s")
    assert res.returncode == 4 and "empty" in res.stderr


def test_keys_show_json_matches_the_key_files(state_dir: Path) -> None:
    res = run_cli("keys", "show", "--json", state=state_dir)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["owner_recipient"] == (state_dir / "keys" / "owner.pub").read_text().strip()
    device_key = keys.load_device_key(StateDir(state_dir))
    from edge.signing import encode_public, public_raw

    assert info["device_public_key"] == encode_public(device_key)
    assert info["device_id"] == keys.device_id_for(public_raw(device_key))


def test_owner_identity_opens_only_with_the_passphrase(state_dir: Path) -> None:
    state = StateDir(state_dir)
    identity = keys.unlock_owner_identity(state, PASSPHRASE)
    assert str(identity.to_public()) == str(keys.load_owner_recipient(state))
    with pytest.raises(PassphraseError, match="wrong passphrase"):
        keys.unlock_owner_identity(state, PASSPHRASE + "x")


def test_owner_key_file_is_a_standard_age_file(state_dir: Path, tmp_path: Path) -> None:
    """The owner is never locked in: plain `age` opens footage with the sealed key and the passphrase."""
    plain = tmp_path / "note.txt"
    plain.write_bytes(os.urandom(1000))
    recipient = (state_dir / "keys" / "owner.pub").read_text().strip()
    subprocess.run(["age", "-r", recipient, "-o", str(tmp_path / "note.age"), str(plain)], check=True)
    out = tmp_path / "out.bin"
    code, transcript = _age_with_passphrase(
        PASSPHRASE, "-d", "-i", str(state_dir / "keys" / "owner.key.age"), "-o", str(out), str(tmp_path / "note.age")
    )
    assert code == 0, transcript
    assert out.read_bytes() == plain.read_bytes()
    code, _ = _age_with_passphrase("not the passphrase", "-d", "-i", str(state_dir / "keys" / "owner.key.age"),
                                   "-o", str(tmp_path / "bad.bin"), str(tmp_path / "note.age"))
    assert code != 0


def test_change_passphrase(state_dir: Path, passphrase_file: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    new.write_text("a brand new passphrase\n")
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    before = (state_dir / "keys" / "owner.key.age").read_bytes()
    res = run_cli("keys", "passwd", "--passphrase-file", str(wrong), "--new-passphrase-file", str(new), state=state_dir)
    assert res.returncode == 4 and (state_dir / "keys" / "owner.key.age").read_bytes() == before
    res = run_cli("keys", "passwd", "--passphrase-file", str(passphrase_file), "--new-passphrase-file", str(new),
                  state=state_dir)
    assert res.returncode == 0, res.stderr
    state = StateDir(state_dir)
    with pytest.raises(PassphraseError):
        keys.unlock_owner_identity(state, PASSPHRASE)
    keys.unlock_owner_identity(state, "a brand new passphrase")
    kinds = [e["kind"] for e in audit.read_entries(state.audit)]
    assert kinds == ["keys.created", "keys.passphrase_changed"]


def test_missing_or_damaged_keys_give_one_clear_line(state_dir: Path, tmp_path: Path) -> None:
    (state_dir / "keys" / "owner.key.age").unlink()
    with pytest.raises(StateError, match="owner's key file is missing"):
        keys.unlock_owner_identity(StateDir(state_dir), PASSPHRASE)
    (state_dir / "keys" / "device.key").write_text("garbage")
    res = run_cli("audit", "head", state=state_dir)  # does not need the key
    assert res.returncode == 0
    with pytest.raises(StateError, match="not a valid Ed25519 private key"):
        keys.load_device_key(StateDir(state_dir))
    empty = tmp_path / "empty-state"
    shutil.copytree(state_dir, empty)
    (empty / "device.json").unlink()
    res = run_cli("keys", "show", state=empty)
    assert res.returncode == 3 and "consentcam init" in res.stderr and res.stderr.count("\n") == 1

