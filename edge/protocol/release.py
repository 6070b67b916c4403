"""Building an approved release into the outbox, and publishing it.

``build_release`` streams the bundle: a POSIX tar of ``clips/<id>.ts`` (each clip's plaintext,
straight from ``vault.iter_plaintext``), then ``manifest.json`` and ``manifest.sig``, produced on
the fly by a readable file object that ``pyrage.encrypt_io`` pulls from. The plaintext exists only
in small in-memory pieces on its way into the age encryptor: nothing but ciphertext is written to
disk, and memory stays bounded by one vault segment whatever the release size. The plaintext
SHA-256 of each clip is computed on the same pass, so the manifest (the last tar member) can name
it without a second decryption.

``publish_release`` sends the signed header, then the chunks, QoS 1, with a bounded number of
unacknowledged messages in flight, and marks the item sent only when the broker acknowledged all.
"""

from __future__ import annotations

import collections
import hashlib
import io
import logging
import os
import shutil
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import clock
from edge.audit import AuditLog
from edge.errors import ConsentcamError, IntegrityError
from edge.keys import device_id_for, load_device_key
from edge.protocol import outbox
from edge.protocol.chunks import (
    CHUNK_OVERHEAD,
    Decline,
    ReleaseHeader,
    encode_chunk,
    encode_decline,
    encode_header,
)
from edge.protocol.manifest import Manifest, ManifestClip, ManifestRequest, clip_member_name, sign_manifest
from edge.protocol.outbox import OutboxItem, ReleaseSendError
from edge.signing import encode_public, public_raw
from edge.state import StateDir, fsync_dir, write_private

log = logging.getLogger(__name__)

BLOCK = 512
RECORD = 20 * BLOCK  # tar's traditional record size; readers are happy either way, GNU tar expects it
MAX_CHUNK_SIZE = 16 * 1024 * 1024
DEFAULT_WINDOW = 16


class ReleaseError(ConsentcamError):
    """The release could not be built (bad clip selection, bad request, vault problem)."""

    exit_code = 9


# ---------------------------------------------------------------------------------------------
# The tar stream


class StreamReader(io.RawIOBase):
    """A read-only file object over an iterator of byte pieces (what pyrage.encrypt_io reads)."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        super().__init__()
        self._pieces = iter(pieces)
        self._current = memoryview(b"")
        self.error: BaseException | None = None
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.error is not None:
            raise self.error
        target = memoryview(buffer).cast("B")
        filled = 0
        try:
            while filled < len(target):
                if not self._current:
                    piece = next(self._pieces, None)
                    if piece is None:
                        break
                    self._current = memoryview(piece).cast("B")
                    continue
                n = min(len(target) - filled, len(self._current))
                target[filled : filled + n] = self._current[:n]
                self._current = self._current[n:]
                filled += n
        except BaseException as exc:
            # Remember it: pyrage may wrap or swallow errors raised inside read().
            self.error = exc
            raise
        self.total += filled
        return filled


class _HashingWriter(io.RawIOBase):
    """Writes through to a file while hashing and counting what goes by."""

    def __init__(self, sink: BinaryIO) -> None:
        super().__init__()
        self._sink = sink
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha256.update(view)
        self._sink.write(view)
        self.size += len(view)
        return len(view)


def _member(name: str, size: int, mtime: float) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = max(0, int(mtime))
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict")


def _pad(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


@dataclass
class _ClipResult:
    record: Any
    sha256: str
    size: int


def tar_pieces(
    clips: list[tuple[Any, Callable[[], Iterable[bytes]]]],
    finish: Callable[[list[_ClipResult]], tuple[bytes, bytes]],
    mtime: float | None = None,
) -> Iterator[bytes]:
    """The bundle's tar stream: each clip (record, plaintext source), then manifest.json and .sig.

    ``finish(results) -> (manifest_json, manifest_sig)`` runs once the clips have streamed by and
    their plaintext digests are known. ``mtime`` stamps the manifest members (default: now).
    """
    results: list[_ClipResult] = []
    written = 0
    for rec, source in clips:
        expected = int(rec.plaintext_size)
        header = _member(clip_member_name(rec.id), expected, rec.start)
        yield header
        digest = hashlib.sha256()
        size = 0
        for piece in source():
            size += len(piece)
            if size > expected:
                raise IntegrityError(f"clip {rec.id}: more plaintext than its recorded size {expected}")
            digest.update(piece)
            yield piece
        if size != expected:
            raise IntegrityError(f"clip {rec.id}: {size} bytes of plaintext, its record says {expected}")
        yield _pad(size)
        written += len(header) + size + len(_pad(size))
        results.append(_ClipResult(rec, digest.hexdigest(), size))
    manifest_json, manifest_sig = finish(results)
    stamp = time.time() if mtime is None else mtime
    for name, data in (("manifest.json", manifest_json), ("manifest.sig", manifest_sig)):
        piece = _member(name, len(data), stamp) + data + _pad(len(data))
        written += len(piece)
        yield piece
    end = 2 * BLOCK + (-(written + 2 * BLOCK) % RECORD)
    yield b"\0" * end


def make_manifest(
    device_key: Ed25519PrivateKey, req: dict[str, Any], results: list[_ClipResult], approved: float,
    created: float | None = None,
) -> Manifest:
    """The manifest for streamed clips; ``req`` as returned by :func:`request_fields`."""
    return Manifest(
        device_id=device_id_for(public_raw(device_key)),
        device_key=encode_public(device_key),
        camera=",".join(sorted({str(r.record.camera) for r in results})),
        request=ManifestRequest(
            id=req["id"], digest=req["digest"], case=req["case"], signer_key_id=req["signer_key_id"],
            recipient=req["recipient"],
        ),
        approved_at=clock.iso(approved),
        clock_synced=all(bool(r.record.clock_synced) for r in results),
        clips=tuple(
            ManifestClip(
                id=r.record.id, file=clip_member_name(r.record.id), start=clock.iso(r.record.start),
                end=clock.iso(r.record.end), clock_synced=bool(r.record.clock_synced),
                plaintext_sha256=r.sha256, plaintext_size=r.size, vault_digest=str(r.record.digest),
            )
            for r in results
        ),
        created=clock.iso(clock.now() if created is None else created),
    )


# ---------------------------------------------------------------------------------------------
# Building


def request_fields(verified_request: Any) -> dict[str, Any]:
    """What the release needs from the device side's VerifiedRequest, taken from the signed bytes."""
    raw = bytes(verified_request.raw)
    body = verified_request.body
    digest = hashlib.sha256(raw).hexdigest()
    claimed = verified_request.digest
    claimed_hex = claimed.hex() if isinstance(claimed, bytes | bytearray) else str(claimed)
    if claimed_hex != digest:
        raise ReleaseError(f"request {body.id}: digest does not match its bytes")
    return {
        "id": body.id,
        "digest": digest,
        "case": body.case,
        "signer_key_id": raw[5:21].hex(),  # "CCRQ" | version | key id (16)
        "recipient": body.recipient,
        "inbox": body.inbox,
    }


def build_release(
    state: StateDir,
    vault: Any,
    identity: Any,
    verified_request: Any,
    clip_ids: list[str],
    device_key: Ed25519PrivateKey,
    chunk_size: int,
    *,
    approved_at: float | None = None,
    audit: AuditLog | None = None,
) -> OutboxItem:
    """Encrypt the chosen clips with their signed manifest to the request's recipient, into the outbox."""
    if not clip_ids:
        raise ReleaseError("no clips chosen: nothing to release")
    if len(set(clip_ids)) != len(clip_ids):
        raise ReleaseError("the same clip was chosen twice")
    if not (1 <= chunk_size <= MAX_CHUNK_SIZE):
        raise ReleaseError(f"chunk size {chunk_size} out of range (1..{MAX_CHUNK_SIZE})")
    req = request_fields(verified_request)
    try:
        recipient = pyrage.x25519.Recipient.from_str(req["recipient"])
    except pyrage.RecipientError as exc:
        raise ReleaseError(f"request {req['id']}: recipient is not an age X25519 key") from exc
    records = [vault.get(cid) for cid in clip_ids]  # NotFoundError names a missing clip
    for rec in records:
        try:
            clip_member_name(rec.id)
        except ValueError as exc:
            raise ReleaseError(str(exc)) from exc
    approved = clock.now() if approved_at is None else approved_at
    device_id = device_id_for(public_raw(device_key))
    device_pub = encode_public(device_key)

    def finish(results: list[_ClipResult]) -> tuple[bytes, bytes]:
        return sign_manifest(make_manifest(device_key, req, results, approved), device_key)

    def source(clip_id: str) -> Callable[[], Iterable[bytes]]:
        return lambda: vault.iter_plaintext(clip_id, identity)

    build = outbox.new_build_dir(state, req["id"])
    try:
        with outbox.hold_build_lock(build):
            bundle = build / outbox.BUNDLE_NAME
            reader = StreamReader(tar_pieces([(rec, source(rec.id)) for rec in records], finish))
            fd = os.open(bundle, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as sink:
                writer = _HashingWriter(sink)
                try:
                    pyrage.encrypt_io(reader, writer, [recipient])
                except Exception as exc:
                    if reader.error is not None:
                        raise reader.error from None
                    raise ReleaseError(f"encrypting the release failed: {exc}") from exc
                if reader.error is not None:
                    raise reader.error
                sink.flush()
                os.fsync(sink.fileno())
            header = ReleaseHeader(
                request_id=req["id"], request_digest=req["digest"], device_id=device_id, device_key=device_pub,
                bundle_sha256=writer.sha256.hexdigest(), bundle_size=writer.size, chunk_size=chunk_size,
                chunks=-(-writer.size // chunk_size), created=clock.iso(clock.now()),
            )
            header_bytes = encode_header(header, device_key)
            write_private(build / outbox.HEADER_NAME, header_bytes)
            item = OutboxItem(
                request_id=req["id"], request_digest=req["digest"], inbox=req["inbox"], device_id=device_id,
                bundle_sha256=header.bundle_sha256, bundle_size=header.bundle_size, chunk_size=chunk_size,
                chunks=header.chunks, clips=tuple(clip_ids), created=header.created, directory=build,
            )
            outbox.write_meta(item, build)
            fsync_dir(build)
        final = outbox.commit_build(build, req["id"])
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    fsync_dir(final.parent)
    audit = audit or AuditLog(state.audit, device_key)
    audit.append(
        "release.queued", request_id=req["id"], request_digest=req["digest"], clips=list(clip_ids),
        bundle_size=header.bundle_size, bundle_sha256=header.bundle_sha256, chunks=header.chunks,
        plaintext_bytes=reader.total,
    )
    log.info("release queued", extra={"request_id": req["id"], "clips": len(clip_ids), "bytes": header.bundle_size})
    return outbox.load_item(final)


# ---------------------------------------------------------------------------------------------
# Publishing


def _paho_client(client_or_link: Any) -> Any:
    import paho.mqtt.client as mqtt

    if isinstance(client_or_link, mqtt.Client):
        return client_or_link
    for name in ("client", "_client", "mqtt"):
        inner = getattr(client_or_link, name, None)
        if isinstance(inner, mqtt.Client):
            return inner
    raise TypeError("publish_release needs a paho Client or a link object exposing one as .client")


def _single_writer(client: Any) -> None:
    """Make sure only the client's network loop writes to its socket.

    paho writes to the socket from the *calling* thread when no ``loop_start()`` thread exists. A
    link that runs ``loop()`` on its own thread (edge.mqtt_link) then has two threads writing the
    same socket, and with large release chunks their partial writes interleave: the broker sees a
    corrupt stream and drops the connection (reproduced: 3-18 disconnects per 400 x 1 MB). With a
    write hook registered, ``publish()`` only queues the packet and wakes the loop thread.
    """
    if getattr(client, "_thread", None) is None and client.on_socket_register_write is None:
        client.on_socket_register_write = _ignore_socket


def _ignore_socket(client: Any, userdata: Any, sock: Any) -> None:
    return None


def chunk_messages(item: OutboxItem) -> Iterator[bytes]:
    """The chunk messages of an item, read from bundle.age one chunk at a time."""
    digest = bytes.fromhex(item.request_digest)
    bundle_sha = bytes.fromhex(item.bundle_sha256)
    with open(item.bundle_path, "rb") as fh:
        for index in range(item.chunks):
            payload = fh.read(item.chunk_size)
            if not payload:
                raise IntegrityError(f"{item.bundle_path}: shorter than its header says")
            yield encode_chunk(digest, bundle_sha, index, item.chunks, payload)


def max_chunk_payload(chunk_bytes: int, max_message_bytes: int) -> int:
    """The contract's bound: payload <= min(release.chunk_bytes, mqtt.max_message_bytes - 128)."""
    limit = min(chunk_bytes, max_message_bytes - 128)
    if limit < 1:
        raise ReleaseError("mqtt.max_message_bytes is too small to carry release chunks")
    assert CHUNK_OVERHEAD <= 128
    return limit


def publish_release(
    client_or_link: Any,
    item: OutboxItem,
    topic_root: str,
    timeout: float = 30.0,
    *,
    window: int = DEFAULT_WINDOW,
    audit: AuditLog | None = None,
    progress: Any = None,
) -> OutboxItem:
    """Publish header then chunks (QoS 1, never retained) and mark the item sent.

    At most ``window`` messages wait for their PUBACK at once; each wait is bounded by ``timeout``
    seconds. Returns the updated item; an item already sent is returned untouched (never twice).
    Raises OutboxBusyError if another process is publishing it, ReleaseSendError on timeout or a
    lost connection (the item stays queued; the receiver de-duplicates chunks, so a retry is safe).
    """
    client = _paho_client(client_or_link)
    _single_writer(client)
    topic = reply_topic(topic_root, item.inbox, item.request_id)
    with outbox.claim(item) as current:
        if current.status == "sent":
            return current
        started = time.monotonic()
        pending: collections.deque[Any] = collections.deque()
        sent_bytes = 0
        try:
            header = current.header_path.read_bytes()
            _wait(client.publish(topic, header, qos=1, retain=False), timeout, "header")
            for index, message in enumerate(chunk_messages(current)):
                while len(pending) >= max(1, window):
                    _wait(pending.popleft(), timeout, f"chunk {index - len(pending) - 1}")
                pending.append(client.publish(topic, message, qos=1, retain=False))
                sent_bytes += len(message)
                if progress is not None:
                    progress(len(message) - CHUNK_OVERHEAD)
            while pending:
                _wait(pending.popleft(), timeout, "final chunks")
        except ReleaseSendError:
            outbox.note_attempt(current)
            raise
        done = outbox.mark_sent(current)
    elapsed = time.monotonic() - started
    if audit is None:
        state = StateDir(item.directory.parent.parent)
        audit = AuditLog(state.audit, load_device_key(state))
    audit.append(
        "release.sent", request_id=done.request_id, request_digest=done.request_digest, chunks=done.chunks,
        bundle_size=done.bundle_size, seconds=round(elapsed, 3),
    )
    log.info("release sent", extra={"request_id": done.request_id, "chunks": done.chunks, "seconds": elapsed})
    return done


def _wait(info: Any, timeout: float, what: str) -> None:
    try:
        info.wait_for_publish(timeout)
    except (RuntimeError, ValueError) as exc:
        raise ReleaseSendError(f"publishing the release failed at the {what}: {exc}") from exc
    if not info.is_published():
        raise ReleaseSendError(f"publishing the release timed out at the {what} after {timeout:g}s")


def reply_topic(topic_root: str, inbox: str, request_id: str) -> str:
    """``R/inbox/<inbox>/<request_id>``: both parts come from the signed request body."""
    return f"{topic_root.rstrip('/')}/inbox/{inbox}/{request_id}"


def decline_message(verified_request: Any, device_key: Ed25519PrivateKey, decided_at: float | None = None) -> bytes:
    """The signed opt-in decline for ``requests deny --notify`` (publish it QoS 1 on reply_topic)."""
    req = request_fields(verified_request)
    decline = Decline(
        request_id=req["id"], request_digest=req["digest"], device_id=device_id_for(public_raw(device_key)),
        device_key=encode_public(device_key), decided_at=clock.iso(clock.now() if decided_at is None else decided_at),
    )
    return encode_decline(decline, device_key)


def publish_decline(
    client_or_link: Any, verified_request: Any, device_key: Ed25519PrivateKey, topic_root: str, timeout: float = 30.0
) -> None:
    """Publish exactly one signed decline, QoS 1, not retained; ReleaseSendError if not acknowledged."""
    client = _paho_client(client_or_link)
    topic = reply_topic(topic_root, verified_request.body.inbox, verified_request.body.id)
    _wait(client.publish(topic, decline_message(verified_request, device_key), qos=1, retain=False), timeout,
          "decline")
