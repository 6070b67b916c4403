"""Cost of making the detection plane from a camera-sized picture: OpenCV's INTER_AREA straight to the
detection size, against `edge.capture.frames.shrink` (whole-factor block means, then INTER_AREA for
the rest).

The pictures are frames of the synthetic scene rendered at each source size (grey: a decoder's Y
plane, as video files give; BGR: what OpenCV's webcam and RTSP sources give). CPU time per call,
one OpenCV thread, the best of `--repeats` passes of `--calls` calls each; also how far the result
is from a direct INTER_AREA (mean and largest absolute difference, grey levels). Prints one JSON object.

    .venv/bin/python bench/downscale.py [--size 320x240] [--calls 50] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2
import numpy as np

from bench.motion import parse_size
from edge.capture.frames import shrink
from edge.capture.synthetic import SyntheticScene

SOURCES = [(640, 480), (720, 576), (768, 576), (1280, 720), (1920, 1080), (2592, 1944), (3840, 2160)]


def _ms_per_call(fn, calls: int, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.process_time() - t0) / calls)
    return round(best * 1000, 3)


def measure(picture: np.ndarray, size: tuple[int, int], calls: int, repeats: int) -> dict:
    direct = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
    ours = shrink(picture, size)
    diff = np.abs(ours.astype(np.int16) - direct.astype(np.int16))
    return {"inter_area_ms": _ms_per_call(lambda: cv2.resize(picture, size, interpolation=cv2.INTER_AREA), calls,
                                          repeats),
            "shrink_ms": _ms_per_call(lambda: shrink(picture, size), calls, repeats),
            "identical": bool(not diff.any()), "mean_abs_diff": round(float(diff.mean()), 3),
            "max_abs_diff": int(diff.max())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="320x240", help="detection size WxH (default 320x240, camera.detect_*)")
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    size = parse_size(args.size)
    cv2.setNumThreads(1)
    scene = SyntheticScene(1, "mixed", 10.0)
    rows = []
    for w, h in SOURCES:
        index = scene.frame_count // 2
        row: dict = {"source": f"{w}x{h}"}
        row["grey"] = measure(scene.luma(index, w, h), size, args.calls, args.repeats)
        row["bgr"] = measure(scene.bgr(index, w, h), size, args.calls, args.repeats)
        rows.append(row)
    print(json.dumps({"benchmark": "detection plane from a camera-sized picture", "detect_size": args.size,
                      "opencv_threads": 1, "cpu": "process time, best of repeats", "sources": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
