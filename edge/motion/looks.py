"""The scene as it looked before the light last changed: a second look for marks the light left behind.

When a subject crosses a cast shadow's edge just as a cloud uncovers the sun, the edge's cells are
marked as the subject's (its step is in their paths, light_fit.py). Once the subject has gone they
still differ from the background, which was learnt in the shade, and the event runs on until the
background has learnt the sunlit edge, often for many seconds. But the camera saw that edge before
the cloud came. So the detector keeps its background as it was when each of the last LOOKS changes
of light began, in the cells that held no object then and had learnt none lately (a visitor who
waited long enough to be learnt is not the scene: a look-alike who later stands in the same place
would fit it). A cell marked while the light changed, that has held still since, and whose picture
fits one of those backgrounds again (all but MISFIT of its pixels) shows the scene under a light
seen before: its background takes the picture at once, and the mark clears. A subject does not fit a
background it was not in, and a swaying branch does not hold still. A light never seen before (the
first cloud of the day) has no look: there the event still runs on until the background learns it.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.motion.arrays import cell_fraction, cell_pixels

LOOKS = 2  # changes of light remembered: the sky's look and the sun's
MISFIT = 0.05  # share of a cell's pixels that may differ from a look for the cell to fit it (4x4-pixel cells: none)


class Looks:
    """The detector's background (normalised band-pass) from before each of the last LOOKS changes of
    light, and which cells of it may be trusted (none of them or their neighbours held an object)."""

    def __init__(self, work: tuple[int, int], cells: tuple[int, int]) -> None:
        self._work = work  # working size, (w, h)
        self._cells = cells  # cell grid, (w, h)
        self._kernel = np.ones((3, 3), np.uint8)
        self._looks: list[tuple[np.ndarray, np.ndarray]] = []

    def __bool__(self) -> bool:
        return bool(self._looks)

    def clear(self) -> None:
        """After a re-seed (camera bumped, IR switch) the old looks describe another picture."""
        self._looks = []

    def take(self, background: np.ndarray, clean: np.ndarray) -> None:
        """Keep `background` as the look from before this change of light; `clean`: cells with no
        object and no mark in them now, and nothing learnt there lately."""
        trusted = cv2.erode(clean.view(np.uint8), self._kernel) > 0
        self._looks = [*self._looks, (background.copy(), trusted)][-LOOKS:]

    def heal(self, z: np.ndarray, background: np.ndarray, candidates: np.ndarray, threshold: float) -> int:
        """Where a candidate cell's picture `z` fits a look, copy it into `background` (in place, only
        the pixels that fit); return how many cells healed."""
        healed = 0
        for look, trusted in reversed(self._looks):  # (the newest first)
            cells = candidates & trusted
            if not cells.any():
                continue
            fits = cv2.absdiff(z, look) <= threshold
            misfit = cell_fraction(cell_pixels(cells, self._work) & ~fits, self._cells)
            ok = cells & (misfit <= MISFIT)
            if ok.any():
                np.copyto(background, z, where=cell_pixels(ok, self._work) & fits)
                candidates = candidates & ~ok
                healed += int(np.count_nonzero(ok))
        return healed
