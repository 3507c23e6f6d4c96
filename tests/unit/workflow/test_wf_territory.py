"""Point in polygon for territory distribution: inside, outside, edges, concave shapes."""

from __future__ import annotations

import pytest

from engine.metadata.model import Target, Territory
from engine.workflow.territory import contains, territory_of

SQUARE = ((0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0))
# A "U": the notch (4..6 wide, 3..10 high) is outside.
U_SHAPE = ((0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (6.0, 10.0), (6.0, 3.0), (4.0, 3.0),
           (4.0, 10.0), (0.0, 10.0))


@pytest.mark.parametrize("point,inside", [
    ((5.0, 5.0), True), ((0.0, 5.0), True), ((10.0, 10.0), True), ((5.0, 0.0), True),
    ((-0.1, 5.0), False), ((10.1, 5.0), False), ((5.0, 10.5), False), ((11.0, 0.0), False),
])
def test_square(point: tuple[float, float], inside: bool) -> None:
    assert contains(SQUARE, point) is inside


@pytest.mark.parametrize("point,inside", [
    ((2.0, 8.0), True), ((8.0, 8.0), True), ((5.0, 2.0), True), ((5.0, 5.0), False),
    ((5.0, 9.9), False), ((4.0, 5.0), True), ((5.0, 3.0), True),
])
def test_concave(point: tuple[float, float], inside: bool) -> None:
    assert contains(U_SHAPE, point) is inside


def test_a_ray_through_a_vertex_counts_once() -> None:
    diamond = ((0.0, 5.0), (5.0, 0.0), (10.0, 5.0), (5.0, 10.0))
    assert contains(diamond, (2.0, 5.0)) is True     # the ray passes through (10, 5)
    assert contains(diamond, (-2.0, 5.0)) is False   # ...and through (0, 5) too


def test_degenerate_polygon_contains_nothing() -> None:
    assert contains(((0.0, 0.0), (1.0, 1.0)), (0.5, 0.5)) is False


def test_first_territory_by_name_wins() -> None:
    a = Territory("a_north", SQUARE, Target("department", "north"))
    b = Territory("b_all", ((-100.0, -80.0), (100.0, -80.0), (100.0, 80.0), (-100.0, 80.0)),
                  Target("user", "rep"))
    assert territory_of((a, b), lat=5.0, lng=5.0) is a
    assert territory_of((a, b), lat=50.0, lng=50.0) is b
    assert territory_of((a,), lat=50.0, lng=50.0) is None


def test_the_bounding_box_shortcut_agrees_with_the_polygon_test() -> None:
    """territory_of skips a polygon whose bounding box misses the point: the answer is the
    polygon test's for points inside, outside, on edges and corners, and just beyond."""
    shapes = (Territory("a_u", U_SHAPE, Target("user", "a")),
              Territory("b_diamond", ((20.0, 5.0), (25.0, 0.0), (30.0, 5.0), (25.0, 10.0)),
                        Target("user", "b")))
    steps = [v / 2 for v in range(-4, 65)] + [10.000001, -0.000001, 29.999999]
    for x in steps:
        for y in (-0.5, 0.0, 3.0, 5.0, 9.9, 10.0, 10.000001):
            expected = next((t for t in shapes if contains(t.polygon, (x, y))), None)
            assert territory_of(shapes, lat=y, lng=x) is expected, (x, y)
