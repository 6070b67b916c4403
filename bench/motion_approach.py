"""People who walk straight at the camera: how soon are they confirmed?

A doorbell camera sees most visitors coming head-on: they do not cross the picture, they grow in it.
The other synthetic scenes move subjects sideways at a fixed size, so they never measure this. Here a
person comes into view far away (out of a gate, 3 % of the picture wide and 13 % high, feet at 72 %
of its height), walks straight at the camera for 3-12 s until they fill the lower middle (13 % wide,
55 % high), waits at the door for 4-10 s and walks back. The light does not change; the scene is a
plain day (`quiet`), a clear night (`night`, its distractors removed), a noisy night (`noise`) or
sunshine with cast shadows (`sun`).

Prints one JSON object: per scene kind and in all, subjects, missed, split, and the onset twice:
from the moment the person comes into view, and from the moment they first cover `motion.min_area`
of the picture (a person far enough away is below it and, by design, not an object yet).
`--scenes` adds one line per scene before it.

    .venv/bin/python bench/motion_approach.py [--seeds 1-12] [--jobs 2]
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.motion import latency
from bench.motion_fps import scene_bench_parser, seed_range
from edge.capture.synthetic import SyntheticScene, draw_person
from edge.config import MotionConfig, RecordingConfig
from edge.recording.analysis import analyse, single_threaded_opencv

SIZE = (320, 240)
SECONDS = 45.0
APPEARS = 8.0  # when the person comes into view
KINDS = ("quiet", "night", "noise", "sun")
FAR, NEAR = (0.72, 0.03, 0.13), (0.98, 0.13, 0.55)  # feet y, width, height (fractions of the picture)

Job = tuple[int, str]  # seed, scene kind


@dataclass(frozen=True)
class Approach:
    """A person walking straight at the camera: from FAR to NEAR in `walk` s, a wait, and back."""

    x: float  # centre, fraction of the picture's width
    walk: float
    wait: float

    def at(self, t: float) -> tuple[float, float, float] | None:
        """Feet y, width and height at time t (None: not in the scene)."""
        d = t - APPEARS
        if d < 0 or d > 2 * self.walk + self.wait:
            return None
        f = min(d, self.walk, 2 * self.walk + self.wait - d) / self.walk
        return tuple(a + f * (b - a) for a, b in zip(FAR, NEAR, strict=True))  # type: ignore[return-value]

    def leaves(self) -> float:
        return APPEARS + 2 * self.walk + self.wait


class ApproachScene(SyntheticScene):
    """A synthetic scene whose only subject is an Approach (the generator's own subjects cross sideways
    at a fixed size), drawn where the scene draws its subjects: before the light is applied."""

    def __init__(self, seed: int, kind: str, person: Approach) -> None:
        super().__init__(seed, kind, SECONDS)
        self.replan([], [])  # the scene's own subjects and distractors (night: lamps, headlights) removed
        self.person = person
        self.subjects = [person]  # type: ignore[list-item]  # drawn by _draw_subject below

    def _draw_subject(self, img: np.ndarray, s: object, t: float, w: int, h: int, channels: int) -> None:
        pose = self.person.at(t)
        if pose is None:
            return
        feet, pw, ph = pose
        draw_person(img, self.person.x * w, (feet - ph / 2) * h, pw * w, ph * h, channels)


def plan(job: Job) -> ApproachScene:
    seed, kind = job
    rng = np.random.default_rng([seed, 5151, KINDS.index(kind)])
    walk, wait, x = float(rng.uniform(3, 12)), float(rng.uniform(4, 10)), float(rng.uniform(0.25, 0.6))
    return ApproachScene(seed, kind, Approach(x, walk, wait))


def run_scene(job: Job) -> dict:
    single_threaded_opencv()
    scene = plan(job)
    person = scene.person
    config = MotionConfig()
    # first frame at which the person covers min_area of the picture
    times = np.arange(APPEARS, person.leaves(), 1.0 / scene.fps)
    big = next(float(t) for t in times if (pose := person.at(float(t))) and pose[1] * pose[2] >= config.min_area)
    frames = ((i / scene.fps, scene.luma(i, *SIZE)) for i in range(scene.frame_count))
    events = analyse(frames, scene.fps, config, RecordingConfig()).events
    during = [e for e in events if e.end >= APPEARS and e.start <= person.leaves()]
    onset = during[0].onset if during else None
    return {"seed": job[0], "kind": job[1], "walk_s": round(person.walk, 2), "events": len(during),
            "onset_s": None if onset is None else round(onset - APPEARS, 2),
            "onset_after_min_area_s": None if onset is None else round(onset - big, 2),
            "false": len(events) - len(during)}


def summary(rows: list[dict]) -> dict:
    found = [r for r in rows if r["events"]]
    return {"subjects": len(rows), "missed": len(rows) - len(found), "split": sum(r["events"] > 1 for r in rows),
            "false_events": sum(r["false"] for r in rows),
            "onset": latency([max(0.0, r["onset_s"]) for r in found]),
            "onset_after_min_area": latency([max(0.0, r["onset_after_min_area_s"]) for r in found])}


def main() -> int:
    args = scene_bench_parser(__doc__, "1-12").parse_args()
    jobs = [(seed, kind) for seed in seed_range(args.seeds) for kind in KINDS]
    with Pool(max(1, args.jobs)) as pool:
        rows = pool.map(run_scene, jobs)
    if args.scenes:
        for row in rows:
            print(json.dumps(row), flush=True)
    per_kind = {kind: summary([r for r in rows if r["kind"] == kind]) for kind in KINDS}
    print(json.dumps({"seeds": args.seeds, "all": summary(rows), "per_kind": per_kind}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
