"""The Raspberry Pi camera backend (edge/capture/picamera2_source.py), run against a stand-in for
picamera2 (tests/fake_picamera2: written here from picamera2's documented API, not the library;
the real one needs libcamera and a Pi). What these tests can show: our adapter's use of that API
(encoder choice, packets and their timestamps, lores luma, privacy masks on padded rows, frames
missed by a slow loop) and the daemon on top of it. What they cannot: the Pi's ISP, its hardware
encoder and libcamera's real timing."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import run_cli
from daemon_helpers import DaemonProc, clips_json, wait_for

from edge.capture.frames import CapturedFrame
from edge.capture.masks import rasterise
from edge.capture.synthetic import SyntheticScene

FAKE = Path(__file__).parent / "fake_picamera2"
MASK = [((0.6, 0.1), (0.95, 0.1), (0.95, 0.6), (0.6, 0.6))]


@pytest.fixture
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """picamera2 importable in this process, for this test only."""
    monkeypatch.syspath_prepend(str(FAKE))
    monkeypatch.setenv("FAKE_PICAMERA2_SCENE", "2:walk:8")
    yield
    for name in [n for n in sys.modules if n == "picamera2" or n.startswith("picamera2.")]:
        del sys.modules[name]


def _open(size: tuple[int, int], mask: bool = False, fps: float = 15.0) -> object:  # a float, as in the config
    from edge.capture.picamera2_source import PiCamera

    privacy = rasterise(MASK, *size) if mask else None
    return PiCamera(main_size=size, detect_size=(320, 240), fps=fps, bitrate=1_000_000, keyframe_interval=1.0,
                    privacy_mask=privacy)


def _run(cam: object, seconds: float, stall_at: int | None = None) -> list[CapturedFrame]:
    frames: list[CapturedFrame] = []
    deadline = time.monotonic() + seconds
    for frame in cam.frames():  # type: ignore[attr-defined]
        frames.append(frame)
        if len(frames) == stall_at:
            time.sleep(1.0)  # a detector far too slow for one second
        if time.monotonic() > deadline:
            break
    cam.close()  # type: ignore[attr-defined]
    return frames


def _until_it_fails(cam: object, reason: str) -> tuple[list[CapturedFrame], float]:
    """The frames until frames() raises PiCameraError matching `reason`, and the seconds that took."""
    from edge.capture.picamera2_source import PiCameraError

    frames: list[CapturedFrame] = []
    started = time.monotonic()
    with pytest.raises(PiCameraError, match=reason):
        for frame in cam.frames():  # type: ignore[attr-defined]
            frames.append(frame)
    return frames, time.monotonic() - started


def _grey(bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY).astype(float)


def _decoded(frames: list[CapturedFrame]) -> list[np.ndarray]:
    codec = av.CodecContext.create("h264", "r")
    pictures = []
    for p in (p for f in frames for p in f.packets):
        pictures += [picture.to_ndarray(format="gray") for picture in codec.decode(av.Packet(p.data))]
    return pictures + [picture.to_ndarray(format="gray") for picture in codec.decode(None)]


@pytest.mark.parametrize(("platform", "old_picamera2"), [("VC4", False), ("VC4", True), ("PISP", False)],
                         ids=["pi4-hardware-encoder", "pi4-older-picamera2", "pi5-software-encoder"])
def test_the_pi_camera_records_its_encoders_packets_and_detects_on_the_lores_stream(
        fake_picamera2: None, platform: str, old_picamera2: bool, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A Pi 5 has no hardware encoder: the backend encodes in the camera thread itself (picamera2's
    LibavH264Encoder does not start with the PyAV this project pins). 720x480 rows are padded to a
    768-byte stride."""
    monkeypatch.setenv("FAKE_PICAMERA2_PLATFORM", platform)
    monkeypatch.setenv("FAKE_PICAMERA2_OLD_H264", "1" if old_picamera2 else "0")  # H264Encoder without framerate=
    caplog.set_level(logging.INFO, logger="consentcam.capture")
    frames = _run(_open((720, 480), mask=True), 2.0)
    assert ("encoding with libx264 in the camera thread" in caplog.text) == (platform == "PISP")
    assert len(frames) >= 20 and all(f.luma is not None and f.luma.shape == (240, 320) for f in frames)
    scene = SyntheticScene(2, "walk", 8, 15)
    # the lores Y plane, limited range stretched to full, as every source gives the detector: within a
    # grey level of the picture the ISP scaled (unstretched it would be 5.2 levels off on average)
    error = min(np.abs(frames[0].luma - _grey(scene.bgr(i, 720, 480), (320, 240))).mean() for i in range(4))
    assert error < 1.0, error
    packets = [p for f in frames for p in f.packets]
    assert packets[0].keyframe and packets[0].pts == 0
    assert {b.pts - a.pts for a, b in itertools.pairwise(packets)} == {6000}  # 1/15 s at 90 kHz
    pictures = _decoded(frames)
    assert len(pictures) == len(packets) and pictures[0].shape == (480, 720)
    mask = rasterise(MASK, 720, 480) > 0
    inner = mask & np.roll(mask, 4, 0) & np.roll(mask, -4, 0) & np.roll(mask, 4, 1) & np.roll(mask, -4, 1)
    for picture in pictures:
        assert picture[inner].max() <= 20  # black in the recording itself, despite the padded rows
        assert picture[~mask].std() > 20  # the rest of the scene is there


def test_a_slow_frame_loop_misses_frames_for_detection_never_packets(fake_picamera2: None) -> None:
    frames = _run(_open((640, 480)), 3.0, stall_at=10)
    blind = [i for i, f in enumerate(frames) if f.luma is None]
    assert blind and blind[0] == 10 and blind == list(range(10, 10 + len(blind)))
    assert 12 <= len(blind) <= 16, len(blind)  # one second at 15 fps, less the frame that ends the wait
    packets = [p for f in frames for p in f.packets]
    assert [p.pts for p in packets] == [6000 * i for i in range(len(packets))]  # every frame recorded
    assert len(packets) >= len(frames) - 1


def test_a_size_the_camera_adjusts_and_a_slower_sensor_are_taken_as_they_come(
        fake_picamera2: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """libcamera may round the requested size (here 650 -> 640 wide): the mask is drawn at the size
    delivered. A sensor that runs at 10 fps when 15 were asked makes longer frames, not missed ones."""
    monkeypatch.setenv("FAKE_PICAMERA2_ALIGN", "32")
    monkeypatch.setenv("FAKE_PICAMERA2_SENSOR_FPS", "10")
    cam = _open((650, 480), mask=True)
    assert (cam.width, cam.height) == (640, 480)  # type: ignore[attr-defined]
    frames = _run(cam, 2.0)
    assert len(frames) >= 12 and all(f.luma is not None for f in frames)  # none counted as missed
    pictures = _decoded(frames)
    mask = rasterise(MASK, 640, 480) > 0
    inner = mask & np.roll(mask, 4, 0) & np.roll(mask, -4, 0) & np.roll(mask, 4, 1) & np.roll(mask, -4, 1)
    assert pictures[0].shape == (480, 640) and all(p[inner].max() <= 20 for p in pictures)


def test_on_a_pi_5_a_sensor_slowed_by_the_dark_still_gets_a_keyframe_a_second(
        fake_picamera2: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked for 15 fps, the sensor gives 5 (long exposures at night). Our encoder (the Pi 5 path)
    places keyframes by the sensor's timestamps: a second apart and a frame, not 15 frames (3 s), so
    pre-roll and clip cuts keep their granularity. (The Pi <= 4 hardware encoder counts frames.)"""
    monkeypatch.setenv("FAKE_PICAMERA2_PLATFORM", "PISP")
    monkeypatch.setenv("FAKE_PICAMERA2_SENSOR_FPS", "5")
    frames = _run(_open((320, 240)), 4.5)
    keys = [p.pts / 90_000 for f in frames for p in f.packets if p.keyframe]
    assert len([p for f in frames for p in f.packets]) >= 18
    assert keys[0] == 0.0 and len(keys) >= 3, keys
    assert all(0.95 <= gap <= 1.25 for gap in np.diff(keys)), keys


@pytest.mark.parametrize("platform", ["VC4", "PISP"])
def test_a_stalled_camera_fails_the_source_in_time_and_close_never_hangs(
        fake_picamera2: None, platform: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """picamera2's capture waits for ever and its stop queues behind that capture: a camera that stops
    delivering (a loose ribbon cable) must end the source within CAPTURE_WAIT, and closing it must
    return even though the camera never stops."""
    from edge.capture.picamera2_source import CAPTURE_WAIT, STOP_WAIT

    monkeypatch.setenv("FAKE_PICAMERA2_PLATFORM", platform)
    monkeypatch.setenv("FAKE_PICAMERA2_STALL_AFTER", "10")
    cam = _open((640, 480))
    frames, failed = _until_it_fails(cam, "no frame from the camera for 5 s")
    assert 9 <= len(frames) <= 10 and failed < 10 / 15 + CAPTURE_WAIT + STOP_WAIT + 2
    started = time.monotonic()
    cam.close()  # type: ignore[attr-defined]
    assert time.monotonic() - started < 1  # frames() already gave up on it


def _reading(cam: object) -> tuple[threading.Thread, list[CapturedFrame]]:
    frames: list[CapturedFrame] = []

    def read() -> None:
        with contextlib.suppress(Exception):
            frames.extend(cam.frames())  # type: ignore[attr-defined]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader, frames


def test_close_from_another_thread_returns_once_the_camera_is_stopped(fake_picamera2: None,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PICAMERA2_STOP_DELAY", "1.0")  # a camera that takes a second to stop
    cam = _open((640, 480))
    reader, frames = _reading(cam)
    wait_for(lambda: len(frames) >= 5, 10, "frames")
    started = time.monotonic()
    cam.close()  # type: ignore[attr-defined]
    took = time.monotonic() - started
    assert cam._cam.closed and cam._cam._stop.is_set()  # type: ignore[attr-defined]  # stopped, not just asked
    assert 1.0 <= took < 3.0, took
    reader.join(5)
    assert not reader.is_alive()


def test_close_from_another_thread_during_a_stalled_capture_returns_in_bounded_time(
        fake_picamera2: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The frame thread waits in a capture that will never be served, and a stop would queue behind
    it for ever: close() still returns, after the capture's limit and the stop's."""
    from edge.capture.picamera2_source import CAPTURE_WAIT, STOP_WAIT

    monkeypatch.setenv("FAKE_PICAMERA2_STALL_AFTER", "10")
    cam = _open((640, 480))
    reader, frames = _reading(cam)
    wait_for(lambda: len(frames) >= 10, 10, "the frames before the stall")
    started = time.monotonic()
    cam.close()  # type: ignore[attr-defined]
    assert time.monotonic() - started < CAPTURE_WAIT + STOP_WAIT + 2
    reader.join(5)
    assert not reader.is_alive()


def test_a_frame_our_encoder_cannot_take_ends_the_source_with_the_reason(
        fake_picamera2: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception in our camera-thread callback would end picamera2's camera thread for good (every
    capture then waits in vain, and no stop ever runs): it is caught, and the frame loop fails with it."""
    monkeypatch.setenv("FAKE_PICAMERA2_PLATFORM", "PISP")
    monkeypatch.setenv("FAKE_PICAMERA2_SHORT_BUFFER_AT", "8")
    cam = _open((640, 480))
    frames, failed = _until_it_fails(cam, "encoding or masking a frame failed")
    assert 7 <= len(frames) <= 9 and failed < 5
    assert cam._cam.closed  # type: ignore[attr-defined]  # the camera thread lived on, so the stop ran


def test_the_daemon_records_from_a_pi_camera_found_by_auto(state_dir: Path, tmp_path: Path,
                                                           passphrase_file: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """camera.source auto finds the Pi camera; a person walking in is recorded through the vault, with
    the privacy mask black in the exported clip."""
    monkeypatch.setenv("PYTHONPATH", f"{FAKE}:{Path(__file__).parent.parent}")
    monkeypatch.setenv("FAKE_PICAMERA2_SCENE", "2:walk:20")  # the person: 3.5-11.7 s
    config = tmp_path / "config.yaml"
    config.write_text("""camera:
  source: auto
  width: 640
  height: 480
  fps: 15
recording:
  pre_roll: 1s
  post_roll: 1s
  merge_gap: 1s
  privacy_masks:
    - [[0.6, 0.1], [0.95, 0.1], [0.95, 0.6], [0.6, 0.6]]
log:
  format: json
""")
    daemon = DaemonProc(state_dir, config, tmp_path / "daemon.log")
    try:
        wait_for(lambda: daemon.daemon_status().get("camera", {}).get("source") == "picamera2", 30, "the Pi camera")
        status = daemon.daemon_status()
        assert status["camera"]["reason"] == "auto: picamera2 camera imx708", status
        wait_for(lambda: any(c["status"] == "complete" for c in clips_json(state_dir, config)), 40,
                 "a complete clip of the walking person")
    finally:
        assert daemon.stop() == 0, daemon.log_tail()
    clip = next(c for c in clips_json(state_dir, config) if c["status"] == "complete")
    out = tmp_path / "clip.ts"
    res = run_cli("clips", "export", clip["id"], "--out", str(out), "--passphrase-file", str(passphrase_file),
                  state=state_dir, config=config)
    assert res.returncode == 0, res.stderr
    with av.open(str(out)) as container:
        pictures = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    assert len(pictures) > 2 * 15 and pictures[0].shape == (480, 640)
    mask = rasterise(MASK, 640, 480) > 0
    assert max(int(p[mask].max()) for p in pictures) <= 40 and min(float(p[~mask].std()) for p in pictures) > 20


def _check_pi_camera(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, seconds: str,
                     **env: str) -> tuple[int, dict]:
    """`consentcam camera check --json` as a subprocess that sees the stand-in picamera2."""
    monkeypatch.setenv("PYTHONPATH", f"{FAKE}:{Path(__file__).parent.parent}")
    for name, value in env.items():
        monkeypatch.setenv(f"FAKE_PICAMERA2_{name}", value)
    config = tmp_path / "config.yaml"
    config.write_text(f"camera:\n  source: {source}\n  width: 640\n  height: 480\n  fps: 15\n")
    res = run_cli("camera", "check", "--seconds", seconds, "--json", config=config, timeout=90)
    assert res.stdout.strip(), res.stderr
    return res.returncode, json.loads(res.stdout)


def test_camera_check_on_a_pi_camera(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`consentcam camera check` with camera auto on a Pi: the Pi camera, its encoder, and its keyframes."""
    code, report = _check_pi_camera(tmp_path, monkeypatch, "auto", "3", PLATFORM="PISP")
    assert code == 0, report
    assert report["camera"]["source"] == "picamera2"
    assert report["recorded_as"] == "H.264 from libx264 on this Pi, in the camera thread (no hardware encoder)"
    assert report["camera"]["reason"] == "auto: picamera2 camera imx708"
    m = report["measured"]
    assert 30 <= m["frames"] <= 50 and m["keyframe_interval_s"] == 1.0 and 10 <= m["arrival_fps"] <= 20, m


def test_camera_check_on_a_pi_camera_that_stalls_reports_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, report = _check_pi_camera(tmp_path, monkeypatch, "picamera2", "4", STALL_AFTER="20")
    assert code == 1 and not report["ok"]
    assert report["measured"]["frames"] == 20 and "no frame from the camera for 5 s" in report["error"], report
