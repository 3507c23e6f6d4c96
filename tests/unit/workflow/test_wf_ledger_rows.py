"""Which write events become pool-ledger rows, and what the row says (table-driven)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.actor import Actor
from engine.records.events import KINDS, WriteEvent
from engine.workflow.ledger import _LEDGER_KINDS, OWNERSHIP_KINDS, _loses_lock, ledger_row, rule_of

AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
REP = Actor(user_id=5, login="rep")


def _event(kind: str, before: dict[str, Any] | None, after: dict[str, Any] | None, *,
           via: str | None = None, reason: str | None = None,
           actor: Actor = REP) -> WriteEvent:
    return WriteEvent(entity="item", record_id=9, kind=kind, actor=actor, before=before,
                      after=after, via=via, at=AT, reason=reason)


IN_POOL = {"owner_id": None, "pool_id": "p1"}
HELD = {"owner_id": 5, "pool_id": None}


@pytest.mark.parametrize(("event", "expected"), [
    (_event("claim", IN_POOL, HELD, reason="met them"),
     {"kind": "claim", "pool": "p1", "from_owner": None, "to_owner": 5, "actor_id": 5,
      "reason": "met them", "rule": None}),
    (_event("drop", HELD, IN_POOL, via="rule:p1.idle", actor=Actor.system(via="rule:p1.idle")),
     {"kind": "drop", "pool": "p1", "from_owner": 5, "to_owner": None, "actor_id": None,
      "reason": None, "rule": "p1.idle"}),
    (_event("assign", IN_POOL, {"owner_id": 7, "pool_id": None}),
     {"kind": "assign", "pool": "p1", "from_owner": None, "to_owner": 7}),
    (_event("assign", HELD, {"owner_id": 7, "pool_id": None}),
     {"kind": "assign", "pool": None, "from_owner": 5, "to_owner": 7}),
    (_event("lock", HELD, HELD), {"kind": "lock", "from_owner": 5, "to_owner": 5}),
])
def test_pool_events_become_rows(event: WriteEvent, expected: dict[str, Any]) -> None:
    row = ledger_row(event)
    assert row is not None
    assert {k: row[k] for k in expected} == expected
    assert (row["entity"], row["record_id"], row["at"]) == ("item", 9, AT)


@pytest.mark.parametrize("event", [
    _event("update", HELD, {**HELD, "name": "x"}),           # not an ownership change
    _event("create", None, HELD),
    _event("claim", {"owner_id": None}, {"owner_id": 5}),    # an entity without pools
    _event("assign", HELD, HELD),                             # nothing changed hands
])
def test_other_events_write_no_row(event: WriteEvent) -> None:
    assert ledger_row(event) is None


@pytest.mark.parametrize(("via", "rule"), [
    ("rule:customer_pool.no_follow_up", "customer_pool.no_follow_up"),
    ("deactivation", None), ("cli", None), (None, None)])
def test_rule_of(via: str | None, rule: str | None) -> None:
    assert rule_of(via) == rule


@pytest.mark.parametrize("kind", sorted(KINDS - _LEDGER_KINDS))
def test_kinds_the_hook_skips_never_make_a_row_nor_drop_a_lock(kind: str) -> None:
    """``record_pool_events`` passes over events of other kinds without a look at their
    values (a bulk create's thousands): none of them could have written anything."""
    assert OWNERSHIP_KINDS <= _LEDGER_KINDS
    for before, after in ((HELD, IN_POOL), (IN_POOL, HELD), (None, HELD), (HELD, None)):
        event = _event(kind, before, after)
        assert ledger_row(event) is None and not _loses_lock(event)
