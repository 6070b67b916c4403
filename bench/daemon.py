"""Steady-state CPU and peak RSS of `consentcam run` on the synthetic camera, and whether its memory grows.

Starts a throwaway device (init with a generated passphrase) and runs the real daemon as a
subprocess at 640x480 detection and 10 fps (real-time pacing) for --seconds (default 60), MQTT
off. Samples the process with psutil once a second; the first --warmup seconds are excluded from
the CPU figure (imports, encoder start-up). The synthetic scene has an event every half minute or
so, so a long run (a soak: --seconds 1200 or more) opens and closes many clips; the RSS trend after
the warm-up (a least-squares slope, over the whole window and over its second half, in MB per hour)
shows whether memory creeps up. RSS counts the library code the process has touched (OpenCV,
FFmpeg, numpy, OpenSSL: about 40 MB, which other processes using the same libraries share); USS,
what only this process holds (those pages included when nothing else maps them), is reported next
to it. Prints one JSON object to stdout.

    .venv/bin/python bench/daemon.py [--seconds 60] [--warmup 10]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

CONFIG = """camera:
  source: synthetic
  width: {w}
  height: {h}
  fps: {fps}
  detect_width: {dw}
  detect_height: {dh}
clock:
  mode: synchronized
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--width", type=int, default=640, help="main (recorded) stream width")
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--detect-width", type=int, default=640)
    ap.add_argument("--detect-height", type=int, default=480)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="consentcam-bench-"))
    try:
        return run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    state, config, pw = work / "state", work / "config.yaml", work / "passphrase"
    pw.write_text(secrets.token_urlsafe(16) + "\n")
    config.write_text(CONFIG.format(w=args.width, h=args.height, fps=args.fps, dw=args.detect_width,
                                    dh=args.detect_height))
    base = [sys.executable, "-m", "edge.cli.main", "--state-dir", str(state), "--config", str(config)]
    subprocess.run([*base, "init", "--passphrase-file", str(pw)], check=True, capture_output=True, timeout=60)
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    with open(work / "daemon.log", "wb") as log:
        proc = subprocess.Popen([*base, "run"], stdout=log, stderr=subprocess.STDOUT, env=env)
    ps = psutil.Process(proc.pid)
    started = time.monotonic()
    peak_rss = peak_uss = 0
    uss = 0
    cpu_at_warm: float | None = None
    t_warm = 0.0
    rss_samples = []
    try:
        while time.monotonic() - started < args.seconds:
            if proc.poll() is not None:
                raise SystemExit(f"daemon exited early ({proc.returncode}): {(work / 'daemon.log').read_text()[-800:]}")
            full = ps.memory_full_info()  # reads smaps: slower than memory_info(), once a second is fine
            mem, uss = full.rss, full.uss
            peak_rss, peak_uss = max(peak_rss, mem), max(peak_uss, uss)
            elapsed = time.monotonic() - started
            rss_samples.append((elapsed, mem))
            if cpu_at_warm is None and elapsed >= min(args.warmup, args.seconds / 3):
                t = ps.cpu_times()
                cpu_at_warm, t_warm = t.user + t.system, time.monotonic()
            time.sleep(1.0)
        t = ps.cpu_times()
        cpu_end, t_end = t.user + t.system, time.monotonic()
        status = _status(state)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    steady = (cpu_end - (cpu_at_warm or 0.0)) / max(t_end - t_warm, 1e-6)
    warm = [(t, m) for t, m in rss_samples if t >= min(args.warmup, args.seconds / 3)]
    result = {
        "benchmark": "daemon",
        "camera": "synthetic",
        "main_size": [args.width, args.height],
        "detect_size": [args.detect_width, args.detect_height],
        "fps_target": args.fps,
        "seconds": args.seconds,
        "warmup_seconds": min(args.warmup, args.seconds / 3),
        "cpu_percent_of_one_core": round(100 * steady, 1),
        "cpu_percent_of_machine": round(100 * steady / (psutil.cpu_count() or 1), 1),
        "cores": psutil.cpu_count(),
        "peak_rss_mb": round(peak_rss / 2**20, 1),
        "final_rss_mb": round(rss_samples[-1][1] / 2**20, 1) if rss_samples else None,
        "peak_uss_mb": round(peak_uss / 2**20, 1),
        "final_uss_mb": round(uss / 2**20, 1) if rss_samples else None,
        "rss_after_warmup_mb": round(warm[0][1] / 2**20, 1) if warm else None,
        "rss_slope_mb_per_hour": _slope_mb_per_hour(warm),
        "rss_slope_second_half_mb_per_hour": _slope_mb_per_hour(warm[len(warm) // 2:]),
        "rss_target_mb": 150,
        "rss_ok": peak_rss < 150 * 2**20,
        "frames_processed": status.get("frames_processed"),
        "fps_measured": status.get("fps"),
        "clips_recorded": status.get("clips_recorded"),
        "exit_code": proc.returncode,
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _slope_mb_per_hour(samples: list[tuple[float, int]]) -> float | None:
    """Least-squares slope of RSS over time (None with too few samples to say)."""
    if len(samples) < 10:
        return None
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mm = sum(m for _, m in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    cov = sum((t - mt) * (m - mm) for t, m in samples)
    return round(cov / var * 3600 / 2**20, 2) if var > 0 else None


def _status(state: Path) -> dict:
    try:
        return json.loads((state / "run" / "status.json").read_text())
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    sys.exit(main())
