"""Domain-separated Ed25519 signatures.

Every signature in consentcam covers ``domain || message`` where ``domain`` is a fixed ASCII
label ending in a NUL byte, so a signature made for one purpose (say an audit head) can never
be replayed as another (say a release manifest). There is no algorithm field anywhere: the
algorithm is always Ed25519.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.encoding import b64decode, b64encode, sha256_hex

DOMAIN_REQUEST = b"consentcam/v1/request\x00"
DOMAIN_DECLINE = b"consentcam/v1/decline\x00"
DOMAIN_MANIFEST = b"consentcam/v1/manifest\x00"
DOMAIN_RELEASE_HEADER = b"consentcam/v1/release-header\x00"
DOMAIN_AUDIT_HEAD = b"consentcam/v1/audit-head\x00"
DOMAIN_CLIP_SEAL = b"consentcam/v1/clip-seal\x00"

PUBLIC_KEY_PREFIX = "ed25519:"


def sign(key: Ed25519PrivateKey, domain: bytes, message: bytes) -> bytes:
    _check_domain(domain)
    return key.sign(domain + message)


def verify(public: Ed25519PublicKey, domain: bytes, message: bytes, signature: bytes) -> bool:
    _check_domain(domain)
    if len(signature) != 64:
        return False
    try:
        public.verify(signature, domain + message)
    except InvalidSignature:
        return False
    return True


def _check_domain(domain: bytes) -> None:
    if not domain.endswith(b"\x00") or b"\x00" in domain[:-1]:
        raise ValueError("signature domains end with exactly one NUL byte")


def public_raw(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def encode_public(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """Text form of a public key: ``ed25519:`` + standard base64 of the 32 raw bytes."""
    return PUBLIC_KEY_PREFIX + b64encode(public_raw(key))


def decode_public(text: str) -> Ed25519PublicKey:
    text = text.strip()
    if not text.startswith(PUBLIC_KEY_PREFIX):
        raise ValueError(f"expected a public key starting with '{PUBLIC_KEY_PREFIX}'")
    try:
        raw = b64decode(text[len(PUBLIC_KEY_PREFIX) :])
    except ValueError as exc:
        raise ValueError("public key is not valid base64") from exc
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    """16-byte key identifier: the first half of SHA-256 over the raw public key."""
    return bytes.fromhex(sha256_hex(public_raw(key)))[:16]


def fingerprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """SHA-256 of the raw public key, hex, for people to compare out of band."""
    return sha256_hex(public_raw(key))


def private_to_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def private_from_pem(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key
