"""The release manifest: the device's signed statement of what it released, for whom, and when.

``manifest.json`` is canonical JSON; ``manifest.sig`` is the raw 64-byte Ed25519 signature by the
device key over ``DOMAIN_MANIFEST || manifest.json``. Together they are the chain-of-custody record
an investigator keeps with the footage and can re-check offline, long after the broker is gone.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.encoding import canonical_json, strict_json_loads
from edge.errors import ProtocolError
from edge.keys import device_id_for
from edge.signing import DOMAIN_MANIFEST, decode_public, encode_public, public_raw, sign, verify

VERSION = 1
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
SIGNATURE_BYTES = 64
CLIP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class ManifestRequest:
    id: str
    digest: str  # hex SHA-256 of the whole signed request message
    case: str
    signer_key_id: str  # hex, 16 bytes
    recipient: str  # age1...


@dataclass(frozen=True)
class ManifestClip:
    id: str
    file: str  # member name in the bundle: clips/<id>.ts
    start: str
    end: str
    clock_synced: bool
    plaintext_sha256: str
    plaintext_size: int
    vault_digest: str  # the vault's digest over the clip's encrypted segments (ciphertext side)


@dataclass(frozen=True)
class Manifest:
    device_id: str
    device_key: str
    camera: str
    request: ManifestRequest
    approved_at: str
    clock_synced: bool
    clips: tuple[ManifestClip, ...]
    created: str
    v: int = VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["clips"] = [asdict(c) for c in self.clips]
        return data

    def encode(self) -> bytes:
        return canonical_json(self.to_dict())


def clip_member_name(clip_id: str) -> str:
    if not CLIP_ID.match(clip_id) or ".." in clip_id:
        raise ValueError(f"clip id {clip_id!r} cannot be used as a bundle member name")
    return f"clips/{clip_id}.ts"


def sign_manifest(manifest: Manifest, device_key: Ed25519PrivateKey) -> tuple[bytes, bytes]:
    """(manifest.json bytes, manifest.sig bytes)."""
    if manifest.device_key != encode_public(device_key) or manifest.device_id != device_id_for(public_raw(device_key)):
        raise ValueError("the manifest names a device key other than the signing key")
    data = manifest.encode()
    return data, sign(device_key, DOMAIN_MANIFEST, data)


def verify_manifest(data: bytes, signature: bytes, *, expected_device_key: str | None = None) -> Manifest:
    """Check the signature by the device key the manifest names, the id derivation, then every field."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ProtocolError("oversized", f"manifest.json is {len(data)} bytes")
    if len(signature) != SIGNATURE_BYTES:
        raise ProtocolError("bad_signature", f"manifest.sig is {len(signature)} bytes, expected 64")
    try:  # hostile JSON must be a ProtocolError, never an exception escaping later
        body = strict_json_loads(data)
    except ValueError as exc:
        raise ProtocolError("malformed", "manifest.json is not UTF-8 JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("device_key"), str):
        raise ProtocolError("malformed", "manifest.json has no device_key")
    if expected_device_key is not None and body["device_key"] != expected_device_key:
        raise ProtocolError("wrong_device_key", "manifest is signed by a different key than the release header")
    try:
        public = decode_public(body["device_key"])
    except ValueError as exc:
        raise ProtocolError("malformed", f"manifest device_key: {exc}") from exc
    if not verify(public, DOMAIN_MANIFEST, data, signature):
        raise ProtocolError("bad_signature", "manifest signature does not verify with the device key")
    if body.get("device_id") != device_id_for(public_raw(public)):
        raise ProtocolError("device_id_mismatch", "manifest device id is not derived from its device key")
    if data != _canonical_or_none(body):
        raise ProtocolError("malformed", "manifest.json is not canonical JSON")
    return _parse(body)


def _parse(body: dict[str, Any]) -> Manifest:
    _exact(body, {"v", "device_id", "device_key", "camera", "request", "approved_at", "clock_synced", "clips",
                  "created"}, "manifest")
    if body["v"] != VERSION:
        raise ProtocolError("malformed", f"manifest: unsupported version {body['v']!r}")
    req = body["request"]
    _exact(req, {"id", "digest", "case", "signer_key_id", "recipient"}, "manifest.request")
    _strings(req, "manifest.request")
    if not _HEX64.match(req["digest"]) or not _HEX32.match(req["signer_key_id"]):
        raise ProtocolError("malformed", "manifest.request: digest or signer_key_id is not hex of the right length")
    if not isinstance(body["clips"], list) or not body["clips"]:
        raise ProtocolError("malformed", "manifest: clips must be a non-empty list")
    clips = []
    seen: set[str] = set()
    for i, item in enumerate(body["clips"]):
        where = f"manifest.clips[{i}]"
        _exact(item, set(ManifestClip.__dataclass_fields__), where)
        clip = ManifestClip(**item)
        for name in ("id", "file", "start", "end", "plaintext_sha256", "vault_digest"):
            if not isinstance(getattr(clip, name), str):
                raise ProtocolError("malformed", f"{where}: {name} must be a string")
        if not isinstance(clip.clock_synced, bool):
            raise ProtocolError("malformed", f"{where}: clock_synced must be true or false")
        if not isinstance(clip.plaintext_size, int) or isinstance(clip.plaintext_size, bool) or clip.plaintext_size < 0:
            raise ProtocolError("malformed", f"{where}: plaintext_size must be a non-negative integer")
        if not _HEX64.match(clip.plaintext_sha256):
            raise ProtocolError("malformed", f"{where}: plaintext_sha256 is not 64 lowercase hex digits")
        try:
            expected_file = clip_member_name(clip.id)
        except ValueError as exc:
            raise ProtocolError("malformed", f"{where}: {exc}") from exc
        if clip.file != expected_file or clip.id in seen:
            raise ProtocolError("malformed", f"{where}: file must be {expected_file!r} and ids unique")
        seen.add(clip.id)
        clips.append(clip)
    for name in ("camera", "approved_at", "created"):
        if not isinstance(body[name], str):
            raise ProtocolError("malformed", f"manifest: {name} must be a string")
    if not isinstance(body["clock_synced"], bool):
        raise ProtocolError("malformed", "manifest: clock_synced must be true or false")
    return Manifest(
        device_id=body["device_id"],
        device_key=body["device_key"],
        camera=body["camera"],
        request=ManifestRequest(**req),
        approved_at=body["approved_at"],
        clock_synced=body["clock_synced"],
        clips=tuple(clips),
        created=body["created"],
    )


def _canonical_or_none(body: Any) -> bytes | None:
    # A number such as 1e999 parses as infinity, which has no canonical encoding.
    try:
        return canonical_json(body)
    except ValueError:
        return None


def _exact(obj: Any, names: set[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise ProtocolError("malformed", f"{where}: expected an object")
    extra, missing = set(obj) - names, names - set(obj)
    if extra:
        raise ProtocolError("malformed", f"{where}: unknown fields {sorted(extra)}")
    if missing:
        raise ProtocolError("malformed", f"{where}: missing fields {sorted(missing)}")


def _strings(obj: dict[str, Any], where: str) -> None:
    for key, value in obj.items():
        if not isinstance(value, str):
            raise ProtocolError("malformed", f"{where}: {key} must be a string")
