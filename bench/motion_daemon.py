"""Side by side on the same files: consentcam, the Motion daemon and a Frigate-style motion stage.

For each held-out synthetic scene the benchmark writes ONE video file (H.264, 320x240, 15 fps; `--size`
and `--fps` for camera-like files such as 1920x1080 at 25 fps) and every detector reads and decodes
that file itself:

* consentcam: our file source (PyAV, Y plane) -> edge.motion detector -> edge.recording event logic.
* motion: the real Motion daemon (Debian package `motion`, if installed) reading the file
  (netcam_url file://..., played in real time) with event hooks that log start/end.
* frigate_style / frigate_style_5fps: a re-implementation of Frigate's DOCUMENTED motion stage
  with its documented default settings (bench/peers/frigate_style.py), NOT Frigate itself (Frigate
  is not installable here). It gets the same decoded frames and the same event logic as ours
  (edge.recording.analysis.analyse); the 5 fps variant analyses every third frame like Frigate's
  default detect fps; the no_contrast variant turns improve_contrast off (not a default).

Motion runs in its own process while the in-process detectors run (each `--repeats` times), so all
of them see the same background load. CPU per frame INCLUDES video decoding for everyone: Motion
cannot be timed without its decoder, so ours is timed with ours. Motion's event times come from the
wall clock, counted from the launch of its process (on_camera_found only fires for a camera that was
lost and comes back, so in practice it never gives the origin: Motion's start-up latency, which varied
between about 0 and 2.6 s in bench/motion_real.py's calibrations, is inside every time), so events
are matched with a 1.5 s tolerance for every detector. Prints one JSON object.

    .venv/bin/python bench/motion_daemon.py [--seeds 2] [--first-seed 101] [--seconds 60] [--repeats 3]
        [--size 1920x1080 --fps 25] [--scenarios mixed,night,lighting,distractors | sun,sunny]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.motion import parse_size
from bench.peers.frigate_style import LABEL as FRIGATE_LABEL
from bench.peers.frigate_style import FrigateDocumentedDefaults, FrigateStyleMotion
from edge.capture.opencv_source import OpenCVCamera, to_luma
from edge.capture.synthetic import SCENARIOS as ALL_SCENARIOS
from edge.capture.synthetic import SyntheticScene, write_video
from edge.config import MotionConfig, RecordingConfig
from edge.loopback import stop_process
from edge.motion.scoring import Score, score_events
from edge.recording.analysis import AnalysisResult, DetectedEvent, analyse, single_threaded_opencv

SCENARIOS = ("mixed", "night", "lighting", "distractors")
LIGHTING_ONLY = ("lighting", "sun")  # scenarios whose every event is false
NO_MOTION = ("lighting", "distractors")
SIZE = (320, 240)
FPS = 15
EVENT_GAP = 4  # Motion's event_gap, like our merge_gap
TOLERANCE = 1.5  # s; Motion's event times come from the wall clock
FRIGATE_DETECT_FPS = 5  # Frigate's documented default fps for the detect role
# Frigate's docs suggest disabling improve_contrast as a tuning step; also shows how much our reading
# of "dynamic contrast improvement" matters
NO_CONTRAST = FrigateDocumentedDefaults(improve_contrast=False)

MOTION_CONF = """daemon off
setup_mode off
log_level 5
log_file {dir}/motion.log
target_dir {dir}/out
netcam_url file://{video}
width {width}
height {height}
framerate {fps}
threshold 1500
noise_tune on
lightswitch_percent 0
minimum_motion_frames 5
event_gap {gap}
picture_output off
movie_output off
webcontrol_port 0
stream_port 0
on_camera_found /bin/sh -c 'echo found $(date +%%s.%%N) >> {dir}/events.txt'
on_event_start /bin/sh -c 'echo start $(date +%%s.%%N) >> {dir}/events.txt'
on_event_end /bin/sh -c 'echo end $(date +%%s.%%N) >> {dir}/events.txt'
"""


class MotionRun:
    """The Motion daemon playing one file in real time, in the background."""

    def __init__(self, video: Path, seconds: float, work: Path, size: tuple[int, int] = SIZE,
                 fps: float = FPS) -> None:
        # Motion does not read the size or rate from the file: width/height/framerate must match it
        (work / "out").mkdir(parents=True, exist_ok=True)
        conf = work / "motion.conf"
        conf.write_text(MOTION_CONF.format(dir=work, video=video, gap=EVENT_GAP, width=size[0], height=size[1],
                                           fps=round(fps)))
        self.work, self.seconds = work, seconds
        self.t0 = time.time()
        self.proc = subprocess.Popen(["motion", "-n", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.ps = psutil.Process(self.proc.pid)
        self.deadline = time.monotonic() + seconds + 1.5
        self.threads_seen = 0  # Motion's own threads (main, motion loop, netcam reader/decoder)
        self.cpu = 0.0  # Motion's own CPU seconds (user + system), not the event-hook shells we added
        # Sampled from the start in a thread, not only once the in-process detectors are done: with large
        # files they take longer than the real-time run, and Motion exits at the end of its file.
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        try:
            while time.monotonic() < self.deadline and self.proc.poll() is None:
                c = self.ps.cpu_times()
                self.cpu = c.user + c.system  # the last sample before exit: up to 0.2 s short, in Motion's favour
                self.threads_seen = max(self.threads_seen, self.ps.num_threads())
                time.sleep(0.2)
        except psutil.Error:
            pass

    def finish(self) -> tuple[list[DetectedEvent], float]:
        self._sampler.join(max(0.0, self.deadline - time.monotonic()) + 5.0)
        stop_process(self.proc, 5.0)
        return self._events(), self.cpu

    def _events(self) -> list[DetectedEvent]:
        log = self.work / "events.txt"
        lines = [line.split()[:2] for line in (log.read_text().splitlines() if log.exists() else [])]
        origin = next((float(stamp) for kind, stamp in lines if kind == "found"), self.t0)
        events: list[DetectedEvent] = []
        start = None
        for kind, stamp in lines:
            t = float(stamp) - origin
            if kind == "start":
                start = t
            elif kind == "end" and start is not None:
                events.append(DetectedEvent(start, max(start, t - EVENT_GAP), 0.0, start))
                start = None
        if start is not None:
            events.append(DetectedEvent(start, self.seconds, 0.0, start))
        return events


def _parse_size(text: str) -> tuple[int, int]:
    w, h = parse_size(text)
    if w < SIZE[0] or h < SIZE[1] or w % 2 or h % 2:
        raise SystemExit(f"--size {text!r}: even width and height, at least {SIZE[0]}x{SIZE[1]}")
    return w, h


def _file_frames(video: Path, size: tuple[int, int] = SIZE) -> tuple[Iterator[tuple[float, np.ndarray]], OpenCVCamera]:
    """(time, luma) from our file source: luma resized to `size`, times from the file's fps."""
    cam = OpenCVCamera(str(video), main_size=size, detect_size=size, fps=FPS, encode=False, time_origin=0.0)
    return ((f.time, f.luma) for f in cam.frames()), cam


def run_consentcam(video: Path, size: tuple[int, int] = SIZE) -> AnalysisResult:
    frames, cam = _file_frames(video, size)
    try:
        return analyse(frames, cam.fps, MotionConfig(), RecordingConfig())
    finally:
        cam.close()


def run_frigate_style(video: Path, every: int, settings: FrigateDocumentedDefaults | None = None,
                      size: tuple[int, int] = SIZE) -> AnalysisResult:
    frames, cam = _file_frames(video, size)
    try:
        return analyse(frames, cam.fps, MotionConfig(), RecordingConfig(),
                       detector=FrigateStyleMotion(settings, every=every))
    finally:
        cam.close()


def decode_only(video: Path, size: tuple[int, int] = SIZE) -> int:
    frames, cam = _file_frames(video, size)
    n = sum(1 for _ in frames)
    cam.close()
    return n


def decode_opencv_bgr(video: Path) -> int:
    """The previous file path, for reference: OpenCV decodes to BGR, then BT.601 grey."""
    cap = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    n = 0
    while n < 100_000:
        ok, bgr = cap.read()
        if not ok:
            break
        to_luma(bgr, SIZE)
        n += 1
    cap.release()
    return n


def timed(fn: Callable[[Path], AnalysisResult | int], video: Path) -> tuple[AnalysisResult | int, float]:
    c0 = time.process_time()
    out = fn(video)
    return out, time.process_time() - c0


def _summary(s: Score, cpu_per_frame: list[float], lighting_false: int, event_seconds: float) -> dict:
    onsets = sorted(s.onsets)
    return {
        "truth": s.true_events, "matched": s.matched_truth, "detected": s.detected, "false_events": s.false_events,
        "precision": round(s.precision, 3), "recall": round(s.recall, 3), "f1": round(s.f1, 3),
        "false_events_lighting_only": lighting_false,
        "event_seconds_total": round(event_seconds, 1),
        "onset_median_s": round(statistics.median(onsets), 2) if onsets else None,
        "onset_within_0_5s": round(sum(o <= 0.5 for o in onsets) / len(onsets), 3) if onsets else None,
        "cpu_ms_per_frame_incl_decode": round(statistics.median(cpu_per_frame), 3),
        "cpu_ms_per_frame_incl_decode_range": [round(min(cpu_per_frame), 3), round(max(cpu_per_frame), 3)],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=2, help="how many seeds (default 2)")
    ap.add_argument("--first-seed", type=int, default=101, help="the first seed (default 101)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help=f"comma-separated synthetic scenarios (default {','.join(SCENARIOS)}; sun,sunny: "
                         "clouds passing over the sun, with cast shadows)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each in-process detector per scene")
    ap.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}",
                    help="size of the video files, WxH (default 320x240). consentcam and the Frigate-style stage "
                         "shrink each decoded picture to 320x240 as `consentcam detect` does; Motion works at "
                         "this size")
    ap.add_argument("--fps", type=float, default=FPS, help=f"frame rate of the scenes and files (default {FPS})")
    args = ap.parse_args()
    scenarios = tuple(args.scenarios.split(","))
    unknown = [name for name in scenarios if name not in ALL_SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(ALL_SCENARIOS)}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    video_size = _parse_size(args.size)
    fps = args.fps
    single_threaded_opencv()  # as `consentcam detect` runs; applies to every in-process detector alike
    have_motion = shutil.which("motion") is not None
    version = (subprocess.run(["motion", "-h"], capture_output=True, text=True).stdout.splitlines() or ["?"])[0] \
        if have_motion else None
    every = max(1, round(fps / FRIGATE_DETECT_FPS))
    in_process: dict[str, Callable[[Path], AnalysisResult]] = {
        "consentcam": run_consentcam,
        "frigate_style": lambda v: run_frigate_style(v, 1),
        "frigate_style_5fps": lambda v: run_frigate_style(v, every),
        "frigate_style_no_contrast": lambda v: run_frigate_style(v, 1, NO_CONTRAST),
    }
    names = list(in_process) + (["motion"] if have_motion else [])
    totals = {name: Score() for name in names}
    lighting_false = dict.fromkeys(names, 0)
    event_seconds = dict.fromkeys(names, 0.0)
    cpu: dict[str, list[float]] = {name: [] for name in names}  # ms per frame, one entry per timed run
    decode: dict[str, list[float]] = {"pyav_y_plane": [], "opencv_bgr_to_grey": []}
    rows = []
    ratios: dict[str, list[float]] = {name: [] for name in in_process}  # per scene, measured in the same minute
    load_before = [round(x, 2) for x in os.getloadavg()]
    motion_threads = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for scenario in scenarios:
                scene = SyntheticScene(seed, scenario, args.seconds, fps=fps)
                video = write_video(scene, Path(tmp) / f"{scenario}-{seed}.mkv", size=video_size)
                motion = MotionRun(video, args.seconds, Path(tmp) / f"motion-{scenario}-{seed}", video_size, fps) \
                    if have_motion else None
                events: dict[str, list[DetectedEvent]] = {}
                scene_cpu: dict[str, list[float]] = {name: [] for name in names}
                frames = 0
                for _ in range(max(1, args.repeats)):
                    for name, run in in_process.items():
                        res, sec = timed(run, video)
                        assert isinstance(res, AnalysisResult)
                        frames = res.frames
                        events.setdefault(name, res.events)  # deterministic: every repeat gives the same events
                        scene_cpu[name].append(sec / max(res.frames, 1) * 1000)
                    for name, fn in (("pyav_y_plane", decode_only), ("opencv_bgr_to_grey", decode_opencv_bgr)):
                        n, sec = timed(fn, video)
                        decode[name].append(sec / max(int(n), 1) * 1000)
                if motion is not None:
                    events["motion"], motion_cpu = motion.finish()
                    motion_threads = max(motion_threads, motion.threads_seen)
                    # divided by the file's frame count: if Motion dropped or never reached some frames,
                    # this understates its cost (in Motion's favour)
                    scene_cpu["motion"].append(motion_cpu / max(frames, 1) * 1000)
                row: dict = {"scenario": scenario, "seed": seed, "truth": len(scene.ground_truth.motion),
                             "frames": frames}
                for name in names:
                    cpu[name] += scene_cpu[name]
                    row.setdefault("cpu_ms_per_frame_incl_decode", {})[name] = \
                        round(statistics.median(scene_cpu[name]), 3)
                if have_motion:
                    m = statistics.median(scene_cpu["motion"])
                    for name in in_process:
                        ratios[name].append(statistics.median(scene_cpu[name]) / m)
                for name in names:
                    s = score_events(events[name], scene.ground_truth.motion, tolerance=TOLERANCE)
                    totals[name].add(s)
                    secs = sum(e.end - e.start for e in events[name])
                    event_seconds[name] += secs
                    if scenario in LIGHTING_ONLY:
                        lighting_false[name] += s.false_events
                    row[name] = {"detected": s.detected, "matched": s.matched_truth, "false": s.false_events,
                                 "event_seconds": round(secs, 1)}
                rows.append(row)
    out = {
        "benchmark": "motion_daemon",
        "input": f"one H.264 file per scene ({args.size}, {fps:g} fps, libx264 ultrafast crf 23, yuv420p); "
                 "every detector decodes that same file itself",
        "detection_size": f"{SIZE[0]}x{SIZE[1]} for consentcam and the Frigate-style stage (each decoded picture "
                          f"shrunk to it, as `consentcam detect` does); Motion at {args.size}",
        "seeds": list(seeds),
        "scenarios": list(scenarios),
        "held_out": args.first_seed > 24,  # seeds 1-24 are the tuning seeds
        "seconds_per_scene": args.seconds,
        "match_tolerance_s": TOLERANCE,
        "event_logic": "consentcam and the Frigate-style peer: edge.recording.events.EventMachine (min_duration 0.2 s, "
                       "merge_gap 4 s); Motion: its own (minimum_motion_frames 5, event_gap 4)",
        "peers": {
            "motion": {"what": "the real Motion daemon", "version": version,
                       "settings": "threshold 1500 px (default), noise_tune on, minimum_motion_frames 5, "
                                   f"event_gap {EVENT_GAP}, lightswitch_percent 0 (default), width/height "
                                   f"{args.size}, framerate {fps:g}"} if have_motion
            else {"skipped": "the motion package is not installed"},
            "frigate_style": {"what": FRIGATE_LABEL, "settings": asdict(FrigateDocumentedDefaults()),
                              "analysed_fps": fps},
            "frigate_style_5fps": {"what": FRIGATE_LABEL, "settings": asdict(FrigateDocumentedDefaults()),
                                   "analysed_fps": fps / every,
                                   "note": "every third frame analysed (Frigate's default detect fps is 5); "
                                           "all frames are still decoded"},
            "frigate_style_no_contrast": {"what": FRIGATE_LABEL + "; improve_contrast off (NOT the default: the "
                                                  "docs' first tuning suggestion)",
                                          "settings": asdict(NO_CONTRAST), "analysed_fps": fps},
        },
        "cpu_method": "CPU seconds (user+system, all threads) per input frame, INCLUDING decoding the file. "
                      "In-process detectors: time.process_time around open + decode + detect + event logic, "
                      f"{max(1, args.repeats)} runs per scene (median and range over all runs). Motion: its "
                      "process CPU over the whole real-time run (start-up included), divided by the file's frame "
                      "count; one run per scene, measured while the in-process runs happen. Same file, same "
                      f"file ({args.size}) for everyone.",
        "decoder_threads": {"consentcam_and_frigate_style": 1, "motion_process_threads_max": motion_threads},
        "opencv_threads_in_process": cv2.getNumThreads(),
        "decode_ms_per_frame": {name: {"median": round(statistics.median(v), 3),
                                       "range": [round(min(v), 3), round(max(v), 3)]} for name, v in decode.items()},
        "cpu_vs_motion_same_scene": {name: {"median_ratio": round(statistics.median(v), 3),
                                            "range": [round(min(v), 3), round(max(v), 3)]}
                                     for name, v in ratios.items() if v},
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before,
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                    "note": "shared with other work: CPU figures are noisy (repeats, ranges, same-scene ratios)"},
        "scenes": rows,
        "summary": {name: _summary(totals[name], cpu[name], lighting_false[name], event_seconds[name])
                    for name in names},
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
