"""The validation pipeline: wire bytes in, a pending request or a refusal reason out.

Order (docs/PROTOCOL.md, "Validation order"): oversized, malformed framing, unknown_signer,
bad_signature, malformed body, [duplicate], clock_unsynchronised, not_yet_valid, expired,
lifetime_too_long, wrong_audience, outside_area, window_too_long, window_in_future,
window_inverted, replayed, rate_limited, queue_full. Every outcome is appended to the audit log
(``request.accepted``, ``request.refused`` with ``reason``, ``request.duplicate``). Nothing is
ever sent back to the requester: this module has no network access at all.

Refusals of unauthenticated bytes (garbage, unknown keys, bad signatures) are audited
individually up to a budget; beyond it they are counted and written as one summary entry, so a
flood cannot turn the audit log into a disk-filling fsync storm.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge import clock
from edge.audit import AuditLog
from edge.config import Config, Location
from edge.errors import ProtocolError
from edge.protocol import geo
from edge.protocol.pending import PendingQueue
from edge.protocol.replay import ReplayStore, SeenRow
from edge.protocol.request import VerifiedRequest, parse_request, request_digest
from edge.protocol.trust import TrustStore

log = logging.getLogger(__name__)

DUPLICATE_WINDOW = 600.0  # identical copies within 10 minutes are fan-out duplicates, not replays
UNAUTH_AUDIT_BURST = 100
UNAUTH_AUDIT_PER_SECOND = 1.0
_PRE_AUTH = frozenset({"oversized", "malformed", "unknown_signer", "bad_signature"})


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 16 * 1024
    max_window: float = 12 * 3600.0
    max_clock_skew: float = 300.0
    max_lifetime: float = 7 * 86400.0
    max_pending: int = 50

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        r = config.requests
        return cls(r.max_message_bytes, r.max_window, r.max_clock_skew, r.max_lifetime, r.max_pending)


@dataclass(frozen=True)
class Outcome:
    status: str  # "accepted" | "refused" | "duplicate"
    reason: str | None = None
    request: VerifiedRequest | None = None
    digest: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


class _AuditBudget:
    """Token bucket for audit entries about unauthenticated input."""

    def __init__(self, burst: int, per_second: float) -> None:
        self.burst, self.rate = burst, per_second
        self.tokens = float(burst)
        self.at = time.monotonic()
        self.suppressed: dict[str, int] = {}

    def take(self) -> bool:
        t = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (t - self.at) * self.rate)
        self.at = t
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Verifier:
    """Stateless checks plus the device state they need. Thread-safe: one request at a time."""

    def __init__(
        self,
        *,
        trust: TrustStore,
        replay: ReplayStore,
        pending: PendingQueue,
        audit: AuditLog | None,
        device_id: str,
        location: Location | None,
        limits: Limits,
        clock_ok: Callable[[], bool],
        now: Callable[[], float] = clock.now,
    ) -> None:
        self.trust, self.replay, self.pending, self.audit = trust, replay, pending, audit
        self.device_id = device_id
        self.location = location
        self.limits = limits
        self._clock_ok = clock_ok
        self._now = now
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, float] = OrderedDict()  # digest -> first seen (refused ones)
        self._budget = _AuditBudget(UNAUTH_AUDIT_BURST, UNAUTH_AUDIT_PER_SECOND)
        self._signer_budgets: dict[str, _AuditBudget] = {}  # refusals per trusted key (few keys)
        self._clock_cache: tuple[float, bool] | None = None
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._staged: list[Path] = []

    @classmethod
    def for_state(cls, config: Config, state: Any, audit: AuditLog | None, device_id: str, *,
                  durable: bool = True, now: Callable[[], float] = clock.now) -> Verifier:
        return cls(
            trust=TrustStore.load(state.trust_store),
            replay=ReplayStore(state.requests / "replay.sqlite"),
            pending=PendingQueue(state.requests, durable=durable),
            audit=audit,
            device_id=device_id,
            location=config.device.location,
            limits=Limits.from_config(config),
            clock_ok=lambda: clock.clock_synchronised(config.clock.mode),
            now=now,
        )

    def clock_synchronised(self) -> bool:
        # The kernel/timesyncd check costs a syscall or a file stat: ask at most every 5 s.
        t = time.monotonic()
        if self._clock_cache is None or t - self._clock_cache[0] > 5.0:
            self._clock_cache = (t, bool(self._clock_ok()))
        return self._clock_cache[1]

    # -- the pipeline --------------------------------------------------------------------------

    def process(self, data: bytes, topic: str | None = None) -> Outcome:
        with self._lock:
            try:
                return self._process(bytes(data), topic)
            finally:
                self._flush_events()

    def process_many(self, items: list[tuple[bytes, str | None]]) -> list[Outcome]:
        """Process a batch (the service drains its queue this way): the audit entries of the whole
        batch are written with one fsync and one head signature instead of one each."""
        with self._lock:
            self.replay.begin()  # one SQLite transaction for the batch
            try:
                return [self._process_guarded(bytes(data), topic) for data, topic in items]
            finally:
                self._flush_events()

    def _process_guarded(self, data: bytes, topic: str | None) -> Outcome:
        # One message hitting a local fault (disk full, I/O error) must not sink the rest of the batch.
        try:
            return self._process(data, topic)
        except Exception:
            log.exception("request processing failed")
            return Outcome("error", "internal_error", None, request_digest(data))

    def _process(self, data: bytes, topic: str | None) -> Outcome:
        digest = request_digest(data)
        try:
            verified = parse_request(data, self.trust, self.limits)
        except ProtocolError as exc:
            self._refused_unauthenticated(exc, digest, len(data), topic)
            return Outcome("refused", exc.reason, None, digest)
        now = self._now()
        body = verified.body
        seen = self.replay.lookup(body.id)
        if self._is_duplicate(verified, now, seen):
            self._audit_duplicate(body.id, digest, verified.signer.name)
            return Outcome("duplicate", None, verified, digest)
        try:
            self._check(verified, now, seen is not None)
        except ProtocolError as exc:
            self._remember_refused(digest, now)
            if self._signer_budget(verified.signer.key_id).take():
                self._audit("request.refused", reason=exc.reason, detail=exc.detail[:200], id=body.id,
                            digest=digest, signer=verified.signer.name, size=len(data))
            elif self.audit is not None:
                # The rate limit counts acceptances only: a trusted but hostile key could otherwise
                # buy one audit entry per fresh refused request, without bound.
                self._budget.suppressed[exc.reason] = self._budget.suppressed.get(exc.reason, 0) + 1
            log.info("request refused", extra={"reason": exc.reason, "request_id": body.id})
            return Outcome("refused", exc.reason, verified, digest)
        self._audit("request.accepted", id=body.id, digest=digest, signer=verified.signer.name,
                    case=body.case, window_start=body.window_start, window_end=body.window_end,
                    audience=("device" if body.device_id else "area"), expires=body.expires)
        log.info("request accepted", extra={"request_id": body.id})
        return Outcome("accepted", None, verified, digest)

    def _check(self, v: VerifiedRequest, now: float, seen_before: bool) -> None:
        b, lim = v.body, self.limits
        if not self.clock_synchronised():
            raise ProtocolError("clock_unsynchronised", "the device clock is not synchronised")
        issued, expires = b.issued_ts, b.expires_ts
        if issued > now + lim.max_clock_skew:
            raise ProtocolError("not_yet_valid", f"issued {b.issued}")
        if expires < now:
            raise ProtocolError("expired", f"expired {b.expires}")
        if expires - issued > lim.max_lifetime:
            raise ProtocolError("lifetime_too_long", f"{expires - issued:.0f}s > {lim.max_lifetime:.0f}s")
        self._check_audience(v)
        start, end = b.window_start_ts, b.window_end_ts
        longest = min(lim.max_window, v.signer.max_window)
        if end - start > longest:
            raise ProtocolError("window_too_long", f"{end - start:.0f}s > {longest:.0f}s")
        if start > now + lim.max_clock_skew:
            raise ProtocolError("window_in_future", f"starts {b.window_start}")
        # A window reaching into the future would let an approval given later release footage
        # recorded after the request arrived (a standing order, not a request for what happened).
        if end > now + lim.max_clock_skew:
            raise ProtocolError("window_in_future", f"ends {b.window_end}")
        if end < start:
            raise ProtocolError("window_inverted", "window ends before it starts")
        if seen_before:
            raise ProtocolError("replayed", f"id {b.id} was seen before")
        if self.replay.rate_count(v.signer.key_id, now) >= v.signer.rate:
            raise ProtocolError("rate_limited", f"{v.signer.rate} per day")
        if self.pending.count() + len(self._staged) >= lim.max_pending:
            raise ProtocolError("queue_full", f"{lim.max_pending} pending")
        # Accept: claim the id (persistent), then write the pending file.
        keep_until = max(expires, now + DUPLICATE_WINDOW) + lim.max_clock_skew
        if not self.replay.record(b.id, v.digest, v.signer.key_id, now, keep_until):
            raise ProtocolError("replayed", f"id {b.id} was seen before")
        try:
            self._staged.append(self.pending.add(v, now, staged=True))
        except FileExistsError:
            raise ProtocolError("replayed", f"id {b.id} is already pending") from None
        except OSError:
            self.replay.forget(b.id)
            raise

    def _check_audience(self, v: VerifiedRequest) -> None:
        b = v.body
        if b.device_id is not None:
            if b.device_id != self.device_id:
                raise ProtocolError("wrong_audience", "addressed to another device")
            return
        area = b.area
        assert area is not None
        if self.location is None:
            raise ProtocolError("wrong_audience", "area request, but this device has no location configured")
        if not geo.in_circle(self.location.lat, self.location.lon, area.lat, area.lon, area.radius_m):
            raise ProtocolError("outside_area", "the device is not inside the requested circle")

    # -- duplicates ----------------------------------------------------------------------------

    def _is_duplicate(self, v: VerifiedRequest, now: float, row: SeenRow | None) -> bool:
        first = self._recent.get(v.digest)
        if first is not None and now - first <= DUPLICATE_WINDOW:
            return True
        return row is not None and row.digest == v.digest and now - row.first_seen <= DUPLICATE_WINDOW

    def _remember_refused(self, digest: str, now: float) -> None:
        # Refused-but-authenticated copies of the same bytes (area fan-out) are audited once.
        self._recent[digest] = now
        self._recent.move_to_end(digest)
        while len(self._recent) > 4096:
            self._recent.popitem(last=False)

    # -- audit ---------------------------------------------------------------------------------

    def _refused_unauthenticated(self, exc: ProtocolError, digest: str, size: int, topic: str | None) -> None:
        log.debug("unauthenticated message refused", extra={"reason": exc.reason, "size": size})
        if self.audit is None:
            return
        if not self._budget.take():
            self._budget.suppressed[exc.reason] = self._budget.suppressed.get(exc.reason, 0) + 1
            return
        self.flush_suppressed()
        self._audit("request.refused", reason=exc.reason, detail=exc.detail[:200], digest=digest, size=size)

    def _signer_budget(self, key_id: str) -> _AuditBudget:
        budget = self._signer_budgets.get(key_id)
        if budget is None:
            budget = self._signer_budgets[key_id] = _AuditBudget(UNAUTH_AUDIT_BURST, UNAUTH_AUDIT_PER_SECOND)
        return budget

    def _audit_duplicate(self, request_id: str, digest: str, signer: str) -> None:
        # Requests cross the broker in the clear: anyone who captured one can resend the same
        # signed bytes at will. A copy adds nothing new, so copies share the garbage budget and
        # beyond it are counted (as "duplicate") in the summary entry instead of one entry each.
        if self.audit is None:
            return
        if not self._budget.take():
            self._budget.suppressed["duplicate"] = self._budget.suppressed.get("duplicate", 0) + 1
            return
        self.flush_suppressed()
        self._audit("request.duplicate", id=request_id, digest=digest, signer=signer)

    def refuse_oversized(self, digest: str, size: int) -> Outcome:
        """A payload the intake would not even queue (see ConsentService): audited like the others."""
        exc = ProtocolError("oversized", f"message of {size} bytes")
        with self._lock:
            self._refused_unauthenticated(exc, digest, size, None)
            self._flush_events()
        return Outcome("refused", "oversized", None, digest)

    def flush_suppressed(self) -> None:
        """Write one summary entry for refusals that were over the audit budget (if any)."""
        if self._budget.suppressed and self.audit is not None:
            counts, self._budget.suppressed = self._budget.suppressed, {}
            self._audit("request.refused_suppressed", counts=counts)
            self._flush_events()

    def _audit(self, kind: str, **data: Any) -> None:
        if self.audit is not None:
            self._events.append((kind, data))

    def _flush_events(self) -> None:
        """Audit first, then make the accepted requests visible to the owner."""
        events, self._events = self._events, []
        staged, self._staged = self._staged, []
        self.replay.commit()
        try:
            if events and self.audit is not None:
                self.audit.append_many(events)
        finally:
            # Even if the audit write failed (full disk), accepted requests are not thrown away.
            self.pending.commit(staged)

    def sweep(self) -> list[str]:
        """Housekeeping: expire pending requests (only with a synchronised clock) and prune the cache."""
        now = self._now()
        with self._lock:
            self.flush_suppressed()
            self._flush_events()
        if not self.clock_synchronised():
            return []
        self.replay.prune(now - self.limits.max_clock_skew)
        return self.pending.expire(now, self.audit)


