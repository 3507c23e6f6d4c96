"""Drop forecasts with several drop rules: one statement for all of them (a UNION ALL
built once per schema), the earliest rule per record, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from engine.workflow.forecast import drop_forecast
from tests.integration.workflow._rules_world import DAY, T0, World
from tests.integration.workflow.test_wf_rules import UNTOUCHED

CREATED = {"name": "created", "kind": "drop", "clock": "created", "after": {"days": 3},
           "label": {"en": "Three days", "zh-CN": "三天"},
           "when": {"field": "grade", "op": "eq", "value": "C"}}


def test_the_earliest_of_several_rules_in_one_statement(
        make_rules_world: Callable[..., World]) -> None:
    w = make_rules_world(rules=[UNTOUCHED, CREATED])
    seven = w.item("a1")                  # untouched: 7 days (grade unset)
    fourteen = w.item("a1", grade="B")    # untouched, per value: 14 days
    three = w.item("a1", grade="C")       # both rules govern it: 3 days wins
    exempt = w.item("a1", grade="A")      # exempt from untouched, not graded C
    pooled = w.item(None)                 # not held: nothing drops it
    now = T0 + DAY
    seen: list[Any] = []
    event.listen(w.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    ids = [seven, fourteen, three, exempt, pooled]
    found = drop_forecast(w.records, entity="item", ids=ids, now=now)
    again = drop_forecast(w.records, entity="item", ids=ids, now=now)
    assert found == again and set(found) == {seven, fourteen, three}
    assert len([s for s in seen if "item" in s]) == 2  # one statement per call
    assert found[three].rule == "created" and round(found[three].hours_left(now)) == 48
    assert found[seven].rule == "untouched" and round(found[seven].hours_left(now)) == 6 * 24
    assert abs(found[fourteen].due_at - found[seven].due_at - timedelta(days=7)) \
        < timedelta(seconds=1)


def test_a_page_of_ids_is_one_direct_statement_without_a_transaction(
        make_rules_world: Callable[..., World]) -> None:
    """Past the smallest id slot count (16), repeated ids, and no Connection around the
    statement: no BEGIN or ROLLBACK for one SELECT (engine/storage/direct.py)."""
    w = make_rules_world(rules=[UNTOUCHED, CREATED])
    held = [w.item("a1", grade="C") for _ in range(18)]
    pooled = w.item(None)
    now = T0 + DAY
    seen: list[str] = []
    transactions: list[str] = []
    event.listen(w.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    event.listen(w.engine, "begin", lambda conn: transactions.append("begin"))
    event.listen(w.engine, "rollback", lambda conn: transactions.append("rollback"))
    found = drop_forecast(w.records, entity="item", ids=[*held, pooled, held[0]], now=now)
    assert set(found) == set(held)
    assert all(found[i].rule == "created" for i in held)
    assert len([s for s in seen if "item" in s]) == 1 and transactions == []


def test_ids_fill_the_smallest_slot_count_and_chunk_past_the_largest() -> None:
    from engine.workflow.forecast import ID_SLOTS, _chunks

    assert [(slots, len(p)) for slots, p in _chunks([3, 1, 3])] == [(ID_SLOTS[0], ID_SLOTS[0])]
    assert list(_chunks([3, 1, 3])[0][1].values())[:3] == [3, 1, 1]  # padded with the last
    many = list(range(1, ID_SLOTS[-1] + 6))
    chunks = _chunks(many)
    assert [slots for slots, _ in chunks] == [ID_SLOTS[-1], ID_SLOTS[0]]
    assert sorted({v for _, p in chunks for v in p.values()}) == many
    assert _chunks([]) == []
