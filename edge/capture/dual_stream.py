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
When either stream ends or stops sending, both are opened again, as a single stream is
(edge.capture.reconnect); if they do not come back, the source ends and the daemon exits with
status 1 for systemd to restart it.
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
from edge.capture.opencv_source import CameraOpenError, frame_luma, is_stream_url
from edge.capture.reconnect import RECONNECT_FOR, CameraChanged, reconnect
from edge.capture.stream_copy import (
    OPEN_TIMEOUT,
    READ_TIMEOUT,
    CatchUp,
    PacketDecoder,
    Timeline,
    annex_b_filters,
    open_input,
    recordable,
    stamped,
    stream_rate,
)
from edge.redact import without_credentials

log = logging.getLogger("consentcam.capture")

# Main packets waiting for the next substream picture. A substream that stalls ends the source within
# READ_TIMEOUT; this only bounds RAM if the frame loop itself stalls (the systemd watchdog's business).
MAX_WAITING_BYTES = 64 * 1024 * 1024


class DualStreamError(CameraOpenError):
    pass


class _Connection:
    """Both streams, opened once: the main stream's reader thread and the substream's demuxer."""

    def __init__(self, main: tuple[Any, Any], sub: tuple[Any, Any], filters: Any, timeline: Timeline) -> None:
        self.main, self.main_stream = main
        self.sub, self.sub_stream = sub
        self.filters, self.timeline = filters, timeline
        self.ended = threading.Event()  # the main stream ended (the reader thread is done)
        self.over = threading.Event()  # stop reading the main stream
        self.sub_closed = False
        self.reader: threading.Thread | None = None


class DualStreamCamera:
    name = "opencv-dual"

    def __init__(self, device: str, detect_device: str, *, detect_size: tuple[int, int], fps: float,
                 open_timeout: float = OPEN_TIMEOUT, read_timeout: float = READ_TIMEOUT,
                 reconnect_for: float = RECONNECT_FOR) -> None:
        import av

        if not (is_stream_url(device) and is_stream_url(detect_device)):
            raise DualStreamError("camera.detect_device is for IP cameras: device and detect_device must both be "
                                  "rtsp:// or http(s):// streams")
        self._av = av
        self.device, self.detect_device = device, detect_device
        self.shown, self.detect_shown = without_credentials(device), without_credentials(detect_device)
        self.detect_size = detect_size
        self.reconnect_for = reconnect_for
        self._open_timeout, self._read_timeout = open_timeout, read_timeout
        # when the last main / substream packet arrived: the reconnect budget runs from the older
        self._last_packet = self._last_sub_packet = time.monotonic()
        self._waiting: deque[EncodedPacket] = deque()
        self._waiting_bytes = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._busy = False
        self.dropped_main_packets = 0
        self._decode = PacketDecoder(self.detect_shown)
        self._catch_up = CatchUp(detect_device)
        self._use(self._connect((open_timeout, read_timeout), fps, after=None))
        stream = self._conn.main_stream
        self.fps = stream_rate(stream, fps)  # the recording's
        self.detect_fps = stream_rate(self._conn.sub_stream, self.fps)  # the detector's: the substream's own rate
        self.width, self.height = stream.codec_context.width, stream.codec_context.height
        self.codec = stream.codec_context.name  # what is recorded: "h264" or "hevc"
        sub = self._conn.sub_stream.codec_context
        self.detect_source_size = (sub.width, sub.height)

    @property
    def skipped_pictures(self) -> int:
        return self._catch_up.skipped

    @property
    def decode_errors(self) -> int:
        return self._decode.errors

    def _connect(self, timeouts: tuple[float, float], fps: float, *, after: int | None) -> _Connection:
        main = open_input(self.device, timeouts, copy=True)
        try:
            sub = open_input(self.detect_device, timeouts, copy=False)
        except Exception:
            main[0].close()
            raise
        try:
            filters = annex_b_filters(main[1], self.shown)
        except Exception:
            main[0].close()
            sub[0].close()
            raise
        timeline = Timeline(main[1].time_base or fractions.Fraction(1, PTS_HZ), stream_rate(main[1], fps), after=after)
        return _Connection(main, sub, filters, timeline)

    def _use(self, conn: _Connection) -> None:
        """Make conn the current connection, then start reading its main stream (in that order: the
        reader hands packets only to the current connection)."""
        with self._lock:
            self._conn = conn
        conn.reader = threading.Thread(target=self._read_main, args=(conn,), name="main-stream", daemon=True)
        conn.reader.start()

    # -- the main stream: read and copied, never decoded ---------------------------------------------

    def _read_main(self, conn: _Connection) -> None:
        try:
            for packet in conn.main.demux(conn.main_stream):
                if self._closed.is_set() or conn.over.is_set():
                    break
                if packet.size:
                    self._last_packet = time.monotonic()
                    self._hand_over(conn, stamped(recordable(packet, conn.filters, conn.timeline), time.time()))
        except self._av.FFmpegError as exc:
            if not (self._closed.is_set() or conn.over.is_set()):
                log.warning("%s: stopped reading the main stream: %s", self.shown, without_credentials(str(exc)))
        finally:
            conn.ended.set()
            with contextlib.suppress(self._av.FFmpegError, OSError):
                conn.main.close()

    def _hand_over(self, conn: _Connection, packets: list[EncodedPacket]) -> None:
        with self._lock:
            if conn is not self._conn or conn.over.is_set():
                return  # a late packet of a connection already given up: its session has ended
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
        counter = [0]
        try:
            while True:
                conn = self._conn
                yield from self._session(conn, counter)
                if self._closed.is_set():  # close() from outside: shutting down
                    return
                conn.over.set()
                if conn.reader is not None:
                    conn.reader.join(self._read_timeout + 1.0)
                rest = self._take()  # what the main stream sent after the last substream picture
                if rest:
                    yield CapturedFrame(time=time.time(), luma=None, packets=rest, index=counter[0],
                                        monotonic=time.monotonic())
                    counter[0] += 1
                self._close_sub(conn)
                if not self._reconnect():
                    return
        finally:
            with self._lock:
                self._busy = False
            self._conn.over.set()
            self._close_sub(self._conn)

    def _session(self, conn: _Connection, counter: list[int]) -> Iterator[CapturedFrame]:
        """Substream pictures, each with the main packets read since the last, until either stream ends."""
        if self._closed.is_set():
            return
        try:
            for packet in conn.sub.demux(conn.sub_stream):
                if self._closed.is_set():
                    return
                if conn.ended.is_set():
                    log.warning("%s: the main stream ended", self.shown)
                    return
                if packet.size:
                    self._last_sub_packet = time.monotonic()
                if packet.size and self._catch_up.skip(packet):
                    # too slow for the substream: the main packets go on, this picture stays undecoded
                    yield CapturedFrame(time=time.time(), luma=None, packets=self._take(), index=counter[0],
                                        monotonic=time.monotonic())
                    counter[0] += 1
                    continue
                for frame in self._decode(packet):
                    yield CapturedFrame(time=time.time(), luma=frame_luma(frame, self.detect_size),
                                        packets=self._take(), index=counter[0], monotonic=time.monotonic())
                    counter[0] += 1
        except self._av.FFmpegError as exc:
            log.warning("%s: stopped reading the substream: %s", self.detect_shown, without_credentials(str(exc)))

    def _reconnect(self) -> bool:
        """Either stream was lost: open both again (edge.capture.reconnect). False: give up."""
        return reconnect(self.shown, self.reconnect_for, self._closed, self._reopen,
                         last_packet=lambda: min(self._last_packet, self._last_sub_packet), opens=2)

    def _reopen(self, open_timeout: float) -> None:
        conn = self._connect((min(open_timeout, self._open_timeout), self._read_timeout), self.fps,
                             after=self._conn.timeline.last_dts)
        codec = conn.main_stream.codec_context.name
        if codec != self.codec:
            # The recorder muxes and labels one codec; a restarted daemon picks up the new one.
            conn.main.close()
            conn.sub.close()
            raise CameraChanged(f"{self.shown}: now sends {codec}, not {self.codec}")
        self._catch_up.restart()
        self._use(conn)

    def _close_sub(self, conn: _Connection) -> None:
        with self._lock:  # once, whichever thread gets here first
            if conn.sub_closed:
                return
            conn.sub_closed = True
        with contextlib.suppress(self._av.FFmpegError, OSError):
            conn.sub.close()

    def close(self) -> None:
        # The reader thread and the frame loop each close their own input when they see this; a stuck
        # network read ends within READ_TIMEOUT. The reader is waited for: a process that exits while
        # it is still inside the demuxer crashed at exit (SIGSEGV after `camera check` had printed its
        # report, about one run in four).
        self._closed.set()
        with self._lock:
            busy, conn = self._busy, self._conn
        if not busy:
            conn.over.set()
            self._close_sub(conn)
        reader = conn.reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(self._read_timeout + 1.0)
