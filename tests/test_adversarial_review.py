"""Adversarial review findings (applied cryptography): each test failed before its fix.

Real components throughout: the device's release builder and vault, the investigator's receiver,
the verifier over real files. Hostile inputs are crafted the way an attacker on the broker could.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.encoding import canonical_json
from edge.errors import ProtocolError
from edge.keys import device_id_for
from edge.protocol import chunks
from edge.protocol.manifest import verify_manifest
from edge.protocol.request import encode_request
from edge.protocol.verifier import DUPLICATE_WINDOW, UNAUTH_AUDIT_BURST
from edge.signing import DOMAIN_MANIFEST, DOMAIN_RELEASE_HEADER, encode_public, public_raw, sign
from tests import test_investigator as inv
from tests.protocol_support import NOW, body, make_rig
from tests.test_investigator import Setup, _assert_nothing_verified, _manifest_parts, _plain, _release, _tar, _wrap

# The investigator tests' fixtures, reused by name (a real device, a real investigator home).
_home_template = inv._home_template
setup = inv.setup

# -- investigator: hostile JSON must be a ProtocolError, never a crash ----------------------------


def _self_signed(magic: bytes, domain: bytes, raw: bytes, key: Ed25519PrivateKey) -> bytes:
    prefix = magic + b"\x01"
    return prefix + sign(key, domain, prefix + raw) + raw


def _bad_number_header(s: Setup, key: Ed25519PrivateKey, number: bytes) -> bytes:
    fields = {
        "v": 1, "request_id": s.record.id, "request_digest": s.record.digest,
        "device_id": device_id_for(public_raw(key)), "device_key": encode_public(key),
        "bundle_sha256": "0" * 64, "bundle_size": 12345, "chunk_size": 8192, "chunks": 1,
        "created": "2026-11-22T10:00:00.000Z",
    }
    # NaN and 1e999 (infinity) are accepted by json.loads but have no canonical encoding.
    raw = canonical_json(fields).replace(b"12345", number)
    return _self_signed(b"CCRH", DOMAIN_RELEASE_HEADER, raw, key)


def test_hostile_json_in_header_or_decline_is_ignored_not_a_crash(setup: Setup) -> None:
    """Anyone can mint a device key and self-sign; a NaN or a deeply nested body used to raise
    ValueError/RecursionError out of Receiver.handle, and the unacked message came back forever."""
    attacker = Ed25519PrivateKey.generate()
    deep = b'{"device_key":"x","a":' + b"[" * 15000 + b"]" * 15000 + b"}"  # unauthenticated: no key needed
    messages = [
        _bad_number_header(setup, attacker, b"NaN"),
        _bad_number_header(setup, attacker, b"1e999"),
        b"CCRH\x01" + bytes(64) + deep,
        b"CCRD\x01" + bytes(64) + deep,
    ]
    r = setup.receiver()
    for message in messages:
        event = r.handle(setup.topic, message)
        assert event.kind == "ignored", event
    for decode in (chunks.decode_header, chunks.decode_decline):
        with pytest.raises(ProtocolError):
            decode(b"CCRH\x01" + bytes(64) + deep if decode is chunks.decode_header else b"CCRD\x01" + bytes(64) + deep)
    # The receiver still takes the genuine release afterwards.
    for m in _release(setup):
        r.handle(setup.topic, m)
    assert len(r.completed) == 1 and not r.refused


def test_hostile_json_in_manifest_is_a_refusal_not_a_crash(setup: Setup) -> None:
    clips, manifest_json, _sig = _manifest_parts(_plain(setup, _release(setup)))
    key = setup.dev.device_key  # type: ignore[attr-defined]
    doc = json.loads(manifest_json)
    size = doc["clips"][0]["plaintext_size"]
    variants = []
    for number in (b"NaN", b"1e999"):
        evil_json = manifest_json.replace(f'"plaintext_size":{size}'.encode(), b'"plaintext_size":' + number, 1)
        assert evil_json != manifest_json
        variants.append((evil_json, sign(key, DOMAIN_MANIFEST, evil_json)))
    deep = b'{"device_key":"x","a":' + b"[" * 50000 + b"]" * 50000 + b"}"
    variants.append((deep, bytes(64)))
    for manifest in variants:
        with pytest.raises(ProtocolError):
            verify_manifest(*manifest)
    for manifest in variants:
        r = setup.receiver()
        bundle = _tar([*clips, ("manifest.json", manifest[0]), ("manifest.sig", manifest[1])])
        for m in _wrap(setup, bundle):
            r.handle(setup.topic, m)  # used to raise ValueError / RecursionError
        assert len(r.refused) == 1 and r.refused[0].detail.startswith("malformed"), r.refused
    _assert_nothing_verified(setup.out)


# -- investigator: a sparse tar member must not expand a tiny bundle onto the disk ---------------


@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_sparse_tar_member_is_refused_before_it_expands(setup: Setup, tmp_path: Path, fmt: str) -> None:
    clips, manifest_json, manifest_sig = _manifest_parts(_plain(setup, _release(setup)))
    src = tmp_path / "sparse-src"
    (src / "clips").mkdir(parents=True)
    apparent = 64 * 1024 * 1024
    with open(src / "clips" / "bomb.ts", "wb") as fh:
        fh.truncate(apparent)  # a hole: a few hundred bytes in the tar, 64 MiB when extracted
        fh.seek(apparent - 1)
        fh.write(b"x")
    tar_path = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", f"--format={fmt}", "-C", str(src), "-cf", str(tar_path), "clips/bomb.ts"],
                   check=True, timeout=60)
    with tarfile.open(tar_path) as t:
        [bomb] = t.getmembers()
        assert bomb.issparse()
        sparse_bytes = tar_path.read_bytes()
    assert len(sparse_bytes) < apparent // 100
    # The sparse member first, then the genuine members: a tar stream is a concatenation of members.
    tail = _tar([*clips, ("manifest.json", manifest_json), ("manifest.sig", manifest_sig)])
    body_end = sparse_bytes.rstrip(b"\0")
    bundle = sparse_bytes[: -(-len(body_end) // 512) * 512] + tail
    r = setup.receiver()
    for m in _wrap(setup, bundle):
        r.handle(setup.topic, m)
    assert len(r.refused) == 1 and r.refused[0].detail.startswith("unsafe_bundle"), r.refused
    _assert_nothing_verified(setup.out)


# -- device: replayed copies of one captured request must not grow the audit log without bound ----


def test_replayed_copies_of_a_captured_request_do_not_flood_the_audit_log(tmp_path: Path) -> None:
    """Requests travel in the clear on the broker. Anyone who captured one could resend the same
    bytes: each copy inside the fan-out window was audited as its own ``request.duplicate`` entry
    (and each one after it as a refused replay), so an untrusted party could fill the disk."""
    rig = make_rig(tmp_path)
    msg = encode_request(body(), rig.key)
    assert rig.verifier.process(msg).accepted
    n = UNAUTH_AUDIT_BURST + 400
    statuses = {rig.verifier.process(msg).status for _ in range(n)}
    assert statuses == {"duplicate"}
    rig.now[0] = NOW + DUPLICATE_WINDOW + 60  # after the window the same bytes are a replay
    reasons = {rig.verifier.process(msg).reason for _ in range(n)} - {None}
    assert reasons <= {"replayed"}
    rig.verifier.flush_suppressed()
    individual = rig.audit_entries("request.duplicate") + rig.audit_entries("request.refused")
    assert len(individual) < UNAUTH_AUDIT_BURST + 20, len(individual)
    # Nothing is lost from the record: the suppressed copies are counted in one summary entry.
    counted = sum(sum(e["data"]["counts"].values()) for e in rig.audit_entries("request.refused_suppressed"))
    assert counted + len(individual) == 2 * n
    assert [p.id for p in rig.verifier.pending.list()] == ["REQ-0000-test"]
    # A fresh request from the same requester is still audited individually.
    assert rig.send(body(id="REQ-0001-fresh")).accepted and rig.audit_entries("request.accepted")[-1]["data"][
        "id"] == "REQ-0001-fresh"


def test_a_trusted_requester_cannot_flood_the_audit_log_with_refused_requests(tmp_path: Path) -> None:
    """The per-requester rate limit counts accepted requests only; a trusted but hostile (or
    stolen) key could send endless fresh requests that fail a later check, one audit entry each."""
    from edge import clock
    from tests.protocol_support import entry

    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    rig = make_rig(tmp_path, key=key, trust=[entry(key), entry(other, "insurer")])
    n = UNAUTH_AUDIT_BURST + 300
    too_long = {"window_start": clock.iso(NOW - 13 * 3600), "window_end": clock.iso(NOW - 60)}
    for i in range(n):
        assert rig.send(body(id=f"REQ-flood-{i:05d}", **too_long)).reason == "window_too_long"
    individual = rig.audit_entries("request.refused")
    assert UNAUTH_AUDIT_BURST <= len(individual) < UNAUTH_AUDIT_BURST + 20, len(individual)
    # Another requester's refusals keep their own budget and are audited one by one.
    assert rig.send(body(id="REQ-other-00001", **too_long), other).reason == "window_too_long"
    assert rig.audit_entries("request.refused")[-1]["data"]["id"] == "REQ-other-00001"
    rig.verifier.flush_suppressed()
    counted = sum(e["data"]["counts"].get("window_too_long", 0)
                  for e in rig.audit_entries("request.refused_suppressed"))
    assert counted + len(individual) == n
    # Acceptances are never suppressed.
    assert rig.send(body(id="REQ-good-00001")).accepted
    assert rig.audit_entries("request.accepted")[-1]["data"]["id"] == "REQ-good-00001"


def test_refused_orphan_chunks_leave_no_state_behind(setup: Setup) -> None:
    """Chunks need no signature (only the request digest, which anyone on the broker has seen).
    One naming a new bundle used to leave a bookkeeping entry in memory even when it was refused
    for lack of room: a flood of them grew the receiver without bound."""
    from edge.investigator.receiver import ORPHAN_BUNDLES_MAX

    r = setup.receiver()
    digest = bytes.fromhex(setup.record.digest)
    kinds = [r.handle(setup.topic, chunks.encode_chunk(digest, i.to_bytes(32, "big"), 0, 1, b"x")).kind
             for i in range(ORPHAN_BUNDLES_MAX + 2000)]
    assert kinds.count("chunk") == ORPHAN_BUNDLES_MAX and kinds.count("ignored") == 2000
    assert len(r.bundles) <= ORPHAN_BUNDLES_MAX
    # The genuine release still completes.
    for m in _release(setup):
        r.handle(setup.topic, m)
    assert len(r.completed) == 1


@pytest.mark.parametrize("char", ["\x1b", "\x7f", "\x85", "\x9b"])
def test_c1_control_characters_in_requester_text_are_malformed(tmp_path: Path, char: str) -> None:
    """PROTOCOL.md: no control characters except tab and newline. U+0080..U+009F are control
    characters too (U+009B is CSI, which some terminals obey when the owner runs `requests show`)."""
    import dataclasses

    from edge.protocol.request import signature_input
    from edge.signing import DOMAIN_REQUEST, key_id

    rig = make_rig(tmp_path)
    payload = canonical_json(dataclasses.replace(body(), reason=f"see {char}[2J here").to_dict())
    kid = key_id(rig.key)
    message = b"CCRQ\x01" + kid + sign(rig.key, DOMAIN_REQUEST, signature_input(kid, payload)) + payload
    outcome = rig.verifier.process(message)
    assert (outcome.status, outcome.reason) == ("refused", "malformed")
    assert rig.pending_ids() == []


def test_a_window_reaching_into_the_future_is_refused(tmp_path: Path) -> None:
    """Guarantee 6: windows in the future are refused. Only the start was checked, so a request
    for "the next 12 hours" was accepted, and an approval hours later (every clip in the window,
    the CLI's default) sent footage recorded after the request arrived: prospective surveillance."""
    from edge import clock

    rig = make_rig(tmp_path)
    ahead = body(id="REQ-ahead-0001", window_start=clock.iso(NOW - 60), window_end=clock.iso(NOW + 6 * 3600))
    outcome = rig.send(ahead)
    assert (outcome.status, outcome.reason) == ("refused", "window_in_future")
    # Clock skew tolerance still applies to the end, as it does to the start.
    assert rig.send(body(id="REQ-skew-0001", window_start=clock.iso(NOW - 3600),
                         window_end=clock.iso(NOW + 240))).accepted
