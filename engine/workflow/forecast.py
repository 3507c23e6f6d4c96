"""When a held record will drop: the "drops in N days" badge of lists and detail screens.

For a page of records, each drop rule of the record's pools is evaluated with
everything but its clock (the same compiled clause the scheduler uses, so a
record the rule exempts or does not govern gets no badge), and the clock's
start plus the rule's duration (per field value) gives the due time. The
earliest rule wins. One statement for every rule (a ``UNION ALL``), bounded by the
page's ids, run on the direct-read path (``engine/storage/direct.py``): a list page
pays for its execution, not for a ``Connection``, a ``BEGIN``/``ROLLBACK`` and
``Row`` objects around it.
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
from engine.storage.direct import direct_rows
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


#: How many ids one statement takes: a page's ids are padded (with its last id) to the
#: smallest size that holds them, so each size is one statement compiled once and run
#: on the direct-read path, which takes no expanding ``IN`` (SQLAlchemy finishes those
#: at every execution). More ids than the largest size go in several statements.
ID_SLOTS = (8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class _Forecasts:
    """The drop rules of an entity's pools and the one statement forecasting them all
    for up to ``slots`` ids: a UNION ALL with a branch per rule (its index in ``rules``
    as column ``rule``), the ids as parameters ``id_0`` .. ``id_<slots - 1>``."""

    rules: tuple[tuple[Pool, PoolRule], ...]
    statement: CompoundSelect[Any] | Select[Any] | None
    slots: int = ID_SLOTS[-1]
    #: Each rule's duration, and its durations by field value (``due_at``'s, computed once).
    durations: tuple[tuple[timedelta, dict[Any, timedelta]], ...] = ()


_EPOCH = datetime(2000, 1, 1)
#: The statements of the newest schema seen, by (entity, slots) (a new schema starts over).
_built: GenerationMemo[tuple[str, int], _Forecasts] = GenerationMemo()


def forecast_statement(schema: StorageSchema, entity: str, *,
                       slots: int = ID_SLOTS[-1]) -> _Forecasts:
    """The drop rules of ``entity`` and their statement for ``slots`` ids (one of
    ``ID_SLOTS``), built once per schema.

    Without the clock comparison nothing in the statement depends on ``now``, so
    the same statement serves every request until the metadata changes.
    """
    return _built.get(schema, (entity, slots), lambda: _forecasts(schema, entity, slots))


def _forecasts(schema: StorageSchema, entity: str, slots: int) -> _Forecasts:
    rules = tuple((pool, rule) for _, pool in sorted(schema.registry.pools.items())
                  if pool.entity == entity for rule in pool.rules if rule.kind == "drop")
    branches = [_branch(schema, entity, pool, rule, index, slots)
                for index, (pool, rule) in enumerate(rules)]
    statement = None if not branches else branches[0] if len(branches) == 1 \
        else union_all(*branches)
    # due_at's own answers from a fixed start, so the per-row sum keeps its rules
    durations = tuple((due_at(rule, _EPOCH, None) - _EPOCH,
                       {value: due_at(rule, _EPOCH, value) - _EPOCH
                        for value, _ in (rule.after.per_value if rule.after else ())})
                      for _, rule in rules)
    return _Forecasts(rules, statement, slots, durations)


def _branch(schema: StorageSchema, entity: str, pool: Pool, rule: PoolRule,
            index: int, slots: int) -> Select[Any]:
    # ``now`` only feeds the clock comparison, which with_clock=False leaves out.
    sql = rule_sql(schema.registry, schema.system, schema.table(entity), pool, rule,
                   now=datetime.min, with_clock=False)
    assert sql.start is not None
    # per_value is an option value (text) when there is one: every branch has the column
    per_value = cast(sql.per_value if sql.per_value is not None else null(), String)
    return select(sql.table.c.id, sql.start.label("start"), per_value.label("per_value"),
                  literal_column(str(index)).label("rule")) \
        .select_from(sql.source) \
        .where(sql.where, sql.table.c.id.in_([bindparam(f"id_{i}") for i in range(slots)]))


def _chunks(ids: Sequence[int]) -> list[tuple[int, dict[str, int]]]:
    """(slots, parameters) of each statement ``ids`` need: padded with the last id
    (a repeated value in ``IN`` changes nothing)."""
    wanted = list(dict.fromkeys(int(i) for i in ids))
    out = []
    for start in range(0, len(wanted), ID_SLOTS[-1]):
        chunk = wanted[start:start + ID_SLOTS[-1]]
        slots = next(s for s in ID_SLOTS if s >= len(chunk))
        padded = chunk + [chunk[-1]] * (slots - len(chunk))
        out.append((slots, {f"id_{i}": v for i, v in enumerate(padded)}))
    return out


def drop_forecast(records: RecordService, *, entity: str, ids: Sequence[int],
                  now: datetime) -> dict[int, DropForecast]:
    """For each of ``ids`` that a drop rule governs: the earliest drop (absent: none)."""
    if not ids or entity not in records.schema.tables:
        return {}
    earliest: dict[int, tuple[datetime, int]] = {}  # record id -> (due, rule index)
    for slots, params in _chunks(ids):
        forecasts = forecast_statement(records.schema, entity, slots=slots)
        if forecasts.statement is None:
            return {}
        rules, durations = forecasts.rules, forecasts.durations
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
    out = {}
    for record_id, (due, index) in earliest.items():
        pool, rule = rules[index]
        out[int(record_id)] = DropForecast(pool=pool.name, rule=rule.name, label=rule.label,
                                           due_at=due)
    return out
