"""Report routes: parse, one service call, render.

- ``GET /reports``: the reports the reader may open.
- ``GET /reports/{name}?period=&from=&to=``: chart, table, drill-down links, exports.
- ``GET /reports/{name}/chart.json``: the chart's data (ECharts draws it client-side).
- ``GET /reports/{name}/export.csv|.xlsx``: the table (needs the export grant).
- ``GET /leaderboard?measure=&period=&scope=&from=&to=``: the ranking.
- ``GET /dashboard``: the reader's dashboard (loaded into the home page).
- ``GET|POST /targets``: managers set sales targets for their team.
- ``GET /admin/dashboards``, ``POST /admin/dashboards/{name}/add|remove``: the admin
  adds a report to a dashboard or removes a tile (a dashboard customisation).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.configure.apps import installed_apps
from engine.configure.service import ConfigService
from engine.errors import NotFoundError, QueryError
from engine.metadata.reports import Report
from engine.permissions.directory import people_by_id
from engine.records.query import MAX_LIMIT, Filter, ListQuery
from engine.records.record import Record
from engine.reports import dashboard as dashboards
from engine.reports.catalog import catalog_of, report_of
from engine.reports.compiler import MAX_STAYS, ReportRunner
from engine.reports.config import AddReportTile, RemoveTile
from engine.reports.dropping import about_to_drop
from engine.reports.export import to_csv, to_xlsx
from engine.reports.leaderboard import board
from engine.reports.periods import PERIODS, Window, custom_window, window
from engine.reports.targets import assignee_key, set_target, target_sheet
from engine.reports.zone import local_day, sync_company_zone
from engine.workflow.forecast import DropForecast
from ui.context import NavLink, UIContext
from ui.reports import views
from ui.reports.links import drill_url, number
from ui.zones import format_instant


def today(ui: UIContext) -> dt.date:
    """Today in the company's zone, read from the setting (which also makes it the zone
    the report's periods and buckets use)."""
    with ui.runtime().engine.connect() as conn:
        return local_day(dt.datetime.now(dt.UTC), zone=sync_company_zone(conn))


def _day(raw: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise QueryError("report", what, "needs a date YYYY-MM-DD") from None


def parse_window(request: Request, default: str, *,
                 today: dt.date) -> tuple[Window, str, bool, str, str]:
    """(window, period name, custom?, from, to) from ``?period=&from=&to=``."""
    params = request.query_params
    period = params.get("period") or default
    first, last = params.get("from", ""), params.get("to", "")
    if period == "custom":
        if not first or not last:
            raise QueryError("report", "period", "a custom period needs from and to")
        return custom_window(_day(first, "from"), _day(last, "to")), period, True, first, last
    if period not in PERIODS:
        raise QueryError("report", "period", f"unknown period {period!r}")
    return window(period, today=today), period, False, first, last


def _query(request: Request) -> str:
    keep = [(k, v) for k, v in request.query_params.multi_items()
            if k in ("period", "from", "to")]
    return urlencode(keep)


def _readable(ui: UIContext, actor: Actor, report: Report) -> bool:
    entity = ui.runtime().registry.entities.get(report.entity)
    return entity is not None and ui.may(actor, entity, "read")


def routes(ui: UIContext) -> list[BaseRoute]:
    def t(request: Request, message: str, **values: object) -> str:
        return ui.t(request, message, **values)

    def find(request: Request, actor: Actor) -> Report:
        report = report_of(ui.runtime().registry, request.path_params["name"])
        if not _readable(ui, actor, report):
            raise NotFoundError("report", report.name)
        return report

    def run(request: Request, actor: Actor, report: Report) -> tuple[Any, str, bool, str, str]:
        w, period, custom, first, last = parse_window(request, report.default_period,
                                                      today=today(ui))
        runtime = ui.runtime()
        result = ReportRunner(runtime.records, runtime.registry).run(
            actor, report, w, locale=ui.locale(request))
        return result, period, custom, first, last

    def index(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        locale = ui.locale(request)
        found = [r for r in catalog_of(ui.runtime().registry).reports.values()
                 if _readable(ui, actor, r)]
        items = [(r.label.get(locale), f"/reports/{r.name}", r.description.get(locale))
                 for r in sorted(found, key=lambda r: r.label.get(locale))]
        return ui.render(request, "reports/index.html", {"title": t(request, "Reports"),
                                                         "entries": items})

    def page(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        report = find(request, actor)
        result, period, custom, first, last = run(request, actor, report)
        view = views.report_view(ui.runtime().registry, result, ui.locale(request),
                                 query=_query(request), period=period, custom=custom,
                                 first=first, last=last)
        return ui.render(request, "reports/report.html", view)

    def stays(request: Request, form: FormData | None) -> Response:
        """The stays behind a time-in-stage number: each record, its stage and days."""
        actor = ui.actor(request)
        report = find(request, actor)
        runtime = ui.runtime()
        locale = ui.locale(request)
        params = request.query_params
        w = parse_window(request, report.default_period, today=today(ui))[0]
        raw_owner = params.get("owner", "")
        if raw_owner and (not raw_owner.isdigit() or len(raw_owner) > 18):
            raise QueryError("report", "owner", "needs a person's id")
        stage = params.get("stage") or None
        pipeline = runtime.registry.pipeline_for(report.entity)
        labels = {st.key: st.label.get(locale) for st in pipeline.stages} if pipeline else {}
        if stage is not None and stage not in labels:
            raise QueryError("report", "stage", f"unknown stage {stage!r}")
        measure = params.get("measure", "")
        found = ReportRunner(runtime.records, runtime.registry).stays(
            actor, report, measure, w, stage=stage,
            owner=int(raw_owner) if raw_owner else None)
        # titles through the list service: the reader's scope once more
        definition = runtime.registry.entity(report.entity)
        titles: dict[int, str] = {}
        ids = sorted({x.record_id for x in found})
        for start in range(0, len(ids), MAX_LIMIT):
            page = runtime.records.list(actor, report.entity, ListQuery(
                filters=(Filter("id", "in", ids[start:start + MAX_LIMIT]),), limit=MAX_LIMIT))
            titles.update((r.id, str(r.get(definition.title_field) or f"#{r.id}"))
                          for r in page.rows)
        owners = people_by_id(runtime.engine, [x.owner_id for x in found if x.owner_id])
        rows = [(titles[x.record_id], f"/e/{report.entity}/{x.record_id}",
                 labels.get(x.stage, x.stage),
                 owners[x.owner_id].display_name if x.owner_id in owners else "—",
                 format_instant(x.entered_at, locale),
                 format_instant(x.left_at, locale) if x.left_at else t(request, "still there"),
                 number(x.days)) for x in found if x.record_id in titles]
        m = next(x for x in report.measures if x.name == measure)
        view = {"title": f"{report.label.get(locale)} · {m.label.get(locale)}",
                "window": views.window_text(locale, w), "rows": rows,
                "back": f"/reports/{report.name}", "full": len(found) >= MAX_STAYS}
        return ui.render(request, "reports/stays.html", view)

    def chart(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        report = find(request, actor)
        result = run(request, actor, report)[0]
        return JSONResponse(views.chart_data(ui.runtime().registry, result,
                                             ui.locale(request)))

    def export(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        report = find(request, actor)
        entity = ui.runtime().registry.entity(report.entity)
        ui.runtime().policy.check_action(actor, entity, "export")
        result = run(request, actor, report)[0]
        total = t(request, "Total")
        kind = request.path_params["kind"]
        stamp = today(ui).isoformat()
        if kind == "csv":
            body = to_csv(result, ui.locale(request), total_label=total)
            media = "text/csv; charset=utf-8"
        else:
            body = to_xlsx(result, ui.locale(request), total_label=total)
            media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return Response(body, media_type=media, headers={
            "Content-Disposition": f'attachment; filename="{report.name}-{stamp}.{kind}"'})

    def leaderboard(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        w, period, custom, first, last = parse_window(request, "this_month",
                                                      today=today(ui))
        scope = request.query_params.get("scope", "team")
        runtime = ui.runtime()
        ranked = board(runtime.records, runtime.registry, actor,
                       measure=request.query_params.get("measure") or None, window=w,
                       scope=scope)  # type: ignore[arg-type]
        view = views.leaderboard_view(runtime.registry, ranked, ui.locale(request),
                                      period=period, custom=custom, first=first, last=last,
                                      title=t(request, "Leaderboard"))
        return ui.render(request, "reports/leaderboard.html", view)

    def dashboard(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        runtime = ui.runtime()
        locale = ui.locale(request)
        filled = dashboards.fill(runtime.records, runtime.registry, actor)
        if filled is None:
            return ui.render(request, "reports/_dashboard.html", None)
        tiles = [_tile(ui, request, tile, locale) for tile in filled.tiles]
        view = views.DashboardView(filled.dashboard.label.get(locale), tiles,
                                   any(x.report is not None and x.report.chart_url
                                       for x in tiles))
        return ui.render(request, "reports/_dashboard.html", view)

    def dropping(request: Request, form: FormData | None) -> Response:
        """The whole list behind an about_to_drop tile (?entity=&days=&scope=mine|team)."""
        actor = ui.actor(request)
        runtime = ui.runtime()
        params = request.query_params
        entity = params.get("entity", "")
        if entity not in runtime.registry.entities:
            raise QueryError("dashboard", "entity", f"unknown entity {entity!r}")
        raw_days, scope = params.get("days", "3"), params.get("scope", "mine")
        if not raw_days.isdigit() or len(raw_days) > 3:
            raise QueryError("dashboard", "days", "needs a whole number of days")
        if scope not in ("mine", "team"):
            raise QueryError("dashboard", "scope", "mine or team")
        found = about_to_drop(runtime.records, actor, entity=entity, days=int(raw_days),
                              team=scope == "team", now=dt.datetime.now(dt.UTC))
        label = runtime.registry.entities[entity].plural_label.get(ui.locale(request))
        view = {"title": f"{t(request, 'About to drop back to the pool')} · {label}",
                "days": found.days, "team": found.team, "truncated": found.truncated,
                "rows": drop_rows(ui, request, entity, found.rows, with_owner=found.team)}
        return ui.render(request, "reports/dropping.html", view)

    def targets(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        runtime = ui.runtime()
        locale = ui.locale(request)
        measures = catalog_of(runtime.registry).board_measures()
        params = form if form is not None else request.query_params
        month = str(params.get("month") or today(ui).strftime("%Y-%m"))
        try:
            first = dt.date.fromisoformat(month + "-01")
        except ValueError:
            raise QueryError("target", "month", "needs a month YYYY-MM") from None
        end = window("this_month", today=first).end
        assert end is not None
        saved = False
        if form is not None:
            kind, _, raw = str(form.get("assignee", "")).partition(":")
            if not raw.isdigit() or kind not in ("user", "dept"):
                raise QueryError("target", "assignee", "choose a person or a department")
            key = assignee_key(user_id=int(raw)) if kind == "user" else \
                assignee_key(department_id=int(raw))
            set_target(runtime.records, runtime.registry, actor,
                       measure=str(form.get("measure", "")), first=first, end=end,
                       assignee=key, value=form.get("value", ""),
                       now=dt.datetime.now(dt.UTC))
            saved = True
        sheet = target_sheet(runtime.records, runtime.registry, actor, first=first, end=end)
        labels = {m.name: m.label.get(locale) for m in measures}
        rows = [(labels.get(m, m), who, number(v)) for m, who, v in sheet.rows]
        people = sheet.assignable
        view = {"title": t(request, "Sales targets"), "month": month, "rows": rows,
                "measures": [(m.name, m.label.get(locale)) for m in measures],
                "people": people, "saved": saved}
        return ui.render(request, "reports/targets.html", view)

    def admin_dashboards(request: Request, form: FormData | None) -> Response:
        ui.require_admin(request)
        runtime = ui.runtime()
        locale = ui.locale(request)
        catalog = catalog_of(runtime.registry)
        items = []
        for d in catalog.dashboards.values():
            tiles = []
            for i, tile in enumerate(d.tiles):
                name = tile.report or tile.kind
                report = catalog.reports.get(tile.report or "")
                tiles.append((i, report.label.get(locale) if report else _tile_title(
                    ui, request, tile.kind), name))
            items.append({"name": d.name, "title": d.label.get(locale),
                          "roles": ", ".join(d.roles), "tiles": tiles})
        reports = [(r.name, r.label.get(locale)) for r in catalog.reports.values()]
        return ui.render(request, "reports/admin_dashboards.html",
                         {"title": t(request, "Dashboards"), "entries": items,
                          "reports": reports,
                          "periods": views.period_options(locale, "", custom=False)})

    def admin_change(request: Request, form: FormData | None) -> Response:
        actor = ui.require_admin(request)
        assert form is not None
        runtime = ui.runtime()
        name = request.path_params["name"]
        change: AddReportTile | RemoveTile
        if request.path_params["op"] == "add":
            period = str(form.get("period", "")) or None
            if period is not None and period not in PERIODS:
                raise QueryError("dashboard", "period", f"unknown period {period!r}")
            change = AddReportTile(name, str(form.get("report", "")), period)
        else:
            raw = str(form.get("index", ""))
            if not raw.isdigit():
                raise QueryError("dashboard", "index", "needs a tile number")
            change = RemoveTile(name, int(raw))
        ConfigService(runtime.engine, apps=installed_apps(runtime.registry)).apply(change, actor)
        ui.live.refresh()
        return ui.redirect(request, "/admin/dashboards")

    def nav(request: Request, actor: Actor) -> list[NavLink]:
        path = request.url.path
        catalog = catalog_of(ui.runtime().registry)
        links = []
        if any(_readable(ui, actor, r) for r in catalog.reports.values()):
            links.append(NavLink(t(request, "Reports"), "/reports",
                                 active=path.startswith("/reports")))
        if catalog.leaderboards:
            links.append(NavLink(t(request, "Leaderboard"), "/leaderboard",
                                 active=path == "/leaderboard"))
        return links

    ui.add_nav(nav, cached=True)  # by the registry and what the actor may read
    return [
        Route("/reports", ui.endpoint(index), name="reports"),
        Route("/reports/{name}", ui.endpoint(page), name="report"),
        Route("/reports/{name}/chart.json", ui.endpoint(chart), name="report_chart"),
        Route("/reports/{name}/stays", ui.endpoint(stays), name="report_stays"),
        Route("/reports/{name}/export.{kind:str}", ui.endpoint(export), name="report_export"),
        Route("/leaderboard", ui.endpoint(leaderboard), name="leaderboard"),
        Route("/dashboard", ui.endpoint(dashboard), name="dashboard"),
        Route("/dashboard/dropping", ui.endpoint(dropping), name="dashboard_dropping"),
        Route("/targets", ui.endpoint(targets), methods=["GET", "POST"], name="targets"),
        Route("/admin/dashboards", ui.endpoint(admin_dashboards), name="admin_dashboards"),
        Route("/admin/dashboards/{name}/{op:str}", ui.endpoint(admin_change),
              methods=["POST"], name="admin_dashboard_change"),
    ]


def dropping_url(entity: str, days: int, team: bool) -> str:
    """The list behind an about_to_drop tile (the tile's drill-down)."""
    return "/dashboard/dropping?" + urlencode(
        {"entity": entity, "days": days, "scope": "team" if team else "mine"})


def drop_rows(ui: UIContext, request: Request, entity: str,
              rows: list[tuple[Record, DropForecast]], *,
              with_owner: bool) -> list[tuple[str, str, str, str]]:
    """(title, url, drop time in the viewer's zone, owner) per record; owner names are
    looked up for the records shown only."""
    definition = ui.runtime().registry.entities.get(entity)
    title_field = definition.title_field if definition else "id"
    owners = people_by_id(ui.runtime().engine, [r.get("owner_id") for r, _ in rows]) \
        if with_owner else {}
    locale = ui.locale(request)
    out = []
    for record, forecast in rows:
        owner = owners.get(record.get("owner_id") or 0)
        out.append((str(record.get(title_field) or f"#{record.id}"), f"/e/{entity}/{record.id}",
                    format_instant(forecast.due_at, locale),
                    owner.display_name if owner else ""))
    return out


def _tile_title(ui: UIContext, request: Request, kind: str) -> str:
    titles = {"my_numbers": ui.t(request, "My numbers"),
              "about_to_drop": ui.t(request, "About to drop back to the pool"),
              "due_today": ui.t(request, "Follow-ups due today"),
              "my_rank": ui.t(request, "My rank")}
    return titles.get(kind, kind)


def _tile(ui: UIContext, request: Request, tile: dashboards.FilledTile,
          locale: str) -> views.TileView:
    runtime = ui.runtime()
    kind = tile.tile.kind
    out = views.TileView(kind=kind, title=_tile_title(ui, request, kind), missing=tile.missing)
    if tile.report is not None:
        out.report = views.report_view(runtime.registry, tile.report, locale,
                                       query=f"period={tile.report.window.name}"
                                       if tile.report.window.name != "custom" else "",
                                       period=tile.report.window.name, custom=False,
                                       first="", last="", compact=True)
        out.title = out.report.title
    for n in tile.numbers:
        money = n.measure.kind == "sum"
        out.numbers.append(views.NumberView(
            label=n.measure.label.get(locale), week=number(n.week, money=money),
            month=number(n.month, money=money),
            target="—" if n.target is None else number(n.target, money=money),
            attainment=number(n.attainment, percent=True),
            bar=views.percent_bar(n.attainment)))
    if tile.due_drill is not None:
        out.due_url = drill_url(tile.due_drill)
        entity = runtime.registry.entities.get(tile.tile.entity or "")
        title_field = entity.title_field if entity else "id"
        out.due = [(str(r.get(title_field) or f"#{r.id}"), f"/e/{tile.tile.entity}/{r.id}")
                   for r in tile.due]
    if tile.dropping is not None:
        found = tile.dropping
        rows = drop_rows(ui, request, found.entity, found.rows[:dashboards.DUE_LIMIT],
                         with_owner=found.team)
        out.drop = rows
        out.drop_more = max(0, len(found.rows) - len(rows))
        out.drop_url = dropping_url(found.entity, found.days, found.team)
    if tile.rank is not None:
        mine = tile.rank.mine
        out.title = f"{_tile_title(ui, request, kind)} · {tile.rank.measure.label.get(locale)}"
        out.rank_text = ui.t(request, "%(rank)s of %(people)s", rank=mine.rank,
                             people=tile.rank.people) if mine else "—"
        out.rank_url = f"/leaderboard?measure={tile.rank.measure.name}&scope={tile.rank.scope}"
    return out

