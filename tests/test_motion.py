"""The motion detector on the synthetic scene, against its ground truth.

These use the TUNING seeds (1-3); bench/motion.py reports on held-out seeds (101+).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.capture.synthetic import Distractor, Interval, Subject, SyntheticScene
from edge.config import MotionConfig, RecordingConfig
from edge.motion.detector import WARMUP, MotionDetector
from edge.motion.scoring import false_seconds, score_events
from edge.recording.analysis import DetectedEvent, analyse
from tests.motion_support import detect

REC = RecordingConfig()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_real_subject_is_found_quickly_and_nothing_else(seed: int) -> None:
    scene = SyntheticScene(seed, "mixed", 90)
    assert scene.ground_truth.motion, "the scene must contain subjects"
    result = detect(scene)
    score = score_events(result.events, scene.ground_truth.motion)
    assert score.matched_truth == score.true_events, (result.events, scene.ground_truth.motion)
    assert score.false_events == 0, (result.events, scene.ground_truth.motion)
    # onset: from "half the subject in view" to the confirmed event (includes min_duration 0.3 s)
    assert max(score.onsets) < 1.5, score.onsets
    assert sum(score.onsets) / len(score.onsets) < 0.6, score.onsets
    for ev in result.events:
        assert 0.0 < ev.peak <= 1.0


def test_night_subjects_are_found() -> None:
    scene = SyntheticScene(3, "night", 90)
    score = score_events(detect(scene).events, scene.ground_truth.motion)
    assert score.true_events >= 3 and score.matched_truth == score.true_events and score.false_events == 0


@pytest.mark.parametrize(("seed", "index"), [(9, 1), (11, 1)])
def test_dark_subjects_at_night_are_confirmed_promptly(seed: int, index: int) -> None:
    # Rain and night noise lift every cell's flicker bar; these dark, slow people used to be confirmed
    # 1.6 s late (and seed 9's cat was missed). The travel test must catch them while they walk.
    scene = SyntheticScene(seed, "night", 120)
    subject = scene.ground_truth.motion[index]
    assert subject.kind == "person"
    score = score_events(detect(scene).events, scene.ground_truth.motion)
    assert score.matched_truth == score.true_events and score.false_events == 0
    assert score.onsets[index] < 1.0, score.onsets


@pytest.mark.parametrize("scenario", ["lighting", "ir", "foliage", "rain", "noise", "quiet", "distractors"])
@pytest.mark.parametrize("seed", [1, 3])
def test_no_event_without_real_motion(scenario: str, seed: int) -> None:
    scene = SyntheticScene(seed, scenario, 60)
    assert scene.ground_truth.motion == []
    result = detect(scene)
    assert result.events == [], (scenario, result.events, scene.ground_truth.distractors)


def test_handles_640x480_detection_frames() -> None:
    scene = SyntheticScene(2, "mixed", 60)
    score = score_events(detect(scene, size=(640, 480)).events, scene.ground_truth.motion)
    assert score.true_events and score.matched_truth == score.true_events and score.false_events == 0


WHOLE = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
SKY = ((0.0, 0.0), (1.0, 0.0), (1.0, 0.3), (0.0, 0.3))
GROUND = ((0.0, 0.4), (1.0, 0.4), (1.0, 1.0), (0.0, 1.0))


def test_ignore_mask_suppresses_motion_inside_it() -> None:
    scene = SyntheticScene(2, "mixed", 60)
    assert detect(scene).events  # sanity: there is something to suppress
    assert detect(scene, MotionConfig(ignore=(GROUND,))).events == []
    assert detect(scene, MotionConfig(ignore=(WHOLE,))).events == []


def test_zones_restrict_detection_to_their_area() -> None:
    scene = SyntheticScene(2, "mixed", 60)
    assert detect(scene, MotionConfig(zones=(SKY,))).events == []
    inside = detect(scene, MotionConfig(zones=(GROUND,)))
    score = score_events(inside.events, scene.ground_truth.motion)
    assert score.matched_truth == score.true_events > 0


def test_min_area_drops_small_objects() -> None:
    # seed 1 starts with a cat (about 0.6 % of the frame); a 5 % minimum object size ignores it.
    scene = SyntheticScene(1, "mixed", 25)
    assert [m.kind for m in scene.ground_truth.motion] == ["cat"]
    assert len(detect(scene).events) == 1
    assert detect(scene, MotionConfig(min_area=0.05)).events == []


def test_higher_sensitivity_sees_at_least_as_much() -> None:
    scene = SyntheticScene(3, "night", 40)
    low = detect(scene, MotionConfig(sensitivity=0.0)).active_frames
    high = detect(scene, MotionConfig(sensitivity=1.0)).active_frames
    assert high > low


def test_sudden_global_change_reseeds_and_rests() -> None:
    scene = SyntheticScene(1, "quiet", 10)
    config = MotionConfig()
    det = MotionDetector(config, scene.fps)
    for i in range(60):
        assert not det.process(scene.luma(i)).active
    # The camera is bumped: the whole picture shifts by a quarter frame.
    shifted = [np.roll(scene.luma(i), 80, axis=1) for i in range(60, 75)]
    results = [det.process(f) for f in shifted]
    # changes must persist two frames, so the re-seed comes on the first or second shifted frame
    first = next(i for i, r in enumerate(results) if r.global_change)
    assert first <= 1 and det.reseeds == 1
    settle = round(config.settle_time * scene.fps)
    assert all(r.settling for r in results[first : first + settle + 1])
    assert not any(r.active for r in results)


def test_subject_already_present_before_a_global_change_is_still_seen_after() -> None:
    # A person walks through while the IR switch flips: the event must cover the person.
    scene = SyntheticScene(2, "mixed", 60)
    person = scene.ground_truth.motion[0]
    assert person.kind == "person"
    switch = dataclasses.replace(scene.distractors[0], kind="ir_switch", start=person.start + 2.0, end=50.0)
    scene.distractors = [switch]
    result = detect(scene)
    score = score_events(result.events, scene.ground_truth.motion)
    assert score.matched_truth == score.true_events and score.false_events == 0
    covering = [e for e in result.events if e.start <= person.start + 1.0 and e.end >= person.end - 1.0]
    assert covering, (result.events, person)


def _waiting_at_the_door(change: str, strength: float) -> SyntheticScene:
    """A person walks in, waits 20 s without moving (2.5 s after they appear until 22.5 s after), then
    walks on and out of the picture (gone at 33 s); the light changes from 9 to 21 s."""
    scene = SyntheticScene(1, "quiet", 60)
    scene.replan([Subject("person", 3.0, -0.1, 1.1, 0.62, 0.12, pause_at=2.5, pause_for=20.0)],
                 [Distractor(change, 9.0, 21.0, strength)])
    return scene


@pytest.mark.parametrize("strength", [0.8, 1.2])
def test_a_subject_waiting_through_exposure_steps_is_one_event_and_leaves_no_ghost(strength: float) -> None:
    # The exposure steps re-seed the background with the waiting person in it. Before the old
    # background was put back under them, the person vanished until they walked on (a second event)
    # and their outline, now part of the background, held itself open as an object for about 23 s
    # after they had gone.
    scene = _waiting_at_the_door("exposure", strength)
    result = detect(scene)
    assert result.reseeds >= 1
    _presence_covered(result.events, 3.9, 32.1)
    # standing still 20 s teaches the background a little of them (it learns slowly under an object,
    # not never); what was learnt is a ghost once they leave, healed at once (before the healer their
    # place stayed an object until 40.1 s)
    assert result.events[-1].end <= 32.1 + 2.0, result.events


def test_where_a_person_waited_is_no_object_once_they_left() -> None:
    # 20 s without moving teaches the background some of them; when they walk on, that is a ghost
    # (the picture there is the wall again). Before the ghost healer it held the event open until
    # 40.1 s, 8 s after they had gone.
    result = detect(_waiting_at_the_door("cloud", 0.0))
    _presence_covered(result.events, 3.9, 32.1)
    assert result.events[-1].end <= 32.1 + 2.0, result.events


def _parked_car(seconds: float, passers: list[float]) -> SyntheticScene:
    """A car drives in at 5 s and parks (from 7.8 s) for 150 s, then drives off (half of it out of the
    picture at 159 s); people walk past in front of it at the given times."""
    subjects = [Subject("car", 5.0, -0.2, 1.2, 0.86, 0.3, pause_at=2.8, pause_for=150.0)]
    subjects += [Subject("person", t, -0.1, 1.1, 0.7 + 0.04 * (k % 2), 0.15) for k, t in enumerate(passers)]
    scene = SyntheticScene(3, "quiet", seconds)
    scene.replan(subjects, [])
    return scene


def test_a_car_that_parked_and_drives_off_leaves_no_ghost() -> None:
    # The parked car is learnt into the background (an object for about 31 s after it stopped), then
    # it drives off. Where it stood the picture is the road again: before the ghost healer that outline
    # held the departure event open for about 30 s.
    scene = _parked_car(185.0, [])
    result = detect(scene)
    assert len(result.events) == 2, result.events
    arrival, departure = result.events
    assert arrival.end <= 7.8 + 45.0, result.events  # it does not stay an object for good
    gone = scene.ground_truth.motion[0].end  # half of the car out of the picture
    assert departure.start <= gone - 0.5 and departure.end <= gone + 2.0, result.events


def test_people_passing_in_front_of_a_parked_car_are_short_events_of_their_own() -> None:
    # Judged pixel by pixel, a passer-by's flat legs fit the road behind the learnt car; a healer that
    # worked that way learnt the legs, then the car's edge behind them became an object: each passer-by
    # held an event open for about 100 s and two of them merged (review of an earlier candidate). The
    # outline of the legs does not fit the road, so a region with someone in it is never healed.
    passers = [60.0, 100.0, 135.0]
    scene = _parked_car(150.0, passers)
    result = detect(scene)
    truth = scene.ground_truth.motion
    for t in passers:
        person = next(g for g in truth if g.kind == "person" and abs(g.start - t - 0.35) < 1.0)
        during = [e for e in result.events if e.end >= person.start and e.start <= person.end]
        assert len(during) == 1, (person, result.events)
        assert during[0].start >= person.start - 1.0 and during[0].end <= person.end + 2.0, (person, result.events)


def test_a_car_driving_through_an_exposure_step_leaves_no_ghost() -> None:
    # A car crosses fast (it moves about a cell a frame) and the exposure steps as it nears the left
    # edge: the old background is put back under its last object area, but its front had already
    # moved beyond that and was caught in the new background. That ghost must still fade at the
    # normal rate: a first version of the put-back held this event open until 19.7 s (review).
    scene = SyntheticScene(3, "quiet", 30)
    scene.replan([Subject("car", 3.0, 1.17, -0.17, 0.87, -0.45)], [Distractor("exposure", 5.16, 30.0, 1.0)])
    result = detect(scene)
    assert result.reseeds >= 1
    gone = 3.0 + (1.17 - 0.0) / 0.45  # half of the car is out of the picture
    assert len(result.events) == 1 and result.events[0].end <= gone + 3.5, result.events


def test_a_subject_waiting_when_the_camera_is_bumped_is_not_put_back() -> None:
    # The camera is knocked a quarter of the picture sideways while the person waits, and now sees
    # a brighter part of the scene (its exposure jumps at once): the old background fits nowhere
    # any more, and putting it back under the person would make a false object of the shifted wall
    # there for as long as they wait. The new background is kept: the waiting person is part of it
    # until they move (known limit: when they walk on, the place where they waited is an object for
    # as long as it would be after any re-seed; docs/MOTION.md, Honest limits).
    scene = _waiting_at_the_door("cloud", 0.0)
    det = MotionDetector(MotionConfig(), scene.fps)
    bump = round(10 * scene.fps)
    waiting = []
    for i in range(round(25 * scene.fps)):
        luma = scene.luma(i)
        if i >= bump:
            luma = cv2.convertScaleAbs(np.roll(luma, 80, axis=1), alpha=1.3)
        result = det.process(luma)
        if i < bump:
            assert result.active or i < 6 * scene.fps, i  # the waiting person is seen until the bump
        elif i >= bump + 2 * scene.fps:
            waiting.append(result.active)
    assert det.reseeds >= 1
    assert not any(waiting)


def test_cost_is_bounded_by_the_working_size() -> None:
    # Not a timing test: the detector's internal frame never exceeds work_width, whatever the input.
    det = MotionDetector(MotionConfig(work_width=160), 15)
    det.process(np.zeros((480, 640), np.uint8))
    assert det._work == (160, 120)


def test_noise_floor_median_matches_numpy_exactly() -> None:
    """The detector's partition-based median must give np.median's result bit for bit (odd and even sizes)."""
    import cv2

    from edge.motion.detector import _median

    rng = np.random.default_rng(7)
    for shape in [(60, 80), (61, 81), (1, 1), (2, 1), (3, 4)]:
        a = (rng.random(shape) * 40).astype(np.float32)
        b = (rng.random(shape) * 40).astype(np.float32)
        assert _median(cv2.absdiff(a, b).ravel()) == float(np.median(np.abs(a - b)))


def test_scoring_matches_events_to_truth_and_measures_onset_and_start() -> None:
    truth = [Interval("person", 10.0, 14.0), Interval("car", 30.0, 33.0), Interval("cat", 60.0, 61.0)]
    events = [
        DetectedEvent(10.3, 15.0, 0.2, 10.5),  # first moving frame 0.3 s late, confirmed 0.5 s late
        DetectedEvent(28.0, 34.0, 0.1, 28.2),  # already running when the subject arrived: 0 and 0
        DetectedEvent(45.0, 46.0, 0.1, 45.2),  # nothing there: a false event
    ]
    score = score_events(events, truth)
    assert (score.true_events, score.detected, score.matched_truth, score.false_events) == (3, 3, 2, 1)
    assert score.onsets == pytest.approx([0.5, 0.0])
    assert score.starts == pytest.approx([0.3, 0.0])
    assert score.precision == pytest.approx(2 / 3) and score.recall == pytest.approx(2 / 3)
    # the seconds inside the false event only; an event within the tolerance of a subject is not false
    assert false_seconds(events, truth) == pytest.approx(1.0)
    assert false_seconds([DetectedEvent(15.0, 16.0, 0.1, 15.2)], truth) == 0.0
    assert false_seconds([DetectedEvent(15.0, 16.0, 0.1, 15.2)], truth, tolerance=0.5) == pytest.approx(1.0)


class _WindyWall:
    """A 320x240 textured wall with a leafy tree at the top right whose branches (6 x 6 blocks) wander
    in wind (each block displaced by a smooth random walk of up to 7 px, so the leaves stay off the
    positions a background learns, as real foliage does). Draws from the caller's generator, in the
    order the clips below rely on."""

    X0, WIDTH, HEIGHT, BLOCKS = 180, 140, 130, 6

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.wall = cv2.GaussianBlur(rng.normal(128, 30, (240, 320)).astype(np.float32), (0, 0), 1.5)
        self.leaves = cv2.GaussianBlur(rng.normal(0, 60, (280, 360)).astype(np.float32), (0, 0), 1.2)
        self.off = np.zeros((self.BLOCKS, self.BLOCKS, 2))
        self.vel = np.zeros((self.BLOCKS, self.BLOCKS, 2))

    def frame(self, tree: bool = True) -> np.ndarray:
        """The next frame's background (float32): the wall, with the tree moved one step when `tree`."""
        img = self.wall.copy()
        if not tree:
            return img
        self.vel = 0.85 * self.vel + self.rng.normal(0, 0.9, self.vel.shape)
        self.off = np.clip(self.off + self.vel, -7, 7)
        nb, x0, bw, bh = self.BLOCKS, self.X0, self.WIDTH, self.HEIGHT
        for by in range(nb):
            for bx in range(nb):
                ys, xs = by * bh // nb, x0 + bx * bw // nb
                ye, xe = (by + 1) * bh // nb, x0 + (bx + 1) * bw // nb
                dy, dx = (round(v) for v in self.off[by, bx])
                img[ys:ye, xs:xe] = 110 + self.leaves[ys + 20 + dy:ye + 20 + dy, xs + 20 + dx:xe + 20 + dx]
        return img


def _windy_tree_clip(seconds: float, person_at: float, seed: int = 5):
    """320x240 frames at 15 fps: the windy tree of _WindyWall moving from the first frame, and from
    `person_at` a dark figure walking in from the left, below the tree."""
    scene = _WindyWall(np.random.default_rng(seed))
    for i in range(round(seconds * 15)):
        t = i / 15
        img = scene.frame()
        if t >= person_at:
            px = round(-30 + (t - person_at) * 60)
            img[100:200, max(px, 0):max(px + 30, 0)] = 40
        yield t, np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.xfail(strict=True, reason="known limitation (docs/MOTION.md, Honest limits): foliage that never "
                   "settles keeps its cells changed, which the flicker memory does not see; the busy-level "
                   "fix tried (docs/dev/experiments/busy-level.patch) muted people who stay in one place")
def test_a_tree_moving_in_wind_for_a_long_time_is_not_an_event_but_a_person_is() -> None:
    # Its leaves stay changed against any background, frame after frame: the changed fraction of its
    # cells is high and steady, so the flicker memory stays low and the shipped detector makes one
    # event from the end of the warm-up to the end. What a fix must achieve: only the person below it.
    result = analyse(_windy_tree_clip(36.0, 30.0), 15.0, MotionConfig(), REC)
    assert len(result.events) == 1, result.events
    event = result.events[0]
    assert event.start >= 30.0 and event.onset < 30.7, result.events


def _loiter_clip(seconds: float, arrive: float, stay: float, tree: bool, seed: int = 7):
    """320x240 frames at 15 fps of someone who walks in from the left (2 s), then stays in one place
    for `stay` seconds moving the way a person at a door does (body swaying and bending a few px on a
    smooth random walk, arms swinging and reaching), then walks back out (2 s). With `tree`, the leafy
    tree of _WindyWall moves in wind from the first frame and the person stands with head and
    torso in front of its lower branches (legs against the wall)."""
    rng = np.random.default_rng(seed)
    scene = _WindyWall(rng)
    spot = 215 if tree else 140  # where the person stands (left edge of the torso)
    sway = np.zeros(2)  # body offset (x, y) in px, a smooth random walk within +-3 px
    sway_v = np.zeros(2)
    arm = 0.0  # arm reach 0..1 (down .. out and up)
    arm_v = 0.0
    leave_at = arrive + 2.0 + stay
    for i in range(round(seconds * 15)):
        t = i / 15
        img = scene.frame(tree)
        sway_v = 0.8 * sway_v + rng.normal(0, 0.4, 2)
        sway = np.clip(sway + sway_v, -3, 3)
        arm_v = 0.8 * arm_v + rng.normal(0, 0.06)
        arm = float(np.clip(arm + arm_v, 0.0, 1.0))
        if arrive <= t < leave_at + 2.0:
            if t < arrive + 2.0:  # walking in
                px = round(-30 + (spot + 30) * (t - arrive) / 2.0)
                dx, dy, reach = 0, 0, 0.0
            elif t < leave_at:  # in place
                px, dx, dy, reach = spot, round(sway[0]), round(sway[1]), arm
            else:  # walking out the way it came
                px = round(spot - (spot + 30) * (t - leave_at) / 2.0)
                dx, dy, reach = 0, 0, 0.0
            x, top = px + dx, 70 + dy
            img[top:top + 14, max(x + 8, 0):max(x + 22, 0)] = 55  # head
            img[top + 14:top + 60, max(x, 0):max(x + 30, 0)] = 40  # torso
            img[top + 60:top + 110, max(x + 3, 0):max(x + 13, 0)] = 45  # legs
            img[top + 60:top + 110, max(x + 17, 0):max(x + 27, 0)] = 45
            # arms: hang along the torso, or reach out forward (right) and up by `reach`
            ax0, ax1 = max(x + 30, 0), max(x + 30 + round(4 + 16 * reach), 0)
            ay = top + 18 + round(30 * (1 - reach))
            img[ay:ay + 8, ax0:ax1] = 50
            img[top + 16:top + 50, max(x - 6, 0):max(x, 0)] = 50
        yield t, np.clip(img, 0, 255).astype(np.uint8)


def _presence_covered(events: list[DetectedEvent], arrive: float, leave: float) -> None:
    # what the recorder makes one clip of is one event here (the event machine merges gaps shorter
    # than post-roll + merge gap): exactly one event while the person is there, from soon after they
    # appear until they are gone. An event that ends (and a clip that closes) with the person still
    # there is the failure this guards against.
    during = [e for e in events if e.end >= arrive and e.start <= leave]
    assert len(during) == 1, events
    assert during[0].onset <= arrive + 1.5, events
    assert during[0].end >= leave - 1.0, events


@pytest.mark.parametrize("tree", [False, True], ids=["calm", "tree"])
def test_a_person_who_stays_and_moves_in_place_is_one_event_until_they_leave(tree: bool) -> None:
    # A person at the door rummaging in a parcel for 40 s: after walking in they move only a few
    # px at a time, in one place, as a swaying tree does. "Never misses a person at the door": the
    # event must last until they walk away, in a calm scene and in front of a tree in wind. Any
    # defence against foliage that learns "this place is always busy" must not learn it from them
    # (the first busy level tried ended the calm event after 4.8 s). Today the tree case
    # passes partly because the wind itself keeps the event open.
    arrive, stay = 15.0, 40.0
    result = analyse(_loiter_clip(arrive + stay + 8.0, arrive, stay, tree), 15.0, MotionConfig(), REC)
    _presence_covered(result.events, arrive, arrive + 2.0 + stay + 2.0)


WARM_UP_MUTES = pytest.mark.xfail(strict=True, reason="known limitation (docs/MOTION.md, Honest limits: warm-up): a "
                                                       "subject that moves during the 2 s warm-up raises its own bar")


# From 22.5 fps up (jumps measured over two or more frames) what the warm-up learnt is provisional
# (MotionDetector._end_warmup); at 15-20 fps the warm-up is the tuned one, which has this weakness.
@pytest.mark.parametrize("fps", [pytest.param(15, marks=WARM_UP_MUTES), 25, 30])
@pytest.mark.parametrize("seed", [1, 2])
def test_a_subject_moving_during_the_warm_up_is_confirmed_soon_after_it(fps: float, seed: int) -> None:
    # A cat trots right from the first frame and, as the warm-up ends, turns back along its own
    # path. During the warm-up every change counts as flicker, so the cells it crossed raise their
    # bar and (fading over 10 s) mute it on the way back: at 15 fps it is confirmed 2.3-2.9 s after
    # the warm-up, at 25-30 fps 0.2-0.3 s after it.
    scene = SyntheticScene(seed, "quiet", 6.0, fps)
    scene.subjects = [Subject("cat", 0.0, 0.3, 0.9, 0.77, 0.3), Subject("cat", 2.0, 0.9, -0.3, 0.77, -0.3)]
    events = detect(scene).events
    assert len(events) == 1, events
    assert events[0].onset < WARMUP + 0.9, events
    assert events[0].end > 4.6, events  # in view until 5.1 s


BLOCK_POPS = pytest.mark.xfail(strict=True, reason="known limitation (docs/MOTION.md, Honest limits: heavy "
                                                   "compression): blocks a starved encoder updates one at a time "
                                                   "look like motion")


def _still_wall(seconds: float, change, seed: int = 11):
    """320x240 frames at 15 fps of a textured wall with no sensor noise (as a compressed file shows a
    still picture: the same bytes in every frame); `change(t, img, patch)` draws into each frame
    (`patch`: a second texture to draw from)."""
    rng = np.random.default_rng(seed)
    wall = rng.integers(50, 200, (240 // 4, 320 // 4)).astype(np.uint8).repeat(4, 0).repeat(4, 1)
    patch = rng.integers(30, 220, (240, 320)).astype(np.uint8)
    for i in range(round(seconds * 15)):
        img = wall.copy()
        change(i / 15, img, patch)
        yield i / 15, img


@BLOCK_POPS
def test_a_block_updated_once_and_then_the_same_is_no_event() -> None:
    # What a starved encoder does: a 32x32 block of fine structure is replaced at once and then
    # copied bit for bit. It is a lasting change against the background, but nothing moves. (The
    # gate tried for this, docs/dev/experiments/compressed-keeps-changing.patch, passes it; it failed
    # its held-out rule, docs/dev/MOTION-LOG.md.)
    def pop(t: float, img: np.ndarray, patch: np.ndarray) -> None:
        if t >= 5.0:
            img[96:128, 144:176] = patch[96:128, 144:176]

    assert analyse(_still_wall(15.0, pop), 15.0, MotionConfig(), REC).events == []


def test_a_block_that_keeps_changing_is_found_on_the_same_still_picture() -> None:
    # The control for the test above, and a guard for any fix of it: the same block, but sliding 2 px
    # per frame, then standing still for 3 s (one event throughout), then sliding back.
    def slide(t: float, img: np.ndarray, patch: np.ndarray) -> None:
        if t < 5.0 or t >= 12.0:
            return
        x = 100 + round(30 * min(t - 5.0, 2.0)) - round(30 * max(t - 10.0, 0.0))
        img[96:128, x:x + 32] = patch[96:128, 0:32]

    events = analyse(_still_wall(15.0, slide), 15.0, MotionConfig(), REC).events
    assert len(events) == 1, events
    assert 5.0 <= events[0].onset <= 5.5 and events[0].end >= 11.5, events


def test_repeated_frames_do_not_hide_a_walking_subject() -> None:
    # A stalled stream or a 25 -> 30 fps conversion repeats a frame now and then (bit for bit the
    # same picture, as a compressed file's still parts are): one repeat must mute nothing, whatever
    # a fix for block pops will look at.
    scene = SyntheticScene(1, "walk", 20.0, 15)
    frames = [scene.luma(i, 320, 240) for i in range(scene.frame_count)]
    repeated = [(i / 15, frames[i - 1] if i % 5 == 4 else frames[i]) for i in range(len(frames))]
    plain = analyse(((i / 15, f) for i, f in enumerate(frames)), 15.0, MotionConfig(), REC).events
    events = analyse(repeated, 15.0, MotionConfig(), REC).events
    assert len(plain) == len(events) == len(scene.ground_truth.motion) >= 1, (plain, events)
    for a, b in zip(plain, events, strict=True):
        assert abs(a.onset - b.onset) <= 0.2 and abs(a.end - b.end) <= 0.5, (plain, events)


@pytest.mark.parametrize("crf", [23, 30, pytest.param(35, marks=BLOCK_POPS)])
def test_lighting_changes_in_compressed_video_start_no_event(tmp_path: Path, crf: int) -> None:
    # Clouds, lights and headlights through the real file path (H.264 at 320x240, 15 fps). At crf 23
    # and 30 (about 260 and 70 kbit/s) nothing is recorded. At crf 35 (about 30 kbit/s, 0.025 bits per
    # pixel) the encoder leaves blocks untouched until they have drifted far from the picture, then
    # updates them at once: each update is a lasting step in fine structure, and this scene records
    # 10.5-13.1, 25.9-34.7 and 50.1-53.1 s (bench/motion_compressed.py measures more encodings).
    from edge.capture.opencv_source import OpenCVCamera
    from edge.capture.synthetic import write_video

    scene = SyntheticScene(3, "lighting", 60, 15)
    video = write_video(scene, tmp_path / "lighting.mkv", size=(320, 240), crf=crf)
    cam = OpenCVCamera(str(video), main_size=(320, 240), detect_size=(320, 240), fps=15, encode=False,
                       time_origin=0.0)
    try:
        result = analyse(((f.time, f.luma) for f in cam.frames()), 15, MotionConfig(), REC)
    finally:
        cam.close()
    assert result.frames == 900
    assert result.events == [], result.events
