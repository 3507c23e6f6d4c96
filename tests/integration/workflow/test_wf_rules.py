"""Pool rules with the clock moved (time travel), on SQLite and PostgreSQL.

Every rule kind and clock: drop after touched / claimed / stage_changed /
created, durations per field value, when and exempt trees, locks, returned N
times to a leader or a role holder, inactive owners; dry run equals the real
run; warnings before a drop, once; forecasts for screens; the feed and the
ledger name the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from engine.permissions import _tables as perm_tables
from engine.workflow.forecast import drop_forecast
from engine.workflow.rule_runner import preview, run_rules
from tests.integration.workflow._rules_world import DAY, T0, World

Make = Callable[..., World]

UNTOUCHED = {"name": "untouched", "kind": "drop", "clock": "touched",
             "after": {"days": 7, "per_value": {"field": "grade", "values": {"B": 14}}},
             "warn_before_hours": 24, "label": {"en": "No visit for 7 days", "zh-CN": "7天未拜访"},
             "exempt": {"any": [{"field": "grade", "op": "eq", "value": "A"},
                                {"field": "tags", "op": "contains", "value": "key"}]}}


def _activity(world: World, item_id: int) -> list[Any]:
    table = world.schema.system["tp_activity"]
    with world.engine.connect() as conn:
        return conn.execute(select(table).where(table.c.entity == "item",
                                                table.c.record_id == item_id)
                            .order_by(table.c.id)).all()


def test_touched_clock_drops_untouched_records_only(make_rules_world: Make) -> None:
    w = make_rules_world(rules=[UNTOUCHED])
    idle = w.item("a1")
    visited = w.item("a1")
    w.at(T0 + 5 * DAY)
    w.visit(visited)                       # touches it: its clock restarts
    assert run_rules(w.records, now=T0 + 6 * DAY).moved == 0
    report = run_rules(w.records, now=T0 + 7 * DAY + timedelta(hours=1))
    assert report.moved == 1
    assert (w.owner(idle), w.row(idle).pool_id) == (None, "item_pool")
    assert w.owner(visited) == "a1"
    (drop,) = [e for e in w.ledger(idle) if e.kind == "drop"]
    assert (drop.rule, drop.from_owner, drop.to_owner) == ("item_pool.untouched",
                                                           w.users["a1"], None)
    assert [a.via for a in _activity(w, idle)][-1] == "rule:item_pool.untouched"
    # Idempotent: nothing left to move at the same instant.
    assert run_rules(w.records, now=T0 + 7 * DAY + timedelta(hours=1)).moved == 0
    assert run_rules(w.records, now=T0 + 12 * DAY + timedelta(hours=1)).moved == 1
    assert w.owner(visited) is None


def test_durations_per_value_and_exemptions(make_rules_world: Make) -> None:
    w = make_rules_world(rules=[UNTOUCHED])
    plain = w.item("a1", grade="C")
    slow = w.item("a1", grade="B")
    gold = w.item("a1", grade="A")
    key = w.item("a1", tags=["key"])
    empty = w.item("a1")                    # no grade: the main duration, not exempt
    assert run_rules(w.records, now=T0 + 8 * DAY).moved == 2
    assert {w.owner(plain), w.owner(empty)} == {None}
    assert w.owner(slow) == "a1"
    assert run_rules(w.records, now=T0 + 15 * DAY).moved == 1
    assert w.owner(slow) is None
    assert run_rules(w.records, now=T0 + 400 * DAY).moved == 0
    assert (w.owner(gold), w.owner(key)) == ("a1", "a1")


def test_locked_records_never_drop(make_rules_world: Make) -> None:
    w = make_rules_world(rules=[UNTOUCHED])
    locked = w.item("a1")
    lock = w.schema.system["tp_pool_lock"]
    with w.engine.begin() as conn:
        conn.execute(insert(lock).values(entity="item", record_id=locked, user_id=w.users["a1"],
                                         pool="item_pool", at=T0))
    assert run_rules(w.records, now=T0 + 30 * DAY).moved == 0
    assert w.owner(locked) == "a1"


def test_claimed_clock_restarts_on_reassignment(make_rules_world: Make) -> None:
    rule = {"name": "held", "kind": "drop", "clock": "claimed", "after": {"days": 10}}
    w = make_rules_world(rules=[rule])
    moved_on = w.item("a1")
    stays = w.item("a1")
    w.at(T0 + 4 * DAY)
    w.records.assign(w.system, "item", moved_on, w.users["a2"])
    w.visit(stays)                          # a touch does not restart the claimed clock
    assert run_rules(w.records, now=T0 + 11 * DAY).moved == 1
    assert (w.owner(stays), w.owner(moved_on)) == (None, "a2")
    assert run_rules(w.records, now=T0 + 14 * DAY + timedelta(hours=1)).moved == 1
    assert w.owner(moved_on) is None


def test_stage_changed_clock(make_rules_world: Make) -> None:
    w = make_rules_world(rules=[{"name": "stuck", "kind": "drop", "clock": "stage_changed",
                           "after": {"days": 5}}])
    moving = w.item("a1")
    resting = w.item("a2")
    w.at(T0 + 3 * DAY)
    record = w.records.get(w.system, "item", moving)
    w.records.move_stage(w.system, "item", moving, to="talk", version=record.version)
    w.visit(resting)                        # a touch is not a stage change
    # resting entered "new" at T0: dropped at 5 days; moving entered "talk" at 3 days.
    report = run_rules(w.records, now=T0 + 6 * DAY)
    assert (report.moved, w.owner(resting), w.owner(moving)) == (1, None, "a1")
    assert run_rules(w.records, now=T0 + 8 * DAY + timedelta(hours=1)).moved == 1
    assert w.owner(moving) is None


def test_created_clock_with_a_when_condition(make_rules_world: Make) -> None:
    rule = {"name": "old", "kind": "drop", "clock": "created", "after": {"hours": 720},
            "when": {"all": [{"field": "size", "op": "gte", "value": 100},
                             {"any": [{"field": "channel", "op": "eq", "value": "web"},
                                      {"field": "channel", "op": "is_empty"}]}]}}
    w = make_rules_world(rules=[rule])
    big = w.item("a1", size=500)
    big_fair = w.item("a1", size=500, channel="fair")
    small = w.item("a1", size=5)
    w.at(T0 + 20 * DAY)
    w.visit(big)
    w.records.assign(w.system, "item", big, w.users["a2"])  # neither restarts "created"
    assert run_rules(w.records, now=T0 + 29 * DAY).moved == 0
    assert run_rules(w.records, now=T0 + 30 * DAY + timedelta(hours=1)).moved == 1
    assert (w.owner(big), w.owner(big_fair), w.owner(small)) == (None, "a1", "a1")


def _return(w: World, item_id: int, login: str) -> None:
    """The owner gives the record back to the pool (the ledger counts it)."""
    with w.records.transaction(w.system) as tx:
        tx.reown("item", [item_id], owner_id=None, pool_id="item_pool", kind="return",
                 action=None, reason="not interested")
    assert w.owner(item_id) is None, login


def test_returned_n_times_goes_to_the_leader_then_counts_again(make_rules_world: Make) -> None:
    rule = {"name": "bounced", "kind": "returned", "times": 2, "action": "assign_to_leader"}
    w = make_rules_world(rules=[rule])
    item = w.item("a1")
    _return(w, item, "a1")
    w.records.assign(w.system, "item", item, w.users["a2"])
    assert run_rules(w.records, now=T0 + DAY).moved == 0  # held: not in the pool
    _return(w, item, "a2")
    assert run_rules(w.records, now=T0 + DAY).moved == 1
    assert w.owner(item) == "lead_a"                 # a2's department's leader
    assert w.ledger(item)[-1].rule == "item_pool.bounced"
    _return(w, item, "lead_a")
    assert run_rules(w.records, now=T0 + DAY).moved == 0  # one return since it fired


def test_returned_to_a_role_holder(make_rules_world: Make) -> None:
    rule = {"name": "bounced", "kind": "returned", "times": 1, "action": "assign_to_role",
            "role": "chief"}
    w = make_rules_world(rules=[rule])
    item = w.item("b1")
    _return(w, item, "b1")
    assert preview(w.records, now=T0)[0].record_id == item
    assert run_rules(w.records, now=T0).moved == 1
    assert w.owner(item) == "boss"


def test_inactive_owners_records_drop(make_rules_world: Make) -> None:
    w = make_rules_world(rules=[{"name": "gone", "kind": "owner_inactive"}])
    kept = w.item("a1")
    dropped = w.item("a2")
    with w.engine.begin() as conn:
        conn.execute(update(perm_tables.user).where(perm_tables.user.c.id == w.users["a2"])
                     .values(active=False))
    assert run_rules(w.records, now=T0).moved == 1
    assert (w.owner(kept), w.owner(dropped), w.row(dropped).pool_id) == ("a1", None,
                                                                         "item_pool")


def test_dry_run_lists_exactly_what_the_run_moves(make_rules_world: Make) -> None:
    w = make_rules_world(rules=[UNTOUCHED, {"name": "gone", "kind": "owner_inactive"}])
    ids = [w.item(login, grade=grade) for login, grade in
           (("a1", "C"), ("a2", "B"), ("a3", "A"), ("a1", None), ("b1", "C"))]
    w.at(T0 + 3 * DAY)
    w.visit(ids[0])
    now = T0 + 9 * DAY
    dry = run_rules(w.records, now=now, dry_run=True)
    listed = {(m.rule, m.record_id) for m in dry.moves}
    assert listed == {("untouched", ids[3]), ("untouched", ids[4])}
    (first,) = [m for m in dry.moves if m.record_id == ids[3]]
    assert first.clock == "touched" and round(first.hours or 0) == 9 * 24
    assert first.due_at == T0 + 7 * DAY + (first.clock_start - T0)  # type: ignore[operator]
    assert "untouched" in first.why() and "216.0 h" in first.why()
    assert all(w.owner(i) is not None for i in ids)   # the dry run changed nothing
    real = run_rules(w.records, now=now)
    moved = {i for i in ids if w.owner(i) is None}
    assert moved == {r for _, r in listed} and real.moved == len(listed)


def test_warnings_once_before_the_drop_and_forecasts(make_rules_world: Make) -> None:
    w = make_rules_world(rules=[UNTOUCHED])
    soon = w.item("a1")
    later = w.item("a2", grade="B")
    exempt = w.item("a3", grade="A")
    now = T0 + 6 * DAY + timedelta(hours=12)
    first = run_rules(w.records, now=now)
    assert first.moved == 0 and first.outcomes[0].warned == 1
    assert run_rules(w.records, now=now + timedelta(hours=1)).outcomes[0].warned == 0
    warnings = w.schema.system["tp_rule_warning"]
    with w.engine.connect() as conn:
        (row,) = conn.execute(select(warnings)).all()
    assert (row.record_id, row.owner_id, row.rule) == (soon, w.users["a1"], "untouched")
    forecast = drop_forecast(w.records, entity="item", ids=[soon, later, exempt], now=now)
    assert set(forecast) == {soon, later}
    assert forecast[soon].days_left(now) == 1 and forecast[later].days_left(now) == 8
    assert forecast[soon].label.get("zh-CN") == "7天未拜访"


@pytest.mark.parametrize("batch", [1, 100])
def test_one_walk_moves_the_due_and_warns_the_due_soon(make_rules_world: Make,
                                                       batch: int) -> None:
    # The run reads each record once: due now -> moved; due within the warning time ->
    # warned in the same batch (or a batch of warnings only); neither -> untouched.
    w = make_rules_world(rules=[UNTOUCHED])
    due = w.item("a1")
    w.at(T0 + DAY)
    soon = w.item("a1")
    w.at(T0 + 3 * DAY)
    calm = w.item("a2")
    now = T0 + 7 * DAY + timedelta(hours=6)
    report = run_rules(w.records, now=now, batch=batch)
    assert (report.moved, report.outcomes[0].warned) == (1, 1)
    assert (w.owner(due), w.owner(soon), w.owner(calm)) == (None, "a1", "a2")
    warnings = w.schema.system["tp_rule_warning"]
    with w.engine.connect() as conn:
        (row,) = conn.execute(select(warnings)).all()
    assert (row.record_id, row.owner_id) == (soon, w.users["a1"])
    again = run_rules(w.records, now=now + timedelta(hours=1), batch=batch)
    assert (again.moved, again.outcomes[0].warned) == (0, 0)   # told once
