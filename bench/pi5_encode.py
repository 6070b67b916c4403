"""Cost of encoding a Pi 5's main stream in software: what `edge.capture.picamera2_source` does in
picamera2's camera thread on a Pi without a hardware encoder (our libx264 H264Encoder.encode_i420 on
the camera's YUV420 buffer, with the ISP's 64-byte row stride, privacy mask optional).

For each size, `--frames` frames of the synthetic scene (converted to limited-range I420 beforehand,
so only the encoder is timed) are encoded at 15 fps and 2 Mbit/s; prints one JSON object with CPU
ms per frame (process time: all of x264's threads) and wall ms per frame (what the camera thread
waits), and the share of one core at 15 fps. Measured on this machine, not on a Pi 5: a Pi 5's
Cortex-A76 runs x264 roughly 1.5-2.5x slower than a desktop x86 core (an estimate, not measured).

    .venv/bin/python bench/pi5_encode.py [--frames 150] [--mask]
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

from edge.capture.encoder import H264Encoder
from edge.capture.masks import rasterise
from edge.capture.picamera2_source import apply_yuv420_mask, yuv420_mask_indices
from edge.capture.synthetic import SyntheticScene

SIZES = [(1280, 720), (1920, 1080), (1296, 972)]  # 1296 (Camera Module v1 binned): rows padded to 1344
STRIDE_ALIGN = 64
MASK = [((0.6, 0.1), (0.95, 0.1), (0.95, 0.6), (0.6, 0.6))]  # about 12 % of the picture


def i420(bgr: np.ndarray, stride: int) -> np.ndarray:
    """A limited-range YUV420 buffer of (h * 3/2) rows of `stride` bytes, as libcamera delivers it."""
    h, w = bgr.shape[:2]
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV).astype(np.float32)
    buf = np.zeros((h * 3 // 2, stride), np.uint8)
    buf[:h, :w] = np.clip(16 + yuv[:, :, 0] * (219 / 255) + 0.5, 0, 255)
    chroma = buf[h:].reshape(-1)
    half = stride // 2
    small = cv2.resize(yuv[:, :, 1:], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    for plane in range(2):
        rows = chroma[plane * (h // 2) * half:(plane + 1) * (h // 2) * half].reshape(h // 2, half)
        rows[:, :w // 2] = np.clip(128 + (small[:, :, plane] - 128) * (224 / 255) + 0.5, 0, 255)
    return buf


def run(size: tuple[int, int], frames: int, masked: bool) -> dict:
    w, h = size
    stride = -(-w // STRIDE_ALIGN) * STRIDE_ALIGN
    scene = SyntheticScene(1, "mixed", frames / 15 + 1, 15)
    buffers = [i420(scene.bgr(i, w, h), stride) for i in range(frames)]
    mask = yuv420_mask_indices(rasterise(MASK, w, h) > 0, stride) if masked else None
    encoder = H264Encoder(w, h, 15, bitrate=2_000_000, keyframe_interval=1.0)
    packets = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i, buf in enumerate(buffers):
        if mask is not None:
            apply_yuv420_mask(buf, *mask)
        packets += len(encoder.encode_i420(buf, stride, 0.0, i * 6000))
    packets += len(encoder.flush(0.0))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"size": f"{w}x{h}", "stride": stride, "frames": frames, "packets": packets, "mask": masked,
            "cpu_ms_per_frame": round(cpu * 1000 / frames, 2), "wall_ms_per_frame": round(wall * 1000 / frames, 2),
            "core_share_at_15fps": round(cpu / frames * 15, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--mask", action="store_true", help="draw a privacy mask (about 12 %% of the picture) first")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    print(json.dumps({"results": [run(size, args.frames, args.mask) for size in SIZES]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
