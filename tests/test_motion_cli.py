"""`consentcam synth` and `consentcam detect` as real subprocesses, on real video files."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli

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
    res = run_cli("synth", str(out), "--scenario", "sunny")
    assert res.returncode == 1 and "unknown scenario 'sunny'" in res.stderr
    res = run_cli("synth", str(tmp_path / "x.gif"), "--seconds", "2")
    assert res.returncode == 1 and "choose a video file name" in res.stderr
    assert list(tmp_path.iterdir()) == []
