"""H.264 (or H.265) packets -> MPEG-TS bytes, written straight into the vault's encrypting ClipWriter.

MPEG-TS because it survives truncation at any byte and segments simply concatenate: a clip cut
short by a crash still plays. `flush_packets` makes PyAV hand over each packet's bytes at once,
so `boundary()` is called with everything before the keyframe already written: vault segments
then start at GOP boundaries.

Errors from the sink (a full disk, an I/O error) are caught here and remembered instead of being
raised through FFmpeg: the recorder checks `failed` and decides what to do.
"""

from __future__ import annotations

import fractions
import io
import logging
from typing import Any, Protocol

import av

from edge.capture.frames import PTS_HZ, EncodedPacket

log = logging.getLogger("consentcam.recording")


class ClipSink(Protocol):
    def write(self, data: bytes) -> None: ...

    def boundary(self) -> None: ...


class _SinkIO(io.RawIOBase):
    """The file object PyAV writes to; forwards to the sink and swallows (but keeps) its errors."""

    def __init__(self, sink: ClipSink) -> None:
        super().__init__()
        self.sink = sink
        self.error: BaseException | None = None
        self.written = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        n = len(data)
        if self.error is None:
            try:
                self.sink.write(bytes(data))
                self.written += n
            except Exception as exc:  # the recorder must never die on a storage error
                self.error = exc
        return n

    def boundary(self) -> None:
        if self.error is None:
            try:
                self.sink.boundary()
            except Exception as exc:
                self.error = exc


class TsMuxer:
    def __init__(self, sink: ClipSink, width: int, height: int, fps: float, codec: str = "h264") -> None:
        # codec: "h264", or "hevc" for an H.265 camera recorded as it arrives (edge.capture.stream_copy)
        self._io = _SinkIO(sink)
        self._container = av.open(self._io, "w", format="mpegts", options={"flush_packets": "1"})
        rate = fractions.Fraction(round(fps * 1000), 1000)
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.time_base = fractions.Fraction(1, PTS_HZ)
        self._tb = fractions.Fraction(1, PTS_HZ)
        self._last_dts: int | None = None
        self.packets = 0
        self.first_time: float | None = None
        self.last_time: float | None = None
        self._closed = False

    @property
    def failed(self) -> BaseException | None:
        return self._io.error

    @property
    def bytes_written(self) -> int:
        return self._io.written

    def write(self, pkt: EncodedPacket) -> None:
        if self._closed or self._io.error is not None:
            return
        if pkt.keyframe and self.packets:
            self._io.boundary()  # everything before this keyframe is already in the sink
        dts = pkt.pts if pkt.dts is None else pkt.dts
        if self._last_dts is not None and dts <= self._last_dts:
            dts = self._last_dts + 1  # muxers insist on strictly increasing timestamps
        packet = av.Packet(pkt.data)
        packet.dts = dts
        packet.pts = max(pkt.pts, dts)  # never shown before it is decoded
        packet.is_keyframe = pkt.keyframe
        packet.time_base = self._tb
        packet.stream = self._stream
        try:
            self._container.mux(packet)
        except (av.FFmpegError, OSError, ValueError) as exc:
            if self._io.error is None:
                self._io.error = exc
            return
        self._last_dts = dts
        self.packets += 1
        if self.first_time is None:
            self.first_time = pkt.time
        self.last_time = pkt.time

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except (av.FFmpegError, OSError, ValueError) as exc:
            if self._io.error is None:
                self._io.error = exc
