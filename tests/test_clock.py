"""Clock facts: RFC 3339 round trips, and whether the clock is synchronised (asked of the real kernel)."""

from __future__ import annotations

import pytest

from edge import clock


def test_iso_round_trip_keeps_milliseconds() -> None:
    ts = 1_795_000_000.123
    text = clock.iso(ts)
    assert text.endswith("Z") and text.count(".") == 1
    assert clock.parse_iso(text) == pytest.approx(ts, abs=0.0005)


@pytest.mark.parametrize("bad", ["2026-11-22T12:00:00", "2026-11-22T12:00:00+01:00", 42])
def test_parse_iso_wants_utc_with_z(bad: object) -> None:
    with pytest.raises(ValueError):
        clock.parse_iso(bad)  # type: ignore[arg-type]


def test_the_kernel_answers_on_linux() -> None:
    # adjtimex is in every Linux libc; None would mean the lookup broke and requests would all be refused.
    assert clock.kernel_clock_synchronised() in (True, False)


def test_owner_override_wins_over_the_kernel() -> None:
    assert clock.clock_synchronised("synchronized") is True
    assert clock.clock_synchronised("unsynchronized") is False
    auto = clock.clock_synchronised("auto")
    assert auto == (clock.TIMESYNCD_FLAG.exists() or bool(clock.kernel_clock_synchronised()))
