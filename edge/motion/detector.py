"""Motion detection on the small greyscale (Y) frame, robust to what fools frame differencing.

Per frame, all in float32 numpy/cv2 on a small working copy (default 160 px wide):

0. A camera's burnt-in clock, once found (it holds still while the light round it changes), is
   filled in from the picture round it (edge/motion/overlay.py): its fixed brightness would otherwise
   change the structure round it whenever the light changes.
1. Structure, not brightness. A band-pass (difference of two box blurs) removes the brightness
   level and any smooth illumination gradient (clouds, a porch light, a headlight sweep, the IR
   offset); dividing by the local band-pass energy plus a noise floor removes the gain (exposure
   steps, the IR contrast jump). What is left, Z, describes edges and texture, which only
   change when something in the scene moves.
2. Noise-adaptive. The noise floor follows a robust global estimate of the noise (median absolute
   change over 1/15 s), so night noise does not turn flat areas into random structure.
3. Change against a background. D = |Z - Zbg|, Zbg a running average that learns slowly where
   things move and faster elsewhere; a pixel changed when D exceeds the sensitivity threshold.
4. Cells, not pixels. Changed pixels are counted per cell (4x4 working pixels). A cell is
   active when its changed fraction beats a threshold raised by that cell's flicker memory
   (how much its changed fraction keeps jumping up and down over 1/15 s: swaying leaves, rain, water).
   Rain streaks and noise never fill a cell; foliage keeps toggling and raises its own bar.
5. Objects. Zones/ignore masks (rasterised once) clear cells; connected active cells form
   objects; objects smaller than min_area are dropped. score = moving area / watched area.
6. Sudden global change (IR switch, exposure jump, lights, camera bumped): when more than
   half of the watched cells change at once, the background is re-seeded and detection rests
   for settle_time. A subject that keeps moving shows up again right after; one that waits through
   it is not learnt: if the old background still fits the rest of the picture once the rest is over
   (a change of brightness only), it is put back under the objects reported when the change came.
7. Things that travel confirm sooner. Rain at night lifts every cell's flicker memory, so a dark,
   slow subject can stay under the bar for seconds. A second, looser test takes the scene-wide
   (median) flicker off the bar and joins the active cells of this frame and the one 1/15 s back, and
   its pixels need only be changed now and within one pixel of a pixel changed in the last frame (the
   first test keeps "the same pixel in two frames"); what it finds only counts as an object when it
   travels: its centroid, followed back over 0.4 s in steps of 1/15 s, moved at least a cell and
   mostly in one direction (net movement at least 0.75 x the path). A walking subject's region
   translates (leading edge gains cells, trailing edge loses them); a gust in a tree, rain or noise
   changes cells that stay in place and jitter back and forth, whatever part of the picture they fill.
8. Ghosts are healed. What stood still long enough was learnt (a parked car, a little of a waiting
   person); when it leaves, its outline would hold the event open until learnt in turn. An old
   background (the background in cells free of objects for 10 minutes) remembers what was there
   before: a changed region that fits it, judged over the whole region so that a real subject in
   front of something learnt is never taken for one, is copied back from it at once.
9. Cast shadows (only with motion.cast_shadows, off by default). In sunshine a cloud fades the sharp
   edges of cast shadows out and back in: new structure that stays, which the steps above take for an
   arrival. With the option, while the light changes, each cell's path over the last second is judged
   against the light's two strongest paths (light_fit.py): cells the light explains are not objects
   and are learnt within a second; and a mark the light left behind is healed once it shows the scene
   as it looked under a light seen before (looks.py). It costs more while the light changes.

Frame rate: the constants were tuned at 15 fps. Whatever compares a frame with "the last one" for a
rate or a jump (toggle memory, flicker memory, noise floor, brightness jump, the travel test's join
and history) uses the frame round(fps / 15) back, and per-frame rates and periods scale by 15 / fps,
so 25 and 30 fps cameras are judged like 15 fps ones; at 15 fps every factor is the tuned value.
Pixel persistence ("changed in two consecutive frames") stays per frame: noise and rain drops are
new in every frame, so two frames are two independent samples at any rate. Where jumps span two
frames or more (from 22.5 fps up), what the warm-up learnt is provisional (_end_warmup): measured
over 1/15 s, a subject that moves during the warm-up raises its own bar as much as at 15 fps, where
the frame-counting detector at 25-30 fps had let it through. Below that the warm-up is the tuned one.
Below 10 fps one frame spans several 1/15 s steps and a subject fills a cell in one jump: jumps count
(fps / 10)^0.7 of themselves there, so a subject does not raise its own flicker bar (LOW_FPS).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.capture.masks import rasterise
from edge.config import MotionConfig
from edge.motion.arrays import cell_fraction, cell_pixels
from edge.motion.arrays import median_in_place as _median
from edge.motion.light_fit import CLEAN, LightFit
from edge.motion.looks import Looks
from edge.motion.overlay import OverlayFinder

log = logging.getLogger("consentcam.motion")

CELL = 4  # working pixels per cell side
TUNED_FPS = 15.0  # the frame rate every constant below was tuned at
GLOBAL_CHANGE = 0.35  # fraction of watched cells changed (even thinly) that means "the whole picture changed"
WIDE_CELL = 0.1  # a cell counts towards a global change when this fraction of it changed
TOGGLE_RATE, TOGGLE_LIMIT = 0.25, 0.5  # per-pixel toggle memory: update rate (per 1/15 s), level that mutes a pixel
CLIP_HIGH = 250  # luma at or above this is treated as saturated
LEVEL_JUMP = 0.12  # or the mean brightness jumps by this fraction within 1/15 s
RECOVER = 4.0  # seconds after a re-seed during which moving areas learn at the normal rate
WARMUP = 2.0  # seconds of learning after start (or a change of frame size) before detecting
WARMUP_GROWTH = 2.0  # a cell's flicker at the end of WARMUP is at most this times what it had learnt by half-way
PROVISIONAL, PROVISIONAL_FADE = 1.5, 2.0  # for 1.5 s after WARMUP the flicker memory fades with a 2 s time constant
COMMON_FLICKER = 0.75  # share of the scene-wide (median) flicker the travel test takes off every cell's bar
COMMON_EVERY = 8  # frames at 15 fps (0.53 s) between updates of that median (it moves slowly; keeps the cost flat)
# Below LOW_FPS a cell's jump spans several 1/15 s steps: a subject arriving fills it in one frame and
# raised its own bar for seconds (5 fps: 16 of 72 subjects found). The jump counts (fps / LOW_FPS)^POWER
# of itself there (0.62 at 5 fps); at LOW_FPS and above nothing changes (docs/dev/MOTION-LOG.md, "Low frame rates").
LOW_FPS, LOW_FPS_POWER = 10.0, 0.7
TRAVEL_TIME = 0.47  # seconds of history over which a candidate must travel (7 frames at 15 fps)
TRAVEL_CELLS = 1.0  # how far (cells) its centroid must move over that time
TRAVEL_STRAIGHT = 0.75  # net displacement / path length of the centroid: walking, not jittering
TRAVEL_MARGIN = 2  # cells around a candidate in which its earlier positions are looked for
HELD_FIT = 0.05  # share of watched cells that may misfit the old background for it to be put back under objects
# Ghosts: where the background learnt something that has since gone (a car that parked, a person who
# waited), the picture looks like the background from before it came. That "old background" follows the
# background only in cells free of objects for OLD_AFTER seconds (updated every OLD_EVERY frames at
# 15 fps). A changed region where the two backgrounds differ (by more than STALE x the pixel threshold)
# is a ghost when, over the whole region, at most GHOST_MISFIT of its changed pixels misfit the old one.
# (STALE 2: a tree's drifting average stays under it, so a windy scene does not search on every frame.)
OLD_AFTER, OLD_EVERY, STALE, GHOST_MISFIT = 600.0, 8, 2.0, 0.1
HEAL_EVERY = 4  # frames at 15 fps between looks for ghosts (0.27 s: a ghost only ever follows a running event)
LIGHT_LEARN = 1.0  # seconds: the time constant at which cells that only changed as the light did are learnt
# a cell holds still when its changed fraction moved less than STILL_JUMP over 1/15 s for STILL_FRAMES frames
# (a leaf's cell jumps more often than that; a mark left behind by a change of light does not)
STILL_JUMP, STILL_FRAMES = 0.05, 5
RAINY = 0.02  # median flicker from which the travel test runs (clear: about 0.01-0.015; rain, night noise: 0.05)


def _band_pass(small: np.ndarray) -> np.ndarray:
    """3x3 box blur minus 9x9 box blur, float32. For uint8 input the box sums are taken straight
    from the bytes (OpenCV sums float input in float64 as well, and sums of integers are exact), so
    the values equal those of blurring small.astype(np.float32), without that conversion."""
    if small.dtype != np.uint8:
        img = small.astype(np.float32)
        return cv2.blur(img, (3, 3)) - cv2.blur(img, (9, 9))
    fine = cv2.boxFilter(small, cv2.CV_64F, (3, 3)).astype(np.float32)
    return np.subtract(fine, cv2.boxFilter(small, cv2.CV_64F, (9, 9)).astype(np.float32), out=fine)


def _mean_level(sub: np.ndarray) -> float:
    """sub.mean(), for uint8 from an exact integer sum (numpy's float64 sum of bytes is exact too,
    so the quotient is the same) without numpy's per-element conversion to float64."""
    if sub.dtype != np.uint8:
        return float(sub.mean())
    return int(sub.sum(dtype=np.int64)) / sub.size


@dataclass
class MotionResult:
    score: float  # moving area as a fraction of the watched area (0..1)
    active: bool  # at least one object of at least min_area
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)  # x, y, w, h normalised
    settling: bool = False  # background re-seeded after a global change; detection resting
    global_change: bool = False  # this frame triggered a re-seed


class MotionDetector:
    def __init__(self, config: MotionConfig, fps: float, frame_size: tuple[int, int] | None = None) -> None:
        self.config = config
        self.fps = max(float(fps), 1.0)
        s = float(config.sensitivity)
        # Sensitivity 0..1 moves the per-pixel structure threshold and the per-cell fill fraction.
        self.pixel_threshold = 0.75 - 0.5 * s
        self.cell_threshold = 0.40 - 0.25 * s
        self.flicker_gain = 2.0
        self._a_bg = 1.0 / (self.fps * max(config.learn_time, 0.1))
        self._a_bg_fg = self._a_bg / 10.0
        self._a_flicker_up = 1.0 / (self.fps * 0.5)
        self._a_flicker_down = 1.0 / (self.fps * 10.0)
        self._f_flicker_fade = np.float32(1.0 / (self.fps * PROVISIONAL_FADE))
        self._f_flicker_up, self._f_flicker_down = np.float32(self._a_flicker_up), np.float32(self._a_flicker_down)
        self._settle_frames = round(config.settle_time * self.fps)
        # Tuned at 15 fps. Whatever compares a frame with "the last one" compares it with the frame
        # about 1/15 s back instead (lag frames), and per-frame rates and counts scale with the rate,
        # so a 25 or 30 fps camera behaves like one at 15 fps (and one at 15 fps exactly as before).
        self._lag = max(1, round(self.fps / TUNED_FPS))
        self._jump_scale = min(1.0, self.fps / LOW_FPS) ** LOW_FPS_POWER
        self._toggle_rate = min(1.0, TOGGLE_RATE * TUNED_FPS / self.fps)
        self._common_every = max(1, round(COMMON_EVERY * self.fps / TUNED_FPS))
        self._old_every = max(1, round(OLD_EVERY * self.fps / TUNED_FPS))
        self._old_after = max(1, round(OLD_AFTER * self.fps / self._old_every))  # in updates
        self._heal_every = max(1, round(HEAL_EVERY * self.fps / TUNED_FPS))
        # travel test: frames back (newest first) sampled about 1/15 s apart over TRAVEL_TIME
        n_ref = max(3, round(TRAVEL_TIME * TUNED_FPS))
        back = sorted({round(j * self.fps / TUNED_FPS) for j in range(n_ref)})
        self._track_back = back if len(back) >= 3 else [0, 1, 2]
        self._size: tuple[int, int] | None = None
        self._zbg: np.ndarray | None = None
        self.frames = 0
        self.reseeds = 0
        if frame_size is not None:
            self._setup(*frame_size)

    # -- setup ------------------------------------------------------------------------------------

    def _setup(self, width: int, height: int) -> None:
        ww = min(width, int(self.config.work_width))
        ww -= ww % CELL
        wh = round(height * ww / width)
        wh -= wh % CELL
        self._size = (width, height)
        self._work = (ww, wh)
        self._cells = (ww // CELL, wh // CELL)
        cw, ch = self._cells
        allowed = np.full((wh, ww), 255, np.uint8)
        if self.config.zones:
            allowed = rasterise(self.config.zones, ww, wh)
        if self.config.ignore:
            allowed[rasterise(self.config.ignore, ww, wh) > 0] = 0
        # A cell counts when most of it is watched.
        self._allowed = cv2.resize(allowed.astype(np.float32) / 255.0, (cw, ch), interpolation=cv2.INTER_AREA) > 0.5
        self._watched_cells = max(int(self._allowed.sum()), 1)
        self._watched_any = bool(self._allowed.any())
        self._min_cells = max(1, round(self.config.min_area * cw * ch))
        self._all_allowed = bool(self._allowed.all())
        self._allowed_u8 = self._allowed.astype(np.uint8)
        self._flicker = np.zeros((ch, cw), np.float32)
        # ghosts (see OLD_AFTER): the old background, per cell the updates since it was last in an
        # object area (capped), the cells in one since the last update, the cells where the two differ
        self._zold: np.ndarray | None = None
        self._free = np.full((ch, cw), self._old_after, np.int32)
        self._busy = np.zeros((ch, cw), bool)
        self._stale: np.ndarray | None = None
        self._stale_px = np.zeros((wh, ww), bool)  # the same, per working pixel
        self._heal_scratch = np.zeros((wh, ww), bool)
        self._zold_held: tuple[np.ndarray, np.ndarray | None] | None = None  # kept aside over a re-seed
        # the start-up warm-up has not ended yet (see _end_warmup). Only where jumps are measured over
        # more than one frame (25 fps and up): at 15-20 fps the warm-up is the tuned one.
        self._warming = self._lag > 1
        self._mid_flicker: np.ndarray | None = None  # the flicker memory half-way through the warm-up
        self._fading = 0  # frames left in which the flicker memory fades at the provisional rate
        self._kernel = np.ones((3, 3), np.uint8)
        self._kernel5 = np.ones((5, 5), np.uint8)
        lag = self._lag
        # rings of the last lag frames (slot frames % lag holds the frame lag back until overwritten);
        # lists, so that each frame's array is swapped in, not copied
        self._prev_frac = [np.zeros((ch, cw), np.float32) for _ in range(lag)]
        # travel test: looser active maps (weighted by the changed fraction) of the last few frames
        self._track_n = self._track_back[-1] + 1
        self._track = np.zeros((self._track_n, ch, cw), np.float32)
        self._prev_loose = [np.zeros((ch, cw), bool) for _ in range(lag)]
        self._tracking = False  # _track or _prev_loose may hold something (else both are all zero)
        self._common = 0.0
        # every other pixel of the band-pass image of this frame and the lag frames before (noise floor)
        self._half = np.zeros((lag + 1, (wh + 1) // 2, (ww + 1) // 2), np.float32)
        self._half_diff = np.zeros(self._half.shape[1:], np.float32)
        self._halves = 0  # band-pass images stored since setup
        self._level = 0.0  # mean brightness of the last frame (read by bench/motion_identical's state digest)
        self._levels = [0.0] * lag
        self._prev_over = [np.zeros((wh, ww), bool) for _ in range(lag)]
        self._toggle = np.zeros((wh, ww), np.float32)
        self._zbg = None
        self._overlay = OverlayFinder(self.fps, ww, wh)
        # motion.cast_shadows: the light judge (light_fit.py) and the looks it heals marks from (looks.py)
        self._light: LightFit | None = None
        self._looks: Looks | None = None
        if self.config.cast_shadows:
            self._light = LightFit(self.fps, self._work, self._cells)
            self._looks = Looks(self._work, self._cells)  # the background from before the light changed
            self._still = np.zeros((ch, cw), np.int32)  # frames (up to STILL_FRAMES) each cell has held still
            self._a_light = np.float32(1.0 / (self.fps * LIGHT_LEARN))
        self._fg: np.ndarray | None = None  # last frame's protected (object) area, working pixels
        # the background from before a re-seed and where objects were then, while the detector rests
        # (see _put_back_under_objects)
        self._held: tuple[np.ndarray, np.ndarray] | None = None
        self._kept: np.ndarray | None = None  # where it was put back (learns at the object rate while recovering)
        self._reported = False  # the last frame reported an object
        self._rest_first: dict[str, np.ndarray] = {}  # misfit maps of a rest's last-but-one frame (_rest_misfit)
        self._recover = round((WARMUP + RECOVER) * self.fps)  # nothing is "foreground" yet at start-up
        # Start-up: learn the background and where things flicker before judging anything.
        self._settle = round(WARMUP * self.fps)

    # -- per frame ----------------------------------------------------------------------------------

    def process(self, luma: np.ndarray) -> MotionResult:
        result = self._process(luma)
        self._reported = result.active
        return result

    def _process(self, luma: np.ndarray) -> MotionResult:
        h0, w0 = luma.shape[:2]
        if self._size != (w0, h0):
            self._setup(w0, h0)
        self.frames += 1
        ww, wh = self._work
        small = luma if (w0, h0) == (ww, wh) else cv2.resize(luma, (ww, wh), interpolation=cv2.INTER_AREA)
        level = _mean_level(small[::2, ::2])
        if small.dtype == np.uint8:
            # a camera's burnt-in clock, once found, is filled from the picture round it (overlay.py)
            small = self._overlay.update(small, level)
        # 1. band-pass: fine structure minus the smooth part (kills level and linear illumination ramps)
        band = _band_pass(small)
        energy = cv2.sqrt(cv2.blur(band * band, (7, 7)))
        # 2. noise floor from the median change of the band-pass image (every other pixel) over 1/15 s
        lag = self._lag
        slots = lag + 1
        half, prev_half = self._half[self.frames % slots], self._half[(self.frames + 1) % slots]
        np.copyto(half, band[::2, ::2])
        noise = 1.0
        if self._halves >= lag:
            noise = _median(cv2.absdiff(half, prev_half, dst=self._half_diff).ravel()) + 0.5
        self._halves += 1
        energy += 2.5 * noise
        z = np.divide(band, energy, out=energy)
        slot = self.frames % lag  # this frame's slot in the rings of the last lag frames
        if self._zbg is None:
            self._zbg = z.copy()
            self._level = level
            self._levels[:] = [level] * lag
            return MotionResult(0.0, False, settling=True)
        # 3. change against the background structure
        if self._overlay.reseed is not None:
            # what the overlay's marks changed is learnt at once, but not where an object was reported
            # (a subject waiting next to the clock must not be learnt with it)
            reseed = self._overlay.reseed if self._fg is None else self._overlay.reseed & (self._fg == 0)
            np.copyto(self._zbg, z, where=reseed)
            if self._held is not None:  # the background kept aside learns the marks too (not under its objects)
                np.copyto(self._held[0], z, where=self._overlay.reseed & (self._held[1] == 0))
        if self._looks and self._light is not None:  # (motion.cast_shadows, once a look was taken)
            # a mark the light left behind that shows the scene under a light seen before (looks.py)
            left = self._light.marks_of_change() & (self._still >= STILL_FRAMES)
            if left.any():
                self._looks.heal(z, self._zbg, left, self.pixel_threshold)
        diff = cv2.absdiff(z, self._zbg)
        # a pixel must stay changed in two consecutive frames: rain streaks and noise do not (frames, not
        # 1/15 s: noise and rain drops are new in every frame, so two frames are two independent samples)
        over = diff > self.pixel_threshold
        prev_over = self._prev_over[slot]
        last_over = self._prev_over[(self.frames - 1) % lag]
        if self._stale is not None and self.frames % self._heal_every == 0:
            self._heal_ghosts(z, over, last_over)
        changed = over & last_over
        # per-pixel toggle memory: leaves and rain flip pixels on and off all the time, a passing
        # subject flips each pixel about twice. Pixels that keep toggling (over 1/15 s) do not count.
        cv2.accumulateWeighted((over ^ prev_over).view(np.uint8), self._toggle, self._toggle_rate)
        steady = self._toggle < TOGGLE_LIMIT
        changed &= steady
        self._prev_over[slot] = over
        # blown-out pixels (a lamp, headlights) carry no structure: their "change" means nothing.
        # (Black is not masked: a dark car on a dark road at night still has edges.)
        unclipped: np.ndarray | None = None
        if small.max() >= CLIP_HIGH:
            clipped = (small >= CLIP_HIGH).view(np.uint8)
            unclipped = cv2.dilate(clipped, self._kernel5) == 0
            changed &= unclipped
        frac = self._cell_fraction(changed)
        # 6. sudden global change (IR switch, exposure jump, camera bumped): re-seed, rest a moment
        before = self._levels[slot]  # 1/15 s ago: a brightness step spread over frames counts whole
        jumped = abs(level - before) > LEVEL_JUMP * max(before, 8.0)
        self._level = level
        self._levels[slot] = level
        if jumped or self._count(frac > WIDE_CELL) > GLOBAL_CHANGE * self._watched_cells:
            if self._held is None and self._reported and self._fg is not None and self._settle_frames >= 2:
                self._held = (self._zbg, self._fg)  # a subject was there: see _put_back_under_objects
            # keep the old background where the picture is blown out: there is nothing to learn there
            self._zbg = z.copy() if unclipped is None else np.where(unclipped, z, self._zbg)
            for past in (*self._prev_frac, *self._prev_over):
                past[:] = 0
            self._levels[:] = [level] * lag  # the step is taken: compare what follows with the new level
            self._track[:] = 0
            for past in self._prev_loose:
                past[:] = False
            self._tracking = False
            self._settle = max(self._settle, self._settle_frames)
            if self._zold is not None and self._zold_held is None and self._settle > 0:
                # kept aside: after a change of brightness only it still fits, checked at the end of the
                # rest (_keep_old_background; with no rest there is no check, and a new one is made)
                self._zold_held = (self._zold, self._old_exclusion())
            self._zold, self._stale = None, None
            # a subject caught in the new background leaves a ghost when it walks away: for a few
            # seconds, moving areas learn at the normal rate so such ghosts fade quickly
            self._recover = round(RECOVER * self.fps)
            self._kept = None
            if self._light is not None and self._looks is not None:
                self._light.reset()
                self._looks.clear()
            self.reseeds += 1
            log.debug("global change: background re-seeded (frame %d)", self.frames)
            return MotionResult(0.0, False, settling=True, global_change=True)
        # 9. (motion.cast_shadows) cells that only changed as the light did are not objects, and are learnt fast
        light = None if self._light is None else self._judge_light(band, level, frac, noise)
        # 4. per cell: flicker memory (rises fast, fades slowly) raises the bar where cells toggle
        # (the jump of a cell's changed fraction over 1/15 s: at 30 fps the same leaf moves half as far per frame)
        jump = np.abs(frac - self._prev_frac[slot])
        if self._light is not None:
            np.add(self._still, 1, out=self._still, where=self._still < STILL_FRAMES)  # (capped: counts to there)
            self._still[jump > STILL_JUMP] = 0
        if self._jump_scale != 1.0:  # below LOW_FPS: a jump spans several 1/15 s steps
            jump *= self._jump_scale
        self._prev_frac[slot] = frac
        down = self._f_flicker_down
        if self._fading > 0:
            self._fading -= 1
            down = self._f_flicker_fade
        rate = np.where(jump > self._flicker, self._f_flicker_up, down)
        self._flicker += rate * (jump - self._flicker)
        active = frac > self.cell_threshold + self.flicker_gain * self._flicker
        if not self._all_allowed:
            active &= self._allowed
        if light is not None:
            active &= ~light
            light = self._light.light()  # type: ignore[union-attr]
            if not light.any():
                light = None
        # 7. the looser map for the travel test: flicker that is everywhere (rain, night noise) comes off
        if self.frames % self._common_every == 0 and self._watched_any:
            self._common = _median(self._flicker[self._allowed])
        # (only where that scene-wide flicker is high: in clear weather the first test is enough)
        rainy = self._common >= RAINY
        if rainy:
            # relaxed persistence for this map only: changed now and within one pixel of a pixel
            # changed in the last frame (a dark, slow subject's edges shift by a pixel or so)
            near = over & (cv2.dilate(last_over.view(np.uint8), self._kernel) > 0)
            near &= steady
            if unclipped is not None:
                near &= unclipped
            frac_t = self._cell_fraction(near)
            bar = self.cell_threshold + self.flicker_gain * (self._flicker - COMMON_FLICKER * self._common)
            loose = (frac_t > bar) & self._allowed
            joined = loose | self._prev_loose[slot]
            self._prev_loose[slot] = loose
            np.multiply(frac_t, joined, out=self._track[self.frames % self._track_n])
            self._tracking = True
        elif self._tracking:
            for past in self._prev_loose:
                past[:] = False
            self._track[:] = 0
            self._tracking = False
        # background learns: slowly where something moves, faster elsewhere (a running mean at start-up)
        a_bg = max(self._a_bg, 1.0 / self.frames)
        n_active = np.count_nonzero(active)
        self._fg = None  # the protected area of this frame (read by the next frame's overlay re-seed)
        if n_active or unclipped is not None or light is not None:
            alpha = np.full((wh, ww), a_bg, np.float32)
            if n_active:
                # protect the whole object and a one-cell margin, not just its changed edges: a
                # person who stands still must not be learnt into the background from the inside
                grown = cv2.dilate(active.astype(np.uint8), self._kernel)
                fg = cv2.resize(grown, (ww, wh), interpolation=cv2.INTER_NEAREST)
                self._fg = fg
                self._busy |= grown > 0
                alpha[fg > 0] = self._a_bg_fg if self._recover <= 0 else a_bg
                if self._kept is not None and self._recover > 0:
                    alpha[(fg > 0) & self._kept] = self._a_bg_fg
            if light is not None:  # (after the objects: a light cell in an object's margin is still light)
                alpha[self._cell_pixels(light)] = max(a_bg, self._a_light)
            if unclipped is not None:
                alpha[~unclipped] = 0.0
            self._zbg += alpha * (z - self._zbg)
        else:
            cv2.accumulateWeighted(z, self._zbg, a_bg)
        self._recover -= 1
        if self.frames % self._old_every == 0:
            self._update_old()
        if self._settle > 0:
            self._settle -= 1
            if self._settle <= 1:
                if self._held is not None:
                    self._put_back_under_objects(z, unclipped)
                if self._zold_held is not None:
                    self._keep_old_background(z, unclipped)
            if self._warming:
                if self._settle == round(WARMUP * self.fps) // 2 and self._mid_flicker is None:
                    self._mid_flicker = self._flicker.copy()
                elif self._settle == 0:
                    self._end_warmup()
            return MotionResult(0.0, False, settling=True)
        if n_active >= self._min_cells:
            result = self._objects(active)
            if result.active:
                return result
        if not rainy or np.count_nonzero(joined) < self._min_cells:
            return MotionResult(0.0, False)
        return self._travelling(joined)

    def _judge_light(self, band: np.ndarray, level: float, frac: np.ndarray, noise: float) -> np.ndarray | None:
        """motion.cast_shadows: the cells that only changed as the light did (light_fit.py), or None. When
        the light begins to change, the background it leaves is kept as a look where nothing stood."""
        light_fit, looks = self._light, self._looks
        assert light_fit is not None and looks is not None
        # last frame's protected area counts only when it was reported (not a tree shadow's specks)
        fg_cells = None if self._fg is None or not self._reported else self._fg[::CELL, ::CELL] > 0
        was_open = light_fit.open
        light = light_fit.update(band, level, frac > WIDE_CELL, fg_cells, noise)
        if light_fit.open and not was_open and self._settle <= 0:
            clean = light_fit.state == CLEAN
            if self._fg is not None:  # (last frame's objects, reported or not)
                clean &= self._fg[::CELL, ::CELL] == 0
            if self._stale is not None:  # something was learnt there lately (a subject that waited, say)
                clean &= ~self._stale
            looks.take(self._zbg, clean)
        return light

    def _end_warmup(self) -> None:
        # During the warm-up every change counts as flicker, so a subject that moves then raises
        # its own bar (the flicker memory fades over 10 s) and is muted for seconds after it. What
        # the warm-up learnt is therefore provisional: (1) a cell keeps at most WARMUP_GROWTH times
        # what it had learnt half-way through (foliage, rain and noise there from the start show
        # most of their flicker in the first half, rising over 0.5 s; a subject that started moving
        # later has not), and (2) for PROVISIONAL seconds the memory fades with a 2 s time constant
        # instead of 10 s, so the cells a subject crossed during the warm-up return to the plain bar
        # soon, while cells that keep jumping (foliage) hold it up through the normal rise. (Only
        # briefly: the fast fade also holds back what a gust starting then teaches; 3 s let one through.)
        self._warming = False
        if self._mid_flicker is not None:
            np.minimum(self._flicker, WARMUP_GROWTH * self._mid_flicker, out=self._flicker)
            self._mid_flicker = None
        self._fading = round(PROVISIONAL * self.fps)

    def _put_back_under_objects(self, z: np.ndarray, unclipped: np.ndarray | None) -> None:
        # A re-seed learns whatever the picture holds, a subject waiting at the door included: it
        # would vanish until it moved again (a second event) and leave a ghost, protected as an
        # object, when it left. The structure (step 1) is meant to survive a change of brightness,
        # so at the end of the rest the old background is checked against the picture in its last
        # two frames (a misfit must persist, as a change does: rain and noise do not). Where it still
        # fits all but a few cells away from the objects, the change was one of brightness only and
        # the old background is put back under the objects that were reported when it came.
        held, fg = self._held  # type: ignore[misc]
        over = cv2.absdiff(z, held) > self.pixel_threshold
        share = self._rest_misfit(over & (fg == 0), unclipped, "held")
        if share is None:
            return
        self._held = None
        if share > HELD_FIT:
            log.debug("after the re-seed %.1f %% of the picture misfits the old background: new one kept", 100 * share)
            return
        under = fg > 0 if unclipped is None else (fg > 0) & unclipped
        np.copyto(self._zbg, held, where=under)
        # What a moving subject had already reached beyond its last object area was caught in the
        # new background: elsewhere the ghosts still fade at the normal rate while recovering.
        self._kept = under
        # the last frames are judged against what was put back, so that the subject does not look
        # like a cell that jumped (which would raise its flicker bar) or a pixel changed only now
        over &= under
        cells = fg[::CELL, ::CELL] > 0
        frac = self._cell_fraction(over)
        for k in range(self._lag):
            self._prev_over[k] = np.where(under, over, self._prev_over[k])
            np.copyto(self._prev_frac[k], frac, where=cells)
        log.debug("the old background fits after the re-seed: put back under the objects (frame %d)", self.frames)

    def _rest_misfit(self, misfit: np.ndarray, unclipped: np.ndarray | None, slot: str) -> float | None:
        """Share of the watched cells where a background kept aside over a re-seed misfits the picture
        (`misfit`, a pixel map) in both of the rest's last two frames: a misfit must persist, as a
        change does (rain and noise do not). None on the first of the two, whose map waits in `slot`."""
        if unclipped is not None:
            misfit &= unclipped
        if self._settle == 1:
            self._rest_first[slot] = misfit
            return None
        first = self._rest_first.pop(slot, None)
        if first is not None:
            misfit &= first
        return self._count(self._cell_fraction(misfit) > WIDE_CELL) / self._watched_cells

    def _old_exclusion(self) -> np.ndarray | None:
        """Working pixels where the picture may misfit the old background without a change of light:
        where something was learnt since (stale cells) and where objects were last reported."""
        out = self._fg > 0 if self._fg is not None else None
        if self._stale is not None:
            stale = self._cell_pixels(self._stale)
            out = stale if out is None else out | stale
        return out

    def _keep_old_background(self, z: np.ndarray, unclipped: np.ndarray | None) -> None:
        # A re-seed drops the old background with the rest. Where the change was one of brightness only
        # (an exposure step, a lamp), the old background's structure still fits the picture as the
        # background kept aside by _put_back_under_objects does, and ghosts stay known: judged the same
        # way, on the last two frames of the rest, away from what was learnt and from objects.
        zold, exclude = self._zold_held  # type: ignore[misc]
        misfit = cv2.absdiff(z, zold) > self.pixel_threshold
        if exclude is not None:
            misfit &= ~exclude
        share = self._rest_misfit(misfit, unclipped, "old")
        if share is None:
            return
        self._zold_held = None
        if share <= HELD_FIT:
            self._zold, self._stale = zold, None
            log.debug("the old background still fits after the re-seed: kept (frame %d)", self.frames)

    def _update_old(self) -> None:
        """Every OLD_EVERY frames: the old background takes the background in cells free of objects for
        OLD_AFTER seconds, and the cells and pixels where the two differ are noted."""
        if self._zold is None:
            if self._settle > 0:
                return  # not from a background re-seeded with a subject in it, before the put-back
            self._zold = self._zbg.copy()
        np.add(self._free, 1, out=self._free)
        np.minimum(self._free, self._old_after, out=self._free)
        self._free[self._busy] = 0
        self._busy[:] = False
        free = self._free >= self._old_after
        if free.all():
            np.copyto(self._zold, self._zbg)
        else:
            np.copyto(self._zold, self._zbg, where=self._cell_pixels(free))
        stale = cv2.absdiff(self._zbg, self._zold) > STALE * self.pixel_threshold
        self._stale = self._cell_fraction(stale) > 0 if stale.any() else None
        self._stale_px = stale

    def _heal_ghosts(self, z: np.ndarray, over: np.ndarray, last_over: np.ndarray) -> None:
        # Something stood still long enough to be learnt, then left: where it stood the picture is the
        # old background again. Judged per region (connected cells changed in two frames), not per
        # pixel: a passer-by's flat legs in front of a parked car fit the road behind it pixel by
        # pixel, but the outline of the legs does not, so a region with a real subject in it is never
        # healed. A ghost region's fitting pixels take the old background at once and do not count.
        both = over & last_over
        if not np.logical_and(both, self._stale_px, out=self._heal_scratch).any():
            return  # nothing changed where something was learnt
        fits = cv2.absdiff(z, self._zold) <= self.pixel_threshold
        changed = self._cell_fraction(both)
        grid = (changed > WIDE_CELL).view(np.uint8)
        n, labels = cv2.connectedComponents(grid, connectivity=8)
        if n < 2:
            return
        flat = labels.ravel()
        misfit = np.bincount(flat, self._cell_fraction(both & ~fits).ravel(), n)
        total = np.bincount(flat, changed.ravel(), n)
        stale = np.bincount(flat, self._stale.ravel(), n)  # type: ignore[union-attr]
        ghost = (misfit <= GHOST_MISFIT * total) & (stale > 0)
        ghost[0] = False
        if not ghost.any():
            return
        heal = self._cell_pixels(ghost[labels])
        heal &= over & fits
        np.copyto(self._zbg, self._zold, where=heal)  # the old background: a mean, not one noisy frame
        over &= ~heal

    def _cell_fraction(self, pixels: np.ndarray) -> np.ndarray:
        """Per cell, the fraction of its working pixels set in a boolean pixel map."""
        return cell_fraction(pixels, self._cells)

    def _cell_pixels(self, cells: np.ndarray) -> np.ndarray:
        """A boolean cell map spread over the working pixels of its cells (the reverse of _cell_fraction)."""
        return cell_pixels(cells, self._work)

    def _count(self, cells: np.ndarray) -> int:
        """Watched cells set in a cell map."""
        return np.count_nonzero(cells if self._all_allowed else cells & self._allowed)

    def _objects(self, active: np.ndarray) -> MotionResult:
        return self._result(self._groups(active))

    def _travelling(self, joined: np.ndarray) -> MotionResult:
        # 7. objects of the looser map that travel: follow each one's centroid back through the last
        # frames' maps, about 1/15 s apart (within its box plus a margin), and keep it when that centroid
        # moved far enough and mostly in one direction.
        cw, ch = self._cells
        order = [(self.frames - k) % self._track_n for k in reversed(self._track_back)]  # oldest first
        kept = []
        for x, y, w, h, cells in self._groups(joined):
            x0, y0 = max(0, x - TRAVEL_MARGIN), max(0, y - TRAVEL_MARGIN)
            x1, y1 = min(cw, x + w + TRAVEL_MARGIN), min(ch, y + h + TRAVEL_MARGIN)
            if not self._track[order[0], y0:y1, x0:x1].any():
                continue  # not there TRAVEL_TIME ago: nothing to follow yet
            window = self._track[order, y0:y1, x0:x1]
            mass = window.sum(axis=(1, 2))
            if not (mass > 0).all():
                continue  # not there in every recent frame: nothing to follow yet
            cx = window.sum(axis=1) @ np.arange(x0, x1, dtype=np.float32) / mass
            steps = np.abs(np.diff(cx)).sum()
            travel = abs(float(cx[-1] - cx[0]))
            if travel < TRAVEL_CELLS or travel < TRAVEL_STRAIGHT * float(steps):
                continue
            kept.append((x, y, w, h, cells))
        return self._result(kept)

    def _groups(self, cells_map: np.ndarray) -> list[tuple[int, int, int, int, int]]:
        """5. objects: connected groups (x, y, w, h, cells) of at least min_area cells; closing bridges
        one-cell gaps and fills the inside of outlines (a plain-coloured coat only changes at its edges)
        without growing specks."""
        grid = cv2.morphologyEx(cells_map.astype(np.uint8), cv2.MORPH_CLOSE, self._kernel)
        grid &= self._allowed_u8
        n, _labels, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=8)
        groups = [tuple(int(v) for v in stats[k]) for k in range(1, n)]
        return [g for g in groups if g[4] >= self._min_cells]  # type: ignore[misc]

    def _result(self, groups: list[tuple[int, int, int, int, int]]) -> MotionResult:
        if not groups:
            return MotionResult(0.0, False)
        cw, ch = self._cells
        boxes = [(x / cw, y / ch, w / cw, h / ch) for x, y, w, h, _cells in groups]
        return MotionResult(sum(g[4] for g in groups) / self._watched_cells, True, boxes)


def low_rate_note(fps: float) -> str | None:
    """What an owner should know about a detector fed fewer than LOW_FPS pictures a second (None from
    LOW_FPS up): the daemon and `consentcam detect` say it."""
    if 0 < fps < LOW_FPS:
        return (f"below {LOW_FPS:g} the detector confirms subjects about a second after they appear and misses "
                "more (docs/MOTION.md, Honest limits: frame rate)")
    return None
