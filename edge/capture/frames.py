"""What every frame source produces: one `CapturedFrame` per captured picture.

Recording works on encoded packets only: the main stream is H.264-encoded as it is captured
(by the Pi's encoder or by our software encoder), so pre-roll and clips never hold raw frames.
The detector only ever sees the small greyscale `luma` plane.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from edge.errors import ConsentcamError

PTS_HZ = 90_000  # MPEG-TS clock: every packet pts is in 1/90000 s


class CameraOpenError(ConsentcamError):
    """A camera, stream or file that cannot be opened (or opened again), with the reason."""


def _whole_factor(src: int, dst: int) -> int:
    """The largest whole f with src divisible by f and src // f still at least dst (1: none)."""
    for f in range(src // max(dst, 1), 1, -1):
        if src % f == 0:
            return f
    return 1


def shrink(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """picture (H x W, or H x W x 3) resized to size (w, h) for detection, as cv2.INTER_AREA does.

    OpenCV's INTER_AREA is a cheap block mean when both ratios are whole numbers and a general
    resampler, several times dearer, otherwise: 1920x1080 -> 320x240 (ratios 6 and 4.5) took 2.8 ms
    per grey frame on the reference VM, against 0.34 ms for 1280x720 -> 320x240 (bench/downscale.py).
    So the picture is first shrunk by the largest whole factors that keep it at least `size` (block
    means), and only what is left, a ratio under 2 on a picture a few times smaller, goes through the
    general resampler. Whole ratios give INTER_AREA's result bit for bit, and so do pictures with no
    whole factor to take out (e.g. 560x320); otherwise the two steps differ from one by about a grey
    level on average, at hard edges by more (tests/test_capture.py bounds it). Interpolating the rest
    linearly would save another 0.2 ms at 1080p; it was not measured against that bound."""
    h, w = picture.shape[:2]
    if (w, h) == size:
        return picture
    fx, fy = _whole_factor(w, size[0]), _whole_factor(h, size[1])
    if fx == 1 and fy == 1:
        return cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
    picture = cv2.resize(picture, (w // fx, h // fy), interpolation=cv2.INTER_AREA)
    if (w // fx, h // fy) == size:
        return picture
    return cv2.resize(picture, size, interpolation=cv2.INTER_AREA)


def limited_to_full_range(y: np.ndarray) -> np.ndarray:
    """Limited-range luma (16-235, almost all camera video) stretched to 0-255, as a YUV->RGB->grey
    conversion would: the detector's thresholds and brightness rules (saturated highlights) expect
    full range, and unstretched luma measured 11 false events against 3 on the same 16 scenes."""
    return cv2.convertScaleAbs(y, alpha=255 / 219, beta=-16 * 255 / 219)


@dataclass(frozen=True)
class EncodedPacket:
    """One H.264 (or, copied from a camera, H.265) access unit: Annex B, parameter sets repeated
    before every keyframe."""

    pts: int  # in 1/PTS_HZ seconds
    keyframe: bool
    data: bytes
    time: float  # wall-clock capture time of the frame it encodes
    # Decoding time (1/PTS_HZ s) where it differs from pts: a camera's stream with B-frames
    # (edge.capture.stream_copy). None: decoded in presentation order, as our own encoders emit.
    dts: int | None = None


@dataclass
class CapturedFrame:
    time: float  # wall clock (seconds since the epoch, or since file start for files)
    # uint8 HxW detection-size Y plane; None: a live source that fell behind left this picture
    # undecoded to catch up (edge.capture.stream_copy), its packets are still here
    luma: np.ndarray | None
    packets: list[EncodedPacket] = field(default_factory=list)
    index: int = 0
    # time.monotonic() when a live source captured it; None for sources that run faster than
    # real time (files, unpaced synthetic). The recorder uses it to notice when it falls behind.
    monotonic: float | None = None


class Camera(Protocol):
    """A frame source. Iterating yields frames until the source ends (files) or close() is called."""

    name: str
    fps: float

    def frames(self) -> Iterator[CapturedFrame]: ...

    def close(self) -> None: ...
