"""The motion detector's event accuracy with the synthetic scenes rendered at other frame rates.

The detector was tuned at 15 fps; real cameras often run at 25 or 30 (docs/dev/MOTION-LOG.md, "Frame rate").
Prints one JSON object per rate on stdout: precision / recall / F1 over the scenes with subjects,
false events per scenario, onset and start latency (as bench/motion.py, which runs at 15 fps only).
`--stride N` analyses every N-th frame (the detector is told the reduced rate).

Defaults to TUNING seeds (1-8). Held-out seeds (101 and up) are for a check decided beforehand,
run once: docs/dev/MOTION-LOG.md says which sets have been looked at, at which rates.

    .venv/bin/python bench/motion_fps.py --fps 15,30 --seeds 1-8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.motion import NO_MOTION, REAL, latency
from edge.capture.synthetic import SyntheticScene
from edge.config import MotionConfig, RecordingConfig
from edge.motion.scoring import Score, score_events
from edge.recording.analysis import analyse, single_threaded_opencv

SIZE = (320, 240)

Job = tuple[float, str, int, float, int]  # fps, scenario, seed, seconds, stride


# --cast-shadows reaches the worker processes through the environment
CAST_SHADOWS_ENV = "CONSENTCAM_BENCH_CAST_SHADOWS"


def bench_motion() -> MotionConfig:
    """The detector settings the benches run with: the defaults, plus motion.cast_shadows when the bench
    was started with --cast-shadows."""
    return MotionConfig(cast_shadows=os.environ.get(CAST_SHADOWS_ENV) == "1")


def add_cast_shadows(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--cast-shadows", action="store_true",
                    help="run the detector with motion.cast_shadows (docs/MOTION.md, Settings)")


def use_cast_shadows(args: argparse.Namespace) -> bool:
    """Pass --cast-shadows on to bench_motion() in this process and in the workers it starts."""
    if args.cast_shadows:
        os.environ[CAST_SHADOWS_ENV] = "1"
    return bool(args.cast_shadows)


def run_scene(job: Job) -> tuple[float, str, Score]:
    fps, scenario, seed, seconds, stride = job
    single_threaded_opencv()
    scene = SyntheticScene(seed, scenario, seconds, fps)
    frames = ((i / scene.fps, scene.luma(i, *SIZE)) for i in range(0, scene.frame_count, stride))
    res = analyse(frames, scene.fps / stride, bench_motion(), RecordingConfig())
    return fps, scenario, score_events(res.events, scene.ground_truth.motion)


def summary(fps: float, stride: int, per: dict[str, Score]) -> dict:
    total = Score()
    for scenario in REAL:
        total.add(per[scenario])
    onset, start, night = latency(total.onsets), latency(total.starts), latency(per["night"].onsets)
    out: dict = {"fps": fps, "stride": stride, "precision": round(total.precision, 4),
                 "recall": round(total.recall, 4), "f1": round(total.f1, 4),
                 "false_events": {s: per[s].false_events for s in REAL + NO_MOTION}}
    if total.onsets:
        out.update({f"onset_{k}": onset[k] for k in ("mean_s", "p90_s", "within_0_5s")})
        out.update({f"start_{k}": start[k] for k in ("mean_s", "p90_s", "within_0_5s")})
    if per["night"].onsets:
        out.update(night_onset_mean_s=night["mean_s"], night_onset_p90_s=night["p90_s"])
    return out


def seed_range(text: str) -> range:
    """'1-8' -> range(1, 9); '5' -> range(5, 6)."""
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def scene_bench_parser(doc: str | None, seeds: str,
                       scenes_help: str = "also print one line per scene") -> argparse.ArgumentParser:
    """The options the per-scene motion benches share (--seeds, --scenes, --jobs); each adds its own."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default=seeds, help=f"seed range, e.g. {seeds} (default: tuning seeds {seeds})")
    ap.add_argument("--scenes", action="store_true", help=scenes_help)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    add_cast_shadows(ap)
    return ap


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fps", default="15,25,30", help="comma-separated rates (default 15,25,30)")
    ap.add_argument("--seeds", default="1-8", help="seed range, e.g. 1-8 (default: tuning seeds 1-8)")
    ap.add_argument("--seconds", type=float, default=120.0, help="length of each scene (default 120)")
    ap.add_argument("--stride", type=int, default=1, help="analyse every N-th frame (default 1)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    add_cast_shadows(ap)
    args = ap.parse_args()
    cast_shadows = use_cast_shadows(args)
    rates = [float(x) for x in args.fps.split(",")]
    jobs: list[Job] = [(fps, scenario, seed, args.seconds, max(1, args.stride))
                       for fps in rates for scenario in REAL + NO_MOTION for seed in seed_range(args.seeds)]
    scores: dict[float, dict[str, Score]] = {fps: {s: Score() for s in REAL + NO_MOTION} for fps in rates}
    with Pool(max(1, args.jobs)) as pool:
        for fps, scenario, score in pool.imap_unordered(run_scene, jobs):
            scores[fps][scenario].add(score)
    for fps in rates:
        print(json.dumps({**summary(fps, max(1, args.stride), scores[fps]), "cast_shadows": cast_shadows}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
