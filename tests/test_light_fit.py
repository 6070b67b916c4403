"""edge/motion/light_fit.py on its own: structure the light draws is light, a subject is not."""

from __future__ import annotations

import numpy as np

from edge.motion.light_fit import LIGHT, SUBJECT, LightFit, _cells

W, H, FPS = 160, 120, 15.0
CELLS = (W // 4, H // 4)


def _pictures(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Band-pass images of a still scene under the sky alone and of what the sun adds to it (its
    shadows' edges and the texture it lights)."""
    rng = np.random.default_rng(seed)
    sky = rng.normal(0, 3, (H, W)).astype(np.float32)
    sun = (1.5 * sky).copy()
    sun[:, 40:] = 0  # the house's shadow: the sun lights only the left quarter...
    sun[:, 38:42] += 25.0  # ...and draws an edge where its shadow begins
    return sky, sun


def _run(frames: int, picture, changed_from: int, changed_cells: np.ndarray) -> LightFit:
    fit = LightFit(FPS, (W, H), CELLS)
    rng = np.random.default_rng(7)
    for i in range(frames):
        band = picture(i) + rng.normal(0, 0.5, (H, W)).astype(np.float32)
        level = 100.0 * (1.0 + 0.3 * min(1.0, max(0.0, (i - 30) / 20)))  # the light rises from frame 30
        changed = changed_cells if i >= changed_from else np.zeros_like(changed_cells)
        fit.update(band, level, changed, None, 0.5)
    return fit


def _sun_from_30(sky: np.ndarray, sun: np.ndarray):
    def picture(i: int) -> np.ndarray:
        s = min(1.0, max(0.0, (i - 30) / 20))  # the sun comes out over 20 frames
        return sky + s * sun
    return picture


def test_an_edge_the_sun_draws_is_light() -> None:
    sky, sun = _pictures(1)
    edge = np.zeros((CELLS[1], CELLS[0]), bool)
    edge[:, 9:11] = True  # the cells of the shadow's edge change against the background late in the fade
    fit = _run(50, _sun_from_30(sky, sun), 44, edge)
    assert (fit.state[edge] == LIGHT).mean() > 0.9, fit.state[edge]


def test_a_subject_arriving_as_the_sun_comes_out_is_not_light() -> None:
    sky, sun = _pictures(2)
    light = _sun_from_30(sky, sun)
    rng = np.random.default_rng(3)
    coat = rng.normal(0, 6, (24, 12)).astype(np.float32)

    def picture(i: int) -> np.ndarray:
        img = light(i).copy()
        if i >= 40:  # walks in from the right, 2 px a frame, into the still part of the picture
            x = max(100, 148 - 2 * (i - 40))
            img[60:84, x:x + 12] = coat[:, : min(12, W - x)]
        return img

    body = np.zeros((CELLS[1], CELLS[0]), bool)
    body[15:21, 25:37] = True
    fit = _run(70, picture, 41, body)
    assert (fit.state[body] == SUBJECT).mean() > 0.9, fit.state[body]


def test_cell_sums_are_a_plain_reduction_over_each_cell() -> None:
    rng = np.random.default_rng(11)
    pixels = (rng.normal(0, 5, (3, H // 2, W // 2)) ** 2).astype(np.float32)
    plain = pixels.reshape(3, CELLS[1], 2, CELLS[0], 2).sum(axis=(2, 4))
    assert np.array_equal(_cells(pixels), plain)


def test_squares_kept_across_fits_match_the_images_squared_after_the_gate_was_closed() -> None:
    """The fit squares only the newest image when it ran on the frame before; after frames without a
    fit (the light still) every stored image must be squared again, not left as it was."""
    fit = LightFit(FPS, (W, H), CELLS)
    rng = np.random.default_rng(5)
    still = np.zeros((CELLS[1], CELLS[0]), bool)
    fitted = []
    for i in range(100):
        level = 100.0 + 5.0 * (i % 2) if 20 <= i < 25 or i >= 90 else 100.0  # the light moves, then rests
        fit.update(rng.normal(0, 2, (H, W)).astype(np.float32), level, still, None, 2.0)
        if fit._squared_at == fit._stored:  # the fit ran on this frame
            assert np.array_equal(fit._squares, fit._small * fit._small), i
            fitted.append(i)
    assert fitted[-1] == 99 and 89 not in fitted and len(fitted) >= 20, fitted  # (a fit, a gap, a fit)
