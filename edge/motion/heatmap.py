"""Where in the picture motion was detected, and for how long: a map for drawing zones and masks.

`consentcam detect VIDEO --heatmap OUT.png` accumulates, per cell of a grid, the seconds during which
an object the detector reported covered that cell, and draws it over the file's average picture
with a grid in the normalised coordinates that `motion.zones` and `motion.ignore` use. A tree that
keeps tripping the detector shows up as a hot blob whose corners can be read off the grid.

`busy_regions()` does that reading for the owner: the parts of the picture that objects covered for
at least a fifth of the file, as rectangles ready for `motion.ignore`. A passer-by covers a spot for a
second or two; wind in a tree covers its crown for most of a clip. It is a suggestion to check, not a
setting: footage in which a person stood still for a long time would make their spot busy too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import ConsentcamError

Box = tuple[float, float, float, float]  # x, y, w, h, normalised (as MotionResult.boxes)
GRID_COLS, GRID_ROWS = 64, 48
MAX_FRAME_GAP = 1.0  # seconds credited for one frame at most (a stalled file must not paint a blob)
BACKGROUND_SAMPLES = 60  # frames averaged for the picture under the map
BUSY_SHARE = 0.2  # share of the file's length an area must be covered to count as busy
BUSY_MIN_SECONDS = 2.0  # and at least this long (a short clip is not a reason to mask anything)
BUSY_MARGIN = 2  # grid cells added round a busy area (leaf tips stray beyond the reported boxes)


@dataclass(frozen=True)
class HotSpot:
    """One grid cell and the seconds of detected motion over it."""

    x: float  # cell centre, normalised
    y: float
    seconds: float


@dataclass(frozen=True)
class BusyRegion:
    """A rectangle (normalised x0, y0, x1, y1) where objects were seen for `seconds` at most."""

    x0: float
    y0: float
    x1: float
    y1: float
    seconds: float

    def polygon(self) -> list[list[float]]:
        """The rectangle as a `motion.ignore` polygon."""
        return [[self.x0, self.y0], [self.x1, self.y0], [self.x1, self.y1], [self.x0, self.y1]]


def _outermost(regions: list[BusyRegion]) -> list[BusyRegion]:
    """Drop each rectangle that lies inside another (two busy patches of one tree, the margin of the
    larger taking in the smaller): one ignore polygon already covers it. The one kept reports the
    larger of their seconds."""
    def inside(a: BusyRegion, b: BusyRegion) -> bool:
        return b.x0 <= a.x0 and b.y0 <= a.y0 and a.x1 <= b.x1 and a.y1 <= b.y1

    def rect(r: BusyRegion) -> tuple[float, float, float, float]:
        return r.x0, r.y0, r.x1, r.y1

    out = []
    for i, region in enumerate(regions):
        # inside another one, or the same rectangle as one before it (each is inside the other)
        if any(inside(region, other) and (rect(region) != rect(other) or j < i)
               for j, other in enumerate(regions) if j != i):
            continue
        seconds = max([region.seconds] + [o.seconds for o in regions if o is not region and inside(o, region)])
        out.append(BusyRegion(region.x0, region.y0, region.x1, region.y1, seconds))
    return out


class MotionHeatmap:
    def __init__(self, cols: int = GRID_COLS, rows: int = GRID_ROWS, *, sample_every: int = 15) -> None:
        self.seconds = np.zeros((rows, cols), np.float64)
        self._last_t: float | None = None
        self._background: np.ndarray | None = None
        self._samples = 0
        self._sample_every = max(1, sample_every)
        self._frames = 0
        self.total_seconds = 0.0  # length of the file as credited (gaps capped like the cells)

    def add(self, t: float, luma: np.ndarray, boxes: Sequence[Box]) -> None:
        """One analysed frame: its time (s), its luma plane and the boxes of the objects reported in it."""
        dt = 0.0 if self._last_t is None else min(max(t - self._last_t, 0.0), MAX_FRAME_GAP)
        self._last_t = t
        self.total_seconds += dt
        if self._frames % self._sample_every == 0 and self._samples < BACKGROUND_SAMPLES:
            plane = luma.astype(np.float32)
            if self._background is None:
                self._background, self._samples = plane, 1
            elif self._background.shape == plane.shape:  # a stream that changes size keeps its first
                self._background += plane
                self._samples += 1
        self._frames += 1
        if not boxes or dt <= 0.0:
            return
        rows, cols = self.seconds.shape
        covered = np.zeros((rows, cols), bool)  # overlapping boxes count once per frame
        for x, y, w, h in boxes:
            c0, c1 = int(np.floor(x * cols)), int(np.ceil((x + w) * cols))
            r0, r1 = int(np.floor(y * rows)), int(np.ceil((y + h) * rows))
            covered[max(r0, 0) : min(r1, rows), max(c0, 0) : min(c1, cols)] = True
        self.seconds[covered] += dt

    def hottest(self, n: int = 3) -> list[HotSpot]:
        """The n cells with the most seconds of motion, hottest first (cells with none left out)."""
        rows, cols = self.seconds.shape
        order = np.argsort(self.seconds, axis=None)[::-1][:n]
        spots = []
        for index in order:
            r, c = divmod(int(index), cols)
            if self.seconds[r, c] > 0:
                spots.append(HotSpot(round((c + 0.5) / cols, 3), round((r + 0.5) / rows, 3),
                                     round(float(self.seconds[r, c]), 2)))
        return spots

    def busy_regions(self, share: float = BUSY_SHARE, min_seconds: float = BUSY_MIN_SECONDS) -> list[BusyRegion]:
        """Rectangles round the areas objects covered for at least `share` of the file (and at least
        `min_seconds`), widened by BUSY_MARGIN cells and rounded outwards to 0.01; busiest first."""
        rows, cols = self.seconds.shape
        busy = (self.seconds >= max(share * self.total_seconds, min_seconds)).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(busy, connectivity=8)
        regions = []
        for label in range(1, count):
            x, y, w, h = (int(v) for v in stats[label][:4])
            c0, r0 = max(x - BUSY_MARGIN, 0), max(y - BUSY_MARGIN, 0)
            c1, r1 = min(x + w + BUSY_MARGIN, cols), min(y + h + BUSY_MARGIN, rows)
            regions.append(BusyRegion(_floor(c0 / cols), _floor(r0 / rows), _ceil(c1 / cols), _ceil(r1 / rows),
                                      round(float(self.seconds[labels == label].max()), 2)))
        return sorted(_outermost(regions), key=lambda r: -r.seconds)

    def render(self, path: Path, width: int = 640) -> None:
        """Write the map as a PNG: the average picture in grey, seconds of motion in colour over it
        (scaled to the hottest cell), a grid every 0.1 labelled in normalised coordinates."""
        height = round(width * 3 / 4)
        if self._background is not None and self._samples:
            mean = self._background / self._samples
            height = max(1, round(width * mean.shape[0] / mean.shape[1]))
            grey = cv2.resize(mean, (width, height), interpolation=cv2.INTER_AREA).clip(0, 255).astype(np.uint8)
        else:
            grey = np.full((height, width), 96, np.uint8)
        picture = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        peak = float(self.seconds.max())
        if peak > 0:
            level = cv2.resize((self.seconds / peak).astype(np.float32), (width, height),
                               interpolation=cv2.INTER_NEAREST)
            colour = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_JET)
            alpha = np.where(level > 0, 0.25 + 0.45 * level, 0.0)[..., None]
            picture = (picture * (1 - alpha) + colour * alpha).astype(np.uint8)
        _draw_grid(picture)
        label = f"motion seen: up to {peak:.1f} s per cell" if peak > 0 else "no motion detected"
        cv2.putText(picture, label, (6, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)
        ok, data = cv2.imencode(".png", picture)
        if not ok:
            raise ConsentcamError(f"{path}: could not encode the heatmap")
        try:
            path.write_bytes(data.tobytes())
        except OSError as exc:
            raise ConsentcamError(f"{path}: cannot write the heatmap: {exc.strerror or exc}") from exc


def _floor(v: float) -> float:
    return max(0.0, float(np.floor(v * 100 + 1e-6)) / 100)


def _ceil(v: float) -> float:
    return min(1.0, float(np.ceil(v * 100 - 1e-6)) / 100)


def _draw_grid(picture: np.ndarray) -> None:
    height, width = picture.shape[:2]
    for tenth in range(1, 10):
        x, y = round(width * tenth / 10), round(height * tenth / 10)
        cv2.line(picture, (x, 0), (x, height - 1), (200, 200, 200), 1)
        cv2.line(picture, (0, y), (width - 1, y), (200, 200, 200), 1)
        text = f"0.{tenth}"
        cv2.putText(picture, text, (x + 2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.putText(picture, text, (2, y - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
