"""The Frigate-style peer used by bench/motion_daemon.py (our re-implementation of Frigate's documented
motion stage, not Frigate): each documented setting does what the documentation says."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

# bench/ is scripts, not an installed package: load the module from its file
_PATH = Path(__file__).resolve().parent.parent / "bench" / "peers" / "frigate_style.py"
_spec = importlib.util.spec_from_file_location("bench_peers_frigate_style", _PATH)
assert _spec is not None and _spec.loader is not None
frigate_style = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = frigate_style  # dataclasses look their module up by name
_spec.loader.exec_module(frigate_style)
FrigateDocumentedDefaults = frigate_style.FrigateDocumentedDefaults
FrigateStyleMotion = frigate_style.FrigateStyleMotion

FLAT = FrigateDocumentedDefaults(improve_contrast=False)


def _grey(value: int = 100, w: int = 160, h: int = 100) -> np.ndarray:
    return np.full((h, w), value, np.uint8)


def _with_square(x: int, y: int, size: int, value: int, base: int = 100) -> np.ndarray:
    img = _grey(base)
    img[y:y + size, x:x + size] = value
    return img


def test_documented_defaults() -> None:
    d = FrigateDocumentedDefaults()
    assert (d.threshold, d.contour_area, d.frame_alpha, d.frame_height, d.lightning_threshold, d.improve_contrast) \
        == (30, 10, 0.01, 100, 0.8, True)


def test_a_still_picture_is_not_motion_and_a_moving_square_is() -> None:
    det = FrigateStyleMotion(FLAT)
    for _ in range(5):
        assert not det.process(_grey()).active
    r = det.process(_with_square(40, 30, 12, 200))
    assert r.active and len(r.boxes) == 1 and not r.recalibrated
    x, y, w, h = r.boxes[0]
    assert 38 <= x <= 40 and 28 <= y <= 30 and 12 <= w <= 14 and 12 <= h <= 14


def test_threshold_is_a_luma_difference() -> None:
    below = FrigateStyleMotion(FLAT)
    above = FrigateStyleMotion(FLAT)
    below.process(_grey())
    above.process(_grey())
    assert not below.process(_with_square(40, 30, 12, 100 + 29)).active
    assert above.process(_with_square(40, 30, 12, 100 + 32)).active


def test_contour_area_drops_small_groups() -> None:
    det = FrigateStyleMotion(FLAT)
    det.process(_grey())
    assert not det.process(_with_square(40, 30, 1, 255)).active  # one pixel: a 3x3 group of area 4 < 10
    det = FrigateStyleMotion(FLAT)
    det.process(_grey())
    assert det.process(_with_square(40, 30, 3, 255)).active  # 3x3 pixels: a 5x5 group of area 16


def test_frames_are_resized_to_the_frame_height() -> None:
    det = FrigateStyleMotion(FLAT)
    det.process(np.full((240, 320), 100, np.uint8))
    r = det.process(np.pad(np.full((48, 48), 220, np.uint8), ((96, 96), (136, 136)), constant_values=100))
    assert r.active
    _x, _y, w, h = r.boxes[0]
    assert 18 <= w <= 23 and 18 <= h <= 23  # 48 px at 240 high is 20 px at 100 high (+ grouping)


def test_a_whole_picture_change_is_reported_once_then_recalibrates() -> None:
    det = FrigateStyleMotion(FLAT)
    for _ in range(3):
        det.process(_grey(60))
    r = det.process(_grey(200))  # lights on: everything changed
    assert r.active and r.recalibrated and det.recalibrations == 1
    assert not det.process(_grey(200)).active  # the background restarted from the new picture
    moved = FrigateStyleMotion(FLAT)
    moved.process(_grey(60))
    assert not moved.process(_with_square(0, 0, 70, 200, base=60)).recalibrated  # under 80 % of the picture


def test_the_background_learns_at_frame_alpha() -> None:
    det = FrigateStyleMotion(FLAT)
    det.process(_grey(100))
    parked = _with_square(40, 30, 12, 140)
    frames = 0
    while det.process(parked).active and frames < 1000:
        frames += 1
    # |140 - bg| <= 30 once 1 - 0.99^n >= 1/4: n = 29 frames, give or take rounding
    assert 25 <= frames <= 32


def test_every_nth_frame_repeats_the_last_result() -> None:
    det = FrigateStyleMotion(FLAT, every=3)
    det.process(_grey())
    a = det.process(_with_square(40, 30, 12, 220))  # skipped: repeats the result of frame 0
    b = det.process(_with_square(40, 30, 12, 220))
    c = det.process(_with_square(40, 30, 12, 220))  # analysed
    assert not a.active and not b.active and c.active and det.analysed == 2


def test_improve_contrast_stretches_a_dim_picture() -> None:
    # a 10-level change in a dim, flat-contrast picture is below threshold 30 without the stretch
    rng = np.random.default_rng(1)
    dim = (40 + rng.integers(0, 40, (100, 160))).astype(np.uint8)
    brighter = dim.copy()
    brighter[30:50, 40:60] += 15
    plain, stretched = FrigateStyleMotion(FLAT), FrigateStyleMotion()
    plain.process(dim)
    stretched.process(dim)
    assert not plain.process(brighter).active
    assert stretched.process(brighter).active
