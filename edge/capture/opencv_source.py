"""cv2.VideoCapture sources: /dev/videoN webcams, rtsp:// and http:// IP cameras, video files.

Frames are converted to the detection Y plane (resized) and encoded by the software encoder.
File sources are timed from the file's fps (frame n is at n / fps seconds), not from the wall
clock, so `consentcam detect` reports times from the start of the file.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edge.capture.frames import PTS_HZ, CapturedFrame
from edge.errors import ConsentcamError

log = logging.getLogger("consentcam.capture")


class CameraOpenError(ConsentcamError):
    pass


def is_stream_url(device: str) -> bool:
    return device.startswith(("rtsp://", "rtsps://", "http://", "https://"))


def open_capture(device: str) -> cv2.VideoCapture:
    """Open a device path, URL or file; a clear error when it cannot be opened."""
    _quiet_opencv()
    if device.startswith("/dev/"):
        if not Path(device).exists():
            raise CameraOpenError(f"{device}: no such camera device")
        cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
    elif is_stream_url(device):
        cap = cv2.VideoCapture(device, cv2.CAP_FFMPEG)
    else:
        path = Path(device)
        if not path.exists():
            raise CameraOpenError(f"{device}: no such video file or device")
        if path.is_dir():
            raise CameraOpenError(f"{device}: is a directory, not a video file")
        _check_video_file(path)
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise CameraOpenError(f"{device}: cannot open as a video source (not a camera, stream or video file?)")
    return cap


class OpenCVCamera:
    name = "opencv"

    def __init__(self, device: str, *, main_size: tuple[int, int], detect_size: tuple[int, int], fps: float,
                 bitrate: int = 2_000_000, keyframe_interval: float = 1.0, privacy_mask: np.ndarray | None = None,
                 loop: bool = False, encode: bool = True, time_origin: float | None = None) -> None:
        # Files: frame n is at time_origin + n / fps (time_origin None: the wall clock at start).
        self.device = device
        self._cap = open_capture(device)
        self.is_file = not device.startswith("/dev/") and not is_stream_url(device)
        file_fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = file_fps if self.is_file and 0 < file_fps <= 240 else fps
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if self.is_file else 0
        self.detect_size, self.main_size = detect_size, main_size
        self.loop = loop and self.is_file
        self._encoder = None
        if encode:
            from edge.capture.encoder import H264Encoder

            self._encoder = H264Encoder(main_size[0], main_size[1], self.fps, bitrate=bitrate,
                                        keyframe_interval=keyframe_interval, privacy_mask=privacy_mask)
        self._closed = False
        self.time_origin = time_origin

    def frames(self) -> Iterator[CapturedFrame]:
        start = time.time() if self.time_origin is None else self.time_origin
        n = 0
        offset = 0  # frames of earlier loops (looping files)
        while not self._closed:
            ok, bgr = self._cap.read()
            if not ok:
                if self.loop and n > offset:
                    offset = n
                    self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    continue
                if not self.is_file:
                    log.warning("%s: no frame from the camera; stopping this source", self.device)
                break
            mono = time.monotonic()
            t = start + n / self.fps if self.is_file else time.time()
            luma = to_luma(bgr, self.detect_size)
            packets = []
            if self._encoder is not None:
                packets = self._encoder.encode(bgr, t, pts=round(n * PTS_HZ / self.fps))
            yield CapturedFrame(time=t, luma=luma, packets=packets, index=n,
                                monotonic=None if self.is_file else mono)
            n += 1

    def close(self) -> None:
        self._closed = True
        self._cap.release()


def _check_video_file(path: Path) -> None:
    """Probe with PyAV first (quiet, unlike OpenCV's FFmpeg backend, which prints its own errors)."""
    import av

    try:
        with av.open(str(path)) as media:
            if not media.streams.video:
                raise CameraOpenError(f"{path}: has no video stream")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise CameraOpenError(f"{path}: cannot open as a video source (not a video file?)") from exc
    except OSError as exc:
        raise CameraOpenError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _quiet_opencv() -> None:
    # OpenCV prints its own warnings to stderr for every failed open; our error says it once.
    with contextlib.suppress(AttributeError):  # builds without the logging module
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def to_luma(bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Detection plane: resize first (cheap), then BT.601 luma, like the camera's lores Y plane."""
    small = bgr if (bgr.shape[1], bgr.shape[0]) == size else cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    if small.ndim == 2:
        return small
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)


def probe_device(device: str) -> bool:
    """Does the device open and deliver a frame? (used by camera `auto`)"""
    try:
        cap = open_capture(device)
    except CameraOpenError:
        return False
    try:
        ok, _ = cap.read()
        return bool(ok)
    finally:
        cap.release()
