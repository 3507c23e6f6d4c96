"""Pool limits as SQL conditions, evaluated inside the one UPDATE that changes the owner.

A claim (or an assignment) is one conditional ``UPDATE ... WHERE <guards>``; each
guard counts what its limit needs in the same statement (records the user holds,
claims today, the ledger's last loss and pool entry). Callers serialise per user
and pool first (``serialise``), so two claims by one user cannot both count the
same slot. When the UPDATE changes nothing, ``first_failing`` evaluates the same
named guards one by one to say which limit refused, with the very same SQL.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Select,
    Table,
    bindparam,
    case,
    func,
    literal,
    not_,
    select,
)
from sqlalchemy.sql.elements import BindParameter

from engine.metadata.model import Entity, Pool
from engine.permissions.conditions import conditions_clause
from engine.records._plan import EntityPlan
from engine.workflow import ledger


@dataclass(frozen=True)
class Guard:
    """One named condition on the row being changed (``limit``: what refuses when false)."""

    limit: str
    clause: ColumnElement[bool]
    message: str


def serialise(conn: Connection, *, entity: str, pool: str, user_id: int) -> None:
    """Serialise pool operations per user and pool until the transaction ends.

    PostgreSQL: a transaction-scoped advisory lock on a 64-bit key of (entity,
    pool, user). SQLite: the write transaction began IMMEDIATE, so it already
    is the database's only writer; nothing more to take.
    """
    clause = lock_clause(conn, entity=entity, pool=pool, user_id=user_id)
    if clause is not None:
        conn.execute(select(clause))


def lock_clause(conn: Connection, *, entity: str, pool: str,
                user_id: int) -> ColumnElement[Any] | None:
    """``serialise`` as a column expression (None on SQLite, which needs none).

    A claim selects it beside the record it locks for its UPDATE
    (``Transaction.reown(serialise=...)``): the same lock, taken first, in the
    same order, one round trip fewer.
    """
    if conn.dialect.name != "postgresql":
        return None
    digest = hashlib.blake2b(f"pool:{entity}:{pool}:{user_id}".encode(), digest_size=8).digest()
    return func.pg_advisory_xact_lock(int.from_bytes(digest, "big", signed=True))


@functools.lru_cache(maxsize=256)
def _held_alias(table: Table) -> Any:
    # Aliasing a wide table proxies every column; done once per table, not per claim
    # (it was a sixth of a claim's time).
    return table.alias("held")


def planned_per_user(user_id: int) -> BindParameter[int]:
    """``user_id`` as a parameter written into the SQL when the statement runs.

    For an owner's held count on PostgreSQL: psycopg prepares a statement after five
    runs, and the server may then keep one generic plan, costed for the average owner.
    With a ``LIMIT`` that plan can be a scan of the whole table, cheap for a rep holding
    thousands of records and a full scan (~110 ms at 1M customers) for one holding none,
    the very rep who claims. Written in, each owner's count is planned for that owner.
    The value is our own integer id, rendered by the BigInteger type.
    """
    return bindparam(None, int(user_id), type_=BigInteger, literal_execute=True)


def held_rows(table: Any, entity: Entity, pool: Pool, user_id: int) -> Select[Any]:
    """One row for each live record of ``table`` (a table or an alias of it) that
    ``user_id`` holds and that counts to ``max_held``: what a claim's guard and a
    distribution's room both count, so push and pull share one capacity. The owner is
    written in (``planned_per_user``)."""
    stmt = select(literal(1)).select_from(table).where(
        table.c.owner_id == planned_per_user(user_id))
    if "deleted_at" in table.c:
        stmt = stmt.where(table.c.deleted_at.is_(None))
    excludes = pool.limits.held_excludes
    if excludes:
        # NULL (a condition on an empty field) must count the record, not drop it.
        matches = conditions_clause(entity, table.c, excludes)
        stmt = stmt.where(case((matches, 1), else_=0) == 0)
    return stmt


def held_count(plan: EntityPlan, entity: Entity, pool: Pool, user_id: int) -> ColumnElement[int]:
    """Scalar subquery: live records of the entity ``user_id`` holds that count to capacity,
    counted up to ``max_held + 1`` (when the pool has a cap).

    Enough to answer both ``held < max_held`` (a claim's guard) and ``held > max_held``
    (an assignment past the cap): a LIMITed subquery walks the owner index for at most
    that many records, where a full count read every record a rep holds (tens of
    thousands after a few bulk creates).
    """
    stmt = held_rows(_held_alias(plan.table), entity, pool, user_id)
    cap = pool.limits.max_held
    if cap is not None:
        stmt = stmt.limit(cap + 1)
    return select(func.count()).select_from(stmt.subquery("held_capped")).scalar_subquery()


def capacity_guard(plan: EntityPlan, entity: Entity, pool: Pool, user_id: int, *,
                   who: str = "you hold") -> list[Guard]:
    """The holder may take one more record (``max_held``), pull or push alike.

    ``who`` starts the refusal ("you hold", "the assignee holds").
    """
    cap = pool.limits.max_held
    if cap is None:
        return []
    return [Guard("max_held", held_count(plan, entity, pool, user_id) < cap,
                  f"{who} {cap} records already, the most this pool allows")]


def day_start(pool: Pool, now: datetime) -> datetime:
    """Midnight of ``now``'s day in the pool's time zone (daily claims restart there)."""
    local = now.astimezone(ZoneInfo(pool.limits.time_zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def claim_guards(plan: EntityPlan, entity: Entity, pool: Pool, *, user_id: int,
                 ledger_table: Table, now: datetime) -> list[Guard]:
    """Every limit a self-claim must pass, as named conditions on the claimed row."""
    table = plan.table
    limits = pool.limits
    guards = capacity_guard(plan, entity, pool, user_id)
    if limits.daily_claims is not None:
        claimed = ledger.claims_since(ledger_table, user_id=user_id, pool=pool.name,
                                      since=day_start(pool, now))
        guards.append(Guard("daily_claims", claimed < limits.daily_claims,
                            f"you claimed {limits.daily_claims} records today, the most this "
                            "pool allows per day"))
    if limits.reclaim_cooldown_days is not None:
        lost = ledger.lost_recently(ledger_table, entity=plan.name, record_id=table.c.id,
                                    user_id=user_id,
                                    since=now - timedelta(days=limits.reclaim_cooldown_days))
        guards.append(Guard("reclaim_cooldown_days", not_(lost),
                            f"you held it within the last {limits.reclaim_cooldown_days} "
                            "days; a previous owner must wait before claiming it again"))
    if limits.new_record_hours is not None:
        entered = func.coalesce(ledger.entered_pool_at(ledger_table, entity=plan.name,
                                                       record_id=table.c.id, pool=pool.name),
                                table.c.created_at)
        guards.append(Guard("new_record_hours",
                            entered <= now - timedelta(hours=limits.new_record_hours),
                            f"it entered the pool less than {limits.new_record_hours} hours "
                            "ago; new records are protected"))
    return guards


def first_failing(conn: Connection, plan: EntityPlan, record_id: int,
                  guards: Sequence[Guard]) -> Guard | None:
    """The first guard the record fails now (same SQL as the UPDATE), or None."""
    table = plan.table
    for guard in guards:
        ok = conn.execute(select(case((guard.clause, 1), else_=0))
                          .select_from(table).where(table.c.id == record_id)).scalar()
        if not ok:
            return guard
    return None
