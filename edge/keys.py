"""The device's keys: the owner's footage key pair and the device's own signing key.

- Owner footage key (X25519, age format). The public half (``owner.pub``) is what the recorder
  encrypts to. The private half exists on disk only inside ``owner.key.age``: an age file
  encrypted with the owner's passphrase (scrypt, memory-hard). The standard ``age`` tool opens it
  (``age -d -i owner.key.age clip.age`` asks for the passphrase), so the owner is never locked in.
- Device signing key (Ed25519). Signs release manifests, the audit head and clip seals. The
  daemon needs it unattended, so it is protected by file permissions, not a passphrase.

Code that records only ever calls :func:`load_owner_recipient`; nothing in the recording path
can obtain the owner's identity.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import audit, clock
from edge.errors import PassphraseError, StateError
from edge.signing import encode_public, fingerprint, private_from_pem, private_to_pem, public_raw
from edge.state import StateDir, write_private

DEVICE_ID_DOMAIN = b"consentcam/v1/device-id\x00"


def device_id_for(public: bytes) -> str:
    """Stable, topic-safe device id derived from the device's Ed25519 public key."""
    digest = hashlib.sha256(DEVICE_ID_DOMAIN + public).digest()[:10]
    return "cc" + base64.b32encode(digest).decode("ascii").lower()


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    device_public_key: str  # ed25519:...
    device_fingerprint: str
    owner_recipient: str  # age1...
    owner_fingerprint: str
    created: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


def init_state(state: StateDir, passphrase: str, *, force: bool = False) -> DeviceInfo:
    """Create a new state directory with fresh keys. Refuses to overwrite existing keys."""
    if not passphrase:
        raise PassphraseError("the owner passphrase must not be empty")
    if state.device_info.exists() and not force:
        raise StateError(f"{state.root}: already initialised (keys exist; refusing to overwrite them)")
    state.ensure_dir(state.root)
    state.root.chmod(0o700)
    state.ensure_dir(state.keys)

    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    sealed = pyrage.passphrase.encrypt(str(identity).encode("ascii") + b"\n", passphrase)
    write_private(state.owner_identity, sealed)
    write_private(state.owner_recipient, recipient.encode("ascii") + b"\n")

    device_key = Ed25519PrivateKey.generate()
    write_private(state.device_key, private_to_pem(device_key))

    info = DeviceInfo(
        device_id=device_id_for(public_raw(device_key)),
        device_public_key=encode_public(device_key),
        device_fingerprint=fingerprint(device_key),
        owner_recipient=recipient,
        owner_fingerprint=hashlib.sha256(recipient.encode("ascii")).hexdigest(),
        created=clock.iso(clock.now()),
    )
    write_private(state.device_info, json.dumps(info.to_dict(), indent=2).encode() + b"\n")
    log = audit.AuditLog(state.audit, device_key)
    log.append("keys.created", device_id=info.device_id, owner_fingerprint=info.owner_fingerprint,
               device_fingerprint=info.device_fingerprint)
    return info


def load_device_info(state: StateDir) -> DeviceInfo:
    state.require_initialised()
    try:
        data = json.loads(state.device_info.read_text())
        return DeviceInfo(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise StateError(f"{state.device_info}: unreadable device info: {exc}") from exc


def load_owner_recipient(state: StateDir) -> pyrage.x25519.Recipient:
    """The owner's public footage key: all the recording side ever gets."""
    state.require_initialised()
    try:
        text = state.owner_recipient.read_text().strip()
        return pyrage.x25519.Recipient.from_str(text)
    except OSError as exc:
        raise StateError(f"{state.owner_recipient}: cannot read the owner's public key: {exc.strerror}") from exc
    except pyrage.RecipientError as exc:
        raise StateError(f"{state.owner_recipient}: not a valid age recipient") from exc


def unlock_owner_identity(state: StateDir, passphrase: str) -> pyrage.x25519.Identity:
    """Decrypt the owner's footage key. Wrong passphrase: PassphraseError, nothing changed."""
    state.require_initialised()
    try:
        sealed = state.owner_identity.read_bytes()
    except FileNotFoundError as exc:
        raise StateError(f"{state.owner_identity}: the owner's key file is missing") from exc
    except OSError as exc:
        raise StateError(f"{state.owner_identity}: cannot read the owner's key: {exc.strerror}") from exc
    try:
        plain = pyrage.passphrase.decrypt(sealed, passphrase)
    except pyrage.DecryptError as exc:
        raise PassphraseError("wrong passphrase (or the owner key file is damaged); nothing was changed") from exc
    try:
        return pyrage.x25519.Identity.from_str(plain.decode("ascii").strip())
    except (UnicodeDecodeError, pyrage.IdentityError) as exc:
        raise StateError(f"{state.owner_identity}: decrypted, but it holds no age identity") from exc


def change_passphrase(state: StateDir, old: str, new: str) -> None:
    """Re-seal the owner's identity under a new passphrase (atomic: old file stays until done)."""
    if not new:
        raise PassphraseError("the new passphrase must not be empty")
    identity = unlock_owner_identity(state, old)
    sealed = pyrage.passphrase.encrypt(str(identity).encode("ascii") + b"\n", new)
    write_private(state.owner_identity, sealed)
    log = audit.AuditLog(state.audit, load_device_key(state))
    log.append("keys.passphrase_changed", owner_fingerprint=load_device_info(state).owner_fingerprint)


def load_device_key(state: StateDir) -> Ed25519PrivateKey:
    state.require_initialised()
    try:
        return private_from_pem(state.device_key.read_bytes())
    except OSError as exc:
        raise StateError(f"{state.device_key}: cannot read the device key: {exc.strerror}") from exc
    except ValueError as exc:
        raise StateError(f"{state.device_key}: not a valid Ed25519 private key") from exc


def read_passphrase_file(path: Path) -> str:
    """First line of the file, without its line ending (so `echo secret > file` works)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PassphraseError(f"{path}: cannot read passphrase file: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PassphraseError(f"{path}: passphrase file is not UTF-8 text") from exc
    line = text.splitlines()[0] if text else ""
    if not line:
        raise PassphraseError(f"{path}: passphrase file is empty")
    return line
