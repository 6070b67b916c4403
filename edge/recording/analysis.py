"""The live detector and event state machine run over a sequence of frames (files, synthetic scenes).

Used by `consentcam detect`, the tests and bench/motion.py, so that offline numbers measure exactly
what the daemon does live.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edge.config import MotionConfig, RecordingConfig
from edge.motion.detector import MotionDetector
from edge.recording.events import Ended, EventMachine, Phase, Started


def single_threaded_opencv() -> None:
    """For batch runs (`consentcam detect`, the benchmarks): OpenCV's thread pool splits even these
    small frames between threads, and waking them costs more CPU than it saves (bench/motion_cost.py:
    the detector's CPU per frame was lower and steadier with one thread). Process-wide setting."""
    cv2.setNumThreads(1)


_Area = tuple[float, float, float, float] | None  # x0, y0, x1, y1, normalised


@dataclass
class DetectedEvent:
    start: float  # first motion (seconds, in the frames' time base)
    end: float  # last motion
    peak: float
    onset: float  # when the state machine confirmed it (start + about min_duration)
    # the union of the objects reported while it ran (None: no boxes, e.g. a reference detector
    # that reports none)
    area: _Area = None

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"start": round(self.start, 3), "end": round(self.end, 3), "peak": round(self.peak, 4),
                               "onset": round(self.onset, 3)}
        if self.area is not None:
            out["area"] = [round(v, 3) for v in self.area]
        return out


@dataclass
class AnalysisResult:
    frames: int = 0
    events: list[DetectedEvent] = field(default_factory=list)
    reseeds: int = 0
    active_frames: int = 0


def analyse(frames: Iterable[tuple[float, np.ndarray]], fps: float, motion: MotionConfig,
            recording: RecordingConfig, *, detector: Any = None,
            observer: Callable[[float, np.ndarray, Any], None] | None = None) -> AnalysisResult:
    """Frames are (time, luma). Events are reported without pre/post-roll. ``detector`` (default:
    our MotionDetector) is anything whose ``process(luma)`` returns ``.active`` and ``.score``: the
    benchmarks run their reference and peer detectors through the same event logic. ``observer``,
    if given, sees every frame's (time, luma, detector result), e.g. to draw a heatmap."""
    if detector is None:
        detector = MotionDetector(motion, fps)
    machine = EventMachine(min_duration=motion.min_duration, post_roll=recording.post_roll,
                           merge_gap=recording.merge_gap)
    result = AnalysisResult()
    peak = 0.0
    area: _Area = None
    onset = 0.0
    last_t = 0.0
    for t, luma in frames:
        last_t = t
        r = detector.process(luma)
        if observer is not None:
            observer(t, luma, r)
        result.frames += 1
        result.active_frames += r.active
        peak = max(peak, r.score)  # over the pending run and the event
        area = _union(area, getattr(r, "boxes", ()))
        for tr in machine.update(t, r.active):
            if isinstance(tr, Started):
                onset = tr.at
            elif isinstance(tr, Ended):
                result.events.append(DetectedEvent(tr.start, tr.motion_end, peak, onset, area))
                peak, area = 0.0, None
        if machine.phase is Phase.IDLE:
            peak, area = 0.0, None
    for tr in machine.finish(last_t):
        if isinstance(tr, Ended):
            result.events.append(DetectedEvent(tr.start, tr.motion_end, peak, onset, area))
    result.reseeds = getattr(detector, "reseeds", 0)
    return result


def _union(area: _Area, boxes: Iterable[tuple[float, float, float, float]]) -> _Area:
    """area (x0, y0, x1, y1) grown to cover boxes (x, y, w, h)."""
    for x, y, w, h in boxes:
        box = (x, y, x + w, y + h)
        area = box if area is None else (min(area[0], box[0]), min(area[1], box[1]),
                                          max(area[2], box[2]), max(area[3], box[3]))
    return area
