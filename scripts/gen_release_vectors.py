#!/usr/bin/env python3
"""Write docs/test-vectors/release.json: a complete, checkable release from fixed test keys.

Everything is deterministic (Ed25519 signatures, canonical JSON, the tar stream with fixed times)
except the age encryption, which uses a fresh ephemeral key each time. So the bundle is kept from
the existing file as long as it still decrypts (with the published test identity) to exactly the
tar this script produces; only then are the header and chunks, which hash the bundle, unchanged.
tests/test_release_vectors.py re-derives everything and runs the real decoders over it.

    .venv/bin/python scripts/gen_release_vectors.py [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pyrage  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from edge import clock  # noqa: E402
from edge.encoding import canonical_json  # noqa: E402
from edge.keys import DEVICE_ID_DOMAIN, device_id_for  # noqa: E402
from edge.protocol.chunks import Decline, ReleaseHeader, encode_chunk, encode_decline, encode_header  # noqa: E402
from edge.protocol.manifest import sign_manifest  # noqa: E402
from edge.protocol.release import _ClipResult, make_manifest, tar_pieces  # noqa: E402
from edge.protocol.request import RequestBody, Requester, encode_request, request_digest  # noqa: E402
from edge.signing import (  # noqa: E402
    DOMAIN_DECLINE,
    DOMAIN_MANIFEST,
    DOMAIN_RELEASE_HEADER,
    encode_public,
    public_raw,
)

OUT = REPO / "docs" / "test-vectors" / "release.json"
# Fixed, published test keys: never use them for anything real.
DEVICE_SEED = hashlib.sha256(b"consentcam test vector device key").digest()
REQUESTER_SEED = hashlib.sha256(b"consentcam test vector requester key").digest()
AGE_IDENTITY = "AGE-SECRET-KEY-10QPT37MKD8RT5GKHW38D68SJ6Y8953YHZQLKF2TF5ZYXQARD3DQSU09MZ3"
AGE_RECIPIENT = "age1fzusfdsuer228lg8r9wy600a5humcjmemjajugxk6trwqnms4adswt4u26"
CHUNK_SIZE = 4096
T0 = clock.parse_iso("2026-11-22T10:00:00Z")


@dataclass(frozen=True)
class VectorClip:
    id: str
    camera: str
    start: float
    end: float
    plaintext_size: int
    clock_synced: bool
    digest: str


def _clip_plaintext() -> bytes:
    # Stands in for MPEG-TS: 188-byte packets starting with the 0x47 sync byte.
    packets = [b"\x47" + bytes([i % 256]) * 187 for i in range(12)]
    return b"".join(packets)


def build(existing_bundle: bytes | None) -> dict[str, Any]:
    device_key = Ed25519PrivateKey.from_private_bytes(DEVICE_SEED)
    requester_key = Ed25519PrivateKey.from_private_bytes(REQUESTER_SEED)
    device_id = device_id_for(public_raw(device_key))
    body = RequestBody(
        id="REQ-release-0001", issued=clock.iso(T0), expires=clock.iso(T0 + 86400), audience=device_id,
        window_start=clock.iso(T0 - 3600), window_end=clock.iso(T0 - 600), case="CASE-2026-0042",
        reason="Bicycle stolen from the front garden between 09:00 and 09:50.",
        requester=Requester("Alice Example", "Example Police", "alice@police.example"),
        recipient=AGE_RECIPIENT, inbox="alice",
    )
    request = encode_request(body, requester_key)
    req = {"id": body.id, "digest": request_digest(request), "case": body.case,
           "signer_key_id": request[5:21].hex(), "recipient": AGE_RECIPIENT, "inbox": body.inbox}

    plaintext = _clip_plaintext()
    clip = VectorClip("20261122T092000Z-a1b2c3", "porch", T0 - 2400, T0 - 2370, len(plaintext), True,
                      hashlib.sha256(b"example vault digest").hexdigest())
    manifest_holder: dict[str, bytes] = {}

    def finish(results: list[_ClipResult]) -> tuple[bytes, bytes]:
        manifest = make_manifest(device_key, req, results, approved=T0 + 120, created=T0 + 121)
        manifest_json, manifest_sig = sign_manifest(manifest, device_key)
        manifest_holder.update(json=manifest_json, sig=manifest_sig)
        return manifest_json, manifest_sig

    tar = b"".join(tar_pieces([(clip, lambda: iter([plaintext]))], finish, mtime=T0 + 121))
    identity = pyrage.x25519.Identity.from_str(AGE_IDENTITY)
    bundle = existing_bundle
    if bundle is None or pyrage.decrypt(bundle, [identity]) != tar:
        bundle = pyrage.encrypt(tar, [pyrage.x25519.Recipient.from_str(AGE_RECIPIENT)])
    chunks_count = -(-len(bundle) // CHUNK_SIZE)
    header = ReleaseHeader(
        request_id=body.id, request_digest=req["digest"], device_id=device_id, device_key=encode_public(device_key),
        bundle_sha256=hashlib.sha256(bundle).hexdigest(), bundle_size=len(bundle), chunk_size=CHUNK_SIZE,
        chunks=chunks_count, created=clock.iso(T0 + 122),
    )
    header_msg = encode_header(header, device_key)
    header_body = canonical_json(header.to_dict())
    chunk_msgs = []
    for i in range(chunks_count):
        payload = bundle[i * CHUNK_SIZE:(i + 1) * CHUNK_SIZE]
        msg = encode_chunk(bytes.fromhex(req["digest"]), bytes.fromhex(header.bundle_sha256), i, chunks_count,
                           payload)
        chunk_msgs.append({"index": i, "count": chunks_count, "payload_len": len(payload),
                           "payload_sha256_hex": hashlib.sha256(payload).hexdigest(), "message_hex": msg.hex()})
    decline = Decline(request_id=body.id, request_digest=req["digest"], device_id=device_id,
                      device_key=encode_public(device_key), decided_at=clock.iso(T0 + 300))
    decline_msg = encode_decline(decline, device_key)
    decline_body = canonical_json(decline.to_dict())
    topic = f"consentcam/v1/inbox/{body.inbox}/{body.id}"
    return {
        "description": "consentcam protocol v1 release test vectors (docs/protocol-release.md). Test keys only.",
        "device": {
            "ed25519_seed_hex": DEVICE_SEED.hex(),
            "public_key": encode_public(device_key),
            "public_raw_hex": public_raw(device_key).hex(),
            "device_id_domain_hex": DEVICE_ID_DOMAIN.hex(),
            "device_id": device_id,
        },
        "investigator": {
            "requester_ed25519_seed_hex": REQUESTER_SEED.hex(),
            "requester_public_key": encode_public(requester_key),
            "age_identity": AGE_IDENTITY,
            "age_recipient": AGE_RECIPIENT,
        },
        "request": {"message_hex": request.hex(), "digest_sha256_hex": req["digest"], "id": body.id,
                    "signer_key_id_hex": req["signer_key_id"], "reply_topic": topic},
        "clip": {"id": clip.id, "member": f"clips/{clip.id}.ts", "plaintext_hex": plaintext.hex(),
                 "plaintext_sha256_hex": hashlib.sha256(plaintext).hexdigest()},
        "manifest": {
            "json_utf8": manifest_holder["json"].decode(),
            "domain_hex": DOMAIN_MANIFEST.hex(),
            "signature_input_sha256_hex": hashlib.sha256(DOMAIN_MANIFEST + manifest_holder["json"]).hexdigest(),
            "signature_hex": manifest_holder["sig"].hex(),
        },
        "tar": {"hex": tar.hex(), "size": len(tar), "sha256_hex": hashlib.sha256(tar).hexdigest(),
                "members": [f"clips/{clip.id}.ts", "manifest.json", "manifest.sig"]},
        "bundle": {"age_hex": bundle.hex(), "size": len(bundle), "sha256_hex": header.bundle_sha256},
        "header": {
            "body_utf8": header_body.decode(),
            "domain_hex": DOMAIN_RELEASE_HEADER.hex(),
            "signature_input_hex": (b"CCRH\x01" + header_body).hex(),
            "signature_hex": header_msg[5:69].hex(),
            "message_hex": header_msg.hex(),
        },
        "chunks": {"chunk_size": CHUNK_SIZE, "messages": chunk_msgs},
        "decline": {
            "body_utf8": decline_body.decode(),
            "domain_hex": DOMAIN_DECLINE.hex(),
            "signature_input_hex": (b"CCRD\x01" + decline_body).hex(),
            "signature_hex": decline_msg[5:69].hex(),
            "message_hex": decline_msg.hex(),
        },
    }


def existing() -> dict[str, Any] | None:
    try:
        return json.loads(OUT.read_text())
    except (OSError, ValueError):
        return None


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the file is not what this script writes")
    args = ap.parse_args()
    old = existing()
    bundle = bytes.fromhex(old["bundle"]["age_hex"]) if old else None
    text = render(build(bundle))
    if args.check:
        same = OUT.exists() and OUT.read_text() == text
        print("up to date" if same else f"{OUT} differs from what the script produces")
        return 0 if same else 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
