"""A stand-in for picamera2, for tests on machines without a Raspberry Pi camera.

NOT picamera2: written here from picamera2's source and documented API (Picamera2, MappedArray,
the encoders and Output), doing just enough to run our adapter (edge/capture/picamera2_source.py)
and everything above it. A camera thread renders the synthetic scene, looping, at the sensor's rate
into YUV420 main and lores buffers (limited range, rows padded to a 64-byte stride as the ISP does),
runs `pre_callback`, hands the main buffer to the running encoder (libx264 through PyAV standing in
for the Pi's hardware encoder) and then to whoever waits in `capture_request()`. Where the real
library is unkind, so is this: a capture waits without limit unless given `wait` (then TimeoutError,
and the job stays queued until cancel_all_and_flush(), which fails the waiting captures with
CancelledError); queueing a capture takes the lock the camera thread holds while it runs the
callbacks and the encoder; stopping queues behind pending captures, so with a stalled camera it never
returns; and an exception in pre_callback ends the camera thread for good (picamera2 re-raises it),
after which a stop never returns either.

Environment: FAKE_PICAMERA2_SCENE "seed:scenario:seconds" (default 1:walk:30), FAKE_PICAMERA2_SPEED
(default 1: real time), FAKE_PICAMERA2_PLATFORM VC4 (Pi <= 4, hardware encoder; default) or PISP
(Pi 5: no /dev/video11), FAKE_PICAMERA2_CAMERAS 0 for a Pi with no camera attached,
FAKE_PICAMERA2_STALL_AFTER N (the camera stops delivering after N frames), FAKE_PICAMERA2_SENSOR_FPS
(a sensor slower than the rate asked for), FAKE_PICAMERA2_ALIGN (libcamera rounds the main width
down to a multiple of this; default 2), FAKE_PICAMERA2_STOP_DELAY (seconds a stop takes),
FAKE_PICAMERA2_SHORT_BUFFER_AT N (frame N's main buffer is cut to half its rows).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edge.capture.synthetic import SyntheticScene

STRIDE_ALIGN = 64


@dataclass
class ColorSpace:
    range: str = "Range.Limited"

    def __str__(self) -> str:
        return "Rec709"


def _stride(width: int) -> int:
    return -(-width // STRIDE_ALIGN) * STRIDE_ALIGN


def _i420(bgr: np.ndarray, stride: int) -> np.ndarray:
    """A limited-range YUV420 buffer of (h * 3 / 2) rows of `stride` bytes."""
    h, w = bgr.shape[:2]
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV).astype(np.float32)
    y = 16 + yuv[:, :, 0] * (219 / 255)
    uv = 128 + (cv2.resize(yuv[:, :, 1:], (w // 2, h // 2), interpolation=cv2.INTER_AREA) - 128) * (224 / 255)
    buf = np.zeros((h * 3 // 2, stride), np.uint8)
    buf[:h, :w] = np.clip(y + 0.5, 0, 255)
    chroma = buf[h:].reshape(-1)  # U then V, each (h/2) rows of stride/2
    half = stride // 2
    for plane, values in enumerate((uv[:, :, 0], uv[:, :, 1])):
        rows = chroma[plane * (h // 2) * half:(plane + 1) * (h // 2) * half].reshape(h // 2, half)
        rows[:, :w // 2] = np.clip(values + 0.5, 0, 255)
    return buf


@dataclass
class CompletedRequest:
    buffers: dict[str, np.ndarray]
    metadata: dict[str, Any]
    released: bool = False

    def make_array(self, name: str) -> np.ndarray:
        return self.buffers[name].copy()

    def get_metadata(self) -> dict[str, Any]:
        return dict(self.metadata)

    def release(self) -> None:
        self.released = True


class MappedArray:
    def __init__(self, request: CompletedRequest, stream: str) -> None:
        self.array = request.buffers[stream]

    def __enter__(self) -> MappedArray:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@dataclass
class _Waiting:
    event: threading.Event = field(default_factory=threading.Event)
    request: CompletedRequest | None = None
    cancelled: bool = False


class Picamera2:
    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        if os.environ.get("FAKE_PICAMERA2_CAMERAS", "1") == "0":
            return []
        return [{"Model": "imx708", "Location": 2, "Rotation": 180, "Id": "/base/fake/imx708@1a", "Num": 0}]

    def __init__(self) -> None:
        if not self.global_camera_info():
            raise IndexError("list index out of range")  # what picamera2 raises with no camera
        seed, scenario, seconds = (os.environ.get("FAKE_PICAMERA2_SCENE") or "1:walk:30").split(":")
        self._scene_args = (int(seed), scenario, float(seconds))
        self.speed = float(os.environ.get("FAKE_PICAMERA2_SPEED", "1"))
        stall = os.environ.get("FAKE_PICAMERA2_STALL_AFTER")
        self._stall_after = int(stall) if stall else None
        self.pre_callback: Any = None
        self.camera_config: dict[str, Any] | None = None
        self._encoder: Any = None
        self._waiting: list[_Waiting] = []
        self._lock = threading.Lock()  # picamera2's camera lock: held while a frame is processed
        self._served = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dead = False  # the camera thread ended on an exception
        self.frames_made = 0
        self.closed = False

    def create_video_configuration(self, main: dict | None = None, lores: dict | None = None,
                                   controls: dict | None = None, **_: Any) -> dict[str, Any]:
        main = {"size": (1280, 720), "format": "XBGR8888", **(main or {})}
        config: dict[str, Any] = {"use_case": "video", "main": main, "lores": dict(lores) if lores else None,
                                  "controls": dict(controls or {}), "colour_space": ColorSpace()}
        return config

    def configure(self, config: dict[str, Any]) -> None:
        align = int(os.environ.get("FAKE_PICAMERA2_ALIGN", "2"))
        for name in ("main", "lores"):
            stream = config.get(name)
            if stream is None:
                continue
            w, h = stream["size"]
            if stream["format"] != "YUV420":
                raise RuntimeError(f"fake picamera2 supports YUV420 only, not {stream}")
            if name == "main":
                w -= w % align
            stream["size"] = (w - w % 2, h - h % 2)
            stream["stride"] = _stride(stream["size"][0])
            stream["framesize"] = stream["stride"] * stream["size"][1] * 3 // 2
        self.camera_config = config

    def camera_configuration(self) -> dict[str, Any]:
        assert self.camera_config is not None
        return self.camera_config

    def start_recording(self, encoder: Any, output: Any, **_: Any) -> None:
        main = self.camera_configuration()["main"]
        encoder.output = output
        encoder.width, encoder.height = main["size"]
        encoder.stride, encoder.format = main["stride"], main["format"]
        encoder.start()
        self._encoder = encoder
        self.start()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-libcamera", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        config = self.camera_configuration()
        fps = float(config["controls"].get("FrameRate", 30))
        sensor_fps = float(os.environ.get("FAKE_PICAMERA2_SENSOR_FPS") or fps)
        scene = SyntheticScene(*self._scene_args, sensor_fps)
        start = time.monotonic()
        index = 0
        while not self._stop.is_set():
            if self._stall_after is not None and index >= self._stall_after:
                self._stop.wait()  # stalled: alive, but no frame ever again
                return
            delay = start + index / sensor_fps / self.speed - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            request = self._render(scene, index, sensor_fps, config)
            with self._lock:
                try:
                    if self.pre_callback is not None:
                        self.pre_callback(request)
                    if self._encoder is not None:
                        self._encoder.encode("main", request)
                except Exception:
                    logging.getLogger("fake-picamera2").exception("camera thread: callback failed; thread ends")
                    self._dead = True
                    return
                self.frames_made += 1
                index += 1
                waiting, self._waiting = self._waiting, []
                for w in waiting:
                    w.request = request
                    w.event.set()
                self._served.notify_all()

    def _render(self, scene: SyntheticScene, index: int, fps: float, config: dict[str, Any]) -> CompletedRequest:
        main = config["main"]
        w, h = main["size"]
        bgr = scene.bgr(index % scene.frame_count, w, h)
        buffers = {"main": _i420(bgr, main["stride"])}
        if str(index) == os.environ.get("FAKE_PICAMERA2_SHORT_BUFFER_AT"):  # a driver handing over half a frame
            buffers["main"] = buffers["main"][:h // 2]
        lores = config.get("lores")
        if lores is not None:
            lw, lh = lores["size"]
            buffers["lores"] = _i420(cv2.resize(bgr, (lw, lh), interpolation=cv2.INTER_AREA), lores["stride"])
        # the sensor's clock, in ns, with an arbitrary origin as on a real device; durations in us
        return CompletedRequest(buffers, {"SensorTimestamp": 5_000_000_000 + round(index * 1e9 / fps),
                                          "FrameDuration": round(1e6 / fps)})

    def capture_request(self, flush: Any = None, wait: float | None = None) -> CompletedRequest:
        waiter = _Waiting()
        with self._lock:
            self._waiting.append(waiter)
        if not waiter.event.wait(wait):  # wait=None: for ever, like picamera2
            raise TimeoutError("fake picamera2: capture timed out")  # the job stays queued
        if waiter.cancelled:
            raise CancelledError()
        assert waiter.request is not None
        return waiter.request

    def cancel_all_and_flush(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
            for w in waiting:
                w.cancelled = True
                w.event.set()
            self._served.notify_all()

    def _stop_after_pending(self) -> None:
        # picamera2 hands the stop to the camera thread, behind pending jobs: it runs when the next
        # frame has served them, and never if that thread is stalled or dead
        with self._lock:
            while self._waiting or self._dead or (self._stall_after is not None and
                                                  self.frames_made >= self._stall_after):
                self._served.wait()
        time.sleep(float(os.environ.get("FAKE_PICAMERA2_STOP_DELAY", "0")))
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def stop(self) -> None:
        if self._thread is not None and not self._stop.is_set():
            self._stop_after_pending()

    def stop_recording(self) -> None:
        self.stop()
        if self._encoder is not None and self._encoder.running:
            self._encoder.stop()

    def close(self) -> None:
        self.stop()
        self.closed = True
