from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import Config, load_config, parse_config
from edge.errors import ConfigError
from tests.conftest import run_cli


def test_defaults_when_file_is_empty() -> None:
    assert parse_config("") == Config()


def test_values_are_parsed_and_typed() -> None:
    cfg = parse_config(
        """
device: {name: porch, location: {lat: 51.5, lon: -0.12}}
recording: {pre_roll: 2s, post_roll: 1m}
storage: {retention: {max_bytes: 8GB, min_free: 1GiB, max_age: 14d}}
motion:
  zones: [[[0, 0], [1, 0], [1, 0.5]]]
  cast_shadows: true
"""
    )
    assert cfg.device.location is not None and cfg.device.location.lat == 51.5
    assert cfg.recording.pre_roll == 2.0 and cfg.recording.post_roll == 60.0
    assert cfg.storage.retention.max_bytes == 8_000_000_000
    assert cfg.storage.retention.min_free == 1024**3
    assert cfg.storage.retention.max_age == 14 * 86400
    assert cfg.motion.zones == (((0.0, 0.0), (1.0, 0.0), (1.0, 0.5)),)
    assert cfg.motion.cast_shadows is True and Config().motion.cast_shadows is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("recording: {pre_rol: 3}", "recording.pre_rol: unknown key (did you mean 'pre_roll'?)"),
        ("camera: {source: webcam}", "camera.source: got 'webcam', expected one of: auto, picamera2, opencv"),
        ("motion: {sensitivity: 3}", "motion.sensitivity: got 3, must be between 0.0 and 1.0"),
        ("mqtt: {enabled: 'yes please'}", "mqtt.enabled: expected true or false"),
        ("motion: {cast_shadows: 1}", "motion.cast_shadows: expected true or false"),
        ("mqtt: {port: 99999}", "mqtt.port: got 99999, must be between 1 and 65535"),
        ("recording: {post_roll: soon}", "recording.post_roll: expected a duration"),
        ("storage: {retention: {max_bytes: lots}}", "storage.retention.max_bytes: expected a size"),
        ("motion: {zones: [[[0, 0], [2, 0], [1, 1]]]}", "motion.zones[0][1]: coordinates are fractions"),
        ("camera: [1, 2]", "camera: expected a mapping"),
        ("camera: {width: 1.5}", "camera.width: expected a whole number"),
        ("recording: {pre_roll: 3\n  bad", "not valid YAML (line"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="cfg.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("cfg.yaml:")


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml", must_exist=True)
    assert load_config(tmp_path / "nope.yaml") == Config()


def test_example_config_is_valid_and_documents_every_section() -> None:
    example = Path(__file__).resolve().parent.parent / "docs" / "config.example.yaml"
    cfg = load_config(example, must_exist=True)
    text = example.read_text()
    for section in Config.__dataclass_fields__:
        assert f"\n{section}:" in "\n" + text, f"example config does not show section {section}"
    assert cfg.requests.max_window == 12 * 3600


def test_cli_reports_config_error_on_one_line(tmp_path: Path, state_dir: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("recording:\n  pre_roll: 3\n  postroll: 5\n")
    res = run_cli("init", state=tmp_path / "fresh", config=cfg)
    assert res.returncode == 78
    assert res.stderr.strip().count("\n") == 0
    assert "recording.postroll: unknown key (did you mean 'post_roll'?)" in res.stderr
    assert not (tmp_path / "fresh").exists(), "a bad config must not leave a half-made state directory"
