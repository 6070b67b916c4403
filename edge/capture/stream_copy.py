"""Recording an IP camera's (or a video file's) own H.264 or H.265, untouched: no re-encoding.

A camera that sends H.264 or H.265 has already done the expensive work. The `encode` path decodes
every picture to BGR and encodes it again with libx264: at 1080p that is most of a Raspberry Pi's
CPU, and the recording loses quality. Here the camera's packets go to the recorder as they arrived,
so the vault holds the camera's own bitstream, and each packet is decoded once, for the detection
plane only.

Packets are rewritten to Annex B with the parameter sets (SPS/PPS; for H.265 also the VPS) before
every keyframe, FFmpeg's `h264_mp4toannexb` (`hevc_mp4toannexb`) and `dump_extra` bitstream filters:
MP4 files carry them out of band, and some cameras send them only once. The filters change how the
units are framed and never the pictures: decoding the recording gives the source's pictures bit for
bit (tests/test_stream_copy.py).

Timestamps: presentation and decoding times come from the stream (B-frames keep their order),
shifted to start at 0 and kept continuous across file rewinds and camera restarts. A packet's
`time` is the time of the frame it was decoded with: the wall clock for streams, the file's own
clock (FileClock) for files, the same clock the detector's events use.

Privacy masks must be drawn into the pictures, so with a mask the daemon re-encodes instead
(`camera.record`, edge.capture.open_camera).
"""

from __future__ import annotations

import contextlib
import fractions
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from edge.capture.frames import PTS_HZ, CapturedFrame, EncodedPacket
from edge.capture.open_errors import open_container
from edge.capture.opencv_source import (
    STREAM_OPEN_TIMEOUT,
    STREAM_READ_TIMEOUT,
    CameraOpenError,
    FileClock,
    check_file_path,
    check_video_file,
    decode_single_threaded,
    frame_luma,
    is_stream_url,
)
from edge.capture.reconnect import RECONNECT_FOR, CameraChanged, reconnect
from edge.redact import without_credentials

log = logging.getLogger("consentcam.capture")

# Network sources: give up opening after OPEN_TIMEOUT; a stream that sends nothing for READ_TIMEOUT
# is lost (and reconnected: edge.capture.reconnect). A read cannot be interrupted, so READ_TIMEOUT must
# stay well inside the daemon's 10 s shutdown, which closes the camera after 1 s. (The OpenCV sources
# use the same bounds.)
OPEN_TIMEOUT, READ_TIMEOUT = STREAM_OPEN_TIMEOUT, STREAM_READ_TIMEOUT
# A timestamp more than this far ahead of the last one is a camera restart, not a gap to keep.
MAX_JUMP_SECONDS = 10.0
# Live sources: behind the camera by more than FALL_BEHIND seconds, stop decoding (packets are still
# recorded, every one) until a keyframe that arrives within CAUGHT_UP of its time.
FALL_BEHIND = 0.5
CAUGHT_UP = 0.25
# What can be recorded as it arrives, and the bitstream filters that make it Annex B with the parameter
# sets (H.265: VPS/SPS/PPS) before every keyframe.
ANNEX_B_FILTERS = {
    "h264": "h264_mp4toannexb,dump_extra=freq=keyframe",
    "hevc": "hevc_mp4toannexb,dump_extra=freq=keyframe",
}


class NotCopyable(CameraOpenError):
    """The source opened, but its video cannot be recorded as it is (not H.264 or H.265)."""


@dataclass(frozen=True)
class _Raw:
    data: bytes
    pts: int
    dts: int
    keyframe: bool


class Timeline:
    """Stream timestamps (in the stream's time base) -> the recorder's 90 kHz clock, starting at 0.

    Decoding times stay strictly increasing: a timestamp that goes back (a file starting again, a
    camera that restarted) or jumps more than MAX_JUMP_SECONDS ahead continues one frame after the
    last one, and later timestamps keep their spacing from there. Presentation times move with the
    same shift, so B-frames keep their order. A packet without a decoding time is taken to be in
    display order (no B-frames); FFmpeg's file and RTSP demuxers give decoding times to B-frame
    streams (tests/test_stream_copy.py)."""

    def __init__(self, time_base: fractions.Fraction, fps: float, *, after: int | None = None) -> None:
        # after: the last decoding time of a timeline this one continues (a reconnected stream)
        self.scale = time_base * PTS_HZ
        self.step = max(1, round(PTS_HZ / fps))
        self._offset: int | None = None
        self.last_dts: int | None = after  # carried through a connection that sent nothing

    def convert(self, pts: int | None, dts: int | None) -> tuple[int, int]:
        if dts is None:
            dts = pts
        if dts is None:  # no timestamps at all: one frame after the last
            nxt = 0 if self.last_dts is None else self.last_dts + self.step
            self.last_dts = nxt
            return nxt, nxt
        raw_dts = round(dts * self.scale)
        raw_pts = round(pts * self.scale) if pts is not None else raw_dts
        if self._offset is None:  # the first timestamp: 0, or one frame after what came before
            self._offset = -raw_dts if self.last_dts is None else self.last_dts + self.step - raw_dts
        out = raw_dts + self._offset
        last = self.last_dts
        if last is not None and (out <= last or out - last > MAX_JUMP_SECONDS * PTS_HZ):
            self._offset += last + self.step - out
            out = last + self.step
        self.last_dts = out
        return max(raw_pts + self._offset, out), out


def stream_rate(stream: Any, default: float) -> float:
    """A stream's own frame rate, or `default` where it gives none that is plausible."""
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate and 0 < float(rate) <= 240 else default


def open_input(device: str, timeouts: tuple[float, float], *, copy: bool) -> tuple[Any, Any]:
    """(container, first video stream) of a file or stream URL; `copy`: video that cannot be recorded
    as it is (ANNEX_B_FILTERS) is NotCopyable."""
    shown = without_credentials(device)
    container = open_container(device, timeouts)
    if not container.streams.video:
        container.close()
        raise CameraOpenError(f"{shown}: has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        container.close()
        raise CameraOpenError(f"{shown}: no decoder for its video")
    codec = stream.codec_context.name
    if copy and codec not in ANNEX_B_FILTERS:
        container.close()
        raise NotCopyable(f"{shown}: sends {codec} video; only H.264 and H.265 can be recorded as they are")
    decode_single_threaded(stream)
    return container, stream


def annex_b_filters(stream: Any, shown: str) -> Any:
    """The bitstream filters for a stream whose packets are recorded; CameraOpenError if FFmpeg
    cannot set them up for it (so a reconnect tries again instead of failing the frame loop)."""
    import av

    try:
        return av.BitStreamFilterContext(ANNEX_B_FILTERS[stream.codec_context.name], stream)
    except (av.FFmpegError, ValueError, KeyError) as exc:
        raise CameraOpenError(f"{shown}: cannot prepare its video for recording: {exc}") from None


def recordable(packet: Any, filters: Any, timeline: Timeline) -> list[_Raw]:
    """A demuxed packet as the recorder stores it (call after decoding it: the filters take its data)."""
    out = []
    for p in filters.filter(packet):
        pts, dts = timeline.convert(p.pts, p.dts)
        out.append(_Raw(bytes(p), pts, dts, bool(p.is_keyframe)))
    return out


def stamped(raws: list[_Raw], t: float) -> list[EncodedPacket]:
    return [EncodedPacket(pts=r.pts, keyframe=r.keyframe, data=r.data, time=t, dts=r.dts) for r in raws]


class PacketDecoder:
    """One packet's pictures. A damaged packet (lost network data) gives none and is counted: the
    recording keeps what the camera sent, the detector waits for the next picture that decodes."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.errors = 0

    def __call__(self, packet: Any) -> list[Any]:
        import av

        try:
            return list(packet.decode())
        except av.FFmpegError as exc:
            self.errors += 1
            if self.errors in (1, 10, 100) or self.errors % 1000 == 0:
                log.warning("%s: %d packet(s) did not decode (%s)", self.shown, self.errors,
                            without_credentials(str(exc)))
            return []


class LagMeter:
    """How long a live source's packets have waited for us: the time since the camera's clock says
    they were made, less the quickest arrival seen so far (the network's own delay). That floor may
    creep up by CREEP seconds per second, for a camera clock a little slower than ours. A camera clock
    that steps back (a restart, a clock correction) is a discontinuity, not slowness: the floor starts
    afresh. A step forward needs nothing: the floor follows the smaller offset at once."""

    CREEP = 0.001
    STEP_BACK = 0.5  # seconds

    def __init__(self) -> None:
        self._floor: float | None = None
        self._last = 0.0
        self._stream_last: float | None = None

    def lag(self, stream_seconds: float, now: float) -> float:
        offset = now - stream_seconds
        stepped_back = self._stream_last is not None and stream_seconds < self._stream_last - self.STEP_BACK
        if self._floor is None or stepped_back:
            self._floor = offset
        else:
            self._floor = min(self._floor + self.CREEP * max(0.0, now - self._last), offset)
        self._last = now
        self._stream_last = stream_seconds
        return offset - self._floor


class CatchUp:
    """Whether to leave a live source's next picture undecoded: from when the lag passes FALL_BEHIND
    to the first keyframe that comes within CAUGHT_UP of its time (decoding can only restart at a
    keyframe)."""

    def __init__(self, device: str) -> None:
        self.device = without_credentials(device)
        self.meter = LagMeter()
        self.active = False
        self.skipped = 0

    def restart(self) -> None:
        """A new connection: new clock, nothing to catch up."""
        self.meter = LagMeter()
        self.active = False

    def skip(self, packet: Any) -> bool:
        stamp = packet.dts if packet.dts is not None else packet.pts
        if stamp is None or packet.time_base is None:
            return False
        lag = self.meter.lag(float(stamp * packet.time_base), time.monotonic())
        if self.active:
            if packet.is_keyframe and lag <= CAUGHT_UP:
                self.active = False
                log.info("%s: caught up (%d pictures not decoded in all)", self.device, self.skipped)
        elif lag > FALL_BEHIND and not packet.is_keyframe:
            self.active = True
            log.warning("%s: %.1f s behind the camera: not decoding until a keyframe comes in time (every packet "
                        "is still recorded)", self.device, lag)
        self.skipped += self.active
        return self.active


class StreamCopyCamera:
    """Frames for the detector and the source's own H.264 or H.265 packets for the recorder."""

    name = "opencv-copy"

    def __init__(self, device: str, *, detect_size: tuple[int, int], fps: float, loop: bool = False,
                 time_origin: float | None = None, open_timeout: float = OPEN_TIMEOUT,
                 read_timeout: float = READ_TIMEOUT, reconnect_for: float = RECONNECT_FOR) -> None:
        import av

        self._av = av
        self.device = device
        self.shown = without_credentials(device)  # for messages: no camera password in the journal
        self.is_file = not is_stream_url(device)
        if self.is_file:
            check_video_file(check_file_path(device))
        self.detect_size = detect_size
        self.loop = loop and self.is_file
        self.time_origin = time_origin
        self._timeouts = (open_timeout, read_timeout)
        self._open_timeout = open_timeout
        self.reconnect_for = reconnect_for
        self._last_packet = time.monotonic()  # when the last packet arrived (reconnect's deadline)
        self._container: Any = None
        self._lock = threading.Lock()
        self._busy = False
        self._closed = threading.Event()
        self._open()
        stream = self._stream
        self.fps = stream_rate(stream, fps)
        self.width, self.height = stream.codec_context.width, stream.codec_context.height
        self.codec = stream.codec_context.name  # what is recorded: "h264" or "hevc"
        self.frame_count = int(stream.frames or 0) if self.is_file else 0
        self._timeline = Timeline(stream.time_base or fractions.Fraction(1, PTS_HZ), self.fps)
        self._decode = PacketDecoder(self.shown)
        self._catch_up = CatchUp(device)

    @property
    def skipped_pictures(self) -> int:
        """Live sources: pictures left undecoded to catch up with the camera (their packets were kept)."""
        return self._catch_up.skipped

    @property
    def decode_errors(self) -> int:
        return self._decode.errors

    def _open(self) -> None:
        self._container, self._stream = open_input(self.device, self._timeouts, copy=True)
        try:
            self._filters = annex_b_filters(self._stream, self.shown)
        except Exception:
            self._release()
            raise

    def frames(self) -> Iterator[CapturedFrame]:
        start = time.time() if self.time_origin is None else self.time_origin
        clock = FileClock(self.fps)
        counter = [0]
        with self._lock:
            if self._closed.is_set():
                return
            self._busy = True
        try:
            while not self._closed.is_set():
                first = counter[0]
                yield from self._pass(start, clock, counter)
                if self._closed.is_set():
                    break
                if self.is_file:
                    if not self.loop or counter[0] == first:
                        break
                    self._container.close()
                    self._open()
                    clock.rewind()
                elif not self._reconnect():
                    break
        finally:
            with self._lock:
                self._busy = False
                if self._closed.is_set():
                    self._release()

    def _reconnect(self) -> bool:
        """A live stream was lost: open it again (reconnect()). The recording's timestamps carry on
        (Timeline) and the lag meter starts afresh. False: give up, the source ends."""
        self._release()
        return reconnect(self.shown, self.reconnect_for, self._closed, self._reopen,
                         last_packet=lambda: self._last_packet)

    def _reopen(self, open_timeout: float) -> None:
        self._timeouts = (min(open_timeout, self._open_timeout), self._timeouts[1])
        self._open()
        if self._stream.codec_context.name != self.codec:
            codec = self._stream.codec_context.name
            self._release()
            # The recorder muxes and labels one codec; a restarted daemon picks up the new one.
            raise CameraChanged(f"{self.shown}: now sends {codec}, not {self.codec}")
        self._timeline = Timeline(self._stream.time_base or fractions.Fraction(1, PTS_HZ), self.fps,
                                  after=self._timeline.last_dts)
        self._catch_up.restart()

    def _pass(self, start: float, clock: FileClock, counter: list[int]) -> Iterator[CapturedFrame]:
        """One pass over the source: each decoded frame carries the packets read since the last one."""
        av = self._av
        pending: list[_Raw] = []
        try:
            for packet in self._container.demux(self._stream):
                if self._closed.is_set():
                    return
                if packet.size:
                    self._last_packet = time.monotonic()
                if packet.size and not self.is_file and self._catch_up.skip(packet):
                    # Too slow for this camera: record the packet, leave its picture undecoded.
                    now = time.time()
                    packets = stamped(pending + recordable(packet, self._filters, self._timeline), now)
                    pending = []
                    yield CapturedFrame(time=now, luma=None, packets=packets, index=counter[0],
                                        monotonic=time.monotonic())
                    counter[0] += 1
                    continue
                decoded = self._decode(packet)
                if packet.size:  # after decoding: the filters take the packet's data
                    pending += recordable(packet, self._filters, self._timeline)
                for frame in decoded:
                    t, mono = (start + clock.time_of(frame.time), None) if self.is_file \
                        else (time.time(), time.monotonic())
                    packets, pending = stamped(pending, t), []
                    yield CapturedFrame(time=t, luma=frame_luma(frame, self.detect_size), packets=packets,
                                        index=counter[0], monotonic=mono)
                    counter[0] += 1
        except av.FFmpegError as exc:
            log.warning("%s: stopped reading: %s", self.shown, without_credentials(str(exc)))
        if pending and not self._closed.is_set():  # packets whose pictures never came out: recorded all the same
            t, mono = (start + (clock.last or 0.0) + clock.step, None) if self.is_file \
                else (time.time(), time.monotonic())
            yield CapturedFrame(time=t, luma=None, packets=stamped(pending, t), index=counter[0], monotonic=mono)
            counter[0] += 1

    def close(self) -> None:
        # As for file sources: the frame loop frees the demuxer when close() comes mid-read from
        # another thread; a stuck network read ends within READ_TIMEOUT.
        with self._lock:
            self._closed.set()
            if not self._busy:
                self._release()

    def _release(self) -> None:
        if self._container is not None:
            with contextlib.suppress(self._av.FFmpegError, OSError):
                self._container.close()
            self._container = None
