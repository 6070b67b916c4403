"""Geohash cells and great-circle distances for area requests.

Area requests travel on topics named after precision-5 geohash cells (about 4.9 x 4.9 km) so the
broker learns only a coarse cell; the exact circle is tested on the device against its private
location with the haversine formula.
"""

from __future__ import annotations

import math

BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
_DECODE = {c: i for i, c in enumerate(BASE32)}
EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
PROTOCOL_PRECISION = 5
# Cover-cell tests use a rectangle approximation; this slack makes the cover a safe superset.
_COVER_SLACK_M = 50.0
_COVER_SLACK_FACTOR = 1.01


def _bits(precision: int) -> tuple[int, int]:
    """(latitude bits, longitude bits) of a geohash of this length (longitude gets the extra bit)."""
    total = 5 * precision
    return total // 2, (total + 1) // 2


def _check_precision(precision: int) -> None:
    if not 1 <= precision <= 12:
        raise ValueError("geohash precision must be 1..12")


def cell_indices(lat: float, lon: float, precision: int) -> tuple[int, int]:
    """Row and column of the cell containing (lat, lon) on the grid of this precision."""
    _check_precision(precision)
    lat_bits, lon_bits = _bits(precision)
    rows, cols = 1 << lat_bits, 1 << lon_bits
    row = min(rows - 1, max(0, int((lat + 90.0) / 180.0 * rows)))
    col = min(cols - 1, max(0, int((lon + 180.0) / 360.0 * cols)))
    return row, col


def cell_from_indices(row: int, col: int, precision: int) -> str:
    """Interleave the bits (longitude first) and spell them in geohash base32."""
    lat_bits, lon_bits = _bits(precision)
    value = 0
    li, oi = lat_bits - 1, lon_bits - 1
    for bit in range(5 * precision):
        if bit % 2 == 0:
            value = (value << 1) | ((col >> oi) & 1)
            oi -= 1
        else:
            value = (value << 1) | ((row >> li) & 1)
            li -= 1
    return "".join(BASE32[(value >> (5 * (precision - 1 - i))) & 31] for i in range(precision))


def encode(lat: float, lon: float, precision: int = PROTOCOL_PRECISION) -> str:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError("latitude must be -90..90 and longitude -180..180")
    return cell_from_indices(*cell_indices(lat, lon, precision), precision)


def bounds(cell: str) -> tuple[float, float, float, float]:
    """(lat_min, lat_max, lon_min, lon_max) of a geohash cell."""
    if not cell or any(c not in _DECODE for c in cell):
        raise ValueError(f"not a geohash: {cell!r}")
    precision = len(cell)
    _check_precision(precision)
    value = 0
    for c in cell:
        value = (value << 5) | _DECODE[c]
    row = col = 0
    for bit in range(5 * precision):
        b = (value >> (5 * precision - 1 - bit)) & 1
        if bit % 2 == 0:
            col = (col << 1) | b
        else:
            row = (row << 1) | b
    lat_bits, lon_bits = _bits(precision)
    dlat, dlon = 180.0 / (1 << lat_bits), 360.0 / (1 << lon_bits)
    return -90.0 + row * dlat, -90.0 + (row + 1) * dlat, -180.0 + col * dlon, -180.0 + (col + 1) * dlon


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def in_circle(lat: float, lon: float, centre_lat: float, centre_lon: float, radius_m: float) -> bool:
    return haversine_m(lat, lon, centre_lat, centre_lon) <= radius_m


def _nearest_distance(lat: float, lon: float, cell_bounds: tuple[float, float, float, float]) -> float:
    """Distance from a point to the nearest point of a cell (clamped, a close approximation)."""
    lat_min, lat_max, lon_min, lon_max = cell_bounds
    near_lat = min(max(lat, lat_min), lat_max)
    # Longitude wraps: measure to the cell via the shorter way round.
    if lon_min <= lon <= lon_max:
        near_lon = lon
    else:
        to_min = (lon_min - lon) % 360.0
        to_max = (lon - lon_max) % 360.0
        near_lon = lon_min if to_min < to_max else lon_max
    return haversine_m(lat, lon, near_lat, near_lon)


MAX_COVER_CELLS = 256  # one MQTT publish per cell: bound the requester's fan-out


def cover_cells(lat: float, lon: float, radius_m: float, precision: int = PROTOCOL_PRECISION,
                limit: int = MAX_COVER_CELLS) -> list[str]:
    """Every cell of this precision that intersects the circle (a safe superset), sorted.

    Raises ValueError when more than ``limit`` cells would be needed (near the poles cells are
    narrow, and a 10 km circle can touch thousands of them).
    """
    _check_precision(precision)
    lat_bits, lon_bits = _bits(precision)
    rows, cols = 1 << lat_bits, 1 << lon_bits
    dlat_cell, dlon_cell = 180.0 / rows, 360.0 / cols
    reach = radius_m * _COVER_SLACK_FACTOR + _COVER_SLACK_M
    dlat = math.degrees(reach / EARTH_RADIUS_M)
    lat_lo, lat_hi = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    widest = max(abs(lat_lo), abs(lat_hi))
    cos_w = math.cos(math.radians(widest))
    full_circle = lat_hi >= 90.0 or lat_lo <= -90.0 or cos_w <= 1e-9
    dlon = 180.0 if full_circle else min(180.0, math.degrees(reach / (EARTH_RADIUS_M * cos_w)))
    row_lo = max(0, int((lat_lo + 90.0) / dlat_cell))
    row_hi = min(rows - 1, int((lat_hi + 90.0) / dlat_cell))
    if dlon >= 180.0:
        col_list = list(range(cols))
    else:
        col_lo = math.floor((lon - dlon + 180.0) / dlon_cell)
        col_hi = math.floor((lon + dlon + 180.0) / dlon_cell)
        col_list = sorted({c % cols for c in range(col_lo, col_hi + 1)})
    candidates = (row_hi - row_lo + 1) * len(col_list)
    if candidates > 4 * limit:
        raise ValueError(f"this area would need about {candidates} area topics (limit {limit}); use a smaller radius")
    out = set()
    for row in range(row_lo, row_hi + 1):
        for col in col_list:
            cell = cell_from_indices(row, col, precision)
            if _nearest_distance(lat, lon, bounds(cell)) <= reach:
                out.add(cell)
    out.add(encode(lat, lon, precision))
    if len(out) > limit:
        raise ValueError(f"this area touches {len(out)} cells (limit {limit}); use a smaller radius")
    return sorted(out)
