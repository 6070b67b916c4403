"""MotionHeatmap: seconds of detected motion per grid cell, and the PNG drawn from them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import ConsentcamError
from edge.motion.heatmap import MAX_FRAME_GAP, BusyRegion, MotionHeatmap, _outermost

LUMA = np.full((120, 160), 100, np.uint8)


def test_seconds_accumulate_on_the_covered_cells_only() -> None:
    heat = MotionHeatmap(cols=10, rows=10)
    for i in range(11):  # 10 intervals of 0.1 s with the box present
        heat.add(i * 0.1, LUMA, [(0.0, 0.0, 0.2, 0.3)])
    assert heat.seconds[:3, :2] == pytest.approx(np.full((3, 2), 1.0))
    assert heat.seconds.sum() == pytest.approx(6 * 1.0)  # nothing outside the 2x3 cells
    assert heat.hottest(1)[0].seconds == pytest.approx(1.0)


def test_overlapping_boxes_count_once_and_frames_without_objects_add_nothing() -> None:
    heat = MotionHeatmap(cols=4, rows=4)
    heat.add(0.0, LUMA, [])
    heat.add(0.5, LUMA, [(0.0, 0.0, 0.5, 0.5), (0.25, 0.25, 0.5, 0.5)])  # overlap at cell (1, 1)
    heat.add(1.0, LUMA, [])
    assert heat.seconds[1, 1] == pytest.approx(0.5)
    assert heat.seconds[2, 2] == pytest.approx(0.5) and heat.seconds[3, 3] == 0.0
    assert heat.seconds.sum() == pytest.approx(0.5 * 7)  # 4 + 4 cells, one shared


def test_a_gap_in_the_file_is_credited_at_most_max_frame_gap() -> None:
    heat = MotionHeatmap(cols=2, rows=2)
    heat.add(0.0, LUMA, [(0.0, 0.0, 1.0, 1.0)])
    heat.add(30.0, LUMA, [(0.0, 0.0, 1.0, 1.0)])  # a stalled camera: 30 s without frames
    heat.add(29.0, LUMA, [(0.0, 0.0, 1.0, 1.0)])  # a timestamp going backwards adds nothing
    assert heat.seconds == pytest.approx(np.full((2, 2), MAX_FRAME_GAP))


def test_hottest_lists_cell_centres_hottest_first() -> None:
    heat = MotionHeatmap(cols=4, rows=2)
    heat.add(0.0, LUMA, [])
    heat.add(1.0, LUMA, [(0.75, 0.5, 0.25, 0.5)])  # cell (1, 3)
    heat.add(1.5, LUMA, [(0.75, 0.5, 0.25, 0.5), (0.0, 0.0, 0.25, 0.5)])  # and cell (0, 0)
    spots = heat.hottest(5)
    assert [(s.x, s.y, s.seconds) for s in spots] == [(0.875, 0.75, 1.5), (0.125, 0.25, 0.5)]


def test_render_draws_the_average_picture_and_the_hot_cells(tmp_path: Path) -> None:
    heat = MotionHeatmap(cols=8, rows=6, sample_every=1)
    dark_left = np.full((120, 160), 200, np.uint8)
    dark_left[:, :80] = 20
    for i in range(20):
        heat.add(i * 0.1, dark_left, [(0.5, 0.5, 0.5, 0.5)] if i >= 10 else [])
    out = tmp_path / "map.png"
    heat.render(out, width=320)
    picture = cv2.imread(str(out))
    assert picture.shape == (240, 320, 3)
    untouched_left, untouched_right = picture[60:100, 20:60], picture[20:60, 200:260]  # away from grid and text
    assert untouched_left.mean() < 60 < 150 < untouched_right.mean()  # the average picture, in grey
    hot = picture[150:200, 200:260].astype(int)
    assert (hot[..., 2] - hot[..., 1]).mean() > 40  # red over the box's quarter (JET at the top of its scale)
    assert np.ptp(untouched_right.astype(int), axis=2).max() == 0  # grey: no colour where nothing moved


def test_render_into_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    heat = MotionHeatmap()
    heat.add(0.0, LUMA, [])
    target = tmp_path / "a-directory.png"
    target.mkdir()
    with pytest.raises(ConsentcamError, match="cannot write the heatmap"):
        heat.render(target)


def test_busy_regions_are_the_areas_covered_for_a_fifth_of_the_file() -> None:
    heat = MotionHeatmap(cols=20, rows=10)
    for i in range(101):  # 10 s of frames
        boxes = [(0.75, 0.0, 0.2, 0.3)]  # a "tree" in the top right, reported all the time
        walker_x = i / 100  # a passer-by crossing the whole picture once, low down
        boxes.append((walker_x, 0.7, 0.05, 0.2))
        heat.add(i * 0.1, LUMA, boxes)
    assert heat.total_seconds == pytest.approx(10.0)
    regions = heat.busy_regions()
    assert len(regions) == 1, regions
    tree = regions[0]
    # cells 15..18 x 0..2, widened by two cells each way and clipped: x 13/20..1.0, y 0..5/10
    assert (tree.x0, tree.y0, tree.x1, tree.y1) == (0.65, 0.0, 1.0, 0.5)
    assert tree.seconds == pytest.approx(10.0)
    assert tree.polygon() == [[0.65, 0.0], [1.0, 0.0], [1.0, 0.5], [0.65, 0.5]]


def test_busy_regions_need_a_share_of_the_file_and_a_minimum_time() -> None:
    short = MotionHeatmap(cols=10, rows=10)
    for i in range(16):  # 1.5 s, all of it with the box: a fifth of the file but under 2 s
        short.add(i * 0.1, LUMA, [(0.4, 0.4, 0.2, 0.2)])
    assert short.busy_regions() == []
    assert len(short.busy_regions(min_seconds=1.0)) == 1
    long = MotionHeatmap(cols=10, rows=10)
    for i in range(301):  # 30 s, the box in the first 5 s only (a sixth of the file)
        long.add(i * 0.1, LUMA, [(0.4, 0.4, 0.2, 0.2)] if i < 50 else [])
    assert long.busy_regions() == []
    assert len(long.busy_regions(share=0.15)) == 1


def test_separate_busy_areas_are_separate_regions_busiest_first() -> None:
    heat = MotionHeatmap(cols=40, rows=30)
    for i in range(101):
        boxes = [(0.0, 0.0, 0.1, 0.1)]
        if i % 2:  # a second spot, reported in every other frame
            boxes.append((0.8, 0.8, 0.1, 0.1))
        heat.add(i * 0.1, LUMA, boxes)
    regions = heat.busy_regions()
    assert [(r.x0, r.y0) for r in regions] == [(0.0, 0.0), (0.75, 0.73)]
    assert regions[0].seconds > regions[1].seconds > 2.0


def test_a_busy_patch_inside_another_regions_rectangle_is_not_suggested_twice() -> None:
    # A ring of busy cells with a hot spot in its hole: two separate busy areas, but the ring's
    # rectangle already holds the spot, so one ignore polygon is suggested, with the spot's seconds.
    heat = MotionHeatmap(cols=40, rows=30)
    ring = [(0.2, 0.2, 0.4, 0.05), (0.2, 0.65, 0.4, 0.05), (0.2, 0.2, 0.05, 0.5), (0.55, 0.2, 0.05, 0.5)]
    for i in range(101):
        spot = [(0.38, 0.43, 0.05, 0.05)] if i >= 20 else []  # covered for 8 of the 10 s
        heat.add(i * 0.1, LUMA, ring[: 4 if i < 70 else 0] + spot)  # the ring for 7 s
    regions = heat.busy_regions()
    assert len(regions) == 1, regions
    ring_box = regions[0]
    assert ring_box.x0 < 0.38 and ring_box.x1 > 0.43 and ring_box.y0 < 0.43 and ring_box.y1 > 0.48
    assert ring_box.seconds == pytest.approx(8.0, abs=0.15)


def test_two_busy_patches_with_the_same_rectangle_are_suggested_once() -> None:
    # two patches a cell apart can round out to the same rectangle: one polygon, the larger seconds
    same = [BusyRegion(0.1, 0.1, 0.4, 0.4, 3.0), BusyRegion(0.1, 0.1, 0.4, 0.4, 5.0),
            BusyRegion(0.6, 0.6, 0.9, 0.9, 2.5)]
    assert _outermost(same) == [BusyRegion(0.1, 0.1, 0.4, 0.4, 5.0), BusyRegion(0.6, 0.6, 0.9, 0.9, 2.5)]
