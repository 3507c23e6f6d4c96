"""The leaderboard (排行榜): owners ranked by a measure over a period, from the rollups.

It reads ``tp_rollup_daily`` (a few rows per owner and day), never the base
tables, so it answers in milliseconds at millions of records. Seeing the board
needs read access to the measure's entity; it shows per-person totals, never a
record, and each total drills down to the list of records through the list
screen, i.e. through the reader's own row scope.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from sqlalchemy import Connection, select

from engine.actor import Actor
from engine.errors import QueryError
from engine.messages import M
from engine.metadata.model import Registry
from engine.metadata.reports import BoardMeasure
from engine.permissions.org import OrgSnapshot, load_org_snapshot
from engine.records.service import RecordService
from engine.reports.catalog import catalog_of
from engine.reports.freshness import ensure_fresh
from engine.reports.periods import Window
from engine.reports.rollups import RollupKeeper
from engine.reports.targets import attainment, targets_for
from engine.storage.system_tables import USER_TABLE

Scope = Literal["team", "all"]
MAX_SHOWN = 100


@dataclass(frozen=True)
class Standing:
    rank: int
    user_id: int
    name: str
    department: str
    value: Decimal
    count: int
    target: Decimal | None
    attainment: Decimal | None
    me: bool


@dataclass(frozen=True)
class Board:
    measure: BoardMeasure
    measures: tuple[BoardMeasure, ...]
    window: Window
    scope: Scope
    standings: list[Standing]
    mine: Standing | None
    total: Decimal
    people: int


def _people(conn: Connection, records: RecordService, org: OrgSnapshot, actor: Actor,
            scope: Scope) -> dict[int, tuple[str, str]]:
    """Active people ranked: the actor's department subtree (team) or every department."""
    user = records.schema.system[USER_TABLE]
    rows = conn.execute(
        select(user.c.id, user.c.display_name).where(user.c.active.is_(True)))
    names = {int(r.id): r.display_name for r in rows}
    wanted = set(org.user_department)
    if scope == "team":
        own = org.user_department.get(actor.user_id or -1)
        wanted = set(org.users_under(own)) if own is not None else {actor.user_id or -1}
    out: dict[int, tuple[str, str]] = {}
    for uid in wanted:
        if uid in names:
            dept = org.department_of(uid)
            out[uid] = (names[uid], dept.name if dept else "")
    return out


def board(records: RecordService, registry: Registry, actor: Actor, *,
          measure: str | None, window: Window, scope: Scope = "team",
          limit: int = MAX_SHOWN) -> Board:
    """The ranking of ``measure`` over ``window`` within the actor's team or all teams."""
    measures = tuple(catalog_of(registry).board_measures())
    if not measures:
        raise QueryError("leaderboard", "measure", M("no leaderboard is declared"))
    chosen = next((m for m in measures if m.name == measure), None) if measure else measures[0]
    if chosen is None:
        raise QueryError("leaderboard", "measure", M("unknown measure %(measure)s",
                                                     measure=repr(measure)))
    if scope not in ("team", "all"):
        raise QueryError("leaderboard", "scope", M("team or all"))
    if window.first is None or window.end is None:
        raise QueryError("leaderboard", "period", M("the leaderboard needs a bounded period"))
    records.policy.check_action(actor, records.plan(chosen.entity).entity, "read")
    ensure_fresh(records, registry)
    keeper = RollupKeeper(records.schema, registry)
    with records.engine.connect() as conn:
        org = load_org_snapshot(conn)
        people = _people(conn, records, org, actor, scope)
        totals = keeper.rollup_totals(conn, chosen, first=window.first, end=window.end,
                                      owners=sorted(people) if scope == "team" else None)
        targets = targets_for(conn, records, measure=chosen.name, first=window.first,
                              end=window.end)
    scored = []
    for uid, (name, dept) in people.items():
        n, total = totals.get(uid, (0, Decimal(0)))
        value = total if chosen.kind == "sum" else Decimal(n)
        scored.append((value, name.casefold(), uid, name, dept, n))
    scored.sort(key=lambda s: (-s[0], s[1], s[2]))
    standings: list[Standing] = []
    rank = 0
    previous: Decimal | None = None
    for position, (value, _, uid, name, dept, n) in enumerate(scored, start=1):
        if value != previous:
            rank, previous = position, value   # ties share a rank (1, 2, 2, 4)
        target = targets.get(f"user:{uid}")
        standings.append(Standing(rank=rank, user_id=uid, name=name, department=dept,
                                  value=value, count=n, target=target,
                                  attainment=attainment(value, target),
                                  me=uid == actor.user_id))
    mine = next((s for s in standings if s.me), None)
    total = sum((s.value for s in standings), Decimal(0))
    return Board(measure=chosen, measures=measures, window=window, scope=scope,
                 standings=standings[:limit], mine=mine, total=total,
                 people=len(standings))


def my_value(records: RecordService, registry: Registry, actor: Actor, m: BoardMeasure, *,
             first: dt.date, end: dt.date, team: bool) -> Decimal:
    """The actor's (or their department subtree's) value of ``m`` over [first, end)."""
    ensure_fresh(records, registry)
    keeper = RollupKeeper(records.schema, registry)
    with records.engine.connect() as conn:
        owners: list[int] = [actor.user_id] if actor.user_id is not None else []
        if team and actor.user_id is not None:
            org = load_org_snapshot(conn)
            own = org.user_department.get(actor.user_id)
            if own is not None:
                owners = sorted(org.users_under(own))
        totals = keeper.rollup_totals(conn, m, first=first, end=end, owners=owners)
    if m.kind == "sum":
        return sum((t for _, t in totals.values()), Decimal(0))
    return Decimal(sum(n for n, _ in totals.values()))
