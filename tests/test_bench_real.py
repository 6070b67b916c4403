"""The label and scoring helpers of bench/motion_real.py, on constructed inputs (no download, no Motion)."""

from __future__ import annotations

import fractions
import hashlib
import importlib.util
import shutil
import subprocess
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
    assert {c.file for c in real.CLIPS.values()} == set(real.LABELS) == set(real.SHA256) == set(real.FOOTAGE)
    assert real.LABELS["tree.avi"].subject == ((53, None),) and real.LABELS["vtest.avi"].subject == ((0, None),)
    assert set(real.DEFAULT_CLIPS) <= set(real.CLIPS)


@pytest.mark.parametrize("name", sorted(real.LABELS))
def test_label_spans_are_ordered_inside_the_clip_and_do_not_overlap(name: str) -> None:
    label, pictures = real.LABELS[name], real.FOOTAGE[name].pictures
    covered: list[int] = []
    for spans in (label.subject, label.distractors, label.unclear):
        ends = []
        for first, last in spans:
            stop = pictures - 1 if last is None else last
            assert 0 <= first <= stop < pictures, (name, first, last)
            assert not ends or first > ends[-1], f"{name}: spans out of order or overlapping"
            ends.append(stop)
            covered += range(first, stop + 1)
    assert len(covered) == len(set(covered)), f"{name}: a picture is in two kinds of span"
    assert label.subject and label.how


def test_picture_tags_mark_each_kind_of_span() -> None:
    label = real.Label(((2, 3), (6, None)), "constructed", distractors=((0, 1),), unclear=((4, 4),))
    assert real.picture_tags(label, 8) == ["D", "D", "S", "S", "?", "", "S", "S"]
    assert real.picture_tags(real.Label(((1, 20),), "past the end"), 3) == ["", "S", "S"]


def test_clips_are_chosen_by_name_or_all() -> None:
    assert [c.name for c in real.choose_clips("tree, lego_robot")] == ["tree", "lego_robot"]
    assert [c.name for c in real.choose_clips("all")] == list(real.CLIPS)
    with pytest.raises(SystemExit, match="unknown"):
        real.choose_clips("tree,nonesuch")
    with pytest.raises(SystemExit):
        real.choose_clips(",")


def test_pictures_map_to_frames_by_position_or_by_the_files_clock() -> None:
    slots = [0, 11, 17, 24, 31]  # tree.avi's first pictures: most frame slots are empty
    assert real.picture_frames(slots, "decoded") == [0, 1, 2, 3, 4]
    assert real.picture_frames(slots, "file") == slots
    with pytest.raises(ValueError):
        real.picture_frames(slots, "wall")


def test_a_span_runs_from_its_first_picture_to_the_end_of_its_last() -> None:
    assert real.span_interval((3, None), [0, 1, 2, 3, 4], 5, FPS) == pytest.approx((3 / FPS, 5 / FPS))
    assert real.span_interval((3, None), [0, 11, 17, 24, 31], 40, FPS) == pytest.approx((24 / FPS, 40 / FPS))
    # leaves after picture 2: until picture 3's frame
    assert real.span_interval((1, 2), [0, 11, 17, 24, 31], 40, FPS) == pytest.approx((11 / FPS, 24 / FPS))
    got = real.span_intervals([(0, 0), (4, 4)], [0, 1, 2, 3, 4], 5, FPS)
    assert [x for span in got for x in span] == pytest.approx([0, 1 / FPS, 4 / FPS, 5 / FPS])


def test_scoring_counts_unclear_time_as_neither_false_alarm_nor_coverage() -> None:
    # subject 3-5 s and 8-9 s, distractors 0-3 s and 9-10 s, unclear 5-6 s; warm-up to 2 s
    spans = real.Spans([(3.0, 5.0), (8.0, 9.0)], [(0.0, 3.0), (9.0, 10.0)], [(5.0, 6.0)])
    events = [_ev(1.0, 2.5), _ev(4.0, 6.5), _ev(9.5, 10.0)]
    out = real.score_events(events, spans, 2.0, 10.0)
    # after 2 s: 2-2.5 (distractor), 4-5 (subject), 5-6 (unclear), 6-6.5 (nothing), 9.5-10 (distractor)
    assert out["false_alarm_s_after_warmup"] == pytest.approx(1.5)
    assert out["event_s_in_distractor_spans_after_warmup"] == pytest.approx(1.0)
    assert out["subject_coverage_after_warmup"] == pytest.approx(1 / 3, abs=1e-3)  # rounded to 3 places
    first, second = out["subject"]
    assert first["in_view_s"] == [3.0, 5.0] and first["new_event_start_delay_s"] == pytest.approx(1.0)
    assert second["in_view_s"] == [8.0, 9.0] and not second["in_an_event"]
    assert [e["start"] for e in out["events"]] == [1.0, 4.0, 9.5]


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
    files, origin = real.obtain(list(real.SHA256), tmp_path)
    assert origin == [f"--samples {tmp_path}"] and files["tree.avi"] == tmp_path / "tree.avi"
    with pytest.raises(SystemExit, match="labels do not apply"):
        real.check_files(files)
    with pytest.raises(SystemExit, match="missing"):
        real.check_files({n: tmp_path / "empty" / n for n in real.SHA256})


def _fake_deb(folder: Path, files: dict[str, bytes]) -> Path:
    """A real .deb (dpkg-deb --build) named fake-clips, version 1.0, holding `files`."""
    root = folder / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text("Package: fake-clips\nVersion: 1.0\nArchitecture: all\n"
                                             "Maintainer: nobody <nobody@localhost>\nDescription: test\n")
    for member, data in files.items():
        (root / member).parent.mkdir(parents=True, exist_ok=True)
        (root / member).write_bytes(data)
    deb = folder / "fake-clips_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True,
                   capture_output=True, timeout=60)
    return deb


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")


@needs_dpkg
def test_missing_files_are_taken_from_their_package_checked_and_cached(tmp_path: Path) -> None:
    clip, other = b"pretend video " * 100, b"another one"
    deb = _fake_deb(tmp_path, {"usr/share/fake/clip.bin": clip, "usr/share/fake/sub/other.bin": other,
                               "usr/share/fake/unrelated.bin": b"x"})
    cache = tmp_path / "cache"
    table = {
        "a.bin": real.Footage("fake-clips", "usr/share/fake/clip.bin", hashlib.sha256(clip).hexdigest(), cache,
                              "1.0", 1),
        "b.bin": real.Footage("fake-clips", "usr/share/fake/sub/other.bin", hashlib.sha256(other).hexdigest(),
                              cache, "1.0", 1),
    }
    fetched: list[str] = []

    def download(package: str, folder: Path) -> Path:
        fetched.append(package)
        return Path(shutil.copy(deb, folder))

    files, origins = real.obtain(["a.bin", "b.bin"], None, table, download)
    assert fetched == ["fake-clips"]  # one download per package
    assert origins == [f"apt-get download fake-clips (1.0), extracted a.bin, b.bin to {cache}"]
    assert files == {"a.bin": cache / "a.bin", "b.bin": cache / "b.bin"}
    assert (cache / "a.bin").read_bytes() == clip and (cache / "b.bin").read_bytes() == other
    assert sorted(p.name for p in cache.iterdir()) == ["a.bin", "b.bin"]  # nothing else extracted into the cache
    assert real.check_files(files, table) == files
    again, origins = real.obtain(["a.bin"], None, table, download)
    assert again == {"a.bin": cache / "a.bin"} and fetched == ["fake-clips"]
    assert origins == [f"cache {cache / 'a.bin'}"]


@needs_dpkg
def test_a_packaged_file_that_is_not_the_labelled_one_never_reaches_the_cache(tmp_path: Path) -> None:
    deb = _fake_deb(tmp_path, {"usr/share/fake/clip.bin": b"a newer upload of the clip"})
    cache = tmp_path / "cache"
    table = {"a.bin": real.Footage("fake-clips", "usr/share/fake/clip.bin", hashlib.sha256(b"old").hexdigest(),
                                   cache, "0.9", 1),
             "gone.bin": real.Footage("fake-clips", "usr/share/fake/gone.bin", "0" * 64, cache, "0.9", 1)}

    def download(package: str, folder: Path) -> Path:
        return Path(shutil.copy(deb, folder))

    with pytest.raises(SystemExit, match=r"fake-clips 1\.0: usr/share/fake/clip\.bin .*labels do not apply"):
        real.obtain(["a.bin"], None, table, download)
    assert not (cache / "a.bin").exists()
    with pytest.raises(SystemExit, match=r"could not extract usr/share/fake/gone\.bin"):
        real.obtain(["gone.bin"], None, table, download)
    assert not (cache / "gone.bin").exists()


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
