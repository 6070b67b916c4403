"""The systemd unit, sysusers and tmpfiles snippets, checked by systemd's own tools."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "consentcam.service"
SYSUSERS = REPO / "systemd" / "consentcam.sysusers"
TMPFILES = REPO / "systemd" / "consentcam.tmpfiles"
MAX_EXPOSURE = 2.5
ANALYZE = shutil.which("systemd-analyze")

pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def _unit_settings(text: str) -> dict[str, list[str]]:
    """Key -> list of values (a key may repeat, e.g. DeviceAllow=)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def _stub_unit(tmp_path: Path, text: str | None = None) -> Path:
    """A copy whose ExecStart points at a binary that exists here; verify insists on it."""
    text = text if text is not None else UNIT.read_text()
    rewritten = re.sub(r"^ExecStart=/opt/consentcam/venv/bin/consentcam", "ExecStart=/bin/true", text, flags=re.M)
    assert rewritten != text, "ExecStart line not found in the unit"
    path = tmp_path / "consentcam.service"
    path.write_text(rewritten)
    return path


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60,
                          cwd=unit.parent)


def _exposure(unit: Path) -> tuple[float, str, str]:
    proc = subprocess.run([ANALYZE, "security", "--offline=true", str(unit)], capture_output=True, text=True,
                          timeout=60, cwd=unit.parent)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", proc.stdout + proc.stderr)
    assert match, f"no exposure line in: {proc.stdout[-500:]} {proc.stderr[-500:]}"
    return float(match.group(1)), match.group(2), proc.stdout


def test_unit_verifies_cleanly(tmp_path: Path) -> None:
    proc = _verify(_stub_unit(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    # Proves the check above can fail: a typo in a directive is reported.
    broken = UNIT.read_text().replace("ProtectSystem=strict", "ProtectSystem=strictest")
    proc = _verify(_stub_unit(tmp_path, broken))
    assert "strictest" in proc.stderr


def test_security_exposure_is_low(tmp_path: Path) -> None:
    score, verdict, report = _exposure(_stub_unit(tmp_path))
    assert score <= MAX_EXPOSURE, report
    assert verdict == "OK", report


def test_exposure_check_can_fail(tmp_path: Path) -> None:
    # A unit with the hardening block removed must score far worse, so the threshold above means something.
    text = UNIT.read_text().split("# --- Hardening")[0] + "\n[Install]\nWantedBy=multi-user.target\n"
    score, _, _ = _exposure(_stub_unit(tmp_path, text))
    assert score > MAX_EXPOSURE + 2


def test_unit_has_the_required_settings() -> None:
    s = _unit_settings(UNIT.read_text())
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["ExecStart"] == [
        "/opt/consentcam/venv/bin/consentcam --config /etc/consentcam/config.yaml --state-dir /var/lib/consentcam run"
    ]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["Restart"] == ["on-failure"]
    assert s["User"] == ["consentcam"] and s["Group"] == ["consentcam"]
    assert set(s["SupplementaryGroups"][0].split()) == {"video", "render"}
    assert s["StateDirectory"] == ["consentcam"] and s["StateDirectoryMode"] == ["0700"]
    assert s["UMask"] == ["0077"]
    assert s["DevicePolicy"] == ["closed"]
    assert set(s["DeviceAllow"]) == {"char-video4linux rw", "char-media rw", "char-dma_heap rw"}
    # PrivateDevices would hide the camera; AF_NETLINK and capabilities are not needed.
    assert "PrivateDevices" not in s
    assert s["CapabilityBoundingSet"] == [""]
    assert "AF_NETLINK" not in s["RestrictAddressFamilies"][0]
    assert s["SystemCallFilter"] == ["@system-service", "~@privileged @resources", "adjtimex clock_adjtime"]
    assert "CAP_SYS_TIME" not in s["CapabilityBoundingSet"][0]  # reading the NTP state only
    for key in ("WatchdogSec", "MemoryMax", "TimeoutStopSec"):
        assert s.get(key), f"{key} missing"


def test_sysusers_and_tmpfiles_in_a_fake_root(tmp_path: Path) -> None:
    sysusers, tmpfiles = shutil.which("systemd-sysusers"), shutil.which("systemd-tmpfiles")
    if not sysusers or not tmpfiles:
        pytest.skip("systemd-sysusers/systemd-tmpfiles not installed")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nvideo:x:44:\nrender:x:105:\n")
    for _ in range(2):  # idempotent
        subprocess.run([sysusers, f"--root={root}", str(SYSUSERS)], check=True, capture_output=True, timeout=30)
    passwd = (root / "etc/passwd").read_text()
    group = (root / "etc/group").read_text()
    assert passwd.count("\nconsentcam:") == 1 and ":/usr/sbin/nologin" in passwd
    assert re.search(r"^video:x:44:consentcam$", group, re.M)
    assert re.search(r"^render:x:105:consentcam$", group, re.M)
    subprocess.run([tmpfiles, f"--root={root}", "--create", str(TMPFILES)], check=True, capture_output=True,
                   timeout=30)
    etc = root / "etc/consentcam"
    gid = int(re.search(r"^consentcam:x:(\d+):", group, re.M).group(1))  # type: ignore[union-attr]
    assert etc.stat().st_mode & 0o777 == 0o750 and etc.stat().st_gid == gid
    assert (etc / "tls").stat().st_mode & 0o777 == 0o750


PR_SET_MDWE = 65


def _mdwe_supported() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(67, 0, 0, 0, 0) >= 0  # PR_GET_MDWE


@pytest.mark.skipif(not _mdwe_supported(), reason="kernel without PR_SET_MDWE (Linux < 6.3)")
def test_media_and_crypto_stack_needs_no_writable_executable_memory(tmp_path: Path) -> None:
    """MemoryDenyWriteExecute=yes is safe: run the heavy libraries under the kernel's W^X lock (PR_SET_MDWE)."""
    script = textwrap.dedent(f"""
        import ctypes, io, sys
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.prctl({PR_SET_MDWE}, 1, 0, 0, 0) == 0, ctypes.get_errno()
        # Prove the lock is on: an anonymous W+X mapping must now fail.
        import mmap
        try:
            mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            sys.exit("W+X mapping was allowed: the lock is not active")
        except OSError:
            pass
        import numpy as np, cv2, av, pyrage, yaml, paho.mqtt.client
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        frames = [np.full((120, 160, 3), i * 20, np.uint8) for i in range(10)]
        gray = cv2.GaussianBlur(cv2.cvtColor(frames[3], cv2.COLOR_BGR2GRAY), (5, 5), 0)
        assert cv2.absdiff(gray, gray).sum() == 0
        buf = io.BytesIO()
        with av.open(buf, "w", format="mpegts") as out:
            st = out.add_stream("libx264", rate=10)
            st.width, st.height, st.pix_fmt = 160, 120, "yuv420p"
            for f in frames:
                for p in st.encode(av.VideoFrame.from_ndarray(f, format="bgr24")):
                    out.mux(p)
            for p in st.encode():
                out.mux(p)
        ident = pyrage.x25519.Identity.generate()
        blob = pyrage.encrypt(buf.getvalue(), [ident.to_public()])
        assert pyrage.decrypt(blob, [ident]) == buf.getvalue()
        from edge.vault import age_encrypt  # the vault's writer: OpenSSL's ChaCha20-Poly1305
        blob = bytes(age_encrypt.encrypt(buf.getvalue(), age_encrypt.recipient_key(str(ident.to_public()))))
        assert pyrage.decrypt(blob, [ident]) == buf.getvalue()
        key = Ed25519PrivateKey.generate()
        key.public_key().verify(key.sign(b"x"), b"x")
        print("ok", len(buf.getvalue()))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok ") and int(proc.stdout.split()[1]) > 0
