"""Wall-clock time and whether it can be trusted.

A Raspberry Pi has no real-time clock: after boot it starts from the last saved time (or 1970)
until NTP synchronises it. Until then consentcam marks clip times as unsynchronised and does
not judge request expiry.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
_TIME_ERROR = 5  # adjtimex(2): clock not synchronised


def now() -> float:
    return time.time()


def iso(ts: float) -> str:
    """RFC 3339 UTC with milliseconds, e.g. 2026-11-22T11:31:37.123Z."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(text: str) -> float:
    """Parse the RFC 3339 UTC form consentcam writes (Z suffix required)."""
    if not isinstance(text, str) or not text.endswith("Z"):
        raise ValueError("expected an RFC 3339 UTC time ending in 'Z'")
    return datetime.fromisoformat(text[:-1] + "+00:00").timestamp()


@lru_cache(maxsize=1)
def _adjtimex() -> Callable[[ctypes.Array[ctypes.c_char]], int] | None:
    """libc's adjtimex, looked up once: the verifier asks for every request, so no per-call search
    (ctypes.util.find_library runs ldconfig in a subprocess). libc is already in our process."""
    try:
        return ctypes.CDLL(None, use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None


def kernel_clock_synchronised() -> bool | None:
    """Ask the kernel (adjtimex) whether NTP considers the clock synchronised; None if unknown."""
    adjtimex = _adjtimex()
    if adjtimex is None:
        return None
    buf = ctypes.create_string_buffer(512)  # struct timex, zeroed: modes=0 reads only
    state = adjtimex(buf)
    if state < 0:
        return None
    return state != _TIME_ERROR


def clock_synchronised(mode: Literal["auto", "synchronized", "unsynchronized"]) -> bool:
    """The owner may override; otherwise systemd-timesyncd's flag file or the kernel decides."""
    if mode == "synchronized":
        return True
    if mode == "unsynchronized":
        return False
    if TIMESYNCD_FLAG.exists():
        return True
    return bool(kernel_clock_synchronised())
