"""A deterministic generated scene with ground truth, for the demo, the tests and the benchmarks.

The scene is a house front with a door, a road, a tree and the sky. Real motion: people walking
(sometimes pausing), cars, cats. Distractors: sensor noise (stronger at night), clouds (slow gain
drift), lights switched on, headlight sweeps, an infrared day/night switch (grey picture plus a
contrast jump), auto-exposure steps, swaying foliage and rain. The `sun` and `sunny` scenarios add
sunshine with cast shadows (the eaves, a post, the door's recess, the tree, the house) and clouds
that pass over the sun: the shadows' sharp edges fade out and back in while the camera's
auto-exposure follows the light.

Everything is a pure function of (seed, scenario, frame index): any frame can be rendered on its
own, in any order, at any size. `luma()` renders the detection Y plane, `bgr()` the main picture.
"""

from __future__ import annotations

import json
import math
import time as _time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from edge.capture.frames import PTS_HZ, CapturedFrame
from edge.errors import ConsentcamError

SCENARIOS = ("mixed", "night", "lighting", "ir", "foliage", "rain", "noise", "quiet", "distractors", "walk",
             "sun", "sunny")
SUN_SCENARIOS = ("sun", "sunny")  # sunshine with cast shadows; "sun" is lighting only
REAL_KINDS = ("person", "car", "cat")
CLOCK_START = 1795456680.0  # 2026-11-23 17:58:00 UTC: the on-screen clock's time at frame 0 of seed 0
MAIN_RENDER_MAX_WIDTH = 640  # the main picture is rendered at most this wide, then scaled up (cheap)

# (B, G, R) colours of the scene parts.
_SKY = (215, 190, 160)
_WALL = (150, 165, 180)
_DOOR = (40, 60, 90)
_GROUND = (80, 120, 95)
_ROAD = (85, 85, 90)
_TREE = (40, 110, 50)
_SUBJECT_COLOURS = {"person": (40, 40, 160), "car": (30, 30, 30), "cat": (225, 225, 230)}
_SUBJECT_SIZE = {"person": (0.06, 0.26), "car": (0.30, 0.13), "cat": (0.09, 0.065)}

# Regions in normalised coordinates (x0, y0, x1, y1).
TREE_BOX = (0.72, 0.0, 1.0, 0.45)
PORCH_BOX = (0.18, 0.25, 0.55, 0.75)
ROAD_Y = (0.80, 0.97)
SKYLIGHT = 0.35  # what a cast shadow keeps of the full sunlight: the sky's share of the light
AE_DELAY, AE_POWER = 0.7, 0.6  # auto-exposure follows the light this many seconds late, making up part of it


class SceneError(ConsentcamError):
    pass


@dataclass(frozen=True)
class Subject:
    kind: str
    t0: float  # appears (may be partly outside the frame)
    x0: float  # centre path, normalised
    x1: float
    y: float
    speed: float  # frame widths per second (signed by direction)
    pause_at: float = -1.0  # seconds after t0 when it stops (negative: never)
    pause_for: float = 0.0

    @property
    def size(self) -> tuple[float, float]:
        return _SUBJECT_SIZE[self.kind]

    @property
    def travel(self) -> float:
        return abs(self.x1 - self.x0) / abs(self.speed)

    @property
    def t1(self) -> float:
        return self.t0 + self.travel + max(self.pause_for, 0.0)

    def x_at(self, t: float) -> float | None:
        """Centre x at time t, or None when the subject is not in the scene."""
        if t < self.t0 or t > self.t1:
            return None
        dt = t - self.t0
        if self.pause_at >= 0:
            if self.pause_at <= dt < self.pause_at + self.pause_for:
                dt = self.pause_at
            elif dt >= self.pause_at + self.pause_for:
                dt -= self.pause_for
        direction = 1.0 if self.x1 >= self.x0 else -1.0
        return self.x0 + direction * abs(self.speed) * dt


@dataclass(frozen=True)
class Distractor:
    kind: str  # cloud, lights_on, headlights, ir_switch, exposure, foliage, rain, sun (a cloud over the sun)
    start: float
    end: float
    strength: float = 1.0


@dataclass(frozen=True)
class Interval:
    kind: str
    start: float
    end: float


@dataclass
class GroundTruth:
    seed: int
    scenario: str
    duration: float
    fps: float
    motion: list[Interval] = field(default_factory=list)  # real motion: must be detected
    distractors: list[Interval] = field(default_factory=list)  # must not be detected
    night: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GroundTruth:
        gt = cls(**{k: v for k, v in data.items() if k not in ("motion", "distractors")})
        gt.motion = [Interval(**m) for m in data.get("motion", [])]
        gt.distractors = [Interval(**d) for d in data.get("distractors", [])]
        return gt


class SyntheticScene:
    """The scene for (seed, scenario, duration, fps). Cheap to create; renders on demand."""

    def __init__(self, seed: int = 1, scenario: str = "mixed", duration: float = 120.0, fps: float = 15.0, *,
                 clock: bool = False) -> None:
        # clock: burn in the date and time at the top left, as most IP cameras and NVRs do (white text
        # with a black outline, the same brightness whatever the scene's light does)
        if scenario not in SCENARIOS:
            raise SceneError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
        if duration <= 0 or fps <= 0:
            raise SceneError(f"duration and fps must be positive, got {duration} s at {fps} fps")
        self.seed, self.scenario, self.duration, self.fps = seed, scenario, float(duration), float(fps)
        self.clock = clock
        rng = np.random.default_rng([seed, SCENARIOS.index(scenario)])
        self.night = scenario in ("night", "noise") or (scenario == "ir")
        self.subjects: list[Subject] = []
        self.distractors: list[Distractor] = []
        self._plan(rng)
        self.frame_count = round(self.duration * self.fps)
        self.ground_truth = self._ground_truth()

    # -- planning -------------------------------------------------------------------------------

    def _plan(self, rng: np.random.Generator) -> None:
        d, s = self.duration, self.scenario
        if s in ("mixed", "night", "sunny"):
            t = float(rng.uniform(3, 8))
            while t < d - 12:
                subject = self._subject(rng, t)
                self.subjects.append(subject)
                # Gaps longer than post_roll + merge_gap (defaults 5 + 4 s): each subject is one event.
                t = subject.t1 + float(rng.uniform(13, 25))
        if s == "walk":
            # Plain and predictable (tests, demos): a person crosses every 25 s, nothing else happens.
            t = 3.0
            while t < d - 3:
                self.subjects.append(Subject("person", t, -0.05, 1.05, 0.62, 0.12))
                t += 25.0
        if s == "mixed":
            self._scatter(rng, ["cloud", "exposure", "lights_on", "headlights", "foliage", "rain", "ir_switch"], 0.6)
        elif s == "night":
            self._scatter(rng, ["headlights", "lights_on", "exposure", "rain"], 1.0)
        elif s in ("lighting", "distractors"):
            kinds = ["cloud", "lights_on", "headlights", "exposure", "ir_switch"]
            if s == "distractors":
                kinds += ["foliage", "rain"]
            self._scatter(rng, kinds, 1.0, every=8.0)
        elif s == "ir":
            # Day/night switches back and forth.
            t = 5.0
            while t < d - 5:
                length = float(rng.uniform(8, 15))
                self.distractors.append(Distractor("ir_switch", t, min(t + length, d)))
                t += length + float(rng.uniform(8, 15))
        elif s == "foliage":
            self.distractors.append(Distractor("foliage", 0.0, d, float(rng.uniform(1.5, 2.0))))
        elif s == "rain":
            self.distractors.append(Distractor("rain", 0.0, d, float(rng.uniform(1.0, 1.5))))
        elif s in SUN_SCENARIOS:
            # Clouds pass over the sun one after another: covered for 4-20 s, clear for 4-15 s.
            t = float(rng.uniform(2, 8))
            while t < d - 4:
                length = float(rng.uniform(4, 20))
                self.distractors.append(Distractor("sun", t, min(t + length, d), float(rng.uniform(0.6, 1.2))))
                t += length + float(rng.uniform(4, 15))

    def _subject(self, rng: np.random.Generator, t: float) -> Subject:
        kind = str(rng.choice(REAL_KINDS, p=[0.5, 0.25, 0.25]))
        w = _SUBJECT_SIZE[kind][0]
        direction = 1.0 if rng.random() < 0.5 else -1.0
        if kind == "person":
            speed, y = float(rng.uniform(0.08, 0.2)), float(rng.uniform(0.55, 0.68))
        elif kind == "car":
            speed, y = float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.84, 0.9))
        else:
            speed, y = float(rng.uniform(0.1, 0.25)), float(rng.uniform(0.74, 0.8))
        x0, x1 = -w / 2 - 0.02, 1 + w / 2 + 0.02
        if kind == "person" and rng.random() < 0.35:
            x0 = 0.36  # comes out of the door instead of walking in from the side
        if direction < 0:
            x0, x1 = 1 - x0, 1 - x1
        pause_at, pause_for = -1.0, 0.0
        if kind == "person" and rng.random() < 0.4:
            pause_at, pause_for = float(rng.uniform(0.5, 2.0)), float(rng.uniform(1.5, 4.0))
        return Subject(kind, t, x0, x1, y, speed * direction, pause_at, pause_for)

    def _scatter(self, rng: np.random.Generator, kinds: list[str], density: float, every: float = 25.0) -> None:
        """Distractors at random times; `every` seconds on average per kind (scaled by density)."""
        d = self.duration
        for kind in kinds:
            n = max(1, int(rng.poisson(density * d / every / len(kinds) * 3)))
            if kind == "ir_switch":
                n = min(n, 1)
            for _ in range(n):
                length = {"cloud": (8, 20), "lights_on": (5, 20), "headlights": (1.5, 3.0), "exposure": (2, 6),
                          "ir_switch": (10, 30), "foliage": (8, 25), "rain": (10, 30)}[kind]
                span = float(rng.uniform(*length))
                start = float(rng.uniform(0, max(d - span, 1.0)))
                self.distractors.append(Distractor(kind, start, min(start + span, d), float(rng.uniform(0.8, 1.2))))
        self.distractors.sort(key=lambda x: x.start)

    def replan(self, subjects: list[Subject], distractors: list[Distractor]) -> None:
        """Replace what the seed planned with these subjects and distractors (a scene built for one
        test or benchmark), and the ground truth with them."""
        self.subjects, self.distractors = list(subjects), list(distractors)
        self.ground_truth = self._ground_truth()

    def _ground_truth(self) -> GroundTruth:
        gt = GroundTruth(self.seed, self.scenario, self.duration, self.fps, night=self.night)
        for s in self.subjects:
            span = in_view(s, self.duration, self.fps)
            if span is not None:
                gt.motion.append(Interval(s.kind, round(span[0], 3), round(span[1], 3)))
        gt.distractors = [Interval(d.kind, round(d.start, 3), round(d.end, 3)) for d in self.distractors]
        return gt

    # -- rendering ------------------------------------------------------------------------------

    def _active(self, kind: str, t: float) -> list[Distractor]:
        return [d for d in self.distractors if d.kind == kind and d.start <= t < d.end]

    def _night_at(self, t: float) -> bool:
        """Dark and colour (night without IR). In IR mode the camera's illuminator lights the scene."""
        return self.night and not self._active("ir_switch", t)

    def luma(self, index: int, width: int = 320, height: int = 240) -> np.ndarray:
        """Detection Y plane (uint8 HxW) of frame `index`."""
        img = self._render(index, width, height, channels=1)
        if self.clock:
            self._draw_clock(img, index)
        return img[:, :, 0]

    def bgr(self, index: int, width: int = 1280, height: int = 720) -> np.ndarray:
        """Main picture (uint8 HxWx3), rendered at most MAIN_RENDER_MAX_WIDTH wide and scaled up."""
        rw = min(width, MAIN_RENDER_MAX_WIDTH)
        rh = max(2, round(height * rw / width))
        img = self._render(index, rw, rh, channels=3)
        if (rw, rh) != (width, height):
            img = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
        if self.clock:
            self._draw_clock(img, index)
        return img

    def _draw_clock(self, img: np.ndarray, index: int) -> None:
        """The camera's on-screen clock, drawn at the output size (a camera draws it sharp): text about
        4 % of the picture high. The seed sets the time of day, so seconds turn over part-way through
        a scene's frames."""
        h, w = img.shape[:2]
        when = CLOCK_START + 37.37 * self.seed + index / self.fps
        text = _time.strftime("%Y-%m-%d %H:%M:%S", _time.gmtime(when))
        scale = 0.45 * h / 240
        # the text as a mask, and a black outline one or two pixels round it (drawn by growing the mask:
        # OpenCV's text thickness is not the same from one version to the next)
        mask = np.zeros((h, w), np.uint8)
        cv2.putText(mask, text, (round(0.02 * w), round(0.03 * h + 22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    255, 1, cv2.LINE_AA)
        grow = 2 * max(1, round(scale)) + 1
        img[cv2.dilate(mask, np.ones((grow, grow), np.uint8)) > 0] = 0
        alpha = mask.astype(np.float32)[:, :, None] / 255.0
        np.copyto(img, (img * (1.0 - alpha) + 255.0 * alpha).astype(np.uint8), where=mask[:, :, None] > 0)

    def _render(self, index: int, w: int, h: int, channels: int) -> np.ndarray:
        t = index / self.fps
        img = _background(self.seed, w, h, channels).copy()
        self._foliage(img, t, w, h)
        for s in self.subjects:
            self._draw_subject(img, s, t, w, h, channels)
        night = self._night_at(t)
        ir = bool(self._active("ir_switch", t))
        gain, offset = self._illumination(t, w, h, night, ir)
        if self.scenario in SUN_SCENARIOS and not night and not ir:
            gain = gain * self._sunlight(t, w, h)[:, :, None]
        # In place from here on (same float32 arithmetic, same pixels): each whole-picture temporary is
        # 3.7 MB at 640x480 colour, and the daemon on this camera renders two pictures a frame.
        img *= gain
        img += offset
        if ir:
            # Infrared: no colour, harder contrast, brighter (IR illuminator).
            if channels == 3:
                grey = img @ np.array([0.114, 0.587, 0.299], np.float32)
                img = np.repeat(grey[:, :, None], 3, axis=2)
            img -= 90.0
            img *= 1.35
            img += 110.0
        self._rain(img, index, t, w, h)
        sigma = 5.0 if night else (3.5 if ir else 1.8)
        img += np.multiply(_noise_tile(self.seed, index, w, h, channels), sigma, dtype=np.float32)
        return np.clip(img, 0, 255, out=img).astype(np.uint8)

    def _illumination(self, t: float, w: int, h: int, night: bool,
                      ir: bool = False) -> tuple[np.ndarray | float, np.ndarray | float]:
        g = 0.35 if night else (0.75 if ir else 1.0)
        for d in self._active("cloud", t) if not ir else ():  # the IR illuminator does not care about clouds
            phase = (t - d.start) / (d.end - d.start)
            g *= 1.0 - 0.45 * d.strength * math.sin(math.pi * phase)  # smooth dim and recover
        for d in self._active("exposure", t)[:1]:  # one auto-exposure loop: one excursion at a time
            # Auto-exposure: a sudden step, then it converges back in a few discrete steps.
            steps = 4
            k = min(steps, int((t - d.start) / max((d.end - d.start) / steps, 1e-3)))
            up = 1.0 + 0.35 * d.strength if int(d.start * 10) % 2 else 1.0 - 0.3 * d.strength
            g *= 1.0 + (up - 1.0) * (1 - k / steps)
        gain: np.ndarray | float = g
        offset: np.ndarray | float = 0.0
        # Artificial lights matter at night; in daylight they barely show.
        lamp = 1.0 if night or ir else 0.3
        lights = self._active("lights_on", t)
        if lights:
            gain = g * (1.0 + 1.5 * lamp * lights[0].strength * porch_light(w, h))
        heads = self._active("headlights", t)
        if heads:
            d = heads[0]
            phase = (t - d.start) / (d.end - d.start)
            offset = 70.0 * lamp * d.strength * _sweep(w, h, phase)
        if isinstance(gain, np.ndarray):
            gain = gain[:, :, None]
        if isinstance(offset, np.ndarray):
            offset = offset[:, :, None]
        return gain, offset

    def _sun(self, t: float) -> float:
        """How much of the direct sunlight gets through (1: clear, 0: a thick cloud over the sun). A
        cloud's edge takes 0.5-3 s to cross the sun (smoothstep); a thin one (strength < 1) lets
        some through."""
        cover = 0.0
        for d in self._active("sun", t):
            ramp = sun_ramp(d.start)
            edge = min(1.0, (t - d.start) / ramp, (d.end - t) / ramp)
            cover = max(cover, min(1.0, d.strength) * edge * edge * (3.0 - 2.0 * edge))
        return 1.0 - cover

    def _sunlight(self, t: float, w: int, h: int) -> np.ndarray:
        """Per pixel gain of the sunny scenes: skylight everywhere plus the sun outside the cast
        shadows, times the camera's auto-exposure, which follows the mean light AE_DELAY s late and
        makes up part of the loss. 1 in full sun outside a shadow."""
        shadow = _cast_shadows(self.seed, w, h)
        sun = self._sun(t)
        light = SKYLIGHT + (1.0 - SKYLIGHT) * sun * (1.0 - shadow)
        lit = 1.0 - float(shadow.mean())
        mean_then = SKYLIGHT + (1.0 - SKYLIGHT) * self._sun(max(0.0, t - AE_DELAY)) * lit
        mean_full = SKYLIGHT + (1.0 - SKYLIGHT) * lit
        return light * np.float32((mean_full / mean_then) ** AE_POWER)

    def _foliage(self, img: np.ndarray, t: float, w: int, h: int) -> None:
        winds = self._active("foliage", t)
        if not winds:
            return
        # Gusts build up over a few seconds (a scene that starts windy is windy from frame 0);
        # overlapping windy spells: the strongest wins (no sudden jumps).
        amp = 0.012 * w * max(d.strength * (1.0 if d.start <= 0 else min(1.0, (t - d.start) / 3.0))
                              for d in winds)
        x0, y0, x1, y1 = (round(TREE_BOX[0] * w), 0, w, round(TREE_BOX[3] * h))
        patch = img[y0:y1, x0:x1]
        bands = 6
        edges = np.linspace(0, y1 - y0, bands + 1).astype(int)
        for b in range(bands):
            shift = round(amp * (0.5 + b / bands) * math.sin(2 * math.pi * 0.9 * t + b * 1.3))
            patch[edges[b]:edges[b + 1]] = np.roll(patch[edges[b]:edges[b + 1]], shift, axis=1)

    def _draw_subject(self, img: np.ndarray, s: Subject, t: float, w: int, h: int, channels: int) -> None:
        x = s.x_at(t)
        if x is None:
            return
        sw, sh = s.size
        colour = _colour(_SUBJECT_COLOURS[s.kind], channels)
        cx, cy = x * w, s.y * h
        bw, bh = sw * w, sh * h
        x0, y0, x1, y1 = int(cx - bw / 2), int(cy - bh / 2), int(cx + bw / 2), int(cy + bh / 2)
        if s.kind == "person":
            draw_person(img, cx, cy, bw, bh, channels)
        elif s.kind == "car":
            cv2.rectangle(img, (x0, y0 + int(bh * 0.35)), (x1, y1), colour, -1)
            cv2.rectangle(img, (x0 + int(bw * 0.2), y0), (x1 - int(bw * 0.2), y0 + int(bh * 0.4)), colour, -1)
            cv2.rectangle(img, (x0 + int(bw * 0.25), y0 + 2), (x1 - int(bw * 0.25), y0 + int(bh * 0.35)),
                          _colour((200, 190, 170), channels), -1)
        else:
            cv2.ellipse(img, (int(cx), int(cy)), (max(1, int(bw / 2)), max(1, int(bh / 2))), 0, 0, 360, colour, -1)

    def _rain(self, img: np.ndarray, index: int, t: float, w: int, h: int) -> None:
        rains = self._active("rain", t)
        if not rains:
            return
        rng = np.random.default_rng([self.seed, index, 7])
        n = int(0.004 * w * h * rains[0].strength)
        xs = rng.integers(0, w, n)
        ys = rng.integers(0, h, n)
        length = max(2, h // 40)
        for k in range(length):
            img[np.clip(ys + k, 0, h - 1), np.clip(xs + k // 3, 0, w - 1)] += 45.0

    # -- frames and files ---------------------------------------------------------------------------

    def write_ground_truth(self, path: Path) -> None:
        path.write_text(json.dumps(self.ground_truth.to_dict(), indent=2) + "\n")


def in_view(s: Subject, duration: float, fps: float) -> tuple[float, float] | None:
    """The first and last frame time (seconds) at which at least half of the subject is inside the
    frame: the ground truth's rule for a subject's presence. None if it never is."""
    times = np.arange(max(0.0, s.t0), min(duration, s.t1) + 1e-9, 1.0 / fps)
    inside = [float(t) for t in times if _visible_fraction(s, float(t)) >= 0.5]
    return (inside[0], inside[-1]) if inside else None


def _visible_fraction(s: Subject, t: float) -> float:
    x = s.x_at(t)
    if x is None:
        return 0.0
    w = s.size[0]
    return max(0.0, min(x + w / 2, 1.0) - max(x - w / 2, 0.0)) / w


def draw_person(img: np.ndarray, cx: float, cy: float, bw: float, bh: float, channels: int) -> None:
    """A person as the scenes draw one: a face over a coat over trousers, `bw` x `bh` pixels centred on
    (cx, cy), into a float picture of `channels` channels (before the light is applied)."""
    x0, y0, x1, y1 = int(cx - bw / 2), int(cy - bh / 2), int(cx + bw / 2), int(cy + bh / 2)
    head = max(2, int(bw * 0.45))
    cv2.circle(img, (int(cx), y0 + head), head, _colour((120, 150, 200), channels), -1)
    cv2.rectangle(img, (x0, y0 + 2 * head), (x1, y1), _colour(_SUBJECT_COLOURS["person"], channels), -1)
    cv2.rectangle(img, (x0, y0 + int(bh * 0.55)), (x1, y1), _colour((90, 60, 40), channels), -1)


def sun_ramp(start: float) -> float:
    """Seconds a `sun` distractor's edge takes to cross the sun, going in and coming out: 0.5-3 s, fixed
    by when the cloud starts (so a scene that wants the sun back at a given time can end it so)."""
    return 0.5 + 2.5 * ((start * 7.919) % 1.0)


def _colour(bgr: tuple[int, int, int], channels: int) -> tuple[float, ...]:
    if channels == 3:
        return tuple(float(c) for c in bgr)
    return (0.114 * bgr[0] + 0.587 * bgr[1] + 0.299 * bgr[2],)


@lru_cache(maxsize=16)
def _background(seed: int, w: int, h: int, channels: int) -> np.ndarray:
    """The static scene (float32 HxWxC), textured so that local-contrast methods have something to see."""
    img = np.zeros((h, w, 3), np.float32)
    img[:] = _GROUND

    def box(b: tuple[float, float, float, float], colour: tuple[int, int, int]) -> None:
        img[int(b[1] * h):int(b[3] * h), int(b[0] * w):int(b[2] * w)] = colour

    box((0, 0, 1, 0.3), _SKY)
    box((0.1, 0.15, 0.7, 0.72), _WALL)
    box((0.32, 0.38, 0.42, 0.72), _DOOR)
    box((0.15, 0.3, 0.27, 0.45), (60, 50, 40))
    box((0.5, 0.3, 0.62, 0.45), (60, 50, 40))
    box((0, ROAD_Y[0], 1, ROAD_Y[1]), _ROAD)
    box(TREE_BOX, _TREE)
    rng = np.random.default_rng([seed, 99])
    # Fine texture everywhere (brick, grass, asphalt), strong in the tree's leaves.
    tex = rng.normal(0, 1, (max(2, h // 2), max(2, w // 2))).astype(np.float32)
    tex = cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR) * 9.0
    leaves = rng.normal(0, 1, (h, w)).astype(np.float32) * 40.0
    tree = np.zeros((h, w), np.float32)
    tree[int(TREE_BOX[1] * h):int(TREE_BOX[3] * h), int(TREE_BOX[0] * w):] = 1.0
    img += (tex + leaves * tree)[:, :, None]
    if channels == 1:
        img = (img @ np.array([0.114, 0.587, 0.299], np.float32))[:, :, None]
    return np.clip(img, 0, 255).astype(np.float32)


@lru_cache(maxsize=8)
def _cast_shadows(seed: int, w: int, h: int) -> np.ndarray:
    """Where the sun casts shadows (float32 HxW, 1 = in full shadow) with the sun high on the left:
    under the eaves, a lamp post's shadow across the wall and ground, the door's recess, the house's
    shadow on the grass, and the tree's dappled shadow on the grass and road. The penumbra is about
    a pixel at 320 px wide: sunlit shadows are sharp."""
    mask = np.zeros((h, w), np.uint8)

    def poly(points: list[tuple[float, float]]) -> None:
        cv2.fillPoly(mask, [np.array([(round(x * w), round(y * h)) for x, y in points], np.int32)], 255)

    poly([(0.1, 0.15), (0.7, 0.15), (0.7, 0.24), (0.1, 0.20)])  # eaves: deeper to the right
    poly([(0.035, 0.97), (0.05, 0.97), (0.46, 0.30), (0.445, 0.30)])  # a lamp post's shadow
    poly([(0.32, 0.38), (0.335, 0.38), (0.335, 0.72), (0.32, 0.72)])  # the door's recess
    poly([(0.7, 0.72), (0.78, 0.72), (0.88, 0.80), (0.7, 0.80)])  # the house on the grass
    rng = np.random.default_rng([seed, 17])
    blotch = cv2.resize(rng.normal(0, 1, (12, 16)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    crown = ((xx / w - 0.84) / 0.16) ** 2 + ((yy / h - 0.86) / 0.08) ** 2 < 1.0
    mask[crown & (blotch > -0.3)] = 255  # the tree's shadow, with sunlit holes between the leaves
    shadow = mask.astype(np.float32) / 255.0
    sigma = max(0.5, 0.003 * w)
    return cv2.GaussianBlur(shadow, (0, 0), sigma)


NOISE_TILES = 2  # pre-drawn noise fields; a per-frame random shift keeps them from repeating visibly


@lru_cache(maxsize=8)
def _noise_tiles(seed: int, w: int, h: int, channels: int) -> np.ndarray:
    # Small on purpose: eight float32 tiles were ~30 MB at 640x480 colour, a fifth of the daemon's
    # RSS on the synthetic camera. float16 is plenty of precision for sensor noise.
    rng = np.random.default_rng([seed, w, h, channels, 3])
    return rng.normal(0, 1, (NOISE_TILES, h, w, channels)).astype(np.float16)


def _noise_tile(seed: int, index: int, w: int, h: int, channels: int) -> np.ndarray:
    # Pre-drawn tiles, shifted per frame: cheap, deterministic, no visible repetition.
    tiles = _noise_tiles(seed, w, h, channels)
    k = (index * 2654435761 + seed) & 0xFFFFFFFF
    tile = tiles[k % NOISE_TILES]
    return np.roll(tile, ((k >> 3) % h, (k >> 11) % w), axis=(0, 1))


@lru_cache(maxsize=8)
def porch_light(w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = (PORCH_BOX[0] + PORCH_BOX[2]) / 2 * w, (PORCH_BOX[1] + PORCH_BOX[3]) / 2 * h
    rx, ry = (PORCH_BOX[2] - PORCH_BOX[0]) / 2 * w, (PORCH_BOX[3] - PORCH_BOX[1]) / 2 * h
    return np.exp(-(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)).astype(np.float32)


def _sweep(w: int, h: int, phase: float) -> np.ndarray:
    """A broad soft bright patch crossing the frame left to right (a car's headlights at night)."""
    cx = (-0.3 + 1.6 * phase) * w
    xs = np.exp(-(((np.arange(w, dtype=np.float32) - cx) / (0.22 * w)) ** 2))
    ys = np.exp(-(((np.arange(h, dtype=np.float32) - 0.65 * h) / (0.35 * h)) ** 2))
    return np.outer(ys, xs).astype(np.float32)


class SyntheticCamera:
    """The synthetic scene as a frame source, with packets from the software encoder."""

    name = "synthetic"

    def __init__(self, scene: SyntheticScene, *, main_size: tuple[int, int] = (1280, 720),
                 detect_size: tuple[int, int] = (320, 240), bitrate: int = 2_000_000,
                 keyframe_interval: float = 1.0, privacy_mask: np.ndarray | None = None,
                 realtime: bool = False, start_time: float | None = None, loop: bool = False,
                 max_frames: int | None = None) -> None:
        from edge.capture.encoder import H264Encoder

        self.scene = scene
        self.fps = scene.fps
        self.main_size, self.detect_size = main_size, detect_size
        self.realtime, self.loop, self.max_frames = realtime, loop, max_frames
        self.start_time = start_time
        self._encoder = H264Encoder(main_size[0], main_size[1], scene.fps, bitrate=bitrate,
                                    keyframe_interval=keyframe_interval, privacy_mask=privacy_mask)
        self._closed = False

    def frames(self) -> Iterator[CapturedFrame]:
        start = self.start_time if self.start_time is not None else _time.time()
        mono0 = _time.monotonic()
        n = 0
        while not self._closed and (self.max_frames is None or n < self.max_frames):
            i = n % self.scene.frame_count if self.loop else n
            if not self.loop and n >= self.scene.frame_count:
                break
            t = n / self.fps
            if self.realtime:
                delay = mono0 + t - _time.monotonic()
                if delay > 0:
                    _time.sleep(delay)
            wall = start + t
            packets = self._encoder.encode(self.scene.bgr(i, *self.main_size), wall,
                                           pts=round(n * PTS_HZ / self.fps))
            yield CapturedFrame(time=wall, luma=self.scene.luma(i, *self.detect_size), packets=packets, index=n,
                                monotonic=mono0 + t if self.realtime else None)
            n += 1

    def close(self) -> None:
        self._closed = True


def write_video(scene: SyntheticScene, out: Path, *, size: tuple[int, int] = (640, 480), crf: int = 23,
                options: dict[str, str] | None = None, progress=None) -> Path:  # type: ignore[no-untyped-def]
    """Write the scene to a video file (H.264 in MP4/MKV/TS by extension) plus `<out>.json` ground truth.
    `options` are libx264's own (preset, crf, g, ...) in place of the default ultrafast at `crf`."""
    import av

    out = Path(out)
    if out.suffix.lower() not in (".mp4", ".mkv", ".ts", ".avi", ".mov"):
        raise SceneError(f"{out}: choose a video file name ending in .mp4, .mkv, .ts, .avi or .mov")
    w, h = size[0] - size[0] % 2, size[1] - size[1] % 2
    import fractions

    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=fractions.Fraction(round(scene.fps * 1000), 1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = options if options is not None else {"preset": "ultrafast", "crf": str(crf)}
        for i in range(scene.frame_count):
            frame = av.VideoFrame.from_ndarray(scene.bgr(i, w, h), format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
            if progress is not None:
                progress(i + 1, scene.frame_count)
        for packet in stream.encode(None):
            container.mux(packet)
    scene.write_ground_truth(ground_truth_path(out))
    return out


def ground_truth_path(video: Path) -> Path:
    return Path(str(video) + ".json")
