"""Cost of recording an IP camera: the camera's own H.264 copied (`camera.record: copy`) against
decoding it and encoding it again with libx264 (`encode`, the only path before), and the main stream
copied without decoding while the detector reads a 640x360 substream (`camera.detect_device`).

The "camera" is a camera-like H.264 file (the synthetic mixed scene, libx264 veryfast, High profile
with B-frames and deblocking, a constant bit rate and a keyframe every 2 s, as IP cameras send).
Each path runs the source exactly as the daemon does (frames with the detection plane and the
packets to record) and muxes the packets to MPEG-TS as the recorder does (into memory: the vault's
encryption costs the same for all). The detector is left out: it is the same for every path. The
two-stream path reads files here (its source class reads network streams, with a reader thread):
the same steps, main packets demuxed and made recordable, substream pictures decoded and shrunk.
CPU time (user + system, all threads) per frame, the best of `--repeats` passes. Prints one JSON
object.

    .venv/bin/python bench/stream_copy.py [--sizes 1920x1080,1280x720] [--seconds 20] [--fps 25]
        [--repeats 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.motion import parse_size
from edge.capture.frames import CapturedFrame
from edge.capture.opencv_source import OpenCVCamera, decode_single_threaded, frame_luma
from edge.capture.stream_copy import StreamCopyCamera, Timeline, annex_b_filters, recordable, stamped
from edge.capture.synthetic import SyntheticScene, write_video
from edge.recording.muxer import TsMuxer

DETECT = (320, 240)
SUBSTREAM = (640, 360)
# kbit/s by picture height: what cameras commonly send on their main stream
BITRATE = {1080: 4000, 720: 2000, 360: 512}


class _CountingSink:
    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)

    def boundary(self) -> None:
        pass


def camera_file(out: Path, size: tuple[int, int], seconds: float, fps: float) -> Path:
    kbit = BITRATE.get(size[1], round(4000 * size[0] * size[1] / (1920 * 1080)))
    options = {"preset": "veryfast", "profile": "high",
               "x264-params": f"bitrate={kbit}:vbv-maxrate={kbit}:vbv-bufsize={2 * kbit}:keyint={round(2 * fps)}"}
    return write_video(SyntheticScene(1, "mixed", seconds, fps), out, size=size, options=options)


class _TwoFiles:
    """DualStreamCamera's work on two files: main packets copied undecoded, substream decoded."""

    def __init__(self, main: Path, sub: Path, fps: float) -> None:
        import av

        self._av = av
        self.main, self.sub, self.fps = main, sub, fps

    def frames(self) -> Iterator[CapturedFrame]:
        av = self._av
        with av.open(str(self.main)) as mc, av.open(str(self.sub)) as sc:
            ms, ss = mc.streams.video[0], sc.streams.video[0]
            decode_single_threaded(ss)
            filters, timeline = annex_b_filters(ms, str(self.main)), Timeline(ms.time_base, self.fps)
            main_packets = (p for p in mc.demux(ms) if p.size)
            for n, frame in enumerate(sc.decode(ss)):
                raws = []
                for p in itertools.islice(main_packets, 1):
                    raws = recordable(p, filters, timeline)
                t = n / self.fps
                yield CapturedFrame(time=t, luma=frame_luma(frame, DETECT), packets=stamped(raws, t))

    def close(self) -> None:
        pass


def run(camera: Any, size: tuple[int, int], fps: float) -> dict:
    sink = _CountingSink()
    muxer = TsMuxer(sink, size[0], size[1], fps)
    frames = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for frame in camera.frames():
        for pkt in frame.packets:
            muxer.write(pkt)
        frames += 1
    muxer.close()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    camera.close()
    return {"frames": frames, "cpu_ms_per_frame": round(cpu / frames * 1000, 3),
            "wall_ms_per_frame": round(wall / frames * 1000, 3), "recorded_kbit_per_s": round(sink.bytes * 8 / 1000 /
                                                                                              (frames / fps))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1920x1080,1280x720", help="camera picture sizes, comma-separated WxH")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for text in args.sizes.split(","):
            size = parse_size(text)
            video = camera_file(Path(tmp) / f"camera-{text}.mp4", size, args.seconds, args.fps)
            source_kbit = round(video.stat().st_size * 8 / 1000 / args.seconds)
            paths = {
                "copy": lambda v=video: StreamCopyCamera(str(v), detect_size=DETECT, fps=args.fps, time_origin=0.0),
                # the encode path records at the camera's size, at the camera's bit rate
                "encode": lambda v=video, s=size, k=source_kbit: OpenCVCamera(
                    str(v), main_size=s, detect_size=DETECT, fps=args.fps, bitrate=k * 1000,
                    keyframe_interval=1.0, time_origin=0.0),
            }
            sub = camera_file(Path(tmp) / f"sub-{text}.mp4", SUBSTREAM, args.seconds, args.fps)
            paths["dual"] = lambda v=video, s=sub: _TwoFiles(v, s, args.fps)
            row: dict = {"size": text, "source_kbit_per_s": source_kbit}
            for label, make in paths.items():
                runs = [run(make(), size, args.fps) for _ in range(args.repeats)]
                row[label] = min(runs, key=lambda r: r["cpu_ms_per_frame"])
            encode_ms = row["encode"]["cpu_ms_per_frame"]
            for label in ("copy", "dual"):
                row[f"{label}_cpu_vs_encode"] = round(row[label]["cpu_ms_per_frame"] / encode_ms, 3)
            rows.append(row)
    print(json.dumps({"benchmark": "recording an IP camera: copy vs re-encode", "fps": args.fps,
                      "seconds": args.seconds, "detect_size": f"{DETECT[0]}x{DETECT[1]}",
                      "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
