"""A fixed, repeatable workload for profiling the motion detector and the `detect` pipeline.

Frames of a synthetic scene are rendered once and cached as .npy, so a run spends its time in
`MotionDetector.process` only (no rendering). Meant for callgrind, whose instruction counts are
repeatable on a shared machine. The frames are fed to the detector from inside functools.reduce,
so callgrind can count that loop alone (`--toggle-collect=functools_reduce`): divided by N it is the
detector's cost per frame, repeatable to about 0.01 %. (The older way, a run with `--count 0`
subtracted from one with `--count N`, carries the start-up's run-to-run spread of about 30 M
instructions: 0.1 M per frame over 300 frames.)

    .venv/bin/python bench/motion_cost.py frames --scenario mixed --seed 101 --count 600
    valgrind --tool=callgrind --toggle-collect=functools_reduce --callgrind-out-file=/tmp/cg.out \\
        .venv/bin/python bench/motion_cost.py frames --seed 1 --count 300 --frames 300 [--fps 30]
    .venv/bin/python bench/motion_cost.py video /tmp/mixed-101.mkv --seconds 60   # H.264 file for `detect`

`frames` prints one JSON object (CPU ms per frame over `--repeats` passes: min / median / max).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.motion import parse_size
from edge.capture.synthetic import SyntheticScene, write_video
from edge.config import MotionConfig
from edge.motion.detector import MotionDetector
from edge.recording.analysis import single_threaded_opencv

CACHE = Path("/tmp/consentcam-bench-frames")


def frames_file(scenario: str, seed: int, size: tuple[int, int], frames: int, fps: float = 15.0,
                cache: Path = CACHE) -> Path:
    """Where cached_frames keeps the scene's lumas."""
    return cache / f"{scenario}-{seed}-{size[0]}x{size[1]}-{frames}-{fps:g}.npy"


def cached_frames(scenario: str, seed: int, size: tuple[int, int], frames: int, fps: float = 15.0,
                  cache: Path = CACHE) -> np.ndarray:
    """(frames, h, w) uint8 lumas of the scene, rendered once and then loaded from the cache."""
    path = frames_file(scenario, seed, size, frames, fps, cache)
    if path.exists():
        return np.load(path)
    scene = SyntheticScene(seed, scenario, frames / fps + 1, fps)
    stack = np.stack([scene.luma(i, *size) for i in range(frames)])
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, stack)
    tmp.replace(path)
    return stack


def run_frames(args: argparse.Namespace) -> dict:
    lumas = cached_frames(args.scenario, args.seed, parse_size(args.size), args.frames, args.fps)
    count = min(args.count, len(lumas))
    per_pass = []
    for _ in range(max(1, args.repeats)):
        det = MotionDetector(MotionConfig(), args.fps)
        c0 = time.process_time()
        functools.reduce(lambda _, luma: det.process(luma), lumas[:count], None)  # see the docstring
        per_pass.append((time.process_time() - c0) / max(count, 1) * 1000)
    import cv2

    return {"workload": "MotionDetector.process", "opencv_threads": cv2.getNumThreads(), "scenario": args.scenario,
            "seed": args.seed, "size": args.size, "fps": args.fps, "frames": count, "repeats": len(per_pass),
            "cpu_ms_per_frame": {"min": round(min(per_pass), 4), "median": round(statistics.median(per_pass), 4),
                                 "max": round(max(per_pass), 4)}}


def run_video(args: argparse.Namespace) -> dict:
    scene = SyntheticScene(args.seed, args.scenario, args.seconds, fps=15)
    out = write_video(scene, Path(args.out), size=parse_size(args.size))
    return {"video": str(out), "frames": scene.frame_count}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    f = sub.add_parser("frames", help="time MotionDetector.process over cached synthetic frames")
    f.add_argument("--count", type=int, default=600, help="frames to process (0: start-up only, for callgrind)")
    f.add_argument("--repeats", type=int, default=1, help="passes, each with a fresh detector")
    v = sub.add_parser("video", help="write an H.264 file of a synthetic scene (like bench/motion_daemon.py)")
    v.add_argument("out")
    v.add_argument("--seconds", type=float, default=60.0)
    for p in (f, v):
        p.add_argument("--scenario", default="mixed")
        p.add_argument("--seed", type=int, default=101)
        p.add_argument("--size", default="320x240")
    f.add_argument("--frames", type=int, default=600, help="frames rendered into the cache")
    f.add_argument("--fps", type=float, default=15.0, help="scene rendered and detector run at this rate")
    f.add_argument("--opencv-threads", action="store_true",
                   help="keep OpenCV's default thread pool (default: one thread, as `consentcam detect`)")
    args = ap.parse_args()
    if not getattr(args, "opencv_threads", False):
        single_threaded_opencv()
    out = run_frames(args) if args.mode == "frames" else run_video(args)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
