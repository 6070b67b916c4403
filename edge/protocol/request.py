"""Request messages (investigator -> device): framing, signing, and strict parsing.

Wire format (all integers big-endian, see docs/PROTOCOL.md)::

    "CCRQ" (4) | 0x01 (1) | signer key id (16) | signature (64) | body (1..max_message_bytes)
    signature = Ed25519(requester key, DOMAIN_REQUEST || "CCRQ" || 0x01 || key id || body)

The parser checks size and framing, finds the signer in the trust store by key id, verifies the
signature over the exact bytes received, and only then decodes the JSON body. Everything it
rejects raises :class:`ProtocolError` with a machine-readable ``reason``; nothing else escapes.
The time, audience, window, replay and rate checks that need device state live in
:mod:`edge.protocol.verifier`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.clock import parse_iso
from edge.encoding import canonical_json, strict_json_loads
from edge.errors import ProtocolError
from edge.signing import DOMAIN_REQUEST, key_id, sign, verify

MAGIC = b"CCRQ"
VERSION = 1
KEY_ID_LEN = 16
SIG_LEN = 64
HEADER_LEN = len(MAGIC) + 1 + KEY_ID_LEN + SIG_LEN  # 85
DEFAULT_MAX_BODY = 16 * 1024
MAX_AREA_RADIUS_M = 10_000

ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
INBOX_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
DEVICE_ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# Control characters other than tab and newline: C0, DEL and C1 (U+0080..U+009F; U+009B is CSI).
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# RFC 3339 in UTC with a Z suffix; fractional seconds optional (up to microseconds).
TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z")

BODY_FIELDS = frozenset(
    {"v", "id", "issued", "expires", "audience", "window", "case", "reason", "requester", "recipient", "inbox"}
)
REQUESTER_FIELDS = frozenset({"name", "organisation", "contact"})

# Refusal reasons, in validation order (docs/PROTOCOL.md, "Validation order").
REASONS = (
    "oversized",
    "malformed",
    "unknown_signer",
    "bad_signature",
    "clock_unsynchronised",
    "not_yet_valid",
    "expired",
    "lifetime_too_long",
    "wrong_audience",
    "outside_area",
    "window_too_long",
    "window_in_future",
    "window_inverted",
    "replayed",
    "rate_limited",
    "queue_full",
)


@dataclass(frozen=True)
class Area:
    lat: float
    lon: float
    radius_m: int

    def to_dict(self) -> dict[str, Any]:
        return {"lat": self.lat, "lon": self.lon, "radius_m": self.radius_m}


@dataclass(frozen=True)
class Requester:
    name: str
    organisation: str
    contact: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "organisation": self.organisation, "contact": self.contact}


@dataclass(frozen=True)
class RequestBody:
    """The signed JSON body. Times are kept as the exact RFC 3339 text that was signed."""

    id: str
    issued: str
    expires: str
    audience: str | Area  # a device id, or an area the device checks against its own location
    window_start: str
    window_end: str
    case: str
    reason: str
    requester: Requester
    recipient: str  # age X25519 recipient (age1...): footage is encrypted to this key only
    inbox: str  # reply topic level: R/inbox/<inbox>/<id>
    v: int = VERSION

    @property
    def device_id(self) -> str | None:
        return self.audience if isinstance(self.audience, str) else None

    @property
    def area(self) -> Area | None:
        return self.audience if isinstance(self.audience, Area) else None

    @property
    def issued_ts(self) -> float:
        return parse_iso(self.issued)

    @property
    def expires_ts(self) -> float:
        return parse_iso(self.expires)

    @property
    def window_start_ts(self) -> float:
        return parse_iso(self.window_start)

    @property
    def window_end_ts(self) -> float:
        return parse_iso(self.window_end)

    def to_dict(self) -> dict[str, Any]:
        audience: dict[str, Any] = (
            {"device": self.audience} if isinstance(self.audience, str) else {"area": self.audience.to_dict()}
        )
        return {
            "v": self.v,
            "id": self.id,
            "issued": self.issued,
            "expires": self.expires,
            "audience": audience,
            "window": {"start": self.window_start, "end": self.window_end},
            "case": self.case,
            "reason": self.reason,
            "requester": self.requester.to_dict(),
            "recipient": self.recipient,
            "inbox": self.inbox,
        }

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> RequestBody:
        """Strict: every field required, no unknown fields, exact types. Raises ProtocolError('malformed')."""
        return _body_from_dict(data)


class TrustLookup(Protocol):
    def get_by_key_id(self, kid: bytes) -> Any: ...


@dataclass(frozen=True)
class VerifiedRequest:
    """A request whose signature checked out against a trusted key and whose body parsed."""

    body: RequestBody
    digest: str  # SHA-256 hex of the whole message
    signer: Any  # edge.protocol.trust.TrustEntry
    raw: bytes

    @property
    def digest_bytes(self) -> bytes:
        return bytes.fromhex(self.digest)

    @property
    def id(self) -> str:
        return self.body.id


def request_digest(data: bytes) -> str:
    """The request's identity in manifests and logs: SHA-256 (hex) of every byte of the message."""
    return hashlib.sha256(data).hexdigest()


def signature_input(kid: bytes, body: bytes) -> bytes:
    """What the signature covers after the domain prefix: magic || version || key id || body."""
    return MAGIC + bytes([VERSION]) + kid + body


def encode_request(body: RequestBody, signing_key: Ed25519PrivateKey) -> bytes:
    """Validate ``body``, serialise it as canonical JSON and frame and sign it."""
    payload = body.to_json()
    _body_from_dict(json.loads(payload))  # never emit something a device would refuse as malformed
    kid = key_id(signing_key)
    signature = sign(signing_key, DOMAIN_REQUEST, signature_input(kid, payload))
    return MAGIC + bytes([VERSION]) + kid + signature + payload


def split_message(data: bytes, max_body: int = DEFAULT_MAX_BODY) -> tuple[bytes, bytes, bytes]:
    """(key id, signature, body) after the size and framing checks."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError("malformed", "message is not bytes")
    data = bytes(data)
    if len(data) - HEADER_LEN > max_body:
        raise ProtocolError("oversized", f"body of {len(data) - HEADER_LEN} bytes exceeds {max_body}")
    if len(data) <= HEADER_LEN:
        raise ProtocolError("malformed", f"message of {len(data)} bytes is shorter than the {HEADER_LEN + 1} minimum")
    if data[:4] != MAGIC:
        raise ProtocolError("malformed", "bad magic")
    if data[4] != VERSION:
        raise ProtocolError("malformed", f"unsupported version {data[4]}")
    kid = data[5 : 5 + KEY_ID_LEN]
    signature = data[5 + KEY_ID_LEN : HEADER_LEN]
    return kid, signature, data[HEADER_LEN:]


def parse_request(data: bytes, trust_store: TrustLookup, limits: Any = None) -> VerifiedRequest:
    """Size, framing, signer, signature, then body. ``limits`` needs ``max_message_bytes`` (or None)."""
    max_body = int(getattr(limits, "max_message_bytes", DEFAULT_MAX_BODY) or DEFAULT_MAX_BODY)
    kid, signature, body_bytes = split_message(data, max_body)
    signer = trust_store.get_by_key_id(kid)
    if signer is None:
        raise ProtocolError("unknown_signer", kid.hex())
    if not verify(signer.public, DOMAIN_REQUEST, signature_input(kid, body_bytes), signature):
        raise ProtocolError("bad_signature", f"signer {signer.name}")
    body = parse_body(body_bytes)
    return VerifiedRequest(body=body, digest=request_digest(bytes(data)), signer=signer, raw=bytes(data))


def parse_body(body_bytes: bytes) -> RequestBody:
    """Decode the (already authenticated) body: strict UTF-8 JSON object, no duplicate keys, no NaN."""
    try:
        data = strict_json_loads(body_bytes)
    except ValueError as exc:
        raise ProtocolError("malformed", f"body is not strict JSON: {exc}") from None
    return _body_from_dict(data)


def _bad(detail: str) -> ProtocolError:
    return ProtocolError("malformed", detail)


def _fields(data: Any, expected: frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _bad(f"{where} must be a JSON object")
    keys = set(data)
    if keys != expected:
        missing, extra = sorted(expected - keys), sorted(keys - expected)
        raise _bad(f"{where}: missing {missing}, unknown {extra}")
    return data


def _text(data: dict[str, Any], key: str, lo: int, hi: int, where: str = "") -> str:
    value = data[key]
    if not isinstance(value, str) or not (lo <= len(value) <= hi):
        raise _bad(f"{where}{key} must be text of {lo}..{hi} characters")
    if CONTROL_RE.search(value):
        raise _bad(f"{where}{key} contains control characters")
    return value


def _match(data: dict[str, Any], key: str, pattern: re.Pattern[str], where: str = "") -> str:
    value = data[key]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _bad(f"{where}{key} has the wrong form")
    return value


def _time(data: dict[str, Any], key: str, where: str = "") -> str:
    value = _match(data, key, TIME_RE, where)
    try:
        ts = parse_iso(value)
    except ValueError:
        raise _bad(f"{where}{key} is not a valid time") from None
    if not math.isfinite(ts):
        raise _bad(f"{where}{key} is not a valid time")
    return value


def _number(value: Any, lo: float, hi: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{what} must be a number")
    f = float(value)
    if not math.isfinite(f) or not (lo <= f <= hi):
        raise _bad(f"{what} must be between {lo} and {hi}")
    return f


def _audience(value: Any) -> str | Area:
    if not isinstance(value, dict) or len(value) != 1:
        raise _bad("audience must be {\"device\": ...} or {\"area\": {...}}")
    if "device" in value:
        return _match(value, "device", DEVICE_ID_RE, "audience.")
    if "area" in value:
        area = _fields(value["area"], frozenset({"lat", "lon", "radius_m"}), "audience.area")
        radius = area["radius_m"]
        if isinstance(radius, bool) or not isinstance(radius, int) or not (1 <= radius <= MAX_AREA_RADIUS_M):
            raise _bad(f"audience.area.radius_m must be a whole number 1..{MAX_AREA_RADIUS_M}")
        return Area(
            lat=_number(area["lat"], -90.0, 90.0, "audience.area.lat"),
            lon=_number(area["lon"], -180.0, 180.0, "audience.area.lon"),
            radius_m=radius,
        )
    raise _bad("audience must be {\"device\": ...} or {\"area\": {...}}")


def _recipient(data: dict[str, Any]) -> str:
    value = data["recipient"]
    if not isinstance(value, str) or not value.startswith("age1") or len(value) > 100:
        raise _bad("recipient must be an age X25519 recipient (age1...)")
    try:
        pyrage.x25519.Recipient.from_str(value)
    except Exception:  # pyrage raises its own error types; any failure means not a recipient
        raise _bad("recipient is not a valid age X25519 recipient") from None
    return value


def _body_from_dict(data: Any) -> RequestBody:
    data = _fields(data, BODY_FIELDS, "body")
    v = data["v"]
    if isinstance(v, bool) or v != VERSION or not isinstance(v, int):
        raise _bad(f"v must be {VERSION}")
    window = _fields(data["window"], frozenset({"start", "end"}), "window")
    requester = _fields(data["requester"], REQUESTER_FIELDS, "requester")
    return RequestBody(
        id=_match(data, "id", ID_RE),
        issued=_time(data, "issued"),
        expires=_time(data, "expires"),
        audience=_audience(data["audience"]),
        window_start=_time(window, "start", "window."),
        window_end=_time(window, "end", "window."),
        case=_text(data, "case", 1, 128),
        reason=_text(data, "reason", 1, 1000),
        requester=Requester(
            name=_text(requester, "name", 1, 200, "requester."),
            organisation=_text(requester, "organisation", 1, 200, "requester."),
            contact=_text(requester, "contact", 1, 200, "requester."),
        ),
        recipient=_recipient(data),
        inbox=_match(data, "inbox", INBOX_RE),
    )
