"""Per-board daemon presets and config.txt fragments from firmware_configs/.

A preset is a partial config (stream size, frame rate, bitrate, segment size) that fits one Raspberry Pi
model, optionally refined for one camera sensor. ``firmware_configs/index.yaml`` lists the models and
cameras; every (model, camera) pair resolves to ``presets/<model>.yaml`` merged with
``presets/<model>+<camera>.yaml`` when that exists. scripts/install.sh uses this module to write the preset
into a fresh /etc/consentcam/config.yaml, keeping the example config's comments:

    python -m edge.presets list
    python -m edge.presets show pi4 imx708          # the merged preset as YAML
    python -m edge.presets boot pi4 imx708          # the config.txt lines for /boot/firmware/config.txt
    python -m edge.presets apply --model pi4 --camera imx708 --config-in docs/config.example.yaml --out cfg.yaml
    python -m edge.presets detect-model [--file /proc/device-tree/model]
    python -m edge.presets detect-camera [--file output-of-rpicam-hello--list-cameras.txt]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edge.config import Config, parse_config
from edge.errors import ConfigError, ConsentcamError

INSTALLED_DIR = Path("/opt/consentcam/firmware_configs")


class PresetError(ConfigError):
    """A preset, the firmware index or a model/camera name is wrong."""


@dataclass(frozen=True)
class Camera:
    name: str
    module: str
    overlay: str
    max_size: tuple[int, int]
    modes: tuple[tuple[int, int, float], ...]  # (width, height, max fps)

    def max_fps_for(self, width: int, height: int) -> float:
        """Highest frame rate of a sensor mode at least this large (the ISP only scales down sensibly)."""
        fitting = [fps for w, h, fps in self.modes if w >= width and h >= height]
        return max(fitting) if fitting else 0.0


@dataclass(frozen=True)
class Model:
    name: str
    title: str
    device_tree: str
    ram_mb: int
    hardware_h264: bool
    camera_ports: int


@dataclass(frozen=True)
class FirmwareIndex:
    root: Path
    cameras: dict[str, Camera]
    models: dict[str, Model]


@dataclass(frozen=True)
class Preset:
    model: str
    camera: str
    data: dict[str, Any]  # partial config, as it would appear in config.yaml
    sources: tuple[Path, ...]

    def config(self) -> Config:
        return parse_config(yaml.safe_dump(self.data), source=f"preset {self.model}+{self.camera}")


def default_root() -> Path:
    """$CONSENTCAM_FIRMWARE_DIR, else the source tree's firmware_configs/, else the installed copy."""
    env = os.environ.get("CONSENTCAM_FIRMWARE_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parent.parent / "firmware_configs"
    return repo if (repo / "index.yaml").exists() else INSTALLED_DIR


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PresetError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise PresetError(f"{path}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc


def load_index(root: Path | None = None) -> FirmwareIndex:
    root = root or default_root()
    data = _read_yaml(root / "index.yaml")
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), dict) or not isinstance(
        data.get("models"), dict
    ):
        raise PresetError(f"{root / 'index.yaml'}: expected 'cameras' and 'models' mappings")
    try:
        cameras = {
            name: Camera(
                name=name,
                module=str(c["module"]),
                overlay=str(c["overlay"]),
                max_size=(int(c["max"][0]), int(c["max"][1])),
                modes=tuple((int(w), int(h), float(f)) for w, h, f in c["modes"]),
            )
            for name, c in data["cameras"].items()
        }
        models = {
            name: Model(
                name=name,
                title=str(m["name"]),
                device_tree=str(m["device_tree"]),
                ram_mb=int(m["ram_mb"]),
                hardware_h264=bool(m["hardware_h264"]),
                camera_ports=int(m["camera_ports"]),
            )
            for name, m in data["models"].items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise PresetError(f"{root / 'index.yaml'}: incomplete entry ({exc!r})") from exc
    return FirmwareIndex(root, cameras, models)


def _check_name(kind: str, name: str, known: dict[str, Any]) -> None:
    if name not in known:
        raise PresetError(f"unknown {kind} '{name}'; known: {', '.join(sorted(known))}")


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_preset(model: str, camera: str, index: FirmwareIndex | None = None) -> Preset:
    index = index or load_index()
    _check_name("model", model, index.models)
    _check_name("camera", camera, index.cameras)
    base_path = index.root / "presets" / f"{model}.yaml"
    data = _read_yaml(base_path)
    if not isinstance(data, dict):
        raise PresetError(f"{base_path}: a preset must be a mapping of config sections")
    sources = [base_path]
    override_path = index.root / "presets" / f"{model}+{camera}.yaml"
    if override_path.exists():
        override = _read_yaml(override_path)
        if not isinstance(override, dict):
            raise PresetError(f"{override_path}: a preset must be a mapping of config sections")
        data = deep_merge(data, override)
        sources.append(override_path)
    preset = Preset(model, camera, data, tuple(sources))
    preset.config()  # validates against the real config schema (raises ConfigError with the key path)
    return preset


def check_fits(preset: Preset, index: FirmwareIndex) -> list[str]:
    """Problems that would make the preset fail on the real hardware (empty list: it fits)."""
    cfg = preset.config().camera
    cam = index.cameras[preset.camera]
    model = index.models[preset.model]
    problems = []
    max_fps = cam.max_fps_for(cfg.width, cfg.height)
    if max_fps == 0.0:
        problems.append(f"{cfg.width}x{cfg.height} is larger than every {cam.name} sensor mode")
    elif cfg.fps > max_fps:
        problems.append(f"{cfg.fps} fps exceeds the {cam.name} mode limit of {max_fps} fps at that size")
    if model.hardware_h264 and (cfg.width > 1920 or cfg.height > 1088):
        problems.append(f"{cfg.width}x{cfg.height} exceeds the hardware H.264 encoder limit of 1920x1080")
    if cfg.detect_width > cfg.width or cfg.detect_height > cfg.height:
        problems.append("the detection stream is larger than the main stream")
    # Aspect ratios must match, or the detector sees a stretched picture and zones/masks misalign.
    if abs(cfg.detect_width / cfg.detect_height - cfg.width / cfg.height) > 0.02:
        problems.append("detection stream aspect ratio differs from the main stream")
    if cfg.width % 2 or cfg.height % 2:
        problems.append("H.264 with 4:2:0 chroma needs even width and height")
    # A segment must hold at least segment_seconds of video at the configured bitrate, with headroom.
    per_segment = cfg.bitrate / 8 * preset.config().storage.segment_seconds
    if preset.config().storage.segment_max_bytes < 2 * per_segment:
        problems.append("storage.segment_max_bytes is below twice one segment at the configured bitrate")
    return problems


def boot_fragment(model: str, camera: str, index: FirmwareIndex | None = None) -> str:
    index = index or load_index()
    _check_name("model", model, index.models)
    _check_name("camera", camera, index.cameras)
    parts = [index.root / "boot" / f"{model}.txt", index.root / "boot" / f"camera-{camera}.txt"]
    texts = []
    for path in parts:
        try:
            texts.append(path.read_text(encoding="utf-8").rstrip() + "\n")
        except FileNotFoundError:
            raise PresetError(f"{path}: config.txt fragment missing") from None
    return "\n".join(texts)


# ---------------------------------------------------------------------------------------------
# Writing a preset into a config file without losing its comments

_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?P<rest>.*)$")


def _leaves(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_leaves(value, (*prefix, key)))
        else:
            out[(*prefix, key)] = value
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return text if re.fullmatch(r"[A-Za-z0-9_.\-/]+", text) else json.dumps(text)


def _split_value(rest: str) -> tuple[str, str]:
    """(value, trailing comment with its leading spaces) of the text after 'key:'."""
    match = re.search(r"\s+#", rest)
    return (rest[: match.start()], rest[match.start():]) if match else (rest.rstrip(), "")


def apply_to_text(config_text: str, data: dict[str, Any]) -> str:
    """Set the preset's values in a YAML config text, keeping comments and layout; verified by re-parsing."""
    wanted = _leaves(data)
    done: set[tuple[str, ...]] = set()
    lines = config_text.splitlines()
    stack: list[tuple[int, str]] = []
    out: list[str] = []
    for line in lines:
        match = _KEY_LINE.match(line)
        if not match or line.lstrip().startswith("#"):
            out.append(line)
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (*(k for _, k in stack), match["key"])
        value, comment = _split_value(match["rest"])
        if path in wanted and value.strip():
            new = f"{match['indent']}{match['key']}: {_scalar(wanted[path])}"
            # Keep the comment where it was when the new value is not longer than the old one.
            column = len(match["indent"]) + len(match["key"]) + 1 + len(value) + len(comment) - len(comment.lstrip())
            pad = max(1, column - len(new))
            out.append(new + (" " * pad + comment.lstrip() if comment else ""))
            done.add(path)
        else:
            out.append(line)
        if not value.strip():
            stack.append((indent, match["key"]))
    missing = [p for p in wanted if p not in done]
    for path in missing:
        out = _insert_missing(out, path, wanted[path])
    result = "\n".join(out) + "\n"
    _verify_applied(result, data)
    return result


def _insert_missing(lines: list[str], path: tuple[str, ...], value: Any) -> list[str]:
    if len(path) != 2:
        raise PresetError(f"cannot place preset key {'.'.join(path)} in the config file; add it by hand")
    section, key = path
    for i, line in enumerate(lines):
        if re.fullmatch(rf"{re.escape(section)}:\s*(#.*)?", line):
            return [*lines[: i + 1], f"  {key}: {_scalar(value)}", *lines[i + 1:]]
    return [*lines, f"{section}:", f"  {key}: {_scalar(value)}"]


def _verify_applied(text: str, data: dict[str, Any]) -> None:
    merged = parse_config(text, source="config with preset")
    expected = parse_config(yaml.safe_dump(data), source="preset")
    for path in _leaves(data):
        got, want = merged, expected
        for part in path:
            got, want = getattr(got, part), getattr(want, part)
        if got != want:
            raise PresetError(f"preset key {'.'.join(path)} did not apply (got {got!r}, want {want!r})")


# ---------------------------------------------------------------------------------------------
# Detection


def detect_model(device_tree_model: str, index: FirmwareIndex | None = None) -> str | None:
    """Model name from /proc/device-tree/model text (NUL-terminated on a Pi), or None."""
    index = index or load_index()
    text = device_tree_model.replace("\x00", "").strip()
    for model in index.models.values():
        if text.startswith(model.device_tree):
            return model.name
    return None


def detect_camera(list_cameras_output: str, index: FirmwareIndex | None = None) -> str | None:
    """Sensor name from `rpicam-hello --list-cameras` output ("0 : imx708 [4608x2592 ...]"), or None."""
    index = index or load_index()
    for match in re.finditer(r"^\s*\d+\s*:\s*([a-z0-9_]+)", list_cameras_output, re.M):
        name = match.group(1).removesuffix("_wide").removesuffix("_noir").removesuffix("_wide_noir")
        if name in index.cameras:
            return name
    return None


# ---------------------------------------------------------------------------------------------
# Command line (used by scripts/install.sh; stdout is the result, errors are one line on stderr)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m edge.presets", description="consentcam firmware presets")
    p.add_argument("--root", type=Path, help="firmware_configs directory")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="models and cameras")
    for name in ("show", "boot"):
        s = sub.add_parser(name)
        s.add_argument("model")
        s.add_argument("camera")
    a = sub.add_parser("apply", help="write a preset into a config file (comments kept)")
    a.add_argument("--model", required=True)
    a.add_argument("--camera", required=True)
    a.add_argument("--config-in", type=Path, required=True)
    a.add_argument("--out", type=Path, required=True)
    d = sub.add_parser("detect-model")
    d.add_argument("--file", type=Path, default=Path("/proc/device-tree/model"))
    c = sub.add_parser("detect-camera")
    c.add_argument("--file", type=Path, help="saved `rpicam-hello --list-cameras` output (default: stdin)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        index = load_index(args.root)
        if args.cmd == "list":
            print("models: " + " ".join(index.models))
            print("cameras: " + " ".join(index.cameras))
        elif args.cmd == "show":
            print(yaml.safe_dump(resolve_preset(args.model, args.camera, index).data, sort_keys=False), end="")
        elif args.cmd == "boot":
            print(boot_fragment(args.model, args.camera, index), end="")
        elif args.cmd == "apply":
            preset = resolve_preset(args.model, args.camera, index)
            try:
                text = args.config_in.read_text(encoding="utf-8")
            except OSError as exc:
                raise PresetError(f"{args.config_in}: cannot read: {exc.strerror}") from exc
            header = f"# Preset {args.model}+{args.camera} applied by scripts/install.sh (edge.presets).\n"
            result = header + apply_to_text(text, preset.data)
            tmp = args.out.with_name(args.out.name + ".tmp")
            tmp.write_text(result, encoding="utf-8")
            tmp.replace(args.out)
        elif args.cmd == "detect-model":
            try:
                found = detect_model(args.file.read_text(errors="replace"), index)
            except OSError:
                found = None
            if not found:
                return 1
            print(found)
        elif args.cmd == "detect-camera":
            text = args.file.read_text(errors="replace") if args.file else sys.stdin.read()
            found = detect_camera(text, index)
            if not found:
                return 1
            print(found)
    except ConsentcamError as exc:
        print(f"presets: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


__all__ = [
    "Camera", "FirmwareIndex", "Model", "Preset", "PresetError", "apply_to_text", "boot_fragment", "check_fits",
    "deep_merge", "detect_camera", "detect_model", "load_index", "resolve_preset",
]

if __name__ == "__main__":
    sys.exit(main())
