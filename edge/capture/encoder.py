"""Software H.264 encoder (PyAV libx264) for sources that give raw frames (opencv, synthetic).

ultrafast + zerolatency: no B-frames and no lookahead, so each frame's packet comes out at once
(pre-roll and clip boundaries stay exact) and the CPU cost stays low. Keyframes come at a fixed
interval (scenecut off) so clips and vault segments can always cut within keyframe_interval: every
keyframe_interval x fps frames (x264's GOP), and sooner when the frames' timestamps say that much
time has passed (a webcam or a Pi sensor that slows down in the dark sends fewer frames per second
than it was opened at, and a GOP counted in frames would stretch to several seconds).
"""

from __future__ import annotations

import fractions
import logging

import av
import cv2
import numpy as np

from edge.capture.frames import PTS_HZ, EncodedPacket
from edge.errors import ConsentcamError

log = logging.getLogger("consentcam.capture")


class EncoderError(ConsentcamError):
    pass


class H264Encoder:
    def __init__(self, width: int, height: int, fps: float, *, bitrate: int = 2_000_000,
                 keyframe_interval: float = 1.0, privacy_mask: np.ndarray | None = None) -> None:
        # x264 needs even dimensions for 4:2:0.
        self.width, self.height = width - width % 2, height - height % 2
        self.fps = fps
        self.gop = max(1, round(keyframe_interval * fps))
        # A frame at least this far (in pts) after the last keyframe is made a keyframe: half a frame past
        # the GOP, so at the nominal rate x264 has always made one first, timing noise included, and a
        # camera sending fewer frames gets one at most a frame of its own late.
        self._key_after = round((self.gop + 0.5) * PTS_HZ / fps)
        self._last_key: int | None = None
        # Privacy mask: uint8 HxW, 255 where the picture must be black; applied before encoding.
        if privacy_mask is not None and privacy_mask.shape != (self.height, self.width):
            privacy_mask = cv2.resize(privacy_mask, (self.width, self.height), interpolation=cv2.INTER_NEAREST)
        self._keep = None if privacy_mask is None or not privacy_mask.any() else cv2.bitwise_not(privacy_mask)
        try:
            ctx = av.CodecContext.create("libx264", "w")
        except (av.FFmpegError, ValueError) as exc:  # pragma: no cover - depends on the FFmpeg build
            raise EncoderError(f"no libx264 encoder in this PyAV build: {exc}") from exc
        ctx.width, ctx.height = self.width, self.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = fractions.Fraction(1, PTS_HZ)
        ctx.framerate = fractions.Fraction(round(fps * 1000), 1000)
        ctx.bit_rate = bitrate
        ctx.gop_size = self.gop
        ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "scenecut": "0",
                       "keyint_min": str(self.gop), "repeat-headers": "1"}
        ctx.open()
        self._ctx = ctx
        self._count = 0

    def encode(self, bgr: np.ndarray, time: float, pts: int | None = None) -> list[EncodedPacket]:
        """Encode one BGR frame (resized to the main size, privacy mask applied)."""
        if bgr.shape[1] != self.width or bgr.shape[0] != self.height:
            bgr = cv2.resize(bgr, (self.width, self.height), interpolation=cv2.INTER_AREA)
        if self._keep is not None:
            bgr = cv2.bitwise_and(bgr, bgr, mask=self._keep)
        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
        return self._encode(frame, pts if pts is not None else round(self._count * PTS_HZ / self.fps), time)

    def encode_i420(self, buffer: np.ndarray, stride: int, time: float, pts: int) -> list[EncodedPacket]:
        """Encode one YUV420 (I420) camera buffer: h * 3/2 rows of `stride` bytes, the U and V planes
        (each h/2 rows of stride/2) after the Y plane, as libcamera delivers it. The privacy mask is
        the caller's (it is drawn into the camera's buffer)."""
        w, h = self.width, self.height
        flat = buffer.reshape(-1)
        half, rows = stride // 2, h // 2
        u0, v0 = stride * h, stride * h + half * rows
        planes = (flat[:u0].reshape(h, stride)[:, :w],
                  flat[u0:v0].reshape(rows, half)[:, :w // 2],
                  flat[v0:v0 + half * rows].reshape(rows, half)[:, :w // 2])
        frame = av.VideoFrame(w, h, "yuv420p")
        for plane, data in zip(frame.planes, planes, strict=True):
            line = plane.line_size
            if line == data.shape[1]:
                plane.update(np.ascontiguousarray(data))
            else:  # FFmpeg pads its rows: copy row by row into the padded layout
                padded = np.zeros((data.shape[0], line), np.uint8)
                padded[:, :data.shape[1]] = data
                plane.update(padded)
        return self._encode(frame, pts, time)

    def flush(self, time: float) -> list[EncodedPacket]:
        return [self._packet(p, time) for p in self._ctx.encode(None)]

    def _encode(self, frame: av.VideoFrame, pts: int, time: float) -> list[EncodedPacket]:
        frame.pts = pts
        frame.time_base = self._ctx.time_base
        if self._last_key is not None and pts - self._last_key >= self._key_after:
            frame.pict_type = av.video.frame.PictureType.I  # libx264 makes it an IDR (closed GOP)
        self._count += 1
        packets = [self._packet(p, time) for p in self._ctx.encode(frame)]
        for packet in packets:
            if packet.keyframe:
                self._last_key = packet.pts
        return packets

    @staticmethod
    def _packet(p: av.Packet, time: float) -> EncodedPacket:
        return EncodedPacket(pts=int(p.pts), keyframe=bool(p.is_keyframe), data=bytes(p), time=time)
