"""Helpers for the daemon tests: a real `consentcam run` subprocess, its notify socket, status."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import run_cli

T = Any


def write_config(path: Path, *, port: int | None = None, extra: str = "", post_roll: str = "4s",
                 min_free: str = "1MB", bitrate: int = 300_000) -> Path:
    mqtt = f"mqtt:\n  enabled: true\n  host: 127.0.0.1\n  port: {port}\n  keepalive: 5\n" if port else ""
    path.write_text(f"""device:
  name: test-door
camera:
  source: synthetic
  width: 320
  height: 240
  fps: 10
  detect_width: 160
  detect_height: 120
  bitrate: {bitrate}
recording:
  pre_roll: 1s
  post_roll: {post_roll}
  merge_gap: 1s
storage:
  retention:
    min_free: {min_free}
clock:
  mode: synchronized
log:
  format: json
{mqtt}{extra}""")
    return path


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET, read by a thread
    (like systemd, it always reads, so the sender's buffer never fills)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ccn-"))  # short path: sun_path is limited to 108 bytes
        self.path = self.dir / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.extend(data.decode().splitlines())

    def collect(self, until: Callable[[list[str]], bool], timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(list(self.messages)):
            time.sleep(0.1)
        return list(self.messages)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
            self.dir.rmdir()


class DaemonProc:
    def __init__(self, state: Path, config: Path, log: Path, *, speed: float = 2.0,
                 notify: NotifySocket | None = None, watchdog_usec: int | None = None) -> None:
        self.state, self.config, self.log = state, config, log
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "CONSENTCAM_CONFIG",
                            "CONSENTCAM_STATE_DIR")}
        if notify is not None:
            env["NOTIFY_SOCKET"] = str(notify.path)
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        cmd = [sys.executable, "-c", "import sys; from edge.cli.main import main; sys.exit(main())",
               "--state-dir", str(state), "--config", str(config), "run", "--synthetic-speed", str(speed)]
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status(self) -> tuple[int, dict[str, Any]]:
        res = run_cli("status", "--json", state=self.state, config=self.config, timeout=30)
        try:
            return res.returncode, json.loads(res.stdout)
        except ValueError:
            raise AssertionError(f"status --json printed no JSON: {res.stdout!r} {res.stderr!r}") from None

    def daemon_status(self) -> dict[str, Any]:
        """The raw status file (cheaper than the CLI, for polling)."""
        try:
            return json.loads((self.state / "run" / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"daemon did not exit within {timeout}s of signal {sig}") from None
        return self.proc.returncode

    def log_lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    out.append(item)
        return out

    def log_tail(self) -> str:
        """The end of the daemon's log, with every thread's stack (SIGUSR2) if it is still running."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR2)
            time.sleep(0.5)
        return self.log.read_text(errors="replace")[-6000:]


def wait_for(pred: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def clips_json(state: Path, config: Path) -> list[dict[str, Any]]:
    res = run_cli("clips", "list", "--json", state=state, config=config, timeout=30)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    return data["clips"] if isinstance(data, dict) else data
