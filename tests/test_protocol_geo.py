"""Geohash cells, cover cells for area requests, haversine circles, topic names."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.protocol import geo, topics


@pytest.mark.parametrize(
    ("lat", "lon", "precision", "cell"),
    [
        (57.64911, 10.40744, 11, "u4pruydqqvj"),  # the classic geohash.org example
        (42.6, -5.6, 5, "ezs42"),
        (-25.382708, -49.265506, 11, "6gkzwgjzn82"),
        (51.5007, -0.1246, 5, "gcpuv"),
        (0.0, 0.0, 1, "s"),
        (-90.0, -180.0, 3, "000"),
        (90.0, 180.0, 3, "zzz"),
    ],
)
def test_known_vectors(lat: float, lon: float, precision: int, cell: str) -> None:
    assert geo.encode(lat, lon, precision) == cell
    lat0, lat1, lon0, lon1 = geo.bounds(cell)
    assert lat0 <= lat <= lat1 and lon0 <= lon <= lon1


def test_haversine_known_distance() -> None:
    # One degree of latitude on the mean sphere is about 111.195 km.
    assert geo.haversine_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-4)
    # London to Paris, about 343.5 km.
    assert geo.haversine_m(51.5074, -0.1278, 48.8566, 2.3522) == pytest.approx(343_500, rel=5e-3)
    assert geo.in_circle(0, 0, 0, 0.001, 112) and not geo.in_circle(0, 0, 0, 0.001, 110)


def _point_in_circle(lat: float, lon: float, radius: float, bearing: float, frac: float) -> tuple[float, float]:
    """Destination point at distance frac*radius along bearing (spherical)."""
    d = frac * radius / geo.EARTH_RADIUS_M
    p1, l1, b = math.radians(lat), math.radians(lon), math.radians(bearing)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    lon2 = (math.degrees(l2) + 540) % 360 - 180
    return math.degrees(p2), lon2


@settings(max_examples=300, deadline=None)
@given(
    st.floats(-85, 85),
    st.floats(-180, 180),
    st.integers(1, 10_000),
    st.floats(0, 360),
    st.floats(0, 0.999),
)
def test_cover_cells_contain_every_point_of_the_circle(lat, lon, radius, bearing, frac) -> None:  # type: ignore[no-untyped-def]
    cells = set(geo.cover_cells(lat, lon, radius, 5))
    plat, plon = _point_in_circle(lat, lon, radius, bearing, frac)
    assert geo.haversine_m(lat, lon, plat, plon) <= radius * 1.0001 + 0.01
    assert geo.encode(plat, plon, 5) in cells


def test_cover_cells_are_few_and_local() -> None:
    cells = geo.cover_cells(51.5007, -0.1246, 10_000, 5)
    assert 4 <= len(cells) <= 40
    small = geo.cover_cells(51.5007, -0.1246, 10, 5)
    assert small == ["gcpuv"]
    # A circle across the antimeridian covers cells on both sides.
    across = geo.cover_cells(0.0, 179.99, 5000, 5)
    assert {c[0] for c in across} >= {"x", "8"}


def test_device_subscription_covers_the_area_topics_of_its_own_location() -> None:
    lat, lon = 51.5007, -0.1246
    for precision in range(1, 6):
        sub = topics.area_subscription("consentcam/v1", lat, lon, precision)
        prefix = sub[:-1]  # strip '#'
        own = topics.area_topic("consentcam/v1", geo.encode(lat, lon, 5))
        assert own.startswith(prefix)
        assert sub.count("/") == 3 + precision  # consentcam/v1/area/ + one level per character + #
    assert topics.area_subscription("consentcam/v1", lat, lon, 4) == "consentcam/v1/area/g/c/p/u/#"


def test_topic_names_reject_unsafe_parts() -> None:
    assert topics.device_topic("consentcam/v1", "ccabc") == "consentcam/v1/device/ccabc/request"
    assert topics.inbox_topic("r", "police-north", "REQ-00001") == "r/inbox/police-north/REQ-00001"
    for bad in ("a/b", "#", "+", ""):
        with pytest.raises(ValueError):
            topics.device_topic("consentcam/v1", bad)
    with pytest.raises(ValueError):
        topics.area_topic("consentcam/v1", "gcpu")  # area topics are always precision 5
    with pytest.raises(ValueError):
        topics.check_root("consentcam/#")


def test_cover_cells_refuse_an_unbounded_fan_out_near_the_poles() -> None:
    assert len(geo.cover_cells(85.0, 0.0, 10_000, 5)) <= geo.MAX_COVER_CELLS
    with pytest.raises(ValueError, match="smaller radius"):
        geo.cover_cells(89.99, 0.0, 10_000, 5)
