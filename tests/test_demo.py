"""`consentcam demo` end to end as a subprocess (real broker, real daemon, real investigator),
and Ctrl-C at an awkward moment leaving nothing running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import psutil
import pytest

from tests.conftest import REPO, run_cli

DEMO_LIMIT = 120.0


def _demo_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from edge.cli.main import main; sys.exit(main())", "demo", *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CONSENTCAM_CONFIG", "CONSENTCAM_STATE_DIR")}
    env["COLUMNS"] = "120"
    return env


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return out


def _mentions(path: str) -> list[str]:
    hits = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(path in part for part in (p.info["cmdline"] or [])):
                hits.append(f"{p.info['pid']} {' '.join(p.info['cmdline'])[:120]}")
        except psutil.NoSuchProcess:
            continue
    return hits


def test_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    started = time.monotonic()
    proc = subprocess.run(_demo_cmd("--out", str(out), "--json"), capture_output=True, text=True,
                          timeout=DEMO_LIMIT, env=_env(), cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["verified"] is True and summary["out"] == str(out)
    assert elapsed < DEMO_LIMIT

    # Decrypted clips that decode, exactly those the manifest lists.
    clips = sorted(out.glob("clips/*.ts"))
    assert len(clips) >= 3
    assert sorted(p.name for p in clips) == summary["clips_received"]
    for clip in clips:
        with av.open(str(clip)) as container:
            assert sum(1 for _ in container.decode(video=0)) > 5
    # The verification report says verified, for this request and these clips.
    report = json.loads((out / "verification-report.json").read_text())
    assert report["ok"] is True and report["request_id"] == summary["request_id"]
    assert sorted(Path(c["file"]).name for c in report["clips"]) == [p.name for p in clips]
    # A contact sheet with real pictures in it (not a blank image).
    sheet = cv2.imread(str(out / "contact-sheet.png"))
    assert sheet is not None and sheet.shape[0] >= 240 * 3 and sheet.shape[2] == 3
    assert float(sheet.std()) > 10.0
    # The owner's view was shown, and nothing is left running or left behind.
    assert "consentcam requests show" in proc.stderr
    assert _mentions(summary["work_dir"]) == []
    assert not Path(summary["work_dir"]).exists()


def test_demo_refuses_a_non_empty_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "something").write_text("keep me")
    res = run_cli("demo", "--out", str(out))
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"consentcam: {out}: output folder exists and is not empty; choose another with --out"]
    assert (out / "something").read_text() == "keep me"


@pytest.mark.parametrize("moment", ["broker-up", "daemon-up"])
def test_demo_ctrl_c_leaves_nothing_running(tmp_path: Path, moment: str) -> None:
    proc = subprocess.Popen(_demo_cmd("--out", str(tmp_path / "o")), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env(), cwd=REPO)
    seen: dict[int, psutil.Process] = {}
    try:
        # Wait until the broker and the daemon are both up, then interrupt.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for child in _descendants(proc.pid):
                seen[child.pid] = child
            cmdlines = []
            for child in seen.values():
                try:
                    cmdlines.append(" ".join(child.cmdline()))
                except psutil.NoSuchProcess:
                    continue
            broker_up = any("mosquitto" in c for c in cmdlines)
            daemon_up = any(" run " in f"{c} " for c in cmdlines)
            if broker_up and (moment == "broker-up" or daemon_up):
                break
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            time.sleep(0.2)
        else:
            raise AssertionError("the demo never started its broker and daemon")
        if moment == "daemon-up":
            time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert rc == 130, err[-2000:]
    assert "interrupted" in err
    assert _alive(list(seen.values())) == [], "children survived Ctrl-C"
