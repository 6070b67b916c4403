"""Small array helpers that the detector's parts share: a fast median, and moving between cells and pixels."""

from __future__ import annotations

import cv2
import numpy as np


def median_in_place(values: np.ndarray) -> float:
    """np.median of an array, which it reorders (a partial sort in place, no checks). For an even
    count the lower middle value is the largest of the lower half: one partition instead of two
    (numpy's two-point partition costs about 6x more on these arrays, which hold many equal values)."""
    flat = values.ravel()  # (a view of a contiguous array: the partition reorders `values` itself)
    n = flat.size
    k = n // 2
    flat.partition(k)
    if n % 2:
        return float(flat[k])
    return float(0.5 * (flat[:k].max() + flat[k]))


def cell_fraction(pixels: np.ndarray, cells: tuple[int, int]) -> np.ndarray:
    """Per cell of a (w, h) grid, the fraction of its pixels set in a boolean pixel map."""
    return cv2.resize(pixels.astype(np.float32), cells, interpolation=cv2.INTER_AREA)


def cell_pixels(cell_map: np.ndarray, work: tuple[int, int]) -> np.ndarray:
    """A boolean cell map spread over the (w, h) pixels of its cells (the reverse of cell_fraction)."""
    return cv2.resize(cell_map.view(np.uint8), work, interpolation=cv2.INTER_NEAREST) > 0
