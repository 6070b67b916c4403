"""The investigator's receiver against genuine and hostile release input (real files, real keys, real CLI)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import shutil
import stat
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import keys
from edge.investigator.home import Home, RequestRecord
from edge.investigator.receiver import Receiver
from edge.protocol import chunks
from edge.protocol.chunks import ReleaseHeader, encode_chunk, encode_header
from edge.protocol.manifest import sign_manifest, verify_manifest
from edge.protocol.release import build_release, chunk_messages, decline_message
from edge.protocol.request import parse_request
from edge.protocol.trust import TrustEntry, TrustStore
from edge.signing import encode_public, public_raw
from tests.conftest import run_cli
from tests.consent_helpers import add_clip, decoded_frames, make_ts, open_device, signed_request

CHUNK = 8192


@dataclass
class Setup:
    home: Home
    dev: object
    record: RequestRecord
    verified: object
    clips: dict[str, bytes]
    out: Path
    topic: str

    def receiver(self, records: list[RequestRecord] | None = None) -> Receiver:
        return Receiver(self.home, self.out, records or [self.record])


@pytest.fixture(scope="module")
def _home_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("invtemplate") / "inv"
    res = run_cli("--home", str(home), "keygen", "--name", "Alice", "--inbox", "alice", "--organisation", "Police",
                  "--json", prog="consentcam-investigator")
    assert res.returncode == 0, res.stderr
    card = json.loads(res.stdout)
    assert card["signing_key"].startswith("ed25519:") and card["recipient"].startswith("age1")
    assert stat.S_IMODE((home / "signing.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "identity.txt").stat().st_mode) == 0o600
    again = run_cli("--home", str(home), "keygen", "--name", "A", "--inbox", "alice", prog="consentcam-investigator")
    assert again.returncode == 3 and "refusing to overwrite" in again.stderr
    return home


def _record(home: Home, device_id: str, request_id: str) -> tuple[RequestRecord, object]:
    from tests.consent_helpers import Investigator

    inv = Investigator(home.signing_key(), home.identity(), "alice")
    raw = signed_request(inv, device_id, request_id=request_id)
    record = RequestRecord(id=request_id, digest=hashlib.sha256(raw).hexdigest(), raw=raw,
                           audience={"device": device_id}, topics=[], created="2026-11-22T10:00:00.000Z")
    home.save_request(record)
    store = TrustStore([TrustEntry.create("alice", encode_public(home.signing_key().public_key()), 43200, 100)])
    return record, parse_request(raw, store)


@pytest.fixture
def setup(state_dir: Path, tmp_path: Path, _home_template: Path) -> Setup:
    shutil.copytree(_home_template, tmp_path / "inv")
    home = Home(tmp_path / "inv")
    dev = open_device(state_dir)
    videos = [make_ts(1.0, seed=i) for i in range(2)]
    clips = {add_clip(dev, v, time.time() - 900 + 60 * i): v for i, v in enumerate(videos)}
    device_id = keys.load_device_info(dev.state).device_id
    record, vr = _record(home, device_id, "req-aaaaaaaa")
    return Setup(home, dev, record, vr, clips, tmp_path / "out", "consentcam/v1/inbox/alice/req-aaaaaaaa")


def _release(s: Setup, vr=None, clip_ids=None) -> list[bytes]:  # type: ignore[no-untyped-def]
    vr = vr or s.verified
    item = build_release(s.dev.state, s.dev.vault, s.dev.identity, vr, clip_ids or list(s.clips),  # type: ignore[attr-defined]
                         s.dev.device_key, CHUNK)  # type: ignore[attr-defined]
    return [item.header_path.read_bytes(), *chunk_messages(item)]


def _feed(receiver: Receiver, topic: str, messages: list[bytes]) -> list[str]:
    return [receiver.handle(topic, m).kind for m in messages]


@contextlib.contextmanager
def _publisher(port: int, client_id: str) -> Iterator[mqtt.Client]:
    """A plain MQTT v5 client on the test broker, connected (CONNACK seen) for the with-block."""
    connected = threading.Event()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    pub.on_connect = lambda *a: connected.set()
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        assert connected.wait(10)
        yield pub
    finally:
        pub.disconnect()
        pub.loop_stop()


def _assert_nothing_verified(out: Path) -> None:
    visible = [p for p in out.iterdir() if not p.name.startswith(".")] if out.exists() else []
    assert visible == [] and not any(out.glob(".incoming-*")) if out.exists() else True


def _plain(s: Setup, messages: list[bytes]) -> bytes:
    bundle = b"".join(chunks.decode_chunk(m).payload for m in messages[1:])
    return pyrage.decrypt(bundle, [s.home.identity()])


def _wrap(s: Setup, plain_tar: bytes, *, key: Ed25519PrivateKey | None = None, recipient: str | None = None,
          record: RequestRecord | None = None, device_id: str | None = None) -> list[bytes]:
    """Encrypt a tar, sign a header (by the device unless ``key``), and chunk it: a crafted release."""
    key = key or s.dev.device_key  # type: ignore[attr-defined]
    record = record or s.record
    rcpt = pyrage.x25519.Recipient.from_str(recipient or s.home.card().recipient)
    bundle = pyrage.encrypt(plain_tar, [rcpt])
    from edge.keys import device_id_for

    header = ReleaseHeader(
        request_id=record.id, request_digest=record.digest, device_id=device_id or device_id_for(public_raw(key)),
        device_key=encode_public(key), bundle_sha256=hashlib.sha256(bundle).hexdigest(), bundle_size=len(bundle),
        chunk_size=CHUNK, chunks=-(-len(bundle) // CHUNK), created="2026-11-22T10:00:00.000Z")
    if device_id is None:
        head = encode_header(header, key)
    else:  # forge: sign a header naming an id that is not derived from the key
        from edge.encoding import canonical_json
        from edge.signing import DOMAIN_RELEASE_HEADER, sign

        raw = canonical_json(header.to_dict())
        head = b"CCRH\x01" + sign(key, DOMAIN_RELEASE_HEADER, b"CCRH\x01" + raw) + raw
    digest, bsha = bytes.fromhex(record.digest), bytes.fromhex(header.bundle_sha256)
    return [head] + [encode_chunk(digest, bsha, i, header.chunks, bundle[i * CHUNK:(i + 1) * CHUNK])
                     for i in range(header.chunks)]


def _tar(members: list[tuple[str, bytes]], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info in extra or []:
            tar.addfile(info)
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _members(plain: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]


# -- genuine releases ---------------------------------------------------------------------------


def test_reordered_duplicated_release_assembles_and_verifies(setup: Setup) -> None:
    messages = _release(setup)
    header, body = messages[0], messages[1:]
    random.Random(7).shuffle(body)
    stream = [*body[:3], header, *body[3:], *body[:2]]  # chunks before the header, and duplicates
    kinds = _feed(setup.receiver(), setup.topic, stream)
    assert kinds.count("complete") == 1 and "refused" not in kinds
    device_id = keys.load_device_info(setup.dev.state).device_id  # type: ignore[attr-defined]
    target = setup.out / device_id
    for cid, data in setup.clips.items():
        assert (target / "clips" / f"{cid}.ts").read_bytes() == data
        assert decoded_frames(target / "clips" / f"{cid}.ts") > 0
    report = json.loads((target / "verification-report.json").read_text())
    assert report["ok"] and report["request_digest"] == setup.record.digest
    assert "OK" in (target / "verification-report.txt").read_text()
    assert not (setup.home.incoming_dir / setup.record.id / chunks.decode_header(header).bundle_sha256 /
                "chunks").exists()
    res = run_cli("--home", str(setup.home.root), "verify", str(target), prog="consentcam-investigator")
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr


def test_interrupted_receive_resumes_from_stored_chunks(setup: Setup) -> None:
    messages = _release(setup)
    first = setup.receiver()
    _feed(first, setup.topic, messages[: len(messages) // 2])
    stored = list((setup.home.incoming_dir / setup.record.id).rglob("chunks/*"))
    assert stored and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in stored)
    second = setup.receiver()  # a new process: knows only what is on disk
    kinds = _feed(second, setup.topic, messages[len(messages) // 2:])
    assert kinds[-1] == "complete"


def test_decline_verifies(setup: Setup) -> None:
    msg = decline_message(setup.verified, setup.dev.device_key)  # type: ignore[attr-defined]
    r = setup.receiver()
    assert r.handle(setup.topic, msg).kind == "declined"
    forged = msg[:10] + bytes([msg[10] ^ 1]) + msg[11:]
    assert setup.receiver().handle(setup.topic, forged).kind == "ignored"


# -- hostile input ------------------------------------------------------------------------------


def test_truncated_and_foreign_chunks_are_rejected(setup: Setup, state_dir: Path) -> None:
    messages = _release(setup)
    r = setup.receiver()
    assert r.handle(setup.topic, messages[0]).kind == "header"
    truncated = messages[1][:-100]
    assert r.handle(setup.topic, truncated).kind == "ignored"  # hash no longer matches
    c = chunks.decode_chunk(messages[1])
    short = encode_chunk(c.request_digest, c.bundle_sha256, c.index, c.count, c.payload[:-100])  # re-hashed
    event = r.handle(setup.topic, short)
    assert event.kind == "ignored" and "chunk_size_mismatch" in event.detail
    other = encode_chunk(b"\x11" * 32, c.bundle_sha256, c.index, c.count, c.payload)  # another request's chunk
    event = r.handle(setup.topic, other)
    assert event.kind == "ignored" and "wrong_request" in event.detail
    kinds = _feed(r, setup.topic, messages[1:])
    assert kinds[-1] == "complete"  # the genuine chunks still complete the release


def test_header_signed_by_another_key_is_ignored(setup: Setup) -> None:
    messages = _release(setup)
    forged = bytearray(messages[0])
    forged[5:69] = Ed25519PrivateKey.generate().sign(b"x")
    r = setup.receiver()
    event = r.handle(setup.topic, bytes(forged))
    assert event.kind == "ignored" and "bad_signature" in event.detail
    _feed(r, setup.topic, messages[1:])
    assert not r.completed
    _assert_nothing_verified(setup.out)


def test_device_id_not_derived_from_key_is_ignored(setup: Setup) -> None:
    plain = _plain(setup, _release(setup))
    device_id = keys.load_device_info(setup.dev.state).device_id  # type: ignore[attr-defined]
    attacker = Ed25519PrivateKey.generate()
    messages = _wrap(setup, plain, key=attacker, device_id=device_id)
    r = setup.receiver()
    kinds = _feed(r, setup.topic, messages)
    assert "complete" not in kinds
    assert r.handle(setup.topic, messages[0]).detail.startswith("device_id_mismatch")
    _assert_nothing_verified(setup.out)


def test_release_from_another_device_for_a_device_request_is_ignored(setup: Setup) -> None:
    plain = _plain(setup, _release(setup))
    event = setup.receiver().handle(setup.topic, _wrap(setup, plain, key=Ed25519PrivateKey.generate())[0])
    assert event.kind == "ignored" and "wrong_device" in event.detail


def _manifest_parts(plain: bytes) -> tuple[list[tuple[str, bytes]], bytes, bytes]:
    members = _members(plain)
    return members[:-2], members[-2][1], members[-1][1]


def test_manifest_signed_by_another_key_is_refused(setup: Setup) -> None:
    clips, manifest_json, manifest_sig = _manifest_parts(_plain(setup, _release(setup)))
    manifest = verify_manifest(manifest_json, manifest_sig)
    attacker = Ed25519PrivateKey.generate()
    from edge.keys import device_id_for

    evil = replace(manifest, device_key=encode_public(attacker), device_id=device_id_for(public_raw(attacker)))
    evil_json, evil_sig = sign_manifest(evil, attacker)
    r = setup.receiver()
    _feed(r, setup.topic, _wrap(setup, _tar([*clips, ("manifest.json", evil_json), ("manifest.sig", evil_sig)])))
    assert [e.detail.split(":")[0] for e in r.refused] == ["wrong_device_key"]
    bad_sig = bytes(64)
    r2 = setup.receiver()
    _feed(r2, setup.topic, _wrap(setup, _tar([*clips, ("manifest.json", manifest_json), ("manifest.sig", bad_sig)])))
    assert r2.refused and r2.refused[0].detail.startswith("bad_signature")
    _assert_nothing_verified(setup.out)


def test_bundle_encrypted_to_another_recipient_is_refused(setup: Setup) -> None:
    plain = _plain(setup, _release(setup))
    other = str(pyrage.x25519.Identity.generate().to_public())
    r = setup.receiver()
    _feed(r, setup.topic, _wrap(setup, plain, recipient=other))
    assert r.refused and r.refused[0].detail.startswith("not_for_us")
    _assert_nothing_verified(setup.out)


def test_release_retargeted_from_another_request_is_refused(setup: Setup) -> None:
    device_id = keys.load_device_info(setup.dev.state).device_id  # type: ignore[attr-defined]
    other_record, other_vr = _record(setup.home, device_id, "req-bbbbbbbb")
    plain = _plain(setup, _release(setup, other_vr))  # genuine release, but for request B
    r = setup.receiver([setup.record, other_record])
    _feed(r, setup.topic, _wrap(setup, plain))  # re-signed header claims request A
    assert r.refused and r.refused[0].detail.startswith("wrong_request")
    _assert_nothing_verified(setup.out)


def test_modified_clip_inside_bundle_is_refused(setup: Setup) -> None:
    clips, manifest_json, manifest_sig = _manifest_parts(_plain(setup, _release(setup)))
    name, data = clips[0]
    clips[0] = (name, data[:-1] + bytes([data[-1] ^ 1]))
    r = setup.receiver()
    _feed(r, setup.topic, _wrap(setup, _tar([*clips, ("manifest.json", manifest_json), ("manifest.sig",
                                                                                         manifest_sig)])))
    assert r.refused and r.refused[0].detail.startswith("clip_hash_mismatch")
    _assert_nothing_verified(setup.out)


@pytest.mark.parametrize("evil", ["../escape.ts", "/tmp/abs-consentcam-test.ts", "clips/../../up.ts", "symlink"])
def test_unsafe_tar_members_are_refused(setup: Setup, evil: str, tmp_path: Path) -> None:
    clips, manifest_json, manifest_sig = _manifest_parts(_plain(setup, _release(setup)))
    extra = []
    members = list(clips)
    if evil == "symlink":
        link = tarfile.TarInfo("clips/link.ts")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        extra.append(link)
    else:
        members.insert(0, (evil, b"owned"))
    r = setup.receiver()
    members += [("manifest.json", manifest_json), ("manifest.sig", manifest_sig)]
    _feed(r, setup.topic, _wrap(setup, _tar(members, extra)))
    assert r.refused and r.refused[0].detail.startswith("unsafe_bundle"), r.refused
    assert not Path("/tmp/abs-consentcam-test.ts").exists()
    assert not list(tmp_path.rglob("escape.ts")) and not list(tmp_path.rglob("up.ts"))
    _assert_nothing_verified(setup.out)


# -- offline verify -----------------------------------------------------------------------------


@pytest.mark.parametrize("tamper, reason", [
    ("clip", "clip_hash_mismatch"),
    ("manifest", "bad_signature"),
    ("request", "wrong_request"),
    ("extra", "clip_set_mismatch"),
    ("stray", "unexpected_file"),
    ("missing", "missing_file"),
])
def test_verify_reports_the_specific_mismatch(setup: Setup, tamper: str, reason: str, tmp_path: Path) -> None:
    r = setup.receiver()
    _feed(r, setup.topic, _release(setup))
    target = Path(r.completed[0].path)  # type: ignore[arg-type]
    copy = tmp_path / "copy"
    shutil.copytree(target, copy)
    if tamper == "clip":
        clip = next((copy / "clips").iterdir())
        data = bytearray(clip.read_bytes())
        data[100] ^= 1
        clip.write_bytes(bytes(data))
    elif tamper == "manifest":
        text = (copy / "manifest.json").read_text().replace("CASE-1", "CASE-2")
        (copy / "manifest.json").write_text(text)
    elif tamper == "request":
        raw = bytearray((copy / "request.ccrq").read_bytes())
        raw[-3] ^= 1
        (copy / "request.ccrq").write_bytes(bytes(raw))
    elif tamper == "extra":
        (copy / "clips" / "planted.ts").write_bytes(b"x")
    elif tamper == "stray":
        (copy / "clips" / "notes.txt").write_bytes(b"x")
    else:
        (copy / "manifest.sig").unlink()
    res = run_cli("--home", str(setup.home.root), "verify", str(copy), prog="consentcam-investigator")
    assert res.returncode == 6, res.stdout + res.stderr
    assert reason in res.stderr and res.stderr.count("\n") == 1


# -- area requests: several devices, one reply topic ----------------------------------------------


def test_area_request_answers_from_two_devices_stay_apart(setup: Setup, tmp_path: Path) -> None:
    from edge.protocol.request import Area
    from edge.state import StateDir
    from tests.conftest import PASSPHRASE
    from tests.consent_helpers import Investigator

    second = StateDir(tmp_path / "state2")
    keys.init_state(second, PASSPHRASE)
    dev2 = open_device(second.root)
    clip2 = make_ts(1.0, seed=33)
    cid2 = add_clip(dev2, clip2, time.time() - 300)
    inv = Investigator(setup.home.signing_key(), setup.home.identity(), "alice")
    area = Area(51.5, -0.12, 2000)
    raw = signed_request(inv, "", request_id="area-0000001", area=area)
    record = RequestRecord(id="area-0000001", digest=hashlib.sha256(raw).hexdigest(), raw=raw,
                           audience={"area": area.to_dict()}, topics=[], created="2026-11-22T10:00:00.000Z")
    setup.home.save_request(record)
    store = TrustStore([TrustEntry.create("alice", encode_public(setup.home.signing_key().public_key()), 43200, 9)])
    vr = parse_request(raw, store)
    one = _release(setup, vr)
    item2 = build_release(second, dev2.vault, dev2.identity, vr, [cid2], dev2.device_key, CHUNK)
    two = [item2.header_path.read_bytes(), *chunk_messages(item2)]
    mixed = [m for pair in zip(one, two, strict=False) for m in pair] + one[len(two):] + two[len(one):]
    r = setup.receiver([record])
    _feed(r, "consentcam/v1/inbox/alice/area-0000001", mixed)
    assert sorted(e.device_id for e in r.completed) == sorted(
        [keys.load_device_info(setup.dev.state).device_id, keys.load_device_info(second).device_id])  # type: ignore[attr-defined]
    by_device = {e.device_id: Path(e.path) for e in r.completed}  # type: ignore[arg-type]
    assert (by_device[keys.load_device_info(second).device_id] / "clips" / f"{cid2}.ts").read_bytes() == clip2
    assert not r.refused


def test_area_request_cli_publishes_one_copy_per_cell(setup: Setup, broker) -> None:  # type: ignore[no-untyped-def]
    from edge.protocol import topics
    from edge.protocol.request import request_digest

    seen: list[tuple[str, bytes]] = []
    ready = threading.Event()
    cap = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    cap.on_subscribe = lambda *a: ready.set()
    cap.on_message = lambda c, u, m: seen.append((m.topic, m.payload))
    cap.connect("127.0.0.1", broker.port)
    cap.loop_start()
    cap.subscribe("consentcam/v1/area/#", qos=1)
    assert ready.wait(10)
    try:
        res = run_cli("--home", str(setup.home.root), "request", "--broker", f"127.0.0.1:{broker.port}",
                      "--area", "51.5007,-0.1246,6000", "--from=-2h", "--to", "now", "--case", "C-9",
                      "--reason", "hit and run", "--json", prog="consentcam-investigator")
        assert res.returncode == 0, res.stderr
        sent = json.loads(res.stdout)
        expected = topics.area_topics("consentcam/v1", 51.5007, -0.1246, 6000)
        deadline = time.monotonic() + 10
        while len(seen) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        cap.disconnect()
        cap.loop_stop()
    assert len(expected) > 1 and sorted(t for t, _ in seen) == sorted(expected) == sorted(sent["topics"])
    assert {request_digest(p) for _, p in seen} == {sent["digest"]}  # the same signed bytes everywhere


# -- offline delivery and resume through a real broker ---------------------------------------------


def test_receive_offline_then_resume_across_processes(setup: Setup, broker) -> None:  # type: ignore[no-untyped-def]
    """Messages published while the investigator is offline wait in its persistent session; chunks
    stored by one `receive` process are reused by the next."""
    inv = ["--home", str(setup.home.root)]
    common = ["receive", "--broker", f"127.0.0.1:{broker.port}", "--request", setup.record.id, "--out",
              str(setup.out), "--json"]
    first = run_cli(*inv, *common, "--timeout", "1", prog="consentcam-investigator")  # opens the session
    assert first.returncode == 12, first.stderr
    messages = _release(setup)
    half = len(messages) // 2
    with _publisher(broker.port, "fake-device") as pub:

        def send(batch: list[bytes]) -> None:
            for m in batch:
                pub.publish(setup.topic, m, qos=1).wait_for_publish(10)

        send(messages[:half])  # the investigator is offline
        second = run_cli(*inv, *common, "--timeout", "3", prog="consentcam-investigator")
        assert second.returncode == 12, second.stderr  # incomplete, but stored
        assert f"incomplete after 3s: {half - 1} of {len(messages) - 1} chunks" in second.stderr
        stored = list((setup.home.incoming_dir / setup.record.id).rglob("chunks/*"))
        assert len(stored) == half - 1
        send(messages[half:])
    third = run_cli(*inv, *common, "--timeout", "20", prog="consentcam-investigator")
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout)["releases"][0]["status"] == "verified"
    for cid, data in setup.clips.items():
        device_id = keys.load_device_info(setup.dev.state).device_id  # type: ignore[attr-defined]
        assert (setup.out / device_id / "clips" / f"{cid}.ts").read_bytes() == data


def test_substituted_chunk_fails_the_signed_bundle_hash(setup: Setup) -> None:
    messages = _release(setup)
    c = chunks.decode_chunk(messages[2])
    evil = bytes([c.payload[0] ^ 1]) + c.payload[1:]  # same size, valid own hash, wrong content
    r = setup.receiver()
    assert r.handle(setup.topic, encode_chunk(c.request_digest, c.bundle_sha256, c.index, c.count, evil)).kind \
        == "chunk"
    _feed(r, setup.topic, messages)
    assert r.refused and r.refused[0].detail.startswith("bundle_hash_mismatch"), r.refused
    _assert_nothing_verified(setup.out)


def test_receiver_survives_arbitrary_messages(setup: Setup) -> None:
    """Property-based: random bytes behind every magic never crash the receiver nor write output."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    receiver = setup.receiver()
    genuine = _release(setup)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from([b"", b"CCRH\x01", b"CCRC\x01", b"CCRD\x01", genuine[0][:69], genuine[1][:109]]),
           st.binary(max_size=600))
    def fuzz(prefix: bytes, data: bytes) -> None:
        event = receiver.handle(setup.topic, prefix + data)
        assert event.kind in ("ignored", "chunk", "duplicate")

    fuzz()
    _assert_nothing_verified(setup.out)
    assert not receiver.completed and not receiver.refused


def test_receive_cli_refuses_a_retargeted_release_clearly(setup: Setup, broker) -> None:  # type: ignore[no-untyped-def]
    inv = ["--home", str(setup.home.root)]
    common = ["receive", "--broker", f"127.0.0.1:{broker.port}", "--request", setup.record.id, "--out",
              str(setup.out)]
    assert run_cli(*inv, *common, "--timeout", "1", prog="consentcam-investigator").returncode == 12
    genuine = _release(setup)
    plain = _plain(setup, genuine)
    other = str(pyrage.x25519.Identity.generate().to_public())
    forged = bytearray(genuine[0])  # a header signed by someone else: ignored, not fatal
    forged[5:69] = Ed25519PrivateKey.generate().sign(b"x")
    with _publisher(broker.port, "hostile") as pub:
        for m in [bytes(forged), *_wrap(setup, plain, recipient=other)]:
            pub.publish(setup.topic, m, qos=1).wait_for_publish(10)
    res = run_cli(*inv, *common, "--timeout", "20", prog="consentcam-investigator")
    assert res.returncode == 6, res.stdout + res.stderr
    assert "bad_signature" in res.stderr  # the forged header was reported and ignored
    assert res.stderr.strip().splitlines()[-1].startswith("consentcam-investigator: release refused: not_for_us")
    _assert_nothing_verified(setup.out)


@pytest.mark.parametrize("args, code, message", [
    (["request", "--device", "ccx", "--from=-1h", "--to", "now", "--case", "c", "--reason", "r", "--broker",
      "nohost"], 11, "expected HOST:PORT"),
    (["request", "--area", "51.5,-0.1", "--from=-1h", "--to", "now", "--case", "c", "--reason", "r", "--broker",
      "127.0.0.1:1"], 1, "expected LAT,LON,RADIUS_M"),
    (["request", "--device", "ccx", "--from", "yesterday", "--to", "now", "--case", "c", "--reason", "r",
      "--broker", "127.0.0.1:1"], 1, "time 'yesterday'"),
    (["request", "--area", "51.5,-0.1,50000", "--from=-1h", "--to", "now", "--case", "c", "--reason", "r",
      "--broker", "127.0.0.1:1"], 8, "radius_m"),
    (["receive", "--request", "nosuchrequest", "--out", "x", "--broker", "127.0.0.1:1"], 5, "no request"),
    (["verify", "/nonexistent/dir"], 6, "not a directory"),
    (["keygen", "--name", "B", "--inbox", "Bad Inbox!"], 3, "keys already exist"),
])
def test_cli_bad_input_gets_one_clear_line(setup: Setup, args: list[str], code: int, message: str) -> None:
    before = sorted(setup.home.requests_dir.iterdir())
    res = run_cli("--home", str(setup.home.root), *args, prog="consentcam-investigator", timeout=60)
    assert res.returncode == code, res.stderr
    assert message in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert sorted(setup.home.requests_dir.iterdir()) == before  # nothing recorded, nothing lost


def test_cli_without_keys_says_run_keygen(tmp_path: Path) -> None:
    res = run_cli("--home", str(tmp_path / "empty"), "request", "--device", "ccx", "--from=-1h", "--to", "now",
                  "--case", "c", "--reason", "r", "--broker", "127.0.0.1:1", prog="consentcam-investigator")
    assert res.returncode == 3 and "keygen" in res.stderr and res.stderr.count("\n") == 1
    res = run_cli("--home", str(tmp_path / "new"), "keygen", "--name", "B", "--inbox", "Bad Inbox!",
                  prog="consentcam-investigator")
    assert res.returncode == 1 and "inbox 'Bad Inbox!'" in res.stderr


def test_oversized_release_is_ignored(setup: Setup) -> None:
    messages = _release(setup)
    r = Receiver(setup.home, setup.out, [setup.record], max_bundle_bytes=1000)
    event = r.handle(setup.topic, messages[0])
    assert event.kind == "ignored" and event.detail.startswith("too_large")


def test_replies_to_another_request_are_kept_for_its_own_receive(setup: Setup) -> None:
    """The persistent session delivers replies to every request sent; a receive for request A must
    not swallow request B's release or decline: they wait under HOME/incoming for B's receive."""
    device_id = keys.load_device_info(setup.dev.state).device_id  # type: ignore[attr-defined]
    other, other_vr = _record(setup.home, device_id, "req-bbbbbbbb")
    b_topic = "consentcam/v1/inbox/alice/req-bbbbbbbb"
    everything = [setup.record, other]
    for_a = Receiver(setup.home, setup.out, everything, selected={setup.record.id})
    kinds = _feed(for_a, b_topic, _release(setup, other_vr))
    assert "complete" not in kinds and not for_a.completed
    assert for_a.handle(b_topic, decline_message(other_vr, setup.dev.device_key)).kind == "kept"  # type: ignore[attr-defined]
    _assert_nothing_verified(setup.out)
    for_b = Receiver(setup.home, setup.out, everything, selected={other.id})
    events = for_b.finish_ready()
    assert sorted(e.kind for e in events) == ["complete", "declined"]
    done = next(e for e in events if e.kind == "complete")
    assert (Path(done.path) / "verification-report.json").exists()  # type: ignore[arg-type]
