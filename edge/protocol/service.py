"""ConsentService: the daemon's request intake over MQTT, and the outbox publisher.

Threads and bounds (recording never waits on any of this):
- paho's network thread (inside :class:`edge.mqtt_link.MqttLink`) only checks the size and puts
  the payload on a bounded intake queue; when the queue is full the message is dropped and
  counted (a flood costs a counter increment, never memory or time).
- One worker thread takes messages off the queue and runs the :class:`Verifier` (one Ed25519
  verify, one JSON parse, a few SQLite statements and one file per accepted request). It also
  sweeps expired requests, publishes the owner's opt-in ``{"pending": N}`` notification and
  publishes approved releases from the outbox when connected.

The service publishes nothing in response to a request: no acknowledgement, no refusal, no
decline unless the owner opts in per request from the CLI. Counters stay on the device.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.audit import AuditLog
from edge.config import Config
from edge.encoding import b64decode
from edge.errors import ConsentcamError
from edge.protocol import topics
from edge.protocol.pending import PendingQueue
from edge.protocol.request import HEADER_LEN, parse_body
from edge.protocol.verifier import Limits, Verifier
from edge.state import StateDir

log = logging.getLogger(__name__)

INTAKE_QUEUE_SIZE = 256
BATCH = 64  # messages verified per audit flush (one fsync and one head signature per batch)
SWEEP_INTERVAL = 30.0
OUTBOX_INTERVAL = 10.0
DROP_AUDIT_INTERVAL = 60.0


@dataclass
class ServiceStats:
    """Local counters (shown by `consentcam status`); never published."""

    received: int = 0
    accepted: int = 0
    refused: int = 0
    duplicates: int = 0
    oversized: int = 0
    dropped: int = 0  # intake queue full
    refusals: dict[str, int] = field(default_factory=dict)
    releases_sent: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Oversized:
    """Stand-in for a payload too large to queue: only its size and digest travel on."""

    __slots__ = ("digest", "size")

    def __init__(self, size: int, digest: str) -> None:
        self.size, self.digest = size, digest


class ConsentService:
    def __init__(
        self,
        config: Config,
        state: StateDir,
        link: Any,  # edge.mqtt_link.MqttLink (or anything with subscribe/publish/connected/client)
        audit: AuditLog,
        device_id: str,
        *,
        verifier: Verifier | None = None,
        device_key: Any = None,
        queue_size: int = INTAKE_QUEUE_SIZE,
        publish_outbox: bool = True,
    ) -> None:
        self.config = config
        self.state = state
        self.link = link
        self.audit = audit
        self.device_id = device_id
        self.device_key = device_key
        self.verifier = verifier or Verifier.for_state(config, state, audit, device_id)
        self.stats = ServiceStats()
        self.publish_outbox = publish_outbox
        self._queue: queue.Queue[tuple[str, bytes | _Oversized]] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._stats_lock = threading.Lock()
        self._max_body = config.requests.max_message_bytes
        self._dropped_unaudited = 0
        self._last_notified: int | None = None

    # -- topics ------------------------------------------------------------------------------

    def subscriptions(self) -> list[str]:
        root = self.config.mqtt.topic_root
        subs = [topics.device_topic(root, self.device_id)]
        loc = self.config.device.location
        if loc is not None:
            subs.append(topics.area_subscription(root, loc.lat, loc.lon, self.config.mqtt.area_precision))
        return subs

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for topic in self.subscriptions():
            self.link.subscribe(topic, self._on_message, qos=1)
        self._stop.clear()
        self._worker = threading.Thread(target=self._run, name="consent-worker", daemon=True)
        self._worker.start()
        log.info("consent service started", extra={"subscriptions": len(self.subscriptions())})

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout)
            self._worker = None
        self._flush_drop_audit()

    def reload(self, config: Config | None = None) -> None:
        """SIGHUP: apply new ``requests.*`` limits (if a config is given) and re-read the trust store
        (after `consentcam trust add/remove`). Topics and the broker connection need a restart."""
        if config is not None:
            # Reference swaps: a message arriving mid-reload is judged by the old or the new limits.
            self.verifier.limits = Limits.from_config(config)
            self._max_body = config.requests.max_message_bytes
            log.info("request limits reloaded")
        try:
            self.verifier.trust.reload()
        except ConsentcamError as exc:  # a damaged file must not stop intake: keep the previous store
            log.error("trust store not reloaded, keeping the previous one", extra={"error": str(exc)})
            return
        log.info("trust store reloaded", extra={"entries": len(self.verifier.trust.entries())})

    def queue_depth(self) -> int:
        return self._queue.qsize()

    def pending_count(self) -> int:
        return self.verifier.pending.count()

    # -- network thread: never block --------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        with self._stats_lock:
            self.stats.received += 1
        item: bytes | _Oversized = payload
        if len(payload) - HEADER_LEN > self._max_body:
            item = _Oversized(len(payload), hashlib.sha256(payload).hexdigest())
        try:
            self._queue.put_nowait((topic, item))
        except queue.Full:
            with self._stats_lock:
                self.stats.dropped += 1
                self._dropped_unaudited += 1

    def submit(self, topic: str, payload: bytes) -> None:
        """Feed a message as if it came from the broker (used by tests and the demo)."""
        self._on_message(topic, payload)

    # -- worker -----------------------------------------------------------------------------

    def _run(self) -> None:
        next_sweep = next_outbox = next_drop_audit = time.monotonic()
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.5)
            except queue.Empty:
                pass
            else:
                self._handle_batch(self._drain(first))
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + SWEEP_INTERVAL
                self._sweep()
            if now >= next_drop_audit:
                next_drop_audit = now + DROP_AUDIT_INTERVAL
                self._flush_drop_audit()
            if self.publish_outbox and now >= next_outbox and self._queue.empty():
                next_outbox = now + OUTBOX_INTERVAL
                self.publish_pending_releases()

    def _drain(self, first: tuple[str, bytes | _Oversized]) -> list[tuple[str, bytes | _Oversized]]:
        """The first message plus whatever else is already waiting (at most BATCH)."""
        batch = [first]
        while len(batch) < BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _handle_batch(self, batch: list[tuple[str, bytes | _Oversized]]) -> None:
        messages: list[tuple[bytes, str | None]] = []
        for topic, item in batch:
            if isinstance(item, _Oversized):
                try:
                    self.verifier.refuse_oversized(item.digest, item.size)
                except Exception:
                    log.exception("could not audit an oversized message")
                with self._stats_lock:
                    self.stats.oversized += 1
                    self.stats.refused += 1
                    self.stats.refusals["oversized"] = self.stats.refusals.get("oversized", 0) + 1
            else:
                messages.append((item, topic))
        if not messages:
            return
        try:
            outcomes = self.verifier.process_many(messages)
        except Exception:  # a bug or a full disk must not kill intake; the batch is dropped
            log.exception("request processing failed")
            return
        accepted = 0
        with self._stats_lock:
            for outcome in outcomes:
                if outcome.status == "accepted":
                    self.stats.accepted += 1
                    accepted += 1
                elif outcome.status == "duplicate":
                    self.stats.duplicates += 1
                else:
                    self.stats.refused += 1
                    r = outcome.reason or "unknown"
                    self.stats.refusals[r] = self.stats.refusals.get(r, 0) + 1
        if accepted:
            self.notify_owner()

    def _sweep(self) -> None:
        try:
            expired = self.verifier.sweep()
        except Exception:
            log.exception("pending sweep failed")
            return
        # Also catches decisions made with the CLI since the last notification.
        if expired or (self._last_notified is not None and self.pending_count() != self._last_notified):
            self.notify_owner()

    def _flush_drop_audit(self) -> None:
        with self._stats_lock:
            n, self._dropped_unaudited = self._dropped_unaudited, 0
        if n:
            try:
                self.audit.append("request.intake_dropped", count=n, reason="queue_full")
            except Exception:
                log.exception("could not audit dropped messages")

    # -- owner notification and outbox ------------------------------------------------------

    def notify_owner(self) -> None:
        """Opt-in: publish {"pending": N} (nothing else) to the owner's own topic."""
        topic = self.config.release.notify_owner_topic
        if not topic or not self.link.connected:
            return
        n = self.pending_count()
        try:
            self.link.publish(topic, json.dumps({"pending": n}).encode(), qos=1, retain=False, timeout=5.0)
            self._last_notified = n
        except ConsentcamError as exc:
            log.info("owner notification not sent", extra={"error": str(exc)})

    def publish_pending_releases(self) -> int:
        """Publish every queued outbox item (the release engineer's publish_release). Returns count sent."""
        if not self.link.connected:
            return 0
        from edge.protocol import outbox, release  # late: the release side imports the vault stack

        sent = 0
        try:
            items = outbox.list_items(self.state, "queued")
        except ConsentcamError:
            log.exception("outbox unreadable")
            return 0
        for item in items:
            if self._stop.is_set() or not self.link.connected:
                break
            try:
                release.publish_release(self.link, item, self.config.mqtt.topic_root, audit=self.audit)
                sent += 1
            except ConsentcamError as exc:
                log.warning("release not sent yet", extra={"request_id": item.request_id, "error": str(exc)})
        for request_id in queued_declines(self.verifier.pending.root):
            if self._stop.is_set() or not self.link.connected:
                break
            try:
                publish_decline_file(self.link, self.verifier.pending, request_id, self.config.mqtt.topic_root,
                                     self.audit)
            except (ConsentcamError, OSError) as exc:
                log.warning("decline not sent yet", extra={"request_id": request_id, "error": str(exc)})
        with self._stats_lock:
            self.stats.releases_sent += sent
        return sent


def declines_dir(requests_dir: Path) -> Path:
    """Opt-in signed declines (`requests deny --notify`) waiting to be published."""
    return requests_dir / "declines"


def queued_declines(requests_dir: Path) -> list[str]:
    d = declines_dir(requests_dir)
    if not d.is_dir():
        return []
    return sorted(n[:-4] for n in os.listdir(d) if n.endswith(".bin") and not n.startswith("."))


def publish_decline_file(link: Any, pending: PendingQueue, request_id: str, topic_root: str, audit: AuditLog,
                         timeout: float = 10.0) -> None:
    """Publish one queued decline (QoS 1, not retained) on the reply topic from the signed body, then drop it."""
    path = declines_dir(pending.root) / f"{request_id}.bin"
    doc = pending.get_decided(request_id)
    body = parse_body(b64decode(doc["raw"])[HEADER_LEN:])
    link.publish(topics.inbox_topic(topic_root, body.inbox, body.id), path.read_bytes(), qos=1, retain=False,
                 timeout=timeout)
    audit.append("decline.sent", id=request_id, digest=doc["digest"])
    os.unlink(path)

