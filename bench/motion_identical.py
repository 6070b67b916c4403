"""Does a cost-only change to the detector or the file decode path leave every result unchanged?

Runs the `edge` package of an earlier git revision (`--ref`, default HEAD: the last commit) and of
the working tree, each in its own process, over the same inputs, and compares them frame by frame:

* synthetic scenes (rendered once, shared by both): per frame `active`, `score`, `boxes`,
  `settling`, `global_change` of `MotionDetector.process`, a digest of the detector's state (background,
  flicker and toggle memories) after every frame, and the events of `analyse`;
* one H.264 file per `--video` scenario (like bench/motion_daemon.py's): per frame a hash of the
  decoded detection plane (`OpenCVCamera` file source), the detector's results and state digest.

Floats are compared exactly (bit for bit). Prints one JSON object; exit status 1 on any difference.

    .venv/bin/python bench/motion_identical.py --ref main
    .venv/bin/python bench/motion_identical.py --ref main --tuning   # the same scenes on tuning seeds

The scene list names held-out seeds (101+); `--tuning` takes 100 off each, so a check made while
tuning does not have to touch the held-out set (it only compares, but it does print counts).
All inputs are at 15 fps unless `--fps` says otherwise (scenes rendered and the detector run at that rate).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENES = [("mixed", 101), ("mixed", 102), ("night", 101), ("night", 103), ("rain", 101), ("rain", 104),
          ("foliage", 102), ("lighting", 101), ("ir", 102), ("distractors", 103), ("noise", 105)]
SIZES = {"320x240": SCENES, "640x480": [("mixed", 103), ("night", 102)], "160x120": [("rain", 102), ("mixed", 104)]}
ZONED = [("mixed", 101), ("night", 101)]  # also run with zones, an ignore polygon and another sensitivity
VIDEOS = [("mixed", 101), ("night", 102), ("lighting", 101)]


def _zoned_config():  # type: ignore[no-untyped-def]
    from edge.config import MotionConfig

    return MotionConfig(zones=(((0.05, 0.1), (0.95, 0.1), (0.95, 0.95), (0.05, 0.95)),),
                        ignore=(((0.0, 0.0), (0.3, 0.0), (0.3, 0.4), (0.0, 0.4)),), sensitivity=0.7)


def _record(r) -> tuple:  # type: ignore[no-untyped-def]
    return (bool(r.active), float(r.score).hex(), tuple(tuple(float(v).hex() for v in b) for b in r.boxes),
            bool(r.settling), bool(r.global_change))


STATE = ("_zbg", "_flicker", "_toggle", "_prev_frac", "_level", "_common")  # kept under these names


def _state(det) -> str:  # type: ignore[no-untyped-def]
    """Digest of the detector's state after a frame: catches float differences too small to change
    that frame's cells (they could change a later one)."""
    h = hashlib.sha1()
    for name in STATE:
        value = getattr(det, name, None)
        parts = value if isinstance(value, list) and value and hasattr(value[0], "tobytes") else [value]
        for part in parts:  # a list of arrays (a ring of past frames) hashes like the arrays stacked
            h.update(part.tobytes() if hasattr(part, "tobytes") else repr(part).encode())
    return h.hexdigest()


def _events(res) -> list:  # type: ignore[no-untyped-def]
    return [(float(e.start).hex(), float(e.end).hex(), float(e.peak).hex(), float(e.onset).hex()) for e in res.events]


def dump(cases: list[dict], out: Path) -> None:
    """Child process: run this tree's `edge` over every case, pickle the per-frame records."""
    import numpy as np

    from edge.capture.opencv_source import OpenCVCamera
    from edge.config import MotionConfig, RecordingConfig
    from edge.motion.detector import MotionDetector
    from edge.recording.analysis import analyse

    results = {}
    for case in cases:
        motion = _zoned_config() if case.get("zoned") else MotionConfig()
        if "frames" in case:
            lumas = np.load(case["frames"])
            fps = case.get("fps", 15)
            det = MotionDetector(motion, fps)
            records, states = [], []
            for f in lumas:
                records.append(_record(det.process(f)))
                states.append(_state(det))
            res = analyse(((i / fps, f) for i, f in enumerate(lumas)), fps, motion, RecordingConfig())
            results[case["name"]] = {"records": records, "state": states, "events": _events(res),
                                     "reseeds": det.reseeds}
        else:
            cam = OpenCVCamera(case["video"], main_size=(320, 240), detect_size=(320, 240), fps=case.get("fps", 15),
                               encode=False, time_origin=0.0)
            det = MotionDetector(motion, cam.fps)
            hashes, records, states = [], [], []
            for f in cam.frames():
                hashes.append(hashlib.sha1(np.ascontiguousarray(f.luma).tobytes()).hexdigest())
                records.append(_record(det.process(f.luma)))
                states.append(_state(det))
            cam.close()
            results[case["name"]] = {"records": records, "state": states, "luma_sha1": hashes}
    out.write_bytes(pickle.dumps(results))


def _run(tree: Path, cases: list[dict], out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    subprocess.run([sys.executable, __file__, "--dump", str(out)], input=json.dumps(cases), text=True, env=env,
                   cwd=tree, check=True)
    return pickle.loads(out.read_bytes())


def _compare(old: dict, new: dict) -> dict:
    report: dict = {"cases": len(old), "frames": 0, "different_cases": {}}
    for name, a in old.items():
        b = new[name]
        n = len(a["records"])
        report["frames"] += n
        diffs = {}
        for key in a:
            if a[key] != b[key]:
                if isinstance(a[key], list) and key != "events":
                    first = next((i for i, (x, y) in enumerate(zip(a[key], b[key], strict=False)) if x != y),
                                 min(len(a[key]), len(b[key])))
                    diffs[key] = {"first_frame": first, "count": sum(x != y for x, y in zip(a[key], b[key],
                                                                                           strict=False))}
                else:
                    diffs[key] = {"old": a[key], "new": b[key]}
        if diffs:
            report["different_cases"][name] = diffs
    return report


def _coverage(old: dict) -> dict:
    recs = [r for v in old.values() for r in v["records"]]
    return {"active_frames": sum(r[0] for r in recs), "settling_frames": sum(r[3] for r in recs),
            "global_changes": sum(r[4] for r in recs),
            "events": sum(len(v.get("events", [])) for v in old.values())}


def _seeds(scenes: list[tuple[str, int]], tuning: bool) -> list[tuple[str, int]]:
    return [(scenario, seed - 100 if tuning else seed) for scenario, seed in scenes]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", default="HEAD", help="git revision to compare the working tree with (default HEAD)")
    ap.add_argument("--frames", type=int, default=600, help="frames per synthetic scene (default 600)")
    ap.add_argument("--video-seconds", type=float, default=40.0)
    ap.add_argument("--fps", type=float, default=15.0, help="frame rate of every input (default 15)")
    ap.add_argument("--tuning", action="store_true", help="tuning seeds (1-5) instead of the held-out 101-105")
    ap.add_argument("--dump", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.dump:
        dump(json.loads(sys.stdin.read()), Path(args.dump))
        return 0
    sys.path.insert(0, str(ROOT))
    from bench.motion_cost import cached_frames, frames_file
    from edge.capture.synthetic import SyntheticScene, write_video

    rev = subprocess.run(["git", "rev-parse", "--short", args.ref], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cases: list[dict] = []
        zoned = _seeds(ZONED, args.tuning)
        for size, scenes in SIZES.items():
            w, h = (int(v) for v in size.split("x"))
            for scenario, seed in _seeds(scenes, args.tuning):
                cached_frames(scenario, seed, (w, h), args.frames, args.fps)  # render once, into the shared cache
                path = frames_file(scenario, seed, (w, h), args.frames, args.fps)
                cases.append({"name": f"{scenario}-{seed}-{size}", "frames": str(path), "fps": args.fps})
                if size == "320x240" and (scenario, seed) in zoned:
                    cases.append({"name": f"{scenario}-{seed}-{size}-zoned", "frames": str(path), "zoned": True,
                                  "fps": args.fps})
        for scenario, seed in _seeds(VIDEOS, args.tuning):
            video = write_video(SyntheticScene(seed, scenario, args.video_seconds, args.fps),
                                tmp / f"{scenario}-{seed}.mkv", size=(320, 240))
            cases.append({"name": f"video-{scenario}-{seed}", "video": str(video), "fps": args.fps})
        old_tree = tmp / "ref"
        old_tree.mkdir()
        archive = subprocess.run(["git", "archive", args.ref, "edge"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True)
        old = _run(old_tree, cases, tmp / "old.pkl")
        new = _run(ROOT, cases, tmp / "new.pkl")
    report = {"benchmark": "motion_identical", "ref": rev, "compared_with": "working tree",
              **_compare(old, new), "coverage_in_ref": _coverage(old)}
    report["identical"] = not report["different_cases"]
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
