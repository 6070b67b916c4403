"""The one strict JSON loader every untrusted body goes through (requests, headers, manifests)."""

from __future__ import annotations

import pytest

from edge.encoding import canonical_json, strict_json_loads


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b'{"a": NaN}', "NaN is not allowed"),
        (b'{"a": -Infinity}', "-Infinity is not allowed"),
        (b'{"a": 1e999}', "out of range"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": "\xff"}', "utf-8"),
        (b'{"a": ', "Expecting value"),
    ],
    ids=["duplicate", "nan", "infinity", "overflow", "deep", "not-utf8", "truncated"],
)
def test_hostile_json_is_always_a_value_error(raw: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        strict_json_loads(raw)


def test_canonical_json_round_trips() -> None:
    body = {"b": [1, 2.5, "x"], "a": {"z": None, "y": True}}
    assert strict_json_loads(canonical_json(body)) == body
