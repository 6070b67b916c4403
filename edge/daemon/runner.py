"""`consentcam run`: one process that records and, when MQTT is enabled, answers the protocol.

Threads and why:
- the frame loop (its own thread) pulls frames from the camera and feeds the recorder. It never
  touches the network: everything MQTT happens in paho's thread and behind bounded queues inside
  the ConsentService, so a broker that is down, slow or hostile cannot stall recording. The frame
  loop is also the only source of watchdog pings: a stuck camera stops the pings and systemd
  restarts the service.
- a maintenance thread writes the status file, re-checks the clock, and enforces retention (every
  few minutes and whenever free space drops below the configured minimum). It uses its own Vault
  handle so retention never runs on the frame path.
- the main thread handles signals: SIGTERM/SIGINT stop (closing the current clip properly),
  SIGHUP reloads the trust store, request limits, retention, clock and log settings from the config file.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import resource
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge import clock
from edge.config import Config, config_to_dict, load_config
from edge.daemon import parts
from edge.daemon.notify import Notifier
from edge.daemon.status import WRITE_INTERVAL, mark_stopped, write_status
from edge.errors import ConsentcamError
from edge.logs import setup_logging
from edge.redact import without_credentials
from edge.state import StateDir

log = logging.getLogger("consentcam.daemon")

STOP_TIMEOUT = 10.0  # seconds the frame loop gets to close the current clip after SIGTERM
STOP_NOTICE = 1.0  # of those, seconds it gets to see the stop flag by itself before the camera is closed under it
CLOCK_CHECK_INTERVAL = 30.0
RETENTION_INTERVAL = 300.0
FREE_SPACE_CHECK_INTERVAL = 10.0

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CAMERA_ENDED = 0  # a file source that reached its end is a normal finish
EXIT_CAMERA_STOPPED = 1  # a live camera that stopped sending: a failure, so systemd restarts us


@dataclass
class FrameStats:
    frames: int = 0
    first_frame_at: float | None = None
    last_frame_mono: float | None = None
    fps: float = 0.0
    errors: int = 0
    camera_ended: bool = False
    window_start: float = 0.0
    window_frames: int = 0

    def tick(self, mono: float) -> None:
        self.frames += 1
        self.last_frame_mono = mono
        if self.first_frame_at is None:
            self.first_frame_at = clock.now()
            self.window_start = mono
        self.window_frames += 1
        span = mono - self.window_start
        if span >= 2.0:  # fps over roughly the last two seconds
            self.fps = self.window_frames / span
            self.window_start, self.window_frames = mono, 0


class Daemon:
    def __init__(self, state: StateDir, config: Config, config_path: Path | None = None, *,
                 speed: float = 1.0) -> None:
        self.state = state
        self.speed = speed
        self.config = config
        self.config_path = config_path
        self.notifier = Notifier()
        self.stats = FrameStats()
        self.started = clock.now()
        self._stop = threading.Event()
        self._left_camera = threading.Event()  # the frame loop saw the stop and left the camera's frames
        self._reload = threading.Event()
        self._lock = threading.Lock()  # guards last_error and the clock flag
        self.last_error: str = ""
        self.clock_synced = clock.clock_synchronised(config.clock.mode)
        self.clock_synced_since: float | None = clock.now() if self.clock_synced else None
        self.camera_choice: parts.CameraChoice | None = None
        self.parts: parts.Parts | None = None
        self._frame_thread: threading.Thread | None = None
        self._maint_thread: threading.Thread | None = None
        self._exit_code = EXIT_OK

    # -- lifecycle ----------------------------------------------------------------------------

    def run(self) -> int:
        self.state.require_initialised()
        _no_core_dumps()
        self._install_signals()
        self.notifier.status("starting")
        log.info("starting", extra={"pid": os.getpid(), "state_dir": str(self.state.root),
                                    "clock_synced": self.clock_synced, "clock_mode": self.config.clock.mode})
        if not self.clock_synced:
            log.warning("clock not synchronised: clips are marked clock_synced=false and request expiry is not "
                        "judged until it is")
        self.parts = parts.build(self.state, self.config, clock_synced=self.clock_synced, speed=self.speed,
                                 stop_event=self._stop)
        self.camera_choice = self.parts.camera_choice
        try:
            try:
                self._write_status()
            except OSError as exc:  # e.g. a full disk: recording matters more than the status file
                self._set_error(f"status file: {exc}")
            self.parts.start_service()
            self._frame_thread = threading.Thread(target=self._frame_loop, name="frames", daemon=True)
            self._maint_thread = threading.Thread(target=self._maintenance_loop, name="maintenance", daemon=True)
            self._frame_thread.start()
            self._maint_thread.start()
            while not self._stop.is_set():
                self._stop.wait(0.5)
                if self._reload.is_set():
                    self._reload.clear()
                    try:
                        self._do_reload()
                    except Exception as exc:  # a bad trust store or config must not stop recording
                        self._set_error(f"reload failed: {exc}")
                        log.error("reload failed; recording continues with what was loaded before",
                                  extra={"error": str(exc)})
                        self.notifier.reloaded("running (reload failed)")
        finally:
            self._shutdown()
        return self._exit_code

    def request_stop(self, reason: str = "") -> None:
        if reason:
            log.info("stopping", extra={"reason": reason})
        self._stop.set()

    def _install_signals(self) -> None:
        def on_stop(signum: int, _frame: Any) -> None:
            self.request_stop(signal.Signals(signum).name)

        def on_hup(_signum: int, _frame: Any) -> None:
            self._reload.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)
        # SIGUSR2 dumps every thread's stack to stderr (the journal): for diagnosing a stuck daemon.
        faulthandler.register(signal.SIGUSR2, all_threads=True)

    def _shutdown(self) -> None:
        self._stop.set()
        self.notifier.stopping()
        self.notifier.status("stopping: closing the current clip")
        assert self.parts is not None
        ft = self._frame_thread
        if ft is not None:
            ft.join(STOP_NOTICE)
            if ft.is_alive():
                if not self._left_camera.is_set():
                    # No frame came to see the stop flag: the camera is stuck inside a read, or waiting to
                    # reconnect. Closing it unblocks the iterator (a wait at once, a read within its timeout).
                    log.warning("frame loop did not stop; closing the camera to unblock it")
                    self.parts.close_camera()
                ft.join(STOP_TIMEOUT - STOP_NOTICE)
            if ft.is_alive():
                self._set_error("frame loop did not stop in time; the current clip will be recovered on next start")
                self._exit_code = EXIT_FAILED
        self.parts.close_camera()
        self.parts.stop_service()
        if self._maint_thread is not None:
            self._maint_thread.join(5.0)
        try:
            mark_stopped(self.state, self._status_dict())
        except OSError as exc:
            log.warning("could not write the final status", extra={"error": str(exc)})
        log.info("stopped", extra={"frames": self.stats.frames, "exit_code": self._exit_code})

    # -- frame loop ---------------------------------------------------------------------------

    def _frame_loop(self) -> None:
        assert self.parts is not None
        recorder = self.parts.recorder
        try:
            for frame in self.parts.frames():
                if self._stop.is_set():
                    self._left_camera.set()  # what is left: stopping the camera, closing the clip
                    break
                try:
                    recorder.process(frame)
                except ConsentcamError as exc:
                    # e.g. storage full: the vault reports it, recording resumes once there is room.
                    self.stats.errors += 1
                    self._set_error(str(exc))
                except Exception as exc:  # keep recording whatever one frame did
                    self.stats.errors += 1
                    self._set_error(f"{type(exc).__name__}: {exc}")
                    log.exception("error while processing a frame")
                mono = time.monotonic()
                self.stats.tick(mono)
                if not self.notifier.ready_sent:
                    self.notifier.ready(f"recording from {self.parts.camera_choice.describe()}")
                    log.info("first frame: ready", extra={"camera": self.parts.camera_choice.source})
                self.notifier.watchdog(mono)
            else:
                if not self._stop.is_set():
                    self.stats.camera_ended = True
                    if parts.source_is_finite(self.parts.camera_choice, self.parts.config):
                        log.info("the camera source ended")
                    else:
                        self._set_error("the camera stopped sending frames")
                        log.error("the camera stopped sending frames; stopping so that systemd restarts the daemon")
                        self._exit_code = EXIT_CAMERA_STOPPED
        except Exception as exc:
            self._set_error(f"camera failed: {type(exc).__name__}: {exc}")
            log.exception("camera failed")
            self._exit_code = EXIT_FAILED
        finally:
            self._close_recorder()
            self._stop.set()

    def _close_recorder(self) -> None:
        assert self.parts is not None
        try:
            self.parts.close_recorder(clock.now())
        except Exception as exc:
            self._set_error(f"closing the current clip failed: {type(exc).__name__}: {exc}")
            log.exception("closing the current clip failed")
            self._exit_code = EXIT_FAILED

    # -- maintenance --------------------------------------------------------------------------

    def _maintenance_loop(self) -> None:
        next_status = 0.0
        next_clock = time.monotonic() + CLOCK_CHECK_INTERVAL
        next_retention = time.monotonic() + 5.0
        next_space = 0.0
        last_os_warning = -1e9
        while not self._stop.is_set():
            mono = time.monotonic()
            try:
                if mono >= next_clock:
                    next_clock = mono + CLOCK_CHECK_INTERVAL
                    self._check_clock()
                if mono >= next_space:
                    next_space = mono + FREE_SPACE_CHECK_INTERVAL
                    if self._space_low():
                        log.warning("free space below the minimum: enforcing retention now")
                        next_retention = mono
                if mono >= next_retention:
                    next_retention = mono + RETENTION_INTERVAL
                    self._enforce_retention()
                if mono >= next_status:
                    next_status = mono + WRITE_INTERVAL
                    self._write_status()
                if self.config.home_assistant.enabled and self.parts is not None:
                    rec = self.parts.recorder_status()
                    rec["pending"] = self.parts.pending_count()
                    self.parts.update_home_assistant(rec)
            except OSError as exc:  # e.g. a full disk: said once a minute, without a traceback
                self._set_error(f"maintenance: {exc}")
                if mono - last_os_warning >= 60.0:
                    last_os_warning = mono
                    log.warning("maintenance step failed (will retry)", extra={"error": str(exc)})
            except Exception as exc:  # maintenance must never take the daemon down
                self._set_error(f"maintenance: {type(exc).__name__}: {exc}")
                log.exception("maintenance step failed")
            self._stop.wait(0.5)

    def _check_clock(self) -> None:
        synced = clock.clock_synchronised(self.config.clock.mode)
        if synced == self.clock_synced:
            return
        with self._lock:
            self.clock_synced = synced
            self.clock_synced_since = clock.now() if synced else None
        assert self.parts is not None
        self.parts.set_clock_synced(synced)
        if synced:
            log.info("clock is now synchronised: new clips carry trusted times; request expiry is judged")
        else:
            log.warning("clock lost synchronisation: new clips are marked clock_synced=false")

    def _space_low(self) -> bool:
        try:
            free = shutil.disk_usage(self.state.vault if self.state.vault.exists() else self.state.root).free
        except OSError:
            return False
        return free < self.config.storage.retention.min_free

    def _enforce_retention(self) -> None:
        assert self.parts is not None
        deleted = self.parts.enforce_retention()
        if deleted:
            log.info("retention deleted clips", extra={"count": len(deleted)})

    # -- reload -------------------------------------------------------------------------------

    def _do_reload(self) -> None:
        self.notifier.reloading()
        try:
            new = load_config(self.config_path, must_exist=False) if self.config_path else self.config
        except ConsentcamError as exc:
            self._set_error(f"reload failed, keeping the old settings: {exc}")
            log.error("reload failed, keeping the old settings", extra={"error": str(exc)})
            self.notifier.reloaded("running (reload failed: config invalid)")
            return
        changed = diff_config(config_to_dict(self.config), config_to_dict(new))
        assert self.parts is not None
        applied = self.parts.reload(new)
        if any(k.startswith("log.") for k in changed):
            setup_logging(new.log.level, new.log.format)
            applied.append("log")
        live = ("storage.retention", "clock.", "log.") + (("requests.",) if "requests" in applied else ())
        ignored = [k for k in changed if not k.startswith(live)]
        self.config = new
        log.info("reloaded", extra={"changed": ",".join(changed) or "nothing", "applied": applied,
                                    "needs_restart": ",".join(ignored) or "nothing"})
        self._check_clock()
        self.notifier.reloaded("running (reloaded)")

    # -- status -------------------------------------------------------------------------------

    def _set_error(self, message: str) -> None:
        with self._lock:
            self.last_error = f"{clock.iso(clock.now())} {without_credentials(message)}"  # shown in status

    def _status_dict(self) -> dict[str, Any]:
        p = self.parts
        rec = p.recorder_status() if p else {}
        svc = p.service_status() if p else {"enabled": False}
        with self._lock:
            last_error = self.last_error
            synced, since = self.clock_synced, self.clock_synced_since
        stale = (self.stats.last_frame_mono is not None and time.monotonic() - self.stats.last_frame_mono > 5.0)
        return {
            "running": True,
            "pid": os.getpid(),
            "started": self.started,
            "started_iso": clock.iso(self.started),
            "camera": self.camera_choice.to_dict() if self.camera_choice else None,
            "recording": rec.get("state", "idle") if not stale else "stalled",
            "current_clip": rec.get("current_clip"),
            "motion_active": bool(rec.get("motion_active", False)),
            "dropped_detection_frames": int(rec.get("dropped_detection_frames", 0)),
            "clips_recorded": int(rec.get("clips_recorded", 0)),
            "last_clip": rec.get("last_clip"),
            "vault_errors": int(rec.get("vault_errors", 0)),
            "frames_processed": self.stats.frames,
            "frame_errors": self.stats.errors,
            "fps": round(self.stats.fps, 2),
            "ready": self.notifier.ready_sent,
            "broker": svc,
            "pending_requests": p.pending_count() if p else 0,
            "clock": {"synced": synced, "mode": self.config.clock.mode,
                      "synced_since": clock.iso(since) if since else None},
            "watchdog": {"notify_socket": bool(self.notifier.enabled),
                         "interval_s": self.notifier.watchdog_interval},
            "last_error": last_error or None,
        }

    def _write_status(self) -> None:
        data = self._status_dict()
        write_status(self.state, data)
        self.notifier.status(_status_line(data))


def _status_line(data: dict[str, Any]) -> str:
    broker = data.get("broker") or {}
    mqtt = broker.get("state", "off") if broker.get("enabled") else "off"
    clip = f" clip={data['current_clip']}" if data.get("current_clip") else ""
    return (f"{data['recording']}{clip} fps={data['fps']} frames={data['frames_processed']} mqtt={mqtt} "
            f"pending={data['pending_requests']} clock={'ok' if data['clock']['synced'] else 'unsynced'}")


def diff_config(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ (for the reload log line; values are not logged)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += diff_config(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [prefix.rstrip(".")] if old != new else []


def _no_core_dumps() -> None:
    """A crash (say in FFmpeg on odd camera data) must not write a core file, nor hand one to
    systemd-coredump (which honours the limit): it would hold frames, pre-roll and segment
    buffers, i.e. plaintext footage on disk. Hard limit too, so no library can raise it again."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError) as exc:
        log.warning("could not disable core dumps", extra={"error": str(exc)})
