"""The event state machine: when does motion become an event, and when does the event end.

Pure and clock-injected: feed it (time, motion active) per detection frame and it returns what
happened. No I/O, so every edge (min_duration, post_roll, merge_gap) is unit-testable.

    idle --motion--> pending --persists min_duration--> recording
    recording --no motion for post_roll--> (merge_gap > post_roll ? holding : idle, event ends)
    holding --motion persists min_duration within merge_gap of the last motion--> recording (same event)
    holding --merge_gap passes--> idle, event ends (clip end = last motion + post_roll)

Short dropouts (up to `dropout` seconds, e.g. a skipped detection frame) do not reset `pending`,
but at least `min_fill` of the frames of a run must show motion: flickering leaves that blink on
now and then never add up to an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Phase(Enum):
    IDLE = "idle"
    PENDING = "pending"
    RECORDING = "recording"
    HOLDING = "holding"  # post-roll is over; waiting up to merge_gap before ending for good


@dataclass(frozen=True)
class Started:
    start: float  # first motion of the event (pre-roll is counted back from here)
    at: float  # when it was confirmed (start + about min_duration)


@dataclass(frozen=True)
class Resumed:
    at: float  # motion came back while holding: the same event (and clip) continues


@dataclass(frozen=True)
class Ended:
    start: float
    motion_end: float  # last frame with motion
    clip_end: float  # motion_end + post_roll: where the clip should stop
    at: float


Transition = Started | Resumed | Ended


class EventMachine:
    def __init__(self, *, min_duration: float, post_roll: float, merge_gap: float, dropout: float = 0.25,
                 min_fill: float = 0.6) -> None:
        self.min_duration = min_duration
        self.post_roll = post_roll
        self.merge_gap = merge_gap
        self.dropout = dropout
        self.min_fill = min_fill
        self._run_frames = 0
        self._run_active = 0
        self.phase = Phase.IDLE
        self.event_start: float | None = None
        self.last_motion: float | None = None
        self._pending_since: float | None = None  # motion run being confirmed (pending or holding)
        self._pending_last: float | None = None
        self._last_now: float | None = None

    @property
    def in_event(self) -> bool:
        return self.phase in (Phase.RECORDING, Phase.HOLDING)

    @property
    def writing(self) -> bool:
        """True while footage belongs in the clip (holding keeps it in RAM until decided)."""
        return self.phase is Phase.RECORDING

    def update(self, now: float, active: bool) -> list[Transition]:
        out: list[Transition] = []
        self._follow_clock(now)
        if self._pending_since is not None:
            self._run_frames += 1
            self._run_active += active
        if self.phase is Phase.IDLE:
            if active:
                self._begin_run(now)
                self.phase = Phase.PENDING
                out += self._confirm(now)
        elif self.phase is Phase.PENDING:
            if active:
                self._pending_last = now
                out += self._confirm(now)
            elif self._pending_last is not None and now - self._pending_last > self.dropout:
                self.phase = Phase.IDLE
                self._pending_since = self._pending_last = None
        elif self.phase is Phase.RECORDING:
            if active:
                self.last_motion = now
            elif self.last_motion is not None and now - self.last_motion >= self.post_roll:
                if self.merge_gap > self.post_roll:
                    self.phase = Phase.HOLDING
                    self._pending_since = self._pending_last = None
                else:
                    out.append(self._end(now))
        elif self.phase is Phase.HOLDING:
            out += self._holding(now, active)
        return out

    def finish(self, now: float) -> list[Transition]:
        """Stop now (shutdown): ends an open event with the clip cut at `now`."""
        if not self.in_event:
            self.phase = Phase.IDLE
            return []
        assert self.event_start is not None and self.last_motion is not None
        ended = Ended(self.event_start, self.last_motion, min(now, self.last_motion + self.post_roll), now)
        self._reset()
        return [ended]

    # -- internals ------------------------------------------------------------------------------

    def _follow_clock(self, now: float) -> None:
        """The wall clock stepped backwards (NTP on a Pi without an RTC): move the remembered times
        by the same step, so post_roll and merge_gap still count real seconds. Otherwise an event
        would wait out the whole step (an hour back = an hour of holding packets in RAM)."""
        last, self._last_now = self._last_now, now
        if last is None or now >= last:
            return
        step = now - last
        if self.event_start is not None:
            self.event_start += step
        if self.last_motion is not None:
            self.last_motion += step
        if self._pending_since is not None:
            self._pending_since += step
        if self._pending_last is not None:
            self._pending_last += step

    def _begin_run(self, now: float) -> None:
        self._pending_since = self._pending_last = now
        self._run_frames = self._run_active = 1

    def _filled(self) -> bool:
        return self._run_active >= self.min_fill * self._run_frames

    def _confirm(self, now: float) -> list[Transition]:
        assert self._pending_since is not None
        if now - self._pending_since + 1e-9 < self.min_duration or not self._filled():
            return []
        self.phase = Phase.RECORDING
        self.event_start = self._pending_since
        self.last_motion = now
        self._pending_since = self._pending_last = None
        return [Started(self.event_start, now)]

    def _holding(self, now: float, active: bool) -> list[Transition]:
        assert self.last_motion is not None
        if active:
            if self._pending_since is None or (
                self._pending_last is not None and now - self._pending_last > self.dropout
            ):
                self._begin_run(now)
            self._pending_last = now
            assert self._pending_since is not None
            if now - self._pending_since + 1e-9 >= self.min_duration and self._filled():
                self.phase = Phase.RECORDING
                self.last_motion = now
                self._pending_since = self._pending_last = None
                return [Resumed(now)]
        elif self._pending_last is not None and now - self._pending_last > self.dropout:
            self._pending_since = self._pending_last = None  # the run died out before it was confirmed
        if now - self.last_motion >= self.merge_gap and self._pending_since is None:
            return [self._end(now)]
        return []

    def _end(self, now: float) -> Ended:
        assert self.event_start is not None and self.last_motion is not None
        ended = Ended(self.event_start, self.last_motion, self.last_motion + self.post_roll, now)
        self._reset()
        return ended

    def _reset(self) -> None:
        self.phase = Phase.IDLE
        self.event_start = self.last_motion = None
        self._pending_since = self._pending_last = None
