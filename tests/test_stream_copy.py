"""Recording a source's own H.264 without re-encoding (edge.capture.stream_copy), end to end:
files with B-frames in MP4 and MPEG-TS, the recorder and the real vault, an RTSP camera
(tests/rtsp_camera.py) and an HTTP stream on loopback, falling behind a live stream, the choice
between copying and re-encoding, and the daemon."""

from __future__ import annotations

import contextlib
import fractions
import hashlib
import http.server
import io
import itertools
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import av
import cv2
import pytest
from conftest import PASSPHRASE, run_cli
from daemon_helpers import DaemonProc, clips_json
from rtsp_camera import RtspCamera
from vault_support import open_vault, owner_identity

from edge.capture import choose_source, open_camera
from edge.capture.dual_stream import DualStreamCamera
from edge.capture.frames import EncodedPacket
from edge.capture.opencv_source import CameraOpenError, OpenCVCamera
from edge.capture.stream_copy import LagMeter, StreamCopyCamera, Timeline
from edge.capture.synthetic import SyntheticScene, write_video
from edge.cli.daemon_cmd import _camera_line
from edge.config import config_from_dict
from edge.daemon import parts
from edge.errors import ConfigError
from edge.recording.muxer import TsMuxer
from edge.recording.recorder import Recorder
from edge.redact import without_credentials
from edge.state import StateDir

T0 = 1_790_000_000.0
# veryfast keeps x264's B-frames (pts and dts differ) and deblocking: what camera streams look like
CAMERA_LIKE = {"preset": "veryfast", "crf": "26", "g": "20"}


@pytest.fixture(scope="module")
def walk_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One person walking (scene seed 2), 14 s at 15 fps, 320x240, as MP4 (AVCC, parameter sets
    out of band) and as MPEG-TS (Annex B)."""
    tmp = tmp_path_factory.mktemp("walk")
    scene = SyntheticScene(2, "walk", 14)
    return {ext: write_video(scene, tmp / f"walk.{ext}", size=(320, 240), options=CAMERA_LIKE)
            for ext in ("mp4", "ts")}


def pictures(media: str | io.BytesIO, **kw: str) -> list[str]:
    """Digest of every decoded picture's Y plane, in display order."""
    with av.open(media, **kw) as container:
        return [hashlib.sha256(bytes(f.planes[0])).hexdigest() for f in container.decode(video=0)]


class ListSink:
    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.boundaries = 0

    def write(self, data: bytes) -> None:
        self.buf.write(data)

    def boundary(self) -> None:
        self.boundaries += 1


def mux(packets: list[EncodedPacket], codec: str = "h264") -> io.BytesIO:
    sink = ListSink()
    muxer = TsMuxer(sink, 320, 240, 15, codec)
    for p in packets:
        muxer.write(p)
    muxer.close()
    assert muxer.failed is None
    sink.buf.seek(0)
    return sink.buf


SPS_NAL, PPS_NAL = 7, 8


def drain(cam: StreamCopyCamera | DualStreamCamera, most: int = 5000) -> tuple[list, float]:
    """Every frame until the source ends (at most `most`; closed after 30 s if it never does), and
    how long that took."""
    guard = threading.Timer(30.0, cam.close)
    guard.start()
    t0 = time.monotonic()
    frames = list(itertools.islice(cam.frames(), most))
    waited = time.monotonic() - t0
    guard.cancel()
    cam.close()
    return frames, waited


def played(camera: RtspCamera, url: str | None = None, **kw: float) -> list:
    """Every frame the RTSP test camera sends, through a StreamCopyCamera on `url` (default: the
    camera's own, no reconnecting); the camera is closed afterwards."""
    kw.setdefault("reconnect_for", 0)
    try:
        cam = StreamCopyCamera(url or camera.url, detect_size=(160, 120), fps=15, **kw)
        try:
            return list(itertools.islice(cam.frames(), 1000))
        finally:
            cam.close()
    finally:
        camera.close()


def is_run_of(recorded: list[str], expected: list[str]) -> bool:
    """recorded is expected[k:k + len(recorded)] for some k: a run of the source's pictures, none missing."""
    n = len(recorded)
    return n > 0 and any(expected[k:k + n] == recorded for k in range(len(expected) - n + 1))


def nal_types(data: bytes) -> list[int]:
    """H.264 NAL unit types in an Annex B access unit, in order."""
    out, i = [], data.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(data):
        out.append(data[i + 3] & 0x1F)
        i = data.find(b"\x00\x00\x01", i + 3)
    return out


@pytest.mark.parametrize("ext", ["mp4", "ts"])
def test_copied_packets_give_the_source_pictures_bit_for_bit(walk_files: dict[str, Path], ext: str) -> None:
    source = walk_files[ext]
    cam = StreamCopyCamera(str(source), detect_size=(160, 120), fps=10, time_origin=T0)
    frames = list(cam.frames())
    packets = [p for f in frames for p in f.packets]
    expected = pictures(str(source))
    assert cam.fps == 15 and (cam.width, cam.height) == (320, 240)
    assert len(frames) == len(expected) == len(packets) == 14 * 15
    assert all(f.luma.shape == (120, 160) for f in frames)
    assert any(p.dts != p.pts for p in packets)  # B-frames: decoding order is not display order
    dts = [p.dts for p in packets]
    assert dts == sorted(set(dts)) and all(p.pts >= p.dts for p in packets)
    keyframes = [p for p in packets if p.keyframe]
    assert len(keyframes) == 11  # every 20 frames
    for p in keyframes:  # each keyframe carries its parameter sets: a segment decodes on its own
        types = nal_types(p.data)
        assert 7 in types and 8 in types and types.index(7) < types.index(5), types
    assert pictures(mux(packets), format="mpegts") == expected


def encode_file(path: Path, scene: SyntheticScene, codec: str, size: tuple[int, int],
                options: dict[str, str] | None = None) -> Path:
    """The scene encoded with one of FFmpeg's encoders, for sources that write_video (libx264) cannot make."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=round(scene.fps))
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        if options:
            stream.codec_context.options = options
        for i in range(scene.frame_count):
            for packet in stream.encode(av.VideoFrame.from_ndarray(scene.bgr(i, *size), format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


# closed GOPs, as cameras send: a clip cut at an open-GOP keyframe (CRA) would start without the few
# B-pictures that refer back across it
X265 = {"preset": "veryfast", "crf": "28",
        "x265-params": "keyint=20:min-keyint=20:bframes=3:open-gop=0:log-level=error"}


@pytest.fixture(scope="module")
def h265_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The walk scene from an H.265 camera (B-frames, a keyframe every 20 pictures), MP4 and MPEG-TS."""
    tmp = tmp_path_factory.mktemp("h265")
    scene = SyntheticScene(2, "walk", 10)
    return {ext: encode_file(tmp / f"walk.{ext}", scene, "libx265", (320, 240), X265) for ext in ("mp4", "ts")}


@pytest.mark.parametrize("ext", ["mp4", "ts"])
def test_an_h265_camera_is_recorded_as_it_arrives_bit_for_bit(h265_files: dict[str, Path], ext: str,
                                                              state_dir: Path, tmp_path: Path,
                                                              _state_template: Path) -> None:
    source = h265_files[ext]
    config = config_from_dict({"camera": {"source": "opencv", "device": str(source)},
                               "recording": {"pre_roll": 1, "post_roll": 1}})
    cam = open_camera(config, time_origin=T0)
    assert isinstance(cam, StreamCopyCamera) and cam.codec == "hevc"  # copied, not re-encoded to H.264
    vault = open_vault(state_dir)
    rec = Recorder(config, vault, camera_name="porch", fps=cam.fps, size=(cam.width, cam.height), codec=cam.codec)
    frames = []
    for frame in cam.frames():
        frames.append(frame)
        rec.process(frame)
    rec.flush(T0 + 10)
    packets = [p for f in frames for p in f.packets]
    expected = pictures(str(source))
    assert len(packets) == len(expected) == 10 * 15 and any(p.pts != p.dts for p in packets)
    assert_h265_recorded_as_sent(packets, expected)
    (clip,) = vault.list_clips()  # through the vault as well, labelled for what it is
    assert clip.codec == "hevc"
    out = tmp_path / "clip.ts"
    vault.export(clip.id, owner_identity(_state_template, PASSPHRASE), out)
    recorded = pictures(str(out))
    assert is_run_of(recorded, expected) and len(recorded) > 2 * 15


@pytest.mark.parametrize("in_band", [True, False], ids=["sets-in-band", "sets-only-in-sdp"])
def test_an_h265_rtsp_camera_is_recorded_bit_for_bit(h265_files: dict[str, Path], in_band: bool) -> None:
    camera = RtspCamera(h265_files["ts"], speed=6.0, in_band_parameter_sets=in_band)
    try:
        cam = StreamCopyCamera(camera.url, detect_size=(160, 120), fps=15, reconnect_for=0)
        frames, _ = drain(cam)
    finally:
        camera.close()
    assert cam.codec == "hevc" and camera.codec.rtp_name == "H265"
    packets = [p for f in frames for p in f.packets]
    assert len(packets) == 10 * 15 and any(p.pts != p.dts for p in packets)
    assert_h265_recorded_as_sent(packets, pictures(str(h265_files["ts"])))  # sets from the SDP where needed


def test_the_daemon_records_an_h265_camera_as_h265(h265_files: dict[str, Path], state_dir: Path) -> None:
    config = config_from_dict({"camera": {"source": "opencv", "device": str(h265_files["ts"])}})
    built = parts.build(StateDir(state_dir), config, clock_synced=True)
    try:
        assert built.camera_choice.codec == "hevc" and built.recorder.codec == "hevc"
        assert "H.265" in _camera_line(built.camera_choice.to_dict())
    finally:
        built.close_camera()


def assert_h265_recorded_as_sent(packets: list[EncodedPacket], expected: list[str]) -> None:
    """VPS, SPS and PPS before every keyframe, and the packets muxed as H.265 give the source's pictures."""
    for p in packets:
        if p.keyframe:
            assert {32, 33, 34} <= {(b >> 1) & 0x3F for b in _nal_first_bytes(p.data)}
    assert pictures(mux(packets, "hevc"), format="mpegts") == expected


def _nal_first_bytes(data: bytes) -> list[int]:
    out, i = [], data.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(data):
        out.append(data[i + 3])
        i = data.find(b"\x00\x00\x01", i + 3)
    return out


def test_the_recorder_stores_the_cameras_own_pictures_in_the_vault(walk_files: dict[str, Path], state_dir: Path,
                                                                   tmp_path: Path, _state_template: Path) -> None:
    source = walk_files["mp4"]
    scene = SyntheticScene(2, "walk", 14)
    person = scene.ground_truth.motion[0]
    config = config_from_dict({"camera": {"source": "opencv", "device": str(source), "fps": 15},
                               "recording": {"pre_roll": 2, "post_roll": 2}})
    cam = open_camera(config, time_origin=T0)
    assert isinstance(cam, StreamCopyCamera)
    vault = open_vault(state_dir)
    rec = Recorder(config, vault, camera_name="porch", fps=cam.fps, size=(cam.width, cam.height))
    for frame in cam.frames():
        rec.process(frame)
    rec.flush(T0 + 14)
    (clip,) = vault.list_clips()
    assert clip.status == "complete" and rec.vault_errors == 0
    assert clip.start - T0 <= person.start - 2.0 + 1e-6 and clip.end - T0 >= min(person.end, 14 - 1 / 15)
    out = tmp_path / "clip.ts"
    vault.export(clip.id, owner_identity(_state_template, PASSPHRASE), out)
    recorded, expected = pictures(str(out)), pictures(str(source))
    # the clip is a run of the source's own pictures, from a keyframe (every 20 frames) on, none missing
    starts = [k for k in range(len(expected)) if expected[k:k + len(recorded)] == recorded]
    assert any(k % 20 == 0 for k in starts), starts  # a run of the source's pictures, from a keyframe
    assert len(recorded) == clip.extra["packets"] and len(recorded) >= (clip.end - clip.start) * 15 - 1


def test_timeline_starts_at_zero_and_never_goes_back() -> None:
    tl = Timeline(fractions.Fraction(1, 1000), 25)  # milliseconds; one frame is 40 ms = 3600 ticks
    assert tl.convert(80, -40) == (10800, 0)  # B-frame delay: presentation after decoding
    assert tl.convert(0, 0) == (3600, 3600)
    assert tl.convert(40, 40) == (7200, 7200)
    # a file starting again (or a camera restarting): one frame later, spacing kept from there
    assert tl.convert(80, -40) == (7200 + 3600 + 10800, 10800)
    assert tl.convert(0, 0) == (14400, 14400)
    # a jump of more than 10 s ahead is a restart too; a shorter gap is kept
    assert tl.convert(5000, 5000) == (14400 + 5000 * 90, 14400 + 5000 * 90)
    last = 14400 + 5000 * 90
    assert tl.convert(20_000, 20_000) == (last + 3600, last + 3600)
    assert tl.convert(None, None) == (last + 7200, last + 7200)  # no timestamps: one frame on
    # a reconnected stream continues the old timeline, with or without timestamps on its first packet
    assert Timeline(fractions.Fraction(1, 1000), 25, after=90_000).convert(500, 500) == (93_600, 93_600)
    again = Timeline(fractions.Fraction(1, 1000), 25, after=90_000)
    assert again.convert(None, None) == (93_600, 93_600) and again.convert(500, 500) == (97_200, 97_200)
    # ... also after a connection that opened but sent nothing
    silent = Timeline(fractions.Fraction(1, 1000), 25, after=90_000)
    assert Timeline(fractions.Fraction(1, 1000), 25, after=silent.last_dts).convert(0, 0) == (93_600, 93_600)


def test_lag_is_time_waited_beyond_the_quickest_arrival_and_survives_clock_steps() -> None:
    meter = LagMeter()
    assert meter.lag(100.0, 1000.2) == 0  # the first packet sets the floor (network delay 0.2 s)
    assert meter.lag(101.0, 1001.1) == 0  # a quicker arrival lowers the floor
    assert meter.lag(102.0, 1003.1) == pytest.approx(1.0, abs=0.01)  # we fell 1 s behind
    assert meter.lag(103.0, 1003.2) == pytest.approx(0.1, abs=0.01)  # and caught up
    # the camera's clock steps back 2 s (a restart): a new floor, not 2 s of lag for half an hour
    assert meter.lag(101.04, 1003.24) == 0
    assert meter.lag(101.08, 1003.28) == pytest.approx(0, abs=1e-6)
    # a step forward lowers the floor at once
    assert meter.lag(200.0, 1003.32) == 0 and meter.lag(200.04, 1003.36) == pytest.approx(0, abs=1e-6)


def test_closing_a_stalled_stream_from_another_thread_ends_it_within_the_read_timeout(http_camera: str) -> None:
    # reconnect_for 30 s: only close() can end it within the read timeout
    cam = StreamCopyCamera(f"{http_camera}/stall", detect_size=(160, 120), fps=15, read_timeout=2.0, reconnect_for=30)
    frames = cam.frames()
    next(frames)  # reading; the camera then stops sending
    closer = threading.Timer(0.3, cam.close)
    closer.start()
    t0 = time.monotonic()
    rest = list(itertools.islice(frames, 1000))
    waited = time.monotonic() - t0
    closer.join()
    assert waited < 3.0 and len(rest) < 14 * 15
    assert list(cam.frames()) == []  # closed: no more frames, no error


def test_a_looping_file_keeps_decoding_times_increasing(walk_files: dict[str, Path]) -> None:
    cam = StreamCopyCamera(str(walk_files["ts"]), detect_size=(160, 120), fps=15, loop=True, time_origin=T0)
    frames = list(itertools.islice(cam.frames(), 2 * 210 + 30))
    cam.close()
    packets = [p for f in frames for p in f.packets]
    dts = [p.dts for p in packets]
    assert all(b > a for a, b in itertools.pairwise(dts))
    assert [f.time for f in frames] == sorted(f.time for f in frames)
    once = pictures(str(walk_files["ts"]))
    assert pictures(mux(packets), format="mpegts")[:420] == once + once


def _camera(device: Path, **camera: object) -> object:
    masks = camera.pop("privacy_masks", [])
    config = config_from_dict({"camera": {"source": "opencv", "device": str(device), "width": 320, "height": 240,
                                          **camera}, "recording": {"privacy_masks": masks}})
    cam = open_camera(config, time_origin=T0)
    cam.close()
    return cam


def test_copy_when_possible_re_encode_when_needed_and_refuse_an_impossible_copy(walk_files: dict[str, Path],
                                                                                 tmp_path: Path) -> None:
    h264 = walk_files["mp4"]
    mpeg4 = encode_file(tmp_path / "old.avi", SyntheticScene(1, "quiet", 2), "mpeg4", (160, 120))
    mask = [[[0.0, 0.0], [0.3, 0.0], [0.3, 0.3]]]
    assert isinstance(_camera(h264), StreamCopyCamera)
    assert isinstance(_camera(h264, record="copy"), StreamCopyCamera)
    assert isinstance(_camera(h264, record="encode"), OpenCVCamera)
    assert isinstance(_camera(h264, privacy_masks=mask), OpenCVCamera)  # a mask must be drawn in
    assert isinstance(_camera(mpeg4), OpenCVCamera)
    with pytest.raises(CameraOpenError, match="privacy_masks must be drawn into the pictures"):
        _camera(h264, record="copy", privacy_masks=mask)
    with pytest.raises(CameraOpenError, match=r"sends mpeg4 video; only H\.264 and H\.265"):
        _camera(mpeg4, record="copy")
    with pytest.raises(ConfigError, match=r"camera\.record"):
        config_from_dict({"camera": {"record": "cpoy"}})


MJPEG_FPS = 8


class _Handler(http.server.BaseHTTPRequestHandler):
    """/cam.ts: the whole stream at once; /stall: half, then nothing; /live: about 4x real time, once;
    /flaky: half, then the connection drops; the whole stream on the second try; then nothing.
    /switch: the whole stream, then on the second try the camera sends H.265 instead.
    /video.mjpg: MJPEG over HTTP as cheap cameras send it (multipart/x-mixed-replace, no timestamps),
    MJPEG_FPS pictures a second for 4 s."""

    payload = b""
    other_codec = b""  # /switch: the camera comes back sending this instead
    stalled = threading.Event()  # set by the test when it is done: the stalled response ends
    served: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        count = self.served[self.path] = self.served.get(self.path, 0) + 1
        if self.path == "/video.mjpg":
            self._mjpeg()
            return
        if (self.path == "/live" and count > 1) or (self.path in ("/flaky", "/switch") and count > 2):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        if self.path == "/flaky" and count == 1:
            self.wfile.write(self.payload[: len(self.payload) // 2])
            return
        if self.path == "/switch" and count == 2:
            self.wfile.write(self.other_codec)
            return
        if self.path == "/stall":
            self.wfile.write(self.payload[: len(self.payload) // 2])
            self.wfile.flush()
            self.stalled.wait(30)  # sends nothing more: a camera that hangs
            return
        if self.path == "/live":  # about 4x real time, in small pieces, then the camera goes away
            pieces = 56
            step = -(-len(self.payload) // pieces)
            for i in range(pieces):
                self.wfile.write(self.payload[i * step:(i + 1) * step])
                self.wfile.flush()
                if self.stalled.wait(14 / 4 / pieces):
                    return
            return
        self.wfile.write(self.payload)

    def _mjpeg(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        scene = SyntheticScene(2, "walk", 4, fps=MJPEG_FPS)
        start = time.monotonic()
        for i in range(scene.frame_count):
            jpeg = cv2.imencode(".jpg", scene.bgr(i, 320, 240))[1].tobytes()
            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%b\r\n"
                             % (len(jpeg), jpeg))
            self.wfile.flush()
            if self.stalled.wait(max(0.0, start + (i + 1) / MJPEG_FPS - time.monotonic())):
                return

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_camera(walk_files: dict[str, Path]) -> Iterator[str]:
    _Handler.payload = walk_files["ts"].read_bytes()
    _Handler.stalled.clear()
    _Handler.served = {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Handler.stalled.set()
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_an_http_stream_is_copied_and_a_stalled_one_ends_within_the_read_timeout(http_camera: str,
                                                                                  walk_files: dict[str, Path]) -> None:
    cam = StreamCopyCamera(f"{http_camera}/cam.ts", detect_size=(160, 120), fps=15, read_timeout=2.0, reconnect_for=0)
    frames = list(itertools.islice(cam.frames(), 1000))
    cam.close()
    assert all(f.monotonic is not None for f in frames)  # a live source: wall-clock times
    packets = [p for f in frames for p in f.packets]
    assert pictures(mux(packets), format="mpegts") == pictures(str(walk_files["ts"]))

    stalled = StreamCopyCamera(f"{http_camera}/stall", detect_size=(160, 120), fps=15, read_timeout=2.0,
                               reconnect_for=0)
    got, waited = drain(stalled, 1000)
    assert 0 < len(got) < 14 * 15 and waited < 3.5  # read_timeout 2 s, not the default 4


@pytest.fixture(scope="module")
def camera_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What an IP camera sends: no B-frames, a keyframe a second, Annex B (MPEG-TS)."""
    scene = SyntheticScene(2, "walk", 8)
    return write_video(scene, tmp_path_factory.mktemp("rtsp") / "camera.ts", size=(320, 240),
                       options={"preset": "veryfast", "crf": "26", "x264-params": "bframes=0:keyint=15"})


@pytest.mark.parametrize("in_band", [True, False], ids=["sets-in-band", "sets-only-in-sdp"])
def test_an_rtsp_camera_is_recorded_bit_for_bit(camera_stream: Path, in_band: bool) -> None:
    camera = RtspCamera(camera_stream, speed=4.0, in_band_parameter_sets=in_band)
    try:
        cam = StreamCopyCamera(camera.url, detect_size=(160, 120), fps=15, reconnect_for=0)
        assert (cam.width, cam.height) == (320, 240)
        frames = list(itertools.islice(cam.frames(), 1000))
        cam.close()
    finally:
        camera.close()
    assert camera.requests[:4] == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"] and camera.sent_units == 8 * 15
    packets = [p for f in frames for p in f.packets]
    assert len(frames) == len(packets) == 8 * 15 and all(f.luma is not None for f in frames)
    assert [p.keyframe for p in packets] == [i % 15 == 0 for i in range(8 * 15)]
    steps = {b.dts - a.dts for a, b in itertools.pairwise(packets)}
    assert steps == {6000}, steps  # the camera's 90 kHz clock: one picture every 1/15 s
    for p in packets:
        if p.keyframe:  # inserted from the SDP where the camera sends them only there
            assert {SPS_NAL, PPS_NAL} <= set(nal_types(p.data))
    assert pictures(mux(packets), format="mpegts") == pictures(str(camera_stream))


def test_an_rtsp_camera_with_b_frames_is_recorded_bit_for_bit(walk_files: dict[str, Path]) -> None:
    """RTP carries presentation times only; FFmpeg's RTSP client works out decoding times."""
    camera = RtspCamera(walk_files["ts"], speed=6.0)
    frames = played(camera)
    packets = [p for f in frames for p in f.packets]
    assert len(packets) == 14 * 15 and any(p.pts != p.dts for p in packets)
    assert all(b.dts > a.dts for a, b in itertools.pairwise(packets)) and all(p.pts >= p.dts for p in packets)
    assert pictures(mux(packets), format="mpegts") == pictures(str(walk_files["ts"]))


@pytest.fixture(scope="module")
def main_and_substream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One scene as a camera sends it twice: a 640x480 main stream at 15 fps and a 160x120 substream
    at 10 fps."""
    tmp = tmp_path_factory.mktemp("dual")
    options = {"preset": "veryfast", "crf": "26", "x264-params": "bframes=0:keyint=15"}
    return (write_video(SyntheticScene(2, "walk", 10), tmp / "main.ts", size=(640, 480), options=options),
            write_video(SyntheticScene(2, "walk", 10, fps=10), tmp / "sub.ts", size=(160, 120), options=options))


def test_the_main_stream_is_recorded_as_it_arrives_and_the_substream_feeds_the_detector(
        main_and_substream: tuple[Path, Path], state_dir: Path, tmp_path: Path, _state_template: Path) -> None:
    main_file, sub_file = main_and_substream
    main, sub = RtspCamera(main_file, speed=2.0), RtspCamera(sub_file, speed=2.0)
    config = config_from_dict({"camera": {"source": "opencv", "device": main.url, "detect_device": sub.url,
                                          "detect_width": 160, "detect_height": 120},
                               "recording": {"pre_roll": 1, "post_roll": 1}})
    try:
        chosen = open_camera(config)
        chosen.close()
        assert isinstance(chosen, DualStreamCamera)
        cam = DualStreamCamera(main.url, sub.url, detect_size=(160, 120), fps=15, reconnect_for=0)
        assert (cam.width, cam.height) == (640, 480)
        assert (cam.fps, cam.detect_fps) == (15, 10)
        vault = open_vault(state_dir)
        rec = Recorder(config, vault, camera_name="porch", fps=cam.fps, size=(cam.width, cam.height),
                       detect_fps=cam.detect_fps)
        assert rec.detector.fps == 10  # the detector is tuned to the pictures it sees
        frames = []
        for frame in itertools.islice(cam.frames(), 1000):
            frames.append(frame)
            rec.process(frame)
        rec.flush(time.time())
        cam.close()
    finally:
        main.close()
        sub.close()
    seen = [f for f in frames if f.luma is not None]
    # The streams end together and the source ends with the first of them: most substream pictures
    assert len(seen) > 6 * 10 and all(f.luma.shape == (120, 160) for f in seen)
    packets = [p for f in frames for p in f.packets]
    assert pictures(mux(packets), format="mpegts") == pictures(str(main_file))  # every main picture, untouched
    (clip,) = vault.list_clips()  # the walker, found on the substream, recorded from the main stream
    out = tmp_path / "clip.ts"
    vault.export(clip.id, owner_identity(_state_template, PASSPHRASE), out)
    with av.open(str(out)) as media:
        assert (media.streams.video[0].width, media.streams.video[0].height) == (640, 480)
    recorded, expected = pictures(str(out)), pictures(str(main_file))
    assert is_run_of(recorded, expected) and len(recorded) > 2 * 15


def test_when_the_camera_drops_both_streams_are_opened_again(main_and_substream: tuple[Path, Path]) -> None:
    main_file, sub_file = main_and_substream
    main, sub = RtspCamera(main_file, speed=8.0, sessions=2), RtspCamera(sub_file, speed=8.0, sessions=2)
    try:
        cam = DualStreamCamera(main.url, sub.url, detect_size=(160, 120), fps=15, reconnect_for=3.0)
        frames = list(itertools.islice(cam.frames(), 2000))
        cam.close()
    finally:
        main.close()
        sub.close()
    assert main.connections >= 3 and sub.connections >= 2  # served twice, then tried until reconnect_for ran out
    packets = [p for f in frames for p in f.packets]
    assert all(b.dts > a.dts for a, b in itertools.pairwise(packets))  # one timeline across the reconnection
    once = pictures(str(main_file))
    recorded = pictures(mux(packets), format="mpegts")
    assert recorded[-len(once):] == once and len(recorded) > len(once) + 5 * 15  # the second session, whole


def test_a_silent_substream_is_given_up_on_even_while_the_main_stream_flows(
        main_and_substream: tuple[Path, Path]) -> None:
    main_file, sub_file = main_and_substream
    main, sub = RtspCamera(main_file, speed=8.0), RtspCamera(sub_file, speed=8.0, silent_after=1)
    try:
        cam = DualStreamCamera(main.url, sub.url, detect_size=(160, 120), fps=15, read_timeout=1.0,
                               reconnect_for=3.0)
        frames, waited = drain(cam)
    finally:
        main.close()
        sub.close()
    assert sub.connections >= 2 and sum(f.luma is not None for f in frames) > 5 * 10
    assert waited < 10 / 8 + 3.0 + 1.0 + 4.0  # the streams, the budget, a read timeout, one open at most


def test_a_substream_needs_the_main_stream_copied(camera_stream: Path) -> None:
    with pytest.raises(CameraOpenError, match=r"needs camera\.record auto or copy"):
        open_camera(config_from_dict({"camera": {"source": "opencv", "device": "rtsp://127.0.0.1:9/main",
                                                 "detect_device": "rtsp://127.0.0.1:9/sub", "record": "encode"}}))
    with pytest.raises(CameraOpenError, match=r"cannot be used with recording\.privacy_masks"):
        open_camera(config_from_dict({"camera": {"source": "opencv", "device": "rtsp://127.0.0.1:9/main",
                                                 "detect_device": "rtsp://127.0.0.1:9/sub"},
                                      "recording": {"privacy_masks": [[[0, 0], [0.5, 0], [0.5, 0.5]]]}}))
    with pytest.raises(CameraOpenError, match="must both be rtsp"):
        open_camera(config_from_dict({"camera": {"source": "opencv", "device": str(camera_stream),
                                                 "detect_device": "rtsp://127.0.0.1:9/sub"}}))


def test_a_camera_that_answers_but_sends_nothing_is_given_up_on_in_time(camera_stream: Path) -> None:
    """Every reconnection succeeds and then stays silent: the reconnect budget runs from the last
    packet, not from each new connection."""
    camera = RtspCamera(camera_stream, speed=8.0, silent_after=1)
    try:
        cam = StreamCopyCamera(camera.url, detect_size=(160, 120), fps=15, read_timeout=1.0, reconnect_for=3.0)
        frames, waited = drain(cam)
    finally:
        camera.close()
    assert len(frames) == 8 * 15 and camera.connections >= 2
    assert waited < 8 / 8 + 3.0 + 1.0 + 4.0  # the stream, the budget, a read timeout, one open at most


def test_a_lost_stream_is_opened_again_and_the_recording_carries_on(http_camera: str,
                                                                    walk_files: dict[str, Path]) -> None:
    cam = StreamCopyCamera(f"{http_camera}/flaky", detect_size=(160, 120), fps=15, read_timeout=2.0,
                           reconnect_for=4.0)
    frames, waited = drain(cam, 2000)
    assert _Handler.served["/flaky"] >= 3  # dropped, back, then tried again until reconnect_for ran out
    assert 4.0 <= waited < 15
    packets = [p for f in frames for p in f.packets]
    assert 14 * 15 + 30 < len(packets) < 2 * 14 * 15
    assert all(b.dts > a.dts for a, b in itertools.pairwise(packets))  # one timeline across the gap
    once = pictures(str(walk_files["ts"]))
    assert pictures(mux(packets), format="mpegts")[-len(once):] == once  # the second connection, whole


def test_a_camera_that_comes_back_with_another_codec_is_not_recorded_under_the_old_one(
        http_camera: str, walk_files: dict[str, Path], h265_files: dict[str, Path],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="consentcam.capture")
    _Handler.other_codec = h265_files["ts"].read_bytes()
    cam = StreamCopyCamera(f"{http_camera}/switch", detect_size=(160, 120), fps=15, read_timeout=2.0,
                           reconnect_for=3.0)
    frames = list(itertools.islice(cam.frames(), 2000))
    cam.close()
    assert _Handler.served["/switch"] == 2  # came back with H.265: refused at once, not retried
    assert "now sends hevc, not h264" in caplog.text  # the daemon then exits and starts again with H.265
    packets = [p for f in frames for p in f.packets]
    assert pictures(mux(packets), format="mpegts") == pictures(str(walk_files["ts"]))  # only H.264 recorded


def test_falling_behind_a_live_stream_skips_pictures_never_packets(http_camera: str, walk_files: dict[str, Path],
                                                                   state_dir: Path) -> None:
    """The whole stream is there at once; the consumer stalls for 2.5 s at picture 30 (a detector too
    slow for the camera). Stream time runs 1/15 s per picture and skipped pictures cost almost
    nothing, so the source is about 2.4 s behind and catches up about 36 pictures later, at a keyframe."""
    config = config_from_dict({"recording": {"pre_roll": 1, "post_roll": 1}})
    vault = open_vault(state_dir)
    rec = Recorder(config, vault, camera_name="porch", fps=15, size=(320, 240))
    cam = StreamCopyCamera(f"{http_camera}/cam.ts", detect_size=(160, 120), fps=15, reconnect_for=0)
    frames = []
    for frame in itertools.islice(cam.frames(), 1000):
        frames.append(frame)
        rec.process(frame)
        if len(frames) == 30:
            time.sleep(2.5)
    rec.flush(time.time())
    cam.close()
    blind = [i for i, f in enumerate(frames) if f.luma is None]
    assert blind and blind == list(range(blind[0], blind[-1] + 1)) and 30 <= blind[0] <= 32, blind
    resumed = frames[blind[-1] + 1]
    assert resumed.luma is not None and resumed.packets[0].keyframe  # decoding restarts at a keyframe
    assert frames[-1].luma is not None and cam.skipped_pictures == len(blind) < 14 * 15 - 60
    assert rec.dropped_detection_frames == len(blind)
    packets = [p for f in frames for p in f.packets]
    assert pictures(mux(packets), format="mpegts") == pictures(str(walk_files["ts"]))  # nothing lost


def test_the_daemon_records_a_live_stream_by_copying_it_and_fails_when_it_stops(
        http_camera: str, walk_files: dict[str, Path], state_dir: Path, tmp_path: Path, passphrase_file: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"""device:
  name: copy-door
camera:
  source: opencv
  device: {http_camera}/live
  fps: 15
recording:
  pre_roll: 1s
  post_roll: 1s
storage:
  retention:
    min_free: 1MB
clock:
  mode: synchronized
log:
  format: json
""")
    daemon = DaemonProc(state_dir, config, tmp_path / "daemon.log")
    try:
        code = daemon.proc.wait(60)  # the stream ends: the clip is closed and the daemon fails
    finally:
        daemon.stop()
    assert code == 1, daemon.log_tail()
    messages = [str(line.get("msg", "")) for line in daemon.log_lines()]
    assert any("reconnecting for up to 15 s" in m for m in messages)  # it tried to get the camera back
    assert any("giving up" in m for m in messages) and any("stopped sending frames" in m for m in messages)
    status = run_cli("status", state=state_dir, config=config)
    assert "opencv-copy 320x240 @ 15 fps" in status.stdout, status.stdout  # how it recorded, for the owner
    clips = clips_json(state_dir, config)
    assert clips and all(c["status"] == "complete" for c in clips), clips
    out = tmp_path / "clip.ts"
    res = run_cli("clips", "export", clips[0]["id"], "--out", str(out), "--passphrase-file", str(passphrase_file),
                  state=state_dir, config=config)
    assert res.returncode == 0, res.stderr
    recorded, expected = pictures(str(out)), pictures(str(walk_files["ts"]))
    # bit for bit: only the camera's own bitstream decodes to exactly its pictures
    assert is_run_of(recorded, expected) and len(recorded) > 2 * 15, daemon.log_tail()


def test_camera_passwords_stay_out_of_messages_and_the_status(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = "rtsp://admin:s3cret-pw@127.0.0.1:9/stream1"  # nothing listens on port 9 of loopback
    assert without_credentials(f"open {url} or http://me:pw@cam.local/sub failed") == \
        "open rtsp://***@127.0.0.1:9/stream1 or http://***@cam.local/sub failed"
    with pytest.raises(CameraOpenError) as err:
        StreamCopyCamera(url, detect_size=(160, 120), fps=15, open_timeout=5.0)
    assert "s3cret" not in str(err.value) and "rtsp://***@127.0.0.1:9/stream1" in str(err.value)
    config = config_from_dict({"camera": {"source": "auto", "device": url}})
    source, reason = choose_source(config)
    assert source in ("synthetic", "picamera2") and "s3cret" not in reason
    with pytest.raises(CameraOpenError) as err:
        open_camera(config, "opencv")
    assert "s3cret" not in str(err.value)
    with pytest.raises(CameraOpenError) as err:
        DualStreamCamera(url, "rtsp://admin:s3cret-pw@127.0.0.1:9/stream2", detect_size=(160, 120), fps=15,
                         open_timeout=5.0)
    assert "s3cret" not in str(err.value)
    assert "s3cret" not in caplog.text


@pytest.mark.parametrize("auth", ["digest", "digest-qop", "basic"])
def test_a_camera_that_asks_for_a_password_gets_the_one_in_the_url(camera_stream: Path, auth: str) -> None:
    """Most cameras challenge every client; a password with @ : / in it is percent-encoded in the URL."""
    camera = RtspCamera(camera_stream, speed=8.0, credentials=("admin", "p@ss:w/rd"), auth=auth)
    frames = played(camera, camera.url.replace("rtsp://", "rtsp://admin:p%40ss%3Aw%2Frd@"))
    assert camera.refused >= 1  # challenged first, then answered with the right credentials
    assert camera.requests[:4] == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"] and len(frames) == 8 * 15


def test_a_camera_url_that_does_not_open_says_what_to_check(camera_stream: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """The mistakes of an IP camera install, each with its own sentence and never the password: the
    copying source, the re-encoding (OpenCV) source and camera `auto` all give the same reason."""
    caplog.set_level(logging.DEBUG)
    camera = RtspCamera(camera_stream, speed=8.0, credentials=("admin", "right-pw"))
    wrong = camera.url.replace("rtsp://", "rtsp://admin:Zq7-secret@")
    cases = {
        wrong: "the camera refused the user name or password in the URL (401 Unauthorized)",
        camera.url: "the camera wants a user name and password (401 Unauthorized): put them in the URL, as in "
                    "rtsp://USER:PASSWORD@host/path",
        camera.url.replace("rtsp://", "rtsp://admin:right-pw@").replace("/cam", "/stream9"):
            "the camera has no stream at this path (404 Not Found)",
        camera.url.replace("rtsp://", "rtsp://admin:right-pw@").replace("/cam", "/private"):
            "the camera refused this user the stream (403 Forbidden)",
        camera.url.replace("rtsp://", "rtsp://admin:Zq7/secret@"): 'the URL has an "@" after its host',
        camera.url.replace("rtsp://", "rtsp://admin:Zq7#secret@"): 'the URL has an "@" after its host',
        camera.url.replace("rtsp://", "rtsp://admin:Zq7[secret]@"): "the camera refused the user name or password",
        "rtsp://admin:Zq7-secret@127.0.0.1:9/cam": "nothing accepts connections at 127.0.0.1 port 9",
    }
    try:
        for url, expected in cases.items():
            with pytest.raises(CameraOpenError) as err:
                StreamCopyCamera(url, detect_size=(160, 120), fps=15, open_timeout=5.0)
            assert expected in str(err.value) and "Zq7" not in str(err.value), (url, str(err.value))
        with pytest.raises(CameraOpenError) as err:  # re-encoding, as for a privacy mask
            open_camera(config_from_dict({"camera": {"source": "opencv", "device": wrong, "record": "encode"}}))
        assert cases[wrong] in str(err.value)
        source, reason = choose_source(config_from_dict({"camera": {"source": "auto", "device": wrong}}))
        with socket.create_server(("127.0.0.1", 0)) as mute, pytest.raises(CameraOpenError) as err:
            StreamCopyCamera(f"rtsp://admin:Zq7-secret@127.0.0.1:{mute.getsockname()[1]}/cam", detect_size=(160, 120),
                             fps=15, open_timeout=1.0)
        assert "127.0.0.1 took the connection but sent nothing that opens as video within 1 s" in str(err.value)
        with _unanswered_port() as port, pytest.raises(CameraOpenError) as err:  # a camera switched off
            StreamCopyCamera(f"rtsp://admin:Zq7-secret@127.0.0.1:{port}/cam", detect_size=(160, 120), fps=15,
                             open_timeout=1.0)
        assert "no answer from 127.0.0.1 within 1 s; is the camera on" in str(err.value)
    finally:
        camera.close()
    assert source == "picamera2" or cases[wrong] in reason, reason
    assert camera.requests.count("PLAY") == 0
    assert "Zq7" not in caplog.text and "Zq7" not in str(err.value) and "Zq7" not in reason


@contextlib.contextmanager
def _unanswered_port() -> Iterator[int]:
    """A loopback port whose connection attempts go unanswered (its backlog is full): what a camera
    that is switched off, or behind a firewall that drops packets, looks like."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        waiting = []
        try:
            for _ in range(3):
                client = socket.socket()
                client.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    client.connect(("127.0.0.1", port))
                waiting.append(client)
            time.sleep(0.1)
            yield port
        finally:
            for client in waiting:
                client.close()


def test_a_password_with_quotes_and_spaces_stays_out_of_every_message(camera_stream: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Typed raw into the URL, FFmpeg logs in with it; the scrubbing pattern stops at quotes and
    spaces, so the camera URL's credentials are remembered and hidden as a whole."""
    caplog.set_level(logging.DEBUG)
    password = "pa'ss \"Zq7"
    camera = RtspCamera(camera_stream, speed=8.0, credentials=("admin", password))
    # the stream, then lost, reconnected, lost and given up
    frames = played(camera, camera.url.replace("rtsp://", f"rtsp://admin:{password}@"), read_timeout=1.0,
                    reconnect_for=1.5)
    assert len(frames) >= 8 * 15 and camera.connections >= 2
    assert "lost the stream" in caplog.text and "Zq7" not in caplog.text and "pa'ss" not in caplog.text
    assert without_credentials(f"stopped reading: \"rtsp://admin:{password}@127.0.0.1/cam\"") == \
        'stopped reading: "rtsp://***@127.0.0.1/cam"'


def test_a_password_changed_on_the_camera_is_named_when_reconnecting_gives_up(
        camera_stream: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="consentcam.capture")
    camera = RtspCamera(camera_stream, speed=8.0, credentials=("admin", "old-pw"))
    try:
        cam = StreamCopyCamera(camera.url.replace("rtsp://", "rtsp://admin:old-pw@"), detect_size=(160, 120), fps=15,
                               read_timeout=1.0, reconnect_for=2.0)
        frames = []
        for frame in itertools.islice(cam.frames(), 1000):
            frames.append(frame)
            camera.credentials = ("admin", "new-pw")  # the session already playing goes on
        cam.close()
    finally:
        camera.close()
    assert len(frames) == 8 * 15 and camera.connections >= 2
    assert "giving up (last attempt: rtsp://***@" in caplog.text
    assert "refused the user name or password in the URL (401 Unauthorized)" in caplog.text.split("giving up")[-1]


def test_the_daemon_with_a_wrong_camera_password_stops_and_says_so(camera_stream: Path, state_dir: Path,
                                                                   tmp_path: Path) -> None:
    camera = RtspCamera(camera_stream, speed=8.0, credentials=("admin", "right-pw"))
    config = tmp_path / "config.yaml"
    config.write_text(f"camera:\n  source: opencv\n  device: {camera.url.replace('rtsp://', 'rtsp://admin:wrong-pw@')}\n"
                      "log:\n  format: json\n")
    daemon, code = daemon_until_exit(state_dir, config, tmp_path / "daemon.log", camera, 60)
    assert code == 1, daemon.log_tail()
    text = (tmp_path / "daemon.log").read_text()
    assert "refused the user name or password" in text and "wrong-pw" not in text, daemon.log_tail()


def daemon_until_exit(state_dir: Path, config: Path, log: Path, camera: RtspCamera,
                      timeout: float) -> tuple[DaemonProc, int]:
    """Run the daemon until it exits by itself (at most `timeout` s); the test camera is closed after."""
    daemon = DaemonProc(state_dir, config, log)
    try:
        return daemon, daemon.proc.wait(timeout)
    finally:
        daemon.stop()
        camera.close()


def test_a_camera_that_ends_sessions_without_keep_alives_is_kept_playing(camera_stream: Path) -> None:
    """A strict camera closes a session that sends no request within the timeout it announced in
    SETUP; FFmpeg's RTSP client keeps it alive (GET_PARAMETER), so one connection carries it all."""
    camera = RtspCamera(camera_stream, speed=1.6, session_timeout=2.0)
    frames = played(camera)
    assert len(frames) == 8 * 15 and camera.connections == 1 and camera.expired == 0
    # 5 s of playing (plus the read-ahead), a keep-alive once a second: half the session timeout
    assert 3 <= camera.requests.count("GET_PARAMETER") <= 8, camera.requests


def test_the_test_camera_does_end_a_session_that_sends_no_keep_alive(camera_stream: Path) -> None:
    """The check above could not fail if the camera never enforced its timeout: a client that only
    reads is cut off."""
    camera = RtspCamera(camera_stream, speed=2.0, session_timeout=1.0)
    try:
        with socket.create_connection(("127.0.0.1", int(camera.url.split(":")[2].split("/")[0])), timeout=10) as conn:
            for n, method in enumerate(["DESCRIBE", "SETUP", "PLAY"]):
                conn.sendall(f"{method} {camera.url} RTSP/1.0\r\nCSeq: {n + 1}\r\n\r\n".encode())
            received, deadline = 0, time.monotonic() + 10
            while time.monotonic() < deadline and (chunk := conn.recv(65536)):
                received += len(chunk)
    finally:
        camera.close()
    assert camera.expired == 1 and received > 0
    assert camera.sent_units < 8 * 15 // 2  # cut off after about 1 s of the 4 s of playing


def test_a_camera_that_changes_its_resolution_mid_stream_is_recorded_through_the_change(tmp_path: Path) -> None:
    """Some cameras switch encoding profiles (day/night, or an owner changing the resolution): the new
    parameter sets come in band, the recording keeps both parts, the detector gets its plane throughout."""
    options = {"preset": "veryfast", "crf": "26", "x264-params": "bframes=0:keyint=15"}
    small = write_video(SyntheticScene(2, "walk", 3), tmp_path / "small.ts", size=(320, 240), options=options)
    large = write_video(SyntheticScene(3, "walk", 3), tmp_path / "large.ts", size=(640, 480), options=options)
    both = tmp_path / "both.ts"
    both.write_bytes(small.read_bytes() + large.read_bytes())
    cam = StreamCopyCamera(str(both), detect_size=(160, 120), fps=15, reconnect_for=0)
    frames = list(itertools.islice(cam.frames(), 500))
    cam.close()
    assert len(frames) == 90 and all(f.luma is not None and f.luma.shape == (120, 160) for f in frames)
    with av.open(mux([p for f in frames for p in f.packets]), format="mpegts") as container:
        sizes = [(picture.width, picture.height) for picture in container.decode(video=0)]
    assert sizes == [(320, 240)] * 45 + [(640, 480)] * 45


def test_a_camera_that_offers_rtp_over_udp_only_is_recorded(camera_stream: Path) -> None:
    """TCP is asked for first (rtsp_flags=prefer_tcp); an older camera that refuses it (461) is read
    over UDP instead, on loopback here, where nothing is lost."""
    camera = RtspCamera(camera_stream, speed=2.0, udp_only=True)
    frames = played(camera)
    assert camera.requests.count("SETUP") == 2  # TCP asked for first, refused, then UDP
    assert camera.transports == ["udp"] and len(frames) == 8 * 15
    packets = [p for f in frames for p in f.packets]
    assert pictures(mux(packets), format="mpegts") == pictures(str(camera_stream))
    # OpenCV (re-encoding sources, the auto probe) falls back the same way with its own defaults
    camera = RtspCamera(camera_stream, speed=2.0, udp_only=True)
    try:
        cam = OpenCVCamera(camera.url, main_size=(320, 240), detect_size=(160, 120), fps=15, encode=False,
                           reconnect_for=0)
        try:
            seen = list(itertools.islice(cam.frames(), 1000))
        finally:
            cam.close()
    finally:
        camera.close()
    assert camera.transports == ["udp"] and len(seen) >= 8 * 15 - 2


def test_an_opencv_camera_closed_from_another_thread_during_a_stalled_read_ends_without_crashing(
        camera_stream: Path) -> None:
    """Re-encoding sources read through OpenCV; releasing its capture under a read in progress crashed
    the process. The reader now releases it itself, once the read times out (4 s, not OpenCV's 30)."""
    camera = RtspCamera(camera_stream, speed=4.0, hang_after=45)
    try:
        cam = OpenCVCamera(camera.url, main_size=(320, 240), detect_size=(160, 120), fps=15, encode=False)
        # once the camera has stalled, the reader waits inside OpenCV's read
        frames, ended, took = closed_from_another_thread(cam, lambda seen: len(seen) >= 30, settle=1.5)
    finally:
        camera.close()
    assert ended and 30 <= len(frames) <= 45
    assert took < 4 + 3  # the read timeout, not OpenCV's default 30 s


def closed_from_another_thread(cam: OpenCVCamera, until: Callable[[list], bool], settle: float,
                               ) -> tuple[list, bool, float]:
    """Read `cam` in a thread until `until(frames so far)` (20 s at most), wait `settle` s, close it
    from here: (the frames, whether the reader ended within 15 s, how long close took to end it)."""
    frames: list = []
    reader = threading.Thread(target=lambda: frames.extend(cam.frames()), daemon=True)
    reader.start()
    deadline = time.monotonic() + 20
    while not until(frames) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(settle)
    started = time.monotonic()
    cam.close()
    reader.join(15)
    return frames, not reader.is_alive(), time.monotonic() - started


def test_a_re_encoded_stream_that_drops_is_opened_again_and_the_recording_carries_on(
        camera_stream: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Re-encoding sources (privacy masks, webcams, MJPEG cameras) reconnect like copied ones: the camera
    plays the stream twice, one connection each, then is gone (connections closed at once)."""
    caplog.set_level(logging.INFO, logger="consentcam.capture")
    camera = RtspCamera(camera_stream, speed=8.0, sessions=2)
    try:
        cam = OpenCVCamera(camera.url, main_size=(320, 240), detect_size=(160, 120), fps=15, reconnect_for=3.0)
        frames, waited = drain(cam, 2000)  # type: ignore[arg-type]
    finally:
        camera.close()
    assert camera.connections >= 3  # played, played again, then refused until the budget ran out
    assert 2 * 8 * 15 - 4 <= len(frames) <= 2 * 8 * 15
    assert caplog.text.count("reconnected") == 1 and "no stream for 3 s; giving up (last attempt:" in caplog.text
    assert waited < 2 * 8 / 8 + 3.0 + 2.0 + 3.0  # both plays, the budget, an attempt, slack
    packets = [p for f in frames for p in f.packets]
    assert all(b.pts > a.pts for a, b in itertools.pairwise(packets))  # one timeline across the gap
    assert len(pictures(mux(packets), format="mpegts")) == len(frames)  # every picture recorded and decodable


def test_closing_a_re_encoded_stream_while_it_reconnects_ends_it_at_once(camera_stream: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="consentcam.capture")
    camera = RtspCamera(camera_stream, speed=8.0, sessions=1)
    try:
        cam = OpenCVCamera(camera.url, main_size=(320, 240), detect_size=(160, 120), fps=15, encode=False)
        # closed 1 s after the camera went away: between attempts, or inside one
        frames, ended, took = closed_from_another_thread(cam, lambda _: "lost the stream" in caplog.text, settle=1.0)
    finally:
        camera.close()
    assert "lost the stream; reconnecting for up to" in caplog.text
    assert ended and len(frames) >= 8 * 15 - 2
    assert took < 3.0, took  # not the 15 s budget: a pause ends at once, an attempt to a gone camera fails fast
    assert "giving up" not in caplog.text


def test_the_daemon_keeps_recording_a_re_encoded_camera_across_a_drop(camera_stream: Path, state_dir: Path,
                                                                       tmp_path: Path, passphrase_file: Path) -> None:
    """Property 8 for a re-encoded IP camera: the camera plays, drops, comes back and plays again; the
    daemon records both plays in one run, and only the camera staying away ends it (status 1)."""
    camera = RtspCamera(camera_stream, speed=2.0, sessions=2)
    config = tmp_path / "config.yaml"
    config.write_text(f"""camera:
  source: opencv
  device: {camera.url}
  record: encode
  width: 320
  height: 240
  fps: 15
recording:
  pre_roll: 1s
  post_roll: 1s
  merge_gap: 0s
storage:
  retention:
    min_free: 1MB
log:
  format: json
""")
    daemon, code = daemon_until_exit(state_dir, config, tmp_path / "daemon.log", camera, 90)
    assert code == 1, daemon.log_tail()
    messages = [str(line.get("msg", "")) for line in daemon.log_lines()]
    assert sum("reconnected" in m for m in messages) == 1, daemon.log_tail()
    assert any("giving up" in m for m in messages) and any("stopped sending frames" in m for m in messages)
    clips = clips_json(state_dir, config)
    assert all(c["status"] == "complete" for c in clips), clips
    recorded = 0
    for clip in clips:
        out = tmp_path / f"{clip['id']}.ts"
        res = run_cli("clips", "export", clip["id"], "--out", str(out), "--passphrase-file", str(passphrase_file),
                      state=state_dir, config=config)
        assert res.returncode == 0, res.stderr
        recorded += len(pictures(str(out)))
    assert recorded > 8 * 15 + 15, (clips, recorded)  # one play has 120 pictures: both plays were recorded


def test_a_re_encoded_stream_is_timed_by_the_camera_not_by_camera_fps(tmp_path: Path) -> None:
    """A 25 fps camera with camera.fps at 15: recorded and detected at 25, each picture at its own
    timestamp (1/25 s apart, although the first second arrives in one burst). Before, the recording
    was stamped 1/15 s per picture and played at 60 % speed."""
    video = write_video(SyntheticScene(2, "walk", 4, fps=25), tmp_path / "cam25.ts", size=(320, 240),
                        options={"preset": "veryfast", "crf": "26", "x264-params": "bframes=0:keyint=25"})
    camera = RtspCamera(video, speed=1.0)
    try:
        cam = OpenCVCamera(camera.url, main_size=(320, 240), detect_size=(160, 120), fps=15, reconnect_for=0)
        assert cam.fps == 25
        frames = list(itertools.islice(cam.frames(), 500))
        cam.close()
    finally:
        camera.close()
    packets = [p for f in frames for p in f.packets]
    assert len(frames) >= 4 * 25 - 2 and len(packets) == len(frames)
    assert {b.pts - a.pts for a, b in itertools.pairwise(packets)} == {90_000 // 25}


def test_mjpeg_over_http_is_timed_as_it_arrives_at_camera_fps(http_camera: str) -> None:
    """MJPEG over HTTP carries no timestamps; FFmpeg makes up 25 fps and stamps 1/25 s apart. An
    8 fps camera stamped that way was recorded three times too fast: its pictures are now timed
    as they arrive, and its rate is camera.fps."""
    cam = OpenCVCamera(f"{http_camera}/video.mjpg", main_size=(320, 240), detect_size=(160, 120), fps=MJPEG_FPS,
                       reconnect_for=0)
    assert not cam.timed_by_camera and cam.fps == MJPEG_FPS
    started = time.monotonic()
    frames = list(itertools.islice(cam.frames(), 200))
    took = time.monotonic() - started
    cam.close()
    packets = [p for f in frames for p in f.packets]
    assert len(frames) >= 4 * MJPEG_FPS - 2 and len(packets) == len(frames)
    span = (packets[-1].pts - packets[0].pts) / 90_000
    assert 0.8 * took - 1.0 < span <= took, (span, took)  # the recording lasts as long as it took to arrive


def test_camera_check_says_when_camera_fps_is_not_what_an_http_stream_sends(http_camera: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("camera:\n  fps: 15\n")
    res = run_cli("camera", "check", "--device", f"{http_camera}/video.mjpg", "--seconds", "3", "--json",
                  config=config, state=tmp_path / "state", timeout=60)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["recorded_as"].startswith("re-encoded") or "libx264" in report["recorded_as"], report
    assert 6 <= report["measured"]["arrival_fps"] <= 10, report["measured"]
    assert any("but camera.fps is 15: this stream does not say its own rate" in note for note in report["advice"]), \
        report["advice"]


def test_a_stop_while_the_camera_is_being_reconnected_ends_the_daemon_at_once(
        camera_stream: Path, state_dir: Path, tmp_path: Path) -> None:
    """SIGTERM while the camera is away: no frame comes to show the frame loop the stop, so after
    1 s the daemon closes the camera, which ends the wait between attempts at once."""
    camera = RtspCamera(camera_stream, speed=4.0, sessions=1)
    config = tmp_path / "config.yaml"
    config.write_text(f"camera:\n  source: opencv\n  device: {camera.url}\n  record: encode\n"
                      "storage:\n  retention:\n    min_free: 1MB\nlog:\n  format: json\n")
    daemon = DaemonProc(state_dir, config, tmp_path / "daemon.log")
    try:
        deadline = time.monotonic() + 60
        while daemon.proc.poll() is None and time.monotonic() < deadline and not any(
                "reconnecting for up to" in str(line.get("msg", "")) for line in daemon.log_lines()):
            time.sleep(0.2)
        time.sleep(1.0)
        started = time.monotonic()
        code = daemon.stop(timeout=20)
        took = time.monotonic() - started
    finally:
        if daemon.proc.poll() is None:
            daemon.stop(signal.SIGKILL)
        camera.close()
    messages = [str(line.get("msg", "")) for line in daemon.log_lines()]
    assert code == 0, daemon.log_tail()
    assert any("closing the camera to unblock it" in m for m in messages), daemon.log_tail()
    assert took < 1.0 + 3.0, took  # the notice, then an attempt to a camera that is gone fails fast
    assert not any("giving up" in m for m in messages)


def test_an_h264_stream_over_http_keeps_the_cameras_own_timing_when_re_encoded(http_camera: str) -> None:
    """Unlike MJPEG, MPEG-TS over HTTP carries timestamps and its rate: the whole stream arrives at
    once here, and is still recorded 1/15 s a picture (camera.fps says 10)."""
    cam = OpenCVCamera(f"{http_camera}/cam.ts", main_size=(320, 240), detect_size=(160, 120), fps=10,
                       reconnect_for=0)
    assert cam.timed_by_camera and cam.fps == 15
    frames = list(itertools.islice(cam.frames(), 500))
    cam.close()
    packets = [p for f in frames for p in f.packets]
    assert len(packets) == len(frames) >= 14 * 15 - 2
    assert {b.pts - a.pts for a, b in itertools.pairwise(packets)} == {90_000 // 15}
