"""Batch write events, on SQLite and PostgreSQL: a rule's batch reaches the hooks that take
batches as one ``BatchEvent`` per (owner, pool) left and every other hook as the same
per-record ``WriteEvent``s as before; the ledger, feed, locks, clocks, notifications and
capacity stay exact per record."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from engine.errors import PoolLimitError
from engine.records.events import BatchEvent, Event, WriteEvent
from engine.records.transaction import Transaction
from engine.workflow.rule_runner import run_rules
from tests.integration.workflow._rules_world import DAY, T0, World

Make = Callable[..., World]

AGED = {"name": "aged", "kind": "drop", "clock": "created", "after": {"days": 7},
        "label": {"en": "Seven days old", "zh-CN": "七天"}}
BOUNCED = {"name": "bounced", "kind": "returned", "times": 1, "action": "assign_to_leader"}


def _rows(w: World, table: str, **where: Any) -> list[Any]:
    t = w.schema.system[table]
    with w.engine.connect() as conn:
        return conn.execute(select(t).where(*[t.c[k] == v for k, v in where.items()])
                            .order_by(t.c.id if "id" in t.c else t.c.record_id)).all()


def _watch(w: World) -> tuple[list[WriteEvent], list[Event]]:
    """A hook that takes no batches and one that does, both recording what they see."""
    plain: list[WriteEvent] = []
    whole: list[Event] = []

    def per_record(tx: Transaction, events: Sequence[WriteEvent]) -> None:
        plain.extend(events)

    def batched(tx: Transaction, events: Sequence[Event]) -> None:
        whole.extend(events)

    w.records.hooks.in_transaction(per_record)
    w.records.hooks.in_transaction(batched, batches=True)
    return plain, whole


def test_a_rule_batch_is_one_event_per_owner_and_per_record_for_other_hooks(
        make_rules_world: Make) -> None:
    w = make_rules_world(rules=[AGED])
    held = {"a1": [w.item("a1") for _ in range(3)], "a2": [w.item("a2") for _ in range(2)]}
    plain, whole = _watch(w)
    report = run_rules(w.records, now=T0 + 8 * DAY, batch=100)
    assert report.moved == 5
    # Per-record hooks see exactly what a per-record write gives them.
    assert sorted(e.record_id for e in plain) == sorted(held["a1"] + held["a2"])
    for event in plain:
        assert event.kind == "drop" and event.via == "rule:item_pool.aged"
        assert event.before is not None and event.after is not None
        assert event.before["owner_id"] in (w.users["a1"], w.users["a2"])
        assert (event.after["owner_id"], event.after["pool_id"]) == (None, "item_pool")
        assert event.after["version"] == event.before["version"] + 1
        assert event.after["name"] == event.before["name"] == "x"
    # The batch hook sees one batch per owner left, holding that owner's records.
    batches = [e for e in whole if isinstance(e, BatchEvent)]
    assert {(e.before["owner_id"], tuple(sorted(e.record_ids))) for e in batches} == {
        (w.users[login], tuple(sorted(ids))) for login, ids in held.items()}
    assert all(e.after["owner_id"] is None and e.after["pool_id"] == "item_pool"
               for e in batches)
    # Every record: its ledger row, its feed entry naming the rule; each owner told once,
    # with the count of their records (a digest).
    for login, ids in held.items():
        for item in ids:
            (drop,) = [r for r in w.ledger(item) if r.kind == "drop"]
            assert (drop.from_owner, drop.to_owner, drop.rule) == (
                w.users[login], None, "item_pool.aged")
            assert _rows(w, "tp_activity", entity="item", record_id=item)[-1].via == \
                "rule:item_pool.aged"
        (told,) = _rows(w, "tp_notification", user_id=w.users[login], kind="taken")
        assert (told.rule, told.record_count, told.record_id, told.pool) == (
            "item_pool.aged", len(ids), min(ids), "item_pool")


def test_a_recycled_batch_loses_its_locks(make_rules_world: Make) -> None:
    w = make_rules_world()
    ids = [w.item("a1") for _ in range(3)]
    lock = w.schema.system["tp_pool_lock"]
    with w.engine.begin() as conn:
        conn.execute(insert(lock), [{"entity": "item", "record_id": i, "user_id": w.users["a1"],
                                     "pool": "item_pool", "at": T0} for i in ids[:2]])
    with w.records.transaction(w.system) as tx:
        moved = tx.reown("item", ids, owner_id=None, pool_id="item_pool", kind="recycle",
                         action=None, reason="cleanup")
    assert sorted(moved) == sorted(ids)
    assert moved[ids[0]]["owner_id"] == w.users["a1"]   # the values before, read on demand
    with w.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(lock)).scalar_one() == 0
    assert [len(w.ledger(i)) for i in ids] == [1, 1, 1]


def test_a_rule_assigning_a_batch_restarts_each_clock_and_tells_the_assignee(
        make_rules_world: Make) -> None:
    w = make_rules_world(rules=[BOUNCED])
    ids = [w.item("a1") for _ in range(3)]
    with w.records.transaction(w.system) as tx:
        tx.reown("item", ids, owner_id=None, pool_id="item_pool", kind="return", action=None)
    w.at(T0 + DAY)
    assert run_rules(w.records, now=T0 + DAY).moved == 3
    assert [w.owner(i) for i in ids] == ["lead_a"] * 3
    clocks = {r.record_id: r for r in _rows(w, "tp_record_clock", entity="item")}
    for item in ids:
        assert clocks[item].owned_at is not None and clocks[item].pool == "item_pool"
        assert w.ledger(item)[-1].kind == "assign"
        assert w.ledger(item)[-1].to_owner == w.users["lead_a"]
    (told,) = _rows(w, "tp_notification", kind="assigned", user_id=w.users["lead_a"])
    assert (told.rule, told.record_count, told.pool) == ("item_pool.bounced", 3, "item_pool")


def test_a_batch_past_the_assignees_capacity_is_refused_whole(make_rules_world: Make) -> None:
    w = make_rules_world(rules=[BOUNCED], limits={"max_held": 2})
    ids = [w.item("a1") for _ in range(2)] + [w.item("a2")]
    with w.records.transaction(w.system) as tx:
        tx.reown("item", ids, owner_id=None, pool_id="item_pool", kind="return", action=None)
    with pytest.raises(PoolLimitError):
        run_rules(w.records, now=T0 + DAY)
    assert [w.owner(i) for i in ids] == [None, None, None]
    assert all(w.ledger(i)[-1].kind == "return" for i in ids)
