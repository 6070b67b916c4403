"""Stand-in for picamera2.platform (see picamera2/__init__.py of this fake)."""

from __future__ import annotations

import enum
import os


class Platform(enum.Enum):
    VC4 = "VC4"
    PISP = "PISP"


def get_platform() -> Platform:
    return Platform(os.environ.get("FAKE_PICAMERA2_PLATFORM", "VC4"))
