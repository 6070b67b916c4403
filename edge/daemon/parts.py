"""The daemon's components, built from the config: camera, vault, recorder, MQTT service.

This is the one place that knows the other areas' constructors, so the runner stays a plain
process skeleton (threads, signals, status) and the wiring can be read in one screen.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.audit import AuditLog
from edge.config import Config
from edge.errors import ConsentcamError
from edge.keys import load_device_info, load_device_key, load_owner_recipient
from edge.state import StateDir

log = logging.getLogger("consentcam.daemon")

SYNTHETIC_SCENE_SECONDS = 600.0  # the generated scene loops after this long


class CameraUnavailableError(ConsentcamError):
    exit_code = 1


@dataclass
class CameraChoice:
    requested: str  # what the config asked for
    source: str  # what was opened
    reason: str  # why (for `auto`)
    name: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    speed: float = 1.0  # synthetic pacing: 1 = real time, 0 = as fast as possible

    def describe(self) -> str:
        return f"{self.source} camera ({self.reason})" if self.reason else f"{self.source} camera"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def choose_source(config: Config) -> tuple[str, str]:
    """Which source `auto` means on this machine, and why (shown in the log and in status)."""
    requested = config.camera.source
    if requested != "auto":
        return requested, "configured"
    if importlib.util.find_spec("picamera2") is not None:
        return "picamera2", "auto: picamera2 is installed"
    device = config.camera.device
    if device.startswith(("rtsp://", "http://", "https://")) or Path(device).exists():
        return "opencv", f"auto: {device} exists"
    return "synthetic", f"auto: no camera found (no picamera2, {device} missing); using the SYNTHETIC test scene"


def open_camera(config: Config, *, speed: float = 1.0) -> tuple[Any, CameraChoice]:
    source, reason = choose_source(config)
    cam = config.camera
    choice = CameraChoice(config.camera.source, source, reason, width=cam.width, height=cam.height, fps=cam.fps,
                          speed=speed)
    if source == "synthetic":
        if config.camera.source == "auto":
            log.warning("no camera found: falling back to the synthetic test scene (set camera.source to silence "
                        "this, or connect a camera)")
        camera = _synthetic_camera(config, speed)
    else:
        camera = _hardware_camera(config, source)
    choice.name = getattr(camera, "name", source)
    return camera, choice


def _synthetic_camera(config: Config, speed: float) -> Any:
    from edge.capture.masks import rasterise
    from edge.capture.synthetic import SyntheticCamera, SyntheticScene

    cam = config.camera
    scene = SyntheticScene(seed=cam.synthetic_seed, scenario="mixed", duration=SYNTHETIC_SCENE_SECONDS, fps=cam.fps)
    mask = rasterise(config.recording.privacy_masks, cam.width, cam.height) if config.recording.privacy_masks else None
    # Pacing is done here (PacedFrames) so faster-than-real-time runs are possible for demos.
    return SyntheticCamera(scene, main_size=(cam.width, cam.height), detect_size=(cam.detect_width, cam.detect_height),
                           bitrate=cam.bitrate, keyframe_interval=cam.keyframe_interval, privacy_mask=mask,
                           realtime=False, loop=True)


def _hardware_camera(config: Config, source: str) -> Any:
    try:
        import edge.capture as capture
    except ImportError as exc:  # pragma: no cover - capture package is part of the install
        raise CameraUnavailableError(f"camera support is not installed: {exc}") from exc
    opener = getattr(capture, "open_camera", None)
    if opener is None:
        raise CameraUnavailableError(f"camera source {source!r} is not available in this build")
    return opener(config, source=source)


def paced(frames: Iterator[Any], fps: float, speed: float, stop: threading.Event) -> Iterator[Any]:
    """Deliver frames at fps * speed (speed 0: as fast as they come). Sleeps are short so a stop
    request is noticed within a frame period."""
    if speed <= 0:
        yield from frames
        return
    period = 1.0 / (fps * speed)
    t0 = time.monotonic()
    for n, frame in enumerate(frames):
        due = t0 + n * period
        while not stop.is_set():
            delay = due - time.monotonic()
            if delay <= 0:
                break
            time.sleep(min(delay, 0.1))
        if stop.is_set():
            return
        yield frame


@dataclass
class Parts:
    state: StateDir
    config: Config
    camera: Any
    camera_choice: CameraChoice
    vault: Any
    maint_vault: Any
    recorder: Any
    service: Any | None
    stop_event: threading.Event
    _camera_closed: bool = False
    _on_clock: list[Callable[[bool], None]] = field(default_factory=list)

    def frames(self) -> Iterator[Any]:
        it = self.camera.frames()
        if self.camera_choice.source == "synthetic":
            return paced(it, self.camera_choice.fps, self.camera_choice.speed, self.stop_event)
        return it

    def close_camera(self) -> None:
        if not self._camera_closed:
            self._camera_closed = True
            try:
                self.camera.close()
            except Exception:
                log.exception("closing the camera failed")

    def close_recorder(self, now: float) -> None:
        self.recorder.flush(now)

    def recorder_status(self) -> dict[str, Any]:
        """The recorder's counters, in the status file's terms. Read from the maintenance thread
        while the frame loop runs: a field changing under us only costs one retry."""
        for _ in range(3):
            try:
                raw = dict(self.recorder.status())
                break
            except (AttributeError, RuntimeError):
                continue
        else:
            return {}
        return {
            "state": "recording" if raw.get("recording") else "idle",
            "current_clip": raw.get("clip_id"),
            "motion_active": bool(raw.get("motion")),
            "phase": raw.get("phase"),
            "dropped_detection_frames": int(raw.get("dropped_detection_frames") or 0),
            "clips_recorded": int(raw.get("clips") or 0),
            "last_clip": raw.get("last_clip_id"),
            "vault_errors": int(raw.get("vault_errors") or 0),
        }

    def set_clock_synced(self, synced: bool) -> None:
        if hasattr(self.recorder, "clock_synced"):
            self.recorder.clock_synced = synced

    def enforce_retention(self) -> list[str]:
        return list(self.maint_vault.enforce_retention())

    def start_service(self) -> None:
        if self.service is not None:
            self.service.start()

    def stop_service(self) -> None:
        if self.service is not None:
            try:
                self.service.stop()
            except Exception:
                log.exception("stopping the MQTT service failed")

    def service_status(self) -> dict[str, Any]:
        if self.service is None:
            return {"enabled": False, "state": "disabled", "connected": False}
        status = getattr(self.service, "status", None)
        data = status() if callable(status) else {}
        out = {"enabled": True, "state": "unknown", "connected": False}
        if isinstance(data, dict):
            out.update(data)
        return out

    def pending_count(self) -> int:
        return count_pending(self.state)

    def reload(self, config: Config) -> list[str]:
        """Apply what can change without a restart; returns what was applied."""
        applied = []
        self.config = config
        # Retention settings: both vault handles read them at use time (the recording one for
        # min_free while writing, the maintenance one for enforce_retention).
        for vault in (self.maint_vault, self.vault):
            vault.storage = config.storage
        applied.append("storage.retention")
        if self.service is not None:
            self.service.reload(config)
            applied.append("trust store")
        return applied


def count_pending(state: StateDir) -> int:
    try:
        return sum(1 for e in os.scandir(state.requests / "pending") if e.is_file() and not e.name.startswith("."))
    except OSError:
        return 0


def build(state: StateDir, config: Config, *, clock_synced: bool, speed: float = 1.0,
          stop_event: threading.Event | None = None) -> Parts:
    from edge.vault import Vault

    stop_event = stop_event or threading.Event()
    recipient = load_owner_recipient(state)
    device_key = load_device_key(state)
    info = load_device_info(state)
    audit = AuditLog(state.audit, device_key)
    vault = Vault.open(state, config.storage, recipient, device_key, audit)
    maint_vault = Vault.open(state, config.storage, None, device_key, audit, recover=False)
    camera, choice = open_camera(config, speed=speed)
    recorder = _make_recorder(config, vault, choice, clock_synced)
    service = _make_service(state, config, info, device_key, audit, vault, clock_synced) if config.mqtt.enabled \
        else None
    return Parts(state, config, camera, choice, vault, maint_vault, recorder, service, stop_event)


def _make_recorder(config: Config, vault: Any, choice: CameraChoice, clock_synced: bool) -> Any:
    from edge.recording import Recorder

    return Recorder(config, vault, camera_name=config.device.name, clock_synced=clock_synced, fps=choice.fps)


class MqttSide:
    """The MQTT link (paho's own thread, reconnect with jittered backoff) and the ConsentService
    (bounded intake queue, its own worker). Nothing here is ever called from the frame loop."""

    def __init__(self, link: Any, service: Any) -> None:
        self.link = link
        self.service = service

    def start(self) -> None:
        self.service.start()  # registers subscriptions; the link (re)subscribes on every connect
        self.link.start()

    def stop(self) -> None:
        try:
            self.service.stop(timeout=3.0)
        finally:
            self.link.stop(timeout=3.0)

    def reload(self, config: Config) -> None:
        self.service.reload()

    def status(self) -> dict[str, Any]:
        link, service = self.link, self.service
        stats = service.stats.to_dict() if hasattr(service.stats, "to_dict") else {}
        return {
            "connected": bool(link.connected),
            "state": str(getattr(link, "state", "unknown")),
            "last_error": getattr(link, "last_error", "") or None,
            "reconnects": max(0, int(getattr(link, "connects", 0)) - 1),
            "intake_queue": service.queue_depth(),
            "requests": stats,
        }


def _make_service(state: StateDir, config: Config, info: Any, device_key: Any, audit: AuditLog, vault: Any,
                  clock_synced: bool) -> MqttSide:
    from edge.mqtt_link import MqttLink
    from edge.protocol.service import ConsentService

    link = MqttLink(config.mqtt, info.device_id)
    service = ConsentService(config, state, link, audit, info.device_id, device_key=device_key)
    return MqttSide(link, service)
