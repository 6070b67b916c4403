#!/usr/bin/env python3
"""Request intake throughput: signed requests verified and queued per second (prints JSON).

The device-side fast path the protocol benchmark (bench/protocol.py) can call:
``measure(n) -> dict``. Each request goes through ``Verifier.process`` exactly as the daemon's
worker runs it: one Ed25519 verify, one strict JSON parse, the replay/rate lookups and one
SQLite transaction (WAL, synchronous=NORMAL), one pending file, and (unless ``audit=False``)
one audit-log entry with its signed head. Also measured: a flood of bad-signature messages
(the path an attacker can drive) and parse-only cost.

    .venv/bin/python bench/protocol_intake.py [--n 3000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import clock
from edge.audit import AuditLog
from edge.protocol.pending import PendingQueue
from edge.protocol.replay import ReplayStore
from edge.protocol.request import RequestBody, Requester, encode_request, parse_request
from edge.protocol.service import BATCH
from edge.protocol.trust import TrustEntry, TrustStore
from edge.protocol.verifier import Limits, Verifier
from edge.signing import encode_public

DEVICE_ID = "ccbenchdevice001"


def _messages(key: Ed25519PrivateKey, n: int, prefix: str) -> list[bytes]:
    now = clock.now()
    recipient = str(pyrage.x25519.Identity.generate().to_public())
    out = []
    for i in range(n):
        body = RequestBody(
            id=f"{prefix}{i:010d}", issued=clock.iso(now), expires=clock.iso(now + 3600), audience=DEVICE_ID,
            window_start=clock.iso(now - 7200), window_end=clock.iso(now - 3600), case="BENCH-1",
            reason="benchmark", requester=Requester("Bench", "Bench Org", "bench@example.org"),
            recipient=recipient, inbox="bench",
        )
        out.append(encode_request(body, key))
    return out


def _verifier(root: Path, store: TrustStore, *, audit: bool, n: int) -> Verifier:
    return Verifier(
        trust=store,
        replay=ReplayStore(root / "requests" / "replay.sqlite"),
        pending=PendingQueue(root / "requests"),
        audit=AuditLog(root / "audit", Ed25519PrivateKey.generate()) if audit else None,
        device_id=DEVICE_ID,
        location=None,
        limits=Limits(max_pending=max(50, n + 10)),
        clock_ok=lambda: True,
    )


def measure(n: int = 3000, *, audit: bool = True, batch: int = BATCH, directory: Path | None = None) -> dict:
    """Verify and queue ``n`` fresh signed requests; returns requests/s and per-request microseconds.

    ``batch`` > 1 processes them as the daemon's worker does under load (``Verifier.process_many``:
    one audit fsync per batch); ``batch=1`` is one request at a time (``Verifier.process``)."""
    key = Ed25519PrivateKey.generate()
    store = TrustStore([TrustEntry.create("bench", encode_public(key), 43200, 10 * n + 100)])
    messages = _messages(key, n, "A" if audit else "B")
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        v = _verifier(Path(tmp), store, audit=audit, n=n)
        t0 = time.perf_counter()
        if batch <= 1:
            outcomes = [v.process(m) for m in messages]
        else:
            outcomes = []
            for i in range(0, n, batch):
                outcomes += v.process_many([(m, None) for m in messages[i : i + batch]])
        dt = time.perf_counter() - t0
        if not all(o.accepted for o in outcomes):
            raise RuntimeError("benchmark request refused")
        queued = v.pending.count()
        v.replay.close()
    if queued != n:
        raise RuntimeError(f"expected {n} queued, found {queued}")
    return {"requests": n, "seconds": round(dt, 4), "per_second": round(n / dt, 1),
            "us_per_request": round(dt / n * 1e6, 1), "audit": audit, "batch": batch}


def measure_flood(n: int = 5000, directory: Path | None = None) -> dict:
    """Messages with a trusted key id but a broken signature: the cheapest attack on intake."""
    key = Ed25519PrivateKey.generate()
    store = TrustStore([TrustEntry.create("bench", encode_public(key), 43200, 100)])
    good = _messages(key, 1, "F")[0]
    bad = [good[:30] + bytes([good[30] ^ (i % 255 + 1)]) + good[31:] for i in range(n)]
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        v = _verifier(Path(tmp), store, audit=True, n=10)
        t0 = time.perf_counter()
        for m in bad:
            v.process(m)
        dt = time.perf_counter() - t0
        v.replay.close()
    return {"messages": n, "per_second": round(n / dt, 1), "us_per_message": round(dt / n * 1e6, 1)}


def measure_parse(n: int = 3000) -> dict:
    key = Ed25519PrivateKey.generate()
    store = TrustStore([TrustEntry.create("bench", encode_public(key), 43200, 100)])
    messages = _messages(key, n, "P")
    t0 = time.perf_counter()
    for m in messages:
        parse_request(m, store)
    dt = time.perf_counter() - t0
    return {"requests": n, "per_second": round(n / dt, 1), "us_per_request": round(dt / n * 1e6, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--dir", type=Path, default=None, help="where the temporary state lives (default: $TMPDIR)")
    args = ap.parse_args()
    result = {
        "benchmark": "protocol_intake",
        "verified_and_queued": measure(args.n, audit=True, directory=args.dir),
        "verified_and_queued_one_at_a_time": measure(args.n, audit=True, batch=1, directory=args.dir),
        "verified_and_queued_without_audit": measure(args.n, audit=False, directory=args.dir),
        "bad_signature_flood": measure_flood(max(args.n, 1000), directory=args.dir),
        "parse_only": measure_parse(args.n),
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
