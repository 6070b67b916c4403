"""A camera's burnt-in overlay (on-screen date and time, camera name), found and filled in.

Most IP cameras and NVRs draw the date and time into the picture after exposure. Its pixels keep
their brightness whatever the light does, so when a lamp goes off or the exposure steps, the
structure the detector compares round the text changes in one frame and holds, and the detector
reports it (docs/dev/MOTION-LOG.md, "An on-screen clock"). What gives the overlay away is the same thing:
while the light round it changes, its pixels do not change at all, not even by sensor noise.

The finder looks only while the light changes: the mean brightness has changed by GAIN_CHANGE
against one of the pictures kept over the last RING_SPAN seconds, at least half the picture moved
(SPREAD), and by one factor (RATIO_SPREAD): a subject alone can move the mean as much, but only
where it is, and by as many factors as it has shades. A pixel is then marked as overlay when, over
those seconds, it
- changed value at most HELD_STEPS times (the units of seconds turn over twice in 2 s, and H.264
  re-quantises the text when the picture round it changes), where every real surface lit by that
  light shows noise or follows it;
- while the pixels round it changed by AROUND levels on average;
- and is within SEED_REACH of a seed: a held pixel that has the same value as in the kept picture
  (SEED_MOVED: a surface that stepped with the light, on a quiet camera, moved), is bright enough
  that the change should have moved it by SHOULD_MOVE levels, has the sharp contrast of text
  (CONTRAST) and lies in the top or bottom EDGE_BAND of the picture, where cameras put their
  overlays; and the search found at least MIN_SEEDS of them (a line of text, not a stray pixel).
Marked pixels are filled from the unmarked ones round them before the detector looks at the picture,
so the text's fixed brightness no longer shapes the structure there, and the detector re-seeds its
background round new marks once, except where it reported an object in the last frame (a subject
waiting next to the clock must not be learnt with it). Marks stay: the digits change all the time,
always inside the marked band. A mark is dropped when its pixel has looked different for RELEASE
seconds without a break (the minutes and hours digits, or a pixel marked by mistake), and that place
is re-seeded again.

Without a light change the finder does no per-pixel work but keep a picture every RING_STEP; with no
mark it returns the picture untouched, so a camera without an overlay is judged as before unless the
light once changed while something at the picture's edge held still like text (docs/dev/MOTION-LOG.md, "An
on-screen clock: find the overlay and fill it in").
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

RING_STEP, RING_SPAN = 0.25, 2.0  # seconds between the pictures kept, and how far back they reach
GAIN_CHANGE = 0.06  # relative change of the mean brightness against a kept picture that starts a search
HELD_STEPS = 3  # value changes a held pixel may show over the kept pictures (the units of seconds turn
# over twice in 2 s, and H.264 re-quantises the text when the picture round it changes)
SPREAD, SPREAD_LEVELS = 0.5, 3  # the light changed: at least half the pixels moved by 3 levels,
RATIO_SPREAD = 0.1  # by one factor (the middle half of their ratios within 10 % of the median)
SEED_MOVED = 1  # a seed's value against the kept picture: the same, give or take a level
AROUND = 6.0  # mean absolute change (levels) over the 15x15 pixels round a held pixel
AROUND_SIZE = 15
SHOULD_MOVE = 4.0  # levels the light change should have moved a seed (its value times the change)
CONTRAST = 48  # brightest minus darkest level in a seed's 3x3 neighbourhood (text edges)
EDGE_BAND = 0.15  # seeds only in the top and bottom 15 % of the picture
MIN_SEEDS = 10  # seeds one search must find (per 160x120 pixels): a clock gives 12-250, strays 1-4
SEED_REACH = 5  # held pixels within a 5x5 square of a seed are marked too (the outline, the gaps)
CLIPPED = 250  # saturated pixels are not marked (they hold still for any light; the detector skips them)
UNMARK = 8  # levels a marked pixel must move from its marked value to count as different
RELEASE = 60.0  # seconds a marked pixel must stay different before its mark is dropped
FILL = 11  # side of the square whose unmarked pixels fill a marked one
RESEED = 17  # side of the square round a new or dropped mark where the background is re-seeded


class OverlayFinder:
    def __init__(self, fps: float, width: int, height: int) -> None:
        self._every = max(1, round(RING_STEP * fps))
        self._keep = max(2, round(RING_SPAN / RING_STEP))
        self._ring: list[tuple[float, np.ndarray]] = []  # (mean level, picture), oldest first
        self._frames = 0
        self._release = max(1, round(RELEASE * fps))
        self._min_seeds = max(4, round(MIN_SEEDS * width * height / (160 * 120)))
        self.marked = np.zeros((height, width), bool)
        self._value = np.zeros((height, width), np.uint8)  # each mark's value when it was marked
        self._away = np.zeros((height, width), np.int32)  # frames a marked pixel has looked different
        self.count = 0
        self._box: tuple[int, int, int, int] | None = None  # the marks' bounding box, with the fill's reach
        band = max(1, round(EDGE_BAND * height))
        self._edges = np.zeros((height, width), bool)
        self._edges[:band] = True
        self._edges[-band:] = True
        self.reseed: np.ndarray | None = None  # where the picture's structure changed because of marks

    def update(self, small: np.ndarray, level: float) -> np.ndarray:
        """This frame's working picture (uint8) and mean level; returns it with the overlay filled in
        (the same array when nothing is marked). Sets `reseed` for this frame."""
        self.reseed = None
        if self.count:
            self._drop_released(small)
        if len(self._ring) == self._keep:
            self._search(small, level)
        if self._frames % self._every == 0:
            self._ring.append((level, small.copy()))
            if len(self._ring) > self._keep:
                self._ring.pop(0)
        self._frames += 1
        return self._filled(small) if self.count else small

    def _marks_box(self) -> tuple[int, int, int, int]:
        """Rows y0:y1 and columns x0:x1 holding every mark and the FILL/2 round them that feeds the fill
        (outside it nothing is marked, so the per-frame work on marks stays inside it)."""
        if self._box is None:
            ys, xs = np.nonzero(self.marked)
            m = FILL // 2
            h, w = self.marked.shape
            self._box = (max(0, ys.min() - m), min(h, ys.max() + m + 1), max(0, xs.min() - m), min(w, xs.max() + m + 1))
        return self._box

    def _drop_released(self, small: np.ndarray) -> None:
        y0, y1, x0, x1 = self._marks_box()
        marked, away = self.marked[y0:y1, x0:x1], self._away[y0:y1, x0:x1]
        different = (cv2.absdiff(small[y0:y1, x0:x1], self._value[y0:y1, x0:x1]) > UNMARK) & marked
        away += 1
        away[~different] = 0
        gone = away > self._release
        if gone.any():
            marked &= ~gone
            away[gone] = 0
            full = np.zeros_like(self.marked)
            full[y0:y1, x0:x1] = gone
            self._marks_changed(full)

    def _search(self, small: np.ndarray, level: float) -> None:
        # the kept picture whose mean brightness differs most from this one's
        change, ref = max(((abs(level - kept_level) / max(kept_level, 8.0), picture)
                           for kept_level, picture in self._ring), key=lambda pair: pair[0])
        if change < GAIN_CHANGE:
            return
        if not self._light_changed(small[::2, ::2], ref[::2, ::2]):  # every other pixel says it as well
            return
        moved = cv2.absdiff(small, ref)
        steps = np.zeros(small.shape, np.uint8)  # value changes between consecutive kept pictures and now
        pictures = [picture for _level, picture in self._ring] + [small]
        for older, newer in itertools.pairwise(pictures):
            steps += cv2.compare(older, newer, cv2.CMP_NE) & 1
        held = (steps <= HELD_STEPS) & (small < CLIPPED)
        around = cv2.blur(moved.astype(np.float32), (AROUND_SIZE, AROUND_SIZE))
        held &= around >= AROUND
        # a seed is also where it was (a surface that stepped with the light, on a quiet camera, moved)
        seeds = held & self._edges & (moved <= SEED_MOVED)
        seeds &= small.astype(np.float32) * change >= SHOULD_MOVE
        if np.count_nonzero(seeds) < self._min_seeds:
            return
        seeds &= cv2.morphologyEx(small, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) >= CONTRAST
        if np.count_nonzero(seeds) < self._min_seeds:  # a stray pixel or two, not a line of text
            return
        near = cv2.dilate(seeds.view(np.uint8), np.ones((SEED_REACH, SEED_REACH), np.uint8)) > 0
        new = held & near & ~self.marked
        if new.any():
            self.marked |= new
            self._value[new] = small[new]
            self._marks_changed(new)

    @staticmethod
    def _light_changed(small: np.ndarray, ref: np.ndarray) -> bool:
        """Most of the picture moved, and by one factor: the light (a cloud, the exposure, the IR
        lamp). A subject alone can move the mean brightness by 6 % too, but only where it is, and by
        as many factors as it has shades."""
        changed = cv2.absdiff(small, ref) >= SPREAD_LEVELS
        if np.count_nonzero(changed) < SPREAD * changed.size:
            return False
        ratio = small[changed].astype(np.float32) / np.maximum(ref[changed], 1).astype(np.float32)
        n = ratio.size - 1
        quartiles = (n // 4, n // 2, 3 * n // 4)
        low, mid, high = np.partition(ratio, quartiles)[list(quartiles)]  # one partial sort for all three
        return bool(high - low <= RATIO_SPREAD * mid)

    def _marks_changed(self, where: np.ndarray) -> None:
        """Marks were added or dropped at `where`: recount, forget the box, re-seed round them."""
        self.count = int(np.count_nonzero(self.marked))
        self._box = None
        grown = cv2.dilate(where.view(np.uint8), np.ones((RESEED, RESEED), np.uint8)) > 0
        self.reseed = grown if self.reseed is None else grown | self.reseed

    def _filled(self, small: np.ndarray) -> np.ndarray:
        # normalised box filter: the mean of the unmarked pixels within FILL/2 of each marked one,
        # worked out only in the marks' bounding box
        y0, y1, x0, x1 = self._marks_box()
        marked = self.marked[y0:y1, x0:x1]
        part = small[y0:y1, x0:x1]
        keep = (~marked).astype(np.float32)
        total = cv2.blur(part.astype(np.float32) * keep, (FILL, FILL))
        weight = cv2.blur(keep, (FILL, FILL))
        inside = marked & (weight > 0.05)  # deep inside a large mark: keep the pixel as it is
        out = small.copy()
        out[y0:y1, x0:x1][inside] = np.clip(total[inside] / weight[inside] + 0.5, 0, 255).astype(np.uint8)
        return out
