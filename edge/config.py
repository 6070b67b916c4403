"""The one configuration file, loaded into typed dataclasses and validated strictly.

Every error names the key path, the bad value and what is allowed. Unknown keys are errors
(with a "did you mean" hint): a typo must never silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge.errors import ConfigError
from edge.units import parse_duration, parse_size

DEFAULT_CONFIG_PATH = Path("/etc/consentcam/config.yaml")
DEFAULT_STATE_DIR = Path("/var/lib/consentcam")

Point = tuple[float, float]
Polygon = tuple[Point, ...]


def _duration(default: float | str, *, min: float = 0.0, max: float | None = None, help: str = "") -> Any:
    value = parse_duration(default)
    return field(default=value, metadata={"unit": "duration", "min": min, "max": max, "help": help})


def _size(default: int | str, *, help: str = "") -> Any:
    return field(default=parse_size(default), metadata={"unit": "size", "min": 0, "help": help})


def _num(default: float, *, min: float | None = None, max: float | None = None, help: str = "") -> Any:
    return field(default=default, metadata={"min": min, "max": max, "help": help})


def _polygons(help: str = "") -> Any:
    return field(default_factory=tuple, metadata={"unit": "polygons", "help": help})


@dataclass(frozen=True)
class Location:
    """The device's own position. Private: used on the device only, to test area requests."""

    lat: float = _num(0.0, min=-90.0, max=90.0)
    lon: float = _num(0.0, min=-180.0, max=180.0)


@dataclass(frozen=True)
class DeviceConfig:
    name: str = "camera"
    location: Location | None = None


@dataclass(frozen=True)
class CameraConfig:
    source: Literal["auto", "picamera2", "opencv", "synthetic"] = "auto"
    device: str = "/dev/video0"  # opencv: V4L2 device, rtsp:// or http:// URL, or a video file
    # opencv streams and files: record the source's own H.264/H.265 (copy) or re-encode it at width x
    # height and bitrate (encode). auto: copy when the source sends H.264/H.265 and no privacy mask is set.
    record: Literal["auto", "copy", "encode"] = "auto"
    # IP cameras: the camera's substream, for the motion detector only; the main stream (device) is then
    # copied without being decoded at all. Needs record auto or copy.
    detect_device: str = ""
    width: int = _num(1280, min=64, max=4096)
    height: int = _num(720, min=48, max=3072)
    fps: float = _num(15.0, min=1.0, max=60.0)
    detect_width: int = _num(320, min=32, max=1280)
    detect_height: int = _num(240, min=24, max=960)
    bitrate: int = _num(2_000_000, min=100_000, max=50_000_000)
    keyframe_interval: float = _duration(1.0, min=0.2, max=10.0, help="seconds between keyframes")
    synthetic_seed: int = 1
    loop_file: bool = False  # opencv file sources: start again at the end (demos)

    def __post_init__(self) -> None:
        from edge.redact import remember_credentials

        # camera URLs carry passwords: from now on they are hidden in every message and log line
        remember_credentials(self.device)
        remember_credentials(self.detect_device)


@dataclass(frozen=True)
class MotionConfig:
    sensitivity: float = _num(0.5, min=0.0, max=1.0, help="0 = only large, obvious motion; 1 = everything")
    min_area: float = _num(0.004, min=0.0, max=1.0, help="smallest moving object, as a fraction of the frame")
    min_duration: float = _duration(0.2, max=10.0, help="motion must persist this long to start an event")
    zones: tuple[Polygon, ...] = _polygons("only motion inside these polygons counts (empty: all)")
    ignore: tuple[Polygon, ...] = _polygons("motion inside these polygons never counts")
    work_width: int = _num(160, min=64, max=640, help="detector working width in pixels (cost vs detail)")
    learn_time: float = _duration(3.0, min=0.2, max=60.0, help="background learning time constant")
    settle_time: float = _duration(0.7, max=10.0, help="detection rests this long after a global change")
    # sunlit scenes with sharp cast shadows: tell shadow edges that fade out and back in as clouds pass
    # from subjects (edge/motion/light_fit.py, looks.py); more CPU while the light changes
    cast_shadows: bool = False


@dataclass(frozen=True)
class RecordingConfig:
    pre_roll: float = _duration(3.0, max=30.0)
    post_roll: float = _duration(5.0, max=120.0)
    max_clip: float = _duration("5m", min=5.0, max=3600.0)
    merge_gap: float = _duration(4.0, max=120.0, help="events closer than this become one clip")
    privacy_masks: tuple[Polygon, ...] = _polygons("blacked out in the recorded footage itself")


@dataclass(frozen=True)
class RetentionConfig:
    max_age: float = _duration("30d", help="0 = keep forever")
    max_bytes: int = _size(0, help="0 = no limit beyond min_free")
    min_free: int = _size("256MB", help="free space always left on the filesystem")


@dataclass(frozen=True)
class StorageConfig:
    segment_seconds: float = _duration(1.0, min=0.2, max=2.0, help="crash loses at most one segment")
    segment_max_bytes: int = _size("2MiB", help="hard cap on one segment (and on the plaintext held in RAM)")
    retention: RetentionConfig = field(default_factory=RetentionConfig)


@dataclass(frozen=True)
class TlsConfig:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = _num(8883, min=1, max=65535)
    tls: TlsConfig | None = None
    client_id: str = ""  # empty: the device id
    username: str = ""
    keepalive: int = _num(30, min=5, max=3600)
    topic_root: str = "consentcam/v1"
    area_precision: int = _num(4, min=1, max=5, help="geohash cell size the broker may learn")
    max_message_bytes: int = _size("256KiB")


@dataclass(frozen=True)
class RequestsConfig:
    max_window: float = _duration("12h", min=60.0)
    max_clock_skew: float = _duration("5m")
    max_lifetime: float = _duration("7d", min=60.0, help="longest expiry a request may ask for")
    max_pending: int = _num(50, min=1, max=10_000)
    max_message_bytes: int = _size("16KiB")
    default_rate: str = "20/day"


@dataclass(frozen=True)
class ReleaseConfig:
    chunk_bytes: int = _size("128KiB")
    notify_owner_topic: str = ""  # e.g. "home/consentcam/requests"; empty: off


@dataclass(frozen=True)
class ClockConfig:
    mode: Literal["auto", "synchronized", "unsynchronized"] = "auto"


@dataclass(frozen=True)
class HomeAssistantConfig:
    enabled: bool = False
    discovery_prefix: str = "homeassistant"


@dataclass(frozen=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class Config:
    device: DeviceConfig = field(default_factory=DeviceConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    requests: RequestsConfig = field(default_factory=RequestsConfig)
    release: ReleaseConfig = field(default_factory=ReleaseConfig)
    clock: ClockConfig = field(default_factory=ClockConfig)
    home_assistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)
    log: LogConfig = field(default_factory=LogConfig)


# ---------------------------------------------------------------------------------------------
# Loading


def load_config(path: Path | str | None, *, must_exist: bool = False) -> Config:
    """Load and validate the config. A missing default file means built-in defaults."""
    if path is None:
        return Config()
    path = Path(path)
    if not path.exists():
        if must_exist:
            raise ConfigError(f"{path}: config file not found")
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from exc
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "<config>") -> Config:
    import yaml  # here, not at the top: commands that never read the file (keys, audit, trust) skip it

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from exc
    if data is None:
        data = {}
    return _build(Config, data, source, "")


def config_from_dict(data: dict[str, Any]) -> Config:
    return _build(Config, data, "<dict>", "")


def config_to_dict(config: Any) -> Any:
    """Plain data (for --json output and for writing a config back to YAML)."""
    if dataclasses.is_dataclass(config):
        return {f.name: config_to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, tuple):
        return [config_to_dict(v) for v in config]
    return config


def _err(source: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {key}: {message}")


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(data, dict):
        raise _err(source, where, f"expected a mapping of keys, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str) or key not in fields:
            hint = difflib.get_close_matches(str(key), list(fields), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            allowed = ", ".join(fields)
            raise _err(source, f"{prefix}{key}", f"unknown key{suggestion}; allowed here: {allowed}")
        f = fields[key]
        kwargs[key] = _convert(hints[key], f.metadata, value, source, f"{prefix}{key}")
    try:
        return cls(**kwargs)
    except ValueError as exc:  # cross-field checks in __post_init__
        raise _err(source, where, str(exc)) from exc


def _convert(tp: Any, meta: typing.Mapping[str, Any], value: Any, source: str, key: str) -> Any:
    unit = meta.get("unit")
    if unit == "duration":
        try:
            result: Any = parse_duration(value)
        except ValueError as exc:
            raise _err(source, key, f"{exc}, got {_show(value)}") from exc
        return _check_range(result, meta, source, key, value)
    if unit == "size":
        try:
            return parse_size(value)
        except ValueError as exc:
            raise _err(source, key, f"{exc}, got {_show(value)}") from exc
    if unit == "polygons":
        return _polygons_from(value, source, key)

    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        inner = next(a for a in args if a is not type(None))
        return _convert(inner, meta, value, source, key)
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(str(a) for a in args)
            raise _err(source, key, f"got {_show(value)}, expected one of: {allowed}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, source, f"{key}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise _err(source, key, f"expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _err(source, key, f"expected a whole number, got {_show(value)}")
        return _check_range(value, meta, source, key, value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _err(source, key, f"expected a number, got {_show(value)}")
        return _check_range(float(value), meta, source, key, value)
    if tp is str:
        if not isinstance(value, str):
            raise _err(source, key, f"expected text, got {_show(value)}")
        return value
    raise _err(source, key, f"unsupported type {tp!r}")  # pragma: no cover - programming error


def _check_range(result: Any, meta: typing.Mapping[str, Any], source: str, key: str, raw: Any) -> Any:
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and result < lo) or (hi is not None and result > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise _err(source, key, f"got {_show(raw)}, must be {bounds}")
    return result


def _polygons_from(value: Any, source: str, key: str) -> tuple[Polygon, ...]:
    """A list of polygons, each a list of [x, y] points normalised to 0..1 (0,0 = top left)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _err(source, key, f"expected a list of polygons like [[[0,0],[1,0],[1,1]]], got {_show(value)}")
    polygons = []
    for i, poly in enumerate(value):
        pkey = f"{key}[{i}]"
        if not isinstance(poly, list) or len(poly) < 3:
            raise _err(source, pkey, f"a polygon needs at least 3 [x, y] points, got {_show(poly)}")
        points = []
        for j, pt in enumerate(poly):
            ok = (
                isinstance(pt, list | tuple)
                and len(pt) == 2
                and all(isinstance(c, int | float) and not isinstance(c, bool) for c in pt)
            )
            if not ok:
                raise _err(source, f"{pkey}[{j}]", f"expected [x, y] numbers, got {_show(pt)}")
            x, y = float(pt[0]), float(pt[1])
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise _err(source, f"{pkey}[{j}]", f"coordinates are fractions of the frame (0..1), got {pt}")
            points.append((x, y))
        polygons.append(tuple(points))
    return tuple(polygons)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def resolve_paths(config_arg: str | None, state_arg: str | None) -> tuple[Path, Path]:
    """--config/--state-dir, else CONSENTCAM_CONFIG/CONSENTCAM_STATE_DIR, else the defaults."""
    config = config_arg or os.environ.get("CONSENTCAM_CONFIG") or str(DEFAULT_CONFIG_PATH)
    state = state_arg or os.environ.get("CONSENTCAM_STATE_DIR") or str(DEFAULT_STATE_DIR)
    return Path(config), Path(state)
