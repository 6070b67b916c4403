"""Release framing: the signed header, the chunks, and the opt-in signed decline.

Wire layouts (all integers big-endian, see docs/protocol-release.md)::

    header  = "CCRH" | 0x01 | signature (64) | body        (body: canonical JSON)
    chunk   = "CCRC" | 0x01 | request digest (32) | bundle sha256 (32) | index u32 | count u32
              | SHA-256(payload) (32) | payload
    decline = "CCRD" | 0x01 | signature (64) | body        (body: canonical JSON)

Headers and declines are self-signed by the device key named in their body. That key is
authenticated by the device id, which must be derived from it (edge.keys.device_id_for), and for a
device-addressed request by being the id the request was addressed to. The body is parsed only as
far as needed to find that key; every field is checked after the signature verified.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.encoding import canonical_json, strict_json_loads
from edge.errors import ProtocolError
from edge.keys import device_id_for
from edge.signing import (
    DOMAIN_DECLINE,
    DOMAIN_RELEASE_HEADER,
    decode_public,
    encode_public,
    public_raw,
    sign,
    verify,
)

VERSION = 1
MAGIC_HEADER = b"CCRH"
MAGIC_CHUNK = b"CCRC"
MAGIC_DECLINE = b"CCRD"
SIGNED_PREFIX = 4 + 1 + 64  # magic, version, signature
CHUNK_PREFIX = struct.Struct(">4sB32s32sII32s")
CHUNK_OVERHEAD = CHUNK_PREFIX.size  # 109 bytes; the contract leaves 128 for framing
MAX_SIGNED_BODY = 16 * 1024  # a header or decline body is a few hundred bytes
MAX_CHUNKS = 2**32 - 1

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_DEVICE_ID = re.compile(r"^[a-z0-9]{1,64}$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


@dataclass(frozen=True)
class ReleaseHeader:
    """What the receiver needs to know a release is complete and whose it is."""

    request_id: str
    request_digest: str  # hex SHA-256 of the whole request message
    device_id: str
    device_key: str  # ed25519:...
    bundle_sha256: str  # hex SHA-256 of bundle.age (ciphertext)
    bundle_size: int
    chunk_size: int
    chunks: int
    created: str
    v: int = VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decline:
    request_id: str
    request_digest: str
    device_id: str
    device_key: str
    decided_at: str
    v: int = VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    request_digest: bytes  # 32 raw bytes
    bundle_sha256: bytes  # 32 raw bytes: which release (and so which device's header) this belongs to
    index: int
    count: int
    payload: bytes


# ---------------------------------------------------------------------------------------------
# Encoding (device side)


def encode_header(header: ReleaseHeader, device_key: Ed25519PrivateKey) -> bytes:
    _check_own_key(header.device_key, header.device_id, device_key)
    return _encode_signed(MAGIC_HEADER, DOMAIN_RELEASE_HEADER, header.to_dict(), device_key)


def encode_decline(decline: Decline, device_key: Ed25519PrivateKey) -> bytes:
    _check_own_key(decline.device_key, decline.device_id, device_key)
    return _encode_signed(MAGIC_DECLINE, DOMAIN_DECLINE, decline.to_dict(), device_key)


def encode_chunk(request_digest: bytes, bundle_sha256: bytes, index: int, count: int, payload: bytes) -> bytes:
    if len(request_digest) != 32 or len(bundle_sha256) != 32:
        raise ValueError("request digest and bundle sha256 are 32 raw bytes")
    if not (0 <= index < count <= MAX_CHUNKS):
        raise ValueError(f"chunk index {index} out of range for {count} chunks")
    digest = hashlib.sha256(payload).digest()
    return CHUNK_PREFIX.pack(MAGIC_CHUNK, VERSION, request_digest, bundle_sha256, index, count, digest) + payload


def _encode_signed(magic: bytes, domain: bytes, body: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    raw = canonical_json(body)
    prefix = magic + bytes([VERSION])
    signature = sign(key, domain, prefix + raw)
    return prefix + signature + raw


def _check_own_key(claimed_key: str, claimed_id: str, key: Ed25519PrivateKey) -> None:
    # A device must never emit a message naming a key or id other than its own.
    if claimed_key != encode_public(key) or claimed_id != device_id_for(public_raw(key)):
        raise ValueError("device_key/device_id in the body do not belong to the signing key")


# ---------------------------------------------------------------------------------------------
# Decoding (investigator side). Every failure is a ProtocolError with a short reason.


def message_kind(data: bytes) -> str:
    """'header', 'chunk', 'decline' or 'unknown', from the magic alone (nothing is trusted yet)."""
    magic = bytes(data[:4])
    return {MAGIC_HEADER: "header", MAGIC_CHUNK: "chunk", MAGIC_DECLINE: "decline"}.get(magic, "unknown")


def decode_header(data: bytes) -> ReleaseHeader:
    body = _decode_signed(data, MAGIC_HEADER, DOMAIN_RELEASE_HEADER, "release header")
    fields = _exact_fields(body, ReleaseHeader, "release header")
    header = ReleaseHeader(**fields)
    for name in ("bundle_size", "chunk_size", "chunks"):
        value = getattr(header, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ProtocolError("malformed", f"release header: {name} must be a positive integer")
    if header.chunks != -(-header.bundle_size // header.chunk_size) or header.chunks > MAX_CHUNKS:
        raise ProtocolError("malformed", "release header: chunk count does not match bundle_size / chunk_size")
    if not _HEX64.match(str(header.bundle_sha256)):
        raise ProtocolError("malformed", "release header: bundle_sha256 is not 64 lowercase hex digits")
    if not isinstance(header.created, str) or not _ISO.match(header.created):
        raise ProtocolError("malformed", "release header: created is not an RFC 3339 UTC time")
    return header


def decode_decline(data: bytes) -> Decline:
    body = _decode_signed(data, MAGIC_DECLINE, DOMAIN_DECLINE, "decline")
    decline = Decline(**_exact_fields(body, Decline, "decline"))
    if not isinstance(decline.decided_at, str) or not _ISO.match(decline.decided_at):
        raise ProtocolError("malformed", "decline: decided_at is not an RFC 3339 UTC time")
    return decline


def decode_chunk(data: bytes) -> Chunk:
    if len(data) < CHUNK_OVERHEAD:
        raise ProtocolError("malformed", f"chunk: {len(data)} bytes is shorter than its {CHUNK_OVERHEAD}-byte header")
    magic, version, req, bundle, index, count, digest = CHUNK_PREFIX.unpack_from(data)
    if magic != MAGIC_CHUNK:
        raise ProtocolError("malformed", "chunk: wrong magic")
    if version != VERSION:
        raise ProtocolError("malformed", f"chunk: unsupported version {version}")
    if count < 1 or index >= count:
        raise ProtocolError("malformed", f"chunk: index {index} out of range for {count} chunks")
    payload = bytes(data[CHUNK_OVERHEAD:])
    if not payload:
        raise ProtocolError("malformed", "chunk: empty payload")
    if hashlib.sha256(payload).digest() != digest:
        raise ProtocolError("chunk_hash_mismatch", f"chunk {index}: payload does not match its SHA-256 (truncated?)")
    return Chunk(req, bundle, index, count, payload)


def _decode_signed(data: bytes, magic: bytes, domain: bytes, what: str) -> dict[str, Any]:
    data = bytes(data)
    if len(data) <= SIGNED_PREFIX:
        raise ProtocolError("malformed", f"{what}: too short")
    if len(data) > SIGNED_PREFIX + MAX_SIGNED_BODY:
        raise ProtocolError("oversized", f"{what}: {len(data)} bytes")
    if data[:4] != magic:
        raise ProtocolError("malformed", f"{what}: wrong magic")
    if data[4] != VERSION:
        raise ProtocolError("malformed", f"{what}: unsupported version {data[4]}")
    signature, raw = data[5:SIGNED_PREFIX], data[SIGNED_PREFIX:]
    try:  # hostile input needs no key: every way JSON can be bad is a ProtocolError
        body = strict_json_loads(raw)
    except ValueError as exc:
        raise ProtocolError("malformed", f"{what}: body is not UTF-8 JSON") from exc
    if not isinstance(body, dict):
        raise ProtocolError("malformed", f"{what}: body is not a JSON object")
    public = _public_key(body.get("device_key"), what)
    if not verify(public, domain, data[:5] + raw, signature):
        raise ProtocolError("bad_signature", f"{what}: signature does not verify with the device key it names")
    device_id = body.get("device_id")
    if not isinstance(device_id, str) or device_id != device_id_for(public_raw(public)):
        raise ProtocolError("device_id_mismatch", f"{what}: device id {device_id!r} is not derived from its key")
    if raw != _canonical_or_none(body):
        raise ProtocolError("malformed", f"{what}: body is not canonical JSON")
    return body


def _canonical_or_none(body: Any) -> bytes | None:
    # A number such as 1e999 parses as infinity, which has no canonical encoding.
    try:
        return canonical_json(body)
    except ValueError:
        return None


def _public_key(text: Any, what: str) -> Ed25519PublicKey:
    if not isinstance(text, str):
        raise ProtocolError("malformed", f"{what}: device_key missing")
    try:
        return decode_public(text)
    except ValueError as exc:
        raise ProtocolError("malformed", f"{what}: device_key: {exc}") from exc


def _exact_fields(body: dict[str, Any], cls: type, what: str) -> dict[str, Any]:
    names = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    extra, missing = set(body) - names, names - set(body)
    if extra or missing:
        detail = "; ".join(
            part for part in (
                f"unknown fields {sorted(extra)}" if extra else "",
                f"missing fields {sorted(missing)}" if missing else "",
            ) if part
        )
        raise ProtocolError("malformed", f"{what}: {detail}")
    if body["v"] != VERSION:
        raise ProtocolError("malformed", f"{what}: unsupported body version {body['v']!r}")
    for name in ("request_id", "request_digest", "device_id", "device_key"):
        if not isinstance(body[name], str):
            raise ProtocolError("malformed", f"{what}: {name} must be a string")
    if not _REQUEST_ID.match(body["request_id"]):
        raise ProtocolError("malformed", f"{what}: request_id has an invalid form")
    if not _HEX64.match(body["request_digest"]):
        raise ProtocolError("malformed", f"{what}: request_digest is not 64 lowercase hex digits")
    if not _DEVICE_ID.match(body["device_id"]):
        raise ProtocolError("malformed", f"{what}: device_id has an invalid form")
    return body
