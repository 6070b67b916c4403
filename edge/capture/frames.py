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

PTS_HZ = 90_000  # MPEG-TS clock: every packet pts is in 1/90000 s


def limited_to_full_range(y: np.ndarray) -> np.ndarray:
    """Limited-range luma (16-235, almost all camera video) stretched to 0-255, as a YUV->RGB->grey
    conversion would: the detector's thresholds and brightness rules (saturated highlights) expect
    full range, and unstretched luma measured 11 false events against 3 on the same 16 scenes."""
    return cv2.convertScaleAbs(y, alpha=255 / 219, beta=-16 * 255 / 219)


@dataclass(frozen=True)
class EncodedPacket:
    """One H.264 access unit (Annex B, SPS/PPS repeated before every keyframe)."""

    pts: int  # in 1/PTS_HZ seconds
    keyframe: bool
    data: bytes
    time: float  # wall-clock capture time of the frame it encodes


@dataclass
class CapturedFrame:
    time: float  # wall clock (seconds since the epoch, or since file start for files)
    luma: np.ndarray  # uint8 HxW detection-size Y plane
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
