"""Helpers for the device-side protocol tests: keys, request bodies, a Verifier on real files."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import clock
from edge.audit import AuditLog, read_entries
from edge.config import Location
from edge.protocol.pending import PendingQueue
from edge.protocol.replay import ReplayStore
from edge.protocol.request import Area, RequestBody, Requester, encode_request
from edge.protocol.trust import TrustEntry, TrustStore
from edge.protocol.verifier import Limits, Verifier
from edge.signing import encode_public

NOW = 1_795_000_000.0  # a fixed "now" (2026-11-19) for deterministic time checks
DEVICE_ID = "cctestdevice0001"
HOME = Location(lat=51.5007, lon=-0.1246)
RECIPIENT = str(pyrage.x25519.Identity.generate().to_public())


def body(**over: Any) -> RequestBody:
    """A request valid at NOW for DEVICE_ID; keyword overrides change one thing at a time."""
    base = dict(
        id="REQ-0000-test",
        issued=clock.iso(NOW - 60),
        expires=clock.iso(NOW + 86400),
        audience=DEVICE_ID,
        window_start=clock.iso(NOW - 7200),
        window_end=clock.iso(NOW - 3600),
        case="CASE-1",
        reason="burglary next door",
        requester=Requester("Det. Example", "Example Police", "det@example.org"),
        recipient=RECIPIENT,
        inbox="police-north",
    )
    base.update(over)
    return RequestBody(**base)  # type: ignore[arg-type]


def area(lat: float = HOME.lat, lon: float = HOME.lon, radius_m: int = 500) -> Area:
    return Area(lat, lon, radius_m)


def entry(key: Ed25519PrivateKey, name: str = "police", max_window: float = 43200, rate: int = 1000) -> TrustEntry:
    return TrustEntry.create(name, encode_public(key), max_window, rate)


@dataclass
class Rig:
    """A Verifier over real files in ``root`` with a settable clock."""

    root: Path
    key: Ed25519PrivateKey
    verifier: Verifier
    audit: AuditLog
    now: list[float]

    def send(self, b: RequestBody, key: Ed25519PrivateKey | None = None) -> Any:
        return self.verifier.process(encode_request(b, key or self.key))

    def audit_entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [e for e in read_entries(self.audit.directory) if kind is None or e["kind"] == kind]

    def pending_ids(self) -> list[str]:
        return [p.id for p in self.verifier.pending.list()]


def make_rig(root: Path, *, key: Ed25519PrivateKey | None = None, limits: Limits | None = None,
             synced: bool = True, location: Location | None = HOME, trust: list[TrustEntry] | None = None,
             device_key: Ed25519PrivateKey | None = None) -> Rig:
    key = key or Ed25519PrivateKey.generate()
    now = [NOW]
    audit = AuditLog(root / "audit", device_key or Ed25519PrivateKey.generate())
    store = TrustStore(trust if trust is not None else [entry(key)], root / "trust.json")
    store.save()
    v = Verifier(
        trust=store,
        replay=ReplayStore(root / "requests" / "replay.sqlite"),
        pending=PendingQueue(root / "requests"),
        audit=audit,
        device_id=DEVICE_ID,
        location=location,
        limits=limits or Limits(),
        clock_ok=lambda: synced,
        now=lambda: now[0],
    )
    return Rig(root, key, v, audit, now)


def replace(b: RequestBody, **over: Any) -> RequestBody:
    return dataclasses.replace(b, **over)


def process_in_new_process(root: Path, message: bytes, now: float, timeout: float = 60) -> dict[str, Any]:
    """Run the verifier over ``root``'s files in a fresh Python process (a daemon restart)."""
    import json
    import subprocess
    import sys

    msg = root / "message.bin"
    msg.write_bytes(message)
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey\n"
        "from edge.audit import AuditLog\n"
        "from edge.protocol.pending import PendingQueue\n"
        "from edge.protocol.replay import ReplayStore\n"
        "from edge.protocol.trust import TrustStore\n"
        "from edge.protocol.verifier import Limits, Verifier\n"
        "from tests.protocol_support import DEVICE_ID, HOME\n"
        "root, now = Path(sys.argv[1]), float(sys.argv[2])\n"
        "v = Verifier(trust=TrustStore.load(root / 'trust.json'),\n"
        "    replay=ReplayStore(root / 'requests' / 'replay.sqlite'), pending=PendingQueue(root / 'requests'),\n"
        "    audit=AuditLog(root / 'audit', Ed25519PrivateKey.generate()), device_id=DEVICE_ID, location=HOME,\n"
        "    limits=Limits(), clock_ok=lambda: True, now=lambda: now)\n"
        "o = v.process((root / 'message.bin').read_bytes())\n"
        "print(json.dumps({'status': o.status, 'reason': o.reason}))\n"
    )
    repo = Path(__file__).resolve().parent.parent
    res = subprocess.run([sys.executable, "-c", code, str(root), repr(now)], capture_output=True, text=True,
                         timeout=timeout, cwd=repo)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)
