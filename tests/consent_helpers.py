"""Shared pieces for the release, investigator and end-to-end consent tests (all real components)."""

from __future__ import annotations

import functools
import io
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import clock, keys
from edge.config import StorageConfig
from edge.protocol.request import Area, RequestBody, Requester, encode_request, parse_request
from edge.protocol.trust import TrustEntry, TrustStore
from edge.state import StateDir
from edge.vault import Vault
from tests.conftest import PASSPHRASE


@functools.lru_cache(maxsize=32)
def make_ts(seconds: float = 1.0, *, seed: int = 0, size: tuple[int, int] = (64, 48), fps: int = 10) -> bytes:
    """A small, valid H.264 MPEG-TS made with PyAV (frames differ by seed so clips differ)."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"threads": "1"}  # deterministic output
        rng = np.random.default_rng(seed)
        for i in range(max(1, int(seconds * fps))):
            img = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            img[:, : (i * 3) % size[0]] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


_IDENTITIES: dict[str, pyrage.x25519.Identity] = {}


def _owner_identity(state: StateDir) -> pyrage.x25519.Identity:
    # Test state dirs are copies of one template: unlock (scrypt, ~1 s) once per owner key.
    recipient = state.owner_recipient.read_text().strip()
    if recipient not in _IDENTITIES:
        _IDENTITIES[recipient] = keys.unlock_owner_identity(state, PASSPHRASE)
    return _IDENTITIES[recipient]


@dataclass
class Device:
    state: StateDir
    vault: Vault
    device_key: Ed25519PrivateKey
    identity: pyrage.x25519.Identity


def open_device(state_dir: Path | str) -> Device:
    state = StateDir(Path(state_dir))
    device_key = keys.load_device_key(state)
    vault = Vault.open(state, StorageConfig(), keys.load_owner_recipient(state), device_key)
    identity = _owner_identity(state)
    return Device(state, vault, device_key, identity)


def add_clip(device: Device, data: bytes, start: float, camera: str = "front") -> str:
    """Record a clip through the vault's own writer (as the recorder would)."""
    writer = device.vault.begin_clip(camera, start)
    step = 64 * 1024
    for off in range(0, len(data), step):
        writer.write(data[off : off + step])
        writer.boundary()
    return writer.close(start + 2.0).id


@dataclass
class Investigator:
    signing_key: Ed25519PrivateKey
    identity: pyrage.x25519.Identity
    inbox: str = "alice"

    @property
    def recipient(self) -> str:
        return str(self.identity.to_public())


def new_investigator(inbox: str = "alice") -> Investigator:
    return Investigator(Ed25519PrivateKey.generate(), pyrage.x25519.Identity.generate(), inbox)


def signed_request(inv: Investigator, device_id: str, *, request_id: str = "req-00000001",
                   window: tuple[float, float] | None = None, recipient: str | None = None,
                   area: Area | None = None) -> bytes:
    now = time.time()
    start, end = window or (now - 3600, now)
    body = RequestBody(
        id=request_id,
        issued=clock.iso(now),
        expires=clock.iso(now + 86400),
        audience=area if area is not None else device_id,
        window_start=clock.iso(start),
        window_end=clock.iso(end),
        case="CASE-1",
        reason="burglary next door",
        requester=Requester("Alice", "Police", "alice@example.org"),
        recipient=recipient or inv.recipient,
        inbox=inv.inbox,
    )
    return encode_request(body, inv.signing_key)


def verified(inv: Investigator, raw: bytes):  # type: ignore[no-untyped-def]
    from edge.signing import encode_public

    store = TrustStore([TrustEntry.create("alice", encode_public(inv.signing_key.public_key()), 43200, 100)])
    return parse_request(raw, store)
