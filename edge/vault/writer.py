"""ClipWriter: encrypt a clip while it is recorded, one short age segment at a time.

Plaintext exists only in RAM: the buffer of the segment being filled (at most segment_max_bytes)
and, for the few milliseconds encryption takes, its copy inside the encryptor. A segment is cut
when the recorder signals a good cut point (``boundary()``) and segment_seconds have passed, when
the buffer reaches segment_max_bytes, or, as a safety net for a recorder that never calls
``boundary()``, when twice segment_seconds have passed.

Four stages, each in its own thread(s) so they overlap on a multi-core Pi: the caller's thread
only buffers; an encrypting thread writes the age file (``edge.vault.age_encrypt``: OpenSSL's
ChaCha20-Poly1305, which releases the GIL); a hashing thread takes the SHA-256 of the ciphertext
(for the seal); STAGE_WORKERS staging threads write each encrypted segment to its own temp file and
fdatasync it. Syncing two files at once lets the filesystem share a journal commit and keeps the
disk busy while the next segment is written (one at a time, each fdatasync waits for a commit of
its own). A per-clip sequencer thread renames the staged files to their segment names strictly in
order, only after their data is durable. The directory fsync that makes renames durable is
coalesced while more segments are queued (at most SYNC_EVERY renames share one), so at camera bit
rates (one segment a second, queue empty) every segment is still durable on its own. Should
staging fail for lack of space, the sequencer falls back to the vault's serial path, which evicts
old clips and retries. At most IN_FLIGHT segments are in flight, so memory stays bounded
(back-pressure on the caller if the disk is slow), and a kill -9 loses at most the segment being
filled plus what is in flight (milliseconds of work at camera bit rates); staged temp files of a
killed writer are removed by recovery like any other temp file.
Nothing here can decrypt: the writer only has the owner's public recipient.
"""

from __future__ import annotations

import hashlib
import logging
import math
import mmap
import os
import queue
import threading
import time
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import ConsentcamError
from edge.state import DISK_FULL, fsync_dir, write_synced
from edge.vault import age_encrypt
from edge.vault.records import STATUS_COMPLETE, STATUS_RECOVERED, ClipRecord
from edge.vault.seal import SegmentInfo, segment_name

if TYPE_CHECKING:
    from edge.vault.vault import Vault

log = logging.getLogger("consentcam.vault")
BOUNDARY_SLACK = 0.9
# One segment per stage (encrypt, hash, two staging writes): enough to keep every stage busy; each
# more would hold another segment_max_bytes of RAM.
IN_FLIGHT = 4
# Temp files written and fdatasynced at once (measured on ext4: one at a time 440-520 MB/s, two
# 640-690, three 690-720, one big file 690-700).
STAGE_WORKERS = 2
# A power cut may take the renames not yet made durable by a directory fsync: bound how many.
SYNC_EVERY = 8
_STOP = None


def _seal(plain: mmap.mmap, size: int, recipient: bytes, out: mmap.mmap, pool: _BufferPool) -> memoryview:
    """Encrypt the first size bytes of plain into out; plain goes back to the pool once read."""
    try:
        return memoryview(out)[: age_encrypt.encrypt_into(memoryview(plain)[:size], recipient, out)]
    finally:
        pool.give(plain)


def _sha256_of(sealed: Future[memoryview]) -> str:
    return hashlib.sha256(sealed.result()).hexdigest()


def _stage(sealed: Future[memoryview], temp: Path) -> Path:
    write_synced(temp, sealed.result())
    return temp


class _BufferPool:
    """Segment-sized buffers, reused for the life of a clip. Fresh 2 MiB buffers for every segment
    cost a page fault per 4 KiB (the allocator hands big freed blocks back to the kernel): about a
    third of the writer's system time. At most IN_FLIGHT (+1 being filled) exist, as before.
    Anonymous mappings rather than bytearrays: a page takes RAM only once written, so at camera bit
    rates (segments of a few hundred KB) a 2 MiB buffer costs what the segment uses."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._free: queue.SimpleQueue[mmap.mmap] = queue.SimpleQueue()

    def take(self) -> mmap.mmap:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            return mmap.mmap(-1, self.size)

    def give(self, buffer: mmap.mmap) -> None:
        self._free.put(buffer)


def _discard_staged(item: _InFlight) -> None:
    if item.staged is not None:
        futures.wait([item.staged])  # it may still be writing: remove the file only once it is done
    item.temp.unlink(missing_ok=True)


@dataclass(frozen=True)
class _InFlight:
    """One segment on its way through the stages (futures of each stage's result)."""

    sealed: Future[memoryview]  # the age file, in RAM (a view of a pooled buffer)
    digest: Future[str]  # SHA-256 of it, for the seal
    staged: Future[Path] | None  # temp, once written and fdatasynced (None: not staged, disk nearly full)
    temp: Path
    size: int  # plaintext bytes
    buffer: mmap.mmap  # holds the age file; back to the pool once every stage is done with it


class WriterClosedError(ConsentcamError):
    """write/close after close() or abort(): a programming error in the caller."""


class ClipWriter:
    def __init__(self, vault: Vault, clip_id: str, directory: Path, lock_fd: int, *, camera: str, start: float,
                 container: str, codec: str, clock_synced: bool) -> None:
        self._vault = vault
        self.clip_id = clip_id
        self.directory = directory
        self._lock_fd: int | None = lock_fd
        self.camera = camera
        self.start = start
        self.container = container
        self.codec = codec
        self.clock_synced = clock_synced
        self._recipient = age_encrypt.recipient_key(str(vault.recipient))
        self._cap = max(1, vault.storage.segment_max_bytes)
        self._seconds = vault.storage.segment_seconds
        self._plain_pool = _BufferPool(self._cap)
        self._sealed_pool = _BufferPool(age_encrypt.sealed_size(self._cap))
        self._plain: mmap.mmap | None = None  # the segment being filled: plaintext, RAM only
        self._buffered = 0
        self._motion = 0.0
        self._began = time.monotonic()
        self._seg_started = self._began
        self._closed = False
        # Owned by the I/O thread until it has been joined (or _wait_idle() returned).
        self._segments: list[SegmentInfo] = []
        self._dropped = 0
        self._dropped_bytes = 0
        self._streak = 0  # consecutive segments dropped for lack of space
        self._unsynced = 0  # renames since the last directory fsync (I/O thread only)
        self._staged = 0  # temp files handed to the stagers (caller's thread only): unique temp names
        self._queue: queue.Queue[_InFlight | None] = queue.Queue()
        self._slots = threading.Semaphore(IN_FLIGHT)
        self._encryptor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"vault-enc-{clip_id}")
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"vault-hash-{clip_id}")
        self._stager = ThreadPoolExecutor(max_workers=STAGE_WORKERS, thread_name_prefix=f"vault-stage-{clip_id}")
        self._thread = threading.Thread(target=self._drain, name=f"vault-{clip_id}", daemon=True)
        self._thread.start()

    # -- recorder API -----------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Add plaintext container bytes (copied: the caller may reuse its buffer). Seals full
        segments as the buffer fills."""
        self._check_open()
        view = memoryview(data)
        if not view.c_contiguous:  # e.g. a strided numpy slice: one copy to flatten it
            view = memoryview(view.tobytes())
        view = view.cast("B")
        pos = 0
        while pos < len(view):
            if self._plain is None:
                self._plain = self._plain_pool.take()
            n = min(self._cap - self._buffered, len(view) - pos)
            self._plain[self._buffered : self._buffered + n] = view[pos : pos + n]
            self._buffered += n
            pos += n
            if self._buffered >= self._cap:
                self._flush()
        if self._buffered and time.monotonic() - self._seg_started >= 2 * self._seconds:
            self._flush()

    def boundary(self) -> None:
        """A good cut point (e.g. just before a keyframe): rotate if segment_seconds have passed.

        "Passed" allows 10% slack: a recorder calling this once per keyframe interval (equal to
        segment_seconds by default) must cut at every call despite timer jitter, not every other.
        """
        self._check_open()
        if self._buffered and time.monotonic() - self._seg_started >= BOUNDARY_SLACK * self._seconds:
            self._flush()

    def note_motion(self, score: float) -> None:
        score = float(score)
        if math.isfinite(score):
            self._motion = max(self._motion, score)

    def close(self, end: float, extra: dict[str, Any] | None = None) -> ClipRecord:
        """Seal the last segment, sign the clip's seal, index it. Returns the finished record."""
        self._check_open()
        self._flush()
        self._closed = True
        self._stop_sink()
        self._end_drop_streak()
        try:
            return self._vault._finish_clip(self, STATUS_COMPLETE, end, dict(extra or {}))
        finally:
            self._release_lock()

    def abort(self) -> None:
        """Drop what is buffered; completed segments stay, sealed as a "recovered" clip."""
        if self._closed:
            return
        self._closed = True
        self._plain, self._buffered = None, 0
        self._stop_sink()
        self._end_drop_streak()
        try:
            if self._segments:
                end = self.start + (time.monotonic() - self._began)
                self._vault._finish_clip(self, STATUS_RECOVERED, end, {})
            else:
                self._vault._discard_clip(self.clip_id, self.directory)
        finally:
            self._release_lock()

    def __enter__(self) -> ClipWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self.abort()

    # -- state (waits for segments in flight) -----------------------------------------------

    @property
    def segments(self) -> list[SegmentInfo]:
        self._wait_idle()
        return list(self._segments)

    @property
    def dropped_segments(self) -> int:
        self._wait_idle()
        return self._dropped

    @property
    def motion_score(self) -> float:
        return self._motion

    @property
    def buffered(self) -> int:
        """Plaintext bytes in RAM, not yet cut into a segment."""
        return self._buffered

    # -- internals ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise WriterClosedError(f"clip {self.clip_id} is already closed")

    def _flush(self) -> None:
        if not self._buffered or self._plain is None:
            return
        self._seg_started = time.monotonic()  # the cut is now; encrypting and writing take a while
        self._slots.acquire()  # bounded: at most IN_FLIGHT segments in flight
        plain, size = self._plain, self._buffered
        self._plain, self._buffered = None, 0
        temp = self.directory / f".staged-{self._staged:06d}.tmp"  # ".*.tmp": recovery removes leftovers
        self._staged += 1
        out = self._sealed_pool.take()
        try:
            sealed = self._encryptor.submit(_seal, plain, size, self._recipient, out, self._plain_pool)
            digest = self._hasher.submit(_sha256_of, sealed)
            staged = self._stager.submit(_stage, sealed, temp) if self._roomy() else None
        except BaseException:
            self._slots.release()
            raise
        self._queue.put(_InFlight(sealed, digest, staged, temp, size, out))

    def _drain(self) -> None:
        """Sequencer thread: name each staged segment, strictly in order, once its data is durable."""
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    self._sync_directory()
                    return
                try:
                    self._store(item)
                finally:
                    self._recycle(item)
                    del item
                    self._slots.release()
            except Exception:  # never let a bug kill the thread silently: count and report it
                log.exception("clip %s: unexpected error storing a segment; it was dropped", self.clip_id)
                self._dropped += 1
            finally:
                self._queue.task_done()

    def _store(self, item: _InFlight) -> None:
        name = segment_name(len(self._segments))
        try:
            ciphertext = item.sealed.result()
            info = SegmentInfo(name, len(ciphertext), item.digest.result(), item.size)
            problem = self._place(item, name, ciphertext)
        except BaseException:
            _discard_staged(item)  # a bug upstream: the segment is counted as dropped, leave no temp file
            raise
        if problem is None:
            self._end_drop_streak()
            self._segments.append(info)
            self._unsynced += 1
            if self._queue.empty() or self._unsynced >= SYNC_EVERY:  # more queued: let them share the fsync
                self._sync_directory()
            return
        # One ERROR when footage starts being lost, one when it stops (or at close): no log flood.
        if not self._streak:
            log.error("%s", problem)
        self._streak += 1
        self._dropped += 1
        self._dropped_bytes += item.size

    def _recycle(self, item: _InFlight) -> None:
        """The age file's buffer goes back to the pool only once no stage can still read it."""
        futures.wait([f for f in (item.sealed, item.digest, item.staged) if f is not None])
        self._sealed_pool.give(item.buffer)

    def _roomy(self) -> bool:
        """Stage concurrently only while everything in flight fits with room to spare. Near a full
        disk, segments go one at a time through the vault's serial path: two racing writers could
        drop a segment and keep the next, leaving a hole instead of losing only the newest footage."""
        try:
            room = self._vault.free_bytes() - self._vault.storage.retention.min_free
        except OSError:
            return False
        return room > 2 * (IN_FLIGHT + STAGE_WORKERS) * self._cap

    def _place(self, item: _InFlight, name: str, ciphertext: memoryview) -> str | None:
        """Rename the staged file to its segment name; unstaged segments, and staged ones that ran out
        of space after all, take the vault's serial path (evict old clips, retry). Returns why a
        segment was dropped, or None."""
        if item.staged is not None:
            try:
                self._vault._place_segment(self.directory, item.staged.result(), name, exclude=self.clip_id)
                return None
            except OSError as exc:
                item.temp.unlink(missing_ok=True)
                if exc.errno not in DISK_FULL:
                    return self._write_failed(name, exc)
        try:
            return self._vault._store_segment(self.directory, name, ciphertext, exclude=self.clip_id,
                                              sync_directory=False)
        except OSError as exc:
            return self._write_failed(name, exc)

    def _write_failed(self, name: str, exc: OSError) -> str:
        return f"clip {self.clip_id}: could not write segment {name}: {exc.strerror or exc}; dropped"

    def _sync_directory(self) -> None:
        """Make the renames so far durable (one fsync of the clip directory for all of them)."""
        if not self._unsynced:
            return
        try:
            fsync_dir(self.directory)
        except OSError as exc:  # the segments are written and fsynced; only their names may not survive a power cut
            log.error("clip %s: could not fsync the clip directory: %s", self.clip_id, exc.strerror or exc)
        self._unsynced = 0

    def _end_drop_streak(self) -> None:
        if self._streak:
            log.error("clip %s: storage full: %d segment(s) of footage were dropped (%d dropped in this clip so far, "
                      "%d bytes)", self.clip_id, self._streak, self._dropped, self._dropped_bytes)
            self._streak = 0

    def _wait_idle(self) -> None:
        if self._thread.is_alive():
            self._queue.join()

    def _stop_sink(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._encryptor.shutdown(wait=True)
        self._hasher.shutdown(wait=True)
        self._stager.shutdown(wait=True)

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None
