"""The label and scoring helpers of bench/motion_real.py, on constructed inputs (no download, no Motion)."""

from __future__ import annotations

import fractions
import importlib.util
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from edge.recording.analysis import DetectedEvent

# bench/ is scripts, not an installed package: load the module from its file
_PATH = Path(__file__).resolve().parent.parent / "bench" / "motion_real.py"
_spec = importlib.util.spec_from_file_location("bench_motion_real", _PATH)
assert _spec is not None and _spec.loader is not None
real = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = real  # dataclasses look their module up by name
_spec.loader.exec_module(real)

FPS = 15.0


def _ev(start: float, end: float, onset: float | None = None) -> DetectedEvent:
    return DetectedEvent(start, end, 0.0, start + 0.2 if onset is None else onset)


def test_every_clip_has_a_label_and_a_checksum() -> None:
    assert {c.file for c in real.CLIPS.values()} == set(real.LABELS) == set(real.SHA256)
    assert real.LABELS["tree.avi"].first_picture == 53 and real.LABELS["vtest.avi"].first_picture == 0


def test_pictures_map_to_frames_by_position_or_by_the_files_clock() -> None:
    slots = [0, 11, 17, 24, 31]  # tree.avi's first pictures: most frame slots are empty
    assert real.picture_frames(slots, "decoded") == [0, 1, 2, 3, 4]
    assert real.picture_frames(slots, "file") == slots
    with pytest.raises(ValueError):
        real.picture_frames(slots, "wall")


def test_subject_interval_runs_from_its_first_picture_to_the_end() -> None:
    label = real.Label(3, None, "constructed")
    assert real.subject_interval(label, [0, 1, 2, 3, 4], 5, FPS) == pytest.approx((3 / FPS, 5 / FPS))
    assert real.subject_interval(label, [0, 11, 17, 24, 31], 40, FPS) == pytest.approx((24 / FPS, 40 / FPS))
    ended = real.Label(1, 2, "leaves at picture 3")
    assert real.subject_interval(ended, [0, 11, 17, 24, 31], 40, FPS) == pytest.approx((11 / FPS, 24 / FPS))


def test_interval_arithmetic() -> None:
    assert real.union([(5, 6), (1, 3), (2, 4), (7, 7)]) == [(1, 4), (5, 6)]
    assert real.clip_to([(0, 3), (8, 12)], 2, 10) == [(2, 3), (8, 10)]
    assert real.length([(1, 3), (2, 4)]) == 3
    assert real.overlap([(0, 2), (1, 3)], [(2.5, 10)]) == pytest.approx(0.5)


def test_false_alarm_seconds_count_event_time_outside_the_subject_after_the_warmup() -> None:
    events = [(1.0, 3.0), (2.5, 5.0), (8.0, 9.0)]
    # after 2 s: (2, 5) and (8, 9) = 4 s of events; (4, 5) and (8, 9) are subject time
    assert real.false_alarm_seconds(events, [(4.0, 10.0)], 2.0, 10.0) == pytest.approx(2.0)
    assert real.false_alarm_seconds(events, [(0.0, 10.0)], 2.0, 10.0) == pytest.approx(0.0)
    assert real.false_alarm_seconds([(0.5, 1.5)], [], 2.0, 10.0) == 0  # inside the warm-up: not counted


def test_coverage_is_the_share_of_subject_time_inside_events() -> None:
    assert real.coverage([(1.0, 3.0), (6.0, 7.0)], [(0.0, 10.0)], 2.0, 10.0) == pytest.approx(2 / 8)
    assert real.coverage([], [(0.0, 10.0)], 2.0, 10.0) == 0
    assert real.coverage([(0.0, 10.0)], [(0.0, 1.5)], 2.0, 10.0) is None  # no subject time after the warm-up


def test_an_event_already_running_is_not_credited_to_the_subject() -> None:
    kept_open = real.subject_detection([_ev(2.27, 4.13)], 3.53, 4.53)
    assert kept_open == {"in_an_event": True, "in_event_since": 2.27, "new_event_start_delay_s": None,
                         "new_event_confirmed_delay_s": None}
    fresh = real.subject_detection([_ev(1.0, 1.5), _ev(3.8, 4.4, 4.0)], 3.53, 4.53)
    assert fresh["in_an_event"] and fresh["in_event_since"] is None
    assert fresh["new_event_start_delay_s"] == pytest.approx(0.27)
    assert fresh["new_event_confirmed_delay_s"] == pytest.approx(0.47)
    assert not real.subject_detection([_ev(1.0, 1.5)], 3.53, 4.53)["in_an_event"]


def test_a_tolerance_lets_an_event_just_before_the_entry_count_as_new() -> None:
    early = [_ev(22.9, 27.3, 22.9)]
    assert real.subject_detection(early, 23.13, 29.6)["in_event_since"] == 22.9
    loose = real.subject_detection(early, 23.13, 29.6, tolerance=0.75)
    assert loose["in_event_since"] is None and loose["new_event_start_delay_s"] == pytest.approx(-0.23)


def test_motion_times_move_to_the_video_clock() -> None:
    # hooks 5.0 (start, confirmed) to 8.0; launch offset 1.0 s; 15 fps: first motion 4 frames before
    out = real.motion_video_times([_ev(5.0, 8.0, 5.0), _ev(9.5, 10.0, 9.5), _ev(31.0, 31.0, 31.0)], 1.0, FPS, 9.0)
    assert len(out) == 2  # the last one starts after the file's end (Motion loops the file)
    first, cut = out
    assert first.onset == pytest.approx(4.0) and first.start == pytest.approx(4.0 - 4 / FPS)
    assert first.end == pytest.approx(7.0)
    assert cut.start == pytest.approx(8.5 - 4 / FPS) and cut.end == 9.0  # ends past the file's end: cut there


def test_samples_that_are_not_the_labelled_files_are_refused(tmp_path: Path) -> None:
    for name in real.SHA256:
        (tmp_path / name).write_bytes(b"not the video")
    with pytest.raises(SystemExit, match="labels do not apply"):
        real.check_files(tmp_path)
    with pytest.raises(SystemExit, match="missing"):
        real.check_files(tmp_path / "empty")


def _gappy_video(path: Path) -> Path:
    """Three pictures at frame slots 0, 3 and 5 of a 15 fps stream (like tree.avi's empty index entries)."""
    with av.open(str(path), "w") as out:
        enc = out.add_stream("libx264", rate=fractions.Fraction(15))
        enc.width, enc.height, enc.pix_fmt = 64, 48, "yuv420p"
        enc.codec_context.time_base = fractions.Fraction(1, 15)
        for value, slot in ((40, 0), (120, 3), (200, 5)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64), value, np.uint8), format="gray")
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = slot, fractions.Fraction(1, 15)
            for packet in enc.encode(frame):
                out.mux(packet)
        for packet in enc.encode(None):
            out.mux(packet)
    return path


def _decoded_lumas(path: Path) -> list[int]:
    with av.open(str(path)) as inp:
        return [int(np.asarray(f.to_ndarray(format="gray")).mean().round()) for f in inp.decode(video=0)]


def test_transcode_keeps_pictures_in_order_or_holds_them_on_the_files_clock(tmp_path: Path) -> None:
    src = _gappy_video(tmp_path / "gappy.mkv")
    decoded = real.transcode(src, tmp_path / "decoded.mkv", "decoded")
    held = real.transcode(src, tmp_path / "held.mkv", "file")
    assert (decoded.frames, decoded.picture_frames, decoded.fps, decoded.size) == (3, [0, 1, 2], 15.0, (64, 48))
    assert (held.frames, held.picture_frames) == (6, [0, 3, 5])
    lumas = _decoded_lumas(held.path)
    assert len(lumas) == 6 and len(_decoded_lumas(decoded.path)) == 3
    assert [abs(v - w) <= 3 for v, w in zip(lumas, [40, 40, 40, 120, 120, 200], strict=True)] == [True] * 6
