"""Changes that jump once and hold are not subjects: a camera's on-screen clock when the light around it
changes, the shadow edge of a lamp switched on. The clock is found and filled in when the light changes
(edge/motion/overlay.py, docs/dev/MOTION-LOG.md "An on-screen clock: find the overlay and fill it in"); six
digits turning over at once before any light change are still a strict expected failure. Shadow edges
that fade out and back in as clouds pass over the sun, and a lamp's sharp edge, are strict expected
failures of the default detector and must pass with motion.cast_shadows (edge/motion/light_fit.py,
looks.py); every guard after them runs with both. The step-and-hold test tried before
(docs/dev/experiments/step-and-hold.patch) dropped subjects that stand still or move slowly, which the
guards at the end hold any next attempt to. (Tuning seeds; bench/motion_clock.py measures more.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest

from bench.motion_dimming import draw_car, draw_walker, path, run_scene, smooth, yard
from edge.capture.synthetic import SKYLIGHT, Distractor, Subject, SyntheticScene, sun_ramp
from edge.config import MotionConfig, RecordingConfig
from edge.motion.scoring import score_events
from edge.recording.analysis import analyse
from tests.motion_support import detect

SIX_DIGITS = pytest.mark.xfail(strict=True, reason="known limitation (docs/MOTION.md, Honest limits: on-screen "
                                                   "clock): six digits turning over at once at night, before the "
                                                   "light changed, are not yet marked as the overlay")
HELD_STEPS = pytest.mark.xfail(strict=True, reason="known limitation (docs/MOTION.md, Honest limits: on-screen "
                                                   "clock): a change that jumps once and holds looks like arrival")
SUN_SHADOWS = pytest.mark.xfail(strict=True, reason="known limitation (docs/MOTION.md, Honest limits: sunshine "
                                                    "and cast shadows): shadow edges that fade out and back in "
                                                    "are new structure, as a subject's arrival is (by default; "
                                                    "motion.cast_shadows fixes it)")
LAMP_EDGE = pytest.mark.xfail(strict=True, reason="known limitation (docs/MOTION.md, Honest limits: a lamp's sharp "
                                                  "shadow edge): a new edge that appears at once and stays looks "
                                                  "like arrival (by default; motion.cast_shadows fixes it)")


@pytest.mark.parametrize(("scenario", "seed"), [("lighting", 1), ("lighting", 2), ("lighting", 3),
                                                ("distractors", 1), ("distractors", 6),
                                                pytest.param("noise", 3, marks=SIX_DIGITS)])
def test_a_cameras_on_screen_clock_starts_no_event_when_the_light_changes(scenario: str, seed: int) -> None:
    # The clock's white text and black outline keep their brightness when a lamp goes off or the
    # exposure steps: the structure round them changes in one frame and then holds, and the digits
    # turn over every second (noise 3: at 18:00:00 six digits turn over at once). Each of these scenes
    # records one or more events of clock; without the clock they record nothing.
    plain = SyntheticScene(seed, scenario, 60)
    assert detect(plain).events == []
    clocked = SyntheticScene(seed, scenario, 60, clock=True)
    events = detect(clocked).events
    assert events == [], (events, clocked.ground_truth.distractors)


@pytest.mark.parametrize("seed", [pytest.param(1, marks=HELD_STEPS), 2, 3])
def test_subjects_are_found_as_promptly_under_an_on_screen_clock(seed: int) -> None:
    unclocked = SyntheticScene(seed, "mixed", 60)
    plain = score_events(detect(unclocked).events, unclocked.ground_truth.motion)
    scene = SyntheticScene(seed, "mixed", 60, clock=True)
    score = score_events(detect(scene).events, scene.ground_truth.motion)
    assert score.matched_truth == score.true_events == plain.true_events
    assert score.false_events <= plain.false_events, score
    assert max(abs(a - b) for a, b in zip(score.onsets, plain.onsets, strict=True)) < 0.2, (score, plain)

# Each test below runs twice: with the default detector and with motion.cast_shadows (the light judge of
# edge/motion/light_fit.py and looks.py), which must pass every guard and fixes the known limitations.
DEFAULT, CAST_SHADOWS = MotionConfig(), MotionConfig(cast_shadows=True)
BOTH_BUILDS = pytest.mark.parametrize("motion", [pytest.param(DEFAULT, id="default"),
                                                 pytest.param(CAST_SHADOWS, id="cast_shadows")])


def shipped_fails(known: pytest.MarkDecorator) -> pytest.MarkDecorator:
    """A known limitation of the default detector that motion.cast_shadows fixes."""
    return pytest.mark.parametrize("motion", [pytest.param(DEFAULT, id="default", marks=known),
                                              pytest.param(CAST_SHADOWS, id="cast_shadows")])


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


@shipped_fails(LAMP_EDGE)
@pytest.mark.parametrize("off_at", [None, 14.0], ids=["stays-on", "on-and-off"])
def test_a_lamp_that_casts_a_sharp_shadow_edge_starts_no_event(off_at: float | None, motion: MotionConfig) -> None:
    # A new edge in the picture, in one frame, that then stays: an event from 8.07 s to the end
    events = analyse(_lamp_on_a_wall(20.0, 8.0, off_at), 15.0, motion, RecordingConfig()).events
    assert events == [], events


@shipped_fails(LAMP_EDGE)
def test_a_subject_crossing_a_lamps_shadow_edge_is_still_found(motion: MotionConfig) -> None:
    # the control: a dark box that slides across the same wall after the lamp came on (today the lamp's
    # own event from 4 s on swallows it)
    def frames() -> Iterator[tuple[float, np.ndarray]]:
        for t, img in _lamp_on_a_wall(20.0, 4.0, None):
            if 10.0 <= t < 16.0:
                x = round(20 + 45 * (t - 10.0))
                img[120:200, x:x + 24] = 45
            yield t, img

    events = analyse(frames(), 15.0, motion, RecordingConfig()).events
    assert len(events) == 1 and 10.0 <= events[0].onset <= 10.6 and events[0].end >= 15.0, events


@shipped_fails(SUN_SHADOWS)
@pytest.mark.parametrize("seed", [1, 2])
def test_clouds_passing_over_the_sun_start_no_event(seed: int, motion: MotionConfig) -> None:
    # Sunshine with sharp cast shadows (eaves, a post, the tree, the house); clouds pass over the sun
    # and the camera's exposure follows. Nothing moves. Today: 2 false events in each minute.
    scene = SyntheticScene(seed, "sun", 60)
    assert detect(scene, motion).events == [], scene.ground_truth.distractors


@shipped_fails(SUN_SHADOWS)
@pytest.mark.parametrize(("kind", "y"), [("person", 0.62), ("cat", 0.77)])
def test_a_subject_waiting_while_a_cloud_covers_the_sun_is_one_event_and_the_sun_returning_none(
        kind: str, y: float, motion: MotionConfig) -> None:
    # It walks in at 4 s, waits 20 s, walks on; a thin cloud covers the sun from 20 to 40 s. Today the
    # sun's return makes an event of its own (39.5 s). (The light-edge test that fixed this, not shipped:
    # docs/dev/experiments/light-edge.patch; a first version of it split the waiting cat at 20.5 s.)
    scene = SyntheticScene(1, "sunny", 45)
    speed = {"person": 0.12, "cat": 0.15}[kind]
    scene.replan([Subject(kind, 4.0, -0.1, 1.1, y, speed, 3.0, 20.0)], [Distractor("sun", 20.0, 40.0, 0.8)])
    truth = scene.ground_truth.motion[0]
    events = detect(scene, motion).events
    assert len(events) == 1, events
    assert events[0].onset < truth.start + 0.5 and truth.end - 0.5 < events[0].end < truth.end + 2.0, (events, truth)


EDGE_OUTLASTS = pytest.mark.xfail(strict=True, reason="known limitation (docs/MOTION.md, Honest limits: sunshine "
                                                      "and cast shadows): shadow edges that fade in while it waits "
                                                      "are new structure and outlast it (3.6 s; by default, "
                                                      "motion.cast_shadows fixes it)")


@pytest.mark.parametrize(("kind", "y", "returning", "motion"), [
    *(pytest.param("person", 0.6, returning, m, id=f"person-{returning}-{name}") for returning in (False, True)
      for m, name in ((DEFAULT, "default"), (CAST_SHADOWS, "cast_shadows"))),
    pytest.param("cat", 0.77, False, DEFAULT, marks=EDGE_OUTLASTS, id="cat-False-default"),
    pytest.param("cat", 0.77, False, CAST_SHADOWS, id="cat-False-cast_shadows")])
def test_a_subject_that_walks_in_as_the_light_changes_and_waits_is_found_at_once_and_kept(
        kind: str, y: float, returning: bool, motion: MotionConfig) -> None:
    # This subject comes into view as a cloud's edge crosses the sun (or leaves it), walks to the
    # middle and waits 8 s there while the exposure settles, then walks on. One event, from its
    # arrival until it has gone: the guard for any fix of the shadow edges above.
    scene = SyntheticScene(3, "sun", 45)
    speed = {"person": 0.12, "cat": 0.15}[kind]
    cloud = Distractor("sun", 8.0, 20.0, 1.0) if returning else Distractor("sun", 20.0, 40.0, 1.0)
    scene.replan([Subject(kind, 19.7, -0.1, 1.1, y, speed, 0.5 / speed, 8.0)], [cloud])
    truth = scene.ground_truth.motion[0]
    events = detect(scene, motion).events
    assert len(events) == 1, (events, truth)
    assert events[0].onset < truth.start + 0.5 and truth.end - 0.5 < events[0].end < truth.end + 2.0, (events, truth)


def _sun_back(edge: float) -> Distractor:
    """A cloud whose fade-out from the sun starts at `edge` (the ramp's length follows from its start)."""
    start = edge - 15.0
    return Distractor("sun", start, edge + sun_ramp(start), 0.71)


@BOTH_BUILDS
@pytest.mark.parametrize(("seed", "scenario", "subject", "light"), [
    (9, "night", Subject("person", 13.78, -0.05, 1.05, 0.506, 0.118, 1.41, 12.92),
     Distractor("lights_on", 15.0, 50.0, 0.99)),
    (5, "night", Subject("person", 13.90, -0.05, 1.05, 0.612, 0.166, 1.29, 12.23),
     Distractor("lights_on", 15.0, 50.0, 1.02)),
    (4, "quiet", Subject("person", 14.20, 0.36, 1.05, 0.644, 0.094, 0.52, 8.26),
     Distractor("lights_on", 15.0, 50.0, 0.9)),
    (5, "sun", Subject("person", 14.80, 0.36, 1.05, 0.529, 0.152, 0.89, 14.32), _sun_back(15.0)),
    (8, "sun", Subject("person", 14.06, -0.05, 1.05, 0.507, 0.113, 0.94, 14.13), _sun_back(15.0)),
], ids=["lamp-night-9", "lamp-night-5", "lamp-day-door-4", "sun-back-door-5", "sun-back-8"])
def test_a_subject_that_arrives_just_before_the_light_changes_and_stops_is_one_event(
        seed: int, scenario: str, subject: Subject, light: Distractor, motion: MotionConfig) -> None:
    # helper-44's review of the change-of-light test (docs/dev/MOTION-LOG.md): a person comes into view less than
    # a second before a lamp comes on or the sun comes out, and waits 8-14 s. That test learnt each of
    # them away (found 12-15 s late, or split); the shipped build keeps each one event, confirmed within
    # 1.7 s (the night ones are dark).
    scene = SyntheticScene(seed, scenario, 50.0)
    scene.replan([subject], [light])
    truth = scene.ground_truth.motion[0]
    events = detect(scene, motion).events
    assert len(events) == 1, (events, truth)
    assert events[0].onset < truth.start + 2.0 and events[0].end > truth.end - 0.5, (events, truth)


@BOTH_BUILDS
@pytest.mark.parametrize(("seed", "subject", "cloud"), [
    (6, Subject("person", 19.3836, 1.05, -0.05, 0.5873, -0.17183, 3.7457, 24.81),
     Distractor("sun", 7.4351, 22.6964, 0.6787)),
    (12, Subject("cat", 20.2135, -0.065, 1.065, 0.7625, 0.23110, 3.0379, 26.048),
     Distractor("sun", 3.0153, 22.6961, 0.9446)),
], ids=["person-6", "cat-12"])
def test_a_subject_that_stops_just_as_the_sun_is_back_is_one_event(
        seed: int, subject: Subject, cloud: Distractor, motion: MotionConfig) -> None:
    # helper-46's review of the light-fit patch (docs/dev/MOTION-LOG.md, "The light as a sum of two pictures"):
    # the sun comes back out over 20.0-22.7 s while this subject walks in; it stops about half a second
    # later and stands 25 s. With the patch its cells waited to be judged, were explained by "the
    # picture 0.2 s ago" once they stood still, and were learnt as light: the event ended at 23 s.
    scene = SyntheticScene(seed, "sun", min(subject.t1 + 10.0, 110.0))
    scene.replan([subject], [cloud])
    truth = scene.ground_truth.motion[0]
    events = [e for e in detect(scene, motion).events if e.end >= truth.start and e.start <= truth.end]
    assert len(events) == 1, (events, truth)
    assert events[0].onset < truth.start + 0.5 and events[0].end > truth.end - 0.5, (events, truth)


@BOTH_BUILDS
def test_a_large_subject_close_to_the_camera_that_stands_still_stays_one_event(motion: MotionConfig) -> None:
    # A dark, patterned shape a sixth of the picture (someone at the door, close up) walks in, stands
    # still for 10 s and walks out: its inside changes the brightness of many cells at once, as a change
    # of light does (the change-of-light test, withdrawn, was started by such subjects). It must not be
    # learnt while it stands there, nor outlast itself.
    rng = np.random.default_rng(11)
    wall = rng.integers(70, 190, (30, 40)).astype(np.float32).repeat(8, 0).repeat(8, 1)
    coat = rng.integers(20, 60, (38, 23)).astype(np.float32).repeat(4, 0).repeat(4, 1)  # 152 x 92 px

    def frames() -> Iterator[tuple[float, np.ndarray]]:
        for i in range(round(26.0 * 15)):
            t = i / 15
            img = wall.copy()
            x = round(-92 + 60 * min(t - 4.0, 3.0) + 60 * max(0.0, t - 17.0)) if t >= 4.0 else -92
            if -92 < x < 320:
                left, right = max(x, 0), min(x + 92, 320)
                img[60:212, left:right] = coat[:, left - x:right - x]
            img += rng.normal(0, 1.8, img.shape).astype(np.float32)
            yield t, np.clip(img, 0, 255).astype(np.uint8)

    # in view from 4 s, stands at x 88-180 from 7 to 17 s, out of view at 20.9 s
    events = analyse(frames(), 15.0, motion, RecordingConfig()).events
    assert len(events) == 1, events
    assert events[0].onset < 4.5 and 20.4 < events[0].end < 22.5, events


@BOTH_BUILDS
@pytest.mark.parametrize("seed", [1, 2])
def test_subjects_under_passing_clouds_are_found_promptly(seed: int, motion: MotionConfig) -> None:
    # the control for any fix of the above: the same sky over subjects
    scene = SyntheticScene(seed, "sunny", 60)
    score = score_events(detect(scene, motion).events, scene.ground_truth.motion)
    assert score.matched_truth == score.true_events >= 2, score
    assert max(score.onsets) < 1.0, score


# Guards for any fix of the above: what the step-and-hold test got wrong (helper-36's review). Both pass
# on the shipped detector.

def _on_a_noisy_wall(seconds: float, seed: int, level: int, spread: int,
                     draw: Callable[[float, np.ndarray], None]) -> Iterator[tuple[float, np.ndarray]]:
    """320x240 at 15 fps: a wall of 4x4-pixel tiles (level .. level + spread) with a camera's noise;
    draw(t, picture) adds the subject."""
    rng = np.random.default_rng(seed)
    wall = (rng.integers(0, spread, (60, 80)).astype(np.float32) + level).repeat(4, 0).repeat(4, 1)
    for i in range(round(seconds * 15)):
        img = wall.copy()
        draw(i / 15, img)
        img += rng.normal(0, 2.0, img.shape).astype(np.float32)
        yield i / 15, np.clip(img, 0, 255).astype(np.uint8)


@BOTH_BUILDS
def test_a_subject_that_stands_still_for_20_s_stays_one_event(motion: MotionConfig) -> None:
    # A dark block slides in, stands still for 20 s (a person waiting at the door), slides on. The
    # step-and-hold test let its credit lapse after 5 s, refused it and learnt it into the background:
    # two events with 15 s of nothing between them.
    def block(t: float, img: np.ndarray) -> None:
        if t >= 4:
            d = t - 4
            d = d if d <= 2 else (2 if d < 22 else d - 20)
            x = round(20 + 45 * d)
            if x < 300:
                img[120:200, x:x + 24] = 45

    events = analyse(_on_a_noisy_wall(32.0, 5, 100, 40, block), 15.0, motion, RecordingConfig()).events
    assert len(events) == 1 and events[0].onset < 4.6 and events[0].end > 27.0, events


@BOTH_BUILDS
@pytest.mark.parametrize("speed", [4, 8, 15])
def test_a_slow_low_contrast_subject_is_found_soon_and_followed(speed: int, motion: MotionConfig) -> None:
    # A block 20 grey levels darker than a dim wall creeps in at 4-15 px/s (a distant person walking
    # almost towards the camera). Over 1/15 s its edges move less than a pixel: the step-and-hold test
    # saw no movement, refused it and learnt it away (found after 22-26 s, or lost half-way).
    def block(t: float, img: np.ndarray) -> None:
        if t >= 5:
            x = round(-24 + speed * (t - 5))
            if x < 320:
                img[140:164, max(0, x):max(0, x + 24)] -= 20

    events = analyse(_on_a_noisy_wall(40.0, 7, 60, 12, block), 15.0, motion, RecordingConfig()).events
    in_view = 5 + 12 / speed  # half of it in the picture
    assert events and events[0].onset < in_view + 2.0, events
    leaves = min(40.0, 5 + 344 / speed)
    assert sum(min(e.end, leaves) - max(e.start, in_view) for e in events) > 0.8 * (leaves - in_view), events


# Guards from the review of the third shadow attempt (docs/dev/MOTION-LOG.md, "When the light falls, what only
# faded is light"): two owner cases that the shipped build gets right and that attempt got wrong.

@BOTH_BUILDS
def test_a_plain_car_of_the_drives_brightness_arriving_as_a_cloud_dims_the_light_is_found_at_once(
        motion: MotionConfig) -> None:
    # A cloud dims the yard by 20 % (20-21.5 s); then a plain car as bright as the gravel drives in
    # (half in view at 21.43 s), stands 10 s and drives off (half out at 34.29 s). Its change is mostly
    # gravel covered, structure taken away, which is how a fading shadow looks too: the attempt took it
    # for light and found the car only when it drove off, 11.9 s late.
    where = path(21.0, -0.15, 0.5, 1.17, 0.35, 10.0)

    def car(img: np.ndarray, t: float) -> None:
        x = where(t)
        if x is not None:
            draw_car(img, x, 138.0, windscreen=False)

    events = analyse(yard(45.0, smooth(20.0, 21.5, 1.0, 0.8), car), 15.0, motion, RecordingConfig()).events
    assert len(events) == 1, events
    assert 21.43 <= events[0].onset <= 21.93 and events[0].end >= 33.79, events


def _swaying(x: float, stop: float, t: float) -> float:
    """Where a subject at x is drawn: while it waits at `stop`, it sways half a pixel (at 320 px)."""
    return x + 0.5 * np.sin(2 * np.pi * 0.7 * t) / 320 if x == stop else x


def _a_second_visitor(first_wait: float, second: float, light: Callable[[float], float],
                      first_sways: bool, motion: MotionConfig) -> tuple[list, float, float]:
    """Two people in the same dark coat walk to the same spot at the door and wait there, the first
    from 5 s for `first_wait` s, the second from `second` for 15 s, swaying half a pixel while they wait
    (the first too if `first_sways`), in the yard under `light`. Returns the events that end after the
    second came, and when the second is half in view and half out again (x = 1.0)."""
    first, then = path(5.0, -0.03, 0.4, 1.05, 0.12, first_wait), path(second, -0.03, 0.4, 1.05, 0.12, 15.0)

    def draw(img: np.ndarray, t: float) -> None:
        for where, sways in ((first, first_sways), (then, True)):
            x = where(t)
            if x is not None:
                draw_walker(img, _swaying(x, 0.4, t) if sways else x, 45.0, face=True)

    events = analyse(yard(second + 30.0, light, draw), 15.0, motion, RecordingConfig()).events
    return [e for e in events if e.end > second], second + 0.25, second + 3.583 + 15.0 + 5.0


@BOTH_BUILDS
def test_a_visitor_standing_where_an_earlier_one_waited_through_a_change_of_light_is_one_event(
        motion: MotionConfig) -> None:
    # The first person waits 70 s at the door (long enough to be partly learnt) while the light dims by
    # 30 % and comes back; 40 s after they left a second person in the same dark coat walks to the same
    # spot, waits 15 s (swaying half a pixel) and walks on. The attempt had kept the background from
    # the change of light as a "look" of the scene, with the first person half learnt into it: the
    # second one fitted between that look and the background, was learnt away 3 s after stopping and
    # left a ghost after leaving.
    dim, back = smooth(68.6, 70.1, 1.0, 0.7), smooth(74.6, 76.1, 1.0, 1 / 0.7)
    mine, arrive, leave = _a_second_visitor(70.0, 124.1, lambda t: dim(t) * back(t), first_sways=False, motion=motion)
    assert len(mine) == 1, mine
    assert mine[0].onset < arrive + 0.5 and leave - 0.5 < mine[0].end < leave + 2.0, (mine, arrive, leave)


@BOTH_BUILDS
@pytest.mark.parametrize(("coat", "face"), [(125.0, False), (140.0, True)], ids=["coat-125", "coat-140-face"])
def test_a_person_of_the_grounds_brightness_arriving_as_the_light_dims_is_found_at_once(
        coat: float, face: bool, motion: MotionConfig) -> None:
    # The fifth light test (docs/dev/MOTION-LOG.md, "Each pixel's path over the last second"): the yard dims to
    # 55 % while a person in a coat about as bright as the gravel walks in, waits 8 s and walks on (one
    # scene of bench/motion_dimming.py, seed 2). A dim is one path, not two, so the light's second
    # strongest path is the person's own; before that test learnt to judge a dim by one path, their
    # cells waited to be judged and were confirmed about 1 s late. The shipped build confirms them
    # within 0.25 s, and so does the patch now.
    row = run_scene((2, "person", coat, face, 0.55), motion)
    assert row["events"] == 1 and row["onset_s"] <= 0.5, row


@BOTH_BUILDS
def test_a_person_crossing_shadow_edges_as_the_sun_comes_back_is_one_event_that_ends_with_them(
        motion: MotionConfig) -> None:
    # One scene of bench/motion_shadows.py (sunny, seed 5): a person walks across the yard (5.5-11.5 s)
    # while a cloud uncovers the sun (9.3-11.7 s), crossing the eaves' and a post's shadow edges as they
    # come back. The fifth light test (docs/dev/MOTION-LOG.md, "Each pixel's path over the last second") marked
    # the returning edges as the person's and the event ran on to 21 s; the shipped build ends it with
    # the person, and so does that test since it takes a second look (edge/motion/looks.py in its patch).
    scene = SyntheticScene(5, "sunny", 120)
    truth = scene.ground_truth.motion[0]
    events = [e for e in detect(scene, motion, until=20.0).events if e.start < truth.end]
    assert len(events) == 1, (events, truth)
    assert events[0].onset < truth.start + 0.5 and events[0].end < truth.end + 1.0, (events, truth)


@BOTH_BUILDS
def test_a_look_alike_coming_back_to_where_a_learnt_visitor_stood_as_the_light_dims_is_one_event(
        motion: MotionConfig) -> None:
    # A person in a dark coat waits 60 s at the door (learnt after about 37 s, when their event ends);
    # the light dims by 30 % and comes back while they still stand there, and they leave at 74 s. 40 s
    # later a second person in the same coat walks to the same spot as the light dims again, and waits
    # 15 s, swaying half a pixel. Found by review of the fifth light test (docs/dev/MOTION-LOG.md, "Each
    # pixel's path over the last second"): its second look had kept the background from the first dim,
    # with the learnt visitor in it; the second one fitted that look, was learnt away 4 s after
    # arriving, and their event was split. Passes on main; the patch no longer trusts a look where
    # something was learnt lately.
    changes = [smooth(45.0, 46.5, 1.0, 0.7), smooth(53.0, 54.5, 1.0, 1 / 0.7), smooth(115.5, 117.0, 1.0, 0.7)]
    mine, arrive, leave = _a_second_visitor(60.0, 114.0, lambda t: float(np.prod([f(t) for f in changes])),
                                            first_sways=True, motion=motion)
    assert len(mine) == 1, mine
    assert mine[0].onset < arrive + 0.5 and leave - 0.5 < mine[0].end < leave + 2.0, (mine, arrive, leave)


def _with_the_house_shadow(sun: Callable[[float], float]) -> Callable[[float], np.ndarray]:
    """The yard's light per pixel: the sky's everywhere (SKYLIGHT of full sun) plus the share `sun(t)`
    of the sun's that gets through the clouds, kept out of the house's shadow (the right part of the
    yard, a sharp edge)."""
    shade = np.zeros((240, 320), np.uint8)
    cv2.fillPoly(shade, [np.array([(176, 90), (320, 90), (320, 240), (150, 240)], np.int32)], 255)
    sunlit = 1.0 - cv2.GaussianBlur(shade.astype(np.float32) / 255.0, (0, 0), 1.0)
    return lambda t: SKYLIGHT + (1.0 - SKYLIGHT) * sun(t) * sunlit


def _waiting_in_the_house_shadow(coat: float, sun: Callable[[float], float],
                                 motion: MotionConfig) -> tuple[list, int, int]:
    """A person in a coat of luma `coat` walks into the house's shadow (5-11.5 s), waits there 14 s,
    swaying half a pixel, and walks on. The events, and in how many of the wait's frames (12-25 s) an
    object was reported over the person, of how many."""
    where = path(5.0, -0.03, 0.75, 1.05, 0.12, 14.0)

    def draw(img: np.ndarray, t: float) -> None:
        x = where(t)
        if x is not None:
            draw_walker(img, _swaying(x, 0.75, t), coat, face=False)

    seen, frames = 0, 0

    def watch(t: float, _luma: np.ndarray, result) -> None:
        nonlocal seen, frames
        if 12.0 <= t <= 25.0:
            frames += 1
            seen += any(x <= 0.78 and x + w >= 0.72 and y < 0.7 and y + h > 0.45 for x, y, w, h in result.boxes)

    events = analyse(yard(34.0, _with_the_house_shadow(sun), draw, seed=12), 15.0, motion, RecordingConfig(),
                     observer=watch).events
    return events, seen, frames


@BOTH_BUILDS
@pytest.mark.parametrize("coat", [40.0, 90.0])
def test_a_person_who_stops_in_a_shadow_as_the_sun_comes_back_is_seen_while_waiting(
        coat: float, motion: MotionConfig) -> None:
    # A person walks into the house's shadow as a cloud uncovers the sun (9-11 s), waits there 14 s and
    # walks on: one event, and the person is reported all through the wait, as in steady sunshine.
    # (The second review of the fifth light test, docs/dev/MOTION-LOG.md, "Each pixel's path over the last
    # second", used a coat of the gravel's own shade, 140. Such a person is not seen in the shadow at
    # all, even in steady sunshine, and that guard only passed on main because the returning shadow
    # edges held the event open; it was replaced by this one, which asks for the person.)
    steady, seen_steady, n = _waiting_in_the_house_shadow(coat, lambda t: 1.0, motion)
    assert len(steady) == 1 and seen_steady >= 0.95 * n, (steady, seen_steady, n)  # the control: steady sunshine
    events, seen, n = _waiting_in_the_house_shadow(coat, smooth(9.0, 11.0, 0.1, 1.0), motion)
    arrive, leave = 5.0 + 0.03 / 0.12, 5.0 + 0.78 / 0.12 + 14.0 + 0.25 / 0.12  # half in; half out (x = 1.0)
    assert len(events) == 1, events
    assert events[0].onset < arrive + 0.5 and leave - 0.5 < events[0].end < leave + 2.0, (events, arrive, leave)
    assert seen >= 0.95 * n, (seen, n)
