"""The owner's trust store: the only requester keys whose requests count.

Stored as ``state/trust.json`` (0600, replaced atomically)::

    {"v": 1, "entries": [{"name", "key": "ed25519:...", "key_id": hex, "max_window": s,
                          "rate": per_day, "added": "...Z"}]}

A key may appear once; a name may appear once. Lookups on the hot path go by the 16-byte key id
(``edge.signing.key_id``), which is what a request's framing carries.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge import clock
from edge.errors import ConsentcamError, NotFoundError, StateError
from edge.signing import decode_public, encode_public, key_id
from edge.state import write_private

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,63}")
RATE_RE = re.compile(r"\s*(\d{1,6})\s*(?:/\s*(day|d|24h))?\s*")


class TrustError(ConsentcamError):
    """Bad input to the trust store (bad name, bad key, duplicate)."""

    exit_code = 2


def parse_rate(text: str | int) -> int:
    """Requests per day from ``20/day``, ``20/d`` or ``20``."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = RATE_RE.fullmatch(str(text))
        if not m:
            raise TrustError(f"rate {text!r}: expected requests per day such as 20/day")
        value = int(m.group(1))
    if value < 1:
        raise TrustError(f"rate {text!r}: must allow at least 1 request per day")
    return value


@dataclass(frozen=True)
class TrustEntry:
    name: str
    key: str  # ed25519:<base64>
    key_id: str  # hex of the 16-byte key id
    max_window: float  # seconds
    rate: int  # requests per day
    added: str
    public: Ed25519PublicKey = field(compare=False, repr=False, default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.public is None:
            object.__setattr__(self, "public", decode_public(self.key))

    @classmethod
    def create(cls, name: str, key_text: str, max_window: float, rate: int) -> TrustEntry:
        if not NAME_RE.fullmatch(name):
            raise TrustError(f"name {name!r}: use 1-64 letters, digits, '.', '_', '-' or spaces")
        try:
            public = decode_public(key_text)
        except ValueError as exc:
            raise TrustError(f"key: {exc}") from exc
        return cls(
            name=name,
            key=encode_public(public),
            key_id=key_id(public).hex(),
            max_window=float(max_window),
            rate=int(rate),
            added=clock.iso(clock.now()),
            public=public,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "key_id": self.key_id,
            "max_window": self.max_window,
            "rate": self.rate,
            "added": self.added,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrustEntry:
        entry = cls(
            name=str(data["name"]),
            key=str(data["key"]),
            key_id=str(data["key_id"]),
            max_window=float(data["max_window"]),
            rate=int(data["rate"]),
            added=str(data["added"]),
        )
        # The stored key id is a cache: never trust it over the key itself.
        if key_id(entry.public).hex() != entry.key_id:
            raise ValueError(f"trust entry {entry.name!r}: key_id does not match its key")
        return entry


class TrustStore:
    """In-memory view of the trust store; ``load``/``save`` talk to ``trust.json``."""

    def __init__(self, entries: list[TrustEntry] | None = None, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: list[TrustEntry] = []
        self._by_kid: dict[bytes, TrustEntry] = {}
        self._set(entries or [])

    def _set(self, entries: list[TrustEntry]) -> None:
        by_kid = {bytes.fromhex(e.key_id): e for e in entries}
        with self._lock:
            self._entries = list(entries)
            self._by_kid = by_kid

    @classmethod
    def load(cls, path: Path) -> TrustStore:
        return cls(_read_entries(path), path)

    def reload(self) -> None:
        """Re-read the file (the daemon does this on SIGHUP)."""
        if self.path is None:
            return
        self._set(_read_entries(self.path))

    def save(self) -> None:
        if self.path is None:
            raise StateError("this trust store has no file")
        doc = {"v": 1, "entries": [e.to_dict() for e in self._entries]}
        write_private(self.path, json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n")

    def entries(self) -> list[TrustEntry]:
        with self._lock:
            return list(self._entries)

    def get_by_key_id(self, kid: bytes) -> TrustEntry | None:
        return self._by_kid.get(kid)

    def get(self, name: str) -> TrustEntry:
        for e in self.entries():
            if e.name == name:
                return e
        raise NotFoundError(f"no trusted requester named {name!r}")

    def add(self, entry: TrustEntry) -> None:
        entries = self.entries()
        for e in entries:
            if e.name == entry.name:
                raise TrustError(f"a requester named {entry.name!r} is already trusted (remove it first)")
            if e.key_id == entry.key_id:
                raise TrustError(f"this key is already trusted as {e.name!r}")
        self._set([*entries, entry])

    def remove(self, name: str) -> TrustEntry:
        entry = self.get(name)
        self._set([e for e in self.entries() if e.name != name])
        return entry


def _read_entries(path: Path) -> list[TrustEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"{path}: cannot read the trust store: {exc}") from exc
    try:
        doc = json.loads(text)
        return [TrustEntry.from_dict(d) for d in doc["entries"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise StateError(f"{path}: damaged trust store: {exc}") from exc
