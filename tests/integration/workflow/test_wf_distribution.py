"""Distribution of records created without an owner, on SQLite and PostgreSQL: round robin
with a persistent cursor, per field value, by territory; inactive users and users at
capacity skipped; unplaced records stay in the pool with the reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update

from engine.errors import ValidationError
from engine.permissions import _tables as perm_tables
from engine.storage.rule_tables import UNPLACED_TABLE
from engine.workflow.distribution import HELD_PER_STATEMENT, held_counts, unplaced_reasons
from tests.integration.workflow._rules_world import World
from tests.support.statements import statements_sent

Make = Callable[..., World]

NORTH = [[116.0, 39.5], [117.0, 39.5], [117.0, 40.5], [116.0, 40.5]]
SOUTH = [[113.0, 22.5], [114.5, 22.5], [114.5, 23.5], [113.0, 23.5]]


def _unplaced(w: World, item_id: int) -> str:
    with w.engine.connect() as conn:
        found = unplaced_reasons(conn, w.schema.system, entity="item", ids=[item_id])
    return found[item_id][0] if item_id in found else ""


def test_round_robin_in_turn_skipping_inactive_users(make_rules_world: Make) -> None:
    w = make_rules_world(distribution={"mode": "round_robin", "team": {"department": "team_a"}})
    first = [w.owner(w.item(None)) for _ in range(4)]
    assert first == ["a1", "a2", "a3", "a1"]
    with w.engine.begin() as conn:
        conn.execute(update(perm_tables.user).where(perm_tables.user.c.id == w.users["a3"])
                     .values(active=False))
    assert [w.owner(w.item(None)) for _ in range(3)] == ["a2", "a1", "a2"]
    item = w.item(None)
    (entry,) = [e for e in w.ledger(item) if e.kind == "assign"]
    assert entry.to_owner == w.users["a1"] and "round robin" in entry.reason
    # A record created with an owner keeps it.
    assert w.owner(w.item("b1")) == "b1"


def test_capacity_is_respected_and_unplaced_records_stay_in_the_pool(
        make_rules_world: Make) -> None:
    w = make_rules_world(distribution={"mode": "round_robin"}, limits={"max_held": 1})
    w.item("a2")                                   # a2 is full already
    placed = [w.owner(w.item(None)) for _ in range(2)]
    assert placed == ["a1", "a3"]                  # the pool's members: team_a
    left = w.item(None)
    row = w.row(left)
    assert (row.owner_id, row.pool_id) == (None, "item_pool")
    assert "max_held" in _unplaced(w, left)


def test_by_field_value(make_rules_world: Make) -> None:
    w = make_rules_world(distribution={"mode": "by_field", "field": "channel", "targets": {
        "web": {"department": "team_b"}, "fair": {"user": "a3"}}})
    assert w.owner(w.item(None, channel="web")) == "b1"
    assert w.owner(w.item(None, channel="fair")) == "a3"
    other = w.item(None, channel="other")
    assert w.owner(other) is None and w.row(other).pool_id == "item_pool"
    assert "no distribution target for channel='other'" in _unplaced(w, other)


def test_by_territory(make_rules_world: Make) -> None:
    w = make_rules_world(distribution={"mode": "territory", "field": "spot", "territories": {
        "north": {"polygon": NORTH, "target": {"department": "team_a"}},
        "south": {"polygon": SOUTH, "target": {"user": "b1"}}}})
    assert w.owner(w.item(None, spot={"lat": 39.9, "lng": 116.4})) == "a1"
    assert w.owner(w.item(None, spot={"lat": 23.1, "lng": 113.3})) == "b1"
    outside = w.item(None, spot={"lat": 31.2, "lng": 121.5})
    nowhere = w.item(None)
    assert (w.owner(outside), w.owner(nowhere)) == (None, None)
    assert "outside every territory" in _unplaced(w, outside)
    assert "no spot" in _unplaced(w, nowhere)


def test_a_bulk_create_by_territory_keeps_each_records_own_reason(make_rules_world: Make) -> None:
    """Each record a bulk create leaves in the pool keeps the reason naming its own point
    (as stored: an integer latitude is a float), the others are placed in the same batch."""
    w = make_rules_world(distribution={"mode": "territory", "field": "spot", "territories": {
        "north": {"polygon": NORTH, "target": {"department": "team_a"}}}})
    spots: list[Any] = [{"lat": 31.2, "lng": 121.5}, {"lat": 39.9, "lng": 116.4},
                        {"lat": 30, "lng": 120.25}, None, {"lat": 22.123456, "lng": 100.0}]
    with w.records.transaction(w.system) as tx:
        ids = tx.bulk_create("item", [{"name": f"n{i}", "owner_id": None, "spot": spot}
                                      for i, spot in enumerate(spots)])
    assert [_unplaced(w, i) for i in ids] == [
        "spot (31.2, 121.5) lies outside every territory", "",
        "spot (30.0, 120.25) lies outside every territory",
        "no spot to locate the record in a territory",
        "spot (22.123456, 100.0) lies outside every territory"]
    assert [w.owner(i) for i in ids] == [None, "a1", None, None, None]
    assert {w.row(i).pool_id for i in ids if i != ids[1]} == {"item_pool"}


def test_unknown_targets_leave_the_reason(make_rules_world: Make) -> None:
    w = make_rules_world(distribution={"mode": "by_field", "field": "channel", "targets": {
        "web": {"department": "no_such_team"}, "fair": {"user": "nobody"}}})
    web = w.item(None, channel="web")
    fair = w.item(None, channel="fair")
    assert "no department no_such_team" in _unplaced(w, web)
    assert "user nobody does not exist or is inactive" in _unplaced(w, fair)
    assert UNPLACED_TABLE in w.schema.system


def test_a_bulk_create_is_placed_as_one_batch(make_rules_world: Make) -> None:
    w = make_rules_world(distribution={"mode": "round_robin"}, limits={"max_held": 3})
    with w.records.transaction(w.system) as tx:
        ids = tx.bulk_create("item", [{"name": f"n{i}", "owner_id": None} for i in range(11)])
    owners = [w.owner(i) for i in ids]
    assert owners[:9] == ["a1", "a2", "a3"] * 3
    assert owners[9:] == [None, None]
    assert all(w.row(i).pool_id == "item_pool" for i in ids[9:])
    # The cursor persisted: after a1 gives one record back, the next goes to a1 again
    # (the only one with room), then nobody.
    w.records.assign(w.system, "item", ids[0], None)
    assert [w.owner(w.item(None)) for _ in range(2)] == ["a1", None]


def test_without_distribution_unowned_records_enter_the_pool(make_rules_world: Make) -> None:
    w = make_rules_world()
    item = w.item(None)
    assert (w.row(item).owner_id, w.row(item).pool_id) == (None, "item_pool")
    assert _unplaced(w, item) == ""


def test_capacity_counts_like_a_claim_does(make_rules_world: Make) -> None:
    """held_excludes: records matching it do not count to max_held, for pushes too."""
    w = make_rules_world(distribution={"mode": "round_robin"}, limits={
        "max_held": 1, "held_excludes": [{"field": "grade", "op": "eq", "value": "A"}]})
    w.item("a1", grade="A")                         # does not count
    w.item("a2", grade="B")                         # counts: a2 is full
    assert [w.owner(w.item(None)) for _ in range(3)] == ["a1", "a3", None]


def test_a_bulk_create_is_placed_before_its_rows_are_written(make_rules_world: Make) -> None:
    """Placement is decided before the insert: a record left in the pool is created there
    (its create event says so, and it is written once: version 1), a record given to a
    user is created unowned and then assigned, in that order, with the reason."""
    w = make_rules_world(distribution={"mode": "round_robin"}, limits={"max_held": 1})
    seen: list[Any] = []
    w.records.hooks.in_transaction(lambda tx, events: seen.extend(events))
    with w.records.transaction(w.system) as tx:
        ids = tx.bulk_create("item", [{"name": f"n{i}", "owner_id": None} for i in range(5)])
    creates = {e.record_id: e for e in seen if e.kind == "create"}
    assigns = [e for e in seen if e.kind == "assign"]
    assert [w.owner(i) for i in ids] == ["a1", "a2", "a3", None, None]
    for i in ids[3:]:
        assert creates[i].after is not None and creates[i].after["pool_id"] == "item_pool"
        assert (w.row(i).version, w.row(i).pool_id) == (1, "item_pool")
        assert "max_held" in _unplaced(w, i)
    assert sorted(e.record_id for e in assigns) == ids[:3]
    assert max(seen.index(e) for e in creates.values()) < min(seen.index(e) for e in assigns)
    for i in ids[:3]:
        assert creates[i].after is not None and creates[i].after["owner_id"] is None
        (entry,) = [e for e in w.ledger(i) if e.kind == "assign"]
        assert "round robin" in entry.reason and _unplaced(w, i) == ""


def test_a_unit_rolled_back_leaves_no_placement(make_rules_world: Make) -> None:
    """All or nothing: placements (cursor, owners, pool, reasons) roll back with the unit,
    so the next record goes to the first user in turn again."""
    w = make_rules_world(distribution={"mode": "round_robin"}, limits={"max_held": 1})
    with pytest.raises(ValidationError), w.records.transaction(w.system) as tx:
        ids = tx.bulk_create("item", [{"name": f"n{i}", "owner_id": None} for i in range(4)])
        raise ValidationError("item", {"name": "refused after the insert"})
    table = w.schema.table("item")
    with w.engine.connect() as conn:
        assert conn.execute(select(table.c.id).where(table.c.id.in_(ids))).all() == []
    assert all(_unplaced(w, i) == "" for i in ids)
    assert w.owner(w.item(None)) == "a1"


def test_held_counts_stop_at_the_cap(make_rules_world: Make) -> None:
    """A candidate's count stops at max_held (one LIMITed subquery per user, not a count of
    everything held): a rep holding thousands cost a bulk create a full count per batch.
    Placements are the same: a user at the cap has no room however many more they hold."""
    w = make_rules_world(distribution={"mode": "round_robin"}, limits={"max_held": 2})
    with w.records.transaction(w.system) as tx:
        tx.bulk_create("item", [{"name": f"n{i}", "owner_id": w.users["a1"]} for i in range(5)])
    w.item("a2")
    table = w.schema.table("item")
    pool = w.schema.registry.pools["item_pool"]
    users = sorted(w.users[u] for u in ("a1", "a2", "a3"))
    with statements_sent(w.engine) as seen, w.engine.connect() as conn:
        held = held_counts(conn, w.schema.registry, table, pool, users, cap=2)
    assert held == {w.users["a1"]: 2, w.users["a2"]: 1}
    (counted,) = [s for s, _ in seen if s.lstrip().upper().startswith("SELECT")]
    assert "LIMIT" in counted.upper()
    # Each user's id is written in, so PostgreSQL plans each count for its user (a plan
    # shared by every user scanned the whole table for one holding nothing).
    for user in users:
        assert re.search(rf"owner_id = {user}\b", counted), counted
    assert [w.owner(w.item(None)) for _ in range(2)] == ["a2", "a3"]


def test_held_counts_are_one_statement_per_two_hundred_users(make_rules_world: Make) -> None:
    """Many candidates are counted in statements of at most HELD_PER_STATEMENT users
    (SQLite refuses a UNION of more than 500 SELECTs), with the same counts."""
    w = make_rules_world(distribution={"mode": "round_robin"}, limits={"max_held": 2})
    w.item("a2")
    table = w.schema.table("item")
    pool = w.schema.registry.pools["item_pool"]
    many = [w.users["a2"], *range(10_000_000, 10_000_000 + 2 * HELD_PER_STATEMENT)]
    with statements_sent(w.engine) as seen, w.engine.connect() as conn:
        held = held_counts(conn, w.schema.registry, table, pool, many, cap=2)
    assert held == {w.users["a2"]: 1}
    assert len([s for s, _ in seen if s.lstrip().upper().startswith("SELECT")]) == 3


def test_a_batch_given_away_is_found_by_id_not_by_owner(make_rules_world: Make) -> None:
    """The give-away UPDATE (``tx.reown``) keeps its guards in one CASE beside the ids:
    SQLite looks the rows up by primary key instead of walking the owner index over
    every unowned record (a pool of tens of thousands after a few bulk creates)."""
    w = make_rules_world(distribution={"mode": "by_field", "field": "channel",
                                       "targets": {"web": {"user": "a1"}}})
    with w.records.transaction(w.system) as tx:
        tx.bulk_create("item", [{"name": f"p{i}", "owner_id": None} for i in range(100)])
    with statements_sent(w.engine) as seen, w.records.transaction(w.system) as tx:
        ids = tx.bulk_create("item", [{"name": f"n{i}", "owner_id": None, "channel": "web"}
                                      for i in range(80)])
    assert {w.owner(i) for i in ids} == {"a1"}
    (statement, parameters), = [(s, p) for s, p in seen
                                if s.lstrip().upper().startswith("UPDATE ITEM")]
    if w.engine.dialect.name == "sqlite":
        with w.engine.connect() as conn:
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters))
        assert "PRIMARY KEY" in plan and "INDEX ix_item" not in plan, plan
    where = statement[statement.upper().index(" WHERE "):]
    ids_part, guards = where.split(" AND CASE WHEN ")   # the ids, then the guards' CASE
    assert "owner_id" not in ids_part and "owner_id IS NULL" in guards


def test_a_territory_batch_reads_the_territories_once(make_rules_world: Make,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A bulk create in territory mode locates its records with one locator per batch and
    works out each territory's target once: no per-record walk through the pool's
    distribution (``target_of``), the same owners and reasons."""
    from engine.workflow import distribution

    w = make_rules_world(distribution={"mode": "territory", "field": "spot", "territories": {
        "north": {"polygon": NORTH, "target": {"department": "team_a"}},
        "south": {"polygon": SOUTH, "target": {"user": "b1"}}}}, limits={"max_held": 2})
    calls: list[Any] = []
    target_of = distribution.target_of

    def counting(*args: Any) -> Any:
        calls.append(args)
        return target_of(*args)

    monkeypatch.setattr(distribution, "target_of", counting)
    spots: list[Any] = [{"lat": 39.9, "lng": 116.4}] * 7 + [{"lat": 23.1, "lng": 113.3}] * 3 \
        + [{"lat": 31.2, "lng": 121.5}, None]
    with w.records.transaction(w.system) as tx:
        ids = tx.bulk_create("item", [{"name": f"n{i}", "owner_id": None, "spot": spot}
                                      for i, spot in enumerate(spots)])
    assert calls == []
    assert [w.owner(i) for i in ids] == ["a1", "a2", "a3"] * 2 + [None] + ["b1"] * 2 + [None] * 3
    assert [e.reason for i in ids[:2] for e in w.ledger(i)] \
        == ["distributed: territory north -> department team_a"] * 2
    assert [_unplaced(w, i) for i in ids[6:7] + ids[9:]] == [
        "territory north -> department team_a: every candidate holds 2 records (max_held)",
        "territory south -> user b1: every candidate holds 2 records (max_held)",
        "spot (31.2, 121.5) lies outside every territory",
        "no spot to locate the record in a territory"]
