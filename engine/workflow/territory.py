"""Point in polygon: which geo-fenced territory a record's geo point falls in.

Done in Python rather than SQL: the polygons are metadata (a handful per pool,
each at most 1000 corners) and a record is placed once, when it is created, so
one crossing-number test per polygon is cheap and gives the same answer on
SQLite and PostgreSQL without a spatial extension. Coordinates are treated as
planar (longitude as x, latitude as y), which is what a sales territory drawn
on a map over a city or a province means; polygons across the 180th meridian
are not supported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.metadata.model import Territory

Point = tuple[float, float]


def _on_segment(p: Point, a: Point, b: Point) -> bool:
    (x, y), (x1, y1), (x2, y2) = p, a, b
    cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
    if abs(cross) > 1e-12:
        return False
    return min(x1, x2) <= x <= max(x1, x2) and min(y1, y2) <= y <= max(y1, y2)


def contains(polygon: Sequence[Point], point: Point) -> bool:
    """Whether ``point`` (lng, lat) lies inside ``polygon`` or on its edge."""
    n = len(polygon)
    if n < 3:
        return False
    x, y = point
    inside = False
    for i in range(n):
        a, b = polygon[i], polygon[(i + 1) % n]
        (x1, y1), (x2, y2) = a, b
        # Only an edge spanning the point's y can hold it: the cheap test first keeps
        # the exact one for a few edges (a bulk create places thousands of records).
        if (y1 <= y <= y2 or y2 <= y <= y1) and _on_segment(point, a, b):
            return True
        # Count crossings of the ray to the right of the point (half-open in y,
        # so a vertex on the ray is counted once).
        if (y1 > y) != (y2 > y):
            x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < x_cross:
                inside = not inside
    return inside


def territory_of(territories: Sequence[Territory], *, lat: float, lng: float) -> Territory | None:
    """The first territory (by name, as declared order is sorted) containing the point.

    A point outside a polygon's bounding box is outside the polygon (and off its edges):
    most points of a large unowned import fail that test and skip the edge walk."""
    return locator(territories)(lat, lng)


def locator(territories: Sequence[Territory]) -> Callable[[float, float], Territory | None]:
    """``territory_of`` for many points (``locate(lat, lng)``): each territory's box and
    corners are read once, when it is made, not once per point (a bulk create places
    thousands of records with one locator)."""
    areas = [(*t.box, t.polygon, t) for t in territories]

    def locate(lat: float, lng: float) -> Territory | None:
        for low_x, low_y, high_x, high_y, polygon, territory in areas:
            if low_x <= lng <= high_x and low_y <= lat <= high_y \
                    and contains(polygon, (lng, lat)):
                return territory
        return None

    return locate
