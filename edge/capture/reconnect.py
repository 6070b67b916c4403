"""Opening a lost live camera again: one policy for every network and webcam source.

A stream drops when Wi-Fi hiccups, the camera reboots or a USB webcam is pulled and plugged back.
The source opens it again after RECONNECT_DELAYS, for at most RECONNECT_FOR seconds counted from the
last packet or picture that arrived (a camera that accepts connections and then sends nothing does
not get a fresh budget with every connection). That stays within the systemd watchdog's 30 s, which
needs frames; past it the source ends, and the daemon exits for systemd to start it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from edge.capture.frames import CameraOpenError

log = logging.getLogger("consentcam.capture")

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0)
RECONNECT_FOR = 15.0
# An open cannot be interrupted and may take twice its timeout (opening, then probing): while
# reconnecting, keep every attempt short enough that a stop still fits the daemon's 10 s budget.
RECONNECT_OPEN_TIMEOUT = 4.0


class CameraChanged(CameraOpenError):
    """The camera came back, but not as the recording started (another codec): not retried. The
    recorder muxes and labels one codec, so the source ends and the restarted daemon starts afresh."""


def reconnect(shown: str, reconnect_for: float, closed: threading.Event, attempt: Callable[[float], None], *,
              last_packet: Callable[[], float], opens: int = 1) -> bool:
    """Call attempt(open_timeout) RECONNECT_DELAYS apart until it returns (True: back). False once
    `closed` is set, or `reconnect_for` seconds after the last packet that arrived (last_packet(), a
    time.monotonic()). `opens`: how many opens one attempt makes; each may wait twice its timeout, so
    all of them end by the deadline. attempt raises CameraOpenError while the camera is not back."""
    if reconnect_for <= 0:
        return False
    deadline = last_packet() + reconnect_for
    log.warning("%s: lost the stream; reconnecting for up to %.0f s", shown, max(0.0, deadline - time.monotonic()))
    last_error = "no attempt fitted in the time left"
    for delay in RECONNECT_DELAYS:
        if closed.wait(max(0.0, min(delay, deadline - time.monotonic()))):
            return False
        remaining = deadline - time.monotonic()
        if remaining < 0.5:
            break
        try:
            attempt(min(RECONNECT_OPEN_TIMEOUT / opens, remaining / (2 * opens)))
        except CameraChanged as exc:
            log.error("%s; ending the source", exc)
            return False
        except CameraOpenError as exc:
            log.info("%s: not back yet: %s", shown, exc)
            last_error = str(exc)
            continue
        if closed.is_set():
            return False
        log.info("%s: reconnected", shown)
        return True
    log.error("%s: no stream for %.0f s; giving up (last attempt: %s)", shown, reconnect_for, last_error)
    return False
