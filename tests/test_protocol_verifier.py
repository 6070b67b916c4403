"""The device's validation pipeline over real files: every refusal reason, in order, audited, nothing queued."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import clock
from edge.audit import verify_log
from edge.protocol.request import encode_request
from edge.protocol.verifier import DUPLICATE_WINDOW, UNAUTH_AUDIT_BURST, Limits
from edge.signing import public_raw
from tests.protocol_support import (
    DEVICE_ID,
    HOME,
    NOW,
    area,
    body,
    entry,
    make_rig,
    process_in_new_process,
)


def assert_refused(rig, b, reason: str, key=None) -> None:  # type: ignore[no-untyped-def]
    before = len(rig.pending_ids())
    outcome = rig.send(b, key)
    assert outcome.status == "refused" and outcome.reason == reason, outcome
    refused = rig.audit_entries("request.refused")
    assert refused and refused[-1]["data"]["reason"] == reason
    assert len(rig.pending_ids()) == before  # nothing queued for the owner


def test_valid_request_is_accepted_queued_and_audited(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    outcome = rig.send(body())
    assert outcome.accepted
    assert rig.pending_ids() == ["REQ-0000-test"]
    [acc] = rig.audit_entries("request.accepted")
    assert acc["data"]["id"] == "REQ-0000-test" and acc["data"]["digest"] == outcome.digest
    item = rig.verifier.pending.get("REQ-0000-test")
    assert item.request.raw == encode_request(body(), rig.key)  # the exact verified bytes are kept
    pub = rig.audit._key.public_key()
    assert verify_log(rig.audit.directory, pub).ok


def test_unauthenticated_refusals_are_audited(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    assert_refused(rig, body(), "unknown_signer", key=Ed25519PrivateKey.generate())
    out = rig.verifier.process(b"garbage")
    assert out.reason == "malformed" and rig.audit_entries("request.refused")[-1]["data"]["reason"] == "malformed"
    bad = bytearray(encode_request(body(), rig.key))
    bad[-3] ^= 4
    assert rig.verifier.process(bytes(bad)).reason == "bad_signature"
    big = rig.verifier.process(b"CCRQ\x01" + b"\x00" * 20_000)
    assert big.reason == "oversized"
    assert [e["data"]["reason"] for e in rig.audit_entries("request.refused")] == [
        "unknown_signer", "malformed", "bad_signature", "oversized"]
    assert rig.pending_ids() == []


def test_clock_unsynchronised(tmp_path: Path) -> None:
    assert_refused(make_rig(tmp_path, synced=False), body(), "clock_unsynchronised")


def test_not_yet_valid_respects_skew(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    assert_refused(rig, body(issued=clock.iso(NOW + 301)), "not_yet_valid")
    assert rig.send(body(id="REQ-skew-ok", issued=clock.iso(NOW + 299))).accepted


def test_expired(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    assert_refused(rig, body(issued=clock.iso(NOW - 7200), expires=clock.iso(NOW - 1)), "expired")


def test_lifetime_too_long(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, limits=Limits(max_lifetime=3600))
    assert_refused(rig, body(expires=clock.iso(NOW - 60 + 3601)), "lifetime_too_long")
    assert rig.send(body(id="REQ-life-ok", expires=clock.iso(NOW - 60 + 3600))).accepted


def test_wrong_audience(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    assert_refused(rig, body(audience="ccsomeotherdevice"), "wrong_audience")
    # An area request to a device that keeps no location cannot be judged: wrong audience.
    rig2 = make_rig(tmp_path / "noloc", key=rig.key, location=None)
    assert_refused(rig2, body(audience=area()), "wrong_audience")


def test_area_inside_and_outside(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    # About 1.1 km north of the device: outside a 1000 m circle, inside a 1200 m one.
    north = HOME.lat + 0.0100
    assert_refused(rig, body(audience=area(lat=north, radius_m=1000)), "outside_area")
    assert rig.send(body(id="REQ-area-in", audience=area(lat=north, radius_m=1200))).accepted


def test_window_too_long_owner_and_trust_limits(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    rig = make_rig(tmp_path, key=key, limits=Limits(max_window=4 * 3600),
                   trust=[entry(key, max_window=2 * 3600)])
    start = NOW - 10 * 3600
    # Per-trust limit (2 h) is the tighter one here.
    assert_refused(rig, body(window_start=clock.iso(start), window_end=clock.iso(start + 2 * 3600 + 1)),
                   "window_too_long")
    assert rig.send(body(id="REQ-win-ok", window_start=clock.iso(start),
                         window_end=clock.iso(start + 2 * 3600))).accepted
    # Owner limit (1 h) tighter than the trust entry (12 h).
    key2 = Ed25519PrivateKey.generate()
    rig2 = make_rig(tmp_path / "owner", key=key2, limits=Limits(max_window=3600), trust=[entry(key2)])
    assert_refused(rig2, body(window_start=clock.iso(start), window_end=clock.iso(start + 3601)),
                   "window_too_long")


def test_window_in_future(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    assert_refused(rig, body(window_start=clock.iso(NOW + 301), window_end=clock.iso(NOW + 600)),
                   "window_in_future")


def test_window_inverted(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    assert_refused(rig, body(window_start=clock.iso(NOW - 3600), window_end=clock.iso(NOW - 7200)),
                   "window_inverted")


def test_replay_is_refused_across_a_process_restart(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    first = encode_request(body(), rig.key)
    assert rig.verifier.process(first).accepted
    rig.verifier.replay.close()
    # Same id, new bytes (re-signed with a new case): a replay, refused by a brand-new process.
    second = encode_request(body(case="CASE-2"), rig.key)
    assert process_in_new_process(tmp_path, second, NOW + 5) == {"status": "refused", "reason": "replayed"}
    # The identical bytes after the fan-out window: also a replay, not a duplicate.
    late = NOW + DUPLICATE_WINDOW + 60
    assert process_in_new_process(tmp_path, first, late) == {"status": "refused", "reason": "replayed"}
    # Within the window the identical bytes are an area fan-out duplicate (not a replay).
    assert process_in_new_process(tmp_path, first, NOW + 30) == {"status": "duplicate", "reason": None}
    assert [p.id for p in rig.verifier.pending.list()] == ["REQ-0000-test"]


def test_area_fan_out_duplicates_are_not_replays(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    msg = encode_request(body(audience=area()), rig.key)
    outcomes = [rig.verifier.process(msg, topic=f"consentcam/v1/area/g/c/p/u/{c}/request") for c in "uvy"]
    assert [o.status for o in outcomes] == ["accepted", "duplicate", "duplicate"]
    assert len(rig.audit_entries("request.duplicate")) == 2
    assert not rig.audit_entries("request.refused")
    # Copies of a refused request are audited once, then recognised as duplicates.
    out = encode_request(body(id="REQ-far-away", audience=area(lat=HOME.lat + 1)), rig.key)
    assert [rig.verifier.process(out).status for _ in range(3)] == ["refused", "duplicate", "duplicate"]
    assert len(rig.audit_entries("request.refused")) == 1


def test_rate_limit_per_trust_entry(tmp_path: Path) -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    rig = make_rig(tmp_path, key=key, trust=[entry(key, rate=3), entry(other, "insurer", rate=3)])
    for i in range(3):
        assert rig.send(body(id=f"REQ-rate-{i:03d}")).accepted
    assert_refused(rig, body(id="REQ-rate-999"), "rate_limited")
    assert rig.send(body(id="REQ-other-001"), other).accepted  # another requester has its own budget
    rig.now[0] = NOW + 86400 + 1  # a day later the window has slid on
    later = body(id="REQ-rate-1000", issued=clock.iso(rig.now[0] - 60), expires=clock.iso(rig.now[0] + 3600),
                 window_start=clock.iso(rig.now[0] - 7200), window_end=clock.iso(rig.now[0] - 3600))
    assert rig.send(later).accepted


def test_queue_full(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, limits=Limits(max_pending=2))
    assert rig.send(body(id="REQ-q-0001")).accepted
    assert rig.send(body(id="REQ-q-0002")).accepted
    assert_refused(rig, body(id="REQ-q-0003"), "queue_full")
    rig.verifier.pending.decide("REQ-q-0001", "denied")
    rig.verifier.pending._count = None  # the owner's CLI moved a file: the cached count refreshes
    assert rig.send(body(id="REQ-q-0004")).accepted


def test_validation_order_first_failing_check_wins(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, synced=False)
    # Expired AND wrong audience AND clock unsynchronised: the clock check comes first.
    assert_refused(rig, body(audience="ccother", expires=clock.iso(NOW - 1), issued=clock.iso(NOW - 99)),
                   "clock_unsynchronised")
    rig2 = make_rig(tmp_path / "b", key=rig.key)
    assert_refused(rig2, body(audience="ccother", expires=clock.iso(NOW - 1), issued=clock.iso(NOW - 99)),
                   "expired")


def test_audit_budget_bounds_a_garbage_flood(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    n = UNAUTH_AUDIT_BURST + 400
    for i in range(n):
        assert rig.verifier.process(b"junk" + i.to_bytes(4, "big")).reason == "malformed"
    refused = rig.audit_entries("request.refused")
    assert UNAUTH_AUDIT_BURST <= len(refused) < UNAUTH_AUDIT_BURST + 20
    rig.verifier.flush_suppressed()
    [summary] = rig.audit_entries("request.refused_suppressed")
    assert summary["data"]["counts"]["malformed"] + len(refused) == n
    # Authenticated requests are still audited individually during the flood.
    assert rig.send(body()).accepted and rig.audit_entries("request.accepted")


def test_expired_pending_requests_drop_out(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    assert rig.send(body(expires=clock.iso(NOW + 100))).accepted
    assert rig.verifier.sweep() == []
    rig.now[0] = NOW + 101
    assert rig.verifier.sweep() == ["REQ-0000-test"]
    assert rig.pending_ids() == []
    assert rig.audit_entries("request.expired")[0]["data"]["id"] == "REQ-0000-test"
    assert rig.verifier.pending.get_decided("REQ-0000-test")["decision"] == "expired"


def test_no_expiry_judged_without_a_synchronised_clock(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    assert rig.send(body(expires=clock.iso(NOW + 100))).accepted
    rig.verifier._clock_ok = lambda: False
    rig.verifier._clock_cache = None
    rig.now[0] = NOW + 10_000
    assert rig.verifier.sweep() == []
    assert rig.pending_ids() == ["REQ-0000-test"]


def test_device_id_constant_is_topic_safe() -> None:
    from edge.keys import device_id_for

    real = device_id_for(public_raw(Ed25519PrivateKey.generate()))
    assert real.isalnum() and real.islower() and DEVICE_ID.isalnum()


@pytest.mark.parametrize("reason", ["replayed"])
def test_replay_survives_even_if_pending_file_was_decided(tmp_path: Path, reason: str) -> None:
    rig = make_rig(tmp_path)
    assert rig.send(body()).accepted
    rig.verifier.pending.decide("REQ-0000-test", "denied")
    assert_refused(rig, body(case="again"), reason)


def test_batched_audit_entries_form_a_valid_chain(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.audit.append("trust.added", name="police")  # an ordinary entry first
    batch = [(encode_request(body(id=f"REQ-batch-{i:04d}"), rig.key), None) for i in range(20)]
    batch.insert(5, (b"garbage", None))
    batch.insert(9, (encode_request(body(id="REQ-batch-old", expires=clock.iso(NOW - 1),
                                         issued=clock.iso(NOW - 99)), rig.key), None))
    outcomes = rig.verifier.process_many(batch)
    assert [o.status for o in outcomes].count("accepted") == 20
    rig.audit.append("trust.removed", name="police")  # and an ordinary one after
    entries = rig.audit_entries()
    assert [e["seq"] for e in entries] == list(range(24))
    assert [e["kind"] for e in entries][6] == "request.refused"
    report = verify_log(rig.audit.directory, rig.audit._key.public_key())
    assert report.ok, report.problems
    assert report.head_seq == 23


def test_accepted_request_is_visible_only_after_its_audit_entry(tmp_path: Path) -> None:
    from edge.protocol.pending import PendingQueue
    from edge.protocol.request import parse_request

    rig = make_rig(tmp_path)
    seen_when_audited: list[list[str]] = []
    real_append_many = rig.audit.append_many

    def spy(events):  # type: ignore[no-untyped-def]
        seen_when_audited.append(rig.pending_ids())
        return real_append_many(events)

    rig.audit.append_many = spy  # type: ignore[method-assign]
    assert rig.send(body()).accepted
    assert seen_when_audited == [[]]  # not yet visible while the acceptance was being audited
    assert rig.pending_ids() == ["REQ-0000-test"]
    # A crash between staging and commit: the next start promotes the staged (verified) request.
    v = parse_request(encode_request(body(id="REQ-crash-0001"), rig.key), rig.verifier.trust)
    staged = rig.verifier.pending.add(v, NOW, staged=True)
    assert rig.pending_ids() == ["REQ-0000-test"]
    # Young staged files belong to a running daemon's batch: another process leaves them alone.
    assert [p.id for p in PendingQueue(tmp_path / "requests").list()] == ["REQ-0000-test"]
    old = time.time() - 3600
    os.utime(staged, (old, old))
    assert sorted(p.id for p in PendingQueue(tmp_path / "requests").list()) == ["REQ-0000-test", "REQ-crash-0001"]
    rig.verifier.pending.commit([staged])  # the daemon's own commit after someone else promoted it: no error
