"""Real-world video files through the file source that `consentcam detect` reads: what owners and
evaluators feed it is rarely a clean MP4 written in one go (ring-buffer exports cut mid-GOP, files
with holes or a damaged packet, odd codecs, a still picture as the first stream)."""

from __future__ import annotations

import fractions
import json
import re
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from edge.capture.frames import CameraOpenError
from edge.capture.opencv_source import OpenCVCamera, VideoFileReader, frame_luma
from edge.capture.synthetic import SyntheticScene
from edge.config import MotionConfig, RecordingConfig
from edge.recording.analysis import analyse

SIZE = (320, 240)


def _encode(path: Path, scene: SyntheticScene, *, pts_of=None, options: dict[str, str] | None = None,  # type: ignore[no-untyped-def]
            before=None, rate: int = 15, rotation: int = 0) -> Path:  # type: ignore[no-untyped-def]
    """The scene as H.264 at `rate` fps; `pts_of(i)` gives frame i's timestamp in 1/rate s units (a hole
    is a jump); `before(container)` adds a stream ahead of the video and returns what writes it (every
    stream must exist before the first packet is written); `rotation`: a display matrix turning the
    picture counter-clockwise by that many degrees to show it, the picture stored turned back by it,
    as a phone stores it."""
    turns = rotation // 90
    stored = SIZE[::-1] if turns % 2 else SIZE
    with av.open(str(path), "w") as container:
        write_before = before(container) if before is not None else None
        stream = container.add_stream("libx264", rate=rate, options={"preset": "ultrafast", **(options or {})})
        stream.width, stream.height, stream.pix_fmt = *stored, "yuv420p"
        stream.codec_context.time_base = fractions.Fraction(1, rate)
        if rotation:
            stream.set_display_rotation(rotation)
        if write_before is not None:
            write_before()
        for i in range(scene.frame_count):
            picture = np.ascontiguousarray(np.rot90(scene.bgr(i, *SIZE), -turns))
            frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
            frame.pts = i if pts_of is None else pts_of(i)
            frame.time_base = fractions.Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _detect(path: Path) -> tuple[float, int, list]:  # type: ignore[type-arg]
    cam = OpenCVCamera(str(path), main_size=SIZE, detect_size=SIZE, fps=15, encode=False, time_origin=0.0)
    try:
        result = analyse(((f.time, f.luma) for f in cam.frames()), cam.fps, MotionConfig(), RecordingConfig())
    finally:
        cam.close()
    return cam.fps, result.frames, result.events


def _detect_cli(video: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", "detect", str(video), "--json", *args],
                          capture_output=True, text=True, timeout=120)


def _walk() -> SyntheticScene:
    scene = SyntheticScene(1, "walk", 20.0, 15)
    assert len(scene.ground_truth.motion) == 1
    return scene


def test_a_damaged_packet_is_skipped_and_the_rest_of_the_file_still_counts(tmp_path: Path) -> None:
    # One corrupt NAL length in the middle of an MP4 (a bad sector, a cut download) used to end the
    # analysis at that packet: a person on screen after it was never seen.
    scene = _walk()
    video = _encode(tmp_path / "walk.mp4", scene, options={"g": "30"})
    with av.open(str(video)) as c:
        positions = [p.pos for p in c.demux(c.streams.video[0]) if p.pos is not None and p.size]
    data = bytearray(video.read_bytes())
    data[positions[100]:positions[100] + 4] = b"\xff\xff\xff\xff"
    video.write_bytes(bytes(data))
    _fps, frames, events = _detect(video)
    truth = scene.ground_truth.motion[0]
    assert frames >= scene.frame_count - 30, frames  # at most the damaged group of pictures is lost
    assert len(events) == 1 and events[0].start < truth.end - 2 and events[0].end > truth.end - 1, (events, truth)


def test_a_recording_cut_mid_gop_decodes_and_counts_from_its_own_start(tmp_path: Path) -> None:
    # Ring-buffer and NVR exports start wherever the cut fell: the first pictures refer to a keyframe
    # that is not in the file. Before, such a file gave "no frames could be decoded".
    scene = SyntheticScene(1, "walk", 40.0, 15)
    whole = _encode(tmp_path / "whole.ts", scene, options={"g": "150", "keyint_min": "150", "sc_threshold": "0"})
    with av.open(str(whole)) as c:
        stream = c.streams.video[0]
        cut_at = next(p.pos for p in c.demux(stream) if p.pts is not None and p.pts * stream.time_base >= 12)
    cut = tmp_path / "cut.ts"
    cut.write_bytes(whole.read_bytes()[cut_at - cut_at % 188:])
    fps, frames, events = _detect(cut)
    assert fps == pytest.approx(15.0)
    assert 0 < frames < scene.frame_count - 12 * 15
    later = [s for s in scene.ground_truth.motion if s.start > 20.0]  # after the first keyframe in the cut
    assert later, scene.ground_truth.motion
    for subject in later:
        # the file's own start is 12 s into the scene: times are on its timeline, not from its
        # first decodable picture (8 s further on)
        assert any(abs(ev.start - (subject.start - 12.0)) < 0.8 for ev in events), (events, later)


def test_a_file_with_a_long_hole_keeps_its_real_frame_rate(tmp_path: Path) -> None:
    # An MP4's average rate counts the hole: 30 s of footage with 30 minutes missing in the middle
    # said 0.5 fps, the detector was set for it and the file's foliage became one event from 0.2 s
    # to the end. The usual spacing of the timestamps is the rate.
    scene = SyntheticScene(1, "foliage", 30.0, 15)
    half = scene.frame_count // 2
    video = _encode(tmp_path / "hole.mp4", scene, pts_of=lambda i: i if i < half else i + 1800 * 15)
    assert VideoFileReader(str(video)).fps == pytest.approx(15.0)
    fps, frames, events = _detect(video)
    assert fps == pytest.approx(15.0) and frames == scene.frame_count
    assert events == [], events


def test_the_main_picture_is_read_when_a_still_image_comes_first(tmp_path: Path) -> None:
    def cover(container):  # type: ignore[no-untyped-def]
        still = container.add_stream("mjpeg", rate=1)
        still.width, still.height, still.pix_fmt = 64, 64, "yuvj420p"

        def write() -> None:
            picture = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="bgr24")
            for packet in [*still.encode(picture.reformat(format="yuvj420p")), *still.encode(None)]:
                container.mux(packet)
        return write

    scene = _walk()
    video = _encode(tmp_path / "two.mkv", scene, before=cover)
    fps, frames, events = _detect(video)
    assert fps == pytest.approx(15.0) and frames == scene.frame_count
    assert len(events) == 1, events


def test_a_video_codec_this_ffmpeg_cannot_decode_is_one_clear_error(tmp_path: Path) -> None:
    scene = SyntheticScene(1, "quiet", 2.0, 15)
    video = _encode(tmp_path / "odd.avi", scene)
    data = video.read_bytes()
    assert b"H264" in data
    video.write_bytes(data.replace(b"H264", b"QQQQ"))
    with pytest.raises(CameraOpenError, match="no decoder for its video"):
        VideoFileReader(str(video))
    cli = subprocess.run([sys.executable, "-m", "edge", "detect", str(video), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode != 0 and "no decoder for its video" in cli.stderr, cli
    assert "Traceback" not in cli.stderr, cli.stderr


@pytest.mark.parametrize(("color_range", "expect"), [(1, (0, 255)), (2, (16, 235)), (0, (16, 235))])
def test_grey_pictures_are_stretched_only_when_they_say_limited_range(color_range: int,
                                                                      expect: tuple[int, int]) -> None:
    # Monochrome HEVC decodes to "gray" marked limited range (16-235); the detector wants full range,
    # as from every colour format. Grey pictures that do not say are taken as full range.
    grey = np.full(SIZE[::-1], 16, np.uint8)
    grey[:, SIZE[0] // 2:] = 235
    frame = av.VideoFrame.from_ndarray(grey, format="gray")
    frame.color_range = color_range
    luma = frame_luma(frame, SIZE)
    assert (int(luma.min()), int(luma.max())) == expect


def test_detect_reads_a_file_with_a_hole_on_its_real_timeline(tmp_path: Path) -> None:
    # the whole command: JSON with the file's rate, and the walker where a player shows them
    scene = _walk()
    hole = 600 * 15
    video = _encode(tmp_path / "hole.mp4", scene, pts_of=lambda i: i if i < 30 else i + hole)
    cli = subprocess.run([sys.executable, "-m", "edge", "detect", str(video), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    out = json.loads(cli.stdout)
    assert out["fps"] == pytest.approx(15.0) and out["frames"] == scene.frame_count
    truth = scene.ground_truth.motion[0]
    assert len(out["events"]) == 1, out
    assert abs(out["events"][0]["start"] - (truth.start + 600.0)) < 0.8, (out, truth)


def _empty_recording(path: Path, options: dict[str, str] | None = None) -> Path:
    """An H.264 MP4 whose header was written and no picture after it (the camera or the recorder
    stopped first)."""
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=15, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
        stream.codec_context.time_base = fractions.Fraction(1, 15)
        container.start_encoding()  # the header, though no packet follows
    return path


@pytest.mark.parametrize(("options", "says"), [
    # fragmented (as recorders stream to disk): the track is declared up front, then nothing
    ({"movflags": "frag_keyframe+empty_moov"}, "its video stream holds no frames"),
    # finished with no sample: FFmpeg writes no track at all
    ({}, "holds no streams, so no video frames"),
])
def test_an_mp4_with_no_frames_says_so_and_fails_like_an_unreadable_file(tmp_path: Path, options: dict[str, str],
                                                                       says: str) -> None:
    # Before: "no frames could be decoded (not a video file?)" and "has no video stream".
    video = _empty_recording(tmp_path / "empty.mp4", options)
    with av.open(str(video)) as c:  # the file is what it claims: no packet with data in it
        assert not any(p.size for s in c.streams.video for p in c.demux(s))
    cli = _detect_cli(video)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    unreadable = _detect_cli(junk)
    assert cli.returncode == unreadable.returncode != 0 and cli.stdout == "", cli
    expected = f"consentcam: {video}: {says} (a recording stopped before its first frame was written?)"
    assert cli.stderr.strip() == expected, cli.stderr


def test_a_one_frame_mpeg_ts_has_its_codecs_rate(tmp_path: Path) -> None:
    # Too short for FFmpeg to measure an average rate or for us to measure the spacing: its guess
    # from the H.264 time base said 24 (twice the rate) and detect reported it.
    video = _encode(tmp_path / "one.ts", SyntheticScene(1, "quiet", 1 / 12, 12), rate=12)
    cli = _detect_cli(video)
    assert cli.returncode == 0, cli.stderr
    out = json.loads(cli.stdout)
    assert (out["fps"], out["frames"], out["seconds"]) == (12.0, 1, pytest.approx(1 / 12, abs=0.001)), out


def _without_timing(sps: bytes) -> bytes:
    """An H.264 SPS NAL unit (header byte first, no start code) with its VUI timing taken out, as many
    cameras write it (x264 always writes it)."""
    rbsp = sps[1:].replace(b"\x00\x00\x03", b"\x00\x00")
    bits = "".join(f"{b:08b}" for b in rbsp)
    at = 0

    def u(n: int) -> int:
        nonlocal at
        at += n
        return int(bits[at - n:at], 2)

    def ue() -> int:
        return u(2 * (bits.index("1", at) - at) + 1) - 1

    profile = u(24) >> 16
    ue()  # seq_parameter_set_id
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        if ue() == 3:  # chroma_format_idc 4:4:4: separate_colour_plane_flag
            u(1)
        ue(), ue(), u(1)  # bit depths, qpprime_y_zero_transform_bypass
        assert u(1) == 0, "scaling matrices are not parsed here"
    ue()  # log2_max_frame_num_minus4
    poc_type = ue()
    assert poc_type in (0, 2), poc_type
    if poc_type == 0:
        ue()
    ue(), u(1), ue(), ue()  # reference frames, gaps allowed, size in macroblocks
    if u(1) == 0:  # not frame_mbs_only: mb_adaptive_frame_field
        u(1)
    u(1)  # direct_8x8_inference
    if u(1):  # cropping
        ue(), ue(), ue(), ue()
    assert u(1), "no VUI"
    if u(1) and u(8) == 255:  # aspect ratio: an explicit one
        u(32)
    if u(1):  # overscan
        u(1)
    if u(1) and u(5) & 1:  # video signal type, then its colour description
        u(24)
    if u(1):  # chroma location
        ue(), ue()
    assert bits[at] == "1", "no timing to take out"
    kept = (bits[:at] + "0" + bits[at + 66:]).rstrip("0")  # flag off, its 65 bits out; the stop bit ends it
    kept += "0" * (-len(kept) % 8)
    out = int(kept, 2).to_bytes(len(kept) // 8, "big")
    return sps[:1] + re.sub(b"\x00\x00(?=[\x00-\x03])", b"\x00\x00\x03", out)  # emulation prevention


def _strip_timing(video: Path) -> Path:
    """The raw H.264 stream with every SPS's VUI timing taken out."""
    parts = re.split(b"(\x00\x00\x00?\x01)", video.read_bytes())  # NAL units between start codes
    out = video.with_name("untimed" + video.suffix)
    out.write_bytes(b"".join(_without_timing(p) if i % 2 == 0 and p and p[0] & 0x1F == 7 else p
                             for i, p in enumerate(parts)))
    with av.open(str(out)) as c:  # it decodes, and FFmpeg now knows no rate for it
        assert not c.streams.video[0].codec_context.framerate
        assert sum(1 for _ in c.decode(video=0)) > 0
    return out


@pytest.mark.parametrize("ext", ["h264", "264"])
def test_a_raw_h264_stream_has_the_rate_its_sps_states(tmp_path: Path, ext: str) -> None:
    # No container, no timestamps: FFmpeg says 25 fps for any raw stream, and detect did, so a 12 fps
    # camera's events came at 12/25 of their time.
    scene = SyntheticScene(1, "walk", 20.0, 12)
    truth = scene.ground_truth.motion[0]
    cli = _detect_cli(_encode(tmp_path / f"walk.{ext}", scene, rate=12))
    assert cli.returncode == 0 and "WARNING" not in cli.stderr, cli.stderr
    out = json.loads(cli.stdout)
    assert (out["fps"], out["frames"], out["seconds"]) == (12.0, scene.frame_count, 20.0), out
    assert len(out["events"]) == 1 and abs(out["events"][0]["start"] - truth.start) < 0.8, (out, truth)


def test_a_raw_h264_stream_without_timing_is_taken_as_25_fps_with_a_warning_or_given_fps(tmp_path: Path) -> None:
    scene = SyntheticScene(1, "walk", 20.0, 12)
    truth = scene.ground_truth.motion[0]
    untimed = _strip_timing(_encode(tmp_path / "walk.h264", scene, rate=12))
    cli = _detect_cli(untimed)
    assert cli.returncode == 0, cli.stderr
    assert "does not state its frame rate" in cli.stderr and "taking 25 fps" in cli.stderr, cli.stderr
    out = json.loads(cli.stdout)
    assert out["fps"] == 25.0 and out["seconds"] == pytest.approx(scene.frame_count / 25), out
    cli = _detect_cli(untimed, "--fps", "12")
    assert cli.returncode == 0 and "WARNING" not in cli.stderr, cli.stderr
    out = json.loads(cli.stdout)
    assert (out["fps"], out["seconds"]) == (12.0, 20.0), out
    assert len(out["events"]) == 1 and abs(out["events"][0]["start"] - truth.start) < 0.8, (out, truth)
    # a file that states its rate keeps it, and says --fps is not for it
    cli = _detect_cli(_encode(tmp_path / "walk.mp4", scene, rate=12), "--fps", "25")
    assert cli.returncode == 0 and json.loads(cli.stdout)["fps"] == 12.0, cli
    assert "--fps is only for files that state none" in cli.stderr, cli.stderr
    cli = _detect_cli(untimed, "--fps", "0")
    assert cli.returncode == 1 and cli.stderr.strip() == "consentcam: --fps: must be between 1 and 240, got 0"


@pytest.mark.parametrize("rotation", [-90, 90, 180])
def test_a_rotated_phone_clip_is_detected_as_it_is_shown(tmp_path: Path, rotation: int) -> None:
    # Zones, ignore polygons and event areas are drawn on the picture as a player shows it; the
    # detector saw the stored picture, sideways for a phone held upright (-90), and a polygon over
    # the path a walker takes on screen covered some other part of it.
    scene = _walk()
    upright = json.loads(_detect_cli(_encode(tmp_path / "upright.mp4", scene)).stdout)
    video = _encode(tmp_path / "phone.mp4", scene, rotation=rotation)
    with av.open(str(video)) as c:  # what the file says: stored turned, shown upright
        assert next(c.decode(video=0)).rotation % 360 == rotation % 360
    cli = _detect_cli(video)
    assert cli.returncode == 0, cli.stderr
    out = json.loads(cli.stdout)
    assert len(upright["events"]) == len(out["events"]) == 1, (upright, out)
    assert out["events"][0]["area"] == pytest.approx(upright["events"][0]["area"], abs=0.05), (upright, out)
    assert out["events"][0]["start"] == pytest.approx(upright["events"][0]["start"], abs=0.2), (upright, out)
    top, bottom = upright["events"][0]["area"][1] - 0.05, upright["events"][0]["area"][3] + 0.05
    config = tmp_path / "ignore.yaml"  # the walker's path on screen, a little larger
    config.write_text(f"motion:\n  ignore:\n    - [[0, {top}], [1, {top}], [1, {bottom}], [0, {bottom}]]\n")
    cli = _detect_cli(video, "--config", str(config))
    assert cli.returncode == 0 and json.loads(cli.stdout)["events"] == [], cli
    # the detection plane is the configured size of the picture as shown, and so is the recording
    cam = OpenCVCamera(str(video), main_size=SIZE, detect_size=SIZE, fps=15, time_origin=0.0)
    try:
        first = next(iter(cam.frames()))
    finally:
        cam.close()
    assert first.luma.shape == SIZE[::-1]
    decoder = av.CodecContext.create("h264", "r")
    recorded = [f.to_ndarray(format="bgr24") for p in first.packets for f in decoder.decode(av.Packet(p.data))]
    recorded += [f.to_ndarray(format="bgr24") for f in decoder.decode(None)]
    assert recorded and recorded[0].shape[:2] == SIZE[::-1]
    difference = float(np.abs(recorded[0].astype(int) - scene.bgr(0, *SIZE)).mean())
    assert difference < 8, difference  # turned the wrong way or not at all: over 50
