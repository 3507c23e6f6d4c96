"""The pool-event ledger: written from write events, read to answer limits.

Every ownership change of a pooled record (a pool operation, a rule's drop, a
generic assignment that takes a record out of its pool) reaches the
in-transaction hook ``record_pool_events`` as a ``WriteEvent`` (or, for many records
moved alike, a ``BatchEvent``); it appends one ``tp_pool_event`` row per record in the
same transaction (a batch's rows with one INSERT ... SELECT), so the ledger can never
disagree with the records. The query helpers build the SQL that the limits
count with (engine/workflow/limits.py) and that rules read (returned N times).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, func, select

from engine.records.events import ASSIGN, POOL_KINDS, BatchEvent, Event, WriteEvent
from engine.records.transaction import Transaction
from engine.storage.fanout import among, insert_group, insert_per_record
from engine.storage.pool_tables import POOL_EVENT_TABLE, POOL_LOCK_TABLE

#: Event kinds that change who holds a record (lock/unlock do not).
OWNERSHIP_KINDS = frozenset({ASSIGN, "claim", "return", "recycle", "move", "drop"})
#: The kinds ``ledger_row`` writes a row for; ``OWNERSHIP_KINDS`` is among them.
_LEDGER_KINDS = POOL_KINDS | {ASSIGN}
RULE_PREFIX = "rule:"


def rule_of(via: str | None) -> str | None:
    """``"rule:customer_pool.no_follow_up"`` -> ``"customer_pool.no_follow_up"``."""
    if via is not None and via.startswith(RULE_PREFIX):
        return via[len(RULE_PREFIX):]
    return None


def _get(values: Any, name: str) -> Any:
    return None if values is None else values.get(name)


def ledger_row(event: WriteEvent | BatchEvent) -> dict[str, Any] | None:
    """The ledger row of one event, or None when the event is no pool event (a batch's
    row lacks ``record_id``: it is the same for each of its records)."""
    after, before = event.after, event.before
    if isinstance(event, BatchEvent):
        pooled = "pool_id" in event.after  # a batch's before holds only what it changed
    else:
        pooled = "pool_id" in (after if after is not None else before or {})
    if not pooled:
        return None
    if event.kind not in POOL_KINDS and event.kind != ASSIGN:
        return None
    pool = _get(after, "pool_id") or _get(before, "pool_id")
    if event.kind == ASSIGN and _get(before, "pool_id") is None and pool is None \
            and _get(before, "owner_id") == _get(after, "owner_id"):
        return None
    row = {"entity": event.entity, "pool": pool,
           "kind": event.kind, "actor_id": event.actor.user_id,
           "from_owner": _get(before, "owner_id"), "to_owner": _get(after, "owner_id"),
           "reason": event.reason, "rule": rule_of(event.via), "at": event.at}
    if isinstance(event, WriteEvent):
        row["record_id"] = event.record_id
    return row


def _loses_lock(event: WriteEvent | BatchEvent) -> bool:
    # A lock belongs to a holder, so a record nobody held (a claim, a placement) has
    # none: no DELETE for it (a claim is one round trip shorter).
    return event.kind in OWNERSHIP_KINDS and event.changed("owner_id") \
        and _get(event.before, "owner_id") is not None


def record_pool_events(tx: Transaction, events: Sequence[Event]) -> None:
    """In-transaction hook (takes batches): one ledger row per record of a pool event; a
    record that changes hands loses its lock (a lock belongs to the owner who set it)."""
    system = tx.service.schema.system
    ledger = system[POOL_EVENT_TABLE]
    rows: list[dict[str, Any]] = []
    moved: dict[str, list[int]] = {}
    for event in events:
        if event.kind not in _LEDGER_KINDS:
            # No ledger row and no lock to drop: a bulk create's thousands of events pass
            # without a look at their values.
            continue
        row = ledger_row(event)
        if isinstance(event, BatchEvent):
            if row is not None:  # in its place: ledger ids keep the order of the events
                insert_per_record(tx.conn, ledger, rows, source_of=tx.service.schema.table)
                rows = []
                insert_group(tx.conn, ledger, row, event.record_ids,
                             source=tx.service.schema.table(event.entity))
            if _loses_lock(event):
                moved.setdefault(event.entity, []).extend(event.record_ids)
        else:
            if row is not None:
                rows.append(row)
            if _loses_lock(event):
                moved.setdefault(event.entity, []).append(event.record_id)
    insert_per_record(tx.conn, ledger, rows, source_of=tx.service.schema.table)
    if moved:
        lock = system[POOL_LOCK_TABLE]
        # One DELETE per entity and 5000 ids (bound as one parameter): a rule run or a
        # bulk distribution moves thousands of records in one unit.
        for entity, ids in moved.items():
            for start in range(0, len(ids), 5000):
                tx.conn.execute(delete(lock).where(
                    lock.c.entity == entity, among(tx.conn, lock.c.record_id,
                                                   ids[start:start + 5000])))


# --- queries the limits and rules count with -------------------------------------------


def claims_since(ledger: Table, *, user_id: int, pool: str,
                 since: datetime) -> Any:
    """Scalar subquery: claims ``user_id`` made in ``pool`` since ``since``."""
    return (select(func.count()).select_from(ledger)
            .where(ledger.c.kind == "claim", ledger.c.to_owner == user_id,
                   ledger.c.pool == pool, ledger.c.at >= since)
            .scalar_subquery())


def lost_recently(ledger: Table, *, entity: str, record_id: Any, user_id: int,
                  since: datetime) -> ColumnElement[bool]:
    """The user gave up or lost the record since ``since`` (previous-owner cooldown)."""
    return (select(ledger.c.id)
            .where(ledger.c.entity == entity, ledger.c.record_id == record_id,
                   ledger.c.from_owner == user_id,
                   ledger.c.to_owner.is_(None) | (ledger.c.to_owner != user_id),
                   ledger.c.at >= since)
            .exists())


def entered_pool_at(ledger: Table, *, entity: str, record_id: Any, pool: str) -> Any:
    """Scalar subquery: when the record last entered ``pool`` per the ledger (NULL: never)."""
    return (select(func.max(ledger.c.at))
            .where(ledger.c.entity == entity, ledger.c.record_id == record_id,
                   ledger.c.pool == pool, ledger.c.to_owner.is_(None),
                   ledger.c.kind.in_(("return", "recycle", "move", "drop", "assign")))
            .scalar_subquery())


def times_returned(ledger: Table, *, entity: str, record_id: Any) -> Any:
    """Scalar subquery: how often the record went back to a pool (return, recycle, drop)."""
    return (select(func.count()).select_from(ledger)
            .where(and_(ledger.c.entity == entity, ledger.c.record_id == record_id,
                        ledger.c.kind.in_(("return", "recycle", "drop"))))
            .scalar_subquery())
