"""MQTT topic names of the protocol (R = config mqtt.topic_root, default ``consentcam/v1``).

- ``R/device/<device_id>/request``: requests addressed to one device.
- ``R/area/<g1>/<g2>/<g3>/<g4>/<g5>/request``: area requests, one geohash character per level,
  always at protocol precision 5. A device subscribes to ``R/area/<g1>/.../<gp>/#`` for its own
  cell at its configured precision p, so the broker learns only that coarse cell.
- ``R/inbox/<inbox>/<request_id>``: replies, derived from signed body fields only.
"""

from __future__ import annotations

import re

from edge.protocol import geo
from edge.protocol.request import DEVICE_ID_RE, ID_RE, INBOX_RE

_ROOT_RE = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")


def check_root(root: str) -> str:
    if not _ROOT_RE.fullmatch(root):
        raise ValueError(f"topic root {root!r}: use levels of letters, digits, '.', '_', '-' separated by '/'")
    return root


def device_topic(root: str, device_id: str) -> str:
    if not DEVICE_ID_RE.fullmatch(device_id):
        raise ValueError(f"device id {device_id!r} is not topic-safe")
    return f"{check_root(root)}/device/{device_id}/request"


def area_topic(root: str, cell: str) -> str:
    """Topic of one precision-5 cell, where requesters publish area requests."""
    if len(cell) != geo.PROTOCOL_PRECISION or any(c not in geo.BASE32 for c in cell):
        raise ValueError(f"area topics use precision-{geo.PROTOCOL_PRECISION} geohash cells, got {cell!r}")
    return f"{check_root(root)}/area/{'/'.join(cell)}/request"


def area_topics(root: str, lat: float, lon: float, radius_m: int) -> list[str]:
    """Every topic a requester publishes an area request to (one copy per intersecting cell)."""
    return [area_topic(root, c) for c in geo.cover_cells(lat, lon, radius_m, geo.PROTOCOL_PRECISION)]


def area_subscription(root: str, lat: float, lon: float, precision: int) -> str:
    """The device's area subscription: its own cell at its configured (coarse) precision."""
    if not 1 <= precision <= geo.PROTOCOL_PRECISION:
        raise ValueError(f"area precision must be 1..{geo.PROTOCOL_PRECISION}")
    cell = geo.encode(lat, lon, precision)
    return f"{check_root(root)}/area/{'/'.join(cell)}/#"


def inbox_topic(root: str, inbox: str, request_id: str) -> str:
    if not INBOX_RE.fullmatch(inbox) or not ID_RE.fullmatch(request_id):
        raise ValueError("inbox or request id is not topic-safe")
    return f"{check_root(root)}/inbox/{inbox}/{request_id}"
