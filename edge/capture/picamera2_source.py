"""Raspberry Pi camera via picamera2: a THIN adapter (needs libcamera; cannot run off a Pi).

- main stream (YUV420, camera.width x camera.height) -> H.264, without a file in between:
  * Pi Zero 2 W to 4: the hardware encoder (picamera2's H264Encoder) -> `_PacketOutput`, a
    picamera2 Output subclass that turns each `outputframe(frame, keyframe, timestamp)` into our
    packets.
  * Pi 5 (no hardware encoder): our own libx264 encoder (edge.capture.encoder), called for every
    frame in picamera2's camera thread (pre_callback), as picamera2's own software encoder would
    be. Not picamera2's LibavH264Encoder: it passes PyAV a float frame rate and a `width=` to
    VideoFrame.from_ndarray that only Raspberry Pi's patched PyAV accepts, and the venv holds the
    PyAV this project pins.
  Packets go to the RAM pre-roll and the vault's encrypting writer.
- lores stream (YUV420, detect size) -> its Y plane is the detection frame. The camera never waits
  for us: frames a slow loop misses (seen in the sensor timestamps and frame durations) are yielded
  without a picture and count as dropped detection frames; the encoder still gets every one.
- privacy masks: a pre_callback writes black (Y=16, U=V=128) into the main buffer before the
  encoder sees it, at the size and row stride the camera really delivers (libcamera may adjust the
  requested size; the ISP may pad rows). Cost: one numpy fancy-index assignment over the masked
  pixels per frame (measured on x86 at 1280x720 with 10 % masked: ~0.4 ms; expect roughly 2-4 ms
  on a Pi 4 and more on a Zero 2 W; budget ~5 % of a core at 15 fps). Masks cost nothing when empty.
- stopping: picamera2's capture_request() waits without limit, and a stop queues behind it, so a
  stalled camera would hang both. Captures wait at most CAPTURE_WAIT (then the source fails, and
  systemd restarts the daemon), and the camera is stopped in a helper thread that is given
  STOP_WAIT, so close() always returns.

picamera2 is imported lazily inside this module's functions only. tests/test_picamera2.py runs
this adapter and the daemon against tests/fake_picamera2, a stand-in written from picamera2's
source and documented API; the real library and hardware were not available to test.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
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
    """A VideoCore IV/VI Pi (Zero 2 W to 4) has a V4L2 H.264 encoder; a Pi 5 (PiSP) has none."""
    try:
        from picamera2.platform import Platform, get_platform  # type: ignore[import-not-found]

        return bool(get_platform() == Platform.VC4)
    except Exception:  # picamera2 without .platform (before 0.3.13): ask the kernel
        return Path("/dev/video11").exists()


class MissedFrames:
    """How many frames the camera made between two that the frame loop got, from their sensor
    timestamps and the frame's own duration (a sensor that cannot reach the requested rate, or one
    that slows down in the dark, makes longer frames, not missed ones): the camera (and its
    encoder) never wait for us, so a slow loop simply misses frames for detection. Each is counted
    as a dropped detection frame, as on the other sources."""

    def __init__(self, fps: float) -> None:
        self.period_ns = 1e9 / fps
        self._last: int | None = None

    def since_last(self, sensor_ns: int | None, frame_duration_us: int | None = None) -> int:
        if sensor_ns is None:
            return 0
        last, self._last = self._last, sensor_ns
        if last is None or sensor_ns <= last:
            return 0
        period = frame_duration_us * 1000 if frame_duration_us else self.period_ns
        return max(0, round((sensor_ns - last) / period) - 1)


def apply_yuv420_mask(buffer: np.ndarray, y_idx: np.ndarray, uv_idx: np.ndarray) -> None:
    flat = buffer.reshape(-1)
    flat[y_idx] = 16
    flat[uv_idx] = 128


def _is_limited_range(colour_space: Any) -> bool:
    """libcamera's ColorSpace has a ``range`` enum (``Range.Limited`` / ``Range.Full``); unknown: no stretch."""
    return "limited" in str(getattr(colour_space, "range", "")).lower()


CAPTURE_WAIT = 5.0  # seconds a capture may wait for a frame (long night exposures take up to ~1 s)
STOP_WAIT = 5.0  # seconds the camera is given to stop


class PiCamera:
    name = "picamera2"

    def __init__(self, *, main_size: tuple[int, int], detect_size: tuple[int, int], fps: float,
                 bitrate: int = 2_000_000, keyframe_interval: float = 1.0,
                 privacy_mask: np.ndarray | None = None) -> None:
        from picamera2 import Picamera2  # type: ignore[import-not-found]

        self.fps = fps
        self.detect_size = detect_size
        self._packets = PacketQueue(int(fps * 10))
        self._callbacks = CallbackGuard()
        self._closed = False
        self._reader: int | None = None  # the thread iterating frames(): it stops the camera when it ends
        self._stop_lock = threading.Lock()
        self._stop_started = False
        self._stop_done = threading.Event()
        self._missed = MissedFrames(fps)
        cam = None
        try:
            cam = Picamera2()
            config = cam.create_video_configuration(
                main={"size": main_size, "format": "YUV420"},
                lores={"size": detect_size, "format": "YUV420"},
                controls={"FrameRate": fps},
            )
            cam.configure(config)
            self._cam = cam
            self._setup(privacy_mask, main_size, bitrate, max(1, round(keyframe_interval * fps)))
        except PiCameraError:
            _close_quietly(cam)
            raise
        except Exception as exc:
            _close_quietly(cam)
            raise PiCameraError(f"picamera2: cannot set up the camera: {type(exc).__name__}: {exc}") from exc

    def _setup(self, privacy_mask: np.ndarray | None, requested: tuple[int, int], bitrate: int, gop: int) -> None:
        cam = self._cam
        actual = cam.camera_configuration()
        main, lores = actual["main"], actual["lores"]
        self.width, self.height = (int(v) for v in main["size"])
        self._lores_size = tuple(int(v) for v in lores["size"])
        if (self.width, self.height) != tuple(requested):
            log.info("the camera delivers %dx%d (asked for %dx%d)", self.width, self.height, *requested)
        # Video configurations default to a limited-range colour space (Rec.709 / SMPTE 170M): stretch
        # the lores luma like the file path does, so the detector sees the same scale on every source.
        self._stretch = _is_limited_range(actual.get("colour_space"))
        stride = int(main.get("stride") or self.width)
        mask = None
        if privacy_mask is not None and privacy_mask.any():
            if privacy_mask.shape != (self.height, self.width):
                privacy_mask = cv2.resize(privacy_mask, (self.width, self.height), interpolation=cv2.INTER_NEAREST)
            mask = yuv420_mask_indices(privacy_mask > 0, stride)
        self.hardware_encoder = has_hardware_h264()
        if self.hardware_encoder:
            self._software = None
            if mask is not None:
                cam.pre_callback = self._callbacks.wrap(_masking(*mask))
            self._encoder = _hardware_encoder(bitrate, gop, self.fps)
            self._output = _make_output(self._packets)
            try:
                cam.start_recording(self._encoder, self._output)
            except Exception as exc:
                raise PiCameraError(f"picamera2: cannot start the H.264 encoder: {exc}") from exc
            return
        from edge.capture.encoder import H264Encoder

        log.info("no hardware H.264 encoder (Pi 5): encoding with libx264 in the camera thread")
        self._software = H264Encoder(self.width, self.height, self.fps, bitrate=bitrate,
                                     keyframe_interval=gop / self.fps)
        cam.pre_callback = self._callbacks.wrap(_software_encoding(self._software, self._packets, stride, mask))
        try:
            cam.start()
        except Exception as exc:
            raise PiCameraError(f"picamera2: cannot start the camera: {exc}") from exc

    def frames(self) -> Iterator[CapturedFrame]:
        self._reader = threading.get_ident()
        try:
            yield from self._frames()
        finally:
            self._reader = None
            self._stop_camera()

    def _frames(self) -> Iterator[CapturedFrame]:
        n = 0
        lw, lh = self._lores_size
        while not self._closed:
            request = self._capture()
            if request is None:
                return
            try:
                lores = request.make_array("lores")
                meta = request.get_metadata()
            finally:
                request.release()
            y = lores[:lh, :lw]
            luma = limited_to_full_range(y) if self._stretch else np.ascontiguousarray(y)
            if (lw, lh) != tuple(self.detect_size):
                luma = cv2.resize(luma, self.detect_size, interpolation=cv2.INTER_AREA)
            now, mono = time.time(), time.monotonic()
            for _ in range(self._missed.since_last(meta.get("SensorTimestamp"), meta.get("FrameDuration"))):
                yield CapturedFrame(time=now, luma=None, packets=[], index=n, monotonic=mono)  # never seen
                n += 1
            yield CapturedFrame(time=now, luma=luma, packets=self._packets.drain(), index=n, monotonic=mono)
            n += 1

    def _capture(self) -> Any:
        """The next request; None once closed. A capture that fails or times out ends the source
        (the daemon exits and systemd restarts it): the camera stalled, or our own callback failed."""
        try:
            request = self._cam.capture_request(wait=CAPTURE_WAIT)
        except Exception as exc:  # TimeoutError; CancelledError when a stop flushed the queue
            if self._closed:
                return None
            self._callbacks.raise_if_failed()
            if isinstance(exc, TimeoutError):
                raise PiCameraError(f"picamera2: no frame from the camera for {CAPTURE_WAIT:g} s") from None
            raise PiCameraError(f"picamera2: capturing a frame failed: {type(exc).__name__}: {exc}") from exc
        if self._callbacks.error is not None:
            request.release()
            self._callbacks.raise_if_failed()
        return request

    def close(self) -> None:
        """Safe from any thread and idempotent; returns once the camera is stopped and closed (or was
        given STOP_WAIT and did not stop). While another thread is in frames(), that thread stops the
        camera itself when its capture returns (within CAPTURE_WAIT): a stop from here would queue
        behind that capture."""
        self._closed = True
        reader = self._reader
        if reader is not None and reader != threading.get_ident() and \
                self._stop_done.wait(CAPTURE_WAIT + STOP_WAIT + 1.0):
            return
        self._stop_camera()

    def _stop_camera(self) -> None:
        with self._stop_lock:
            started, self._stop_started = self._stop_started, True
        if started:  # another thread is stopping it: wait for that
            self._stop_done.wait(STOP_WAIT + 1.0)
            return
        try:
            worker = threading.Thread(target=self._stop_and_close, name="picamera2-stop", daemon=True)
            worker.start()
            worker.join(STOP_WAIT)
            if worker.is_alive():
                log.error("picamera2: the camera did not stop within %g s (stalled?); leaving it to the process "
                          "exit", STOP_WAIT)
        finally:
            self._stop_done.set()

    def _stop_and_close(self) -> None:
        cam = self._cam
        try:
            flush = getattr(cam, "cancel_all_and_flush", None)
            if flush is not None:
                flush()  # a capture that timed out stays queued and holds a buffer
            if self._software is None:
                cam.stop_recording()
            else:
                cam.stop()
            # What was encoded after the last capture (the hardware encoder's last frames at its stop)
            # is not recorded: the daemon has stopped reading, at most a frame or two.
        except Exception as exc:
            log.warning("picamera2: stopping the camera: %s", exc)
        finally:
            _close_quietly(cam)


class PacketQueue:
    """Encoded packets between the camera thread and the frame loop, bounded (the loop stalled for
    10 s means something is badly wrong). When full, packets are dropped up to the next keyframe, not
    one here and one there: a recording with holes mid-GOP does not decode until the next keyframe
    anyway, and the warning is logged once per overflow."""

    def __init__(self, limit: int) -> None:
        self._queue: queue.Queue[EncodedPacket] = queue.Queue(maxsize=max(1, limit))
        self._skipping = False
        self.dropped = 0

    def offer(self, pkt: EncodedPacket) -> None:
        if self._skipping and not pkt.keyframe:
            self.dropped += 1
            return
        try:
            self._queue.put_nowait(pkt)
            self._skipping = False
        except queue.Full:
            if not self._skipping:
                log.warning("picamera2: the frame loop has not collected packets for 10 s; dropping them up to "
                            "the next keyframe that fits")
            self._skipping = True
            self.dropped += 1

    def drain(self) -> list[EncodedPacket]:
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out


class CallbackGuard:
    """Our callbacks run in picamera2's camera thread, and an exception there ends that thread for
    good (picamera2 re-raises it): every capture then waits in vain, and a stop never runs. So the
    first error is kept, the callbacks do nothing more, and the frame loop fails with it."""

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def wrap(self, callback: Any) -> Any:
        def guarded(request: Any) -> None:
            if self.error is not None:
                return
            try:
                callback(request)
            except Exception as exc:
                self.error = exc
                log.error("picamera2: our camera-thread callback failed: %s: %s", type(exc).__name__, exc)

        return guarded

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise PiCameraError(f"picamera2: encoding or masking a frame failed: {type(self.error).__name__}: "
                                f"{self.error}") from self.error


def _close_quietly(cam: Any) -> None:
    if cam is None:
        return
    try:
        cam.close()
    except Exception as exc:
        log.warning("picamera2: closing the camera: %s", exc)


def _masking(y_idx: np.ndarray, uv_idx: np.ndarray) -> Any:
    from picamera2 import MappedArray  # type: ignore[import-not-found]

    def blank(request: Any) -> None:
        with MappedArray(request, "main") as m:
            apply_yuv420_mask(m.array, y_idx, uv_idx)

    return blank


def _software_encoding(encoder: Any, packets: PacketQueue, stride: int,
                       mask: tuple[np.ndarray, np.ndarray] | None) -> Any:
    """pre_callback for a Pi without a hardware encoder: mask, then encode every frame, in the camera
    thread (so a slow frame loop never costs recorded frames). Timestamps from the sensor."""
    from picamera2 import MappedArray  # type: ignore[import-not-found]

    first: list[int] = []

    def encode(request: Any) -> None:
        sensor_ns = int(request.get_metadata().get("SensorTimestamp") or time.monotonic_ns())
        if not first:
            first.append(sensor_ns)
        pts = _pts(sensor_ns - first[0], 1_000_000_000)
        with MappedArray(request, "main") as m:
            if mask is not None:
                apply_yuv420_mask(m.array, *mask)
            for pkt in encoder.encode_i420(m.array, stride, time.time(), pts):
                packets.offer(pkt)

    return encode


def _pts(elapsed: int, units_per_second: int) -> int:
    """90 kHz time of `elapsed` sensor time units, rounded (1/15 s is 6000, not 5999)."""
    return (elapsed * PTS_HZ + units_per_second // 2) // units_per_second


def _hardware_encoder(bitrate: int, gop: int, fps: float) -> Any:
    from picamera2.encoders import H264Encoder  # type: ignore[import-not-found]

    # repeat: SPS/PPS before every keyframe, so each clip (and segment) starts decodable.
    # framerate (newer picamera2) lets the encoder pick the H.264 level for high rates.
    try:
        return H264Encoder(bitrate=bitrate, repeat=True, iperiod=gop, framerate=fps)
    except TypeError as exc:  # picamera2 before framerate= (the rate then comes from the camera alone)
        if "framerate" not in str(exc):
            raise
        return H264Encoder(bitrate=bitrate, repeat=True, iperiod=gop)


def _make_output(packets: PacketQueue) -> Any:
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
            pts = _pts(ts - self._t0, 1_000_000)
            packets.offer(EncodedPacket(pts=pts, keyframe=bool(keyframe), data=bytes(frame), time=time.time()))

    return _PacketOutput()
