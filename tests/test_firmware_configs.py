"""firmware_configs/: every file parses, every (model, camera) pair has a preset that fits the hardware."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge.config import parse_config
from edge.errors import ConfigError
from edge.presets import (
    PresetError,
    apply_to_text,
    boot_fragment,
    check_fits,
    detect_camera,
    detect_model,
    load_index,
    resolve_preset,
)

REPO = Path(__file__).resolve().parent.parent
ROOT = REPO / "firmware_configs"
INDEX = load_index(ROOT)
PAIRS = [(m, c) for m in INDEX.models for c in INDEX.cameras]


def test_index_lists_the_required_hardware() -> None:
    assert {"ov5647", "imx219", "imx477", "imx708", "imx296"} <= set(INDEX.cameras)
    assert {"zero2w", "pi3bplus", "pi4", "pi5"} <= set(INDEX.models)
    assert not INDEX.models["pi5"].hardware_h264 and INDEX.models["pi4"].hardware_h264
    assert INDEX.models["zero2w"].ram_mb == 512


def test_every_preset_file_parses_and_belongs_to_the_matrix() -> None:
    files = sorted((ROOT / "presets").iterdir())
    assert files
    for path in files:
        assert path.suffix == ".yaml", f"stray file {path.name}"
        parse_config(path.read_text(), source=str(path))  # raises ConfigError on any bad key or value
        model, _, camera = path.stem.partition("+")
        assert model in INDEX.models, f"{path.name}: unknown model"
        assert not camera or camera in INDEX.cameras, f"{path.name}: unknown camera"


@pytest.mark.parametrize(("model", "camera"), PAIRS)
def test_every_pair_has_a_preset_that_fits(model: str, camera: str) -> None:
    preset = resolve_preset(model, camera, INDEX)
    assert preset.sources[0].name == f"{model}.yaml"
    assert check_fits(preset, INDEX) == []
    cfg = preset.config()
    if INDEX.models[model].ram_mb <= 512:
        assert cfg.camera.width * cfg.camera.height <= 1280 * 720, "keep small boards at 720p or below"
    if not INDEX.models[model].hardware_h264:
        assert cfg.camera.fps <= 15, "software x264 on the Pi 5: 1080p at 15 fps at most"


@pytest.mark.parametrize(("model", "camera"), PAIRS)
def test_every_pair_has_boot_config(model: str, camera: str) -> None:
    text = boot_fragment(model, camera, INDEX)
    active = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    for line in active:
        assert re.fullmatch(r"\[[a-z0-9]+\]|[a-z_0-9]+=[A-Za-z0-9_,.\-]+", line), f"not config.txt syntax: {line}"
    assert f"dtoverlay={INDEX.cameras[camera].overlay}" in active
    assert "camera_auto_detect=0" in active
    assert any(ln.startswith("dtoverlay=vc4-kms-v3d") for ln in active)
    if INDEX.models[model].camera_ports > 1:
        assert f"#dtoverlay={INDEX.cameras[camera].overlay},cam0" in text


def test_a_new_camera_without_a_fitting_preset_is_caught(tmp_path: Path) -> None:
    root = tmp_path / "fw"
    shutil.copytree(ROOT, root)
    index = yaml.safe_load((root / "index.yaml").read_text())
    index["cameras"]["tiny"] = {"module": "VGA test sensor", "overlay": "tiny", "max": [640, 480],
                                "modes": [[640, 480, 30]]}
    (root / "index.yaml").write_text(yaml.safe_dump(index))
    (root / "boot" / "camera-tiny.txt").write_text("[all]\ncamera_auto_detect=0\ndtoverlay=tiny\n")
    idx = load_index(root)
    problems = check_fits(resolve_preset("pi4", "tiny", idx), idx)
    assert any("larger than every tiny sensor mode" in p for p in problems)
    # and a missing boot fragment is an error, not an empty string
    (root / "boot" / "camera-tiny.txt").unlink()
    with pytest.raises(PresetError, match=r"config\.txt fragment missing"):
        boot_fragment("pi4", "tiny", idx)


def test_bad_presets_are_reported_with_the_file(tmp_path: Path) -> None:
    root = tmp_path / "fw"
    shutil.copytree(ROOT, root)
    (root / "presets" / "pi4.yaml").write_text("camera:\n  widht: 1920\n")
    with pytest.raises(ConfigError, match=r"camera\.widht: unknown key \(did you mean 'width'\?\)"):
        resolve_preset("pi4", "imx708", load_index(root))
    (root / "presets" / "pi4.yaml").write_text("camera: [unclosed\n")
    with pytest.raises(PresetError, match=r"pi4\.yaml: not valid YAML"):
        resolve_preset("pi4", "imx708", load_index(root))
    with pytest.raises(PresetError, match="unknown model 'pi9'; known: "):
        resolve_preset("pi9", "imx708", INDEX)


def test_apply_keeps_comments_and_is_idempotent() -> None:
    example = (REPO / "docs" / "config.example.yaml").read_text()
    preset = resolve_preset("pi5", "imx296", INDEX)
    once = apply_to_text(example, preset.data)
    twice = apply_to_text(once, preset.data)
    assert once == twice
    comments = [ln for ln in example.splitlines() if "#" in ln]
    assert len([ln for ln in once.splitlines() if "#" in ln]) == len(comments)
    assert "  width: 1456                 # recorded (main) stream" in once
    cfg = parse_config(once)
    assert (cfg.camera.width, cfg.camera.height, cfg.camera.fps) == (1456, 1088, 15.0)
    assert cfg.device.name == parse_config(example).device.name  # untouched sections stay


def test_apply_inserts_keys_the_config_lacks() -> None:
    out = apply_to_text("camera:\n  source: synthetic\n", {"camera": {"fps": 10}, "storage": {"segment_seconds": 2}})
    cfg = parse_config(out)
    assert cfg.camera.source == "synthetic" and cfg.camera.fps == 10 and cfg.storage.segment_seconds == 2


@pytest.mark.parametrize(("text", "expected"), [
    ("Raspberry Pi 4 Model B Rev 1.4\x00", "pi4"),
    ("Raspberry Pi 5 Model B Rev 1.0\x00", "pi5"),
    ("Raspberry Pi Zero 2 W Rev 1.0\x00", "zero2w"),
    ("Raspberry Pi 3 Model B Plus Rev 1.3\x00", "pi3bplus"),
    ("Raspberry Pi 3 Model B Rev 1.2\x00", None),  # the 3B is not the 3B+
    ("QEMU Virtual Machine", None),
])
def test_detect_model(text: str, expected: str | None) -> None:
    assert detect_model(text, INDEX) == expected


def test_detect_camera() -> None:
    listing = ("Available cameras\n-----------------\n"
               "0 : imx708_wide [4608x2592 10-bit RGGB] (/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a)\n"
               "    Modes: 'SRGGB10_CSI2P' : 1536x864 [120.13 fps - (768, 432)/3072x1728 crop]\n")
    assert detect_camera(listing, INDEX) == "imx708"
    assert detect_camera("0 : ov5647 [2592x1944 10-bit GBRG] (/base/soc/i2c0mux/i2c@1/ov5647@36)", INDEX) == "ov5647"
    assert detect_camera("No cameras available!", INDEX) is None


def test_cli_apply_and_errors(tmp_path: Path) -> None:
    out = tmp_path / "config.yaml"
    cmd = [sys.executable, "-m", "edge.presets", "apply", "--model", "zero2w", "--camera", "imx219",
           "--config-in", str(REPO / "docs" / "config.example.yaml"), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    cfg = parse_config(out.read_text())
    assert (cfg.camera.width, cfg.camera.bitrate, cfg.storage.segment_max_bytes) == (1280, 1_500_000, 1 << 20)
    bad = subprocess.run([*cmd[:5], "zero3", *cmd[6:]], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert bad.returncode == 78
    assert bad.stderr.strip().count("\n") == 0 and "unknown model 'zero3'" in bad.stderr
