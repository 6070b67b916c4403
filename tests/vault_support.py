"""Helpers shared by the vault tests: open a real vault on a real state directory, make real
MPEG-TS footage with PyAV, and scan files for plaintext."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pyrage

from edge import audit, keys
from edge.config import RetentionConfig, StorageConfig
from edge.state import StateDir
from edge.vault import Vault


def storage(segment_max_bytes: int = 64 * 1024, segment_seconds: float = 1.0, *, max_age: float = 0.0,
            max_bytes: int = 0, min_free: int = 0) -> StorageConfig:
    return StorageConfig(segment_seconds=segment_seconds, segment_max_bytes=segment_max_bytes,
                         retention=RetentionConfig(max_age=max_age, max_bytes=max_bytes, min_free=min_free))


def open_vault(state_root: Path, store: StorageConfig | None = None) -> Vault:
    """The recorder's view: owner's public key and the device key only."""
    st = StateDir(state_root)
    dk = keys.load_device_key(st)
    return Vault.open(st, store or storage(), keys.load_owner_recipient(st), dk, audit.AuditLog(st.audit, dk))


def make_ts(frames: int, fps: int = 15, width: int = 64, height: int = 48, seed: int = 1) -> bytes:
    """H.264 in MPEG-TS with a keyframe every second, from noisy frames (so it does not compress to nothing)."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = fps
        stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        for i in range(frames):
            img = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def decode_frames(data: bytes) -> int:
    """Number of video frames PyAV decodes from an MPEG-TS byte stream."""
    count = 0
    with av.open(io.BytesIO(data), format="mpegts") as media:
        for packet in media.demux(video=0):
            try:
                count += len(packet.decode())
            except av.error.InvalidDataError:
                continue  # a packet cut by a crash: the decoder resynchronises
    return count


def plaintext_leaks(plaintext: bytes, root: Path, window: int = 4096) -> list[str]:
    """Files under ``root`` that contain any ``window``-byte slice of ``plaintext``.

    Any window of 4096 bytes contains an aligned 64-byte block starting at a multiple of 2048,
    so searching for those blocks finds every leaked window (and some shorter ones, which only
    makes the test stricter).
    """
    step, probe = window // 2, 64
    blocks = [plaintext[i : i + probe] for i in range(0, max(0, len(plaintext) - probe + 1), step)]
    leaks = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if any(block in data for block in blocks):
            leaks.append(str(path))
    return leaks


_IDENTITIES: dict[str, pyrage.x25519.Identity] = {}


def owner_identity(state_root: Path, passphrase: str) -> pyrage.x25519.Identity:
    """Unlock the owner's identity (scrypt: about a second), once per key pair per test session."""
    st = StateDir(state_root)
    recipient = st.owner_recipient.read_text().strip()
    if recipient not in _IDENTITIES:
        _IDENTITIES[recipient] = keys.unlock_owner_identity(st, passphrase)
    return _IDENTITIES[recipient]
