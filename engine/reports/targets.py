"""Sales targets (销售目标): a number per leaderboard measure, period and user or department.

Targets are set top-down: only someone who may assign records of the measure's
entity (a supervisor or manager) may set one, and only for themselves' reports
-- a user or department inside their own department's subtree, never their own
department or themselves. Attainment is actual / target for the same days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from engine.actor import Actor
from engine.errors import ForbiddenError, ValidationError
from engine.messages import M
from engine.metadata.model import Registry
from engine.permissions.org import OrgSnapshot, load_org_snapshot
from engine.records.service import RecordService
from engine.reports.catalog import catalog_of
from engine.storage.database import write_transaction
from engine.storage.report_tables import TARGET_TABLE

MAX_TARGET = Decimal("1e15")


@dataclass(frozen=True)
class Target:
    measure: str
    first: dt.date
    end: dt.date
    assignee: str          # "user:<id>" | "dept:<id>"
    value: Decimal


def assignee_key(*, user_id: int | None = None, department_id: int | None = None) -> str:
    if (user_id is None) == (department_id is None):
        raise ValidationError("target", {"assignee": M("name one user or one department")})
    return f"user:{user_id}" if user_id is not None else f"dept:{department_id}"


def _may_set(org: OrgSnapshot, actor: Actor, assignee: str) -> bool:
    if actor.is_system:
        return True
    if actor.user_id is None:
        return False
    own = org.user_department.get(actor.user_id)
    if own is None:
        return False
    kind, _, raw = assignee.partition(":")
    ident = int(raw)
    if kind == "user":
        return ident != actor.user_id and ident in org.users_under(own)
    return ident != own and ident in org.departments_under(own)


def parse_value(raw: Any) -> Decimal:
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError("target", {"value": M("needs a number")}) from None
    if not value.is_finite() or value < 0 or value >= MAX_TARGET:
        raise ValidationError("target", {"value": M("needs a number from 0 up")})
    return value


def set_target(records: RecordService, registry: Registry, actor: Actor, *, measure: str,
               first: dt.date, end: dt.date, assignee: str, value: Any,
               now: dt.datetime) -> Target:
    """Set (or replace) one target; refused unless the actor manages the assignee."""
    board = catalog_of(registry).board_measure(measure)
    if board is None:
        raise ValidationError("target", {"measure": M("no leaderboard measure %(measure)s",
                                                      measure=repr(measure))})
    if end <= first:
        raise ValidationError("target", {"period": M("the period is empty")})
    amount = parse_value(value)
    if assignee.partition(":")[0] not in ("user", "dept") or \
            not assignee.partition(":")[2].isdigit():
        raise ValidationError("target", {"assignee": M("name one user or one department")})
    records.policy.check_action(actor, records.plan(board.entity).entity, "assign")
    table = records.schema.system[TARGET_TABLE]
    with write_transaction(records.engine) as conn:
        org = load_org_snapshot(conn)
        kind, _, raw = assignee.partition(":")
        known = int(raw) in (org.user_login if kind == "user" else org.departments)
        if not known:
            raise ValidationError("target", {"assignee": M("no such user or department")})
        if not _may_set(org, actor, assignee):
            raise ForbiddenError("target", "set", M("targets are set for your own team, "
                                                  "top-down"))
        key = (table.c.measure == measure, table.c.first_day == first,
               table.c.end_day == end, table.c.assignee == assignee)
        values = {"value": amount, "set_by": actor.user_id, "set_at": now}
        done = conn.execute(update(table).where(*key).values(**values))
        if done.rowcount == 0:
            conn.execute(insert(table).values(measure=measure, first_day=first, end_day=end,
                                              assignee=assignee, **values))
    return Target(measure, first, end, assignee, amount)


def clear_target(records: RecordService, registry: Registry, actor: Actor, *, measure: str,
                 first: dt.date, end: dt.date, assignee: str) -> None:
    """Remove a target (same permission as setting it)."""
    board = catalog_of(registry).board_measure(measure)
    if board is None:
        raise ValidationError("target", {"measure": M("no leaderboard measure %(measure)s",
                                                      measure=repr(measure))})
    records.policy.check_action(actor, records.plan(board.entity).entity, "assign")
    table = records.schema.system[TARGET_TABLE]
    with write_transaction(records.engine) as conn:
        if not _may_set(load_org_snapshot(conn), actor, assignee):
            raise ForbiddenError("target", "set", M("targets are set for your own team, "
                                                  "top-down"))
        conn.execute(delete(table).where(
            table.c.measure == measure, table.c.first_day == first, table.c.end_day == end,
            table.c.assignee == assignee))


def targets_for(conn: Connection, records: RecordService, *, measure: str, first: dt.date,
                end: dt.date) -> dict[str, Decimal]:
    """Assignee -> target of ``measure`` for exactly the days [first, end)."""
    table = records.schema.system[TARGET_TABLE]
    rows = conn.execute(select(table.c.assignee, table.c.value).where(
        table.c.measure == measure, table.c.first_day == first, table.c.end_day == end))
    return {a: Decimal(str(v)) for a, v in rows}


def attainment(actual: Decimal, target: Decimal | None) -> Decimal | None:
    """actual / target (None without a positive target)."""
    if target is None or target <= 0:
        return None
    return actual / target


def team_target(targets: Mapping[str, Decimal], org: OrgSnapshot,
                department_id: int) -> Decimal | None:
    """A department's own target, else the sum of its members' targets (None: no target)."""
    own = targets.get(f"dept:{department_id}")
    if own is not None:
        return own
    members = [targets[f"user:{u}"] for u in org.users_under(department_id)
               if f"user:{u}" in targets]
    return sum(members, Decimal(0)) if members else None


@dataclass(frozen=True)
class TargetSheet:
    """The targets of a period and whom the reader may set one for."""

    rows: list[tuple[str, str, Decimal]]           # measure, assignee name, value
    assignable: list[tuple[str, str]]               # assignee key, name


def target_sheet(records: RecordService, registry: Registry, actor: Actor, *,
                 first: dt.date, end: dt.date) -> TargetSheet:
    """Every target of [first, end) and the users and departments under the reader."""
    with records.engine.connect() as conn:
        org = load_org_snapshot(conn)
        rows: list[tuple[str, str, Decimal]] = []
        for m in catalog_of(registry).board_measures():
            for assignee, value in sorted(targets_for(conn, records, measure=m.name,
                                                      first=first, end=end).items()):
                rows.append((m.name, _name(org, assignee), value))
    own = org.user_department.get(actor.user_id or -1)
    assignable: list[tuple[str, str]] = []
    if own is not None:
        assignable += [(f"dept:{d}", org.departments[d].name)
                       for d in sorted(org.departments_under(own) - {own})]
        assignable += [(f"user:{u}", org.user_login.get(u, str(u)))
                       for u in sorted(org.users_under(own) - {actor.user_id or -1})]
    return TargetSheet(rows, assignable)


def _name(org: OrgSnapshot, assignee: str) -> str:
    kind, _, raw = assignee.partition(":")
    ident = int(raw)
    if kind == "dept":
        dept = org.departments.get(ident)
        return dept.name if dept else assignee
    return org.user_login.get(ident, assignee)
