"""Drop forecasts with several drop rules: one statement for all of them (a UNION ALL
built once per schema), the earliest rule per record, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from engine.workflow.forecast import days_until, drop_due, drop_forecast
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
    # the list badges' form: the same due times, days rounded up as ``days_left``
    due = drop_due(w.records, entity="item", ids=ids, now=now)
    assert due == {i: f.due_at for i, f in found.items()}
    assert {i: days_until(d, now) for i, d in due.items()} == \
        {i: f.days_left(now) for i, f in found.items()}
    assert days_until(due[three], now) < days_until(due[seven], now) < \
        days_until(due[fourteen], now)
    assert drop_due(w.records, entity="item", ids=[], now=now) == {}


def test_a_page_of_ids_is_one_direct_statement_without_a_transaction(
        make_rules_world: Callable[..., World]) -> None:
    """A page of ids (repeated ones too) bound as one parameter, and no Connection around
    the statement: no BEGIN or ROLLBACK for one SELECT (engine/storage/direct.py)."""
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


def test_ids_past_the_most_one_statement_takes_go_in_several(
        make_rules_world: Callable[..., World], monkeypatch: Any) -> None:
    from engine.workflow import forecast

    w = make_rules_world(rules=[UNTOUCHED, CREATED])
    held = [w.item("a1", grade="C") for _ in range(5)]
    seen: list[str] = []
    event.listen(w.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    monkeypatch.setattr(forecast, "MAX_IDS", 2)
    found = drop_forecast(w.records, entity="item", ids=[*held, held[0]], now=T0 + DAY)
    assert set(found) == set(held) and all(found[i].rule == "created" for i in held)
    assert len([s for s in seen if "item" in s]) == 3  # 2 + 2 + 1 ids: a statement each
    assert drop_forecast(w.records, entity="item", ids=[], now=T0 + DAY) == {}
