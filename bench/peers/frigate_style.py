"""A re-implementation of Frigate's DOCUMENTED motion stage with its documented default settings.

This is NOT Frigate and contains none of its code (Frigate cannot be installed here: it is not on
PyPI or in Debian). It is written from Frigate's public documentation only: the "Tuning Motion
Detection" page and the `motion:` section of the reference configuration
(docs.frigate.video/configuration/motion_detection and /configuration/reference), which say:

* frame_height 100: the frame is resized to 100 px high before anything else ("Higher values will
  result in more granular motion detection at the expense of higher CPU usage").
* improve_contrast True: "dynamic contrast improvement" (helps at night, more sensitive by day).
* frame_alpha 0.01: "Alpha value passed to cv2.accumulateWeighted when averaging frames to
  determine the background".
* threshold 30: "The threshold passed to cv2.threshold to determine if a pixel is different enough
  to be counted as motion" (luminance change, 1-255).
* contour_area 10: "Minimum size in pixels in the resized motion image that counts as motion";
  changed pixels "are grouped together" and the contour area decides which groups qualify.
* lightning_threshold 0.8: "The percentage of the image used to detect lightning or other
  substantial changes where motion detection needs to recalibrate"; the frame that exceeds it
  still reports its motion, then the detector recalibrates instead of analysing further.
* detect fps 5 (Frigate's default for the detect role): see `every` below.

Where the documentation does not say HOW a stage works we made a plain, stated choice:
the resize uses area averaging (it doubles as the blur); "dynamic contrast improvement" is a
per-frame stretch of the 4th-96th percentile of luma to 0-255; grouping is one 3x3 dilation
followed by external contours; "percentage of the image" is the fraction of changed (grouped)
pixels; recalibrating means restarting the background from the current frame. Frigate's real
implementation may differ in these details.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

LABEL = ("a re-implementation of Frigate's documented motion stage with its default settings "
         "(from the documentation, not Frigate's code), not Frigate itself")


@dataclass(frozen=True)
class FrigateDocumentedDefaults:
    threshold: int = 30
    contour_area: int = 10
    frame_alpha: float = 0.01
    frame_height: int = 100
    lightning_threshold: float = 0.8
    improve_contrast: bool = True
    contrast_percentiles: tuple[float, float] = (4.0, 96.0)  # our choice: the docs give no method


@dataclass
class PeerResult:
    active: bool
    score: float  # fraction of the resized frame that changed (0 when no group qualifies)
    boxes: list[tuple[int, int, int, int]]
    recalibrated: bool = False


class FrigateStyleMotion:
    """Frame differencing against a running-average background, as Frigate's docs describe it.

    `every` > 1 analyses only every n-th frame (Frigate's detect role runs at 5 fps by default);
    skipped frames repeat the last result, so the event logic sees one result per input frame.
    """

    def __init__(self, settings: FrigateDocumentedDefaults | None = None, *, every: int = 1) -> None:
        self.s = settings or FrigateDocumentedDefaults()
        self.every = max(1, int(every))
        self._avg: np.ndarray | None = None
        self._size: tuple[int, int] | None = None
        self._kernel = np.ones((3, 3), np.uint8)
        self._n = 0
        self._last = PeerResult(False, 0.0, [])
        self.recalibrations = 0
        self.analysed = 0

    def process(self, luma: np.ndarray) -> PeerResult:
        n = self._n
        self._n += 1
        if n % self.every:
            return self._last
        self._last = self._analyse(luma)
        return self._last

    def _resize(self, luma: np.ndarray) -> np.ndarray:
        h, w = luma.shape[:2]
        if self._size is None:
            fh = min(self.s.frame_height, h)
            self._size = (max(1, round(w * fh / h)), fh)
        return cv2.resize(luma, self._size, interpolation=cv2.INTER_AREA)

    def _contrast(self, img: np.ndarray) -> np.ndarray:
        lo, hi = np.percentile(img, self.s.contrast_percentiles)
        if hi - lo < 1.0:
            return img
        return cv2.convertScaleAbs(img, alpha=255.0 / (hi - lo), beta=-lo * 255.0 / (hi - lo))

    def _analyse(self, luma: np.ndarray) -> PeerResult:
        self.analysed += 1
        img = self._resize(luma)
        if self.s.improve_contrast:
            img = self._contrast(img)
        if self._avg is None:
            self._avg = img.astype(np.float32)
            return PeerResult(False, 0.0, [])
        diff = cv2.absdiff(img, cv2.convertScaleAbs(self._avg))
        _, changed = cv2.threshold(diff, self.s.threshold, 255, cv2.THRESH_BINARY)
        grouped = cv2.dilate(changed, self._kernel)
        contours, _ = cv2.findContours(grouped, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = [cv2.boundingRect(c) for c in contours if cv2.contourArea(c) >= self.s.contour_area]
        changed_fraction = cv2.countNonZero(grouped) / grouped.size
        if boxes and changed_fraction > self.s.lightning_threshold:
            # a substantial change (lightning, IR switch): report it once, then recalibrate
            self._avg = img.astype(np.float32)
            self.recalibrations += 1
            return PeerResult(True, changed_fraction, boxes, recalibrated=True)
        cv2.accumulateWeighted(img, self._avg, self.s.frame_alpha)
        return PeerResult(bool(boxes), changed_fraction if boxes else 0.0, boxes)
