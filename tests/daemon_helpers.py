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
    """An AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ccn-"))  # short path: sun_path is limited to 108 bytes
        self.path = self.dir / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.messages: list[str] = []

    def collect(self, until: Callable[[list[str]], bool], timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(self.messages):
            self.sock.settimeout(max(0.05, min(0.5, deadline - time.monotonic())))
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages += data.decode().splitlines()
        return self.messages

    def drain(self) -> list[str]:
        self.sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self.messages += self.sock.recv(4096).decode().splitlines()
        self.sock.setblocking(True)
        return self.messages

    def close(self) -> None:
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
        return self.log.read_text(errors="replace")[-3000:]


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
