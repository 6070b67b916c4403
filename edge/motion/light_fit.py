"""What the light can do to the picture's structure, and which changed cells only did that.

Outdoors the light has few causes: the sky and the sun (or a lamp). Each lights the scene with its own
pattern (the sun's stops at the shadows' edges), and the picture is their sum times the camera's gain.
So the band-pass image of a still scene (detector step 1, before the divisor: fine structure is linear
in the picture) is, at any moment, a mix of one image per light, with weights that are the same
everywhere; when a cloud covers the sun, or the exposure follows, only the weights change. Over the last
FIT_SPAN s every pixel's path through time is then a mix of the same two paths: the sky's weight and
the sun's. A fading or returning shadow edge follows them; a subject's arrival is a step that they
cannot make (unless the light itself stepped), whatever its brightness.

`LightFit` keeps every other pixel of the last FIT_SPAN s of band-pass images and their dot products.
While the light changes (the mean brightness moved 2 % in FIT_SPAN s, or the second path is clearly
stronger than noise's, and OPEN_AFTER s after), it takes the two strongest paths (eigenvectors of the
frames' dot products) and measures per cell how much of its pixels' variation they leave, against
the median cell's (noise). Cells they explain, while they explain most cells that moved, are *lit*
for OPEN_AFTER s. A cell that starts to change against the detector's background then:
* is a subject's if its path has a step the light's paths cannot make (once the second path is clear),
  or if it was part of a reported object in the last RECENT s (taken when the light began to change,
  so that the light's own edges do not spread that guard);
* waits (PENDING, not reported) at least MIN_WAIT frames if it was lit lately, and up to PENDING_FOR s
  while a change of light has only just begun and leaves new structure in many places (new shadow
  edges follow a path that is not clear yet); it is light if the paths then explain it;
* is WEAK, a subject's for want of a verdict, if it waited too long or changed while the paths could
  not judge it; a weak mark the paths explain for MIN_WAIT frames becomes light.
A dim, or the exposure alone, moves the picture along one path, and the second strongest is then a
subject's own: while the strongest path alone explains ONE_PATH of what moved and leaves fewer than
STRUCT_BLOBS separate places unexplained (new shadow edges leave many), cells are judged against it
alone. While the paths explain under PARTLY of what moved, waiting cells are a subject's at once
(headlights sweeping). The marks are sticky: a light cell that something moves through is a
subject's until it stops changing against the background. Light cells are not objects, and the
background learns them with a LIGHT_LEARN time constant (detector.py).
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.motion.arrays import median_in_place

FIT_SPAN = 1.0  # seconds of each pixel's path that are judged
FIT_NEAR = 0.2  # seconds over which a change of brightness means the light is changing now
LIGHT_MOVES = 0.03  # sqrt(second path's energy / first's) over FIT_SPAN that opens the gate
LEVEL_MOVES = 0.02  # a change of mean brightness over FIT_SPAN that is worth fitting for
LEVEL_NOW = 0.01  # a change of mean brightness over FIT_NEAR during which new changes wait to be judged
RECENT = 1.0  # seconds after a cell was last part of a reported object in which it cannot become light
PARTLY = 0.3  # share of the moved cells a change of light (not headlights sweeping) explains at least
STRUCT_BLOBS = 3  # separate unexplained regions that mean the light is drawing new structure
OPEN_AFTER = 2.0  # seconds after the light last changed in which cells may still become light
PENDING_FOR = 0.6  # seconds a cell that began to change with the light waits to be explained
UNEXPLAINED = 0.05  # share of a cell's change (energy) the paths may leave for it to be light
MIN_WAIT = 2  # frames a changed cell waits before it can be light (a subject's step is in its path by then)
EXPLAINED = 0.7  # share of the moved cells (away from objects) the paths must explain to be trusted
STRONG = 8.0  # the second path must be this many times stronger than noise's for the fit to be trusted
ONE_PATH = 0.8  # share of the moved cells the strongest path alone explains when the light has one path
MANY_MOVED = 50  # cells that must have moved for that share to mean anything
MOVED = 4.0  # a cell's variation over FIT_SPAN must be this many times its noise's to be judged
RESIDUAL_NOISE = 3.0  # a cell's residual is unexplained beyond this many times its expected noise energy

# WEAK: taken for a subject's for want of a verdict (it waited too long, or changed while the paths could not
# judge it); unlike SUBJECT it may still be found to be light
CLEAN, LIGHT, SUBJECT, PENDING, WEAK = 0, 1, 2, 3, 4


class LightFit:
    def __init__(self, fps: float, work: tuple[int, int], cells: tuple[int, int]) -> None:
        ww, wh = work
        self._span = max(2, round(fps * FIT_SPAN))
        self._near = max(1, round(fps * FIT_NEAR))
        # every other pixel of the band-pass images of the last FIT_SPAN s, and their dot products
        self._small = np.zeros((self._span + 1, wh // 2, ww // 2), np.float32)
        # the images squared, kept while the fit runs on consecutive frames (squared once, not once per fit)
        self._squares = np.zeros_like(self._small)
        self._squared_at = -1  # the frame (count of stored images) whose image was squared last
        self._gram = np.zeros((self._span + 1, self._span + 1), np.float64)
        self._levels = np.zeros(self._span + 1)
        self._stored = 0
        self._per_pixel = np.zeros((3, (wh // 2) * (ww // 2)), np.float32)
        self._open_frames = round(fps * OPEN_AFTER)
        self._pending_frames = max(1, round(fps * PENDING_FOR))
        self._open = 0  # frames left in which cells may become light
        self._struct_left = 0  # frames left in which new changes wait to be judged
        self._kernel = np.ones((3, 3), np.uint8)
        self.state = np.zeros((cells[1], cells[0]), np.int8)
        self._waited = np.zeros((cells[1], cells[0]), np.int16)
        self._lit = np.zeros((cells[1], cells[0]), np.int32)  # frames left in which a cell counts as lit
        self._recent = np.zeros((cells[1], cells[0]), np.int32)  # frames left in which a cell counts as an object's
        self._recent_frames = round(fps * RECENT)
        self._held = np.zeros((cells[1], cells[0]), bool)
        self._in_change = np.zeros((cells[1], cells[0]), bool)  # marked while the light was changing
        self.light_moves = 0.0  # the second path's size against the first's in the last fit: it reopens the gate
        self.strength = 0.0
        self.n_moved = 0
        self.one_path = False
        self.explained = 0.0
        self.judged = False

    def reset(self) -> None:
        """After a re-seed everything matches the new background: every cell is clean."""
        self.state[:] = CLEAN
        self._lit[:] = 0
        self._waited[:] = 0
        self._open = 0
        self._struct_left = 0
        self._in_change[:] = False

    @property
    def open(self) -> bool:
        """Is the light changing (or did it, within OPEN_AFTER s)?"""
        return self._open > 0

    def marks_of_change(self) -> np.ndarray:
        """Cells marked as a subject's (or for want of a verdict) while the light was changing: those
        a change of light may have left behind (looks.py)."""
        return ((self.state == SUBJECT) | (self.state == WEAK)) & self._in_change

    def update(self, band: np.ndarray, level: float, changed: np.ndarray, protected: np.ndarray | None,
               noise: float) -> np.ndarray | None:
        """Store this frame's band-pass image; return the cells that are not objects now, light or
        waiting to be judged (None: none). `changed`: cells changed against the background;
        `protected`: cells of last frame's objects."""
        n = self._span + 1
        slot = self._stored % n
        small = self._small
        np.copyto(small[slot], band[::2, ::2])
        dots = small.reshape(n, -1) @ small[slot].ravel()
        self._gram[slot, :] = dots
        self._gram[:, slot] = dots
        self._levels[slot] = level
        self._stored += 1
        state = self.state
        recent = self._recent
        np.subtract(recent, 1, out=recent, where=recent > 0)
        if protected is not None:
            recent[protected] = self._recent_frames
        if self._open <= 0:
            # while the light is still, the objects of the last RECENT s; once it changes, those of
            # before (what the light's own edges make objects during it must not spread this guard)
            np.greater(recent, 0, out=self._held)
        if self._stored < n:
            self._settle(changed)
            return None
        old = self._levels[(slot + 1) % n]
        if abs(level - old) > LEVEL_MOVES * max(old, 8.0):
            self._open = self._open_frames
        if self._open <= 0 and not (state == LIGHT).any() and not (state == PENDING).any():
            self._settle(changed)
            return None
        lit_now, bad, core = self._judge(noise, self._held)
        trusted = self.strength > STRONG or self.one_path
        if self.light_moves > LIGHT_MOVES and self.strength > STRONG:  # (not noise's path: night, rain)
            self._open = self._open_frames
        # a cell whose structure the light was seen changing (and nothing else since) may cross the
        # detector's threshold later (near the end of a fade, or as the exposure follows)
        lit = self._lit
        lit[lit_now] = self._open_frames
        lit[bad] = 0
        np.subtract(lit, 1, out=lit, where=lit > 0)
        new = changed & (state == CLEAN)
        self._in_change[new] = True
        held = self._held  # part of an object lately (it may have been learnt, or re-seeded with)
        state[new & held] = SUBJECT
        new &= ~held
        # (lit lately: it waits a moment too, so that a subject stepping in shows its step first)
        seen = new & (lit > 0)
        state[seen] = PENDING
        self._waited[seen] = 0
        new &= ~seen
        if trusted:  # a path the light's cannot make: a subject's step
            state[new & core] = SUBJECT
            new &= ~core
        # a change of light that has only just begun is not in either picture yet: what changes with it
        # waits a moment to be judged (only while the brightness is moving)
        then = self._levels[(slot - self._near) % n]
        if abs(level - then) > LEVEL_NOW * max(then, 8.0) and self._structural(bad | new):
            self._struct_left = self._pending_frames
        self._struct_left -= 1
        if self._open > 0 and self._struct_left > 0:
            state[new] = PENDING
            self._waited[new] = 0
        else:
            state[new] = WEAK
        pending = state == PENDING
        state[pending & lit_now & (self._waited >= MIN_WAIT)] = LIGHT
        waiting = state == PENDING
        self._waited[waiting] += 1
        timed_out = waiting & (self._waited >= self._pending_frames)
        state[timed_out] = WEAK
        if self.explained < PARTLY and self.n_moved >= STRUCT_BLOBS:
            # the light's paths explain little of what moved: headlights sweeping, or a subject's own step
            # while the light only dims (one path, the subject's the second)
            state[waiting] = SUBJECT
        if trusted:
            state[waiting & core] = SUBJECT
        weak = state == WEAK
        if trusted:
            state[weak & core] = SUBJECT
        # a weak mark the light explains for MIN_WAIT frames in a row is light after all
        lit_weak = weak & lit_now
        self._waited[weak & ~lit_now] = 0
        self._waited[lit_weak] += 1
        state[lit_weak & (self._waited > MIN_WAIT)] = LIGHT
        state[(state == LIGHT) & bad & changed] = SUBJECT
        state[~changed] = CLEAN
        self._open -= 1
        quiet = (state == LIGHT) | (state == PENDING)
        return quiet if quiet.any() else None

    def _structural(self, unknown: np.ndarray) -> bool:
        """Does the light draw new structure in many places at once (shadow edges fading in), which
        the fit cannot explain yet (`unknown`: cells it leaves unexplained, or that begin to change
        against the background now)? A subject's is one or two regions."""
        if np.count_nonzero(unknown) < STRUCT_BLOBS:
            return False
        n, _ = cv2.connectedComponents(unknown.view(np.uint8), connectivity=8)
        return n - 1 >= STRUCT_BLOBS

    def light(self) -> np.ndarray:
        return self.state == LIGHT

    def _settle(self, changed: np.ndarray) -> None:
        """While the light is still: what starts to change is a subject's until it is clean again."""
        state = self.state
        new = changed & (state == CLEAN)
        self._in_change[new] = False
        state[new] = SUBJECT
        state[state == PENDING] = WEAK
        state[~changed] = CLEAN

    def _squared(self) -> np.ndarray:
        """The stored images squared (only the newest is squared again when the fit ran on the frame
        before; the gate is closed most of the time, and then nothing is squared)."""
        small, squares = self._small, self._squares
        if self._squared_at == self._stored - 1:
            newest = (self._stored - 1) % small.shape[0]
            np.multiply(small[newest], small[newest], out=squares[newest])
        else:
            np.multiply(small, small, out=squares)
        self._squared_at = self._stored
        return squares

    def _judge(self, noise: float, objects: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Is each pixel's path over the last FIT_SPAN s a mix of the picture-wide light's two paths?
        Returns the cells whose path it is (and that changed), and those whose path it is not (with
        their neighbours)."""
        k, m = self._small.shape[0], self._small[0].size
        series = self._small.reshape(k, m)
        w, v = np.linalg.eigh(self._gram)
        lights = v[:, -2:].astype(np.float32)  # the two strongest paths in time: the sky's and the sun's
        sigma2 = noise * noise  # a band-pass pixel's noise variance (noise: median change over 1/15 s, about sigma)
        self.strength = float(w[-2]) / (m * sigma2)  # the second path's energy against pure noise's
        self.light_moves = float(np.sqrt(max(w[-2], 0.0) / w[-1])) if w[-1] > 0 else 0.0
        # per pixel: what the two paths leave, the variation about the mean, what the strongest alone leaves
        total = self._squared().reshape(k, m).sum(axis=0)
        along = lights.T @ series
        along *= along
        mean = series.sum(axis=0) * (1.0 / k)
        per_pixel = self._per_pixel
        np.subtract(total, along[0] + along[1], out=per_pixel[0])
        np.subtract(total, k * mean * mean, out=per_pixel[1])
        np.subtract(total, along[1], out=per_pixel[2])
        e_res, e_var, e_res1 = _cells(per_pixel.reshape(3, *self._small[0].shape))
        # the noise's share of a cell's residual, from the residual itself: most cells hold a still scene
        # (the detector's noise estimate is for the whole band-pass image and has a floor of its own)
        floor_res = max(median_in_place(e_res.flatten()), 1e-3)  # (copies: the partition reorders them)
        floor1 = max(median_in_place(e_res1.flatten()), 1e-3)
        floor_var = floor_res * (k - 1) / (k - 2)
        moved = e_var > MOVED * floor_var
        unexplained = (e_res > UNEXPLAINED * (e_var - floor_var) + RESIDUAL_NOISE * floor_res) & moved
        # the paths span the light when they explain most of the cells it moved (counted, not weighed: a
        # subject's cells are few but their change is large), away from the objects of late
        scene = moved & ~objects
        n_scene = np.count_nonzero(scene)
        self.explained = 1.0 - np.count_nonzero(unexplained & scene) / n_scene if n_scene else 0.0
        self.n_moved = n_scene
        # a dim (or the exposure alone) moves the picture along one path: then the second strongest is a
        # subject's own, and a cell is judged against the first path alone
        unexplained1 = (e_res1 > UNEXPLAINED * (e_var - floor_var) + RESIDUAL_NOISE * floor1) & moved
        ex1 = 1.0 - np.count_nonzero(unexplained1 & scene) / n_scene if n_scene else 0.0
        self.one_path = (n_scene >= MANY_MOVED and ex1 >= ONE_PATH and self.strength <= STRONG
                         and not self._structural(unexplained1 & scene))
        if self.one_path:
            unexplained, self.explained = unexplained1, ex1
        self.judged = (self.strength > STRONG or self.one_path) and self.explained > EXPLAINED
        bad = unexplained
        if bad.any():  # (a new array: the caller keeps the undilated cells as they are)
            bad = cv2.dilate(bad.view(np.uint8), self._kernel) > 0
        explained = moved & ~bad if self.judged else np.zeros_like(bad)
        return explained, bad, unexplained


def _cells(pixels: np.ndarray) -> np.ndarray:
    """Sum of each cell's samples (every other pixel of a 4x4-pixel cell: 2x2) over the last two axes:
    each row's pairs, then pairs of rows (as a reduction over both short axes adds them, for less)."""
    pairs = pixels[..., 0::2] + pixels[..., 1::2]
    return pairs[..., 0::2, :] + pairs[..., 1::2, :]
