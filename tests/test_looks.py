"""The background kept from before each change of light (edge/motion/looks.py), on real arrays."""

from __future__ import annotations

import numpy as np

from edge.motion.looks import LOOKS, Looks

WORK, CELLS = (32, 24), (8, 6)  # 4x4 pixels per cell, as in the detector
THRESHOLD = 0.5


def _scene(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, (WORK[1], WORK[0])).astype(np.float32)


def _cells(*where: tuple[int, int]) -> np.ndarray:
    cells = np.zeros((CELLS[1], CELLS[0]), bool)
    for x, y in where:
        cells[y, x] = True
    return cells


def _block(img: np.ndarray, x: int, y: int) -> np.ndarray:
    return img[4 * y:4 * y + 4, 4 * x:4 * x + 4]


def test_a_cell_that_shows_the_scene_as_it_was_before_the_light_changed_is_healed() -> None:
    sunny = _scene(1)
    looks = Looks(WORK, CELLS)
    looks.take(sunny, np.ones((CELLS[1], CELLS[0]), bool))
    background = _scene(2)  # learnt in the shade since
    now = sunny + 0.1  # the sun is back: the picture fits the old look within the threshold
    healed = looks.heal(now, background, _cells((3, 2)), THRESHOLD)
    assert healed == 1
    assert np.array_equal(_block(background, 3, 2), _block(now, 3, 2))
    assert np.array_equal(_block(background, 4, 2), _block(_scene(2), 4, 2))  # not a candidate: untouched


def test_a_subject_in_a_cell_does_not_fit_the_old_look() -> None:
    sunny = _scene(1)
    looks = Looks(WORK, CELLS)
    looks.take(sunny, np.ones((CELLS[1], CELLS[0]), bool))
    background = _scene(2)
    now = sunny.copy()
    _block(now, 3, 2)[1:3, 1:3] += 3.0  # a small subject: 4 of the cell's 16 pixels differ
    assert looks.heal(now, background, _cells((3, 2)), THRESHOLD) == 0
    assert np.array_equal(background, _scene(2))


def test_cells_that_held_an_object_when_the_look_was_taken_are_not_trusted() -> None:
    sunny = _scene(1)
    clean = np.ones((CELLS[1], CELLS[0]), bool)
    clean[2, 5] = False  # an object stood here: its neighbours are not trusted either
    looks = Looks(WORK, CELLS)
    looks.take(sunny, clean)
    background = _scene(2)
    assert looks.heal(sunny, background, _cells((4, 2), (5, 2)), THRESHOLD) == 0
    assert looks.heal(sunny, background, _cells((1, 2)), THRESHOLD) == 1


def test_only_the_last_looks_are_kept_and_a_reseed_forgets_them() -> None:
    looks = Looks(WORK, CELLS)
    everywhere = np.ones((CELLS[1], CELLS[0]), bool)
    for seed in range(10, 10 + LOOKS + 1):
        looks.take(_scene(seed), everywhere)
    oldest = _scene(10)
    assert looks.heal(oldest, _scene(2), _cells((1, 1)), THRESHOLD) == 0
    newest = _scene(10 + LOOKS)
    assert looks.heal(newest, _scene(2), _cells((1, 1)), THRESHOLD) == 1
    looks.clear()
    assert not looks
    assert looks.heal(newest, _scene(2), _cells((1, 1)), THRESHOLD) == 0
