"""The encrypted clip vault: writing, recovery, reading, integrity checks, holds and retention.

Layout under the state directory (see docs/VAULT.md for the full specification)::

    vault/index.sqlite              SQLite (WAL) cache of every clip's metadata
    vault/clips/<clip_id>/seg-NNNNNN.age   standard age files (owner's X25519 recipient)
    vault/clips/<clip_id>/seal.json  device-signed list of segments (written at close)
    vault/clips/<clip_id>/recording.json   marker: clip in progress (removed at close)
    vault/clips/<clip_id>/.lock     flock held by the writing process
    vault/clips/<clip_id>/hold.json  present while the owner holds the clip
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import clock
from edge.audit import AuditLog
from edge.config import StorageConfig
from edge.encoding import canonical_json
from edge.errors import ConsentcamError, IntegrityError, NotFoundError, StorageFullError
from edge.keys import device_id_for
from edge.signing import public_raw
from edge.state import DIR_MODE, DISK_FULL, FILE_MODE, StateDir, fsync_dir, write_private, write_synced
from edge.vault.index import ClipIndex
from edge.vault.records import (
    FINISHED,
    STATUS_COMPLETE,
    STATUS_RECORDING,
    STATUS_RECOVERED,
    ClipCheck,
    ClipRecord,
)
from edge.vault.seal import (
    HOLD_NAME,
    LOCK_NAME,
    MARKER_NAME,
    SEAL_NAME,
    SealError,
    SegmentInfo,
    age_plaintext_size,
    new_clip_id,
    read_seal,
    seal_body,
    seal_file_bytes,
    seal_segments,
    segment_index,
    segment_name,
    valid_clip_id,
)
from edge.vault.writer import ClipWriter

log = logging.getLogger("consentcam.vault")

INDEX_NAME = "index.sqlite"
CLIPS_DIR = "clips"
TRASH_PREFIX = ".trash-"
NEW_PREFIX = ".new-"
NEW_GRACE = 60.0  # seconds: a younger unlocked .new- directory may be one being created right now
MAX_EVICTIONS_PER_WRITE = 10_000  # bounds the evict-and-retry loop
RESERVE_NAME = ".reserve"
RESERVE_BYTES = 256 * 1024  # room for seals and markers when the disk is full and nothing can go


class ClipBusyError(ConsentcamError):
    """The clip is still being recorded: it has no seal yet and cannot be read."""


class Vault:
    def __init__(self, state: StateDir, storage: StorageConfig, recipient: pyrage.x25519.Recipient | None,
                 device_key: Ed25519PrivateKey, audit: AuditLog | None, index: ClipIndex) -> None:
        self.state = state
        self.storage = storage
        self.recipient = recipient
        self._device_key = device_key
        self.public_key = device_key.public_key()
        self.device_id = device_id_for(public_raw(device_key))
        self.audit = audit
        self.index = index
        self.root = state.vault
        self.clips_dir = state.vault / CLIPS_DIR

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, state: StateDir, storage: StorageConfig, recipient: pyrage.x25519.Recipient | None,
             device_key: Ed25519PrivateKey, audit: AuditLog | None = None, *, recover: bool = True) -> Vault:
        """Open (creating if needed) the vault. Recovers clips left in progress by a crash."""
        state.ensure_dir(state.vault)
        state.ensure_dir(state.vault / CLIPS_DIR)
        index = ClipIndex(state.vault / INDEX_NAME)
        vault = cls(state, storage, recipient, device_key, audit, index)
        if recover:
            vault.recover()
        vault._ensure_reserve()
        return vault

    @classmethod
    def reindex(cls, state: StateDir, storage: StorageConfig, recipient: pyrage.x25519.Recipient | None,
                device_key: Ed25519PrivateKey, audit: AuditLog | None = None) -> tuple[Vault, list[str]]:
        """Rebuild the index from the seals on disk; a damaged index file is moved aside first.

        Returns the vault and one line per clip directory that could not be indexed.
        """
        state.ensure_dir(state.vault)
        state.ensure_dir(state.vault / CLIPS_DIR)
        path = state.vault / INDEX_NAME
        if path.exists():
            aside = path.with_name(f"{INDEX_NAME}.damaged-{int(clock.now())}")
            for suffix in ("", "-wal", "-shm"):
                src = Path(str(path) + suffix)
                if src.exists():
                    os.replace(src, Path(str(aside) + suffix))
        vault = cls(state, storage, recipient, device_key, audit, ClipIndex(path))
        vault.recover()
        problems: list[str] = []
        records: list[ClipRecord] = []
        for clip_dir in vault._clip_dirs():
            try:
                body = read_seal(clip_dir, vault.public_key)
            except SealError as exc:
                if vault._is_locked(clip_dir):
                    continue  # being recorded by another process
                problems.append(f"{clip_dir.name}: not indexed: {exc}")
                continue
            if body.get("clip_id") != clip_dir.name:
                problems.append(f"{clip_dir.name}: not indexed: seal belongs to clip {body.get('clip_id')}")
                continue
            held, reason = vault._read_hold(clip_dir)
            records.append(_record_from_seal(body, held, reason))
        vault.index.replace_all(records)
        log.info("index rebuilt from %d seals (%d directories skipped)", len(records), len(problems))
        return vault, problems

    def close(self) -> None:
        self.index.close()

    # -- writing ------------------------------------------------------------------------------

    def begin_clip(self, camera: str, start: float, *, container: str = "mpegts", codec: str = "h264",
                   clock_synced: bool = True) -> ClipWriter:
        """Start a clip. The directory appears under its final name already locked and marked."""
        if not isinstance(camera, str) or not camera.strip():
            raise ValueError("camera name must be non-empty text")
        if self.recipient is None:
            raise ConsentcamError("this vault was opened without the owner's public key; it cannot record")
        for _ in range(100):
            clip_id = new_clip_id(start)
            final = self.clips_dir / clip_id
            if final.exists():
                continue
            tmp = self.clips_dir / (NEW_PREFIX + clip_id)
            self._retry_on_full(lambda t=tmp: t.mkdir(mode=DIR_MODE), f"new clip for {camera}", exclude=None,
                                metadata=True)
            lock_fd = os.open(tmp / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                marker = {
                    "clip_id": clip_id, "camera": camera, "start": start, "container": container,
                    "codec": codec, "clock_synced": bool(clock_synced), "device_id": self.device_id,
                }
                self._retry_on_full(lambda t=tmp, m=marker: write_private(t / MARKER_NAME, canonical_json(m)),
                                    f"marker of clip {clip_id}", exclude=None, metadata=True)
                os.rename(tmp, final)
                fsync_dir(self.clips_dir)
            except BaseException:
                os.close(lock_fd)
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self._index_quietly(ClipRecord(
                id=clip_id, camera=camera, start=start, end=start, duration=0.0, size=0, plaintext_size=0,
                segments=0, codec=codec, container=container, digest="", motion_score=0.0, held=False,
                clock_synced=bool(clock_synced), status=STATUS_RECORDING,
            ))
            log.info("clip %s started (camera %s)", clip_id, camera)
            return ClipWriter(self, clip_id, final, lock_fd, camera=camera, start=start, container=container,
                              codec=codec, clock_synced=bool(clock_synced))
        raise ConsentcamError("could not allocate a unique clip id")  # pragma: no cover - 2^24 collisions

    def _store_segment(self, directory: Path, name: str, ciphertext: bytes | bytearray | memoryview, *,
                       exclude: str | None, sync_directory: bool = True) -> str | None:
        """Durably write one encrypted segment. On a full disk evict old clips and retry; if
        nothing can be evicted the segment is dropped: returns why (the writer logs it), else None."""
        self._keep_min_free(len(ciphertext), exclude)
        try:
            self._retry_on_full(lambda: _write_file(directory / name, ciphertext, sync_directory=sync_directory),
                                f"segment {name} of clip {directory.name}", exclude=exclude)
        except StorageFullError as exc:
            return str(exc)
        return None

    def _place_segment(self, directory: Path, staged: Path, name: str, *, exclude: str | None) -> None:
        """Give a staged segment (written and fdatasynced by ``write_synced``) its name. Keeps
        min_free as ``_store_segment`` does; the staged bytes are already counted as used."""
        self._keep_min_free(0, exclude)
        os.rename(staged, directory / name)

    def _retry_on_full(self, action: Any, what: str, *, exclude: str | None, metadata: bool = False) -> None:
        """Run a write; on ENOSPC/EDQUOT evict the oldest unheld finished clip and retry. Metadata
        (markers, seals) may finally use the space reserve; footage segments may not."""
        for _ in range(MAX_EVICTIONS_PER_WRITE):
            try:
                action()
                return
            except OSError as exc:
                if exc.errno not in DISK_FULL:
                    raise
            if self._evict_one("disk_full", exclude):
                continue
            if not (metadata and self._release_reserve()):
                raise StorageFullError(
                    f"storage full: could not write {what} and no unheld finished clip is left to delete; "
                    "this footage is lost, recording continues"
                )
        raise StorageFullError(f"storage full: gave up writing {what}")

    def _keep_min_free(self, need: int, exclude: str | None) -> None:
        """Retention's min_free, applied while recording: newest footage wins over the oldest."""
        floor = self.storage.retention.min_free
        if floor <= 0:
            return
        for _ in range(MAX_EVICTIONS_PER_WRITE):
            if self.free_bytes() - need >= floor:
                return
            if not self._evict_one("min_free", exclude):
                return

    def _evict_one(self, reason: str, exclude: str | None) -> bool:
        try:
            finished = self.index.list(include_recording=False)
        except Exception as exc:  # a damaged index: nothing to evict, but the segment is still written
            log.error("cannot choose a clip to evict: %s", exc)
            return False
        for rec in finished:
            if rec.held or rec.id == exclude or self._held_on_disk(rec.id):
                continue
            if self.delete(rec.id, reason):
                return True
        return False

    def _finish_clip(self, writer: ClipWriter, status: str, end: float, extra: dict[str, Any]) -> ClipRecord:
        extra = _sealable(extra, writer.clip_id)
        if end < writer.start:
            log.warning("clip %s: end time before start (clock stepped back?); using start", writer.clip_id)
            end = writer.start
        body = seal_body(
            clip_id=writer.clip_id, device_id=self.device_id, camera=writer.camera, start=clock.iso(writer.start),
            end=clock.iso(end), clock_synced=writer.clock_synced, container=writer.container, codec=writer.codec,
            motion_score=writer.motion_score, status=status, segments=writer.segments,
            dropped_segments=writer.dropped_segments, extra=extra,
        )
        return self._write_seal(writer.directory, body)

    def _write_seal(self, clip_dir: Path, body: dict[str, Any]) -> ClipRecord:
        data = seal_file_bytes(body, self._device_key)
        self._retry_on_full(lambda: write_private(clip_dir / SEAL_NAME, data), f"seal of clip {clip_dir.name}",
                            exclude=clip_dir.name, metadata=True)
        # The seal is now the truth; the marker only said "in progress".
        with contextlib.suppress(FileNotFoundError):
            os.unlink(clip_dir / MARKER_NAME)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(clip_dir / LOCK_NAME)
        fsync_dir(clip_dir)
        held, reason = self._read_hold(clip_dir)
        record = _record_from_seal(body, held, reason)
        self._index_quietly(record)
        log.info("clip %s sealed: %s, %d segments, %d bytes", record.id, record.status, record.segments, record.size)
        return record

    def _discard_clip(self, clip_id: str, clip_dir: Path) -> None:
        shutil.rmtree(clip_dir, ignore_errors=True)
        with contextlib.suppress(Exception):
            self.index.delete(clip_id)
        log.info("clip %s discarded: no complete segment", clip_id)

    def _index_quietly(self, record: ClipRecord) -> None:
        """Index updates on the recording path never stop recording: the seal is the truth and
        the next Vault.open (or `clips reindex`) reconciles a missed row."""
        try:
            self.index.upsert(record)
        except Exception as exc:  # sqlite full/locked: logged, reconciled later
            log.error("clip %s: index update failed (%s); it will be re-read from its seal", record.id, exc)

    # -- recovery -----------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Close out clips left in progress by a crash; sweep half-deleted clips. Returns the
        ids of recovered clips. Clips locked by a live writer are left alone."""
        recovered: list[str] = []
        for entry in sorted(self.clips_dir.iterdir()):
            name = entry.name
            if name.startswith(TRASH_PREFIX):
                clip_id = name[len(TRASH_PREFIX):]
                self._finish_delete(clip_id, "deletion completed after an interruption", self.index.get(clip_id))
            elif name.startswith(NEW_PREFIX) and entry.is_dir() and not self._is_locked(entry) \
                    and self._abandoned(entry):
                shutil.rmtree(entry, ignore_errors=True)
        known = self.index.statuses()
        present = {d.name for d in self._clip_dirs()}
        for clip_id, status in known.items():
            # A "recording" row is written only after its directory got its final name, so one
            # without a directory is a clip whose discard was cut short by a crash: drop the row.
            if status == STATUS_RECORDING and clip_id not in present:
                with contextlib.suppress(Exception):
                    self.index.delete(clip_id)
        for clip_dir in self._clip_dirs():
            if (clip_dir / SEAL_NAME).exists():
                leftover = (clip_dir / MARKER_NAME).exists() or (clip_dir / LOCK_NAME).exists()
                if leftover and not self._is_locked(clip_dir):
                    self._cleanup_sealed(clip_dir)
                if known.get(clip_dir.name, STATUS_RECORDING) == STATUS_RECORDING:
                    self._reindex_one(clip_dir)  # sealed, but the index missed it (crash in between)
                continue
            if self._is_locked(clip_dir):
                continue
            if self._recover_clip(clip_dir):
                recovered.append(clip_dir.name)
        return recovered

    @staticmethod
    def _abandoned(new_dir: Path) -> bool:
        """A .new- directory is unlocked for a moment while begin_clip creates its lock: only one
        older than NEW_GRACE seconds was left by a crash."""
        try:
            return abs(clock.now() - new_dir.stat().st_mtime) > NEW_GRACE  # abs: the clock may have stepped
        except FileNotFoundError:
            return False

    def _cleanup_sealed(self, clip_dir: Path) -> None:
        for leftover in (MARKER_NAME, LOCK_NAME):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(clip_dir / leftover)
        for tmp in clip_dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    def _reindex_one(self, clip_dir: Path) -> None:
        try:
            body = read_seal(clip_dir, self.public_key)
        except SealError as exc:
            log.error("clip %s: cannot index: %s (see 'consentcam clips verify')", clip_dir.name, exc)
            return
        held, reason = self._read_hold(clip_dir)
        self._index_quietly(_record_from_seal(body, held, reason))

    def _recover_clip(self, clip_dir: Path) -> bool:
        """Seal the complete segments of an interrupted clip as "recovered", or remove it."""
        clip_id = clip_dir.name
        fd = os.open(clip_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a writer took it meanwhile
            if (clip_dir / SEAL_NAME).exists():
                # Its writer sealed it (and dropped the lock) since recover() looked: not ours to
                # touch. The lock file we may have re-created goes on the next open.
                return False
            try:
                marker = json.loads((clip_dir / MARKER_NAME).read_bytes())
                start = float(marker["start"])
                camera = str(marker["camera"])
            except (OSError, ValueError, KeyError, TypeError):
                log.error("clip %s: no seal and no readable recording marker; left for inspection", clip_id)
                return False
            for tmp in clip_dir.glob(".*"):
                if tmp.name != LOCK_NAME:
                    tmp.unlink(missing_ok=True)  # a segment that was being written: never completed
            segments = self._complete_prefix(clip_dir)
            if not segments:
                self._discard_clip(clip_id, clip_dir)
                log.warning("clip %s: interrupted before its first segment was complete; removed", clip_id)
                return False
            last_mtime = (clip_dir / segments[-1].name).stat().st_mtime
            body = seal_body(
                clip_id=clip_id, device_id=self.device_id, camera=camera, start=clock.iso(start),
                end=clock.iso(max(start, last_mtime)), clock_synced=bool(marker.get("clock_synced", False)),
                container=str(marker.get("container", "mpegts")), codec=str(marker.get("codec", "h264")),
                motion_score=0.0, status=STATUS_RECOVERED, segments=segments, dropped_segments=0, extra={},
            )
            self._write_seal(clip_dir, body)
            log.warning("clip %s: recovered after an interruption (%d complete segments kept)", clip_id,
                        len(segments))
            return True
        finally:
            os.close(fd)

    def _complete_prefix(self, clip_dir: Path) -> list[SegmentInfo]:
        """Segments 0..n-1 that are well-formed age files; anything after a gap is removed."""
        found = {segment_index(p.name): p for p in clip_dir.iterdir() if segment_index(p.name) is not None}
        segments: list[SegmentInfo] = []
        i = 0
        while i in found:
            data = found[i].read_bytes()
            plain = age_plaintext_size(data)
            if plain is None:
                break
            segments.append(SegmentInfo(segment_name(i), len(data), hashlib.sha256(data).hexdigest(), plain))
            i += 1
        for idx, path in found.items():
            if idx is not None and idx >= len(segments):
                log.warning("clip %s: removing incomplete or out-of-sequence %s", clip_dir.name, path.name)
                path.unlink(missing_ok=True)
        return segments

    # -- reading ------------------------------------------------------------------------------

    def list_clips(self, start: float | None = None, end: float | None = None, *,
                   include_recording: bool = False) -> list[ClipRecord]:
        """Finished clips overlapping [start, end], oldest first (in-progress ones only on request)."""
        return self.index.list(start, end, include_recording=include_recording)

    def get(self, clip_id: str) -> ClipRecord:
        rec = self.index.get(clip_id) if isinstance(clip_id, str) else None
        if rec is None:
            raise NotFoundError(f"no clip with id {clip_id!r} (see 'consentcam clips list')")
        return rec

    def iter_plaintext(self, clip_id: str, identity: pyrage.x25519.Identity) -> Iterator[bytes]:
        """Authenticate the whole clip against its seal, then decrypt it segment by segment."""
        rec = self.get(clip_id)
        if rec.status == STATUS_RECORDING and self._is_locked(self.clips_dir / clip_id):
            raise ClipBusyError(f"clip {clip_id} is still being recorded; try again when it is finished")
        check, body = self._check(clip_id)
        if not check.ok or body is None:
            raise IntegrityError(f"clip {clip_id} failed its integrity check: {'; '.join(check.problems)}")
        return self._decrypt_segments(clip_id, seal_segments(body), identity)

    def _decrypt_segments(self, clip_id: str, segments: list[SegmentInfo],
                          identity: pyrage.x25519.Identity) -> Iterator[bytes]:
        clip_dir = self.clips_dir / clip_id
        for seg in segments:
            try:
                data = (clip_dir / seg.name).read_bytes()
            except OSError as exc:
                raise IntegrityError(f"clip {clip_id}: {seg.name} cannot be read: {exc.strerror}") from exc
            # Re-check the bytes actually decrypted: the file may have changed since the check.
            if hashlib.sha256(data).hexdigest() != seg.sha256:
                raise IntegrityError(f"clip {clip_id}: {seg.name} changed while reading")
            try:
                plain = pyrage.decrypt(data, [identity])
            except pyrage.DecryptError as exc:
                raise IntegrityError(f"clip {clip_id}: {seg.name} does not decrypt with the owner's key") from exc
            if len(plain) != seg.plaintext_size:
                raise IntegrityError(f"clip {clip_id}: {seg.name} decrypted to an unexpected length")
            yield plain

    def export(self, clip_id: str, identity: pyrage.x25519.Identity, out: Path) -> ClipRecord:
        """Decrypt to a 0600 temp file next to ``out``; rename only after every segment authenticated."""
        out = Path(out)
        rec = self.get(clip_id)
        chunks = self.iter_plaintext(clip_id, identity)  # integrity checked before any byte is written
        if not out.parent.is_dir():
            raise NotFoundError(f"{out.parent}: output directory does not exist")
        write_private(out, chunks)  # temp file + rename: a failed check leaves ``out`` untouched
        return rec

    # -- integrity ----------------------------------------------------------------------------

    def verify(self, clip_id: str | None = None) -> list[ClipCheck]:
        """Check seals and segment digests (no owner key needed). One ClipCheck per clip."""
        if clip_id is not None:
            self.get(clip_id)
            return [self._check(clip_id)[0]]
        ids = sorted(self.index.ids() | {d.name for d in self._clip_dirs()})
        checks = []
        for cid in ids:
            if self._in_progress(cid):
                continue
            checks.append(self._check(cid)[0])
        return checks

    def _in_progress(self, clip_id: str) -> bool:
        clip_dir = self.clips_dir / clip_id
        return not (clip_dir / SEAL_NAME).exists() and clip_dir.is_dir() and self._is_locked(clip_dir)

    def _check(self, clip_id: str) -> tuple[ClipCheck, dict[str, Any] | None]:
        check = ClipCheck(clip_id)
        clip_dir = self.clips_dir / clip_id
        rec = self.index.get(clip_id)
        if not clip_dir.is_dir():
            check.fail("missing", "the clip's directory is gone (the index still lists it)")
            return check, None
        try:
            body = read_seal(clip_dir, self.public_key)
        except SealError as exc:
            check.fail("bad-seal", str(exc))
            return check, None
        if body.get("clip_id") != clip_id:
            check.fail("swapped", f"seal.json belongs to clip {body.get('clip_id')}, not to this one")
            return check, None
        if body.get("device_id") != self.device_id:
            check.fail("bad-seal", f"seal names device {body.get('device_id')}, not this device")
        segments = seal_segments(body)
        self._check_segments(check, clip_dir, segments)
        if rec is None:
            check.fail("index", "not in the index (run 'consentcam clips reindex')")
        elif rec.digest != body["digest"] or rec.segments != len(segments):
            check.fail("index", "index disagrees with the seal (run 'consentcam clips reindex')")
        return check, body

    def _check_segments(self, check: ClipCheck, clip_dir: Path, segments: list[SegmentInfo]) -> None:
        by_digest = {s.sha256: s.name for s in segments}
        sealed_names = {s.name for s in segments}
        for seg in segments:
            path = clip_dir / seg.name
            try:
                size = path.stat().st_size
                digest = _file_sha256(path)
            except FileNotFoundError:
                check.fail("missing", f"segment {seg.name} is missing")
                continue
            except OSError as exc:
                check.fail("missing", f"segment {seg.name} cannot be read ({exc.strerror})")
                continue
            if digest == seg.sha256:
                continue
            if digest in by_digest:
                check.fail("reordered", f"segment {seg.name} holds what the seal lists as {by_digest[digest]}")
            elif (origin := self._segment_owner(digest, clip_dir.name)) is not None:
                check.fail("swapped", f"segment {seg.name} is {origin[1]} of clip {origin[0]}")
            elif size < seg.size:
                check.fail("truncated", f"segment {seg.name} is {size} bytes, sealed as {seg.size}")
            else:
                check.fail("tampered", f"segment {seg.name} does not match its sealed digest")
        for path in sorted(clip_dir.iterdir()):
            if path.name in sealed_names or path.name in (SEAL_NAME, HOLD_NAME):
                continue
            check.fail("extra", f"{path.name} is not listed in the seal")

    def _segment_owner(self, digest: str, not_clip: str) -> tuple[str, str] | None:
        """Which other clip's seal lists a segment with this ciphertext digest (swap detection)."""
        for other in self._clip_dirs():
            if other.name == not_clip:
                continue
            try:
                body = read_seal(other, self.public_key)
            except SealError:
                continue
            for seg in seal_segments(body):
                if seg.sha256 == digest:
                    return other.name, seg.name
        return None

    # -- holds ----------------------------------------------------------------------------------

    def hold(self, clip_id: str, reason: str = "") -> ClipRecord:
        """Keep a clip past retention until unheld. Stored next to the clip so reindex keeps it."""
        self.get(clip_id)
        doc = {"held": True, "reason": reason, "time": clock.iso(clock.now())}
        write_private(self.clips_dir / clip_id / HOLD_NAME, json.dumps(doc).encode() + b"\n")
        self.index.set_hold(clip_id, True, reason)
        if self.audit is not None:
            self.audit.append("clip.held", clip_id=clip_id, reason=reason)
        return self.get(clip_id)

    def unhold(self, clip_id: str) -> ClipRecord:
        self.get(clip_id)
        path = self.clips_dir / clip_id / HOLD_NAME
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            fsync_dir(path.parent)
        self.index.set_hold(clip_id, False, "")
        if self.audit is not None:
            self.audit.append("clip.unheld", clip_id=clip_id)
        return self.get(clip_id)

    def _held_on_disk(self, clip_id: str) -> bool:
        """The hold file is the truth: `hold` writes it before the index, so a crash (or a locked
        index) in between leaves the index saying "not held". Deleting code asks the disk too."""
        return self._read_hold(self.clips_dir / clip_id)[0]

    def _read_hold(self, clip_dir: Path) -> tuple[bool, str]:
        try:
            doc = json.loads((clip_dir / HOLD_NAME).read_bytes())
            return bool(doc.get("held", True)), str(doc.get("reason", ""))
        except FileNotFoundError:
            return False, ""
        except (OSError, ValueError, AttributeError):
            return True, "hold file unreadable: kept to be safe"

    # -- retention ------------------------------------------------------------------------------

    def free_bytes(self) -> int:
        st = os.statvfs(self.clips_dir)
        return st.f_bavail * st.f_frsize

    def plan_retention(self, now: float | None = None) -> list[tuple[str, str]]:
        """(clip id, reason) pairs that enforce_retention would delete now, oldest first."""
        now = clock.now() if now is None else now
        rules = self.storage.retention
        clips = self.index.list(include_recording=False)
        candidates = [c for c in clips if not c.held and not self._held_on_disk(c.id)]
        plan: list[tuple[str, str]] = []
        chosen: set[str] = set()
        if rules.max_age > 0:
            for c in candidates:
                # Times stamped before the clock was synchronised mean nothing: age them out by space only.
                if c.clock_synced and c.end < now - rules.max_age:
                    plan.append((c.id, "max_age"))
                    chosen.add(c.id)
        if rules.max_bytes > 0:
            total = sum(c.size for c in clips if c.id not in chosen)
            for c in candidates:
                if total <= rules.max_bytes:
                    break
                if c.id not in chosen:
                    plan.append((c.id, "max_bytes"))
                    chosen.add(c.id)
                    total -= c.size
        if rules.min_free > 0:
            free = self.free_bytes() + sum(c.size for c in clips if c.id in chosen)
            for c in candidates:
                if free >= rules.min_free:
                    break
                if c.id not in chosen:
                    plan.append((c.id, "min_free"))
                    chosen.add(c.id)
                    free += c.size
        return plan

    def enforce_retention(self, now: float | None = None) -> list[str]:
        """Delete what the retention rules say must go (held clips never). Returns deleted ids."""
        return [clip_id for clip_id, reason in self.plan_retention(now) if self.delete(clip_id, reason)]

    def delete(self, clip_id: str, reason: str) -> bool:
        """Remove a clip: rename aside (the atomic point of no return), free the space, unindex,
        then audit (after the space is free, so a full disk cannot stop the audit entry)."""
        src = self.clips_dir / clip_id
        trash = self.clips_dir / (TRASH_PREFIX + clip_id)
        rec = self.index.get(clip_id)
        try:
            os.rename(src, trash)
        except FileNotFoundError:
            with contextlib.suppress(Exception):
                self.index.delete(clip_id)  # a stale row: nothing to free
            return False
        self._finish_delete(clip_id, reason, rec)
        return True

    def _finish_delete(self, clip_id: str, reason: str, rec: ClipRecord | None) -> None:
        trash = self.clips_dir / (TRASH_PREFIX + clip_id)
        # Free the space but keep the emptied trash directory until the audit entry is written: it
        # is the record that an entry is owed, so a crash in between is audited on the next open
        # (at worst twice, never not at all).
        with contextlib.suppress(OSError):
            for child in trash.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        with contextlib.suppress(Exception):
            self.index.delete(clip_id)
        audited = self.audit is None
        if self.audit is not None:
            data: dict[str, Any] = {"clip_id": clip_id, "reason": reason}
            if rec is not None:
                data.update(camera=rec.camera, start=clock.iso(rec.start), size=rec.size)
            try:
                self.audit.append("clip.deleted", **data)
                audited = True
            except Exception as exc:  # full disk, or a damaged log: never let it stop making room
                log.error("clip %s deleted (%s) but the audit log could not be written (retried on the next "
                          "open): %s", clip_id, reason, exc)
        if audited:
            shutil.rmtree(trash, ignore_errors=True)
        self._ensure_reserve()
        log.info("clip %s deleted (%s)", clip_id, reason)

    # -- space reserve ----------------------------------------------------------------------------

    def _ensure_reserve(self) -> None:
        """Keep a small file of zeros so a seal can always be written on a full disk."""
        path = self.root / RESERVE_NAME
        try:
            if path.exists() and path.stat().st_size == RESERVE_BYTES:
                return
            if self.free_bytes() < 2 * RESERVE_BYTES:
                return  # do not compete with footage for the last bytes
            _write_file(path, bytes(RESERVE_BYTES))
        except OSError as exc:
            log.debug("space reserve not created: %s", exc)
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    def _release_reserve(self) -> bool:
        path = self.root / RESERVE_NAME
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        log.warning("storage full: released the space reserve to finish writing clip metadata")
        return True

    # -- helpers --------------------------------------------------------------------------------

    def _clip_dirs(self) -> list[Path]:
        return sorted(p for p in self.clips_dir.iterdir() if p.is_dir() and valid_clip_id(p.name))

    @staticmethod
    def _is_locked(clip_dir: Path) -> bool:
        """True while a live process holds the clip's writer lock."""
        try:
            fd = os.open(clip_dir / LOCK_NAME, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


def _record_from_seal(body: dict[str, Any], held: bool, hold_reason: str) -> ClipRecord:
    start = clock.parse_iso(body["start"])
    end = clock.parse_iso(body["end"])
    status = body.get("status", STATUS_COMPLETE)
    return ClipRecord(
        id=body["clip_id"], camera=body["camera"], start=start, end=end, duration=max(0.0, end - start),
        size=int(body["size"]), plaintext_size=int(body["plaintext_size"]), segments=len(body["segments"]),
        codec=body["codec"], container=body["container"], digest=body["digest"],
        motion_score=float(body["motion_score"]), held=held, clock_synced=bool(body["clock_synced"]),
        status=status if status in FINISHED else STATUS_RECOVERED, extra=dict(body.get("extra") or {}),
        hold_reason=hold_reason,
    )


def _sealable(extra: dict[str, Any], clip_id: str) -> dict[str, Any]:
    """Recorder metadata as plain JSON, so a stray numpy number or NaN can never stop a seal."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if hasattr(value, "item") and callable(value.item):  # numpy scalars
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if value is None or isinstance(value, bool | int | float | str):
            return value
        return str(value)

    cleaned = plain(extra)
    if cleaned != extra:
        log.warning("clip %s: extra metadata adjusted to plain JSON for the seal", clip_id)
    canonical_json(cleaned)
    return cleaned


def _write_file(path: Path, data: bytes | bytearray | memoryview, *, sync_directory: bool = True) -> None:
    """Temp name in the same directory, fsync, rename, fsync the directory (unless the caller batches that)."""
    tmp = path.with_name(f".{path.name}.tmp")
    write_synced(tmp, data)
    try:
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_directory:
        fsync_dir(path.parent)


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
