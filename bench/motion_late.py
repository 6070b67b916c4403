"""List the events the detector confirmed late (or missed), with what it saw frame by frame.

Diagnostic companion of bench/motion.py: which causes dominate the onset tail. Defaults to the
TUNING seeds (1-4); pass --seeds 101-108 only to look, never to tune. Per late event it prints the
scene, seed, subject kind, onset, cause tags and a trace from 1.5 s before the truth start:

    tags:  G  a global change (IR switch, exposure jump) between truth start - 1 s and confirmation
           R  rain at the truth start
           P  the subject paused before it was confirmed
           S  slow subject (< 0.12 frame widths per second)
    trace: G global change, s settling, # motion, . nothing

    .venv/bin/python bench/motion_late.py --seeds 1-16
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.capture.synthetic import SyntheticScene
from edge.config import MotionConfig, RecordingConfig
from edge.motion.detector import MotionDetector
from edge.motion.scoring import score_events
from edge.recording.analysis import DetectedEvent
from edge.recording.events import Ended, EventMachine, Started


def scene_report(scene: SyntheticScene, late: float, trace: bool) -> tuple[list[float], int]:
    motion, recording = MotionConfig(), RecordingConfig()
    det = MotionDetector(motion, scene.fps)
    machine = EventMachine(min_duration=motion.min_duration, post_roll=recording.post_roll,
                           merge_gap=recording.merge_gap)
    marks: list[str] = []
    events: list[DetectedEvent] = []
    onset = t = 0.0
    for i in range(scene.frame_count):
        t = i / scene.fps
        r = det.process(scene.luma(i, 320, 240))
        marks.append("G" if r.global_change else "s" if r.settling else "#" if r.active else ".")
        for tr in machine.update(t, r.active):
            if isinstance(tr, Started):
                onset = tr.at
            elif isinstance(tr, Ended):
                events.append(DetectedEvent(tr.start, tr.motion_end, 0.0, onset))
    for tr in machine.finish(t):
        if isinstance(tr, Ended):
            events.append(DetectedEvent(tr.start, tr.motion_end, 0.0, onset))
    score = score_events(events, scene.ground_truth.motion)
    name = f"{scene.scenario} {scene.seed}"
    for gt, subject in zip(scene.ground_truth.motion, scene.subjects, strict=False):
        hit = next((e for e in events if e.start <= gt.end + 1 and e.end >= gt.start - 1), None)
        if hit is None:
            print(f"MISSED {name} {gt.kind} at {gt.start:.2f} s")
            continue
        delay = hit.onset - gt.start
        if delay <= late:
            continue
        first, last = round((gt.start - 1.0) * scene.fps), round(hit.onset * scene.fps)
        tags = "G" if "G" in marks[max(first, 0):last + 1] else ""
        tags += "R" if any(d.kind == "rain" and d.start <= gt.start <= d.end for d in scene.distractors) else ""
        tags += "P" if subject.pause_at >= 0 and subject.t0 + subject.pause_at < hit.onset else ""
        tags += "S" if abs(subject.speed) < 0.12 else ""
        print(f"LATE [{tags}] {name} {gt.kind} truth {gt.start:.2f} s, confirmed +{delay:.2f} s")
        if trace:
            s0 = max(0, round((gt.start - 1.5) * scene.fps))
            print("   ", "".join(marks[s0:last + 3]), f"(from {s0 / scene.fps:.2f} s)")
    for ev in events:
        if not any(ev.start <= g.end + 1 and ev.end >= g.start - 1 for g in scene.ground_truth.motion):
            near = sorted({d.kind for d in scene.distractors if d.start - 1 <= ev.start <= d.end + 1})
            print(f"FALSE {name} {ev.start:.2f}-{ev.end:.2f} s during {', '.join(near) or 'nothing'}")
    return score.onsets, score.false_events


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1-4", help="first-last (default 1-4, the tuning seeds)")
    ap.add_argument("--scenarios", default="mixed,night")
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--late", type=float, default=0.5, help="report onsets above this (s)")
    ap.add_argument("--trace", action="store_true", help="print the frame-by-frame trace")
    args = ap.parse_args()
    first, _, last = args.seeds.partition("-")
    onsets: list[float] = []
    false_events = 0
    for scenario in args.scenarios.split(","):
        for seed in range(int(first), int(last or first) + 1):
            o, f = scene_report(SyntheticScene(seed, scenario, args.seconds), args.late, args.trace)
            onsets += o
            false_events += f
    if onsets:
        onsets.sort()
        print(f"onsets: n={len(onsets)} mean={statistics.fmean(onsets):.3f} median={statistics.median(onsets):.3f} "
              f"p90={onsets[int(0.9 * (len(onsets) - 1))]:.3f} max={onsets[-1]:.3f} "
              f"within 0.5 s={sum(x <= 0.5 for x in onsets) / len(onsets):.3f}; false events={false_events}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
