"""`consentcam-investigator verify DIR`: re-check a received release offline, from its files alone."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from edge.errors import IntegrityError, ProtocolError
from edge.investigator.receiver import ReleaseRefused, build_report, check_clips, check_manifest_request
from edge.protocol.chunks import decode_header
from edge.protocol.manifest import CLIP_ID, verify_manifest


def verify_dir(directory: Path, recipient: str | None = None) -> dict[str, Any]:
    """Manifest signature, device id derivation, request digest, every clip. IntegrityError on any mismatch."""
    directory = Path(directory)
    if not directory.is_dir():
        raise IntegrityError(f"{directory}: not a directory")
    try:
        manifest_json = _read(directory, "manifest.json")
        manifest_sig = _read(directory, "manifest.sig")
        request_raw = _read(directory, "request.ccrq")
        manifest = verify_manifest(manifest_json, manifest_sig)
        check_manifest_request(manifest, request_raw, recipient)
        header = None
        if (directory / "header.bin").exists():
            header = decode_header((directory / "header.bin").read_bytes())
            if header.device_key != manifest.device_key or header.request_digest != manifest.request.digest:
                raise ReleaseRefused("header_mismatch", "header.bin names another device key or request")
        check_clips(manifest, _hash_clips(directory / "clips"))
    except ProtocolError as exc:
        raise IntegrityError(f"{directory}: {exc.reason}: {exc.detail}") from exc
    except ReleaseRefused as exc:
        raise IntegrityError(f"{directory}: {exc.reason}: {exc.detail}") from exc
    return build_report(manifest, header, None)


def _read(directory: Path, name: str) -> bytes:
    try:
        return (directory / name).read_bytes()
    except FileNotFoundError:
        raise ReleaseRefused("missing_file", f"{name} is missing") from None
    except OSError as exc:
        raise ReleaseRefused("missing_file", f"{name} cannot be read: {exc.strerror}") from None


def _hash_clips(clips_dir: Path) -> dict[str, tuple[str, int]]:
    if not clips_dir.is_dir():
        raise ReleaseRefused("missing_file", "clips/ is missing")
    out: dict[str, tuple[str, int]] = {}
    for path in sorted(clips_dir.iterdir()):
        clip_id = path.name[:-3] if path.name.endswith(".ts") else ""
        if not clip_id or not CLIP_ID.match(clip_id) or path.is_symlink() or not path.is_file():
            raise ReleaseRefused("unexpected_file", f"clips/{path.name} is not a clip of this release")
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as fh:
            while piece := fh.read(1024 * 1024):
                digest.update(piece)
                size += len(piece)
        out[clip_id] = (digest.hexdigest(), size)
    return out
