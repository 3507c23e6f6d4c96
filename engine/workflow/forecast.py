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

from sqlalchemy import select

from engine.metadata.model import LocalText
from engine.records.service import RecordService
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


def drop_forecast(records: RecordService, *, entity: str, ids: Sequence[int],
                  now: datetime) -> dict[int, DropForecast]:
    """For each of ``ids`` that a drop rule governs: the earliest drop (absent: none)."""
    registry, system = records.schema.registry, records.schema.system
    if not ids or entity not in records.schema.tables:
        return {}
    table = records.schema.table(entity)
    found: dict[int, DropForecast] = {}
    with records.engine.connect() as conn:
        for pool in (p for _, p in sorted(registry.pools.items()) if p.entity == entity):
            for rule in (r for r in pool.rules if r.kind == "drop"):
                sql = rule_sql(registry, system, table, pool, rule, now=now, with_clock=False)
                assert sql.start is not None
                cols = [sql.table.c.id, sql.start.label("start")]
                if sql.per_value is not None:
                    cols.append(sql.per_value.label("per_value"))
                query = select(*cols).select_from(sql.source) \
                    .where(sql.where, sql.table.c.id.in_(list(ids)))
                for row in conn.execute(query):
                    start = row.start if row.start.tzinfo else row.start.replace(tzinfo=now.tzinfo)
                    due = due_at(rule, start, getattr(row, "per_value", None))
                    old = found.get(int(row.id))
                    if old is None or due < old.due_at:
                        found[int(row.id)] = DropForecast(pool=pool.name, rule=rule.name,
                                                          label=rule.label, due_at=due)
    return found
