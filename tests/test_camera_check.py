"""`consentcam camera check`: the real command, against the RTSP test camera and real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from rtsp_camera import RtspCamera

from edge.capture.synthetic import SyntheticScene, write_video

CAMERA_LIKE = {"preset": "veryfast", "crf": "26", "x264-params": "bframes=0:keyint=15"}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("check")
    scene = SyntheticScene(2, "walk", 8)
    return {
        "camera": write_video(scene, tmp / "camera.ts", size=(320, 240), options=CAMERA_LIKE),
        "long-gop": write_video(scene, tmp / "long-gop.ts", size=(320, 240),
                                options={"preset": "veryfast", "crf": "26", "x264-params": "bframes=0:keyint=90"}),
        "sub": write_video(SyntheticScene(2, "walk", 8, fps=10), tmp / "sub.ts", size=(160, 120), options=CAMERA_LIKE),
    }


def check(*args: str, config: Path | None = None, state: Path | None = None) -> tuple[int, dict, str]:
    res = run_cli("camera", "check", *args, "--json", config=config, state=state, timeout=90)
    return res.returncode, json.loads(res.stdout) if res.stdout.strip() else {}, res.stderr


def test_an_rtsp_camera_is_checked_without_recording_anything(videos: dict[str, Path], tmp_path: Path) -> None:
    camera = RtspCamera(videos["camera"], speed=1.0)
    (tmp_path / "config.yaml").write_text("recording:\n  pre_roll: 2s\n")
    try:
        code, report, err = check("--device", camera.url, "--seconds", "2", config=tmp_path / "config.yaml",
                                  state=tmp_path / "state")
    finally:
        camera.close()
    assert code == 0, err
    assert report["ok"] and report["camera"]["name"] == "opencv-copy" and report["camera"]["codec"] == "h264"
    assert report["recorded_as"] == "the camera's own H.264, as it arrives (not re-encoded)"
    assert report["camera"]["description"].startswith("opencv-copy 320x240 @ 15 fps")
    m = report["measured"]
    # opening read ahead about 2 s of stream (FFmpeg probes it): those frames come at once
    assert 1.9 <= m["seconds"] < 6 and 25 <= m["frames"] <= 2 * 15 + 35, m
    assert m["pictures_decoded"] == m["packets"] == m["frames"]
    assert 10 <= m["arrival_fps"] <= 20, m  # the camera's real rate (15), the read-ahead left out
    assert m["keyframe_interval_s"] == 1.0 and m["bitrate_kbps"] > 10
    assert report["detector"] == {"size": [320, 240], "fps": 15.0}
    assert report["advice"] == []
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # nothing written: no state, no vault


def test_advice_for_a_long_keyframe_interval_and_a_slow_substream(videos: dict[str, Path], tmp_path: Path) -> None:
    code, report, err = check("--device", str(videos["long-gop"]), "--seconds", "7")
    assert code == 0, err
    assert report["measured"]["keyframe_interval_s"] == 6.0  # a file is read as fast as it decodes
    assert any("keyframe every 6.0 s" in note for note in report["advice"]), report["advice"]
    main, sub = RtspCamera(videos["camera"], speed=1.0), RtspCamera(videos["sub"], speed=1.0)
    try:
        code, report, err = check("--device", main.url, "--detect-device", sub.url, "--seconds", "2")
    finally:
        main.close()
        sub.close()
    assert code == 0, err
    assert report["camera"]["name"] == "opencv-dual" and report["detector"]["fps"] == 10.0
    assert report["detector"]["source"] == sub.url and report["detector"]["source_size"] == [160, 120]
    assert any("detector gets 10 frames per second" in note for note in report["advice"]), report["advice"]


def test_a_keyframe_interval_longer_than_the_check_is_still_reported(videos: dict[str, Path]) -> None:
    code, report, err = check("--device", str(videos["long-gop"]), "--seconds", "5")  # the default
    assert code == 0, err
    assert report["measured"]["keyframe_interval_s"] is None  # one keyframe in 5 s (every 6 s)
    assert any("fewer than two keyframes in 5.0 s" in note for note in report["advice"]), report["advice"]


def test_a_stream_that_ends_during_the_check_fails_it(videos: dict[str, Path]) -> None:
    """The camera serves one short session and then refuses: the check does not wait through the
    daemon's 15 s of reconnecting, and says what happened with what it measured."""
    camera = RtspCamera(videos["camera"], speed=8.0, sessions=1)
    try:
        res = run_cli("camera", "check", "--device", camera.url, "--seconds", "20", "--json", timeout=90)
    finally:
        camera.close()
    report = json.loads(res.stdout)
    assert res.returncode == 1 and not report["ok"]
    assert "stopped sending after" in report["error"] and report["measured"]["frames"] > 0
    assert report["measured"]["seconds"] < 14  # the stream, then 6 s without a frame


def test_a_camera_that_does_not_open_fails_with_its_reason_and_no_password(videos: dict[str, Path],
                                                                           tmp_path: Path) -> None:
    camera = RtspCamera(videos["camera"], speed=1.0, credentials=("admin", "right-pw"))
    try:
        code, report, err = check("--device", camera.url.replace("rtsp://", "rtsp://admin:Zq7-pw@"))
        res = run_cli("camera", "check", "--device", camera.url.replace("rtsp://", "rtsp://admin:Zq7-pw@"))
    finally:
        camera.close()
    assert code == 1 and not report["ok"]
    assert "the camera refused the user name or password in the URL (401 Unauthorized)" in report["error"]
    assert res.returncode == 1 and "camera check failed" in res.stdout and "401 Unauthorized" in res.stdout
    assert "Zq7" not in json.dumps(report) + err + res.stdout + res.stderr


def test_auto_with_no_camera_is_a_failure_not_the_synthetic_scene(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("camera:\n  source: auto\n  device: /dev/video97\n")
    code, report, _ = check(config=config)
    assert code == 1 and "no camera found" in report["error"] and "SYNTHETIC" in report["error"]


def test_the_table_for_people_and_bad_arguments(videos: dict[str, Path]) -> None:
    res = run_cli("camera", "check", "--device", str(videos["camera"]), "--seconds", "2")
    assert res.returncode == 0, res.stderr
    for label in ("recorded as", "the camera's own H.264", "keyframes", "every 1.0 s", "looks good"):
        assert label in res.stdout, res.stdout
    res = run_cli("camera", "check", "--seconds", "0")
    assert res.returncode == 2 and "argument --seconds: 0: must be more than 0" in res.stderr
    res = run_cli("camera", "check", "--seconds", "abc")
    assert res.returncode == 2 and "argument --seconds: 'abc' is not a number of seconds" in res.stderr
    assert run_cli("camera", "--help").returncode == 0 and run_cli("camera", "check", "--help").returncode == 0


def _namespaces(*kinds: str) -> bool:
    try:
        return subprocess.run(["unshare", *kinds, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# Where the check runs: in a network namespace of its own, no interface but a down loopback (no DNS
# server can be reached, nothing leaves the machine); or also with a DNS server of the test's own on
# that namespace's loopback that says no name exists (tests/netns_dns.py).
DNS_SETUPS = {
    "no-dns-server": (("-n",), (), "cannot look up the host 'camera.invalid': no DNS server answered"),
    "dns-says-no-such-name": (("-m", "-n"), (sys.executable, str(Path(__file__).with_name("netns_dns.py")), "--"),
                              "cannot find the host 'camera.invalid' (the name does not resolve)"),
}


@pytest.mark.parametrize("record", ["auto", "encode"])
@pytest.mark.parametrize("dns", list(DNS_SETUPS))
def test_a_camera_host_name_that_does_not_resolve_is_named(tmp_path: Path, record: str, dns: str) -> None:
    """Both ways of opening a stream (PyAV to copy it, OpenCV to re-encode it) say in the same words
    whether the name does not exist or could not be looked up, and the FFmpeg inside OpenCV prints
    nothing of its own to stderr."""
    kinds, runner, expected = DNS_SETUPS[dns]
    if not _namespaces(*kinds):
        pytest.skip(f"cannot create namespaces here (unshare {' '.join(kinds)} needs root or user namespaces)")
    config = tmp_path / "config.yaml"
    config.write_text(f"camera:\n  source: opencv\n  record: {record}\n")
    res = run_cli("camera", "check", "--device", "rtsp://admin:s3cret-pw@camera.invalid:554/stream1", "--seconds",
                  "1", config=config, state=tmp_path / "state", timeout=60, wrapper=("unshare", *kinds, *runner))
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert expected in res.stdout, res
    assert "s3cret" not in res.stdout + res.stderr and "Failed to resolve" not in res.stderr, res


BOUNDED_OPENS = """
import json, time
from edge.capture.open_errors import open_container
from edge.capture.opencv_source import open_capture
out = []
for name, attempt in (("pyav", lambda: open_container("rtsp://camera.invalid:554/stream1", (2.0, 2.0))),
                      ("opencv", lambda: open_capture("rtsp://admin:pw@camera.invalid/stream1", 2.0, 2.0))):
    started = time.monotonic()
    try:
        attempt()
        out.append([name, time.monotonic() - started, "opened"])
    except Exception as exc:
        out.append([name, time.monotonic() - started, str(exc)])
print(json.dumps(out))
"""


def test_a_dns_server_that_never_answers_holds_an_open_no_longer_than_its_timeout() -> None:
    """FFmpeg's own lookup ignores its timeouts: with a DNS server that takes queries and never
    answers, the resolver tries twice for 5 s each, and an open took 12 s (an OpenCV one with its
    diagnosis 22 s), past a reconnect's attempt and a stop's budget. The name is now looked up first,
    for at most the open's timeout (2 s here)."""
    if not _namespaces("-m", "-n"):
        pytest.skip("cannot create namespaces here (unshare -m -n needs root or user namespaces)")
    runner = Path(__file__).with_name("netns_dns.py")
    res = subprocess.run(["unshare", "-m", "-n", sys.executable, str(runner), "--silent", "--", sys.executable, "-c",
                          BOUNDED_OPENS], capture_output=True, text=True, timeout=90,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert res.returncode == 0, res.stderr
    for name, took, message in json.loads(res.stdout):
        assert took < 3.0, (name, took)
        assert "cannot look up the host 'camera.invalid': no DNS server answered" in message, (name, message)
