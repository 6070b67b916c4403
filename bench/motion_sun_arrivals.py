"""Subjects that walk in just as a cloud's edge crosses the sun, and wait: found, and kept whole?

The hardest case for telling light from a subject (docs/dev/MOTION-LOG.md, "Sunshine and cast shadows"): the
cast shadows' edges fade in or out while a person or a cat comes into view, walks to a spot, waits
6-10 s while the camera's exposure settles, and walks on. Each scene (60 s, scenario `sun`, one cloud)
puts the subject in view between 1 s before and 3.5 s after the cloud starts to cover the sun, or to
uncover it. Prints one JSON object: subjects, split (more than one event), missed, seconds of the
subject's time in view outside any event (`lost_s`), subjects with more than 1 s lost, onset, seconds
recorded after it left (`after_s`), false events; `--scenes` adds one line per scene before it.

`--steady` runs the same subjects with no cloud: what the detector loses of them in steady sunshine,
the reference against which the seconds lost to the cloud are judged (a subject whose coat has the
ground's structure can be lost while it stands still in any light).

`--slow` makes the same subjects slow: 0.02-0.05 of the picture's width per second (a cat stalking, a
person dawdling on the phone) instead of 0.08-0.2, in 100 s scenes, so that the sun goes in and comes
back while they cross. A slow subject's edges move a fraction of a pixel per frame: the case a rule
that tells a subject by how it moved can get wrong (docs/dev/MOTION-LOG.md, "A subject arrives by moving").

    .venv/bin/python bench/motion_sun_arrivals.py [--seeds 1-12] [--per-seed 4] [--jobs 2] [--steady] [--slow]

Defaults to tuning seeds 1-12; held-out seeds are for a check decided beforehand (docs/dev/MOTION-LOG.md).
"""

from __future__ import annotations

import json
import statistics
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.motion import latency, visit
from bench.motion_fps import bench_motion, scene_bench_parser, seed_range, use_cast_shadows
from edge.capture.synthetic import Distractor, Subject, SyntheticScene, sun_ramp
from edge.config import RecordingConfig
from edge.recording.analysis import analyse, single_threaded_opencv

SIZE = (320, 240)
SECONDS, SLOW_SECONDS = 60.0, 100.0
EDGE_AT = 20.0  # when the cloud's edge starts to cross the sun
BRISK, SLOW = (0.08, 0.2), (0.02, 0.05)  # subjects' speeds, picture widths per second

Job = tuple[int, int, bool, bool]  # seed, index, steady (no cloud), slow


def plan(job: Job) -> tuple[SyntheticScene, bool, float]:
    """The scene of one job, whether the sun is coming back (else going in), and the subject's arrival
    relative to EDGE_AT. A steady job has the same subject (every draw is made) and no cloud; a slow
    job the same draws, its speed taken from SLOW."""
    seed, index, steady, slow = job
    rng = np.random.default_rng([seed, 991, index])
    scene = SyntheticScene(seed, "sun", SLOW_SECONDS if slow else SECONDS)
    kind = str(rng.choice(["person", "person", "cat"]))
    width = {"person": 0.06, "cat": 0.09}[kind]
    speed = float(rng.uniform(*(SLOW if slow else BRISK)))
    y = float(rng.uniform(0.45, 0.68) if kind == "person" else rng.uniform(0.74, 0.8))
    x0, x1 = -width / 2 - 0.02, 1 + width / 2 + 0.02
    if rng.random() < 0.5:
        x0, x1, speed = x1, x0, -speed
    pause_at = abs(float(rng.uniform(0.2, 0.8)) - x0) / abs(speed)
    pause_for = float(rng.uniform(6.0, 10.0))
    offset = float(rng.uniform(-1.0, 3.5))
    t0 = EDGE_AT + offset - 0.02 / abs(speed)  # half of it in view at EDGE_AT + offset
    returning = bool(rng.random() < 0.5)
    strength = float(rng.uniform(0.6, 1.2))
    if returning:
        # the sun's ramp length follows from the cloud's start: end it so that the ramp starts at EDGE_AT
        start = EDGE_AT - 10.0
        cloud = Distractor("sun", start, EDGE_AT + sun_ramp(start), strength)
    else:
        cloud = Distractor("sun", EDGE_AT, EDGE_AT + float(rng.uniform(12.0, 20.0)), strength)
    scene.replan([Subject(kind, t0, x0, x1, y, speed, pause_at, pause_for)], [] if steady else [cloud])
    return scene, returning, offset


def run_scene(job: Job) -> dict:
    single_threaded_opencv()
    scene, returning, offset = plan(job)
    truth = scene.ground_truth.motion[0]
    frames = ((i / scene.fps, scene.luma(i, *SIZE)) for i in range(scene.frame_count))
    res = analyse(frames, scene.fps, bench_motion(), RecordingConfig())
    during, lost = visit(res.events, truth.start, truth.end)
    return {"seed": job[0], "index": job[1], "kind": truth.kind, "sun_returning": returning,
            "arrives_after_edge_s": round(offset, 2), "events": len(during),
            "lost_s": round(lost, 2),
            "onset_s": round(during[0].onset - truth.start, 2) if during else None,
            "after_s": round(max(0.0, during[-1].end - truth.end), 2) if during else None,
            "false": sum(e.end < truth.start - 1.0 or e.start > truth.end + 1.0 for e in res.events)}


def summary(rows: list[dict]) -> dict:
    found = [r for r in rows if r["events"]]
    onsets = [max(0.0, r["onset_s"]) for r in found]  # an event already open counts as found at once
    return {"subjects": len(rows), "split": sum(r["events"] > 1 for r in rows), "missed": len(rows) - len(found),
            "lost_s": round(sum(r["lost_s"] for r in rows), 1), "lost_over_1s": sum(r["lost_s"] > 1.0 for r in rows),
            "onset_mean_s": latency(onsets)["mean_s"],
            "onset_over_0_5s": sum(v > 0.5 for v in onsets),
            "after_s_mean": round(statistics.fmean(r["after_s"] for r in found), 2) if found else None,
            "after_s_max": max((r["after_s"] for r in found), default=None),
            "false_events": sum(r["false"] for r in rows)}


def main() -> int:
    ap = scene_bench_parser(__doc__, "1-12")
    ap.add_argument("--per-seed", type=int, default=4, help="scenes per seed (default 4)")
    ap.add_argument("--steady", action="store_true", help="the same subjects with no cloud (steady sunshine)")
    ap.add_argument("--slow", action="store_true", help="the same subjects at 0.02-0.05 picture widths per second")
    args = ap.parse_args()
    cast_shadows = use_cast_shadows(args)
    if args.per_seed < 1:
        ap.error("--per-seed must be at least 1")
    jobs = [(seed, k, args.steady, args.slow) for seed in seed_range(args.seeds) for k in range(args.per_seed)]
    with Pool(max(1, args.jobs)) as pool:
        rows = pool.map(run_scene, jobs)
    if args.scenes:
        for row in rows:
            print(json.dumps(row), flush=True)
    print(json.dumps({"seeds": args.seeds, "cast_shadows": cast_shadows, "per_seed": args.per_seed,
                      "steady": args.steady, "slow": args.slow, **summary(rows)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
