"""``capped_group_counts`` on SQLite and PostgreSQL: exact below the cap, "cap or more"
with no sums past it, and only the rows the actor may read (kanban heads, issue 13)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import QueryError
from engine.records import ListQuery
from tests.integration.records import test_rec_stages_access as stages
from tests.integration.records.test_rec_stages_access import World, _ticket, cny

# The ticket pipeline, its agents (own scope) and viewer (all), on both databases.
schema = stages.schema
world = stages.world


def test_counts_stop_at_the_cap_and_drop_the_total_there(world: World) -> None:
    for amount in ("1", "2", "3"):
        _ticket(world, "a1", estimate=cny(amount))
    _ticket(world, "a1", stage="parked", estimate=cny("5"))
    svc, viewer = world.service, world.actors["v"]
    keys = ["new", "parked", "triage"]
    exact = svc.capped_group_counts(viewer, "ticket", "stage", keys, cap=3,
                                    sum_field="estimate")
    assert [(g.key, g.count, g.capped, g.sums) for g in exact] == [
        ("new", 3, False, {"CNY": Decimal(6)}), ("parked", 1, False, {"CNY": Decimal(5)}),
        ("triage", 0, False, {})]
    capped = svc.capped_group_counts(viewer, "ticket", "stage", keys, cap=2,
                                     sum_field="estimate")
    assert [(g.key, g.count, g.capped, g.sums) for g in capped] == [
        ("new", 2, True, {}), ("parked", 1, False, {"CNY": Decimal(5)}),
        ("triage", 0, False, {})]
    searched = svc.capped_group_counts(viewer, "ticket", "stage", ["new"], cap=2,
                                       filters=ListQuery(search="nobody"))
    assert (searched[0].count, searched[0].capped) == (0, False)


def test_capped_counts_never_include_rows_the_actor_cannot_read(world: World) -> None:
    for _ in range(3):
        _ticket(world, "a2", estimate=cny("9"))
    _ticket(world, "a1", estimate=cny("4"))
    svc = world.service
    mine = svc.capped_group_counts(world.actors["a1"], "ticket", "stage", ["new"], cap=2,
                                   sum_field="estimate")
    assert (mine[0].count, mine[0].capped, mine[0].sums) == (1, False, {"CNY": Decimal(4)})
    # A hidden field cannot be added up, and a bad cap writes nothing and says why.
    with pytest.raises(QueryError):
        svc.capped_group_counts(world.actors["a1"], "ticket", "stage", ["new"],
                                sum_field="hours")
    with pytest.raises(QueryError):
        svc.capped_group_counts(world.actors["v"], "ticket", "stage", ["new"], cap=0)
