"""Frame sources for /dev/videoN webcams, rtsp:// and http:// IP cameras (cv2.VideoCapture) and video files.

Webcams and streams: OpenCV delivers BGR; the detection plane is its BT.601 luma (resized).
Video files are decoded with PyAV instead, and the detection plane is the decoder's own Y plane
(resized, limited range expanded to full range), like the Pi camera's lores Y plane: no YUV->BGR->grey
round trip. BGR is made only when the frame is encoded for recording. One decoder thread for
pictures up to about 1 MP: the least CPU per frame (FFmpeg's thread pool costs more than it saves there).
File sources are timed by the file's own presentation timestamps (FileClock), not by the wall
clock or by frame count, so `consentcam detect` reports times on the file's timeline, gaps and
variable frame rates included.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.capture.frames import PTS_HZ, CameraOpenError, CapturedFrame, limited_to_full_range, shrink
from edge.capture.reconnect import RECONNECT_FOR, reconnect
from edge.redact import without_credentials

log = logging.getLogger("consentcam.capture")


# Network sources (here and in stream_copy): give up opening after STREAM_OPEN_TIMEOUT seconds; a read
# that gets nothing for STREAM_READ_TIMEOUT ends (OpenCV's own default is 30 s).
STREAM_OPEN_TIMEOUT, STREAM_READ_TIMEOUT = 15.0, 4.0
DIAGNOSIS_TIMEOUT = 4.0  # seconds PyAV is given to say why a URL OpenCV could not open fails


def is_stream_url(device: str) -> bool:
    return device.startswith(("rtsp://", "rtsps://", "http://", "https://"))


def ffmpeg_options(device: str) -> dict[str, str]:
    """PyAV's input options for `device`: RTSP over the RTSP connection itself (TCP) first, so that
    lost Wi-Fi packets are sent again instead of smearing pictures and firewalls that block the
    camera's UDP ports do not matter; UDP only for a camera that offers nothing else. (OpenCV's
    captures, for re-encoding, behave the same with their own defaults: tests/test_stream_copy.py.)"""
    return {"rtsp_flags": "prefer_tcp"} if device.startswith(("rtsp://", "rtsps://")) else {}


def open_capture(device: str, open_timeout: float = STREAM_OPEN_TIMEOUT,
                 diagnosis_timeout: float = DIAGNOSIS_TIMEOUT) -> cv2.VideoCapture:
    """Open a device path, URL or file; a clear error when it cannot be opened. Streams: opening
    gives up after `open_timeout` s, then PyAV is given `diagnosis_timeout` s to say why."""
    _quiet_opencv()
    if device.startswith("/dev/"):
        if not Path(device).exists():
            raise CameraOpenError(f"{device}: no such camera device")
        cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
    elif is_stream_url(device):
        from edge.capture.open_errors import check_host

        check_host(device, open_timeout)  # FFmpeg's own lookup ignores the open timeout
        cap = cv2.VideoCapture(device, cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, round(open_timeout * 1000),
                                cv2.CAP_PROP_READ_TIMEOUT_MSEC, round(STREAM_READ_TIMEOUT * 1000)])
    else:
        path = check_file_path(device)
        check_video_file(path)
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        if is_stream_url(device):  # OpenCV does not say why; FFmpeg through PyAV does (CameraOpenError)
            from edge.capture.open_errors import open_container

            open_container(device, (diagnosis_timeout, diagnosis_timeout)).close()
        raise CameraOpenError(f"{without_credentials(device)}: cannot open as a video source: "
                              "not a camera, stream or video file?")
    return cap


def check_file_path(device: str) -> Path:
    path = Path(device)
    if not path.exists():
        raise CameraOpenError(f"{device}: no such video file or device")
    if path.is_dir():
        raise CameraOpenError(f"{device}: is a directory, not a video file")
    return path


# Pixel formats whose plane 0 is the 8-bit luma plane (what H.264/HEVC/MJPEG decoders give).
_Y_PLANE_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p",
                              "yuvj440p", "yuv411p", "yuvj411p", "yuv410p", "nv12", "nv21", "nv16", "gray"})
_SINGLE_THREAD_MAX_PIXELS = 1280 * 800
_AVCOL_RANGE_JPEG = 2  # full-range (0-255) luma
_AVCOL_RANGE_MPEG = 1  # limited range (16-235)
RATE_SAMPLE = 48  # timestamps read to find a file's usual frame rate
ASSUMED_FPS = 25.0  # the rate of a file that states none (FFmpeg's and players' assumption)
_AVFMT_NOTIMESTAMPS = 0x80  # a demuxer without timestamps: a raw elementary stream


def decode_single_threaded(stream: Any) -> None:
    """One decoder thread for pictures up to about 1 MP (FFmpeg's pool costs more CPU than it saves there)."""
    cc = stream.codec_context
    if cc.width * cc.height <= _SINGLE_THREAD_MAX_PIXELS:
        stream.thread_type = "NONE"
        cc.thread_count = 1


class VideoFileReader:
    """Decodes a video file with PyAV; the detection plane comes straight from the decoded Y plane."""

    def __init__(self, device: str, assume_fps: float | None = None) -> None:
        """assume_fps: the frame rate of a file that states none (None: ASSUMED_FPS, with a warning)."""
        import av

        self._av = av
        self.path = check_file_path(device)
        check_video_file(self.path)
        self._container = None
        self._open()
        stream = self._stream
        stated = self._stated_rate()
        if stated is None and assume_fps is None:
            log.warning("%s: does not state its frame rate (a raw stream without timing?); taking %g fps, "
                        "as players do", self.path, ASSUMED_FPS)
        self.fps = stated if stated is not None else assume_fps or ASSUMED_FPS
        stamps, holds_frames = self._first_stamps()
        if not holds_frames:  # an interrupted recording: the header was written, no picture after it
            self.close()
            raise CameraOpenError(f"{self.path}: its video stream holds no frames (a recording stopped "
                                  "before its first frame was written?)")
        usual = typical_rate(stamps, self._stream.time_base)
        if usual is not None and abs(usual - self.fps) > 0.01 * usual:  # the container's rate counts a gap
            self.fps = round(usual, 3)
        stream = self._stream  # reopened by _first_stamps
        # where the file starts on its own timeline: before the first decodable frame in a recording
        # cut mid-GOP (whose first pictures refer to a keyframe that is not in the file)
        self.start: float | None = None
        if stream.start_time is not None and stream.time_base:
            self.start = float(stream.start_time * stream.time_base)
        frames = int(stream.frames or 0)
        if frames <= 0 and self.fps > 0:
            if stream.duration and stream.time_base:
                frames = round(float(stream.duration * stream.time_base) * self.fps)
            elif self._container.duration:
                frames = round(self._container.duration / 1_000_000 * self.fps)
        self.frame_count = max(frames, 0)

    def _open(self) -> None:
        av = self._av
        try:
            container = av.open(str(self.path))
            # the main picture, not a cover image or a thumbnail track that happens to come first
            stream = container.streams.best("video") or container.streams.video[0]
        except (av.FFmpegError, IndexError, UnicodeDecodeError) as exc:
            raise CameraOpenError(f"{self.path}: cannot open as a video source (not a video file, or a "
                                  "recording that was cut off before it was finished?)") from exc
        except OSError as exc:
            raise CameraOpenError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        if stream.codec_context is None:
            container.close()
            raise CameraOpenError(f"{self.path}: this FFmpeg has no decoder for its video; "
                                  "convert it to H.264 first")
        decode_single_threaded(stream)
        self._container, self._stream = container, stream

    def _stated_rate(self) -> float | None:
        """The frame rate the file states, None when it states none. A raw stream (an .h264 file: no
        container, no timestamps) has only its codec's, if the encoder wrote it (H.264's VUI timing):
        the average FFmpeg gives it is its own default. A file too short for FFmpeg to measure an
        average (one frame of MPEG-TS) has its codec's too: FFmpeg's guess from the time base is twice
        that for H.264 (two fields a frame)."""
        assert self._container is not None
        stream = self._stream
        codec_rate = stream.codec_context.framerate
        if self._container.format.flags & _AVFMT_NOTIMESTAMPS:
            return float(codec_rate) if codec_rate else None
        rate = stream.average_rate or codec_rate or stream.guessed_rate or stream.base_rate
        return float(rate) if rate else None

    def _first_stamps(self) -> tuple[list[int], bool]:
        """The first RATE_SAMPLE presentation timestamps of the video, and whether it holds any
        data at all; decoding then starts from the beginning again."""
        assert self._container is not None
        stamps: list[int] = []
        holds_frames = False
        try:
            for packet in self._container.demux(self._stream):
                holds_frames = holds_frames or packet.size > 0
                if packet.pts is not None:
                    stamps.append(int(packet.pts))
                if len(stamps) >= RATE_SAMPLE or packet.size == 0:
                    break
        except self._av.FFmpegError:
            holds_frames = True  # there was something, if not readable: say so when decoding
        self.rewind()
        return stamps, holds_frames

    def frames(self) -> Iterator[object]:
        """Decoded PyAV frames until the end of the file. A damaged packet is skipped, as players do
        (the pictures that refer to it decode with errors until the next keyframe); a file that cannot
        be read on ends there."""
        assert self._container is not None
        damaged = 0
        try:
            for packet in self._container.demux(self._stream):
                try:
                    frames = packet.decode()
                except self._av.InvalidDataError as exc:
                    damaged += 1
                    if damaged == 1:
                        log.warning("%s: skipping damaged data: %s", self.path, exc)
                    continue
                yield from frames
        except self._av.FFmpegError as exc:
            log.warning("%s: stopped decoding: %s", self.path, exc)
        if damaged > 1:
            log.warning("%s: skipped %d damaged packets", self.path, damaged)

    def rewind(self) -> None:
        self.close()
        self._open()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def typical_rate(stamps: list[int], time_base: Any) -> float | None:
    """Frames per second from the usual spacing of a video's first timestamps (the mean of the steps
    within half and one and a half times their median), or None when they do not tell. A
    container's average rate counts gaps: an MP4 with a 30-minute hole in it says 0.5 fps, and
    the detector would be set for that rate."""
    steps = np.diff(np.unique(stamps))
    if steps.size < 2 or not time_base:
        return None
    # the mean of the usual steps, not their median: a millisecond time base gives 15 fps as
    # steps of 66 and 67 ms
    median = float(np.median(steps))
    usual = steps[(steps >= 0.5 * median) & (steps <= 1.5 * median)]
    fps = 1.0 / float(usual.mean() * time_base)
    return fps if 1.0 <= fps <= 240.0 else None


class FileClock:
    """Times of a video file's frames, in seconds from the file's start (its video's own start time,
    else its first frame; a recording cut mid-GOP starts before its first decodable picture, as a
    player shows it): the presentation timestamps, so dropped frames, gaps and variable frame rates
    (common in NVR exports and phone video) stay where they are on the file's own timeline. A frame
    without a timestamp, or one that does not move forward, gets the previous time plus one nominal
    frame interval. After a rewind (looping files) the clock carries on from where it was."""

    def __init__(self, fps: float, start: float | None = None) -> None:
        self.step = 1.0 / fps
        self.last: float | None = None
        self._base: float | None = None  # timestamp of the first frame since the start or the last rewind
        self._offset = 0.0
        self._start = start  # the file's own start (None: its first frame), at or before the first frame

    def time_of(self, stamp: float | None) -> float:
        if stamp is not None and self._base is None:
            self._base = stamp if self._start is None or self._start > stamp else self._start
        guess = 0.0 if self.last is None else self.last + self.step
        t = guess if stamp is None or self._base is None else self._offset + stamp - self._base
        if self.last is not None and t <= self.last:
            t = guess
        self.last = t
        return t

    def rewind(self) -> None:
        self._offset = 0.0 if self.last is None else self.last + self.step
        self._base = None


class StreamClock(FileClock):
    """Times of a live camera's pictures from its own timestamps (OpenCV's CAP_PROP_POS_MSEC: the
    stream's presentation time, or a webcam's buffer time), in seconds from its first picture. Not
    the arrival time: an RTSP stream delivers its first second or two at once. Unlike a file, a
    timestamp that goes back or leaps more than MAX_JUMP ahead (a camera that restarted) continues
    one frame after the last picture, and later ones keep their spacing from there."""

    MAX_JUMP = 10.0

    def time_of(self, stamp: float | None) -> float:
        if stamp is not None and self._base is not None and self.last is not None:
            t = self._offset + stamp - self._base
            if t <= self.last or t > self.last + self.MAX_JUMP:
                self._offset, self._base = self.last + self.step, stamp
        return super().time_of(stamp)


def quarter_turns(frame) -> int:  # type: ignore[no-untyped-def]
    """Counter-clockwise quarter turns that show a decoded frame of a file as its display matrix asks
    (a phone held upright records a landscape picture and a matrix saying -90 degrees). Angles that are
    not whole quarter turns are not turned; mirroring is not applied."""
    turns, rest = divmod(round(frame.rotation), 90)  # the matrix's counter-clockwise rotation; 0 without one
    return turns % 4 if rest == 0 else 0


def turned(picture: np.ndarray, turns: int) -> np.ndarray:
    """picture turned counter-clockwise by `turns` quarter turns (contiguous, as OpenCV wants it)."""
    return np.ascontiguousarray(np.rot90(picture, turns)) if turns else picture


def frame_luma(frame, size: tuple[int, int], turns: int = 0) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Detection plane of a decoded PyAV frame: its Y plane resized, in full range (0-255). `turns`
    (quarter_turns) makes it the picture as it is shown, at `size`, so that zones and ignore polygons
    mean what the owner drew: shrunk to the size turned back, then turned, where it is cheap."""
    return turned(_luma(frame, size[::-1] if turns % 2 else size), turns)


def _luma(frame, size: tuple[int, int]) -> np.ndarray:  # type: ignore[no-untyped-def]
    name = frame.format.name
    if name not in _Y_PLANE_FORMATS:
        return to_luma(frame.to_ndarray(format="bgr24"), size)
    plane = frame.planes[0]
    w, h = frame.width, frame.height
    y = np.frombuffer(plane, np.uint8).reshape(h, plane.line_size)[:, :w]  # a view: no copy
    if (w, h) != size:
        y = shrink(y, size)
    # grey pictures are full range unless they say otherwise (a monochrome HEVC stream is limited)
    if name.startswith("yuvj") or frame.color_range == _AVCOL_RANGE_JPEG or (
            name == "gray" and frame.color_range != _AVCOL_RANGE_MPEG):
        return np.ascontiguousarray(y)
    return limited_to_full_range(y)


class OpenCVCamera:
    name = "opencv"

    def __init__(self, device: str, *, main_size: tuple[int, int], detect_size: tuple[int, int], fps: float,
                 bitrate: int = 2_000_000, keyframe_interval: float = 1.0, privacy_mask: np.ndarray | None = None,
                 loop: bool = False, encode: bool = True, time_origin: float | None = None,
                 reconnect_for: float = RECONNECT_FOR, assume_fps: float | None = None) -> None:
        # Files: a frame is at time_origin + its presentation time in the file (FileClock; time_origin
        # None: the wall clock at start); assume_fps is the rate of one that states none (VideoFileReader).
        # Webcams and streams that stop are opened again for up to reconnect_for s (edge.capture.reconnect;
        # 0: the source ends).
        self.device = device
        self.shown = without_credentials(device)  # for messages: no camera password in the journal
        self.reconnect_for = reconnect_for
        self.timed_by_camera = True  # live sources: whether their own timestamps and rate are believed
        self.is_file = not device.startswith("/dev/") and not is_stream_url(device)
        self._file: VideoFileReader | None = None
        self._cap: cv2.VideoCapture | None = None
        if self.is_file:
            self._file = VideoFileReader(device, assume_fps)
            file_fps = self._file.fps
            self.frame_count = self._file.frame_count
        else:
            self._cap = open_capture(device)
            if device.startswith("/dev/"):
                request_webcam_mode(self._cap, main_size, fps, self.shown)
            self.timed_by_camera = timed_by_camera(device, self._cap)
            file_fps = live_rate(self._cap, fps, self.shown) if self.timed_by_camera else fps
            self.frame_count = 0
        self.fps = file_fps if 0 < file_fps <= 240 else fps
        self.detect_size, self.main_size = detect_size, main_size
        self.loop = loop and self.is_file
        self._encoder = None
        if encode:
            from edge.capture.encoder import H264Encoder

            self._encoder = H264Encoder(main_size[0], main_size[1], self.fps, bitrate=bitrate,
                                        keyframe_interval=keyframe_interval, privacy_mask=privacy_mask)
        self._closed = threading.Event()
        # close() from another thread must not free the decoder or the capture under a read in progress
        # (OpenCV crashes): the frame loop releases them itself when it sees the flag.
        self._lock = threading.Lock()
        self._busy = False
        self.time_origin = time_origin

    def frames(self) -> Iterator[CapturedFrame]:
        with self._lock:
            if self._closed.is_set():
                return
            self._busy = True
        try:
            if self._file is not None:
                yield from self._file_frames(self._file)
            else:
                yield from self._device_frames()
        finally:
            with self._lock:
                self._busy = False
                if self._closed.is_set():
                    self._release()

    def _device_frames(self) -> Iterator[CapturedFrame]:
        """Webcams and streams (files go through _file_frames): wall-clock times for the detector and
        the events, the camera's own timing for the recording (StreamClock), until the source stops
        delivering and does not come back (_reconnect). The recording's timestamps run on across a
        reconnection, without the gap, like a copied stream's."""
        n = 0
        last_frame = time.monotonic()
        clock = StreamClock(self.fps)
        while not self._closed.is_set():
            ok, bgr = (False, None) if self._cap is None else self._cap.read()
            if not ok:
                if self._closed.is_set() or not self._reconnect(last_frame):
                    break
                clock.rewind()  # the new connection's timestamps start afresh
                continue
            mono = last_frame = time.monotonic()
            t = time.time()
            if self.timed_by_camera:
                stamp = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000
                at = clock.time_of(stamp if stamp > 0 else None)
            else:
                at = clock.time_of(mono)
            luma = to_luma(bgr, self.detect_size)
            packets = []
            if self._encoder is not None:
                packets = self._encoder.encode(bgr, t, pts=round(at * PTS_HZ))
            yield CapturedFrame(time=t, luma=luma, packets=packets, index=n, monotonic=mono)
            n += 1

    def _file_frames(self, reader: VideoFileReader) -> Iterator[CapturedFrame]:
        start = time.time() if self.time_origin is None else self.time_origin
        clock = FileClock(self.fps, reader.start)
        n = 0
        while not self._closed.is_set():
            first = n
            for frame in reader.frames():
                if self._closed.is_set():
                    return
                t = start + clock.time_of(frame.time)
                turns = quarter_turns(frame)  # a phone clip: detected and recorded as it is shown
                packets = []
                if self._encoder is not None:
                    packets = self._encoder.encode(turned(frame.to_ndarray(format="bgr24"), turns), t,
                                                   pts=round(n * PTS_HZ / self.fps))
                yield CapturedFrame(time=t, luma=frame_luma(frame, self.detect_size, turns), packets=packets,
                                    index=n)
                n += 1
            if not self.loop or n == first or self._closed.is_set():
                break
            reader.rewind()
            clock.rewind()

    def close(self) -> None:
        """Safe from any thread. While frames() runs in another thread, it releases the file or the
        capture itself after its current read (freeing them under a read crashes OpenCV): a file at
        once, a stalled stream or webcam when its read times out (STREAM_READ_TIMEOUT), a source
        waiting to reconnect at once."""
        with self._lock:
            self._closed.set()
            if not self._busy:
                self._release()

    def _reconnect(self, last_frame: float) -> bool:
        """The webcam or stream stopped delivering: open it again (edge.capture.reconnect) until a
        new capture is in self._cap. False: it did not come back, or close() was called; the source ends."""
        if self.reconnect_for <= 0:
            log.warning("%s: no frame from the camera; stopping this source", self.shown)
            return False
        self._release()
        # opens=2: an attempt that fails opens the URL a second time, with PyAV, to say why
        return reconnect(self.shown, self.reconnect_for, self._closed, self._reopen,
                         last_packet=lambda: last_frame, opens=2)

    def _reopen(self, open_timeout: float) -> None:
        cap = open_capture(self.device, open_timeout, diagnosis_timeout=open_timeout)
        if self.device.startswith("/dev/"):  # a webcam plugged back starts in its default mode again
            request_webcam_mode(cap, self.main_size, self.fps, self.shown)
        self._cap = cap

    def _release(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._cap is not None:
            self._cap.release()
            self._cap = None


# Live frame rates outside this range are a stream's bogus guess (FFmpeg reports 90000 for some
# cameras), not a camera's rate: camera.fps is used instead.
LIVE_FPS_RANGE = (1.0, 120.0)


# Codecs (OpenCV's FOURCC) whose HTTP streams carry no timing: MJPEG as multipart/x-mixed-replace.
UNTIMED_OVER_HTTP = frozenset({"MJPG", "JPEG"})


def fourcc_of(cap: cv2.VideoCapture) -> str:
    """The capture's codec as four characters ("" when OpenCV does not say)."""
    code = int(cap.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
    return code.to_bytes(4, "little").decode("ascii", "replace").strip("\x00 ")


def timed_by_camera(device: str, cap: cv2.VideoCapture) -> bool:
    """Whether a live source's own frame rate and timestamps can be believed. RTSP (RTP timestamps),
    V4L2 webcams (the kernel's buffer times, the mode they agreed to) and HTTP streams of a real
    container (MPEG-TS, FLV, HLS: H.264 and the like) carry them. MJPEG over HTTP carries none: FFmpeg
    makes up 25 fps and stamps its pictures 1/25 s apart however fast they come. Those, and any HTTP
    stream whose codec OpenCV does not name, are timed as they arrive, at camera.fps."""
    if device.startswith(("rtsp://", "rtsps://", "/dev/")):
        return True
    codec = fourcc_of(cap).upper()
    return bool(codec) and codec not in UNTIMED_OVER_HTTP


def live_rate(cap: cv2.VideoCapture, configured: float, shown: str) -> float:
    """The rate a webcam or stream delivers (what OpenCV reports), which the recording's timing and the
    detector need: camera.fps only asks a webcam for a rate and cannot change an IP camera's."""
    reported = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    if not LIVE_FPS_RANGE[0] <= reported <= LIVE_FPS_RANGE[1]:
        log.info("%s: does not say its frame rate (%g); taking camera.fps, %g", shown, reported, configured)
        return configured
    if abs(reported - configured) > 0.01 * configured:
        log.info("%s: sends %.3g frames per second (camera.fps is %.3g): recording and detecting at %.3g",
                 shown, reported, configured, reported)
    return reported


# Above this many pixels a USB 2 webcam needs MJPEG: raw YUYV at 1280x720 is 1.8 MB a picture, more
# than the bus carries at 15 fps beside anything else.
MJPEG_ABOVE_PIXELS = 640 * 480


def request_webcam_mode(cap: cv2.VideoCapture, size: tuple[int, int], fps: float, shown: str) -> None:
    """Ask a V4L2 webcam for camera.width x height at camera.fps (MJPEG above 640x480); it answers with
    the nearest mode it has, which is logged. Without asking, a webcam starts at its default,
    often 640x480, and the recording would be that picture scaled up."""
    if size[0] * size[1] > MJPEG_ABOVE_PIXELS:
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))  # without MJPEG: a format it has
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
    cap.set(cv2.CAP_PROP_FPS, fps)
    got = (round(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), round(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    fourcc = fourcc_of(cap)
    log.info("%s: the webcam delivers %dx%d %s at %.3g fps (asked for %dx%d at %.3g)", shown, *got, fourcc or "?",
             cap.get(cv2.CAP_PROP_FPS), *size, fps)
    if got != tuple(size):
        log.warning("%s: the webcam has no %dx%d mode; it is recorded scaled from %dx%d", shown, *size, *got)


def check_video_file(path: Path) -> None:
    """Probe with PyAV first (quiet, unlike OpenCV's FFmpeg backend, which prints its own errors)."""
    import av

    try:
        with av.open(str(path)) as media:
            if not media.streams:  # an MP4 finished before its first frame: FFmpeg writes no track at all
                raise CameraOpenError(f"{path}: holds no streams, so no video frames (a recording stopped "
                                      "before its first frame was written?)")
            if not media.streams.video:
                raise CameraOpenError(f"{path}: has no video stream")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise CameraOpenError(f"{path}: cannot open as a video source (not a video file?)") from exc
    except OSError as exc:
        raise CameraOpenError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _quiet_opencv() -> None:
    # OpenCV prints its own warnings to stderr for every failed open; our error says it once.
    with contextlib.suppress(AttributeError):  # builds without the logging module
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    # So does the FFmpeg inside OpenCV ("[tcp @ 0x...] Failed to resolve hostname ..."), straight to
    # stderr, past the log scrubbing that keeps camera passwords out of the journal. It reads this
    # when its backend first starts (the first stream or file opened); set it to 24 to see them again.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    # A webcam that stops sending holds OpenCV's V4L2 read for this many whole seconds (its default is
    # 10, read once, at the first read that has to wait): the stream reads' timeout, so a stalled webcam
    # is noticed as soon as a stalled stream and a stop that closes it fits the shutdown budget.
    os.environ.setdefault("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", str(max(1, math.ceil(STREAM_READ_TIMEOUT))))


def to_luma(bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Detection plane: resize first (cheap), then BT.601 luma, like the camera's lores Y plane."""
    small = shrink(bgr, size)
    if small.ndim == 2:
        return small
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)


def device_problem(device: str) -> str | None:
    """None when the device opens and delivers a frame, else what is wrong (camera `auto`)."""
    try:
        cap = open_capture(device)
    except CameraOpenError as exc:
        return str(exc)
    try:
        ok, _ = cap.read()
        return None if ok else f"{without_credentials(device)}: opens but delivers no picture"
    finally:
        cap.release()
