"""`consentcam synth` and `consentcam detect` as real subprocesses, on real video files."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import modules_imported_by, run_cli

from edge.capture.synthetic import GroundTruth
from edge.motion.scoring import score_events
from edge.recording.analysis import DetectedEvent


def test_detect_json_on_a_synthetic_file_matches_its_ground_truth(tmp_path: Path) -> None:
    video = tmp_path / "scene.mp4"
    res = run_cli("synth", str(video), "--seconds", "45", "--seed", "3", "--size", "320x240", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    truth = GroundTruth.from_dict(json.loads(Path(info["ground_truth"]).read_text()))
    assert truth.motion, "the scene must contain real motion"

    res = run_cli("detect", str(video), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["video"] == str(video) and out["fps"] == 15.0 and out["frames"] == 45 * 15
    events = [DetectedEvent(e["start"], e["end"], e["peak"], e["onset"]) for e in out["events"]]
    score = score_events(events, truth.motion)
    assert score.matched_truth == score.true_events and score.false_events == 0, (out["events"], truth.motion)
    for e in out["events"]:
        assert 0 <= e["start"] < e["end"] <= 45 and e["peak"] > 0


def test_detect_finds_nothing_in_lighting_only_footage_and_prints_a_table(tmp_path: Path) -> None:
    video = tmp_path / "lights.mkv"
    assert run_cli("synth", str(video), "--seconds", "30", "--scenario", "lighting", "--size", "320x240",
                   "--seed", "2").returncode == 0
    res = run_cli("detect", str(video), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["events"] == []
    res = run_cli("detect", str(video))
    assert res.returncode == 0 and "0 event(s)" in res.stdout


def test_detect_uses_the_given_config(tmp_path: Path) -> None:
    video = tmp_path / "walk.mp4"
    assert run_cli("synth", str(video), "--seconds", "15", "--scenario", "walk", "--size", "320x240").returncode == 0
    assert len(json.loads(run_cli("detect", str(video), "--json").stdout)["events"]) == 1
    config = tmp_path / "config.yaml"
    config.write_text("motion:\n  ignore:\n    - [[0, 0], [1, 0], [1, 1], [0, 1]]\n")
    res = run_cli("detect", str(video), "--config", str(config), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["events"] == []
    config.write_text("motion:\n  sensitivty: 0.9\n")
    res = run_cli("detect", str(video), "--config", str(config), "--json")
    assert res.returncode == 78 and "did you mean 'sensitivity'" in res.stderr


def test_detect_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    res = run_cli("detect", str(tmp_path / "missing.mp4"))
    assert res.returncode == 5 and res.stderr.strip() == f"consentcam: {tmp_path / 'missing.mp4'}: no such video file"
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    res = run_cli("detect", str(junk), "--json")
    assert res.returncode == 1 and res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and str(junk) in res.stderr
    res = run_cli("detect", str(tmp_path))
    assert res.returncode == 1 and "is a directory" in res.stderr


def test_synth_bad_arguments_are_clear_and_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "x.mp4"
    res = run_cli("synth", str(out), "--size", "big")
    assert res.returncode == 1 and "expected WIDTHxHEIGHT" in res.stderr
    res = run_cli("synth", str(out), "--scenario", "snowy")
    assert res.returncode == 1 and "unknown scenario 'snowy'" in res.stderr
    res = run_cli("synth", str(tmp_path / "x.gif"), "--seconds", "2")
    assert res.returncode == 1 and "choose a video file name" in res.stderr
    assert list(tmp_path.iterdir()) == []


def _box_video(path: Path, subject_from: float, seconds: float, *, gap: tuple[float, float] = (0.0, 0.0),
               codec: str = "libx264", pix_fmt: str = "yuv420p", span: tuple[int, int] = (0, 280),
               speed: int = 120, bounce: bool = False) -> None:
    """A video file with real timestamps: 15 fps, no frames at all inside `gap` (a stalled camera,
    a dropped stretch), a dark 40x120 box crossing a textured 320x240 background from `subject_from`
    on, its left edge sweeping over `span` (pixels) again and again at `speed` px/s (`bounce`: back
    and forth instead of jumping back to the start)."""
    import av
    import numpy as np

    rng = np.random.default_rng(7)
    background = (rng.integers(60, 200, (240 // 8, 320 // 8), dtype=np.uint8)).repeat(8, 0).repeat(8, 1)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=15)
        stream.width, stream.height, stream.pix_fmt = 320, 240, pix_fmt
        stream.codec_context.time_base = Fraction(1, 1000)
        for n in range(int(seconds * 15)):
            t = n / 15
            if gap[0] <= t < gap[1]:
                continue
            img = background.copy()
            if t >= subject_from:
                travel, width = int((t - subject_from) * speed), span[1] - span[0]
                x = span[0] + (abs(travel % (2 * width) - width) if bounce else travel % width)
                img[80:200, x : x + 40] = 20
            frame = av.VideoFrame.from_ndarray(np.dstack([img] * 3), format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_detect_times_follow_the_file_timestamps_across_a_gap(tmp_path: Path) -> None:
    # Frames counted at the nominal rate would put the subject 3 s early (no frames in 2-5 s).
    video = tmp_path / "vfr.mp4"
    _box_video(video, subject_from=6.0, seconds=9.0, gap=(2.0, 5.0))
    res = run_cli("detect", str(video), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["frames"] == int(9.0 * 15) - 45
    assert 8.9 <= out["seconds"] <= 9.1, out
    assert len(out["events"]) == 1, out["events"]
    assert 6.0 <= out["events"][0]["start"] <= 6.5, out["events"]


def test_detect_imports_only_the_detector_stack(tmp_path: Path) -> None:
    # Keys, vault, protocol, MQTT and the recorder cost start-up time on a Pi and play no part in
    # analysing a file (PyAV does: it decodes the file).
    video = tmp_path / "box.mp4"
    _box_video(video, subject_from=1.0, seconds=3.0)
    not_needed = ("paho", "cryptography", "pyrage", "rich", "edge.keys", "edge.audit", "edge.signing", "edge.vault",
                  "edge.protocol", "edge.daemon", "edge.mqtt_link", "edge.recording.recorder", "edge.recording.muxer")
    codes, loaded = modules_imported_by([["detect", str(video), "--json"]], not_needed)
    assert codes == [0]
    assert loaded == [], f"detect imported {loaded}"


@pytest.mark.parametrize(("name", "codec", "pix_fmt"), [
    ("ten-bit.mkv", "libx264", "yuv420p10le"),  # no 8-bit Y plane: the BGR path
    ("camera.avi", "mjpeg", "yuvj420p"),  # full-range luma, as USB webcams record
    ("clip.webm", "libvpx-vp9", "yuv420p"),
])
def test_detect_reads_other_codecs_and_pixel_formats(tmp_path: Path, name: str, codec: str, pix_fmt: str) -> None:
    video = tmp_path / name
    _box_video(video, subject_from=4.0, seconds=8.0, codec=codec, pix_fmt=pix_fmt)
    res = run_cli("detect", str(video), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["frames"] == 120 and 7.9 <= out["seconds"] <= 8.1, out
    assert [round(e["start"], 1) for e in out["events"]] in ([4.0], [4.1], [4.2]), out["events"]


def test_detect_heatmap_shows_where_motion_was_and_events_give_their_area(tmp_path: Path) -> None:
    # The box sweeps x 20..180 px (normalised 0.06-0.56 with its width), rows 80-200 (0.33-0.83):
    # the map and each event's area must stay there, and the right of the picture must stay cold.
    video = tmp_path / "left.mp4"
    _box_video(video, subject_from=3.0, seconds=10.0, span=(20, 140))
    png = tmp_path / "map.png"
    res = run_cli("detect", str(video), "--heatmap", str(png), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert len(out["events"]) == 1, out["events"]
    x0, y0, x1, y1 = out["events"][0]["area"]
    assert 0.0 <= x0 <= 0.12 and 0.5 <= x1 <= 0.62 and 0.25 <= y0 <= 0.38 and 0.78 <= y1 <= 0.9, out["events"]
    heat = out["heatmap"]
    assert heat["path"] == str(png) and heat["grid"] == [64, 48]
    assert heat["hottest"] and all(0.04 <= s["x"] <= 0.6 and 0.3 <= s["y"] <= 0.86 for s in heat["hottest"]), heat
    assert all(0.0 < s["seconds"] <= 7.0 for s in heat["hottest"]), heat  # at most the 7 s the box moved
    import cv2

    picture = cv2.imread(str(png))
    assert picture is not None and picture.shape == (480, 640, 3)
    # the text form names the hottest place and the area column
    res = run_cli("detect", str(video), "--heatmap", str(tmp_path / "again.png"))
    assert res.returncode == 0, res.stderr
    assert "area x0-x1, y0-y1" in res.stdout and "heatmap: " in res.stdout and "motion longest around" in res.stdout


def test_detect_heatmap_suggests_ignoring_where_motion_never_stops_and_not_a_passer_by(tmp_path: Path) -> None:
    # A box pacing back and forth on the right for 9.5 of 12 s (x 180-320 px, rows 80-200: normalised
    # 0.56-1.0, 0.33-0.83) stands in for a tree in wind; a box crossing the whole picture does not.
    pacer = tmp_path / "pacer.mp4"
    _box_video(pacer, subject_from=2.5, seconds=12.0, span=(180, 280), speed=60, bounce=True)
    res = run_cli("detect", str(pacer), "--heatmap", str(tmp_path / "pacer.png"), "--json")
    assert res.returncode == 0, res.stderr
    busy = json.loads(res.stdout)["heatmap"]["busy"]
    assert len(busy) == 1, busy
    (x0, y0), _, (x1, y1), _ = busy[0]["polygon"]
    assert 0.5 <= x0 <= 0.62 and 0.9 <= x1 <= 1.0 and 0.2 <= y0 <= 0.34 and 0.82 <= y1 <= 0.95, busy
    assert busy[0]["seconds"] >= 0.2 * 12.0
    res = run_cli("detect", str(pacer), "--heatmap", str(tmp_path / "again.png"))
    line = f"    - {json.dumps(busy[0]['polygon'])}"
    assert line in res.stdout, res.stdout  # ready to paste under ignore:
    pasted = tmp_path / "pasted.yaml"
    pasted.write_text("motion:\n  ignore:\n" + next(x for x in res.stdout.splitlines() if x.startswith(line)) + "\n")
    res = run_cli("detect", str(pacer), "--config", str(pasted), "--heatmap", str(tmp_path / "masked.png"), "--json")
    assert res.returncode == 0, res.stderr
    # with the suggestion applied only the box's outer edge (outside the busiest cells) is still seen
    masked = json.loads(res.stdout)["heatmap"]
    assert masked["busy"] == [] and masked["hottest"][0]["seconds"] < 0.3 * busy[0]["seconds"], masked
    walker = tmp_path / "walker.mp4"
    _box_video(walker, subject_from=2.5, seconds=12.0)
    res = run_cli("detect", str(walker), "--heatmap", str(tmp_path / "walker.png"), "--json")
    out = json.loads(res.stdout)
    assert out["events"] and out["heatmap"]["busy"] == [], out["heatmap"]
    assert "motion.ignore" not in run_cli("detect", str(walker), "--heatmap", str(tmp_path / "w2.png")).stdout


def test_detect_heatmap_into_a_missing_directory_fails_before_decoding(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    _box_video(video, subject_from=1.0, seconds=3.0)
    target = tmp_path / "no-such-dir" / "map.png"
    res = run_cli("detect", str(video), "--heatmap", str(target), "--json")
    assert res.returncode == 5 and res.stdout == ""
    assert res.stderr.strip() == f"consentcam: --heatmap {target}: no such directory {target.parent}"


def test_detect_on_a_5_fps_file_finds_the_walker_and_warns_about_the_rate(tmp_path: Path) -> None:
    video = tmp_path / "slow.mp4"
    res = run_cli("synth", str(video), "--seconds", "20", "--scenario", "walk", "--fps", "5", "--size", "320x240")
    assert res.returncode == 0, res.stderr
    res = run_cli("detect", str(video), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["fps"] == 5.0 and len(out["events"]) == 1  # one person walking through (none before 2026-11-23)
    assert "5 fps: below 10 the detector confirms subjects about a second after they appear" in res.stderr
