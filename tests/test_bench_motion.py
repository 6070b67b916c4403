"""The motion benches: bench/motion.py refuses tuning seeds; motion_fps scores every rate; motion_clock compares
scenes with and without an on-screen clock; motion_waiting scores subjects that wait through a change of light;
motion_owner_cases holds subjects that stop and leave to what an owner expects; motion_shadows scores clouds over
the sun, motion_sun_arrivals subjects that arrive as a cloud crosses it (or cross slowly), motion_approach people
walking straight at the camera (also as a cloud or a porch lamp changes the light), motion_dimming cars and people
arriving as the light dims on gravel; motion_daemon refuses an unknown scenario; one latency summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "motion.py"


def _bench_lines(name: str, *args: str, timeout: float = 600) -> list[dict]:
    """Run bench/NAME for real with these arguments; it must succeed. Its JSON lines, in order."""
    proc = subprocess.run([sys.executable, str(BENCH.with_name(name)), *args], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_a_tuning_seed_is_refused_as_a_held_out_set() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--first-seed", "24"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "--first-seed 24 is a tuning seed (1-24)" in proc.stderr
    assert proc.stdout == ""


def test_motion_fps_scores_every_rate_on_real_scenes(tmp_path: Path) -> None:
    # Tuning seed 1, 30 s per scenario (three subjects in its mixed and night scenes), at two rates,
    # run for real: one JSON line per rate, every subject found and its onset measured.
    rows = _bench_lines("motion_fps.py", "--fps", "15,30", "--seeds", "1", "--seconds", "30", "--jobs", "1")
    assert [(r["fps"], r["stride"]) for r in rows] == [(15.0, 1), (30.0, 1)]
    for row in rows:
        assert set(row["false_events"]) == {"mixed", "night", "lighting", "ir", "foliage", "rain", "noise",
                                            "distractors"}
        assert row["recall"] == 1.0 and 0.0 <= row["onset_mean_s"] < 1.0 and "night_onset_p90_s" in row, row


def test_motion_clock_scores_every_scenario_with_and_without_the_clock() -> None:
    # Tuning seed 1, 60 s, run for real: one JSON line, both versions of every scenario scored, every
    # subject found in both. (With the clock its lighting scene makes 2 false events, its distractor
    # scene 2 and its mixed scene 1: docs/dev/MOTION-LOG.md, "An on-screen clock".)
    (row,) = _bench_lines("motion_clock.py", "--seeds", "1", "--seconds", "60", "--jobs", "1")
    assert row["fps"] == 15.0 and row["seeds"] == "1"
    for version in ("with_clock", "without_clock"):
        result = row[version]
        assert result["subjects"] >= 2 and result["found"] == result["subjects"], result
        assert set(result["false_events"]) == {"mixed", "night", "lighting", "ir", "foliage", "rain", "noise",
                                               "distractors", "quiet"}
    assert row["added_by_clock"] == {s: row["with_clock"]["false_events"][s] - row["without_clock"]["false_events"][s]
                                     for s in row["added_by_clock"]}


def test_motion_shadows_scores_clouds_over_the_sun_with_and_without_subjects() -> None:
    # Tuning seed 1, 60 s, run for real: a line per scene with its events, then the summary; every
    # subject of the sunny scene found.
    *scenes, summary = _bench_lines("motion_shadows.py", "--seeds", "1", "--seconds", "60", "--scenes", "--jobs", "1")
    assert [(r["scenario"], r["seed"]) for r in scenes] == [("sun", 1), ("sunny", 1)]
    assert all(len(event) == 3 and event[0] <= event[2] <= event[1] for r in scenes for event in r["events"])
    assert set(summary["false_events"]) == set(summary["false_seconds"]) == {"sun", "sunny"}
    found, total = summary["subjects_found"].split("/")
    assert found == total and int(total) >= 2, summary
    assert summary["false_events"]["sun"] == scenes[0]["false_events"]
    ran_on = [a for r in scenes for a in r["after_leaving_s"]]
    assert scenes[0]["after_leaving_s"] == [] and all(a >= 0.0 for a in ran_on)
    assert summary["after_leaving_s"]["subjects"] == len(ran_on) >= 1, summary
    assert summary["after_leaving_s"]["max"] == max(ran_on)
    # --cast-shadows reaches the detector in the worker processes: the same scenes, and the default's false
    # event of fading shadow edges in the sun scene (seed 1) is gone
    assert summary["cast_shadows"] is False and summary["false_events"]["sun"] >= 1, summary
    *shadows, cast = _bench_lines("motion_shadows.py", "--seeds", "1", "--seconds", "60", "--scenes", "--jobs", "2",
                                  "--cast-shadows")
    assert cast["cast_shadows"] is True and [(r["scenario"], r["seed"]) for r in shadows] == [("sun", 1), ("sunny", 1)]
    assert cast["false_events"]["sun"] == 0 and cast["subjects_found"] == summary["subjects_found"], cast


def test_motion_sun_arrivals_scores_subjects_arriving_as_a_cloud_crosses_the_sun() -> None:
    # Tuning seed 1, two scenes, run for real: one line each, then the summary, which adds them up.
    *scenes, summary = _bench_lines("motion_sun_arrivals.py", "--seeds", "1", "--per-seed", "2", "--scenes",
                                    "--jobs", "1")
    assert [(r["seed"], r["index"]) for r in scenes] == [(1, 0), (1, 1)]
    assert all(-1.0 <= r["arrives_after_edge_s"] <= 3.5 and r["kind"] in ("person", "cat") for r in scenes)
    assert summary["subjects"] == 2 and summary["missed"] == sum(r["events"] == 0 for r in scenes) == 0
    assert summary["lost_s"] == round(sum(r["lost_s"] for r in scenes), 1) and summary["steady"] is False
    # --steady: the same subjects (same draws, same times in view) with no cloud, so no light to mistake
    *steady, calm = _bench_lines("motion_sun_arrivals.py", "--seeds", "1", "--per-seed", "2", "--scenes",
                                 "--jobs", "1", "--steady")
    same = ("seed", "index", "kind", "arrives_after_edge_s")
    assert [[r[k] for k in same] for r in steady] == [[r[k] for k in same] for r in scenes]
    assert calm["steady"] is True and calm["false_events"] == 0 and calm["missed"] == 0, calm
    refused = subprocess.run([sys.executable, str(BENCH.with_name("motion_sun_arrivals.py")), "--per-seed", "0"],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--per-seed must be at least 1" in refused.stderr


def test_motion_sun_arrivals_slow_runs_the_same_subjects_slowly_through_a_cloud() -> None:
    sys.path.insert(0, str(BENCH.parent.parent))
    from bench.motion_sun_arrivals import BRISK, SLOW, SLOW_SECONDS, plan

    for index in range(4):
        (brisk, _, offset), (slow, _, slow_offset) = plan((1, index, False, False)), plan((1, index, False, True))
        (a,), (b,) = brisk.subjects, slow.subjects
        assert BRISK[0] <= abs(a.speed) <= BRISK[1] and SLOW[0] <= abs(b.speed) <= SLOW[1]
        assert (a.kind, a.y, a.pause_for, offset) == (b.kind, b.y, b.pause_for, slow_offset)
        assert slow.duration == SLOW_SECONDS and slow.distractors == brisk.distractors
    # run for real: one slow scene of tuning seed 1, found, and its row says it is slow
    *scenes, summary = _bench_lines("motion_sun_arrivals.py", "--seeds", "1", "--per-seed", "1", "--scenes",
                                    "--jobs", "1", "--slow")
    assert len(scenes) == 1 and scenes[0]["events"] >= 1 and summary["slow"] is True, (scenes, summary)


def test_motion_approach_draws_a_person_who_grows_and_scores_when_they_are_confirmed() -> None:
    # Tuning seed 1, run for real: one line per kind of scene (plain day, night, noisy night,
    # sunshine), each person found once, confirmed after they came into view; then the summary.
    *scenes, summary = _bench_lines("motion_approach.py", "--seeds", "1", "--scenes", "--jobs", "1")
    assert [r["kind"] for r in scenes] == ["quiet", "night", "noise", "sun"]
    assert all(r["events"] >= 1 and 0.0 < r["onset_s"] < 5.0 and r["false"] == 0 for r in scenes), scenes
    assert summary["all"]["subjects"] == 4 and summary["all"]["missed"] == 0


def test_motion_approach_light_changes_the_light_as_the_same_visitor_comes() -> None:
    sys.path.insert(0, str(BENCH.parent.parent))
    from bench.motion_approach import APPEARS, plan
    from edge.capture.synthetic import PORCH_BOX

    plain, cloudy = plan((1, "sun", "none")), plan((1, "sun", "cloud"))
    assert cloudy.person == plain.person and not plain.distractors
    (cloud,) = cloudy.distractors
    assert cloud.kind == "sun" and APPEARS - 11.5 <= cloud.start <= APPEARS + 1.0
    dark, lit = plan((1, "night", "none")), plan((1, "night", "lamp"))
    on, fade = lit.lamp
    assert lit.person == dark.person and APPEARS - 1.0 <= on <= APPEARS + 0.5 and 0.5 <= fade <= 2.0
    x0, y0, x1, y1 = (round(v * n) for v, n in zip(PORCH_BOX, (320, 240, 320, 240), strict=True))

    def porch(scene: object, t: float) -> float:
        return float(scene.luma(round(t * scene.fps))[y0:y1, x0:x1].mean())  # type: ignore[attr-defined]

    before, half, full = porch(lit, on - 0.2), porch(lit, on + fade / 2), porch(lit, on + fade + 0.5)
    assert abs(before - porch(dark, on - 0.2)) < 0.5 and before + 5 < half < full, (before, half, full)
    # run for real: the lamp's scene of tuning seed 1, one line, the visit scored with its lost seconds
    scene, summary = _bench_lines("motion_approach.py", "--seeds", "1", "--scenes", "--jobs", "1", "--light", "lamp")
    assert scene["kind"] == "night" and scene["light"] == "lamp" and scene["events"] >= 1, scene
    assert 0.0 <= scene["lost_s"] <= 2 * scene["walk_s"] + 10 and summary["light"] == "lamp"
    assert summary["all"]["lost_s"] == round(scene["lost_s"], 1)


def test_an_approaching_person_grows_from_far_to_near_and_walks_back() -> None:
    sys.path.insert(0, str(BENCH.parent.parent))
    from bench.motion_approach import APPEARS, FAR, NEAR, Approach

    person = Approach(0.4, walk=4.0, wait=5.0)
    assert person.at(APPEARS - 0.1) is None and person.at(person.leaves() + 0.1) is None
    assert person.at(APPEARS) == FAR and person.at(APPEARS + 4.0) == NEAR == person.at(APPEARS + 9.0)
    feet, width, height = person.at(APPEARS + 2.0)  # half-way there
    assert abs(width - (FAR[1] + NEAR[1]) / 2) < 1e-9 and FAR[0] < feet < NEAR[0] and FAR[2] < height < NEAR[2]
    assert person.at(person.leaves()) == FAR


def test_motion_daemon_refuses_an_unknown_scenario_before_it_starts() -> None:
    proc = subprocess.run([sys.executable, str(BENCH.with_name("motion_daemon.py")), "--scenarios", "sun,snow"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown scenario(s) snow" in proc.stderr and proc.stdout == ""


def test_latency_summary_is_one_definition_for_the_motion_benches() -> None:
    sys.path.insert(0, str(BENCH.parent.parent))
    from bench.motion import latency

    # p90 is the nearest rank below (index int(0.9 * (n - 1))), as every published figure used
    assert latency([1.0, 0.1, 0.6, 0.2]) == {"mean_s": 0.475, "median_s": 0.4, "p90_s": 0.6, "max_s": 1.0,
                                             "within_0_5s": 0.5}
    assert latency([]) == {"mean_s": None, "median_s": None, "p90_s": None, "max_s": None, "within_0_5s": None}


def test_motion_waiting_scores_a_subject_waiting_through_exposure_steps_like_one_with_none() -> None:
    # Tuning seed 2, run for real: three subjects that wait 10-30 s, once with no change of light and
    # once while the exposure steps. A re-seed used to learn the waiting subject (all three split,
    # 12.7 s recorded after they left on average); now the steps change nothing that matters.
    (row,) = _bench_lines("motion_waiting.py", "--seeds", "2", "--changes", "none,exposure", "--jobs", "1")
    rows = row["per_change"]
    none, exposure = rows["none"], rows["exposure"]
    assert none["subjects"] == exposure["subjects"] == 3 and none["missed"] == exposure["missed"] == 0
    assert exposure["whole"] == none["whole"] and exposure["split"] <= none["split"], rows
    assert exposure["after_s_mean"] <= none["after_s_mean"] + 1.0, rows


def test_motion_waiting_refuses_an_unknown_change() -> None:
    proc = subprocess.run([sys.executable, str(BENCH.with_name("motion_waiting.py")), "--changes", "none,fog"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown change fog" in proc.stderr


def test_motion_owner_cases_holds_a_waiting_person_to_one_event_that_ends_when_they_leave() -> None:
    # One case, run for real: a person waits 20 s by day and walks on. Before the ghost healer the
    # place where they stood held the event open 3.5 s past the 2 s the owner allows (a failed case).
    case, summary = _bench_lines("motion_owner_cases.py", "--only", "baseline_wait/20s/day/s1", "--seeds", "1",
                                 "--light", "day", timeout=300)
    assert case["id"] == "baseline_wait/20s/day/s1" and case["units"]["person"]["n"] == 1, case
    assert case["pass"] and case["failed"] == [] and case["excess_s"] == 0.0, case
    assert summary["cases"] == 1 and summary["passed"] == 1, summary


def test_motion_owner_cases_refuses_held_out_seeds_and_unknown_scenarios() -> None:
    bench = BENCH.with_name("motion_owner_cases.py")
    refused = ((["--seeds", "25"], "tuning seeds only (1-24)"), (["--only", "nope"], "unknown scenario nope"))
    for args, message in refused:
        proc = subprocess.run([sys.executable, str(bench), *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert proc.stdout == ""


def test_motion_dimming_finds_every_car_and_person_arriving_as_the_light_dims() -> None:
    # Tuning seed 1, run for real: 20 cars (bodies 90-170 on gravel of 140, plain or with a windscreen)
    # and 16 people, each arriving 0.5-2 s into a 20 % or 45 % dimming. The shipped build confirms every
    # one within 0.5 s (the third shadow attempt found some plain cars only when they drove off).
    *scenes, row = _bench_lines("motion_dimming.py", "--seeds", "1", "--jobs", "1", "--scenes")
    assert len(scenes) == 36 and {(s["kind"], s["brightness"]) for s in scenes} >= {("car", 138.0), ("person", 140.0)}
    assert row["per_kind"]["car"]["subjects"] == 20 and row["per_kind"]["person"]["subjects"] == 16
    for kind in ("car", "person"):
        result = row["per_kind"][kind]
        assert result["missed"] == 0 and result["later_than_0_5s"] == 0, (kind, result)
    assert row["per_kind"]["car"]["split"] == 0 and row["per_kind"]["car"]["lost_s"] == 0.0, row
