"""Recording end to end: synthetic camera -> detector -> Recorder -> real encrypted Vault -> export ->
PyAV decodes. Plus the pre-roll ring and the MPEG-TS muxer on their own."""

from __future__ import annotations

import dataclasses
import io
import itertools
import time
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import PASSPHRASE
from vault_support import open_vault, owner_identity

from edge import keys
from edge.capture.encoder import H264Encoder
from edge.capture.frames import EncodedPacket
from edge.capture.masks import rasterise
from edge.capture.synthetic import SyntheticCamera, SyntheticScene
from edge.config import StorageConfig, config_from_dict
from edge.recording.muxer import TsMuxer
from edge.recording.preroll import PreRoll
from edge.recording.recorder import Recorder
from edge.state import StateDir
from edge.vault import Vault

T0 = 1_790_000_000.0  # a fixed wall-clock origin for the synthetic camera
FPS = 15


def packets(n: int, gop: int = 15, fps: int = FPS) -> list[EncodedPacket]:
    scene = SyntheticScene(1, "mixed", n / fps + 1)
    enc = H264Encoder(160, 120, fps, bitrate=200_000, keyframe_interval=gop / fps)
    out: list[EncodedPacket] = []
    for i in range(n):
        out += enc.encode(scene.bgr(i, 160, 120), time=T0 + i / fps)
    return out


# -- pre-roll ------------------------------------------------------------------------------------


def test_preroll_keeps_whole_gops_from_a_keyframe_at_or_before_the_horizon() -> None:
    ring = PreRoll(3.0)
    pkts = packets(150)  # 10 s, keyframe every second
    for p in pkts:
        ring.push(p, keep=3.0)
        held = ring.since(p.time)
        assert held[0].keyframe
    now = pkts[-1].time
    got = ring.since(now - 3.0)
    assert got[0].keyframe and got[0].time <= now - 3.0 < got[0].time + 1.0 + 1e-9
    assert [p.time for p in got] == [p.time for p in pkts if p.time >= got[0].time]
    assert len(ring) <= (3 + 2) * FPS  # bounded: about pre-roll plus one GOP


def test_preroll_shifted_by_a_clock_step_counts_back_and_forgets_on_the_new_clock() -> None:
    """A step of an hour back after 6 s: what was held moves with it, so a pre-roll counted back on the
    new clock starts at the right keyframe, and what is older than `keep` is still forgotten."""
    ring = PreRoll(3.0)
    pkts = packets(150)  # 10 s, keyframe every second
    for p in pkts[:90]:
        ring.push(p, keep=3.0)
    step = -3600.0
    ring.shift(step)
    after = [dataclasses.replace(p, time=p.time + step) for p in pkts[90:]]
    for p in after[:16]:
        ring.push(p, keep=3.0)
    got = ring.since(after[15].time - 3.0)  # 3 s back from picture 105 (7 s of camera time): the keyframe at 4 s
    assert got[0].keyframe and got[0].pts == pkts[60].pts
    assert [p.pts for p in got] == [p.pts for p in pkts[60:106]]
    assert len(ring) <= (3 + 2) * FPS


def test_preroll_drops_packets_before_the_first_keyframe() -> None:
    pkts = packets(40)
    ring = PreRoll(3.0)
    for p in pkts[5:]:
        ring.push(p, keep=3.0)
    assert ring.since(pkts[-1].time)[0].keyframe
    assert all(p.time >= pkts[15].time for p in ring.since(0))


def test_preroll_byte_cap_forgets_oldest_gops() -> None:
    pkts = packets(90)
    ring = PreRoll(60.0, max_bytes=sum(len(p.data) for p in pkts[:30]))
    for p in pkts:
        ring.push(p, keep=60.0)
    assert ring.size <= sum(len(p.data) for p in pkts[:45]) and ring.since(0)[0].keyframe


# -- muxer ---------------------------------------------------------------------------------------


class BytesSink:
    """An in-memory stand-in for the ClipWriter's write/boundary (records where boundaries fall)."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.boundaries: list[int] = []

    def write(self, data: bytes) -> None:
        self.buf.write(data)

    def boundary(self) -> None:
        self.boundaries.append(self.buf.tell())


def test_muxer_writes_playable_mpegts_with_boundaries_before_keyframes() -> None:
    pkts = packets(60)
    sink = BytesSink()
    mux = TsMuxer(sink, 160, 120, FPS)
    for p in pkts:
        mux.write(p)
    mux.close()
    data = sink.buf.getvalue()
    assert len(sink.boundaries) == sum(p.keyframe for p in pkts) - 1
    assert all(b % 188 == 0 for b in sink.boundaries)  # cuts fall between whole TS packets
    with av.open(io.BytesIO(data), format="mpegts") as media:
        assert sum(1 for _ in media.decode(video=0)) == 60
    # Each GOP segment starting at a boundary decodes on its own (what a truncated clip relies on).
    tail = data[sink.boundaries[1]:]
    with av.open(io.BytesIO(tail), format="mpegts") as media:
        assert sum(1 for _ in media.decode(video=0)) == 60 - 30


def test_muxer_swallows_sink_errors_and_reports_them() -> None:
    class Failing(BytesSink):
        def write(self, data: bytes) -> None:
            raise OSError(28, "No space left on device")

    mux = TsMuxer(Failing(), 160, 120, FPS)
    for p in packets(20):
        mux.write(p)  # must not raise
    mux.close()
    assert isinstance(mux.failed, OSError)


# -- recorder with the real vault ------------------------------------------------------------------


@pytest.fixture(scope="module")
def identity(_state_template: Path):
    return owner_identity(_state_template, PASSPHRASE)


def small_config(**recording):
    return config_from_dict({
        "camera": {"width": 320, "height": 240, "bitrate": 400_000, "keyframe_interval": 1},
        "recording": {"pre_roll": 3, "post_roll": 2, "merge_gap": 2, **recording},
    })


def record(state: Path, scene: SyntheticScene, config, *, seconds: float | None = None, mask=None,
           vault: Vault | None = None, lag: tuple[float, float] | None = None,
           clock_step: tuple[float, float] | None = None) -> tuple[Recorder, Vault]:
    """The scene through the recorder into the vault. lag (from, to): frames in that stretch arrive
    2 s late; clock_step (at, step): from `at` s on the wall clock reads `step` s less (NTP stepping it back)."""
    vault = vault or open_vault(state)
    cam = SyntheticCamera(scene, main_size=(320, 240), detect_size=(320, 240), bitrate=config.camera.bitrate,
                          keyframe_interval=config.camera.keyframe_interval, privacy_mask=mask, start_time=T0,
                          max_frames=round((seconds or scene.duration) * scene.fps))
    rec = Recorder(config, vault, camera_name="porch")
    for frame in cam.frames():
        if lag and lag[0] <= frame.time - T0 < lag[1]:
            frame.monotonic = time.monotonic() - 2.0  # pretend this frame arrived 2 s ago: we are behind
        if clock_step and frame.time - T0 >= clock_step[0]:
            frame.time -= clock_step[1]
            frame.packets = [dataclasses.replace(p, time=p.time - clock_step[1]) for p in frame.packets]
        rec.process(frame)
    rec.flush(T0 + (seconds or scene.duration))
    return rec, vault


def decode(vault: Vault, clip_id: str, identity, out: Path) -> list[np.ndarray]:
    vault.export(clip_id, identity, out)
    with av.open(str(out)) as media:
        return [f.to_ndarray(format="bgr24") for f in media.decode(video=0)]


def test_recorder_puts_the_event_with_pre_and_post_roll_into_the_vault(state_dir: Path, tmp_path: Path,
                                                                        identity) -> None:
    scene = SyntheticScene(2, "walk", 20)
    person = scene.ground_truth.motion[0]
    rec, vault = record(state_dir, scene, small_config())
    clips = vault.list_clips()
    assert len(clips) == 1 and rec.clips_closed == 1 and rec.vault_errors == 0
    clip = clips[0]
    assert clip.status == "complete" and clip.camera == "porch" and clip.container == "mpegts"
    ev_start, ev_end = clip.extra["event_start"] - T0, clip.extra["event_end"] - T0
    assert abs(ev_start - person.start) < 1.0 and abs(ev_end - person.end) < 1.5
    # pre-roll: from the keyframe at or before event start - 3 s (keyframes every second)
    assert ev_start - 4.0 <= clip.start - T0 <= ev_start - 3.0 + 1e-6
    assert clip.end - T0 == pytest.approx(ev_end + 2.0, abs=0.15)  # post-roll
    assert clip.motion_score == pytest.approx(clip.extra["peak_score"]) and clip.motion_score > 0
    assert clip.extra["boxes"]["frames_with_motion"] > 0 and clip.extra["boxes"]["union"]
    frames = decode(vault, clip.id, identity, tmp_path / "clip.ts")
    assert len(frames) == clip.extra["packets"]
    assert len(frames) / FPS == pytest.approx(clip.duration, abs=2 / FPS)


def test_max_clip_splits_seamlessly_without_losing_a_packet(state_dir: Path, tmp_path: Path, identity) -> None:
    scene = SyntheticScene(2, "walk", 20)  # one person, about 8 s of motion
    _rec, vault = record(state_dir, scene, small_config(max_clip=5))
    clips = sorted(vault.list_clips(), key=lambda c: c.start)
    assert len(clips) >= 3
    for a, b in itertools.pairwise(clips):
        assert b.start == pytest.approx(a.end, abs=1e-3)  # no gap, no overlap
        assert b.extra["event_start"] == a.extra["event_start"]  # every part carries the event
        assert b.extra["part"] == a.extra["part"] + 1
    total = 0
    pts: list[int] = []
    for c in clips:
        out = tmp_path / f"{c.id}.ts"
        vault.export(c.id, identity, out)
        with av.open(str(out)) as media:
            stream = media.streams.video[0]
            first = True
            for packet in media.demux(stream):
                if packet.size == 0:
                    continue
                if first:
                    assert packet.is_keyframe  # every part starts at a keyframe
                    first = False
                pts.append(int(packet.pts))
                total += 1
    steps = np.diff(pts)
    assert (steps == 6000).all(), set(steps.tolist())  # 90 kHz / 15 fps: consecutive frames, none lost
    assert total == round((clips[-1].end - clips[0].start) * FPS)


def test_privacy_mask_is_black_in_the_decoded_recording(state_dir: Path, tmp_path: Path, identity) -> None:
    polygon = ((0.55, 0.05), (0.95, 0.05), (0.95, 0.5), (0.55, 0.5))
    config = config_from_dict({**{"recording": {"privacy_masks": [list(map(list, polygon))], "post_roll": 1}},
                               "camera": {"width": 320, "height": 240, "bitrate": 600_000}})
    mask = rasterise([polygon], 320, 240)
    _rec, vault = record(state_dir, SyntheticScene(2, "walk", 14), config, mask=mask)
    clip = vault.list_clips()[0]
    frames = decode(vault, clip.id, identity, tmp_path / "clip.ts")
    inner = rasterise([((0.58, 0.08), (0.92, 0.08), (0.92, 0.47), (0.58, 0.47))], 320, 240) > 0
    assert len(frames) > 30
    for img in frames[::10]:
        assert int(img[inner].max()) <= 24
        assert img[mask == 0].mean() > 50


def test_flush_mid_event_closes_a_complete_playable_clip(state_dir: Path, tmp_path: Path, identity) -> None:
    scene = SyntheticScene(2, "walk", 20)
    person = scene.ground_truth.motion[0]
    rec, vault = record(state_dir, scene, small_config(), seconds=person.start + 3.0)
    (clip,) = vault.list_clips()
    assert clip.status == "complete" and not rec.recording
    frames = decode(vault, clip.id, identity, tmp_path / "clip.ts")
    assert len(frames) == clip.extra["packets"] > 3 * FPS


def test_detection_frames_are_dropped_when_behind_but_footage_is_not(state_dir: Path, identity,
                                                                     tmp_path: Path) -> None:
    scene = SyntheticScene(2, "walk", 20)
    person = scene.ground_truth.motion[0]
    lag = (person.start + 3.0, person.start + 5.0)
    rec, vault = record(state_dir, scene, small_config(max_clip=300), lag=lag)
    assert rec.dropped_detection_frames == round(2.0 * FPS)
    (clip,) = vault.list_clips()
    frames = decode(vault, clip.id, identity, tmp_path / "clip.ts")
    assert len(frames) == round((clip.end - clip.start) * FPS)  # every recorded frame is there
    assert clip.extra["detection"]["skipped"] == rec.dropped_detection_frames


def test_vault_errors_never_stop_the_recorder(state_dir: Path) -> None:
    st = StateDir(state_dir)
    # A vault opened without the owner's public key cannot record: begin_clip raises.
    broken = Vault.open(st, StorageConfig(), None, keys.load_device_key(st))
    rec, _ = record(state_dir, SyntheticScene(2, "walk", 20), small_config(), vault=broken)
    assert rec.vault_errors >= 1 and rec.clips_closed == 0
    assert rec.status()["vault_errors"] == rec.vault_errors and rec.status()["frames"] == 300


def test_motion_back_within_merge_gap_continues_one_clip_without_holes(state_dir: Path, tmp_path: Path,
                                                                        identity) -> None:
    from edge.capture.synthetic import Subject

    scene = SyntheticScene(2, "quiet", 20)
    # two quick crossings with about 3 s of nothing in between: > post_roll (1 s), < merge_gap (6 s)
    scene.subjects = [Subject("person", 3.0, -0.05, 1.05, 0.62, 0.5), Subject("person", 8.5, 1.05, -0.05, 0.62, -0.5)]
    _rec, vault = record(state_dir, scene, small_config(post_roll=1, merge_gap=6))
    (clip,) = vault.list_clips()
    assert clip.extra["event_end"] - T0 > 9.0  # the second crossing is in the same event
    frames = decode(vault, clip.id, identity, tmp_path / "clip.ts")
    assert len(frames) == round((clip.end - clip.start) * FPS)  # the held seconds were written too


# (seconds the wall clock steps back, when (s of real time), merge_gap): a steady clock; a step between
# the two clips; one while the first event is held open (merge_gap longer than post_roll, packets
# held, none written); one in the middle of the first clip.
CLOCK_STEPS = {"steady-clock": (0.0, 7.0, 0.0), "stepped-back-between": (30.0, 7.0, 0.0),
               "stepped-back-while-holding": (30.0, 7.0, 3.0), "stepped-back-during-the-first": (30.0, 4.0, 0.0)}


@pytest.mark.parametrize("case", list(CLOCK_STEPS))
def test_a_new_clip_does_not_record_again_what_the_last_one_holds(state_dir: Path, tmp_path: Path,
                                                                  identity, case: str) -> None:
    """Two crossings 3 s apart, each its own event: the second one's 3 s pre-roll would reach back
    into the first clip. It starts at the keyframe at or before the first clip's end instead: at
    most a keyframe interval (1 s) recorded twice, and no gap between the clips. The same when the
    wall clock steps back 30 s (the second clip's times are then 30 s earlier; it must still get its
    pre-roll, and a clip open across the step keeps its true length)."""
    from edge.capture.synthetic import Subject

    step, at, merge_gap = CLOCK_STEPS[case]
    scene = SyntheticScene(2, "quiet", 20)
    scene.subjects = [Subject("person", 3.0, -0.05, 1.05, 0.62, 0.5), Subject("person", 8.5, 1.05, -0.05, 0.62, -0.5)]
    _rec, vault = record(state_dir, scene, small_config(post_roll=1, merge_gap=merge_gap), clock_step=(at, step))
    clips = vault.list_clips()
    (first,) = [c for c in clips if 2.0 < c.extra["event_start"] - T0 < 5.0]  # the first crossing, at 3 s
    (second,) = [c for c in clips if c is not first]
    # Which of the camera's pictures each clip holds, by their timestamps (picture n at n / FPS s, on
    # no wall clock): the first crossing's clip, then the second's, from a keyframe (every FPS-th)
    # at or before the first one's last picture, after it on none.
    held = {}
    for clip in (first, second):
        out = tmp_path / f"{clip.id}.ts"
        vault.export(clip.id, identity, out)
        with av.open(str(out)) as media:
            held[clip.id] = [round(p.pts * FPS / 90_000) for p in media.demux(video=0) if p.size]
        assert len(held[clip.id]) == clip.extra["packets"]
        assert held[clip.id] == list(range(held[clip.id][0], held[clip.id][-1] + 1))  # none missing
        # its length on its own clock: true, also across a step (the picture after one follows the
        # last before it at no interval, hence one short)
        squeezed = int(step > 0 and (clip is first) == (at < held[first.id][-1] / FPS))
        assert round((clip.end - clip.start) * FPS) == len(held[clip.id]) - squeezed
    a, b = held[first.id], held[second.id]
    event = round((second.extra["event_start"] - T0 + step) * FPS)  # the second crossing's first picture
    assert event - 3 * FPS < a[-1]  # its full pre-roll would overlap the first clip
    assert b[0] % FPS == 0 and a[-1] - FPS < b[0] <= a[-1], (a[-1], b[0])  # under a keyframe interval again, no gap
