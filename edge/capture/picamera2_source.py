"""Raspberry Pi camera via picamera2: a THIN adapter (needs libcamera; cannot run off a Pi).

- main stream (YUV420, camera.width x camera.height) -> the Pi's H.264 encoder (hardware on
  Pi <= 4; on a Pi 5, which has none, picamera2's libav encoder, chosen by platform because
  H264Encoder itself only fails once recording starts) -> `_PacketOutput`, a picamera2 Output
  subclass that turns each `outputframe(frame, keyframe, timestamp)` into our packets.
  Nothing is written to a file: packets go to the RAM pre-roll and the vault's encrypting writer.
- lores stream (YUV420, detect size) -> its Y plane is the detection frame. The camera never waits
  for us: frames a slow loop misses (seen in the sensor timestamps) are yielded without a picture
  and count as dropped detection frames; the encoder still gets every one.
- privacy masks: a pre_callback writes black (Y=16, U=V=128) into the main buffer before the
  encoder sees it, honouring the buffer's row stride (the ISP may pad rows). Cost: one numpy
  fancy-index assignment over the masked pixels per frame (measured on x86 at 1280x720 with 10 %
  masked: ~0.4 ms; expect roughly 2-4 ms on a Pi 4 and more on a Zero 2 W; budget ~5 % of a core
  at 15 fps). Masks cost nothing when empty.

picamera2 is imported lazily inside this module's functions only. tests/test_picamera2.py runs
this adapter and the daemon against tests/fake_picamera2, a stand-in written from picamera2's
documented API; the real library and hardware were not available to test.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge.capture.frames import PTS_HZ, CapturedFrame, EncodedPacket, limited_to_full_range
from edge.errors import ConsentcamError

log = logging.getLogger("consentcam.capture")


class PiCameraError(ConsentcamError):
    pass


def picamera2_available() -> tuple[bool, str]:
    """Is picamera2 importable and is there a camera? (reason for the log)"""
    try:
        from picamera2 import Picamera2  # type: ignore[import-not-found]
    except Exception as exc:  # ImportError, or libcamera failing to load
        return False, f"picamera2 not importable ({type(exc).__name__})"
    try:
        cams = Picamera2.global_camera_info()
    except Exception as exc:
        return False, f"picamera2 cannot list cameras ({exc})"
    if not cams:
        return False, "picamera2 found no camera"
    return True, f"picamera2 camera {cams[0].get('Model', '?')}"


def yuv420_mask_indices(mask: np.ndarray, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices into an I420 buffer (h*3/2 rows of `stride` bytes, the picture's width unless the
    ISP pads its rows): Y pixels and U/V samples to blank."""
    h, w = mask.shape
    s = w if stride is None else stride
    ys, xs = np.nonzero(mask)
    y_idx = ys * s + xs
    half = mask[::2, ::2]
    hy, hx = np.nonzero(half)
    plane = (h // 2) * (s // 2)
    pos = hy * (s // 2) + hx
    u_idx = h * s + pos
    v_idx = h * s + plane + pos
    return y_idx.astype(np.int64), np.concatenate([u_idx, v_idx]).astype(np.int64)


def has_hardware_h264() -> bool:
    """A VideoCore IV/VI Pi (Zero 2 W to 4) has a V4L2 H.264 encoder; a Pi 5 (PiSP) has none.
    picamera2's H264Encoder only finds that out when recording starts, and some picamera2 versions
    do not swap in the software encoder themselves, so we choose."""
    try:
        from picamera2.platform import Platform, get_platform  # type: ignore[import-not-found]

        return bool(get_platform() == Platform.VC4)
    except Exception:  # picamera2 without .platform (before 0.3.13): ask the kernel
        return Path("/dev/video11").exists()


class MissedFrames:
    """How many frames the camera made between two that the frame loop got, from their sensor
    timestamps: the camera (and its encoder) never wait for us, so a slow loop simply misses frames
    for detection. Each is counted as a dropped detection frame, as on the other sources."""

    def __init__(self, fps: float) -> None:
        self.period_ns = 1e9 / fps
        self._last: int | None = None

    def since_last(self, sensor_ns: int | None) -> int:
        if sensor_ns is None:
            return 0
        last, self._last = self._last, sensor_ns
        if last is None or sensor_ns <= last:
            return 0
        return max(0, round((sensor_ns - last) / self.period_ns) - 1)


def apply_yuv420_mask(buffer: np.ndarray, y_idx: np.ndarray, uv_idx: np.ndarray) -> None:
    flat = buffer.reshape(-1)
    flat[y_idx] = 16
    flat[uv_idx] = 128


def _is_limited_range(colour_space: Any) -> bool:
    """libcamera's ColorSpace has a ``range`` enum (``Range.Limited`` / ``Range.Full``); unknown: no stretch."""
    return "limited" in str(getattr(colour_space, "range", "")).lower()


class PiCamera:
    name = "picamera2"

    def __init__(self, *, main_size: tuple[int, int], detect_size: tuple[int, int], fps: float,
                 bitrate: int = 2_000_000, keyframe_interval: float = 1.0,
                 privacy_mask: np.ndarray | None = None) -> None:
        from picamera2 import MappedArray, Picamera2  # type: ignore[import-not-found]

        self.fps = fps
        self.detect_size = detect_size
        self._packets: queue.Queue[EncodedPacket] = queue.Queue(maxsize=int(fps * 10))
        self._closed = False
        try:
            cam = Picamera2()
            config = cam.create_video_configuration(
                main={"size": main_size, "format": "YUV420"},
                lores={"size": detect_size, "format": "YUV420"},
                controls={"FrameRate": fps},
            )
            cam.configure(config)
        except Exception as exc:
            raise PiCameraError(f"picamera2: cannot configure the camera: {exc}") from exc
        self._cam = cam
        # Video configurations default to a limited-range colour space (Rec.709): stretch the lores
        # luma like the file path does, so the detector sees the same scale on every source.
        self._stretch = _is_limited_range(cam.camera_configuration().get("colour_space"))
        if privacy_mask is not None and privacy_mask.any():
            stride = cam.camera_configuration()["main"].get("stride")
            y_idx, uv_idx = yuv420_mask_indices(privacy_mask > 0, stride)

            def blank(request: Any) -> None:
                with MappedArray(request, "main") as m:
                    apply_yuv420_mask(m.array, y_idx, uv_idx)

            cam.pre_callback = blank
        self._missed = MissedFrames(fps)
        self._encoder = _make_encoder(bitrate, max(1, round(keyframe_interval * fps)), fps)
        self._output = _make_output(self._packets)
        try:
            cam.start_recording(self._encoder, self._output)
        except Exception as exc:
            raise PiCameraError(f"picamera2: cannot start the H.264 encoder: {exc}") from exc

    def frames(self) -> Iterator[CapturedFrame]:
        n = 0
        dw, dh = self.detect_size
        while not self._closed:
            try:
                request = self._cam.capture_request()
            except Exception:
                if self._closed:  # close() from another thread stopped the camera under us
                    return
                raise
            try:
                lores = request.make_array("lores")
                sensor_ns = request.get_metadata().get("SensorTimestamp")
            finally:
                request.release()
            luma = limited_to_full_range(lores[:dh, :dw]) if self._stretch else np.ascontiguousarray(lores[:dh, :dw])
            now, mono = time.time(), time.monotonic()
            for _ in range(self._missed.since_last(sensor_ns)):  # recorded, but never seen by the detector
                yield CapturedFrame(time=now, luma=None, packets=[], index=n, monotonic=mono)
                n += 1
            packets = []
            while True:
                try:
                    packets.append(self._packets.get_nowait())
                except queue.Empty:
                    break
            yield CapturedFrame(time=now, luma=luma, packets=packets, index=n, monotonic=mono)
            n += 1

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._cam.stop_recording()
            finally:
                self._cam.close()


def _make_encoder(bitrate: int, gop: int, fps: float) -> Any:
    # repeat: SPS/PPS before every keyframe, so each clip (and segment) starts decodable
    if has_hardware_h264():
        from picamera2.encoders import H264Encoder  # type: ignore[import-not-found]

        return H264Encoder(bitrate=bitrate, repeat=True, iperiod=gop, framerate=fps)
    from picamera2.encoders import LibavH264Encoder  # type: ignore[import-not-found]

    log.info("no hardware H.264 encoder (Pi 5): using picamera2's libav encoder (libx264)")
    # framerate: libx264's rate control budgets bits per frame from it (picamera2's default is 30)
    return LibavH264Encoder(bitrate=bitrate, repeat=True, iperiod=gop, framerate=fps)


def _make_output(packets: queue.Queue[EncodedPacket]) -> Any:
    from picamera2.outputs import Output  # type: ignore[import-not-found]

    class _PacketOutput(Output):  # type: ignore[misc]
        """picamera2 Output -> EncodedPacket (timestamps in microseconds -> 90 kHz)."""

        def __init__(self) -> None:
            super().__init__()
            self._t0: int | None = None

        def outputframe(self, frame: Any, keyframe: bool = True, timestamp: int | None = None,
                        *args: Any, **kwargs: Any) -> None:
            ts = int(timestamp or 0)
            if self._t0 is None:
                self._t0 = ts
            pts = ((ts - self._t0) * PTS_HZ + 500_000) // 1_000_000  # rounded: 1/15 s is 6000, not 5999
            pkt = EncodedPacket(pts=pts, keyframe=bool(keyframe), data=bytes(frame), time=time.time())
            try:
                packets.put_nowait(pkt)
            except queue.Full:
                log.warning("picamera2 packets not collected; dropping one")  # frame loop stalled

    return _PacketOutput()
