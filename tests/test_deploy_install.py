"""scripts/install.sh against a fake root (--prefix): install twice, keep, uninstall, purge; shell lint."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from edge.config import parse_config

INSTALL = REPO / "scripts" / "install.sh"
SCRIPTS = [INSTALL, REPO / "scripts" / "make-certs.sh"]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="install.sh sets owners (root only)")


def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nvideo:x:44:\nrender:x:105:\n")
    for name in ("shadow", "gshadow"):
        (root / "etc" / name).write_text("")
        (root / "etc" / name).chmod(0o600)
    return root


def install(root: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONSENTCAM_PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(INSTALL), "--prefix", str(root), *args], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == expect, proc.stdout + proc.stderr
    return proc


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything about the tree that matters: type, mode, owner, content hash or link target."""
    out: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        else:
            out[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                        hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def ids(root: Path) -> tuple[int, int]:
    line = next(ln for ln in (root / "etc/passwd").read_text().splitlines() if ln.startswith("consentcam:"))
    uid, gid = line.split(":")[2:4]
    return int(uid), int(gid)


BASE = ("--no-apt", "--skip-pip", "--model", "pi4", "--camera", "imx219")


@needs_root
def test_install_is_complete_and_idempotent(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    first = install(root, *BASE)
    assert "sudo -u consentcam consentcam init" in first.stdout
    after_first = snapshot(root)
    install(root, *BASE)
    assert snapshot(root) == after_first, "a second run changed the tree"

    passwd, group = (root / "etc/passwd").read_text(), (root / "etc/group").read_text()
    assert [ln.split(":")[0] for ln in passwd.splitlines()].count("consentcam") == 1 and "nologin" in passwd
    assert "video:x:44:consentcam\n" in group and "render:x:105:consentcam\n" in group
    uid, gid = ids(root)
    etc, state = root / "etc/consentcam", root / "var/lib/consentcam"
    assert (stat.S_IMODE(etc.stat().st_mode), etc.stat().st_uid, etc.stat().st_gid) == (0o750, 0, gid)
    assert (stat.S_IMODE(state.stat().st_mode), state.stat().st_uid) == (0o700, uid)
    cfg_path = etc / "config.yaml"
    assert (stat.S_IMODE(cfg_path.stat().st_mode), cfg_path.stat().st_gid) == (0o640, gid)
    cfg = parse_config(cfg_path.read_text())
    assert (cfg.camera.width, cfg.camera.height, cfg.camera.fps, cfg.camera.bitrate) == (1920, 1080, 25.0, 4_000_000)
    assert "# recorded (main) stream" in cfg_path.read_text()  # the example's comments survive
    assert "dtoverlay=imx219" in (etc / "config.txt.suggested").read_text()
    unit = root / "etc/systemd/system/consentcam.service"
    assert unit.read_bytes() == (REPO / "systemd/consentcam.service").read_bytes()
    wants = root / "etc/systemd/system/multi-user.target.wants/consentcam.service"
    assert os.readlink(wants) == "/etc/systemd/system/consentcam.service"
    assert os.readlink(root / "usr/local/bin/consentcam") == "/opt/consentcam/venv/bin/consentcam"
    venv_cfg = (root / "opt/consentcam/venv/pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in venv_cfg  # picamera2 comes from apt
    assert (root / "opt/consentcam/firmware_configs/index.yaml").exists()


@needs_root
def test_existing_config_is_never_overwritten(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    install(root, *BASE)
    cfg = root / "etc/consentcam/config.yaml"
    cfg.write_text("device:\n  name: my-own\n")
    out = install(root, "--no-apt", "--skip-pip", "--model", "pi5", "--camera", "imx708")
    assert "keeping the existing" in out.stdout
    assert cfg.read_text() == "device:\n  name: my-own\n"


@needs_root
def test_model_is_detected_from_the_device_tree(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    out = install(root, "--no-apt", "--skip-pip", "--camera", "imx296")
    assert "pi5 + imx296 preset" in out.stdout
    cfg = parse_config((root / "etc/consentcam/config.yaml").read_text())
    assert (cfg.camera.width, cfg.camera.height, cfg.camera.fps) == (1456, 1088, 15.0)


@pytest.mark.skipif(Path("/proc/device-tree/model").exists(), reason="this host is a Pi: detection succeeds")
@needs_root
def test_unknown_model_is_a_clear_error(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    proc = install(root, "--no-apt", "--skip-pip", expect=1)
    assert "could not detect the Raspberry Pi model; pass --model" in proc.stderr


@needs_root
def test_broker_ip_drop_in(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    install(root, *BASE, "--broker-ip", "192.0.2.10,2001:db8::5")
    dropin = (root / "etc/systemd/system/consentcam.service.d/50-broker-ip.conf").read_text()
    assert "IPAddressDeny=any" in dropin and "IPAddressAllow=localhost 192.0.2.10 2001:db8::5" in dropin
    if shutil.which("systemd-analyze"):
        # The unit with the drop-in applied (later [Service] sections add to earlier ones) still verifies,
        # and its exposure drops because of the IP allow-list.
        from test_deploy_systemd import UNIT, _exposure, _stub_unit, _verify

        (tmp_path / "a").mkdir()
        plain, _, _ = _exposure(_stub_unit(tmp_path / "a"))
        (tmp_path / "b").mkdir()
        merged = _stub_unit(tmp_path / "b", UNIT.read_text() + "\n" + dropin)
        assert _verify(merged).returncode == 0
        with_ip, verdict, report = _exposure(merged)
        assert with_ip < plain and verdict == "OK", report


@needs_root
def test_uninstall_keeps_footage_and_purge_removes_it(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    install(root, *BASE)
    clip = root / "var/lib/consentcam/vault/clip-0001.age"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"age-encryption.org/v1 ...")
    out = install(root, "--uninstall")
    assert "kept" in out.stdout
    assert clip.exists() and (root / "etc/consentcam/config.yaml").exists()
    for gone in ("opt/consentcam", "etc/systemd/system/consentcam.service", "usr/local/bin/consentcam",
                 "etc/systemd/system/multi-user.target.wants/consentcam.service"):
        assert not os.path.lexists(root / gone), gone
    assert "consentcam" not in (root / "etc/passwd").read_text()
    assert "consentcam" not in (root / "etc/group").read_text()
    # reinstalling picks the kept state up again, owned by the (re)created user
    install(root, *BASE)
    uid, _ = ids(root)
    assert clip.stat().st_uid == uid and clip.read_bytes().startswith(b"age-encryption")
    install(root, "--uninstall", "--purge")
    assert not (root / "var/lib/consentcam").exists() and not (root / "etc/consentcam").exists()


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    before = snapshot(root)
    proc = install(root, "--dry-run", *BASE)
    assert snapshot(root) == before
    assert "+ systemd-sysusers" in proc.stderr and "+ python3 -m venv --system-site-packages" in proc.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--model", "pi9"), "unknown --model 'pi9' (one of: zero2w pi3bplus pi4 pi5)"),
    (("--camera", "imx999"), "unknown --camera 'imx999'"),
    (("--purge",), "--purge only goes with --uninstall"),
    (("--broker-ip", "broker.example.net"), "--broker-ip takes IP addresses"),
    (("--frobnicate",), "unknown option '--frobnicate'"),
    ((), "apt cannot install into --prefix; add --no-apt"),
])
def test_bad_options_fail_with_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    root = fake_root(tmp_path)
    before = snapshot(root)
    proc = install(root, *args, expect=1)
    assert proc.stderr.strip() == f"install.sh: {message}" or message in proc.stderr.strip().splitlines()[-1]
    assert len(proc.stderr.strip().splitlines()) == 1
    assert snapshot(root) == before


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_syntax(script: Path) -> None:
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (apt-get install shellcheck)")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script: Path) -> None:
    proc = subprocess.run(["shellcheck", "--severity=style", str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout


@needs_root
@pytest.mark.parametrize(("codename", "bookworm_path"), [("bookworm", True), ("trixie", False)])
def test_bookworm_keeps_the_system_numpy(tmp_path: Path, codename: str, bookworm_path: bool) -> None:
    """On Bookworm the venv must not shadow numpy 1.24, which apt's picamera2/simplejpeg are built against."""
    root = fake_root(tmp_path)
    (root / "etc/os-release").write_text(f'ID=debian\nVERSION_CODENAME="{codename}"\n')
    proc = install(root, "--dry-run", "--no-apt", "--model", "pi4", "--camera", "imx219")
    pip_lines = [ln for ln in proc.stderr.splitlines() if " -m pip install" in ln]
    assert pip_lines, proc.stderr
    uses_bookworm_set = any("deploy/requirements/bookworm.txt" in ln for ln in pip_lines)
    assert uses_bookworm_set == bookworm_path
    if bookworm_path:
        assert any("--no-deps" in ln for ln in pip_lines)
        pins = (REPO / "deploy/requirements/bookworm.txt").read_text()
        assert "\nnumpy" not in pins, "numpy must come from the system on Bookworm"


def test_bookworm_pins_follow_pyproject() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = dict(dep.split("==") for dep in project)
    lines = (REPO / "deploy/requirements/bookworm.txt").read_text().splitlines()
    bookworm = dict(ln.split("==") for ln in lines if ln and not ln.startswith("#"))
    assert set(bookworm) == set(pinned) - {"numpy"}
    differing = {name for name in bookworm if bookworm[name] != pinned[name]}
    assert differing == {"opencv-python-headless"}, differing
