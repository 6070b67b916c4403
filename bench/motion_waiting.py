"""A subject that waits without moving while the light changes: one event, and none after it left?

A person at the door stands still for 10-30 s (waiting for it to open), and meanwhile the camera's
exposure steps, a lamp comes on, a cloud passes or the camera switches to infrared. A step in
brightness re-seeds the detector's background (docs/MOTION.md, "How the detector decides", 6), with the
waiting person in it: they vanish until they move again (the clip closes, a second one opens), and
the place where they stood is then an object of its own that holds the event open after they left.

Each scene: a tuning or held-out seed picks a plain day or night scene, a subject (a person, mostly),
where and how long it waits, and one change of light during the wait (or none, for comparison); with
`sun`, a cloud covering the sun on a sunny day (cast shadows fade out and back; always by day).
Prints one JSON object: per kind of change, subjects, how many were one event from arrival to leaving
(`whole`), split into several (`split`) or never found (`missed`), seconds recorded after the subject
left (`after_s`: mean and max), false events (away from any subject) and the onset.

    .venv/bin/python bench/motion_waiting.py [--seeds 1-8] [--jobs 2]

Defaults to tuning seeds 1-8; held-out seeds (651 and up are fresh) are for a check decided
beforehand (docs/dev/MOTION-LOG.md, "A subject waiting through a change of light").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.motion import latency
from bench.motion_fps import add_cast_shadows, bench_motion, seed_range, use_cast_shadows
from edge.capture.synthetic import Distractor, Subject, SyntheticScene
from edge.config import RecordingConfig
from edge.recording.analysis import analyse, single_threaded_opencv

SIZE = (320, 240)
SECONDS = 75.0
CHANGES = ("none", "exposure", "lights_on", "cloud", "ir_switch", "sun")
LENGTH = {"exposure": (2.0, 6.0), "lights_on": (5.0, 20.0), "cloud": (8.0, 20.0), "ir_switch": (10.0, 30.0),
          "sun": (4.0, 20.0)}
PER_SEED = 3  # scenes per seed and kind of change

Job = tuple[int, str, int]  # seed, change, index


def plan(job: Job) -> SyntheticScene:
    """The scene of one job: the same seed and index give the same subject and wait for every change."""
    seed, change, index = job
    rng = np.random.default_rng([seed, 7713, index])
    dark = rng.random() < 0.35
    # "sun": a cloud passing over the sun on a sunny day, cast shadows fading out and back (daylight only)
    scene = SyntheticScene(seed, "sun" if change == "sun" else ("noise" if dark else "quiet"), SECONDS)
    kind = str(rng.choice(["person", "person", "person", "cat", "car"]))
    width = {"person": 0.06, "cat": 0.09, "car": 0.30}[kind]
    speed = float(rng.uniform(0.08, 0.2)) if kind != "car" else float(rng.uniform(0.2, 0.4))
    y = {"person": rng.uniform(0.4, 0.68), "cat": rng.uniform(0.74, 0.8), "car": rng.uniform(0.84, 0.9)}[kind]
    x0, x1 = -width / 2 - 0.02, 1 + width / 2 + 0.02
    if rng.random() < 0.5:
        x0, x1, speed = x1, x0, -speed
    stop_x = float(rng.uniform(0.2, 0.8))
    pause_at = abs(stop_x - x0) / abs(speed)
    pause_for = float(rng.uniform(10.0, 30.0))
    t0 = float(rng.uniform(4.0, 10.0))
    subject = Subject(kind, t0, x0, x1, float(y), speed, pause_at, pause_for)
    start = t0 + pause_at + float(rng.uniform(1.5, max(2.0, pause_for - 3.0)))
    low, high = LENGTH.get(change, (1.0, 1.0))
    length = float(rng.uniform(low, high))
    strength = float(rng.uniform(0.8, 1.2))
    light = [] if change == "none" else [Distractor(change, start, min(start + length, SECONDS), strength)]
    scene.replan([subject], light)
    return scene


def run_scene(job: Job) -> tuple[str, dict]:
    single_threaded_opencv()
    scene = plan(job)
    truth = scene.ground_truth.motion[0]  # from when half of the subject is in view until it no longer is
    arrive, leave = truth.start, truth.end
    frames = ((i / scene.fps, scene.luma(i, *SIZE)) for i in range(scene.frame_count))
    res = analyse(frames, scene.fps, bench_motion(), RecordingConfig())
    during = [e for e in res.events if e.end >= arrive and e.start <= leave]
    false = [e for e in res.events if e.end < arrive - 1.0 or e.start > leave + 1.0]
    out = {"events": len(during), "false": len(false),
           "whole": len(during) == 1 and during[0].end >= leave - 1.0,
           "after_s": max(0.0, during[-1].end - leave) if during else 0.0,
           "onset": during[0].onset - arrive if during else None}
    return job[1], out


def summary(rows: list[dict]) -> dict:
    found = [r for r in rows if r["events"]]
    after = [r["after_s"] for r in found]
    return {"subjects": len(rows), "whole": sum(r["whole"] for r in rows),
            "split": sum(r["events"] > 1 for r in rows), "missed": len(rows) - len(found),
            "after_s_mean": round(statistics.fmean(after), 2) if after else None,
            "after_s_max": round(max(after), 2) if after else None,
            "false_events": sum(r["false"] for r in rows),
            **{f"onset_{k}": v for k, v in latency([r["onset"] for r in found]).items()
               if k in ("mean_s", "p90_s")}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1-8", help="seed range, e.g. 1-8 (default: tuning seeds 1-8)")
    ap.add_argument("--changes", default=",".join(CHANGES), help=f"comma-separated, of: {', '.join(CHANGES)}")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    add_cast_shadows(ap)
    args = ap.parse_args()
    cast_shadows = use_cast_shadows(args)
    changes = args.changes.split(",")
    unknown = sorted(set(changes) - set(CHANGES))
    if unknown:
        ap.error(f"unknown change {', '.join(unknown)}; choose from {', '.join(CHANGES)}")
    jobs: list[Job] = [(seed, change, k) for change in changes for seed in seed_range(args.seeds)
                       for k in range(PER_SEED)]
    rows: dict[str, list[dict]] = {c: [] for c in changes}
    with Pool(max(1, args.jobs)) as pool:
        for change, row in pool.imap_unordered(run_scene, jobs):
            rows[change].append(row)
    print(json.dumps({"seeds": args.seeds, "cast_shadows": cast_shadows,
                      "per_change": {c: summary(rows[c]) for c in changes}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
