"""People who walk straight at the camera: how soon are they confirmed?

A doorbell camera sees most visitors coming head-on: they do not cross the picture, they grow in it.
The other synthetic scenes move subjects sideways at a fixed size, so they never measure this. Here a
person comes into view far away (out of a gate, 3 % of the picture wide and 13 % high, feet at 72 %
of its height), walks straight at the camera for 3-12 s until they fill the lower middle (13 % wide,
55 % high), waits at the door for 4-10 s and walks back. By default the light does not change; the
scene is a plain day (`quiet`), a clear night (`night`, its distractors removed), a noisy night
(`noise`) or sunshine with cast shadows (`sun`).

`--light` changes the light as the visitor comes, the case a rule that tells a subject by how it
moved can get wrong (a person who grows barely moves an edge per frame; docs/dev/MOTION-LOG.md, "A subject
arrives by moving"):
  cloud  sunshine (`sun`): a cloud's edge starts to cover the sun, or to uncover it, between 1.5 s
         before and 1 s after the visitor comes into view;
  lamp   a clear night (`night`): a porch lamp that fades on over 0.5-2 s (LED floodlights with a
         soft start), starting between 1 s before and 0.5 s after the visitor comes into view, as
         a motion-activated light does.

Prints one JSON object: per scene kind and in all, subjects, missed, split, seconds of the visit no
event covers (`lost_s`) and visits with more than 1 s lost, seconds recorded after the visitor left
(mean and max), and the onset twice: from the moment the person comes into view, and from the
moment they first cover `motion.min_area` of the picture (a person far enough away is below it and,
by design, not an object yet). `--scenes` adds one line per scene before it.

    .venv/bin/python bench/motion_approach.py [--seeds 1-12] [--jobs 2] [--light none|cloud|lamp]
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.motion import latency, visit
from bench.motion_fps import bench_motion, scene_bench_parser, seed_range, use_cast_shadows
from edge.capture.synthetic import Distractor, SyntheticScene, draw_person, porch_light, sun_ramp
from edge.config import RecordingConfig
from edge.recording.analysis import analyse, single_threaded_opencv

SIZE = (320, 240)
SECONDS = 45.0
APPEARS = 8.0  # when the person comes into view
KINDS = ("quiet", "night", "noise", "sun")
LIGHT_KINDS = {"none": KINDS, "cloud": ("sun",), "lamp": ("night",)}  # the scenes each --light runs on
FAR, NEAR = (0.72, 0.03, 0.13), (0.98, 0.13, 0.55)  # feet y, width, height (fractions of the picture)

Job = tuple[int, str, str]  # seed, scene kind, light (none, cloud, lamp)


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
    at a fixed size), drawn where the scene draws its subjects: before the light is applied. Its only
    change of light, if any, is `cloud` (over the sun) or `lamp` (a porch lamp: when it starts to fade
    on, and over how many seconds)."""

    def __init__(self, seed: int, kind: str, person: Approach, *, cloud: Distractor | None = None,
                 lamp: tuple[float, float] | None = None) -> None:
        super().__init__(seed, kind, SECONDS)
        # the scene's own subjects and distractors (night: lamps, headlights) removed
        self.replan([], [cloud] if cloud else [])
        self.person = person
        self.subjects = [person]  # type: ignore[list-item]  # drawn by _draw_subject below
        self.lamp = lamp

    def _draw_subject(self, img: np.ndarray, s: object, t: float, w: int, h: int, channels: int) -> None:
        pose = self.person.at(t)
        if pose is None:
            return
        feet, pw, ph = pose
        draw_person(img, self.person.x * w, (feet - ph / 2) * h, pw * w, ph * h, channels)

    def _illumination(self, t: float, w: int, h: int, night: bool,
                      ir: bool = False) -> tuple[np.ndarray | float, np.ndarray | float]:
        gain, offset = super()._illumination(t, w, h, night, ir)
        if self.lamp is None or t <= self.lamp[0]:
            return gain, offset
        on, fade = self.lamp
        # the scene's own porch lamp (as `lights_on` draws it at night), brightening linearly
        lit = 1.0 + 1.5 * min(1.0, (t - on) / fade) * porch_light(w, h)
        return np.asarray(gain, np.float32) * lit[:, :, None], offset


def plan(job: Job) -> ApproachScene:
    """The scene of one job. With a light, the visitor is the one of the same seed's scene with no
    change of light (the same draws), and the light's draws come from a stream of their own."""
    seed, kind, light = job
    rng = np.random.default_rng([seed, 5151, KINDS.index(kind)])
    walk, wait, x = float(rng.uniform(3, 12)), float(rng.uniform(4, 10)), float(rng.uniform(0.25, 0.6))
    person = Approach(x, walk, wait)
    if light == "none":
        return ApproachScene(seed, kind, person)
    drawn = np.random.default_rng([seed, 5152, tuple(LIGHT_KINDS).index(light)])
    if light == "cloud":
        edge = APPEARS + float(drawn.uniform(-1.5, 1.0))
        strength = float(drawn.uniform(0.6, 1.2))
        if drawn.random() < 0.5:  # the sun comes back at `edge` (sun_ramp: the edge's crossing time)
            start = edge - 10.0
            cloud = Distractor("sun", start, edge + sun_ramp(start), strength)
        else:
            cloud = Distractor("sun", edge, edge + float(drawn.uniform(12.0, 20.0)), strength)
        return ApproachScene(seed, kind, person, cloud=cloud)
    lamp = (APPEARS + float(drawn.uniform(-1.0, 0.5)), float(drawn.uniform(0.5, 2.0)))
    return ApproachScene(seed, kind, person, lamp=lamp)


def run_scene(job: Job) -> dict:
    single_threaded_opencv()
    scene = plan(job)
    person = scene.person
    config = bench_motion()
    # first frame at which the person covers min_area of the picture
    times = np.arange(APPEARS, person.leaves(), 1.0 / scene.fps)
    big = next(float(t) for t in times if (pose := person.at(float(t))) and pose[1] * pose[2] >= config.min_area)
    frames = ((i / scene.fps, scene.luma(i, *SIZE)) for i in range(scene.frame_count))
    events = analyse(frames, scene.fps, config, RecordingConfig()).events
    leaves = person.leaves()
    during, lost = visit(events, APPEARS, leaves)
    onset = during[0].onset if during else None
    return {"seed": job[0], "kind": job[1], "light": job[2], "walk_s": round(person.walk, 2),
            "events": len(during),
            "onset_s": None if onset is None else round(onset - APPEARS, 2),
            "onset_after_min_area_s": None if onset is None else round(onset - big, 2),
            "lost_s": round(lost, 2),
            "after_s": round(max(0.0, during[-1].end - leaves), 2) if during else None,
            "false": len(events) - len(during)}


def summary(rows: list[dict]) -> dict:
    found = [r for r in rows if r["events"]]
    return {"subjects": len(rows), "missed": len(rows) - len(found), "split": sum(r["events"] > 1 for r in rows),
            "false_events": sum(r["false"] for r in rows),
            "lost_s": round(sum(r["lost_s"] for r in rows), 1), "lost_over_1s": sum(r["lost_s"] > 1.0 for r in rows),
            "after_s_mean": round(statistics.fmean(r["after_s"] for r in found), 2) if found else None,
            "after_s_max": max((r["after_s"] for r in found), default=None),
            "onset": latency([max(0.0, r["onset_s"]) for r in found]),
            "onset_after_min_area": latency([max(0.0, r["onset_after_min_area_s"]) for r in found])}


def main() -> int:
    ap = scene_bench_parser(__doc__, "1-12")
    ap.add_argument("--light", choices=tuple(LIGHT_KINDS), default="none",
                    help="change the light as the visitor comes (default none)")
    args = ap.parse_args()
    cast_shadows = use_cast_shadows(args)
    kinds = LIGHT_KINDS[args.light]
    jobs = [(seed, kind, args.light) for seed in seed_range(args.seeds) for kind in kinds]
    with Pool(max(1, args.jobs)) as pool:
        rows = pool.map(run_scene, jobs)
    if args.scenes:
        for row in rows:
            print(json.dumps(row), flush=True)
    per_kind = {kind: summary([r for r in rows if r["kind"] == kind]) for kind in kinds}
    print(json.dumps({"seeds": args.seeds, "cast_shadows": cast_shadows, "light": args.light, "all": summary(rows),
                      "per_kind": per_kind}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
