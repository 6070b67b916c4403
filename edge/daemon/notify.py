"""systemd readiness and watchdog notifications, harmless when not run by systemd.

Reads ``$NOTIFY_SOCKET`` (through the pinned ``sdnotify`` package) and ``$WATCHDOG_USEC``. Pings
come from the frame loop only, so a camera that stops delivering frames stops the pings and
systemd restarts the service once ``WatchdogSec`` passes.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import sdnotify

log = logging.getLogger("consentcam.daemon")


class Notifier:
    def __init__(self) -> None:
        self.socket_path = os.environ.get("NOTIFY_SOCKET", "")
        self.enabled = bool(self.socket_path)
        self._notifier = sdnotify.SystemdNotifier() if self.enabled else None
        sock = getattr(self._notifier, "socket", None)
        if sock is not None:
            # Never block the frame loop: if the receiver is not reading (its buffer is full), a
            # notification is dropped rather than stalling recording. systemd always reads.
            sock.setblocking(False)
        elif self.enabled:
            log.warning("cannot connect to NOTIFY_SOCKET; readiness and watchdog notifications are off")
        self.watchdog_interval = _watchdog_interval()
        self._last_ping = 0.0
        self._lock = threading.Lock()
        self.ready_sent = False

    def _send(self, text: str) -> None:
        if self._notifier is None:
            return
        with self._lock:  # the datagram socket is shared by the frame loop and the main thread
            self._notifier.notify(text)

    def ready(self, status: str = "") -> None:
        if self.ready_sent:
            return
        self.ready_sent = True
        self._send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> None:
        self._send(f"STATUS={_one_line(text)}")

    def watchdog(self, now: float | None = None) -> None:
        """Ping at most every sixth of the watchdog period (5 s of WatchdogSec=30s). systemd asks for
        at least every half; more often leaves a lost camera's reconnect (edge.capture.reconnect) most of the
        period instead of what is left of it after the last ping."""
        if self.watchdog_interval is None:
            return
        now = time.monotonic() if now is None else now
        if now - self._last_ping >= self.watchdog_interval / 6:
            self._last_ping = now
            self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def reloading(self) -> None:
        self._send("RELOADING=1")

    def reloaded(self, status: str) -> None:
        """End of a reload (successful or not): systemd waits for READY=1 after RELOADING=1."""
        self._send(f"READY=1\nSTATUS={_one_line(status)}")


def _watchdog_interval() -> float | None:
    """Seconds between required pings, or None when no watchdog is asked for.

    ``$WATCHDOG_PID``, if set, must name this process (systemd sets it so a child does not ping
    for its parent)."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a whole number of microseconds", usec[:32])
        return None
    return value / 1e6 if value > 0 else None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]
