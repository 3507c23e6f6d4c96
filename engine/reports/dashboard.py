"""A user's dashboard: the tiles of the dashboard their roles pick, with numbers filled.

Every number comes through the same paths as elsewhere -- report tiles through
the report compiler (the reader's row scope), "my numbers" and "my rank" from
the rollups, "due today" through ``RecordService.list`` -- so the home page never
shows what the reader could not open.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from engine.actor import Actor
from engine.errors import ForbiddenError, QueryError
from engine.metadata.model import Registry
from engine.metadata.reports import BoardMeasure, Dashboard, Tile
from engine.records.query import Filter, ListQuery, Sort
from engine.records.record import Record
from engine.records.service import RecordService
from engine.reports.catalog import catalog_of, dashboard_for, report_of
from engine.reports.compiler import ReportRunner
from engine.reports.dropping import Dropping, about_to_drop
from engine.reports.freshness import ensure_fresh
from engine.reports.leaderboard import Board, board, my_value
from engine.reports.periods import Window, window
from engine.reports.result import Drill, ReportResult
from engine.reports.targets import attainment, targets_for
from engine.reports.zone import day_start, local_day

DUE_LIMIT = 20


@dataclass(frozen=True)
class Number:
    measure: BoardMeasure
    week: Decimal
    month: Decimal
    target: Decimal | None
    attainment: Decimal | None


@dataclass(frozen=True)
class FilledTile:
    tile: Tile
    numbers: list[Number] = field(default_factory=list)
    due: list[Record] = field(default_factory=list)
    due_drill: Drill | None = None
    rank: Board | None = None
    dropping: Dropping | None = None
    report: ReportResult | None = None
    #: why the tile is empty for this reader (no access), or ""
    missing: str = ""


@dataclass(frozen=True)
class FilledDashboard:
    dashboard: Dashboard
    tiles: list[FilledTile]


def fill(records: RecordService, registry: Registry, actor: Actor, *,
         today: dt.date | None = None) -> FilledDashboard | None:
    """The actor's dashboard with every tile computed (None: no dashboard names a role)."""
    dashboard = dashboard_for(registry, actor.roles)
    if dashboard is None:
        return None
    zone = ensure_fresh(records, registry)
    today = today or local_day(dt.datetime.now(dt.UTC), zone=zone)
    tiles = [_fill(records, registry, actor, t, today) for t in dashboard.tiles]
    return FilledDashboard(dashboard, tiles)


def _fill(records: RecordService, registry: Registry, actor: Actor, tile: Tile,
          today: dt.date) -> FilledTile:
    team = tile.scope == "team"
    try:
        if tile.kind == "report":
            assert tile.report is not None
            report = report_of(registry, tile.report)
            result = ReportRunner(records, registry).run(
                actor, report, window(tile.period or report.default_period, today=today))
            return FilledTile(tile, report=result)
        if tile.kind == "my_numbers":
            return FilledTile(tile, numbers=_numbers(records, registry, actor, today,
                                                     team=team))
        if tile.kind == "my_rank":
            month = window("this_month", today=today)
            ranked = board(records, registry, actor, measure=tile.measure, window=month,
                           scope="team" if team else "all")
            return FilledTile(tile, rank=ranked)
        if tile.kind == "about_to_drop":
            assert tile.entity is not None
            found = about_to_drop(records, actor, entity=tile.entity, days=tile.days,
                                  team=team, now=dt.datetime.now(dt.UTC))
            return FilledTile(tile, dropping=found)
        rows, drill = _due(records, actor, tile, today, team=team)
        return FilledTile(tile, due=rows, due_drill=drill)
    except (ForbiddenError, QueryError) as exc:
        return FilledTile(tile, missing=str(exc))


def _numbers(records: RecordService, registry: Registry, actor: Actor, today: dt.date, *,
             team: bool) -> list[Number]:
    week = window("this_week", today=today)
    month = window("this_month", today=today)
    out = []
    for m in catalog_of(registry).board_measures():
        try:
            records.policy.check_action(actor, records.plan(m.entity).entity, "read")
        except ForbiddenError:
            continue
        assert week.first and week.end and month.first and month.end
        w = my_value(records, registry, actor, m, first=week.first, end=week.end, team=team)
        mo = my_value(records, registry, actor, m, first=month.first, end=month.end,
                      team=team)
        target = _target(records, actor, m, month, team=team)
        out.append(Number(m, w, mo, target, attainment(mo, target)))
    return out


def _target(records: RecordService, actor: Actor, m: BoardMeasure, month: Window, *,
            team: bool) -> Decimal | None:
    from engine.permissions.org import load_org_snapshot
    from engine.reports.targets import team_target

    assert month.first and month.end
    with records.engine.connect() as conn:
        targets = targets_for(conn, records, measure=m.name, first=month.first,
                              end=month.end)
        if not team:
            return targets.get(f"user:{actor.user_id}")
        org = load_org_snapshot(conn)
    own = org.user_department.get(actor.user_id or -1)
    return team_target(targets, org, own) if own is not None else None


def _due(records: RecordService, actor: Actor, tile: Tile, today: dt.date, *,
         team: bool) -> tuple[list[Record], Drill]:
    assert tile.entity is not None and tile.field is not None
    filters = [Filter(tile.field, "gte", day_start(today).isoformat()),
               Filter(tile.field, "lt", day_start(today + dt.timedelta(days=1)).isoformat())]
    if not team:
        filters.insert(0, Filter("owner_id", "eq", actor.user_id))
    page = records.list(actor, tile.entity, ListQuery(
        filters=tuple(filters), sort=Sort(tile.field, descending=False), limit=DUE_LIMIT))
    return page.rows, Drill(tile.entity, tuple(filters))
