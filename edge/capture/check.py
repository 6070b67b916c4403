"""What a camera really delivers, measured the way the daemon would read it (`consentcam camera check`).

An installer's questions, answered before a single clip is recorded: does the camera open (and if
not, why: edge.capture.open_errors), how will it be recorded (the camera's own H.264/H.265 or
re-encoded), at what size, rate and bit rate, how far apart its keyframes are (a clip starts at the
keyframe before its pre-roll), what the detector gets, and what reading it costs this machine.
Nothing is recorded: packets are counted and dropped, and no vault is opened.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from edge.capture.frames import PTS_HZ, CapturedFrame
from edge.errors import ConsentcamError
from edge.motion.detector import TUNED_FPS
from edge.redact import without_credentials

log = logging.getLogger("consentcam.capture")

LOW_DETECT_FPS = 12.0  # below this, the owner is told to raise the (sub)stream's rate
LONG_KEYFRAME_INTERVAL = 4.0  # seconds; cameras default to 1-2 s, some to 10 s or more
BUSY_CORE_SHARE = 0.5  # reading the camera alone takes more than this share of one core: say so
CLOSE_GRACE = 10.0  # seconds past the measurement before a camera still being read is closed
# Seconds without a frame, once one came, after which a camera is given up on (an ended stream
# reconnecting). A little over the Pi backend's CAPTURE_WAIT, so its own, more precise error wins. The
# first frame may take longer: an H.264 stream shows nothing before its first keyframe.
STALL = 6.0
BURST = 1.0  # seconds at the start of reading a stream left out of its arrival rate


@dataclass
class Measurement:
    seconds: float = 0.0  # wall time spent reading
    frames: int = 0
    pictures: int = 0  # frames the detector would see (the others were skipped to keep up)
    packets: int = 0
    bytes: int = 0
    first_frame_s: float | None = None  # from the start of reading to the first frame
    stream_seconds: float = 0.0  # span of the recorded packets' timestamps
    keyframe_interval_s: float | None = None  # mean spacing of keyframes, where two or more arrived
    cpu_ms_per_frame: float = 0.0  # this process's CPU time (decoding, shrinking, encoding) per frame
    keyframes: int = 0
    ended: bool = False  # the source ran out of frames before the measurement was over
    cut_short: bool = False  # the watchdog ended it: silent for STALL s, or still going at seconds + CLOSE_GRACE
    error: str | None = None  # why the source failed during the measurement

    arrivals: list[float] = field(default_factory=list, repr=False)  # seconds from the start of reading

    @property
    def arrival_fps(self) -> float:
        """Frames per second of wall time, not counting the first second: opening a stream reads ahead
        (FFmpeg probes it), and those frames come in a burst."""
        if self.seconds >= 2 * BURST:
            return sum(t > BURST for t in self.arrivals) / (self.seconds - BURST)
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def bitrate_kbps(self) -> float:
        return self.bytes * 8 / self.stream_seconds / 1000 if self.stream_seconds > 0 else 0.0


@dataclass
class Packets:
    """Running statistics of recorded packets (their timestamps, sizes and keyframes)."""

    count: int = 0
    bytes: int = 0
    first_pts: int | None = None
    last_pts: int | None = None
    keyframes: list[int] = field(default_factory=list)

    def add(self, frame: CapturedFrame) -> None:
        for p in frame.packets:
            self.count += 1
            self.bytes += len(p.data)
            self.first_pts = p.pts if self.first_pts is None else min(self.first_pts, p.pts)
            self.last_pts = p.pts if self.last_pts is None else max(self.last_pts, p.pts)
            if p.keyframe:
                self.keyframes.append(p.pts)

    def span_seconds(self, fps: float) -> float:
        if self.first_pts is None or self.last_pts is None:
            return 0.0
        # the last packet lasts one frame too
        return (self.last_pts - self.first_pts) / PTS_HZ + (1.0 / fps if fps > 0 else 0.0)

    def keyframe_interval(self) -> float | None:
        if len(self.keyframes) < 2:
            return None
        return (self.keyframes[-1] - self.keyframes[0]) / PTS_HZ / (len(self.keyframes) - 1)


def measure(camera: Any, seconds: float, fps: float, *, live: bool) -> Measurement:
    """Read `camera` for `seconds` (a live camera: of wall time; a file: of its frames, read as fast as
    they decode), then close it. A watchdog closes a camera that sends nothing for STALL seconds (a
    stream that ended and is being reconnected, one that never starts) or is still being read
    CLOSE_GRACE seconds after the measurement should have ended."""
    out, stats = Measurement(), Packets()
    budget = max(1, round(seconds * fps)) if fps > 0 and not live else None
    start_wall, start_cpu = time.monotonic(), time.process_time()
    last = [start_wall]  # the last frame's arrival, for the watchdog
    expired, finished = threading.Event(), threading.Event()

    def watch() -> None:
        while not finished.wait(0.25):
            now = time.monotonic()
            silent = out.frames > 0 and now - last[0] > STALL
            if silent or now - start_wall > seconds + CLOSE_GRACE:
                expired.set()
                try:
                    camera.close()  # every source may be closed from another thread (see their close())
                except Exception as exc:
                    log.warning("camera check: closing the camera: %s", without_credentials(str(exc)))
                return

    watchdog = threading.Thread(target=watch, name="camera-check-watchdog", daemon=True)
    watchdog.start()
    out.ended = True  # until the loop stops early by itself
    frames = camera.frames()
    try:
        for frame in frames:
            now = time.monotonic()
            last[0] = now
            if out.first_frame_s is None:
                out.first_frame_s = now - start_wall
            out.arrivals.append(now - start_wall)
            out.frames += 1
            out.pictures += frame.luma is not None
            stats.add(frame)
            if (budget is not None and out.frames >= budget) or now - start_wall >= seconds:
                out.ended = False
                break
    except Exception as exc:  # the camera failed: what was measured so far still counts
        # (also when the watchdog closed it meanwhile: the source's own reason says more than "silent")
        text = str(exc) if isinstance(exc, ConsentcamError) else f"{type(exc).__name__}: {exc}"
        out.error = without_credentials(text)
    finally:
        frames.close()  # the source's own clean-up runs now, not whenever the generator is collected
        finished.set()
        watchdog.join(1.0)
        out.seconds = time.monotonic() - start_wall
        out.cut_short = expired.is_set()
        cpu = time.process_time() - start_cpu
        if not expired.is_set():
            camera.close()
    out.packets, out.bytes = stats.count, stats.bytes
    out.stream_seconds = stats.span_seconds(fps)
    out.keyframe_interval_s = stats.keyframe_interval()
    out.keyframes = len(stats.keyframes)
    out.cpu_ms_per_frame = cpu * 1000 / out.frames if out.frames else 0.0
    return out


def advice(m: Measurement, *, fps: float, detect_fps: float, live: bool, keyframes_from_camera: bool,
           rate_from_camera: bool = True) -> list[str]:
    """What the owner should change, in words (empty: nothing). rate_from_camera False: `fps` is
    camera.fps, the source does not say its own (an HTTP stream)."""
    notes = []
    fix_gop = ("set its I-frame interval (GOP) to 1-2 s; a clip starts at the keyframe before its pre-roll, so "
               "clips start that much earlier and the pre-roll held in RAM grows")
    if keyframes_from_camera and m.keyframe_interval_s is not None and m.keyframe_interval_s > LONG_KEYFRAME_INTERVAL:
        notes.append(f"the camera sends a keyframe every {m.keyframe_interval_s:.1f} s: {fix_gop}")
    elif keyframes_from_camera and m.keyframes < 2 and m.stream_seconds > LONG_KEYFRAME_INTERVAL:
        notes.append(f"fewer than two keyframes in {m.stream_seconds:.1f} s: the camera's keyframe interval is longer "
                     f"than that; {fix_gop}")
    if 0 < detect_fps < LOW_DETECT_FPS:
        notes.append(f"the detector gets {detect_fps:g} frames per second; it was tuned at {TUNED_FPS:g} and "
                     "confirms subjects later, or misses more, below that (docs/MOTION.md, Honest limits: frame rate): "
                     "set the stream (or substream) to 15 fps or more")
    if live and not rate_from_camera and fps > 0 and m.seconds >= 2 and not 0.8 * fps <= m.arrival_fps <= 1.25 * fps:
        notes.append(f"the camera sends about {m.arrival_fps:.1f} pictures a second, but camera.fps is {fps:g}: this "
                     "stream does not say its own rate, so set camera.fps to what it sends (the detector is tuned by "
                     "it; the recording is timed as pictures arrive either way)")
    elif live and fps > 0 and m.seconds >= 2 and m.arrival_fps < 0.8 * fps:
        notes.append(f"frames arrive at {m.arrival_fps:.1f} per second, but the stream says {fps:g}: a weak "
                     "network link (Wi-Fi), or a camera that lowers its rate in the dark")
    if m.pictures < m.frames:
        notes.append(f"{m.frames - m.pictures} of {m.frames} pictures were not decoded to keep up with the camera "
                     "(every packet would still be recorded): this machine is too slow for the stream; use the "
                     "camera's substream for the detector (camera.detect_device)")
    if not live and m.cut_short:
        notes.append(f"the check ran out of time after {m.frames} frames ({m.stream_seconds:.1f} s of the file): "
                     "this machine decodes it slower than its own frame rate")
    share = m.cpu_ms_per_frame * fps / 1000 if fps > 0 else 0.0
    if share > BUSY_CORE_SHARE:
        notes.append(f"reading the camera takes {share:.0%} of one core here, before the detector: use the camera's "
                     "substream for the detector (camera.detect_device), or a smaller stream")
    return notes
