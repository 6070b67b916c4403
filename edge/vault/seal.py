"""The on-disk format of one clip: segment names, the signed seal, the clip digest, clip ids.

A clip is a directory ``vault/clips/<clip_id>/`` holding ``seg-000000.age``, ``seg-000001.age``,
... (each a complete, standard age file to the owner's X25519 recipient) and, once finished,
``seal.json``: the device's Ed25519 signature over the list of segments. The seal needs no owner
key to check, so anyone holding the device's public key can detect tampered, truncated, missing,
extra, reordered or swapped segments. docs/VAULT.md is the specification.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.encoding import b64decode, b64encode, canonical_json
from edge.signing import DOMAIN_CLIP_SEAL, encode_public, sign, verify

SEAL_FORMAT = "consentcam-clip-seal/1"
SEAL_NAME = "seal.json"
MARKER_NAME = "recording.json"
LOCK_NAME = ".lock"
HOLD_NAME = "hold.json"
DIGEST_DOMAIN = b"consentcam/v1/clip-digest\x00"
SEGMENT_RE = re.compile(r"^seg-(\d{6})\.age$")
CLIP_ID_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")

AGE_MAGIC = b"age-encryption.org/v1\n"
AGE_NONCE = 16
AGE_CHUNK = 64 * 1024
AGE_TAG = 16


def segment_name(index: int) -> str:
    return f"seg-{index:06d}.age"


def segment_index(name: str) -> int | None:
    m = SEGMENT_RE.match(name)
    return int(m.group(1)) if m else None


def new_clip_id(start: float) -> str:
    """Time-sortable and unique: UTC start to the second, then 24 random bits."""
    stamp = datetime.fromtimestamp(max(0.0, start), UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def valid_clip_id(text: str) -> bool:
    return bool(CLIP_ID_RE.match(text))


def clip_digest(segment_sha256: list[str]) -> str:
    """SHA-256 over a domain label and the raw 32-byte ciphertext digests of all segments, in order."""
    h = hashlib.sha256(DIGEST_DOMAIN)
    for hex_digest in segment_sha256:
        h.update(bytes.fromhex(hex_digest))
    return h.hexdigest()


def age_plaintext_size(ciphertext: bytes) -> int | None:
    """Plaintext length of a binary age file, from its structure alone (no key needed).

    The payload after the header is a 16-byte nonce then chunks of up to 64 KiB plaintext, each
    followed by a 16-byte tag; the last chunk may be short (empty only for empty plaintext).
    Returns None when the bytes are not a well-formed age file of plausible length.
    """
    if not ciphertext.startswith(AGE_MAGIC):
        return None
    mac_line = ciphertext.find(b"\n--- ")
    if mac_line < 0:
        return None
    header_end = ciphertext.find(b"\n", mac_line + 1)
    if header_end < 0:
        return None
    rest = len(ciphertext) - (header_end + 1) - AGE_NONCE
    if rest < AGE_TAG:
        return None
    full = AGE_CHUNK + AGE_TAG
    chunks = -(-rest // full)
    last = rest - (chunks - 1) * full
    if last < AGE_TAG or (last == AGE_TAG and chunks > 1):
        return None
    return rest - chunks * AGE_TAG


@dataclass(frozen=True)
class SegmentInfo:
    name: str
    size: int  # ciphertext bytes
    sha256: str  # of the ciphertext file, hex
    plaintext_size: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "plaintext_size": self.plaintext_size, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, data: Any) -> SegmentInfo:
        if not isinstance(data, dict):
            raise ValueError("segment entry is not an object")
        return cls(str(data["name"]), int(data["size"]), str(data["sha256"]), int(data["plaintext_size"]))


def seal_body(
    *,
    clip_id: str,
    device_id: str,
    camera: str,
    start: str,
    end: str,
    clock_synced: bool,
    container: str,
    codec: str,
    motion_score: float,
    status: str,
    segments: list[SegmentInfo],
    dropped_segments: int,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The signed content. Times are RFC 3339 UTC strings with milliseconds (edge.clock.iso)."""
    return {
        "format": SEAL_FORMAT,
        "clip_id": clip_id,
        "device_id": device_id,
        "camera": camera,
        "start": start,
        "end": end,
        "clock_synced": clock_synced,
        "container": container,
        "codec": codec,
        "motion_score": round(float(motion_score), 6),
        "status": status,
        "segments": [s.to_dict() for s in segments],
        "size": sum(s.size for s in segments),
        "plaintext_size": sum(s.plaintext_size for s in segments),
        "digest": clip_digest([s.sha256 for s in segments]),
        "dropped_segments": dropped_segments,
        "extra": extra,
    }


def seal_file_bytes(body: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    signature = sign(key, DOMAIN_CLIP_SEAL, canonical_json(body))
    doc = {"seal": body, "signature": b64encode(signature), "signer": encode_public(key)}
    return json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"


class SealError(ValueError):
    """The seal file is missing, unreadable, or its signature does not verify."""


def read_seal(clip_dir: Path, public: Ed25519PublicKey) -> dict[str, Any]:
    """The verified seal body of a clip directory. Raises SealError with a short reason."""
    path = clip_dir / SEAL_NAME
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise SealError("seal.json is missing") from exc
    except (OSError, ValueError) as exc:
        raise SealError("seal.json is unreadable or not JSON") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("seal"), dict):
        raise SealError("seal.json has no seal object")
    body = doc["seal"]
    try:
        signature = b64decode(str(doc.get("signature", "")))
        message = canonical_json(body)
    except (ValueError, TypeError) as exc:
        raise SealError("seal.json signature is not base64") from exc
    if not verify(public, DOMAIN_CLIP_SEAL, message, signature):
        raise SealError("seal signature does not verify with this device's key")
    if body.get("format") != SEAL_FORMAT:
        raise SealError(f"unknown seal format {body.get('format')!r}")
    try:
        segments = [SegmentInfo.from_dict(s) for s in body["segments"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise SealError("seal lists malformed segments") from exc
    if [s.name for s in segments] != [segment_name(i) for i in range(len(segments))]:
        raise SealError("seal lists segment names out of sequence")
    if body.get("digest") != clip_digest([s.sha256 for s in segments]):
        raise SealError("seal digest does not match its segment list")
    return body


def seal_segments(body: dict[str, Any]) -> list[SegmentInfo]:
    return [SegmentInfo.from_dict(s) for s in body["segments"]]
