"""The recorder: frames in, motion clips out, straight into the encrypted vault.

Driven by the daemon's frame loop: `process(frame)` per captured frame, `flush(now)` on shutdown.
Encoded packets always go into the RAM pre-roll ring; while an event records they also go
through the MPEG-TS muxer into the vault's ClipWriter. Detection runs on every frame unless the
loop has fallen behind a live source: then detection frames are skipped (counted, logged at most
every 10 s), never recorded packets. Vault errors are logged and never raised.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from edge.capture.frames import CapturedFrame, EncodedPacket
from edge.config import Config
from edge.motion.detector import MotionDetector
from edge.recording.events import Ended, EventMachine, Phase, Resumed, Started
from edge.recording.muxer import TsMuxer
from edge.recording.preroll import PreRoll

log = logging.getLogger("consentcam.recording")

MAX_LAG = 0.5  # seconds behind a live source before detection frames are skipped
WARN_EVERY = 10.0  # seconds between "falling behind" warnings
REOPEN_EVERY = 5.0  # seconds between attempts to open a clip after a vault error


@dataclass
class _Clip:
    writer: Any
    muxer: TsMuxer
    start: float
    part: int
    peak: float = 0.0
    boxes_frames: int = 0
    max_boxes: int = 0
    union: list[float] = field(default_factory=lambda: [1.0, 1.0, 0.0, 0.0])  # x0, y0, x1, y1
    # The clip keeps the wall clock it started on: `shift` is how far that clock has been stepped since
    # (negative: back), and `last_time` is the last packet written, on the clip's own clock.
    shift: float = 0.0
    last_time: float | None = None


class Recorder:
    def __init__(self, config: Config, vault: Any, *, camera_name: str = "camera", clock_synced: bool = True,
                 fps: float | None = None, size: tuple[int, int] | None = None,
                 detect_fps: float | None = None, codec: str = "h264") -> None:
        self.config = config
        self.vault = vault
        self.camera_name = camera_name
        self.clock_synced = clock_synced
        cam, rec, mot = config.camera, config.recording, config.motion
        self.fps = fps or cam.fps
        self.codec = codec  # of the packets: "hevc" for an H.265 camera recorded as it arrives
        width, height = size or (cam.width, cam.height)  # size: a copied stream's own
        self.width, self.height = width - width % 2, height - height % 2
        self.detector = MotionDetector(mot, detect_fps or self.fps)  # detect_fps: a camera's substream
        self.machine = EventMachine(min_duration=mot.min_duration, post_roll=rec.post_roll, merge_gap=rec.merge_gap)
        # Keep enough for pre-roll counted back from the FIRST motion (confirmed min_duration later),
        # plus a keyframe interval so the clip can start at a keyframe at or before that point.
        self._keep = rec.pre_roll + mot.min_duration + cam.keyframe_interval + 1.0
        self.preroll = PreRoll(self._keep)
        self._held: list[EncodedPacket] = []  # packets while holding (post-roll over, merge_gap open)
        self._clip: _Clip | None = None
        self._recorded_until: float | None = None  # time of the last packet in the last clip closed
        self._last_frame_time: float | None = None
        self._split_pending = False
        self._event_start: float | None = None
        self._parts = 0
        self._last_open_failure = -1e9
        self.motion_active = False
        self.last_score = 0.0
        self.frames = 0
        self.detected_frames = 0
        self.dropped_detection_frames = 0
        self.clips_closed = 0
        self.vault_errors = 0
        self.last_clip_id: str | None = None
        self._last_warn = -1e9
        self._dropped_since_warn = 0

    # -- status ---------------------------------------------------------------------------------------

    @property
    def recording(self) -> bool:
        return self._clip is not None

    @property
    def current_clip_id(self) -> str | None:
        return getattr(self._clip.writer, "clip_id", None) if self._clip else None

    def status(self) -> dict[str, Any]:
        return {
            "recording": self.recording, "clip_id": self.current_clip_id, "motion": self.motion_active,
            "score": round(self.last_score, 4), "phase": self.machine.phase.value, "frames": self.frames,
            "detected_frames": self.detected_frames, "dropped_detection_frames": self.dropped_detection_frames,
            "clips": self.clips_closed, "vault_errors": self.vault_errors, "last_clip_id": self.last_clip_id,
            "preroll_bytes": self.preroll.size,
        }

    # -- frame loop -----------------------------------------------------------------------------------

    def process(self, frame: CapturedFrame) -> None:
        self.frames += 1
        self._follow_clock(frame.time)
        transitions = []
        if frame.luma is None or self._behind(frame):
            self._note_dropped()
            # Unknown, so assume nothing changed: a skipped stretch neither starts nor ends an event.
            transitions = self.machine.update(frame.time, self.motion_active)
        else:
            result = self.detector.process(frame.luma)
            self.detected_frames += 1
            self.motion_active, self.last_score = result.active, result.score
            transitions = self.machine.update(frame.time, result.active)
            if self._clip is not None and result.active:
                self._note_motion(result.score, result.boxes)
        for tr in transitions:
            if isinstance(tr, Started):
                self._event_start = tr.start
                self._parts = 0
                self._open(tr.start, self.preroll.since(self._preroll_from(tr.start)))
                self._held = []
            elif isinstance(tr, Resumed):
                self._write_all(self._held)
                self._held = []
            elif isinstance(tr, Ended):
                self._close(tr.clip_end, tr.motion_end)
                self._held = []
                self._event_start = None
        for pkt in frame.packets:
            self.preroll.push(pkt, keep=self._keep)
            self._route(pkt)

    def flush(self, now: float) -> None:
        """Close the current clip properly (shutdown). Safe to call more than once."""
        for tr in self.machine.finish(now):
            if isinstance(tr, Ended):
                self._close(tr.clip_end, tr.motion_end)
        if self._clip is not None:  # e.g. a clip whose event was already over
            self._close(now, now)
        self._held = []

    close = flush

    # -- internals -----------------------------------------------------------------------------------

    def _follow_clock(self, now: float) -> None:
        """The wall clock stepped backwards (NTP on a Pi without an RTC): move the packets held for
        pre-roll and the end of the last clip by the same step, as the event machine moves its times,
        or a new clip would get no pre-roll until the clock caught up with it again. A clip open
        across the step keeps the clock it started on (its end and length stay true)."""
        last, self._last_frame_time = self._last_frame_time, now
        if last is None or now >= last:
            return
        step = now - last
        self.preroll.shift(step)
        if self._recorded_until is not None:
            self._recorded_until += step
        if self._clip is not None:
            self._clip.shift += step

    def _preroll_from(self, event_start: float) -> float:
        """Where a new clip's pre-roll begins: pre_roll before the event, but not before the end of
        the clip just closed. Footage already in that clip is not recorded twice; the clip still starts
        at a keyframe at or before this point, so at most one keyframe interval overlaps and nothing
        between the two clips is lost."""
        start = event_start - self.config.recording.pre_roll
        return start if self._recorded_until is None else max(start, self._recorded_until)

    def _behind(self, frame: CapturedFrame) -> bool:
        return frame.monotonic is not None and time.monotonic() - frame.monotonic > MAX_LAG

    def _note_dropped(self) -> None:
        self.dropped_detection_frames += 1
        self._dropped_since_warn += 1
        now = time.monotonic()
        if now - self._last_warn >= WARN_EVERY:
            log.warning("detector falling behind the camera: skipped %d detection frames (%d in total); "
                        "recording continues", self._dropped_since_warn, self.dropped_detection_frames)
            self._last_warn = now
            self._dropped_since_warn = 0

    def _route(self, pkt: EncodedPacket) -> None:
        phase = self.machine.phase
        if phase is Phase.HOLDING:
            self._held.append(pkt)
            return
        if phase is not Phase.RECORDING:
            return
        if self._clip is None:
            # A vault error closed the clip mid-event: try again at a keyframe, not too often.
            if pkt.keyframe and time.monotonic() - self._last_open_failure >= REOPEN_EVERY:
                self._open(pkt.time, [])
            if self._clip is None:
                return
        if self._split_pending and pkt.keyframe:
            self._split(pkt)
        elif self._clip.muxer.packets and pkt.time - self._clip.shift - self._clip.start >= \
                self.config.recording.max_clip:
            self._split_pending = True
            if pkt.keyframe:
                self._split(pkt)
        self._write(pkt)

    def _split(self, pkt: EncodedPacket) -> None:
        """max_clip reached: the next clip starts exactly at this keyframe, nothing lost in between."""
        self._split_pending = False
        event_end = self.machine.last_motion or pkt.time
        self._close(pkt.time, event_end, split=True)
        self._open(pkt.time, [])

    def _open(self, start_hint: float, preroll: list[EncodedPacket]) -> None:
        start = preroll[0].time if preroll else start_hint
        try:
            writer = self.vault.begin_clip(self.camera_name, start, container="mpegts", codec=self.codec,
                                           clock_synced=self.clock_synced)
        except Exception:
            self.vault_errors += 1
            self._last_open_failure = time.monotonic()
            log.exception("could not start a clip in the vault; recording continues without it")
            return
        self._parts += 1
        self._clip = _Clip(writer, TsMuxer(writer, self.width, self.height, self.fps, self.codec), start, self._parts)
        log.info("recording clip %s (event from %.1f s, pre-roll %.1f s)", getattr(writer, "clip_id", "?"),
                 self._event_start or start, max(0.0, (self._event_start or start) - start))
        self._write_all(preroll)

    def _write_all(self, pkts: list[EncodedPacket]) -> None:
        for pkt in pkts:
            self._write(pkt)

    def _write(self, pkt: EncodedPacket) -> None:
        clip = self._clip
        if clip is None:
            return
        if clip.muxer.packets == 0 and not pkt.keyframe:
            return  # a clip must start with a keyframe to decode
        clip.muxer.write(pkt)
        clip.last_time = pkt.time - clip.shift
        if clip.muxer.failed is not None:
            self._fail(clip)

    def _fail(self, clip: _Clip) -> None:
        self.vault_errors += 1
        self._last_open_failure = time.monotonic()
        log.error("writing clip %s failed (%s); it is closed with what was written and recording continues",
                  getattr(clip.writer, "clip_id", "?"), clip.muxer.failed)
        self._clip = None
        try:
            clip.writer.abort()
        except Exception:
            log.exception("aborting the clip failed")

    def _note_motion(self, score: float, boxes: list[tuple[float, float, float, float]]) -> None:
        clip = self._clip
        assert clip is not None
        clip.peak = max(clip.peak, score)
        if boxes:
            clip.boxes_frames += 1
            clip.max_boxes = max(clip.max_boxes, len(boxes))
            for x, y, w, h in boxes:
                u = clip.union
                u[0], u[1], u[2], u[3] = min(u[0], x), min(u[1], y), max(u[2], x + w), max(u[3], y + h)
        try:
            clip.writer.note_motion(score)
        except Exception:
            log.exception("note_motion failed")

    def _close(self, end: float, motion_end: float, *, split: bool = False) -> None:
        clip, self._clip = self._clip, None
        if clip is None:
            return
        clip.muxer.close()
        if clip.muxer.failed is not None:
            self._clip = clip
            self._fail(clip)
            return
        end, motion_end = end - clip.shift, motion_end - clip.shift  # on the clip's own clock
        last = clip.last_time if clip.last_time is not None else end
        union = clip.union if clip.boxes_frames else None
        extra = {
            "event_start": round(self._event_start if self._event_start is not None else clip.start, 3),
            "event_end": round(motion_end, 3),
            "peak_score": round(clip.peak, 4),
            "part": clip.part,
            "split": split,
            "boxes": {
                "frames_with_motion": clip.boxes_frames,
                "max_objects": clip.max_boxes,
                "union": [round(v, 3) for v in union] if union else None,  # x0, y0, x1, y1 normalised
            },
            "detection": {
                "frames": self.detected_frames, "skipped": self.dropped_detection_frames,
                "reseeds": self.detector.reseeds,
            },
            "packets": clip.muxer.packets,
        }
        try:
            record = clip.writer.close(max(min(end, last + 1.0 / self.fps), clip.start), extra)
        except Exception:
            self.vault_errors += 1
            log.exception("closing clip %s failed", getattr(clip.writer, "clip_id", "?"))
            try:
                clip.writer.abort()
            except Exception:
                log.exception("aborting the clip failed")
            return
        self.clips_closed += 1
        self._recorded_until = last + clip.shift
        self.last_clip_id = getattr(record, "id", None) or getattr(clip.writer, "clip_id", None)
        log.info("clip %s closed: %.1f s, %d packets, peak %.3f", self.last_clip_id,
                 (last - clip.start), clip.muxer.packets, clip.peak)
