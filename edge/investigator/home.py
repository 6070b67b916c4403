"""The investigator's own home directory (never shared with a device).

Layout (directories 0700, secrets 0600)::

    HOME/signing.key          Ed25519 private key (PKCS#8 PEM): signs requests
    HOME/identity.txt         age X25519 identity: opens released bundles
    HOME/card.json            public card the device owner trusts (`consentcam trust add NAME card.json`)
    HOME/client_id            stable MQTT client id, so the broker keeps our session while we are offline
    HOME/requests/<id>.json   every request sent: the exact signed bytes (base64), digest, topics
    HOME/incoming/<id>/...    verified chunks (ciphertext) of releases still being received
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import clock
from edge.encoding import b64decode, b64encode
from edge.errors import ConsentcamError, NotFoundError, StateError
from edge.signing import encode_public, private_from_pem, private_to_pem
from edge.state import DIR_MODE, write_private

DEFAULT_HOME = Path("~/.config/consentcam-investigator")
INBOX_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class InvestigatorError(ConsentcamError):
    exit_code = 1


@dataclass(frozen=True)
class Card:
    name: str
    organisation: str
    contact: str
    signing_key: str  # ed25519:...
    recipient: str  # age1...
    inbox: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RequestRecord:
    id: str
    digest: str
    raw: bytes
    audience: dict[str, Any]
    topics: list[str]
    created: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "digest": self.digest, "raw": b64encode(self.raw), "audience": self.audience,
                "topics": self.topics, "created": self.created}

    @property
    def device_id(self) -> str | None:
        return self.audience.get("device")


class Home:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()

    @property
    def signing_key_path(self) -> Path:
        return self.root / "signing.key"

    @property
    def identity_path(self) -> Path:
        return self.root / "identity.txt"

    @property
    def card_path(self) -> Path:
        return self.root / "card.json"

    @property
    def requests_dir(self) -> Path:
        return self.root / "requests"

    @property
    def incoming_dir(self) -> Path:
        return self.root / "incoming"

    def exists(self) -> bool:
        return self.signing_key_path.exists() and self.identity_path.exists() and self.card_path.exists()

    def require(self) -> None:
        if not self.exists():
            raise StateError(f"{self.root}: no investigator keys here (run 'consentcam-investigator keygen' first)")

    def keygen(self, name: str, inbox: str, organisation: str, contact: str) -> Card:
        if self.signing_key_path.exists() or self.identity_path.exists():
            raise StateError(f"{self.root}: keys already exist (refusing to overwrite them)")
        if not INBOX_RE.match(inbox):
            raise InvestigatorError(f"inbox {inbox!r}: use 1-64 of a-z 0-9 . _ - (it is your broker user name)")
        for what, value in (("name", name), ("organisation", organisation), ("contact", contact)):
            if not (1 <= len(value) <= 200):
                raise InvestigatorError(f"{what} must be 1..200 characters")
        self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.chmod(self.root, DIR_MODE)
        key = Ed25519PrivateKey.generate()
        identity = pyrage.x25519.Identity.generate()
        write_private(self.signing_key_path, private_to_pem(key))
        write_private(self.identity_path, str(identity).encode("ascii") + b"\n")
        write_private(self.root / "client_id", f"ccinv-{inbox}-{os.urandom(4).hex()}\n".encode())
        card = Card(name, organisation, contact, encode_public(key), str(identity.to_public()), inbox)
        write_private(self.card_path, json.dumps(card.to_dict(), indent=2, sort_keys=True).encode() + b"\n",
                      mode=0o644)
        return card

    def card(self) -> Card:
        self.require()
        try:
            return Card(**json.loads(self.card_path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise StateError(f"{self.card_path}: unreadable card: {exc}") from exc

    def signing_key(self) -> Ed25519PrivateKey:
        self.require()
        try:
            return private_from_pem(self.signing_key_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise StateError(f"{self.signing_key_path}: not a usable Ed25519 key") from exc

    def identity(self) -> pyrage.x25519.Identity:
        self.require()
        try:
            return pyrage.x25519.Identity.from_str(self.identity_path.read_text().strip())
        except (OSError, pyrage.IdentityError) as exc:
            raise StateError(f"{self.identity_path}: not a usable age identity") from exc

    def client_id(self) -> str:
        path = self.root / "client_id"
        try:
            return path.read_text().strip()
        except OSError:
            return f"ccinv-{self.card().inbox}"

    def save_request(self, record: RequestRecord) -> None:
        path = self.requests_dir / f"{record.id}.json"
        if path.exists():
            raise InvestigatorError(f"a request with id {record.id} was already sent from this home")
        write_private(path, json.dumps(record.to_dict(), indent=2, sort_keys=True).encode() + b"\n")

    def load_request(self, request_id: str) -> RequestRecord:
        path = self.requests_dir / f"{request_id}.json"
        if not re.match(r"^[A-Za-z0-9_-]{8,64}$", request_id) or not path.exists():
            raise NotFoundError(f"no request {request_id!r} was sent from {self.root}")
        try:
            data = json.loads(path.read_text())
            return RequestRecord(id=data["id"], digest=data["digest"], raw=b64decode(data["raw"]),
                                 audience=data["audience"], topics=list(data["topics"]), created=data["created"])
        except (OSError, ValueError, KeyError) as exc:
            raise StateError(f"{path}: unreadable request record: {exc}") from exc

    def list_requests(self) -> list[RequestRecord]:
        if not self.requests_dir.is_dir():
            return []
        return sorted((self.load_request(p.stem) for p in self.requests_dir.glob("*.json")), key=lambda r: r.created)


def now_iso() -> str:
    return clock.iso(clock.now())
