"""`consentcam demo` (being built)."""

from __future__ import annotations

from edge.errors import ConsentcamError


def run_demo(*, out: str | None, clips: int, as_json: bool, keep_work: bool) -> int:
    raise ConsentcamError("the demo is not finished yet")
