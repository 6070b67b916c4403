"""Stand-ins for picamera2's H.264 encoders (see picamera2/__init__.py of this fake): libx264 through
PyAV plays the Pi's hardware encoder, and like the real V4L2 encoder, H264Encoder only finds out at
start that a Pi 5 has no /dev/video11. FAKE_PICAMERA2_OLD_H264=1: the older constructor without
framerate=."""

from __future__ import annotations

import fractions
import os
import threading
from typing import Any

import av
import numpy as np

from picamera2.platform import Platform, get_platform


class Encoder:
    def __init__(self) -> None:
        self.width = self.height = self.stride = 0
        self.format: str | None = None
        self._output: list[Any] = []
        self.running = False
        self.firsttimestamp: int | None = None
        self._lock = threading.Lock()
        self._context: Any = None

    @property
    def output(self) -> Any:
        return self._output[0] if len(self._output) == 1 else self._output

    @output.setter
    def output(self, value: Any) -> None:
        self._output = value if isinstance(value, list) else [value]

    def start(self, quality: Any = None) -> None:
        with self._lock:
            if self.running:
                raise RuntimeError("Encoder already running")
            self._start()
            self.running = True
            for out in self._output:
                out.start()

    def _start(self) -> None:
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = self.width, self.height, "yuv420p"
        ctx.time_base = fractions.Fraction(1, 1_000_000)
        ctx.framerate = fractions.Fraction(round(self.rate * 1000), 1000)
        ctx.gop_size = self.gop
        if self.bitrate:
            ctx.bit_rate = self.bitrate
        ctx.options = {"preset": "ultrafast", "tune": "zerolatency"}
        ctx.open()
        self._context = ctx

    def encode(self, stream: str, request: Any) -> None:
        with self._lock:
            if not self.running:
                return
            ts = request.get_metadata()["SensorTimestamp"] // 1000
            if self.firsttimestamp is None:
                self.firsttimestamp = ts
            frame = self._frame(request.buffers[stream])
            frame.pts = ts - self.firsttimestamp
            for packet in self._context.encode(frame):
                self.outputframe(bytes(packet), packet.is_keyframe, packet.pts, packet)

    def _frame(self, buf: np.ndarray) -> Any:
        w, h, s = self.width, self.height, self.stride
        flat = buf.reshape(-1)
        y = buf[:h, :w]
        u = flat[s * h:s * h + (s // 2) * (h // 2)].reshape(h // 2, s // 2)[:, :w // 2]
        v = flat[s * h + (s // 2) * (h // 2):s * h * 3 // 2].reshape(h // 2, s // 2)[:, :w // 2]
        return av.VideoFrame.from_ndarray(np.concatenate([y, u.reshape(-1, w), v.reshape(-1, w)]), format="yuv420p")

    def stop(self) -> None:
        with self._lock:
            if not self.running:
                raise RuntimeError("Encoder already stopped")
            self.running = False
            for packet in self._context.encode(None):
                self.outputframe(bytes(packet), packet.is_keyframe, packet.pts, packet)
            for out in self._output:
                out.stop()

    def outputframe(self, frame: bytes, keyframe: bool = True, timestamp: int | None = None, packet: Any = None,
                    audio: bool = False) -> None:
        for out in self._output:
            out.outputframe(frame, keyframe, timestamp, packet, audio)


class H264Encoder(Encoder):
    def __init__(self, bitrate: int | None = None, repeat: bool = True, iperiod: int | None = None,
                 framerate: float | None = None, enable_sps_framerate: bool = False, qp: int | None = None,
                 profile: str | None = None) -> None:
        if framerate is not None and os.environ.get("FAKE_PICAMERA2_OLD_H264") == "1":
            # older picamera2: H264Encoder(bitrate=None, repeat=False, iperiod=None), no framerate
            raise TypeError("__init__() got an unexpected keyword argument 'framerate'")
        super().__init__()
        self.bitrate, self.repeat, self.gop, self.rate = bitrate, repeat, iperiod or 60, framerate or 30

    def _start(self) -> None:
        if get_platform() is not Platform.VC4:
            raise FileNotFoundError(2, "No such file or directory", "/dev/video11")
        super()._start()


class LibavH264Encoder(Encoder):
    """Starts the way picamera2's does: `add_stream(codec, rate=self.framerate)` on a null container,
    with whatever PyAV is installed (a float rate fails on PyAV 13 and later)."""

    def __init__(self, bitrate: int | None = None, repeat: bool = True, iperiod: int = 30, framerate: float = 30,
                 qp: int | None = None, profile: str | None = None) -> None:
        super().__init__()
        self.bitrate, self.repeat, self.gop, self.rate = bitrate, repeat, iperiod, framerate

    def _start(self) -> None:
        container = av.open("/dev/null", "w", format="null")
        try:
            container.add_stream("h264", rate=self.rate)
        finally:
            container.close()
        super()._start()
