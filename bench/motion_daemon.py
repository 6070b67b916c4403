"""Side by side with the Motion daemon (Debian package `motion`, if installed) on the same files.

For each held-out synthetic scene: write it to a video file, let `motion` read it (netcam_url
file://..., which it plays in real time) with event hooks that log start/end, and run our
detector over the same file. Prints JSON: events per detector scored against the ground truth,
and CPU seconds per frame INCLUDING video decoding for both (Motion cannot be timed without its
decoder). Motion's event times come from the wall clock (accurate to a few tenths of a second).

    .venv/bin/python bench/motion_daemon.py [--seeds 1] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.capture.opencv_source import OpenCVCamera
from edge.capture.synthetic import SyntheticScene, write_video
from edge.config import MotionConfig, RecordingConfig
from edge.motion.scoring import Score, score_events
from edge.recording.analysis import DetectedEvent, analyse

SCENARIOS = ("mixed", "night", "lighting", "distractors")
EVENT_GAP = 4  # Motion's event_gap, like our merge_gap

MOTION_CONF = """daemon off
setup_mode off
log_level 5
log_file {dir}/motion.log
target_dir {dir}/out
netcam_url file://{video}
width 320
height 240
framerate 15
threshold 1500
noise_tune on
lightswitch_percent 0
minimum_motion_frames 5
event_gap {gap}
picture_output off
movie_output off
webcontrol_port 0
stream_port 0
on_event_start /bin/sh -c 'echo start $(date +%%s.%%N) >> {dir}/events.txt'
on_event_end /bin/sh -c 'echo end $(date +%%s.%%N) >> {dir}/events.txt'
"""


def run_motion(video: Path, seconds: float, work: Path) -> tuple[list[DetectedEvent], float]:
    (work / "out").mkdir(parents=True, exist_ok=True)
    conf = work / "motion.conf"
    conf.write_text(MOTION_CONF.format(dir=work, video=video, gap=EVENT_GAP))
    t0 = time.time()
    proc = subprocess.Popen(["motion", "-n", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ps = psutil.Process(proc.pid)
    cpu = 0.0
    try:
        deadline = time.monotonic() + seconds + 1.0
        while time.monotonic() < deadline and proc.poll() is None:
            c = ps.cpu_times()
            cpu = c.user + c.system
            time.sleep(0.5)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    events: list[DetectedEvent] = []
    start = None
    log = work / "events.txt"
    for line in (log.read_text().splitlines() if log.exists() else []):
        kind, stamp = line.split()[:2]
        t = float(stamp) - t0
        if kind == "start":
            start = t
        elif start is not None:
            events.append(DetectedEvent(start, max(start, t - EVENT_GAP), 0.0, start))
            start = None
    if start is not None:
        events.append(DetectedEvent(start, seconds, 0.0, start))
    return events, cpu


def run_ours(video: Path) -> tuple[list[DetectedEvent], float, int]:
    c0 = time.process_time()
    cam = OpenCVCamera(str(video), main_size=(320, 240), detect_size=(320, 240), fps=15, encode=False,
                       time_origin=0.0)
    res = analyse(((f.time, f.luma) for f in cam.frames()), cam.fps, MotionConfig(), RecordingConfig())
    cam.close()
    return res.events, time.process_time() - c0, res.frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    if shutil.which("motion") is None:
        json.dump({"benchmark": "motion_daemon", "skipped": "the motion package is not installed"}, sys.stdout)
        print()
        return 0
    version = subprocess.run(["motion", "-h"], capture_output=True, text=True).stdout.splitlines()[0]
    totals = {"consentcam": Score(), "motion": Score()}
    rows = []
    cpu = {"consentcam": 0.0, "motion": 0.0}
    frames_total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(101, 101 + args.seeds):
            for scenario in SCENARIOS:
                scene = SyntheticScene(seed, scenario, args.seconds)
                video = write_video(scene, Path(tmp) / f"{scenario}-{seed}.mkv", size=(320, 240))
                ours, our_cpu, frames = run_ours(video)
                theirs, their_cpu = run_motion(video, args.seconds, Path(tmp) / f"motion-{scenario}-{seed}")
                frames_total += frames
                cpu["consentcam"] += our_cpu
                cpu["motion"] += their_cpu
                row = {"scenario": scenario, "seed": seed, "truth": len(scene.ground_truth.motion)}
                for name, evs in (("consentcam", ours), ("motion", theirs)):
                    s = score_events(evs, scene.ground_truth.motion, tolerance=1.5)
                    totals[name].add(s)
                    row[name] = {"detected": s.detected, "matched": s.matched_truth, "false": s.false_events}
                rows.append(row)
    out = {
        "benchmark": "motion_daemon",
        "motion_version": version,
        "seeds": list(range(101, 101 + args.seeds)),
        "seconds_per_scene": args.seconds,
        "motion_settings": "threshold 1500 px (default), noise_tune on, minimum_motion_frames 5, event_gap 4, "
                           "lightswitch_percent 0 (default)",
        "scenes": rows,
        "summary": {name: {"precision": round(s.precision, 3), "recall": round(s.recall, 3), "f1": round(s.f1, 3),
                           "false_events": s.false_events,
                           "cpu_ms_per_frame_incl_decode": round(cpu[name] / max(frames_total, 1) * 1000, 3)}
                    for name, s in totals.items()},
    }
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
