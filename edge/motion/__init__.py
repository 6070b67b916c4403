"""Motion detection on the small Y plane."""

from edge.motion.detector import MotionDetector, MotionResult

__all__ = ["MotionDetector", "MotionResult"]
