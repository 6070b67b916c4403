"""`consentcam detect VIDEO` (the live detector and event state machine over a file) and
`consentcam synth OUT` (write a synthetic test scene to a video file, with its ground truth)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from edge.cli.common import Context, add_json_option, emit_json, print_table
from edge.errors import ConsentcamError, NotFoundError

if TYPE_CHECKING:
    import numpy as np

    from edge.config import Config
    from edge.motion.heatmap import BusyRegion

# The handlers import numpy, OpenCV, the detector and the synthetic scene (PyAV) when they run:
# parsing stays light (see main.py).

log = logging.getLogger("consentcam.detect")


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("detect", help="run the motion detector and event logic over a video file",
                       description="Runs exactly the live detector and event state machine over a video file, "
                                   "faster than real time. Event times are seconds from the start of the file, "
                                   "by its timestamps, without pre/post-roll. Use it to tune the motion settings "
                                   "on your own footage.")
    d.add_argument("video", metavar="VIDEO", help="a video file (anything FFmpeg reads)")
    d.add_argument("--config", dest="detect_config", metavar="FILE",
                   help="config file whose motion/recording/camera settings to use (default: the global one)")
    d.add_argument("--heatmap", metavar="PNG",
                   help="also draw where motion was detected, and for how long, over the file's average picture, "
                        "with a grid in the normalised coordinates that motion.zones and motion.ignore use")
    d.add_argument("--fps", type=float, metavar="N",
                   help="frame rate of a file that does not state one, such as a raw .h264 stream without "
                        "timing (default: 25, with a warning); files that state their rate keep it")
    add_json_option(d)
    d.set_defaults(handler=cmd_detect)

    s = sub.add_parser("synth", help="write a synthetic test scene (with ground truth) to a video file")
    s.add_argument("out", metavar="OUT", help="video file to write (.mp4, .mkv, .ts); ground truth goes to OUT.json")
    s.add_argument("--seconds", type=float, default=60.0, help="length (default 60)")
    s.add_argument("--seed", type=int, default=1, help="which scene (default 1)")
    s.add_argument("--scenario", default="mixed", help="mixed, night, lighting, ir, foliage, rain, noise, quiet, "
                                                       "distractors, walk, sun (clouds over the sun, cast shadows), "
                                                       "sunny (the same with subjects) (default mixed)")
    s.add_argument("--fps", type=float, default=15.0)
    s.add_argument("--clock", action="store_true",
                   help="burn in the date and time at the top left, as most IP cameras do")
    s.add_argument("--size", default="640x480", help="WIDTHxHEIGHT (default 640x480)")
    add_json_option(s)
    s.set_defaults(handler=cmd_synth)


def _config(ctx: Context) -> Config:
    from edge.config import load_config

    path = getattr(ctx.args, "detect_config", None)
    return load_config(Path(path), must_exist=True) if path else ctx.config


def cmd_detect(ctx: Context) -> int:
    from edge.capture.opencv_source import OpenCVCamera
    from edge.motion.detector import low_rate_note
    from edge.motion.heatmap import MotionHeatmap
    from edge.recording.analysis import analyse, single_threaded_opencv

    config = _config(ctx)
    video = Path(ctx.args.video)
    if not video.exists():
        raise NotFoundError(f"{video}: no such video file")
    if video.is_dir():
        raise ConsentcamError(f"{video}: is a directory, not a video file")
    heatmap_path = Path(ctx.args.heatmap) if ctx.args.heatmap else None
    if heatmap_path is not None and not heatmap_path.parent.is_dir():  # say so before minutes of decoding
        raise NotFoundError(f"--heatmap {heatmap_path}: no such directory {heatmap_path.parent}")
    heatmap = MotionHeatmap() if heatmap_path is not None else None
    assume_fps = ctx.args.fps
    if assume_fps is not None and not 1 <= assume_fps <= 240:
        raise ConsentcamError(f"--fps: must be between 1 and 240, got {assume_fps:g}")
    cam = config.camera
    single_threaded_opencv()
    source = OpenCVCamera(str(video), main_size=(cam.width, cam.height),
                          detect_size=(cam.detect_width, cam.detect_height), fps=cam.fps, encode=False,
                          time_origin=0.0, assume_fps=assume_fps)
    if assume_fps is not None and abs(source.fps - assume_fps) > 0.001 * assume_fps:
        log.warning("%s: states its own frame rate, %.3g fps; --fps is only for files that state none",
                    video, source.fps)
    note = low_rate_note(source.fps)
    if note is not None:
        log.warning("%s: %.3g fps: %s", video, source.fps, note)
    started = time.perf_counter()
    last = [0.0]  # time of the last frame: the file's length follows its timestamps, not frames / fps

    def frames_and_times() -> Iterator[tuple[float, np.ndarray]]:
        for f in source.frames():
            last[0] = f.time
            yield f.time, f.luma

    try:
        result = analyse(_with_progress(frames_and_times(), source.frame_count), source.fps, config.motion,
                         config.recording,
                         observer=None if heatmap is None else lambda t, luma, r: heatmap.add(t, luma, r.boxes))
    finally:
        source.close()
    if result.frames == 0:
        raise ConsentcamError(f"{video}: no frames could be decoded (not a video file?)")
    elapsed = time.perf_counter() - started
    events = [e.to_dict() for e in result.events]
    seconds = last[0] + 1.0 / source.fps
    if heatmap is not None and heatmap_path is not None:
        heatmap.render(heatmap_path)
    if ctx.json:
        out = {"video": str(video), "fps": round(source.fps, 3), "frames": result.frames, "events": events,
               "seconds": round(seconds, 3), "elapsed": round(elapsed, 3)}
        if heatmap is not None:
            out["heatmap"] = {"path": str(heatmap_path), "grid": [heatmap.seconds.shape[1], heatmap.seconds.shape[0]],
                              "hottest": [dataclasses.asdict(spot) for spot in heatmap.hottest()],
                              "busy": [{"polygon": r.polygon(), "seconds": r.seconds} for r in heatmap.busy_regions()]}
        emit_json(out)
        return 0
    print(f"{video}: {result.frames} frames at {source.fps:.2f} fps ({seconds:.1f} s) "
          f"analysed in {elapsed:.1f} s; {len(events)} event(s)")
    if events:
        rows = [[i + 1, f"{e['start']:.2f}", f"{e['end']:.2f}", f"{e['end'] - e['start']:.2f}", f"{e['peak']:.3f}",
                 _area_text(e.get("area"))] for i, e in enumerate(events)]
        print_table(None, ["#", "start s", "end s", "length s", "peak", "area x0-x1, y0-y1"], rows)
    if heatmap is not None:
        spots = heatmap.hottest(1)
        where = (f"; motion longest around x={spots[0].x:.2f}, y={spots[0].y:.2f} ({spots[0].seconds:.1f} s)"
                 if spots else "; no motion detected")
        print(f"heatmap: {heatmap_path}{where}")
        _print_busy(heatmap.busy_regions())
    return 0


def _print_busy(regions: list[BusyRegion]) -> None:
    if not regions:
        return
    print("busy for at least a fifth of the file; if only leaves, flags or water moved there (check the map),\n"
          "these lines under motion.ignore: in the config stop them starting events:")
    for r in regions:
        print(f"    - {json.dumps(r.polygon())}  # objects seen here for up to {r.seconds:.1f} s")


def _area_text(area: list[float] | None) -> str:
    return "-" if area is None else f"{area[0]:.2f}-{area[2]:.2f}, {area[1]:.2f}-{area[3]:.2f}"


def _with_progress(frames: Iterator[tuple[float, np.ndarray]], total: int) -> Iterator[tuple[float, np.ndarray]]:
    """A frame-counting progress bar on stderr for long files (stdout stays clean for --json)."""
    if total < 300 or not sys.stderr.isatty():
        yield from frames
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("detect"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("frames", total=total)
        for item in frames:
            yield item
            progress.advance(task)


def cmd_synth(ctx: Context) -> int:
    from edge.capture.synthetic import SceneError, SyntheticScene, ground_truth_path, write_video

    args = ctx.args
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ConsentcamError(f"--size: expected WIDTHxHEIGHT like 640x480, got {args.size!r}") from None
    if not (64 <= w <= 3840 and 48 <= h <= 2160):
        raise ConsentcamError(f"--size: {w}x{h} is outside 64x48 .. 3840x2160")
    if not (1 <= args.seconds <= 24 * 3600):
        raise ConsentcamError(f"--seconds: must be between 1 and 86400, got {args.seconds}")
    scene = SyntheticScene(args.seed, args.scenario, args.seconds, args.fps, clock=args.clock)
    out = Path(args.out)
    if not out.parent.is_dir():
        raise NotFoundError(f"{out.parent}: no such directory")
    try:
        write_video(scene, out, size=(w, h))
    except SceneError:
        raise
    except OSError as exc:
        raise ConsentcamError(f"{out}: cannot write: {exc.strerror or exc}") from exc
    gt = scene.ground_truth
    if ctx.json:
        emit_json({"video": str(out), "ground_truth": str(ground_truth_path(out)), **gt.to_dict()})
    else:
        print(f"wrote {out} ({scene.frame_count} frames, {w}x{h}) and {ground_truth_path(out)}: "
              f"{len(gt.motion)} real motion interval(s), {len(gt.distractors)} distractor(s)")
    return 0
