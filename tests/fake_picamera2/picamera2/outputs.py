"""Stand-in for picamera2.outputs.Output (see picamera2/__init__.py of this fake)."""

from __future__ import annotations

from typing import Any


class Output:
    def __init__(self, pts: Any = None) -> None:
        self.recording = False

    def start(self) -> None:
        self.recording = True

    def stop(self) -> None:
        self.recording = False

    def outputframe(self, frame: bytes, keyframe: bool = True, timestamp: int | None = None, packet: Any = None,
                    audio: bool = False) -> None:
        raise NotImplementedError

    def _add_stream(self, *args: Any, **kwargs: Any) -> None:
        return None
