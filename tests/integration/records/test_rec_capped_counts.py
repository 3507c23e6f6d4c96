"""``capped_group_counts`` on SQLite and PostgreSQL: exact below the cap, "cap or more"
with no sums past it, and only the rows the actor may read (kanban heads, issue 13)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import event

from engine.errors import QueryError
from engine.records import ListQuery, aggregate
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


def test_the_keys_are_counted_in_one_statement_per_chunk_with_the_same_results(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A board's heads are one UNION ALL round trip (``KEYS_PER_STATEMENT`` keys each),
    every key still bounded by its own LIMIT: chunked or not, the same groups."""
    for amount in ("1", "2"):
        _ticket(world, "a1", estimate=cny(amount))
    _ticket(world, "a2", stage="parked", estimate=cny("5"))
    svc, viewer = world.service, world.actors["v"]
    keys = ["new", "parked", "triage", "new", "nowhere"]
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "FROM ticket" in statement:
            statements.append(statement)

    event.listen(svc.engine, "before_cursor_execute", count)
    try:
        whole = svc.capped_group_counts(viewer, "ticket", "stage", keys, cap=1,
                                        sum_field="estimate")
        assert len(statements) == 1 and statements[0].count("UNION ALL") == len(keys) - 1
        monkeypatch.setattr(aggregate, "KEYS_PER_STATEMENT", 2)
        statements.clear()
        chunked = svc.capped_group_counts(viewer, "ticket", "stage", keys, cap=1,
                                          sum_field="estimate")
        assert len(statements) == 3
        plain = svc.capped_group_counts(viewer, "ticket", "stage", keys, cap=5)
    finally:
        event.remove(svc.engine, "before_cursor_execute", count)
    assert chunked == whole
    assert [(g.key, g.count, g.capped, g.sums) for g in whole] == [
        ("new", 1, True, {}), ("parked", 1, False, {"CNY": Decimal(5)}),
        ("triage", 0, False, {}), ("new", 1, True, {}), ("nowhere", 0, False, {})]
    assert [(g.key, g.count, g.capped) for g in plain] == [
        ("new", 2, False), ("parked", 1, False), ("triage", 0, False), ("new", 2, False),
        ("nowhere", 0, False)]
