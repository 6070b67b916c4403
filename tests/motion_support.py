"""Running the live detector and event logic over a synthetic scene, as `consentcam detect` does."""

from __future__ import annotations

from edge.capture.synthetic import SyntheticScene
from edge.config import MotionConfig, RecordingConfig
from edge.recording.analysis import AnalysisResult, analyse


def detect(scene: SyntheticScene, motion: MotionConfig | None = None, size: tuple[int, int] = (320, 240),
           until: float | None = None) -> AnalysisResult:
    """The scene's frames (its first `until` seconds, or all) at `size` through analyse()."""
    n = scene.frame_count if until is None else min(scene.frame_count, round(until * scene.fps))
    frames = ((i / scene.fps, scene.luma(i, *size)) for i in range(n))
    return analyse(frames, scene.fps, motion or MotionConfig(), RecordingConfig())
