"""Changes that jump once and hold are not subjects: a camera's on-screen clock when the light around it
changes, the shadow edge of a lamp switched on. (Tuning seeds; bench/motion_clock.py measures more.)"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from edge.capture.synthetic import SyntheticScene
from edge.config import MotionConfig, RecordingConfig
from edge.motion.scoring import score_events
from edge.recording.analysis import analyse
from tests.motion_support import detect


@pytest.mark.parametrize(("scenario", "seed"), [("lighting", 1), ("lighting", 2), ("lighting", 3),
                                                ("distractors", 1), ("distractors", 6), ("noise", 3)])
def test_a_cameras_on_screen_clock_starts_no_event_when_the_light_changes(scenario: str, seed: int) -> None:
    # The clock's white text and black outline keep their brightness when a lamp goes off or the
    # exposure steps: the structure round them changes in one frame and then holds, and the digits
    # turn over every second (noise 3: at 18:00:00 six digits turn over at once). Before, each of these
    # scenes recorded one or more events of clock; without the clock they record nothing. (Distractor
    # seeds 3, 4 and 7 still record 0.3-4.4 s each: rain on the text, docs/MOTION.md.)
    plain = SyntheticScene(seed, scenario, 60)
    assert detect(plain).events == []
    clocked = SyntheticScene(seed, scenario, 60, clock=True)
    events = detect(clocked).events
    assert events == [], (events, clocked.ground_truth.distractors)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_subjects_are_found_as_promptly_under_an_on_screen_clock(seed: int) -> None:
    plain = score_events(detect(SyntheticScene(seed, "mixed", 60)).events,
                         SyntheticScene(seed, "mixed", 60).ground_truth.motion)
    scene = SyntheticScene(seed, "mixed", 60, clock=True)
    score = score_events(detect(scene).events, scene.ground_truth.motion)
    assert score.matched_truth == score.true_events == plain.true_events
    assert score.false_events <= plain.false_events, score
    assert max(abs(a - b) for a, b in zip(score.onsets, plain.onsets, strict=True)) < 0.2, (score, plain)


def _lamp_on_a_wall(seconds: float, on_at: float, off_at: float | None) -> Iterator[tuple[float, np.ndarray]]:
    """320x240 at 15 fps: a plain, slightly textured wall with a camera's noise; from `on_at` (to
    `off_at`) a lamp lights the part of it beyond a post's sharp shadow edge (a diagonal line), 1.6x
    brighter. The lit part is a sixth of the picture: not a global change."""
    rng = np.random.default_rng(5)
    wall = rng.integers(100, 140, (60, 80)).astype(np.float32).repeat(4, 0).repeat(4, 1)
    yy, xx = np.mgrid[0:240, 0:320]
    lit = (xx - 0.6 * yy) > 200
    for i in range(round(seconds * 15)):
        t = i / 15
        img = wall.copy()
        if t >= on_at and (off_at is None or t < off_at):
            img[lit] *= 1.6
        img += rng.normal(0, 2.0, img.shape).astype(np.float32)
        yield t, np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("off_at", [None, 14.0], ids=["stays-on", "on-and-off"])
def test_a_lamp_that_casts_a_sharp_shadow_edge_starts_no_event(off_at: float | None) -> None:
    # A new edge in the picture, in one frame, that then stays (before: an event from 8.07 s to the end)
    events = analyse(_lamp_on_a_wall(20.0, 8.0, off_at), 15.0, MotionConfig(), RecordingConfig()).events
    assert events == [], events


def test_a_subject_crossing_a_lamps_shadow_edge_is_still_found() -> None:
    # the control: a dark box that slides across the same wall after the lamp came on
    def frames() -> Iterator[tuple[float, np.ndarray]]:
        for t, img in _lamp_on_a_wall(20.0, 4.0, None):
            if 10.0 <= t < 16.0:
                x = round(20 + 45 * (t - 10.0))
                img[120:200, x:x + 24] = 45
            yield t, img

    events = analyse(frames(), 15.0, MotionConfig(), RecordingConfig()).events
    assert len(events) == 1 and 10.0 <= events[0].onset <= 10.6 and events[0].end >= 15.0, events
