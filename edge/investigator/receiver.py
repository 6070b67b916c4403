"""Receiving releases: chunk storage, reassembly, decryption, safe extraction and verification.

Nothing here trusts the broker. Per request, every message on the reply topic is one of:

- a release header (self-signed by a device key; the device id must derive from that key and, for a
  device-addressed request, equal the audience; the request id and digest must be ours);
- a chunk (its payload hash must match; it must name our request digest; it is filed under the
  bundle SHA-256 it names, so releases from several devices never mix);
- a signed decline.

Verified chunks are stored on disk (ciphertext only) under ``HOME/incoming/<request_id>/<bundle>/``,
so an interrupted receive resumes where it stopped. When a bundle is complete it is reassembled and
its SHA-256 and size checked, decrypted with our age identity and unpacked member by member with
strict rules into a hidden staging directory (age writes plaintext before it can detect a damaged
tail, so nothing there counts until every check passed), and the manifest and every clip verified.
Only then is the staging directory renamed to ``OUT/<device_id>/``: a refused release leaves
nothing in OUT.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyrage

from edge.errors import ProtocolError
from edge.investigator.home import Home, RequestRecord, now_iso
from edge.protocol.chunks import Decline, ReleaseHeader, decode_chunk, decode_decline, decode_header, message_kind
from edge.protocol.manifest import MAX_MANIFEST_BYTES, Manifest, clip_member_name, verify_manifest
from edge.protocol.request import split_message
from edge.signing import decode_public, fingerprint
from edge.state import DIR_MODE, FILE_MODE

log = logging.getLogger(__name__)

ORPHAN_BUNDLES_MAX = 8  # bundles seen without a header yet (reordered delivery) kept at once
ORPHAN_BYTES_MAX = 256 * 1024 * 1024
MAX_BUNDLE_BYTES = 16 * 1024**3  # per release; `receive --max-bytes` changes it
REPORT_JSON = "verification-report.json"
REPORT_TXT = "verification-report.txt"
_CLIP_MEMBER = re.compile(r"^clips/([A-Za-z0-9][A-Za-z0-9_.-]{0,127})\.ts$")


@dataclass
class Event:
    kind: str  # header | chunk | complete | declined | refused | ignored | duplicate | kept
    request_id: str = ""
    device_id: str = ""
    detail: str = ""
    path: Path | None = None
    received: int = 0  # bytes of this bundle received so far
    total: int = 0


@dataclass
class _Bundle:
    request_id: str
    bundle_sha256: str
    directory: Path
    header: ReleaseHeader | None = None
    have: dict[int, int] = field(default_factory=dict)  # index -> payload size

    @property
    def chunks_dir(self) -> Path:
        return self.directory / "chunks"

    def received_bytes(self) -> int:
        return sum(self.have.values())


class ReleaseRefused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Receiver:
    def __init__(self, home: Home, out: Path, requests: list[RequestRecord],
                 on_event: Callable[[Event], None] | None = None, *,
                 max_bundle_bytes: int = MAX_BUNDLE_BYTES, selected: set[str] | None = None) -> None:
        """``requests``: every request we know (our persistent session may deliver replies to any of
        them, and each is kept); ``selected``: the ones to finish into ``out`` now (default: all).
        Replies to the others are stored under HOME/incoming and finished by a later receive."""
        self.home = home
        self.max_bundle_bytes = max_bundle_bytes
        self.out = Path(out)
        self.requests = {r.id: r for r in requests}
        self.selected = set(self.requests) if selected is None else set(selected)
        self.identity = home.identity()
        self.card = home.card()
        self.on_event = on_event or (lambda e: None)
        self.bundles: dict[tuple[str, str], _Bundle] = {}
        self.completed: list[Event] = []
        self.refused: list[Event] = []
        self.declined: list[Event] = []
        self._resume()

    # -- resume -----------------------------------------------------------------------------

    def _resume(self) -> None:
        for rid in self.requests:
            base = self.home.incoming_dir / rid
            if not base.is_dir():
                continue
            for bdir in base.iterdir():
                if not bdir.is_dir() or not re.match(r"^[0-9a-f]{64}$", bdir.name):
                    continue
                if (bdir / "done").exists() or (bdir / "refused").exists():
                    continue
                bundle = _Bundle(rid, bdir.name, bdir)
                header_path = bdir / "header.bin"
                if header_path.exists():
                    with contextlib.suppress(ProtocolError):
                        bundle.header = decode_header(header_path.read_bytes())
                if bundle.chunks_dir.is_dir():
                    for f in bundle.chunks_dir.iterdir():
                        if f.name.isdigit():
                            bundle.have[int(f.name)] = f.stat().st_size
                self.bundles[(rid, bdir.name)] = bundle

    # -- messages ---------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> Event:
        request_id = topic.rsplit("/", 1)[-1]
        record = self.requests.get(request_id)
        if record is None:
            return self._emit(Event("ignored", request_id, detail="not a request of ours"))
        kind = message_kind(payload)
        try:
            if kind == "header":
                return self._header(record, payload)
            if kind == "chunk":
                return self._chunk(record, payload)
            if kind == "decline":
                return self._decline(record, payload)
        except ProtocolError as exc:
            return self._emit(Event("ignored", request_id, detail=f"{exc.reason}: {exc.detail}"))
        return self._emit(Event("ignored", request_id, detail="unknown message type"))

    def _emit(self, event: Event) -> Event:
        if event.kind == "complete":
            self.completed.append(event)
        elif event.kind == "refused":
            self.refused.append(event)
        elif event.kind == "declined":
            self.declined.append(event)
        self.on_event(event)
        return event

    def _check_addressing(self, record: RequestRecord, request_id: str, digest: str, device_id: str, what: str) -> None:
        if request_id != record.id or digest != record.digest:
            raise ProtocolError("wrong_request", f"{what} is for request {request_id} / digest {digest[:16]}…")
        if record.device_id is not None and device_id != record.device_id:
            raise ProtocolError("wrong_device", f"{what} from {device_id}, the request went to {record.device_id}")

    def _header(self, record: RequestRecord, payload: bytes) -> Event:
        header = decode_header(payload)
        self._check_addressing(record, header.request_id, header.request_digest, header.device_id, "release header")
        if header.bundle_size > self.max_bundle_bytes:
            # Anyone can make a device key; bound what one release may put on our disk.
            raise ProtocolError("too_large", f"release of {header.bundle_size} bytes exceeds the "
                                             f"{self.max_bundle_bytes}-byte limit (--max-bytes)")
        bundle = self._bundle(record.id, header.bundle_sha256)
        if bundle is None:
            return self._emit(Event("duplicate", record.id, header.device_id, "release already handled"))
        if bundle.header is None:
            bundle.directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            _write(bundle.directory / "header.bin", payload)
            bundle.header = header
            self._drop_bad_chunks(bundle)
        event = Event("header", record.id, header.device_id, received=bundle.received_bytes(),
                      total=header.bundle_size)
        self._emit(event)
        return self._maybe_finish(bundle) or event

    def _chunk(self, record: RequestRecord, payload: bytes) -> Event:
        chunk = decode_chunk(payload)
        if chunk.request_digest.hex() != record.digest:
            raise ProtocolError("wrong_request", "chunk belongs to another request")
        bundle = self._bundle(record.id, chunk.bundle_sha256.hex())
        if bundle is None:
            return self._emit(Event("duplicate", record.id, detail="release already handled"))
        if chunk.index in bundle.have:
            return self._emit(Event("duplicate", record.id, detail=f"chunk {chunk.index} again"))
        try:
            if bundle.header is not None:
                _check_chunk_fits(bundle.header, chunk.index, chunk.count, len(chunk.payload))
            else:
                self._check_orphan_room(bundle, len(chunk.payload))
        except ProtocolError:
            # Unsigned input: a refused chunk for a bundle we know nothing of leaves no entry behind.
            if bundle.header is None and not bundle.have:
                self.bundles.pop((record.id, bundle.bundle_sha256), None)
            raise
        bundle.chunks_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        _write(bundle.chunks_dir / f"{chunk.index:010d}", chunk.payload)
        bundle.have[chunk.index] = len(chunk.payload)
        device = bundle.header.device_id if bundle.header else ""
        total = bundle.header.bundle_size if bundle.header else 0
        event = self._emit(Event("chunk", record.id, device, received=bundle.received_bytes(), total=total))
        return self._maybe_finish(bundle) or event

    def _decline(self, record: RequestRecord, payload: bytes) -> Event:
        decline = decode_decline(payload)
        self._check_addressing(record, decline.request_id, decline.request_digest, decline.device_id, "decline")
        if record.id not in self.selected:
            keep = self.home.incoming_dir / record.id
            keep.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            _write(keep / f"decline-{decline.device_id}.bin", payload)
            return self._emit(Event("kept", record.id, decline.device_id, "decline for another request: kept"))
        target = self.out / decline.device_id
        target.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        _write(target / "decline.bin", payload)
        _write(target / "decline.json", json.dumps(_decline_report(decline), indent=2).encode() + b"\n")
        return self._emit(Event("declined", record.id, decline.device_id, path=target))

    # -- bookkeeping ------------------------------------------------------------------------

    def _bundle(self, request_id: str, bundle_sha256: str) -> _Bundle | None:
        key = (request_id, bundle_sha256)
        bundle = self.bundles.get(key)
        if bundle is None:
            directory = self.home.incoming_dir / request_id / bundle_sha256
            if (directory / "done").exists() or (directory / "refused").exists():
                return None
            bundle = _Bundle(request_id, bundle_sha256, directory)
            self.bundles[key] = bundle
        return bundle

    def _check_orphan_room(self, bundle: _Bundle, size: int) -> None:
        # Chunks may arrive before their header (the broker does not promise order), but an
        # unsigned flood must not fill the disk: bound what is kept without a header.
        orphans = [b for b in self.bundles.values() if b.header is None and b.have]
        if bundle not in orphans and len(orphans) >= ORPHAN_BUNDLES_MAX:
            raise ProtocolError("too_many_unknown_releases", "chunks for too many releases without a header")
        if sum(b.received_bytes() for b in orphans) + size > ORPHAN_BYTES_MAX:
            raise ProtocolError("too_much_unknown_data", "too many bytes of chunks without a header")

    def _drop_bad_chunks(self, bundle: _Bundle) -> None:
        assert bundle.header is not None
        for index, size in list(bundle.have.items()):
            try:
                _check_chunk_fits(bundle.header, index, bundle.header.chunks, size)
            except ProtocolError:
                (bundle.chunks_dir / f"{index:010d}").unlink(missing_ok=True)
                del bundle.have[index]

    def finish_ready(self) -> list[Event]:
        """Finish what earlier runs stored for the selected requests (complete bundles, declines)."""
        events = []
        for rid in sorted(self.selected):
            base = self.home.incoming_dir / rid
            for stored in sorted(base.glob("decline-*.bin")) if base.is_dir() else []:
                event = self.handle(f"stored/{rid}", stored.read_bytes())
                stored.unlink(missing_ok=True)
                events.append(event)
        for bundle in list(self.bundles.values()):
            event = self._maybe_finish(bundle)
            if event is not None:
                events.append(event)
        return events

    def _maybe_finish(self, bundle: _Bundle) -> Event | None:
        header = bundle.header
        if header is None or len(bundle.have) < header.chunks or bundle.request_id not in self.selected:
            return None
        record = self.requests[bundle.request_id]
        try:
            path = finish_bundle(bundle.directory, header, record, self.identity, self.card.recipient, self.out)
        except ReleaseRefused as exc:
            _write(bundle.directory / "refused", f"{exc.reason}: {exc.detail}\n".encode())
            shutil.rmtree(bundle.chunks_dir, ignore_errors=True)
            self.bundles.pop((bundle.request_id, bundle.bundle_sha256), None)
            return self._emit(Event("refused", bundle.request_id, header.device_id, f"{exc.reason}: {exc.detail}"))
        _write(bundle.directory / "done", str(path).encode() + b"\n")
        shutil.rmtree(bundle.chunks_dir, ignore_errors=True)
        self.bundles.pop((bundle.request_id, bundle.bundle_sha256), None)
        return self._emit(Event("complete", bundle.request_id, header.device_id, path=path,
                                received=header.bundle_size, total=header.bundle_size))


def _check_chunk_fits(header: ReleaseHeader, index: int, count: int, size: int) -> None:
    if count != header.chunks or index >= header.chunks:
        raise ProtocolError("malformed", f"chunk {index}/{count} does not fit a release of {header.chunks} chunks")
    last = header.bundle_size - (header.chunks - 1) * header.chunk_size
    expected = last if index == header.chunks - 1 else header.chunk_size
    if size != expected:
        raise ProtocolError("chunk_size_mismatch", f"chunk {index} has {size} bytes, the header says {expected}")


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Finishing one complete bundle


def finish_bundle(directory: Path, header: ReleaseHeader, record: RequestRecord, identity: Any, recipient: str,
                  out: Path) -> Path:
    """Check, decrypt, extract and verify a complete bundle; returns OUT/<device_id>. Raises ReleaseRefused."""
    out.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    staging = out / f".incoming-{header.device_id}-{os.urandom(4).hex()}"
    try:
        staging.mkdir(mode=DIR_MODE)
        manifest_json, manifest_sig, clips = _decrypt_and_extract(directory / "chunks", header, identity, staging)
        manifest = _verify_release(manifest_json, manifest_sig, clips, header, record, recipient)
        _write(staging / "manifest.json", manifest_json)
        _write(staging / "manifest.sig", manifest_sig)
        _write(staging / "request.ccrq", record.raw)
        _write(staging / "header.bin", (directory / "header.bin").read_bytes())
        report = build_report(manifest, header, record)
        _write(staging / REPORT_JSON, json.dumps(report, indent=2, sort_keys=True).encode() + b"\n")
        _write(staging / REPORT_TXT, report_text(report).encode())
        final = out / header.device_id
        if final.exists():
            final = out / f"{header.device_id}-{header.bundle_sha256[:12]}"
        os.rename(staging, final)
        return final
    except ReleaseRefused:
        raise
    except ProtocolError as exc:
        raise ReleaseRefused(exc.reason, exc.detail) from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


class _ChunkReader(io.RawIOBase):
    """The bundle, read straight from the stored chunk files in index order, hashed on the way."""

    def __init__(self, chunks_dir: Path, count: int) -> None:
        super().__init__()
        self._dir, self._count, self._next = chunks_dir, count, 0
        self._current = memoryview(b"")
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        while not self._current:
            if self._next >= self._count:
                return 0
            try:
                data = (self._dir / f"{self._next:010d}").read_bytes()
            except OSError as exc:
                raise ReleaseRefused("incomplete", f"chunk {self._next} is missing") from exc
            self._next += 1
            self.sha256.update(data)
            self.size += len(data)
            self._current = memoryview(data)
        n = min(len(target), len(self._current))
        target[:n] = self._current[:n]
        self._current = self._current[n:]
        return n

    def drain(self) -> None:
        while self.readinto(bytearray(1 << 20)):
            pass


def _decrypt_and_extract(chunks_dir: Path, header: ReleaseHeader, identity: Any,
                         staging: Path) -> tuple[bytes, bytes, dict[str, tuple[str, int]]]:
    """Decrypt the stored chunks as one stream and unpack the tar from it into ``staging``.

    age decrypts on a worker thread into a pipe; the tar is read from the other end, so the
    plaintext is never written anywhere but the staging directory, which is removed unless every
    check below passes (age emits plaintext before it can detect a damaged tail, so nothing is
    trusted until decryption finished, the bundle hash matched and the manifest verified).
    """
    reader = _ChunkReader(chunks_dir, header.chunks)
    failure: list[BaseException] = []
    read_fd, write_fd = os.pipe()

    def produce() -> None:
        # The with is inside the try: closing the pipe flushes, and when the tar reader stopped
        # early (a refused member) that flush raises BrokenPipeError, an expected end.
        try:
            with os.fdopen(write_fd, "wb") as sink:
                pyrage.decrypt_io(reader, sink, [identity])
        except BaseException as exc:  # handed to the main thread below
            failure.append(exc)

    worker = threading.Thread(target=produce, name="bundle-decrypt", daemon=True)
    worker.start()
    extracted: tuple[bytes, bytes, dict[str, tuple[str, int]]] | None = None
    extract_error: ReleaseRefused | None = None
    with os.fdopen(read_fd, "rb") as source:
        try:
            extracted = _extract(source, staging)
            while source.read(1 << 20):  # the rest (tar padding): age authenticates the final chunk last
                pass
        except ReleaseRefused as exc:
            extract_error = exc
    worker.join()
    reader.drain()  # hash every byte, so a damaged bundle is reported as such
    if reader.size != header.bundle_size or reader.sha256.hexdigest() != header.bundle_sha256:
        raise ReleaseRefused("bundle_hash_mismatch", "the reassembled bundle does not match its signed header")
    if failure and extract_error is None:
        exc = failure[0]
        if isinstance(exc, ReleaseRefused):
            raise exc
        if isinstance(exc, pyrage.DecryptError):
            raise ReleaseRefused("not_for_us", f"the bundle does not decrypt with this investigator's identity ({exc})")
        raise ReleaseRefused("decrypt_failed", f"the bundle cannot be decrypted: {exc}")
    if failure and isinstance(failure[0], pyrage.DecryptError) and extract_error.reason == "malformed_bundle":
        # Nothing (or garbage) came out because it is not ours: say that, not "bad tar".
        raise ReleaseRefused("not_for_us", f"the bundle does not decrypt with this investigator's identity "
                                           f"({failure[0]})")
    if extract_error is not None:
        raise extract_error
    assert extracted is not None
    return extracted


def _extract(source: Any, staging: Path) -> tuple[bytes, bytes, dict[str, tuple[str, int]]]:
    """Unpack only regular files named clips/<id>.ts, then manifest.json, then manifest.sig."""
    clips: dict[str, tuple[str, int]] = {}
    manifest_json: bytes | None = None
    manifest_sig: bytes | None = None
    (staging / "clips").mkdir(mode=DIR_MODE)
    try:
        with tarfile.open(fileobj=source, mode="r|") as tar:
            for member in tar:
                name = member.name
                # isreg() also admits GNU sparse members, whose holes would expand a tiny bundle
                # into an arbitrarily large file on our disk: only plain files are allowed.
                if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or member.issparse():
                    raise ReleaseRefused("unsafe_bundle", f"member {name!r} is not a plain regular file")
                if manifest_sig is not None:
                    raise ReleaseRefused("unsafe_bundle", f"unexpected member {name!r} after manifest.sig")
                match = _CLIP_MEMBER.match(name)
                if match and ".." not in name and manifest_json is None:
                    clip_id = match.group(1)
                    if clip_id in clips:
                        raise ReleaseRefused("unsafe_bundle", f"clip {clip_id} appears twice")
                    clips[clip_id] = _copy_member(tar, member, staging / "clips" / f"{clip_id}.ts")
                elif name == "manifest.json" and manifest_json is None:
                    manifest_json = _read_member(tar, member, MAX_MANIFEST_BYTES)
                elif name == "manifest.sig" and manifest_json is not None:
                    manifest_sig = _read_member(tar, member, 64)
                else:
                    raise ReleaseRefused("unsafe_bundle", f"unexpected member {name!r}")
    except tarfile.TarError as exc:
        raise ReleaseRefused("malformed_bundle", f"not a valid tar stream: {exc}") from exc
    if manifest_json is None or manifest_sig is None:
        raise ReleaseRefused("malformed_bundle", "manifest.json or manifest.sig is missing")
    return manifest_json, manifest_sig, clips


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> tuple[str, int]:
    src = tar.extractfile(member)
    assert src is not None
    digest = hashlib.sha256()
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    with os.fdopen(fd, "wb") as out:
        while piece := src.read(1024 * 1024):
            digest.update(piece)
            size += len(piece)
            out.write(piece)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise ReleaseRefused("malformed_bundle", f"{member.name} is {member.size} bytes (limit {limit})")
    src = tar.extractfile(member)
    assert src is not None
    return src.read()


def _verify_release(manifest_json: bytes, manifest_sig: bytes, clips: dict[str, tuple[str, int]],
                    header: ReleaseHeader, record: RequestRecord, recipient: str) -> Manifest:
    try:
        manifest = verify_manifest(manifest_json, manifest_sig, expected_device_key=header.device_key)
    except ProtocolError as exc:
        raise ReleaseRefused(exc.reason, exc.detail) from exc
    check_manifest_request(manifest, record.raw, recipient)
    if manifest.device_id != header.device_id:
        raise ReleaseRefused("device_id_mismatch", "manifest and header name different devices")
    check_clips(manifest, clips)
    return manifest


def check_manifest_request(manifest: Manifest, request_raw: bytes, recipient: str | None) -> None:
    """The manifest must be for exactly our request (digest over its bytes) and our recipient key."""
    digest = hashlib.sha256(request_raw).hexdigest()
    if manifest.request.digest != digest:
        raise ReleaseRefused("wrong_request", "the manifest is for another request (digest differs)")
    try:
        _kid, _sig, body_bytes = split_message(request_raw)
        body = json.loads(body_bytes)
    except (ProtocolError, ValueError) as exc:
        raise ReleaseRefused("wrong_request", "the stored request is not a valid request message") from exc
    if manifest.request.id != body.get("id"):
        raise ReleaseRefused("wrong_request", "the manifest names another request id")
    if manifest.request.recipient != body.get("recipient") or (recipient is not None and
                                                                manifest.request.recipient != recipient):
        raise ReleaseRefused("wrong_recipient", "the manifest was made for another recipient key (re-targeted)")
    if manifest.request.signer_key_id != request_raw[5:21].hex():
        raise ReleaseRefused("wrong_request", "the manifest names another signer key id")
    audience = body.get("audience", {})
    if "device" in audience and audience["device"] != manifest.device_id:
        raise ReleaseRefused("wrong_device", "the manifest comes from a device the request was not addressed to")


def check_clips(manifest: Manifest, clips: dict[str, tuple[str, int]]) -> None:
    listed = {c.id for c in manifest.clips}
    if set(clips) != listed:
        missing, extra = sorted(listed - set(clips)), sorted(set(clips) - listed)
        raise ReleaseRefused("clip_set_mismatch", f"missing {missing}, not in the manifest {extra}")
    for clip in manifest.clips:
        clip_member_name(clip.id)
        sha, size = clips[clip.id]
        if size != clip.plaintext_size or sha != clip.plaintext_sha256:
            raise ReleaseRefused("clip_hash_mismatch", f"clip {clip.id} does not match its manifest entry")


def build_report(manifest: Manifest, header: ReleaseHeader | None, record: RequestRecord | None) -> dict[str, Any]:
    checks = [
        "manifest signature verifies with the device key",
        "device id is derived from the device key",
        "manifest names our request (id, digest, signer key id) and our recipient key",
        "every clip matches its SHA-256 and size in the manifest",
    ]
    if header is not None:
        checks[0:0] = [
            "release header signature verifies with the device key",
            "every chunk matched its SHA-256; the reassembled bundle matched the header's SHA-256 and size",
            "the bundle decrypted and authenticated with our age identity",
        ]
    return {
        "ok": True,
        "verified_at": now_iso(),
        "request_id": manifest.request.id,
        "request_digest": manifest.request.digest,
        "case": manifest.request.case,
        "device_id": manifest.device_id,
        "device_key": manifest.device_key,
        "device_fingerprint": fingerprint(decode_public(manifest.device_key)),
        "camera": manifest.camera,
        "approved_at": manifest.approved_at,
        "manifest_created": manifest.created,
        "clock_synced": manifest.clock_synced,
        "bundle_sha256": header.bundle_sha256 if header else None,
        "bundle_size": header.bundle_size if header else None,
        "clips": [
            {"id": c.id, "file": c.file, "start": c.start, "end": c.end, "clock_synced": c.clock_synced,
             "plaintext_sha256": c.plaintext_sha256, "plaintext_size": c.plaintext_size,
             "vault_digest": c.vault_digest}
            for c in manifest.clips
        ],
        "checks": checks,
    }


def report_text(report: dict[str, Any]) -> str:
    lines = [
        "consentcam release verification: OK",
        f"request    {report['request_id']}  (case {report['case']})",
        f"digest     {report['request_digest']}",
        f"device     {report['device_id']}  key fingerprint {report['device_fingerprint']}",
        f"camera     {report['camera']}   approved {report['approved_at']}   clock synced: {report['clock_synced']}",
        f"verified   {report['verified_at']}",
        "clips:",
    ]
    for c in report["clips"]:
        lines.append(f"  {c['file']}  {c['start']} .. {c['end']}  {c['plaintext_size']} bytes  sha256 "
                     f"{c['plaintext_sha256']}")
    lines.append("checks passed:")
    lines.extend(f"  - {c}" for c in report["checks"])
    return "\n".join(lines) + "\n"


def _decline_report(decline: Decline) -> dict[str, Any]:
    return {"declined": True, "verified": True, **decline.to_dict()}
