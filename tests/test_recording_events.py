"""The event state machine's edges, driven by an injected clock (no I/O)."""

from __future__ import annotations

import pytest

from edge.recording.events import Ended, EventMachine, Phase, Resumed, Started

FPS = 10.0


def run(machine: EventMachine, timeline: list[tuple[float, float]], until: float) -> list:
    """Feed frames at FPS from 0 to `until`; motion is active inside any (start, end) of `timeline`."""
    out = []
    for i in range(round(until * FPS) + 1):
        t = i / FPS
        active = any(a <= t < b for a, b in timeline)
        for tr in machine.update(t, active):
            out.append(tr)
    return out


def machine(min_duration: float = 0.3, post_roll: float = 2.0, merge_gap: float = 4.0) -> EventMachine:
    return EventMachine(min_duration=min_duration, post_roll=post_roll, merge_gap=merge_gap)


def test_motion_shorter_than_min_duration_starts_nothing() -> None:
    out = run(machine(min_duration=0.5), [(1.0, 1.35)], until=10)
    assert out == []


def test_event_starts_after_min_duration_with_start_at_first_motion() -> None:
    m = machine(min_duration=0.5)
    out = run(m, [(1.0, 3.0)], until=3.0)
    assert len(out) == 1 and isinstance(out[0], Started)
    assert out[0].start == pytest.approx(1.0)
    assert out[0].at == pytest.approx(1.5)
    assert m.phase is Phase.RECORDING


def test_single_frame_dropout_does_not_reset_pending() -> None:
    # motion 1.0-1.2, one missing frame at 1.2, motion again 1.3-2.0: still one run from 1.0
    out = run(machine(min_duration=0.5), [(1.0, 1.2), (1.3, 2.0)], until=2.0)
    assert [type(o) for o in out] == [Started] and out[0].start == pytest.approx(1.0)


def test_post_roll_ends_event_after_last_motion() -> None:
    out = run(machine(post_roll=2.0, merge_gap=1.0), [(1.0, 3.0)], until=10)
    ended = [o for o in out if isinstance(o, Ended)]
    assert len(ended) == 1
    assert ended[0].motion_end == pytest.approx(2.9)
    assert ended[0].clip_end == pytest.approx(4.9)
    assert ended[0].at == pytest.approx(4.9)


def test_events_closer_than_merge_gap_merge_into_one() -> None:
    # post_roll 2, merge_gap 4: a gap of 3 s (> post_roll, < merge_gap) still merges.
    out = run(machine(post_roll=2.0, merge_gap=4.0), [(1.0, 2.0), (4.9, 6.0)], until=20)
    kinds = [type(o) for o in out]
    assert kinds == [Started, Resumed, Ended]
    assert out[-1].start == pytest.approx(1.0) and out[-1].motion_end == pytest.approx(5.9)


def test_events_further_apart_than_merge_gap_stay_separate() -> None:
    out = run(machine(post_roll=2.0, merge_gap=4.0), [(1.0, 2.0), (7.0, 8.0)], until=20)
    kinds = [type(o) for o in out]
    assert kinds == [Started, Ended, Started, Ended]
    # the first ended at merge_gap after its last motion, its clip at post_roll
    assert out[1].clip_end == pytest.approx(1.9 + 2.0)
    assert out[1].at == pytest.approx(1.9 + 4.0)


def test_gap_within_post_roll_continues_without_resume() -> None:
    out = run(machine(post_roll=5.0, merge_gap=4.0), [(1.0, 2.0), (5.0, 6.0)], until=20)
    assert [type(o) for o in out] == [Started, Ended]


def test_finish_closes_open_event_at_now() -> None:
    m = machine(post_roll=5.0)
    run(m, [(1.0, 10.0)], until=4.0)
    out = m.finish(4.05)
    assert len(out) == 1 and out[0].clip_end == pytest.approx(4.05) and m.phase is Phase.IDLE
    assert m.finish(5.0) == []


def test_zero_min_duration_starts_on_first_motion_frame() -> None:
    out = run(machine(min_duration=0.0), [(2.0, 2.1)], until=3)
    assert isinstance(out[0], Started) and out[0].at == pytest.approx(2.0)
