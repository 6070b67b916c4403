"""Event-level scoring of detections against ground truth (used by tests and bench/motion.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Score:
    true_events: int = 0
    detected: int = 0
    matched_truth: int = 0
    false_events: int = 0
    onsets: list[float] = field(default_factory=list)  # confirmation time - truth start, per matched truth
    # event start (first moving frame, what `consentcam detect` reports as "start") - truth start
    starts: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return (self.detected - self.false_events) / self.detected if self.detected else 1.0

    @property
    def recall(self) -> float:
        return self.matched_truth / self.true_events if self.true_events else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, other: Score) -> None:
        self.true_events += other.true_events
        self.detected += other.detected
        self.matched_truth += other.matched_truth
        self.false_events += other.false_events
        self.onsets += other.onsets
        self.starts += other.starts


def score_events(events: list[Any], truth: list[Any], *, tolerance: float = 1.0) -> Score:
    """A detected event matches a truth interval when they overlap (truth widened by `tolerance` s).

    Each truth interval counts once; a detected event overlapping no truth is a false event.
    Onset = when the detector confirmed the event minus the truth start; start latency = the event's
    start (its first moving frame) minus the truth start. Both are 0 for a subject that arrives while
    an event is already running.
    """
    s = Score(true_events=len(truth), detected=len(events))
    used = [False] * len(events)
    for gt in truth:
        hit = None
        for i, ev in enumerate(events):
            if _overlaps(ev, gt, tolerance):
                hit = i
                break
        if hit is not None:
            s.matched_truth += 1
            s.onsets.append(max(0.0, events[hit].onset - gt.start))
            s.starts.append(max(0.0, events[hit].start - gt.start))
            used[hit] = True
    for i, ev in enumerate(events):
        if not used[i] and not any(_overlaps(ev, gt, tolerance) for gt in truth):
            s.false_events += 1
    return s


def false_seconds(events: list[Any], truth: list[Any], *, tolerance: float = 1.0) -> float:
    """Seconds inside detected events (start to end) that overlap no truth interval, as score_events
    matches them."""
    return sum(ev.end - ev.start for ev in events if not any(_overlaps(ev, gt, tolerance) for gt in truth))


def _overlaps(event: Any, truth: Any, tolerance: float) -> bool:
    return event.start <= truth.end + tolerance and event.end >= truth.start - tolerance
