"""Pool rules compiled to set-based SQL: which records a rule moves now, and when it will.

A rule (engine/metadata/model.py ``PoolRule``) becomes one WHERE clause over
the pooled entity's table outer-joined to its clock row: the records the rule
governs (held records of the pool for ``drop`` and ``owner_inactive``,
records lying in the pool for ``returned``), its ``when`` and ``exempt``
conditions through the one condition compiler (engine/storage/conditions.py),
locks, and the clock compared with cut-offs computed in Python from ``now``
(so the same statement runs on SQLite and PostgreSQL, and tests move ``now``).

The scheduler selects candidates with it and hands the same clause to the
records service as the guard of its conditional UPDATE, so a record touched
between the two statements is not moved; the forecast uses it without the
clock to tell a screen when a record will drop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    case,
    exists,
    func,
    or_,
    select,
    true,
)

from engine.metadata.model import Pool, PoolRule, Registry
from engine.storage.conditions import tree_clause
from engine.storage.pool_tables import POOL_EVENT_TABLE, POOL_LOCK_TABLE
from engine.storage.rule_tables import CLOCK_TABLE
from engine.storage.system_tables import USER_TABLE
from engine.workflow.clocks import clock_start, joined

LEDGER_TABLE = POOL_EVENT_TABLE
LOCK_TABLE = POOL_LOCK_TABLE
#: Ledger kinds that put a record back into a pool ("returned N times").
RETURN_KINDS = ("return", "drop", "recycle")


def rule_key(pool: Pool, rule: PoolRule) -> str:
    """``<pool>.<rule>``: the rule's name in the ledger, jobs and the feed's ``via``."""
    return f"{pool.name}.{rule.name}"


def default_pool(registry: Registry, entity: str) -> str | None:
    """The pool a record of ``entity`` belongs to when nothing says otherwise (first by name)."""
    names = sorted(p.name for p in registry.pools.values() if p.entity == entity)
    return names[0] if names else None


@dataclass(frozen=True)
class RuleSql:
    """A rule's tables and clauses, over one alias of the entity table."""

    table: Any            # the entity table (or an alias of it)
    clocks: Any           # the clock table (or an alias)
    source: Any           # table LEFT JOIN clocks
    where: ColumnElement[bool]       # every condition, clock included
    start: ColumnElement[Any] | None  # when the clock started (drop rules)
    per_value: ColumnElement[Any] | None  # the field durations depend on
    #: built with ``ahead``: the clock's own cut-off at ``now`` (due now, not only soon)
    due_now: ColumnElement[bool] | None = None


def _hours_clause(rule: PoolRule, start: ColumnElement[Any], column: Any,
                  now: datetime, ahead: timedelta) -> ColumnElement[bool]:
    """The clock ran past ``after`` (minus ``ahead``): per value of a field if declared."""
    after = rule.after
    assert after is not None  # drop rules have one (schema)

    def past(hours: int) -> ColumnElement[bool]:
        return start <= now - timedelta(hours=hours) + ahead

    if column is None or not after.per_value:
        return past(after.hours)
    values = [v for v, _ in after.per_value]
    branches = [and_(column == v, past(h)) for v, h in after.per_value]
    branches.append(and_(or_(column.is_(None), column.not_in(values)), past(after.hours)))
    return or_(*branches)


def _fields(registry: Registry, entity: str) -> Mapping[str, Any]:
    return {f.name: f for f in registry.entity(entity).fields}


def _condition(node: Any, registry: Registry, entity: str, table: Any) -> ColumnElement[bool]:
    return tree_clause(node, fields=_fields(registry, entity), columns=table.c)


def _home_pool(registry: Registry, pool: Pool, table: Any, clocks: Any) -> ColumnElement[bool]:
    """Held records belonging to ``pool``: the pool they last left, or the entity's default."""
    if sum(1 for p in registry.pools.values() if p.entity == pool.entity) == 1:
        return true()
    fallback = default_pool(registry, pool.entity)
    return func.coalesce(clocks.c.pool, fallback) == pool.name


def rule_sql(registry: Registry, system: Mapping[str, Table], table: Table, pool: Pool,
             rule: PoolRule, *, now: datetime, ahead: timedelta = timedelta(0),
             with_clock: bool = True, alias: str | None = None) -> RuleSql:
    """The clause selecting what ``rule`` acts on at ``now``.

    ``ahead`` moves the cut-off earlier (records that will be due within
    ``ahead``: warnings); ``with_clock=False`` drops the clock comparison
    (forecasts). ``alias`` builds it over an alias of the table, for use as a
    subquery inside an UPDATE of the same table.
    """
    t: Any = table.alias(alias) if alias else table
    clocks: Any = system[CLOCK_TABLE].alias(f"{alias}_clock" if alias else "rule_clock")
    entity = pool.entity
    parts: list[ColumnElement[bool]] = []
    if "deleted_at" in t.c:
        parts.append(t.c.deleted_at.is_(None))
    start = per_value = due_now = None
    if rule.kind == "returned":
        parts += [t.c.owner_id.is_(None), t.c.pool_id == pool.name,
                  _returned_often(system, t, pool, rule)]
    else:
        parts += [t.c.owner_id.is_not(None), _home_pool(registry, pool, t, clocks)]
    if rule.kind == "owner_inactive":
        users = system[USER_TABLE]
        parts.append(t.c.owner_id.in_(select(users.c.id).where(users.c.active.is_(False))))
    if rule.kind == "drop":
        lock = system[LOCK_TABLE]
        parts.append(~exists().where(lock.c.entity == entity, lock.c.record_id == t.c.id))
        start = clock_start(rule.clock or "created", table=t, clocks=clocks, system=system,
                            entity=entity)
        if rule.after is not None and rule.after.field:
            per_value = t.c[rule.after.field]
        if with_clock:
            parts.append(_hours_clause(rule, start, per_value, now, ahead))
            if ahead:
                due_now = _hours_clause(rule, start, per_value, now, timedelta(0))
    if rule.when is not None:
        parts.append(_condition(rule.when, registry, entity, t))
    if rule.exempt is not None:
        # CASE keeps a NULL (unknown) exemption from hiding the record: not exempt.
        exempt = _condition(rule.exempt, registry, entity, t)
        parts.append(case((exempt, 1), else_=0) == 0)
    return RuleSql(table=t, clocks=clocks, source=joined(t, clocks, entity),
                   where=and_(*parts), start=start, per_value=per_value, due_now=due_now)


def _returned_often(system: Mapping[str, Table], t: Any, pool: Pool,
                    rule: PoolRule) -> ColumnElement[bool]:
    """Sent back to a pool at least ``times`` times since this rule last acted on it."""
    ledger = system[LEDGER_TABLE].alias("returns")
    fired = system[LEDGER_TABLE].alias("fired")
    last_fired = (select(func.coalesce(func.max(fired.c.id), 0))
                  .where(fired.c.entity == pool.entity, fired.c.record_id == t.c.id,
                         fired.c.rule == rule_key(pool, rule))
                  .scalar_subquery())
    count = (select(func.count()).select_from(ledger)
             .where(ledger.c.entity == pool.entity, ledger.c.record_id == t.c.id,
                    ledger.c.kind.in_(RETURN_KINDS), ledger.c.id > last_fired)
             .scalar_subquery())
    return count >= (rule.times or 1)


def candidates(sql: RuleSql, *, after_id: int = 0, limit: int | None = None) -> Select[Any]:
    """SELECT id, owner_id, clock start, per-value field of the records the rule acts on."""
    t = sql.table
    cols: list[Any] = [t.c.id, t.c.owner_id]
    cols.append((sql.start if sql.start is not None else t.c.created_at).label("clock_start"))
    if sql.per_value is not None:
        cols.append(sql.per_value.label("per_value"))
    query = select(*cols).select_from(sql.source).where(sql.where, t.c.id > after_id) \
        .order_by(t.c.id)
    return query.limit(limit) if limit is not None else query


def guard(registry: Registry, system: Mapping[str, Table], table: Table, pool: Pool,
          rule: PoolRule, *, now: datetime, ids: list[int],
          among: Callable[[Any], ColumnElement[bool]] | None = None) -> ColumnElement[bool]:
    """The rule as a condition on ``table`` rows ``ids``, for the UPDATE that moves them.

    Re-checked inside the UPDATE, so a record touched, locked or reassigned
    since it was selected stays where it is. ``among(column)`` (the ids bound
    as one parameter, engine/storage/fanout.py) limits the subquery to the batch's
    rows; without it the id range bounds it.
    """
    sql = rule_sql(registry, system, table, pool, rule, now=now, alias="guard")
    where = [sql.where, sql.table.c.id.between(min(ids), max(ids))]
    if among is not None:
        where.append(among(sql.table.c.id))
    inner = select(sql.table.c.id).select_from(sql.source).where(*where)
    return table.c.id.in_(inner)


def due_at(rule: PoolRule, start: datetime, value: Any) -> datetime:
    """When a drop rule fires for a record whose clock started at ``start``."""
    after = rule.after
    assert after is not None
    hours = dict(after.per_value).get(value, after.hours) if value is not None else after.hours
    return start + timedelta(hours=hours)
