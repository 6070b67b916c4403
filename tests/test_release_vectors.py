"""docs/test-vectors/release.json is what the script makes, and checks out byte by byte, independently."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.investigator.home import Home, RequestRecord
from edge.investigator.receiver import Receiver
from edge.state import write_private

REPO = Path(__file__).resolve().parent.parent
VECTORS = REPO / "docs" / "test-vectors" / "release.json"


@pytest.fixture(scope="module")
def v() -> dict:
    return json.loads(VECTORS.read_text())


def test_file_is_what_the_script_writes() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_release_vectors.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_device_id_and_signatures_check_with_plain_primitives(v: dict) -> None:
    """Re-derive from the document's rules only (hashlib, base32, raw Ed25519), not our decoders."""
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["device"]["ed25519_seed_hex"]))
    raw = bytes.fromhex(v["device"]["public_raw_hex"])
    assert key.public_key().public_bytes_raw() == raw
    assert v["device"]["public_key"] == "ed25519:" + base64.b64encode(raw).decode()
    digest = hashlib.sha256(bytes.fromhex(v["device"]["device_id_domain_hex"]) + raw).digest()[:10]
    assert v["device"]["device_id"] == "cc" + base64.b32encode(digest).decode().lower()
    pub = Ed25519PublicKey.from_public_bytes(raw)

    manifest = v["manifest"]["json_utf8"].encode()
    pub.verify(bytes.fromhex(v["manifest"]["signature_hex"]), bytes.fromhex(v["manifest"]["domain_hex"]) + manifest)
    body = json.loads(manifest)
    assert manifest == json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert body["request"]["digest"] == hashlib.sha256(bytes.fromhex(v["request"]["message_hex"])).hexdigest()
    assert body["clips"][0]["plaintext_sha256"] == hashlib.sha256(bytes.fromhex(v["clip"]["plaintext_hex"])).hexdigest()

    for kind, magic in (("header", b"CCRH\x01"), ("decline", b"CCRD\x01")):
        msg = bytes.fromhex(v[kind]["message_hex"])
        assert msg[:5] == magic and msg[5:69].hex() == v[kind]["signature_hex"]
        assert msg[69:] == v[kind]["body_utf8"].encode()
        assert bytes.fromhex(v[kind]["signature_input_hex"]) == magic + msg[69:]
        pub.verify(msg[5:69], bytes.fromhex(v[kind]["domain_hex"]) + magic + msg[69:])


def test_bundle_chunks_and_tar_with_the_age_and_tar_binaries(v: dict, tmp_path: Path) -> None:
    bundle = bytes.fromhex(v["bundle"]["age_hex"])
    header = json.loads(v["header"]["body_utf8"])
    assert hashlib.sha256(bundle).hexdigest() == header["bundle_sha256"] == v["bundle"]["sha256_hex"]
    assert len(bundle) == header["bundle_size"]
    reassembled = b""
    for i, c in enumerate(v["chunks"]["messages"]):
        msg = bytes.fromhex(c["message_hex"])
        magic, version, req_digest, bundle_sha, index, count, payload_sha = struct.unpack(">4sB32s32sII32s", msg[:109])
        payload = msg[109:]
        assert (magic, version, index, count) == (b"CCRC", 1, i, header["chunks"])
        assert req_digest.hex() == header["request_digest"] and bundle_sha.hex() == header["bundle_sha256"]
        assert hashlib.sha256(payload).digest() == payload_sha
        reassembled += payload
    assert reassembled == bundle
    (tmp_path / "bundle.age").write_bytes(bundle)
    (tmp_path / "id.txt").write_text(v["investigator"]["age_identity"] + "\n")
    tar = subprocess.run(["age", "-d", "-i", str(tmp_path / "id.txt"), str(tmp_path / "bundle.age")],
                         capture_output=True, timeout=30)
    assert tar.returncode == 0, tar.stderr
    assert tar.stdout == bytes.fromhex(v["tar"]["hex"])
    listing = subprocess.run(["tar", "tf", "-"], input=tar.stdout, capture_output=True, timeout=30)
    assert listing.stdout.decode().split() == v["tar"]["members"]


def test_the_receiver_accepts_the_vector_release(v: dict, tmp_path: Path) -> None:
    home = Home(tmp_path / "inv")
    write_private(home.identity_path, v["investigator"]["age_identity"].encode() + b"\n")
    write_private(home.signing_key_path, b"unused")
    card = {"name": "Alice Example", "organisation": "Example Police", "contact": "alice@police.example",
            "signing_key": v["investigator"]["requester_public_key"], "recipient": v["investigator"]["age_recipient"],
            "inbox": "alice"}
    write_private(home.card_path, json.dumps(card).encode())
    raw = bytes.fromhex(v["request"]["message_hex"])
    record = RequestRecord(v["request"]["id"], v["request"]["digest_sha256_hex"], raw,
                           {"device": v["device"]["device_id"]}, [], "2026-11-22T10:00:00.000Z")
    home.save_request(record)
    receiver = Receiver(home, tmp_path / "out", [record])
    topic = v["request"]["reply_topic"]
    for c in reversed(v["chunks"]["messages"]):
        receiver.handle(topic, bytes.fromhex(c["message_hex"]))
    assert receiver.handle(topic, bytes.fromhex(v["header"]["message_hex"])).kind == "complete"
    clip = tmp_path / "out" / v["device"]["device_id"] / v["clip"]["member"]
    assert clip.read_bytes() == bytes.fromhex(v["clip"]["plaintext_hex"])
    assert receiver.handle(topic, bytes.fromhex(v["decline"]["message_hex"])).kind == "declined"


def test_document_quotes_the_vectors(v: dict) -> None:
    """docs/protocol-release.md shows the same bytes as the vector file (whitespace aside)."""
    doc = (REPO / "docs" / "protocol-release.md").read_text()
    flat = "".join(doc.split())
    for value in (v["device"]["device_id"], v["device"]["public_key"], v["request"]["digest_sha256_hex"],
                  v["clip"]["plaintext_sha256_hex"], v["manifest"]["signature_hex"], v["decline"]["signature_hex"],
                  v["header"]["message_hex"], "".join(v["manifest"]["json_utf8"].split()),
                  ):
        assert value in flat, value[:40]
    prefix = v["chunks"]["messages"][0]["message_hex"][:218]
    block = doc[doc.index("43435243 01"):]
    shown = "".join(word for line in block.splitlines()[:6] for word in line.split()[:2]
                    if all(ch in "0123456789abcdef" for ch in word))
    assert shown == prefix
