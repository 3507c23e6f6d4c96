"""When a held record will drop: the "drops in N days" badge of lists and detail screens.

For a page of records, each drop rule of the record's pools is evaluated with
everything but its clock (the same compiled clause the scheduler uses, so a
record the rule exempts or does not govern gets no badge), and the clock's
start plus the rule's duration (per field value) gives the due time. The
earliest rule wins. One statement for every rule (a ``UNION ALL``), bounded by the
page's ids, run on the direct-read path (``engine/storage/direct.py``): a list page
pays for its execution, not for a ``Connection``, a ``BEGIN``/``ROLLBACK`` and
``Row`` objects around it. The ids are one bound parameter (a SQLite JSON array, a
PostgreSQL array: ``fanout.listed_values``, as ``fanout.among`` binds a long list):
a parameter per id cost more Python (binding and padding 64 slots for a page of 50)
than the statement.
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
    cast,
    literal_column,
    null,
    select,
    union_all,
)

from engine.memo import GenerationMemo
from engine.metadata.model import LocalText, Pool, PoolRule
from engine.records.service import RecordService
from engine.storage.direct import direct_rows
from engine.storage.fanout import bound_values, listed_values
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
        return days_until(self.due_at, now)

    def hours_left(self, now: datetime) -> float:
        return max(0.0, (self.due_at - now) / timedelta(hours=1))


#: The most ids one statement is given (more go in several): a page holds at most a few
#: hundred rows, and a bound keeps one bound array small.
MAX_IDS = 1024


@dataclass(frozen=True)
class _Forecasts:
    """The drop rules of an entity's pools and the one statement forecasting them all
    for the ids bound as ``ids``: a UNION ALL with a branch per rule (its index in
    ``rules`` as column ``rule``)."""

    rules: tuple[tuple[Pool, PoolRule], ...]
    statement: CompoundSelect[Any] | Select[Any] | None
    #: Each rule's duration, and its durations by field value (``due_at``'s, computed once).
    durations: tuple[tuple[timedelta, dict[Any, timedelta]], ...] = ()


_EPOCH = datetime(2000, 1, 1)
#: The statements of the newest schema seen, by (entity, dialect) (a new schema starts over).
_built: GenerationMemo[tuple[str, str], _Forecasts] = GenerationMemo()


def forecast_statement(schema: StorageSchema, entity: str, *, dialect: str) -> _Forecasts:
    """The drop rules of ``entity`` and their statement for ``dialect`` ("sqlite" or
    "postgresql": how the ids are bound), built once per schema.

    Without the clock comparison nothing in the statement depends on ``now``, so
    the same statement serves every request until the metadata changes.
    """
    return _built.get(schema, (entity, dialect), lambda: _forecasts(schema, entity, dialect))


def _forecasts(schema: StorageSchema, entity: str, dialect: str) -> _Forecasts:
    rules = tuple((pool, rule) for _, pool in sorted(schema.registry.pools.items())
                  if pool.entity == entity for rule in pool.rules if rule.kind == "drop")
    branches = [_branch(schema, entity, pool, rule, index, dialect)
                for index, (pool, rule) in enumerate(rules)]
    statement = None if not branches else branches[0] if len(branches) == 1 \
        else union_all(*branches)
    # due_at's own answers from a fixed start, so the per-row sum keeps its rules
    durations = tuple((due_at(rule, _EPOCH, None) - _EPOCH,
                       {value: due_at(rule, _EPOCH, value) - _EPOCH
                        for value, _ in (rule.after.per_value if rule.after else ())})
                      for _, rule in rules)
    return _Forecasts(rules, statement, durations)


def _branch(schema: StorageSchema, entity: str, pool: Pool, rule: PoolRule,
            index: int, dialect: str) -> Select[Any]:
    # ``now`` only feeds the clock comparison, which with_clock=False leaves out.
    sql = rule_sql(schema.registry, schema.system, schema.table(entity), pool, rule,
                   now=datetime.min, with_clock=False)
    assert sql.start is not None
    # per_value is an option value (text) when there is one: every branch has the column
    per_value = cast(sql.per_value if sql.per_value is not None else null(), String)
    return select(sql.table.c.id, sql.start.label("start"), per_value.label("per_value"),
                  literal_column(str(index)).label("rule")) \
        .select_from(sql.source) \
        .where(sql.where, sql.table.c.id.in_(listed_values(dialect, key="ids")))


def drop_forecast(records: RecordService, *, entity: str, ids: Sequence[int],
                  now: datetime) -> dict[int, DropForecast]:
    """For each of ``ids`` that a drop rule governs: the earliest drop (absent: none)."""
    earliest, rules = _earliest(records, entity=entity, ids=ids, now=now)
    out = {}
    for record_id, (due, index) in earliest.items():
        pool, rule = rules[index]
        out[int(record_id)] = DropForecast(pool=pool.name, rule=rule.name, label=rule.label,
                                           due_at=due)
    return out


def drop_due(records: RecordService, *, entity: str, ids: Sequence[int],
             now: datetime) -> dict[int, datetime]:
    """``drop_forecast``'s due times alone (a list page's badges name no rule): the same
    rows, without a ``DropForecast`` per record."""
    earliest, _ = _earliest(records, entity=entity, ids=ids, now=now)
    return {int(record_id): due for record_id, (due, _) in earliest.items()}


def days_until(due: datetime, now: datetime) -> int:
    """Whole days from ``now`` until ``due``, rounded up (0: due now)."""
    return max(0, math.ceil((due - now) / timedelta(days=1)))


def _earliest(records: RecordService, *, entity: str, ids: Sequence[int], now: datetime
              ) -> tuple[dict[int, tuple[datetime, int]], tuple[tuple[Pool, PoolRule], ...]]:
    """Record id -> (the earliest due time, the index of its rule), and the rules."""
    if not ids or entity not in records.schema.tables:
        return {}, ()
    dialect = records.engine.dialect.name
    forecasts = forecast_statement(records.schema, entity, dialect=dialect)
    if forecasts.statement is None:
        return {}, ()
    durations = forecasts.durations
    wanted = list(dict.fromkeys(int(i) for i in ids))
    earliest: dict[int, tuple[datetime, int]] = {}  # record id -> (due, rule index)
    for first in range(0, len(wanted), MAX_IDS):
        params = {"ids": bound_values(dialect, wanted[first:first + MAX_IDS])}
        # one statement on a pooled cursor: no Connection, no BEGIN/ROLLBACK around it
        for record_id, start, per_value, index in direct_rows(
                records.engine, forecasts.statement, params):
            if start.tzinfo is None:
                start = start.replace(tzinfo=now.tzinfo)
            index = int(index)
            default, per = durations[index]  # as ``rules.due_at``, without a dict per row
            due = start + (per.get(per_value, default) if per_value is not None else default)
            old = earliest.get(record_id)
            if old is None or due < old[0]:
                earliest[record_id] = (due, index)
    return earliest, forecasts.rules
