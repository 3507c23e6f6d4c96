"""When a held record will drop: the "drops in N days" badge of lists and detail screens.

For a page of records, each drop rule of the record's pools is evaluated with
everything but its clock (the same compiled clause the scheduler uses, so a
record the rule exempts or does not govern gets no badge), and the clock's
start plus the rule's duration (per field value) gives the due time. The
earliest rule wins. One query per rule, bounded by the page's ids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Select,
    String,
    bindparam,
    cast,
    literal_column,
    null,
    select,
    union_all,
)

from engine.memo import GenerationMemo
from engine.metadata.model import LocalText, Pool, PoolRule
from engine.records.service import RecordService
from engine.storage.tables import StorageSchema
from engine.workflow.rules import due_at, rule_sql


@dataclass(frozen=True)
class DropForecast:
    """The first rule that will drop a record, and when."""

    pool: str
    rule: str
    label: LocalText
    due_at: datetime

    def days_left(self, now: datetime) -> int:
        """Whole days until the drop, rounded up (0: due now)."""
        return max(0, math.ceil((self.due_at - now) / timedelta(days=1)))

    def hours_left(self, now: datetime) -> float:
        return max(0.0, (self.due_at - now) / timedelta(hours=1))


@dataclass(frozen=True)
class _Forecasts:
    """The drop rules of an entity's pools and the one statement forecasting them all:
    a UNION ALL with a branch per rule (its index in ``rules`` as column ``rule``)."""

    rules: tuple[tuple[Pool, PoolRule], ...]
    statement: CompoundSelect[Any] | Select[Any] | None


#: The statements of the newest schema seen, by entity (a new schema starts over).
_built: GenerationMemo[str, _Forecasts] = GenerationMemo()


def forecast_statement(schema: StorageSchema, entity: str) -> _Forecasts:
    """The drop rules of ``entity`` and their statement, built once per schema.

    Without the clock comparison nothing in the statement depends on ``now``, so
    the same statement serves every request until the metadata changes; the page's
    ids are its ``ids`` parameter.
    """
    return _built.get(schema, entity, lambda: _forecasts(schema, entity))


def _forecasts(schema: StorageSchema, entity: str) -> _Forecasts:
    rules = tuple((pool, rule) for _, pool in sorted(schema.registry.pools.items())
                  if pool.entity == entity for rule in pool.rules if rule.kind == "drop")
    branches = [_branch(schema, entity, pool, rule, index)
                for index, (pool, rule) in enumerate(rules)]
    statement = None if not branches else branches[0] if len(branches) == 1 \
        else union_all(*branches)
    return _Forecasts(rules, statement)


def _branch(schema: StorageSchema, entity: str, pool: Pool, rule: PoolRule,
            index: int) -> Select[Any]:
    # ``now`` only feeds the clock comparison, which with_clock=False leaves out.
    sql = rule_sql(schema.registry, schema.system, schema.table(entity), pool, rule,
                   now=datetime.min, with_clock=False)
    assert sql.start is not None
    # per_value is an option value (text) when there is one: every branch has the column
    per_value = cast(sql.per_value if sql.per_value is not None else null(), String)
    return select(sql.table.c.id, sql.start.label("start"), per_value.label("per_value"),
                  literal_column(str(index)).label("rule")) \
        .select_from(sql.source) \
        .where(sql.where, sql.table.c.id.in_(bindparam("ids", expanding=True)))


def drop_forecast(records: RecordService, *, entity: str, ids: Sequence[int],
                  now: datetime) -> dict[int, DropForecast]:
    """For each of ``ids`` that a drop rule governs: the earliest drop (absent: none)."""
    if not ids or entity not in records.schema.tables:
        return {}
    forecasts = forecast_statement(records.schema, entity)
    found: dict[int, DropForecast] = {}
    if forecasts.statement is None:
        return found
    with records.engine.connect() as conn:
        rows = conn.execute(forecasts.statement, {"ids": list(ids)}).all()
    for row in rows:
        pool, rule = forecasts.rules[int(row.rule)]
        start = row.start if row.start.tzinfo else row.start.replace(tzinfo=now.tzinfo)
        due = due_at(rule, start, row.per_value)
        old = found.get(int(row.id))
        if old is None or due < old.due_at:
            found[int(row.id)] = DropForecast(pool=pool.name, rule=rule.name,
                                              label=rule.label, due_at=due)
    return found
