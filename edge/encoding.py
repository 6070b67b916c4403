"""Canonical byte encodings shared by everything that hashes or signs structured data."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from typing import Any


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON: sorted keys, no spaces, UTF-8. What gets hashed and signed."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64encode(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 section 4)."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict standard base64: rejects stray characters instead of skipping them."""
    return base64.b64decode(text.encode("ascii"), validate=True)


def strict_json_loads(data: bytes) -> Any:
    """Parse untrusted JSON strictly: UTF-8 only, no duplicate keys, no NaN/Infinity (nor a number
    literal so large it overflows to infinity). Every failure, including nesting deep enough to
    exhaust the recursion limit, is a ValueError, so callers need to catch one exception type."""
    try:
        return json.loads(
            bytes(data).decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value
