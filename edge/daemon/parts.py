"""The daemon's components, built from the config: camera, vault, recorder, MQTT service.

This is the one place that knows the other areas' constructors, so the runner stays a plain
process skeleton (threads, signals, status) and the wiring can be read in one screen.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from edge.audit import AuditLog
from edge.config import Config
from edge.errors import ConsentcamError
from edge.keys import load_device_info, load_device_key, load_owner_recipient
from edge.redact import without_credentials
from edge.state import StateDir

log = logging.getLogger("consentcam.daemon")

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
    detect_fps: float = 0.0  # the detector's pictures per second, where they come from another stream
    codec: str = "h264"  # of the recorded packets ("hevc": an H.265 camera recorded as it arrives)
    speed: float = 1.0  # synthetic pacing: 1 = real time, 0 = as fast as possible

    def describe(self) -> str:
        return f"{self.source} camera ({self.reason})" if self.reason else f"{self.source} camera"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def open_camera(config: Config, *, speed: float = 1.0) -> tuple[Any, CameraChoice]:
    """The configured camera; for `auto`, what this machine has (edge.capture.choose_source),
    falling back to the synthetic scene with a clear warning."""
    from edge.capture import choose_source
    from edge.capture import open_camera as capture_open

    source, reason = choose_source(config)
    cam = config.camera
    choice = CameraChoice(cam.source, source, reason, width=cam.width, height=cam.height, fps=cam.fps, speed=speed)
    if source == "synthetic" and cam.source == "auto":
        log.warning("no camera found: recording the SYNTHETIC test scene instead (%s). Set camera.source to "
                    "picamera2 or opencv so a missing camera is an error.", reason)
    try:
        # Unpaced: the daemon paces synthetic and file sources itself (PacedFrames), so a demo can
        # run faster than real time and a stop request is noticed within a frame.
        camera = capture_open(config, source, realtime=False)
    except ConsentcamError:
        raise
    except Exception as exc:
        raise CameraUnavailableError(without_credentials(f"cannot open the {source} camera: {type(exc).__name__}: "
                                                         f"{exc}")) from exc
    choice.name = getattr(camera, "name", source)
    # What the source really delivers: a file's own frame rate, a copied stream's own size.
    choice.fps = float(getattr(camera, "fps", 0.0) or cam.fps)
    choice.detect_fps = float(getattr(camera, "detect_fps", 0.0) or choice.fps)
    from edge.motion.detector import low_rate_note

    note = low_rate_note(choice.detect_fps)
    if note is not None:
        log.warning("the motion detector gets %.3g frames per second: %s; give it 15 fps if the camera allows",
                    choice.detect_fps, note)
    choice.codec = str(getattr(camera, "codec", "h264"))
    if getattr(camera, "width", 0) and getattr(camera, "height", 0):
        choice.width, choice.height = camera.width, camera.height
    return camera, choice


def needs_pacing(choice: CameraChoice, config: Config) -> bool:
    """Sources that would otherwise run as fast as the CPU allows: the synthetic scene and files."""
    if choice.source == "synthetic":
        return True
    device = config.camera.device
    return choice.source == "opencv" and not device.startswith("/dev/") and "://" not in device


def source_is_finite(choice: CameraChoice, config: Config) -> bool:
    """Files and generated scenes may end; a camera or stream that ends has failed."""
    return needs_pacing(choice, config)


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
        if needs_pacing(self.camera_choice, self.config):
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

    def update_home_assistant(self, status: dict[str, Any]) -> None:
        if self.service is not None:
            self.service.update_home_assistant(motion=bool(status.get("motion_active")),
                                               recording=status.get("state") == "recording",
                                               pending=int(status.get("pending", 0)))

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
            applied += ["requests", "trust store"]
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
    from edge.recording.recorder import Recorder

    return Recorder(config, vault, camera_name=config.device.name, clock_synced=clock_synced, fps=choice.fps,
                    size=(choice.width, choice.height), detect_fps=choice.detect_fps or None, codec=choice.codec)


class MqttSide:
    """The MQTT link (paho's own thread, reconnect with jittered backoff) and the ConsentService
    (bounded intake queue, its own worker). Nothing here is ever called from the frame loop."""

    def __init__(self, link: Any, service: Any, home_assistant: Any | None = None) -> None:
        self.link = link
        self.service = service
        self.ha = home_assistant

    def start(self) -> None:
        if self.ha is not None:
            self.link.add_on_connect(self.ha.announce)  # discovery + "online" after every (re)connect
            self.ha.start()
        self.service.start()  # registers subscriptions; the link (re)subscribes on every connect
        self.link.start()

    def stop(self) -> None:
        try:
            if self.ha is not None:
                self.ha.stop(timeout=2.0)  # publishes "offline" (a clean stop sends no last will)
            self.service.stop(timeout=3.0)
        finally:
            self.link.stop(timeout=3.0)

    def update_home_assistant(self, *, motion: bool, recording: bool, pending: int) -> None:
        """Latest values only; the HomeAssistant thread publishes them (never this caller)."""
        if self.ha is not None:
            self.ha.set_motion(motion)
            self.ha.set_recording(recording)
            self.ha.set_pending(pending)

    def reload(self, config: Config) -> None:
        self.service.reload(config)

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

    ha = None
    will = None
    if config.home_assistant.enabled:
        from edge.homeassistant import HomeAssistant, availability_will

        will = availability_will(info.device_id, config.mqtt.topic_root)
    link = MqttLink(config.mqtt, info.device_id, will=will)
    if will is not None:
        ha = HomeAssistant(link, info.device_id, config.device.name, config.home_assistant.discovery_prefix,
                           config.mqtt.topic_root)
    service = ConsentService(config, state, link, audit, info.device_id, device_key=device_key)
    return MqttSide(link, service, ha)
