"""The motion detector on heavily compressed video: do encoder artefacts start events?

Real cameras often record at low bit rates. A heavily quantised H.264 encoder leaves a block unchanged
(skipped) until it has drifted far enough from the picture, then updates it at once: during a slow
lighting change, blocks "pop" one after another, and each pop is a step in fine structure that stays.
This renders synthetic scenes (held-out seeds by default), encodes each with libx264 at several
quality settings (PyAV), runs `consentcam detect` on every file (a real subprocess, as an owner would)
and scores the events against the scene's ground truth. Prints one JSON object.

    .venv/bin/python bench/motion_compressed.py [--seeds 103] [--seconds 60] [--size 640x480]
        [--scenarios quiet,noise,lighting,night | all] [--encodings crf35_veryfast,...] [--fps 15] [--clock]

`--clock` burns in a camera's on-screen date and time (`SyntheticScene(clock=True)`), which the
encoder then has to keep sharp while the light round it changes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.motion import parse_size
from edge.capture.synthetic import SCENARIOS as ALL_SCENARIOS
from edge.capture.synthetic import SyntheticScene, write_video
from edge.motion.scoring import score_events
from edge.recording.analysis import DetectedEvent

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = ("quiet", "noise", "lighting", "night")  # the default set; --scenarios all takes every one
# label -> libx264 options; "g 15" is a keyframe every 15 frames (every second at 15 fps, as many cameras send)
ENCODINGS = {
    "crf23_ultrafast": {"preset": "ultrafast", "crf": "23"},  # what the other motion benchmarks use
    "crf23_veryfast_g15": {"preset": "veryfast", "crf": "23", "g": "15", "sc_threshold": "0"},
    "crf35_veryfast": {"preset": "veryfast", "crf": "35"},
    "crf35_veryfast_g15": {"preset": "veryfast", "crf": "35", "g": "15", "sc_threshold": "0"},
}


def detect(video: Path) -> list[DetectedEvent]:
    out = subprocess.run([sys.executable, "-m", "edge", "detect", str(video), "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600, check=True)
    return [DetectedEvent(e["start"], e["end"], e["peak"], e["onset"]) for e in json.loads(out.stdout)["events"]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="103", help="comma-separated seeds (default 103, held-out)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--size", default="640x480", help="encoded size WxH (detection at 320x240, as `detect` does)")
    ap.add_argument("--fps", type=float, default=15.0, help="frame rate of the scenes and files (default 15)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help=f"comma-separated scenarios, or 'all' (default {','.join(SCENARIOS)})")
    ap.add_argument("--encodings", default=",".join(ENCODINGS),
                    help=f"comma-separated encodings (default all: {','.join(ENCODINGS)})")
    ap.add_argument("--clock", action="store_true", help="burn in a camera's on-screen clock (top left)")
    args = ap.parse_args()
    size = parse_size(args.size)
    scenarios = ALL_SCENARIOS if args.scenarios == "all" else tuple(args.scenarios.split(","))
    encodings = {label: ENCODINGS[label] for label in args.encodings.split(",") if label in ENCODINGS}
    unknown = [s for s in scenarios if s not in ALL_SCENARIOS] + \
        [e for e in args.encodings.split(",") if e not in ENCODINGS]
    if unknown or not encodings or args.fps <= 0:
        ap.error(f"unknown scenario or encoding, or a bad --fps: {', '.join(unknown) or args.fps}")
    started = time.perf_counter()
    rows: list[dict] = []
    totals = {label: {"false_events": 0, "false_seconds": 0.0, "missed": 0, "truth": 0, "onsets": []}
              for label in encodings}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            for scenario in scenarios:
                scene = SyntheticScene(seed, scenario, args.seconds, args.fps, clock=args.clock)
                truth = scene.ground_truth.motion
                row: dict = {"scenario": scenario, "seed": seed,
                             "truth": [[round(m.start, 2), round(m.end, 2)] for m in truth]}
                for label, options in encodings.items():
                    video = Path(tmp) / f"{scenario}-{seed}-{label}.mp4"
                    size_bytes = write_video(scene, video, size=size, options=options).stat().st_size
                    events = detect(video)
                    score = score_events(events, truth)
                    false = [e for e in events
                             if not any(e.start < m.end + 1.0 and e.end > m.start - 1.0 for m in truth)]
                    t = totals[label]
                    t["false_events"] += score.false_events
                    t["false_seconds"] += sum(e.end - e.start for e in false)
                    t["missed"] += score.true_events - score.matched_truth
                    t["truth"] += score.true_events
                    t["onsets"] += score.onsets
                    row[label] = {"kbit_per_s": round(size_bytes * 8 / 1000 / args.seconds),
                                  "false_events": score.false_events,
                                  "events": [[round(e.start, 2), round(e.end, 2)] for e in events]}
                rows.append(row)
    for t in totals.values():
        t["false_seconds"] = round(t["false_seconds"], 1)
        onsets = t.pop("onsets")
        t["onset_mean_s"] = round(sum(onsets) / len(onsets), 3) if onsets else None
    print(json.dumps({"benchmark": "motion on compressed video", "size": args.size, "fps": args.fps,
                      "clock": args.clock,
                      "encodings": encodings, "totals": totals, "scenes": rows,
                      "note": "false_seconds: events with no labelled subject within 1 s",
                      "elapsed_s": round(time.perf_counter() - started, 1)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
