"""An IP camera's two streams: its main stream recorded as it arrives, its substream for the detector.

Copying the main stream (edge.capture.stream_copy) still decodes every main picture to make the
detection plane, and at 1080p that decoding is most of the work (4-6 ms a picture on the development
machine, several times that on a Pi). IP cameras also send a small substream of the same scene
(typically 640x360 or smaller). With `camera.detect_device` set to it, the main stream is only read
and copied, never decoded, and the detector sees the substream's pictures.

A reader thread takes the main stream's packets as they arrive and stamps them with the wall clock;
the frame loop decodes the substream and hands each picture over with the main packets read since
the last one. Both are timed by the wall clock at arrival, so an event and its pre-roll line up to
within the two streams' difference in latency (usually well under a second; the pre-roll covers it).
When either stream ends or stops sending, the source ends: a camera that lost one of its streams is
restarted whole (the daemon exits with status 1 and systemd starts it again).
"""

from __future__ import annotations

import contextlib
import fractions
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from edge.capture.frames import PTS_HZ, CapturedFrame, EncodedPacket
from edge.capture.opencv_source import CameraOpenError, frame_luma, is_stream_url, without_credentials
from edge.capture.stream_copy import (
    ANNEX_B_FILTERS,
    OPEN_TIMEOUT,
    READ_TIMEOUT,
    CatchUp,
    Timeline,
    open_input,
    recordable,
    stamped,
)

log = logging.getLogger("consentcam.capture")

# Main packets waiting for the next substream picture. A substream that stalls ends the source within
# READ_TIMEOUT; this only bounds RAM if the frame loop itself stalls (the systemd watchdog's business).
MAX_WAITING_BYTES = 64 * 1024 * 1024


class DualStreamError(CameraOpenError):
    pass


def _rate(stream: Any, default: float) -> float:
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate and 0 < float(rate) <= 240 else default


class DualStreamCamera:
    name = "opencv-dual"

    def __init__(self, device: str, detect_device: str, *, detect_size: tuple[int, int], fps: float,
                 open_timeout: float = OPEN_TIMEOUT, read_timeout: float = READ_TIMEOUT) -> None:
        import av

        if not (is_stream_url(device) and is_stream_url(detect_device)):
            raise DualStreamError("camera.detect_device is for IP cameras: device and detect_device must both be "
                                  "rtsp:// or http(s):// streams")
        self._av = av
        self.device, self.detect_device = device, detect_device
        self.shown, self.detect_shown = without_credentials(device), without_credentials(detect_device)
        self.detect_size = detect_size
        timeouts = (open_timeout, read_timeout)
        self._main, self._main_stream = open_input(device, timeouts, h264=True)
        try:
            self._sub, self._sub_stream = open_input(detect_device, timeouts, h264=False)
        except Exception:
            self._main.close()
            raise
        try:
            self._filters = av.BitStreamFilterContext(ANNEX_B_FILTERS, self._main_stream)
        except Exception:
            self._main.close()
            self._sub.close()
            raise
        stream = self._main_stream
        self.fps = _rate(stream, fps)  # the recording's
        self.detect_fps = _rate(self._sub_stream, self.fps)  # the detector's: the substream's own rate
        self.width, self.height = stream.codec_context.width, stream.codec_context.height
        sub = self._sub_stream.codec_context
        self.detect_source_size = (sub.width, sub.height)
        self._timeline = Timeline(stream.time_base or fractions.Fraction(1, PTS_HZ), self.fps)
        self._waiting: deque[EncodedPacket] = deque()
        self._waiting_bytes = 0
        self._lock = threading.Lock()
        self._main_ended = threading.Event()
        self._closed = threading.Event()
        self._busy = False
        self._sub_closed = False
        self.dropped_main_packets = 0
        self.decode_errors = 0
        self._catch_up = CatchUp(detect_device)
        self._reader = threading.Thread(target=self._read_main, name="main-stream", daemon=True)
        self._reader.start()

    @property
    def skipped_pictures(self) -> int:
        return self._catch_up.skipped

    # -- the main stream: read and copied, never decoded ---------------------------------------------

    def _read_main(self) -> None:
        try:
            for packet in self._main.demux(self._main_stream):
                if self._closed.is_set():
                    break
                if packet.size:
                    self._hand_over(stamped(recordable(packet, self._filters, self._timeline), time.time()))
        except self._av.FFmpegError as exc:
            if not self._closed.is_set():
                log.warning("%s: stopped reading the main stream: %s", self.shown, without_credentials(str(exc)))
        finally:
            self._main_ended.set()
            with contextlib.suppress(self._av.FFmpegError, OSError):
                self._main.close()

    def _hand_over(self, packets: list[EncodedPacket]) -> None:
        with self._lock:
            for p in packets:
                self._waiting.append(p)
                self._waiting_bytes += len(p.data)
            dropped = 0
            # Whole GOPs, oldest first: what stays must start at a keyframe to decode.
            while self._waiting_bytes > MAX_WAITING_BYTES or (dropped and self._waiting
                                                               and not self._waiting[0].keyframe):
                self._waiting_bytes -= len(self._waiting.popleft().data)
                dropped += 1
            self.dropped_main_packets += dropped
        if dropped:
            log.error("%s: the frame loop is not taking the main stream's packets: %d dropped (%d in all)",
                      self.shown, dropped, self.dropped_main_packets)

    def _take(self) -> list[EncodedPacket]:
        with self._lock:
            out = list(self._waiting)
            self._waiting.clear()
            self._waiting_bytes = 0
        return out

    # -- the substream: decoded for the detector ------------------------------------------------------

    def frames(self) -> Iterator[CapturedFrame]:
        with self._lock:
            if self._closed.is_set():
                return
            self._busy = True
        n = 0
        try:
            for packet in self._sub.demux(self._sub_stream):
                if self._closed.is_set() or self._main_ended.is_set():
                    break
                if packet.size and self._catch_up.skip(packet):
                    # too slow for the substream: the main packets go on, this picture stays undecoded
                    yield CapturedFrame(time=time.time(), luma=None, packets=self._take(), index=n,
                                        monotonic=time.monotonic())
                    n += 1
                    continue
                for frame in self._decode(packet):
                    yield CapturedFrame(time=time.time(), luma=frame_luma(frame, self.detect_size),
                                        packets=self._take(), index=n, monotonic=time.monotonic())
                    n += 1
        except self._av.FFmpegError as exc:
            log.warning("%s: stopped reading the substream: %s", self.detect_shown, without_credentials(str(exc)))
        finally:
            with self._lock:
                self._busy = False
            self._close_sub()
        if self._closed.is_set():  # close() from outside: shutting down, nothing more to hand over
            return
        if self._main_ended.is_set():
            log.warning("%s: the main stream ended", self.shown)
        self._closed.set()
        self._reader.join(READ_TIMEOUT + 1.0)
        rest = self._take()  # what the main stream sent after the last substream picture
        if rest:
            yield CapturedFrame(time=time.time(), luma=None, packets=rest, index=n, monotonic=time.monotonic())

    def _decode(self, packet: Any) -> list[Any]:
        try:
            return list(packet.decode())
        except self._av.FFmpegError as exc:
            self.decode_errors += 1
            if self.decode_errors in (1, 10, 100) or self.decode_errors % 1000 == 0:
                log.warning("%s: %d packet(s) did not decode (%s)", self.detect_shown, self.decode_errors,
                            without_credentials(str(exc)))
            return []

    def _close_sub(self) -> None:
        with self._lock:  # once, whichever thread gets here first
            if self._sub_closed:
                return
            self._sub_closed = True
        with contextlib.suppress(self._av.FFmpegError, OSError):
            self._sub.close()

    def close(self) -> None:
        # The reader thread and the frame loop each close their own input when they see this; a stuck
        # network read ends within READ_TIMEOUT.
        self._closed.set()
        with self._lock:
            busy = self._busy
        if not busy:
            self._close_sub()
