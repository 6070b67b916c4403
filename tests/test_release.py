"""Release building and publishing: real vault, real age/tar binaries, real mosquitto."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge import audit, keys
from edge.errors import IntegrityError, NotFoundError, ProtocolError
from edge.protocol import chunks, outbox
from edge.protocol.manifest import verify_manifest
from edge.protocol.release import ReleaseError, build_release, decline_message, publish_release
from tests.consent_helpers import add_clip, make_ts, new_investigator, open_device, signed_request, verified


@pytest.fixture
def released(state_dir: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    dev = open_device(state_dir)
    videos = [make_ts(1.0, seed=i) for i in range(2)]
    clips = {add_clip(dev, v, time.time() - 600 + 60 * i): v for i, v in enumerate(videos)}
    inv = new_investigator()
    info = keys.load_device_info(dev.state)
    vr = verified(inv, signed_request(inv, info.device_id))
    item = build_release(dev.state, dev.vault, dev.identity, vr, list(clips), dev.device_key, 4096)
    id_file = tmp_path / "investigator.txt"
    id_file.write_text(str(inv.identity) + "\n")
    return dev, inv, vr, item, clips, id_file


def _age_decrypt(bundle: Path, id_file: Path) -> bytes:
    proc = subprocess.run(["age", "-d", "-i", str(id_file), str(bundle)], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_bundle_opens_with_age_and_tar_and_holds_exact_clips(released) -> None:  # type: ignore[no-untyped-def]
    dev, _inv, vr, item, clips, id_file = released
    plain = _age_decrypt(item.bundle_path, id_file)
    listing = subprocess.run(["tar", "tf", "-"], input=plain, capture_output=True, timeout=30)
    assert listing.returncode == 0, listing.stderr
    names = listing.stdout.decode().split()
    assert names == [*(f"clips/{cid}.ts" for cid in clips), "manifest.json", "manifest.sig"]
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        for cid, data in clips.items():
            assert tar.extractfile(f"clips/{cid}.ts").read() == data  # type: ignore[union-attr]
        manifest_json = tar.extractfile("manifest.json").read()  # type: ignore[union-attr]
        manifest_sig = tar.extractfile("manifest.sig").read()  # type: ignore[union-attr]
    manifest = verify_manifest(manifest_json, manifest_sig)
    info = keys.load_device_info(dev.state)
    assert manifest.device_id == info.device_id and manifest.device_key == info.device_public_key
    assert manifest.request.digest == hashlib.sha256(vr.raw).hexdigest() == item.request_digest
    assert manifest.request.recipient == vr.body.recipient
    for clip in manifest.clips:
        assert clip.plaintext_sha256 == hashlib.sha256(clips[clip.id]).hexdigest()
        assert clip.plaintext_size == len(clips[clip.id])
        assert clip.vault_digest == dev.vault.get(clip.id).digest
    # the header is signed and describes the bundle exactly
    header = chunks.decode_header(item.header_path.read_bytes())
    data = item.bundle_path.read_bytes()
    assert header.bundle_sha256 == hashlib.sha256(data).hexdigest() and header.bundle_size == len(data)
    assert header.chunks == -(-len(data) // 4096) == item.chunks


def test_outbox_holds_ciphertext_only_and_audits(released) -> None:  # type: ignore[no-untyped-def]
    dev, _inv, _vr, item, clips, _ = released
    probes = [data[1000:1064] for data in clips.values()]
    for path in item.directory.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert not any(p in blob for p in probes), f"plaintext footage in {path}"
            assert path.stat().st_mode & 0o077 == 0
    meta = json.loads((item.directory / "meta.json").read_text())
    assert meta["status"] == "queued" and meta["inbox"] == "alice"
    kinds = [e for e in audit.read_entries(dev.state.audit) if e["kind"] == "release.queued"]
    assert len(kinds) == 1 and kinds[0]["data"]["request_id"] == item.request_id
    assert not any(p.name.startswith(".building") for p in outbox.outbox_dir(dev.state).iterdir())


def test_second_build_for_same_request_refused(released) -> None:  # type: ignore[no-untyped-def]
    dev, _inv, vr, _item, clips, _ = released
    with pytest.raises(outbox.ReleaseExistsError):
        build_release(dev.state, dev.vault, dev.identity, vr, list(clips)[:1], dev.device_key, 4096)


def test_bad_selection_and_tampered_clip_leave_nothing(state_dir: Path) -> None:
    dev = open_device(state_dir)
    cid = add_clip(dev, make_ts(1.0, seed=9), time.time() - 100)
    inv = new_investigator()
    vr = verified(inv, signed_request(inv, keys.load_device_info(dev.state).device_id))
    with pytest.raises(NotFoundError):
        build_release(dev.state, dev.vault, dev.identity, vr, ["nope"], dev.device_key, 4096)
    with pytest.raises(ReleaseError):
        build_release(dev.state, dev.vault, dev.identity, vr, [], dev.device_key, 4096)
    seg = sorted((dev.state.vault / "clips" / cid).glob("*.age"))[0]
    blob = bytearray(seg.read_bytes())
    blob[-5] ^= 1
    seg.write_bytes(bytes(blob))
    with pytest.raises(IntegrityError):
        build_release(dev.state, dev.vault, dev.identity, vr, [cid], dev.device_key, 4096)
    assert list(outbox.outbox_dir(dev.state).iterdir()) == []


def test_memory_stays_bounded_for_a_large_release(state_dir: Path, tmp_path: Path) -> None:
    """A 48 MB clip goes out with far less than 48 MB of extra memory (one vault segment at a time)."""
    script = tmp_path / "big.py"
    script.write_text(
        "import os, resource, sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).parent.parent)!r})\n"
        "from tests.consent_helpers import *\n"
        "from edge import keys\n"
        "from edge.protocol.release import build_release\n"
        f"dev = open_device({str(state_dir)!r})\n"
        "w = dev.vault.begin_clip('front', time.time() - 100)\n"
        "for i in range(48):\n"
        "    w.write(os.urandom(1 << 20)); w.boundary()\n"
        "cid = w.close(time.time() - 50).id\n"
        "inv = new_investigator()\n"
        "vr = verified(inv, signed_request(inv, keys.load_device_info(dev.state).device_id))\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "item = build_release(dev.state, dev.vault, dev.identity, vr, [cid], dev.device_key, 200000)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(before, after, item.bundle_size)\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    before, after, size = (int(x) for x in proc.stdout.split())
    assert size > 48 << 20
    assert (after - before) * 1024 < 24 << 20, f"peak RSS grew by {(after - before) // 1024} MiB"


# -- framing ------------------------------------------------------------------------------------


def _header(dev, **over):  # type: ignore[no-untyped-def]
    info = keys.load_device_info(dev.state)
    fields = dict(request_id="req-00000001", request_digest="ab" * 32, device_id=info.device_id,
                  device_key=info.device_public_key, bundle_sha256="cd" * 32, bundle_size=10, chunk_size=4, chunks=3,
                  created="2026-11-22T10:00:00.000Z")
    fields.update(over)
    return chunks.ReleaseHeader(**fields)


def test_header_roundtrip_and_tampering(state_dir: Path) -> None:
    dev = open_device(state_dir)
    msg = chunks.encode_header(_header(dev), dev.device_key)
    assert chunks.decode_header(msg) == _header(dev)
    flipped = bytearray(msg)
    flipped[-3] ^= 1
    with pytest.raises(ProtocolError) as e:
        chunks.decode_header(bytes(flipped))
    assert e.value.reason in ("bad_signature", "malformed")
    sig_flipped = bytearray(msg)
    sig_flipped[10] ^= 1
    with pytest.raises(ProtocolError, match="bad_signature"):
        chunks.decode_header(bytes(sig_flipped))
    with pytest.raises(ValueError):  # a device never names someone else's key
        chunks.encode_header(_header(dev, device_id="ccaaaaaaaaaaaaaaaa"), dev.device_key)
    with pytest.raises(ProtocolError, match="malformed"):
        chunks.decode_header(chunks.encode_header(_header(dev, chunks=2), dev.device_key))


def test_chunk_roundtrip_and_damage() -> None:
    msg = chunks.encode_chunk(b"\x01" * 32, b"\x02" * 32, 1, 3, b"payload")
    assert len(msg) == chunks.CHUNK_OVERHEAD + 7
    c = chunks.decode_chunk(msg)
    assert (c.index, c.count, c.payload) == (1, 3, b"payload")
    with pytest.raises(ProtocolError, match="chunk_hash_mismatch"):
        chunks.decode_chunk(msg[:-1])
    with pytest.raises(ProtocolError, match="malformed"):
        chunks.decode_chunk(msg[:50])
    with pytest.raises(ProtocolError, match="malformed"):
        chunks.decode_chunk(b"XXXX" + msg[4:])


def test_decline_is_signed_and_names_the_request(state_dir: Path) -> None:
    dev = open_device(state_dir)
    inv = new_investigator()
    raw = signed_request(inv, keys.load_device_info(dev.state).device_id)
    msg = decline_message(verified(inv, raw), dev.device_key)
    d = chunks.decode_decline(msg)
    assert d.request_digest == hashlib.sha256(raw).hexdigest() and d.request_id == "req-00000001"
    with pytest.raises(ProtocolError):
        chunks.decode_decline(msg[:-1] + b"x")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.sampled_from([b"", b"CCRH\x01", b"CCRC\x01", b"CCRD\x01"]))
def test_decoders_fail_only_with_protocol_errors(data: bytes, prefix: bytes) -> None:
    for decode in (chunks.decode_header, chunks.decode_chunk, chunks.decode_decline):
        with contextlib.suppress(ProtocolError):
            decode(prefix + data)


# -- publishing ---------------------------------------------------------------------------------


class Capture:
    """A separate subscriber on '#': sees every message the broker routes."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.ready = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        c.on_subscribe = lambda *a: self.ready.set()
        c.on_message = lambda cl, ud, m: self.messages.append((m.topic, m.payload, m.retain))
        c.connect("127.0.0.1", port)
        c.subscribe("#", qos=1)
        c.loop_start()
        assert self.ready.wait(10)
        self.client = c

    def wait_for(self, n: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _publisher(port: int) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="device-test", protocol=mqtt.MQTTv5)
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert connected.wait(10)
    return c


def test_publish_sends_header_then_all_chunks_once(released, broker) -> None:  # type: ignore[no-untyped-def]
    dev, _inv, _vr, item, _clips, _ = released
    bundle = item.bundle_path.read_bytes()
    cap = Capture(broker.port)
    client = _publisher(broker.port)
    try:
        done = publish_release(client, item, "consentcam/v1", 10, window=4)
        cap.wait_for(1 + item.chunks)
        assert done.status == "sent" and outbox.get_item(dev.state, item.request_id).status == "sent"
        again = publish_release(client, done, "consentcam/v1", 10)  # already sent: nothing goes out
        time.sleep(0.5)
    finally:
        client.disconnect()
        client.loop_stop()
        cap.close()
    assert again.status == "sent"
    topics = {t for t, _, _ in cap.messages}
    assert topics == {f"consentcam/v1/inbox/alice/{item.request_id}"}
    assert not any(r for _, _, r in cap.messages)
    assert len(cap.messages) == 1 + item.chunks
    assert cap.messages[0][1] == item.header_path.read_bytes()
    payload = b"".join(chunks.decode_chunk(p).payload for _, p, _ in cap.messages[1:])
    assert payload == bundle
    assert not item.bundle_path.exists() and item.header_path.exists()  # sent: the bundle is dropped
    sent = [e for e in audit.read_entries(dev.state.audit) if e["kind"] == "release.sent"]
    assert len(sent) == 1 and sent[0]["data"]["chunks"] == item.chunks


def test_publish_claim_is_exclusive_and_times_out_without_broker(released, broker) -> None:  # type: ignore[no-untyped-def]
    dev, _inv, _vr, item, _clips, _ = released
    client = _publisher(broker.port)
    try:
        with outbox.claim(item), pytest.raises(outbox.OutboxBusyError):
            publish_release(client, item, "consentcam/v1", 5)
        broker.stop()
        deadline = time.monotonic() + 10
        while client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(outbox.ReleaseSendError):
            publish_release(client, item, "consentcam/v1", 1)
    finally:
        client.loop_stop()
    current = outbox.get_item(dev.state, item.request_id)
    assert current.status == "queued" and current.attempts == 1


def test_publish_through_the_device_link_keeps_one_connection(state_dir: Path, broker) -> None:  # type: ignore[no-untyped-def]
    """Many large chunks through edge.mqtt_link (its own loop thread) while a subscriber drains them:
    the connection must never be dropped (two threads writing one socket would corrupt it)."""
    import os

    from edge.config import MqttConfig
    from edge.mqtt_link import MqttLink

    dev = open_device(state_dir)
    writer = dev.vault.begin_clip("front", time.time() - 100)
    for _ in range(24):
        writer.write(os.urandom(1 << 20))
        writer.boundary()
    cid = writer.close(time.time() - 50).id
    inv = new_investigator()
    vr = verified(inv, signed_request(inv, keys.load_device_info(dev.state).device_id))
    item = build_release(dev.state, dev.vault, dev.identity, vr, [cid], dev.device_key, 256 * 1024)
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", "consentcam/#",
                            "-q", "1", "-C", str(item.chunks + 1)], stdout=subprocess.DEVNULL)
    link = MqttLink(MqttConfig(enabled=True, host="127.0.0.1", port=broker.port, max_message_bytes=512 * 1024),
                    "device-link-test")
    try:
        time.sleep(0.5)
        link.start()
        assert link.wait_connected(10)
        done = publish_release(link, item, "consentcam/v1", 20)
        assert sub.wait(30) == 0  # the subscriber got every message
    finally:
        link.stop()
        if sub.poll() is None:
            sub.kill()
    assert done.status == "sent" and item.chunks > 90
    assert link.connects == 1, f"the link reconnected {link.connects - 1} times: {link.last_error}"
    # The race is probabilistic (a few drops per hundreds of 1 MB messages without the guard), so
    # also check the guard itself: publish() must leave the socket writes to the link's loop thread.
    assert link.client.on_socket_register_write is not None
