"""The clocks pool rules measure, and the write hook that keeps them.

A pooled record's clocks live in ``tp_record_clock`` (engine/storage/rule_tables.py):

- ``owned_at``: when it last got an owner (claim, assignment, distribution);
  a record created with an owner and never reassigned has no row, and its
  creation time stands in.
- ``touched_at``: when it was last touched, i.e. a record of an entity the
  pool's ``touch`` names was created referencing it.
- ``pool``: the pool it last left, so a rule knows which pool a held record
  belongs to when an entity has several pools.

``keep_clocks`` is an in-transaction hook (registered by engine/workflow/install.py):
it sees every write event of a unit of work and upserts the rows in the same
transaction, so a clock can never disagree with the ownership it measures.

The SQL side (``clock_start``) gives, per rule clock, the instant the clock
started as a column expression over the entity table joined to its clock row;
rules compare it with cut-offs computed from the (injectable) ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Table, and_, case, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.metadata.model import Registry
from engine.records.events import CREATE, BatchEvent, Event, WriteEvent
from engine.storage.rule_tables import CLOCK_TABLE
from engine.storage.stage_tables import STAGE_HISTORY_TABLE

if TYPE_CHECKING:
    from engine.records.transaction import Transaction

CLOCKS = ("claimed", "touched", "stage_changed", "created")


def clock_start(clock: str, *, table: Table, clocks: Table, system: Mapping[str, Table],
                entity: str) -> ColumnElement[Any]:
    """When ``clock`` started for each row of ``table`` (outer-joined to ``clocks``)."""
    created = table.c.created_at
    owned = func.coalesce(clocks.c.owned_at, created)
    if clock == "created":
        return created
    if clock == "claimed":
        return owned
    if clock == "touched":
        # The later of the last touch and the claim: a record just claimed is fresh
        # for its new owner even if nobody touched it for months before.
        touched = clocks.c.touched_at
        return case((and_(touched.is_not(None), touched > owned), touched), else_=owned)
    if clock == "stage_changed":
        history = system[STAGE_HISTORY_TABLE]
        entered = (select(history.c.entered_at)
                   .where(history.c.entity == entity, history.c.record_id == table.c.id,
                          history.c.left_at.is_(None))
                   .order_by(history.c.id.desc()).limit(1).scalar_subquery())
        return func.coalesce(entered, created)
    raise ValueError(f"unknown clock {clock!r}")


def joined(table: Table, clocks: Table, entity: str) -> Any:
    """``table`` LEFT OUTER JOIN its clock rows (one per record at most)."""
    return table.outerjoin(clocks, and_(clocks.c.entity == entity,
                                        clocks.c.record_id == table.c.id))


# --- the hook -------------------------------------------------------------------------


def _upsert(conn: Connection, clocks: Table, rows: Sequence[dict[str, Any]],
            columns: Iterable[str]) -> None:
    if not rows:
        return
    make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = make(clocks)
    stmt = stmt.on_conflict_do_update(index_elements=["entity", "record_id"],
                                      set_={c: stmt.excluded[c] for c in columns})
    conn.execute(stmt, list(rows))


def touches_by_entity(registry: Registry) -> dict[str, list[tuple[str, str]]]:
    """Touching entity -> [(its reference field, the pooled entity it touches)]."""
    found: dict[str, set[tuple[str, str]]] = {}
    for pool in registry.pools.values():
        for touch in pool.touch:
            found.setdefault(touch.entity, set()).add((touch.field, pool.entity))
    return {k: sorted(v) for k, v in found.items()}


def clock_rows(events: Sequence[Event], *, pooled: frozenset[str],
               touches: Mapping[str, list[tuple[str, str]]]
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(ownership rows, touch rows) to upsert for these events (the last one per record wins)."""
    owned: dict[tuple[str, int], dict[str, Any]] = {}
    touched: dict[tuple[str, int], dict[str, Any]] = {}
    for event in events:
        # Only a new owner restarts the claimed clock: a record going back to a pool
        # carries its pool in pool_id and no rule reads its clock until it is claimed.
        if event.entity in pooled and event.kind != CREATE and event.after is not None \
                and event.after.get("owner_id") is not None and event.changed("owner_id"):
            before = event.before or {}
            after = event.after
            pool = after.get("pool_id") or before.get("pool_id")
            ids = event.record_ids if isinstance(event, BatchEvent) else (event.record_id,)
            for record_id in ids:  # a batch: the same row for each of its records
                owned[(event.entity, record_id)] = {
                    "entity": event.entity, "record_id": record_id, "owned_at": event.at,
                    "pool": pool}
        if isinstance(event, WriteEvent) and event.kind == CREATE and event.after is not None:
            for field, target in touches.get(event.entity, ()):
                ref = event.after.get(field)
                if ref is not None:
                    touched[(target, int(ref))] = {"entity": target, "record_id": int(ref),
                                                   "touched_at": event.at}
    return list(owned.values()), list(touched.values())


def keep_clocks(tx: Transaction, events: Sequence[Event]) -> None:
    """In-transaction hook (takes batches): a new owner restarts ``owned_at``; a touching
    create, ``touched_at``."""
    registry = tx.service.schema.registry
    pooled = frozenset(p.entity for p in registry.pools.values())
    touches = touches_by_entity(registry)
    if not pooled:
        return
    owned, touched = clock_rows(events, pooled=pooled, touches=touches)
    clocks = tx.service.schema.system[CLOCK_TABLE]
    # A reassignment outside any pool keeps the pool the record last left.
    _upsert(tx.conn, clocks, [r for r in owned if r["pool"] is not None], ("owned_at", "pool"))
    _upsert(tx.conn, clocks, [{k: v for k, v in r.items() if k != "pool"}
                              for r in owned if r["pool"] is None], ("owned_at",))
    _upsert(tx.conn, clocks, touched, ("touched_at",))


def last_touched(conn: Connection, clocks: Table, *, entity: str,
                 ids: Sequence[int]) -> dict[int, datetime]:
    """When each of these records was last touched (records never touched are absent)."""
    if not ids:
        return {}
    rows = conn.execute(select(clocks.c.record_id, clocks.c.touched_at)
                        .where(clocks.c.entity == entity, clocks.c.record_id.in_(list(ids)),
                               clocks.c.touched_at.is_not(None)))
    return {int(r.record_id): r.touched_at for r in rows}
