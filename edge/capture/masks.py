"""Polygons from the config (normalised 0..1 coordinates) rasterised once to pixel masks."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

Polygon = Sequence[tuple[float, float]]


def rasterise(polygons: Sequence[Polygon], width: int, height: int) -> np.ndarray:
    """uint8 HxW mask: 255 inside any polygon, 0 elsewhere. Empty list: all zeros."""
    mask = np.zeros((height, width), np.uint8)
    if not polygons:
        return mask
    pts = [
        np.array([[round(x * (width - 1)), round(y * (height - 1))] for x, y in poly], np.int32)
        for poly in polygons
    ]
    cv2.fillPoly(mask, pts, 255)
    return mask
