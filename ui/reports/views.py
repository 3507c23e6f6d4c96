"""View-models of the report screens: every label, URL and number text computed here."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.metadata.model import FieldType, Registry
from engine.metadata.reports import Report
from engine.reports.leaderboard import Board, Standing
from engine.reports.periods import PERIODS, Window
from engine.reports.result import ReportResult
from ui import i18n
from ui.i18n import N_
from ui.reports.links import drill_url, measure_format, number

#: Period names as offered in pickers (translated by the catalog).
PERIOD_LABELS = {
    "today": N_("Today"), "yesterday": N_("Yesterday"), "this_week": N_("This week"),
    "last_week": N_("Last week"), "this_month": N_("This month"),
    "last_month": N_("Last month"), "this_quarter": N_("This quarter"),
    "last_quarter": N_("Last quarter"), "this_year": N_("This year"),
    "last_year": N_("Last year"), "last_7_days": N_("Last 7 days"),
    "last_30_days": N_("Last 30 days"), "last_90_days": N_("Last 90 days"),
    "last_12_months": N_("Last 12 months"), "all_time": N_("All time"),
    "custom": N_("Custom"),
}


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    selected: bool


@dataclass(frozen=True)
class CellView:
    text: str
    url: str | None


@dataclass(frozen=True)
class RowView:
    labels: list[str]
    cells: list[CellView]


@dataclass(frozen=True)
class ReportView:
    name: str
    title: str
    description: str
    headers: list[str]
    rows: list[RowView]
    totals: RowView | None
    chart_url: str | None
    csv_url: str
    xlsx_url: str
    periods: list[Option]
    custom: bool
    first: str
    last: str
    window_text: str
    truncated: bool
    unavailable: list[str]
    compact: bool = False


def period_options(locale: str, chosen: str, *, names: tuple[str, ...] = PERIODS,
                   custom: bool = True) -> list[Option]:
    values = [*names, "custom"] if custom else list(names)
    return [Option(v, i18n.t(locale, PERIOD_LABELS[v]), v == chosen) for v in values]


def window_text(locale: str, w: Window) -> str:
    if w.first is None or w.end is None:
        return i18n.t(locale, "All time")
    from datetime import timedelta
    last = w.end - timedelta(days=1)
    return w.first.isoformat() if last == w.first else f"{w.first} – {last}"


def money_fields(registry: Registry, report: Report) -> frozenset[str]:
    names: set[str] = set()
    for m in report.measures:
        entity = registry.entities.get(m.entity or report.entity)
        if entity is not None:
            names |= {f.name for f in entity.fields if f.type is FieldType.MONEY}
    return frozenset(names)


def report_view(registry: Registry, result: ReportResult, locale: str, *, query: str,
                period: str, custom: bool, first: str, last: str,
                compact: bool = False) -> ReportView:
    report = result.report
    money = money_fields(registry, report)
    formats = {m.name: measure_format(m, money) for m in report.measures}
    headers = [d.label.get(locale) or d.name for d in report.dimensions]
    headers += [m.label.get(locale) or m.name for m in report.measures]

    def cells(row: Any) -> list[CellView]:
        out = []
        for m in report.measures:
            cell = row.cells[m.name]
            text = number(cell.value, percent=formats[m.name] == "percent",
                          money=formats[m.name] == "money")
            out.append(CellView(text, drill_url(cell.drill) if cell.value is not None
                                else None))
        return out

    rows = [RowView(list(r.labels), cells(r)) for r in result.rows]
    totals = RowView([i18n.t(locale, "Total")] + [""] * (len(report.dimensions) - 1),
                     cells(result.totals)) if report.dimensions else None
    if not report.dimensions:
        rows = [RowView([], cells(result.totals))]
    base = f"/reports/{report.name}"
    suffix = f"?{query}" if query else ""
    return ReportView(
        name=report.name, title=report.label.get(locale), description=report.description.get(
            locale), headers=headers, rows=rows, totals=totals,
        chart_url=None if report.chart.type == "table" else f"{base}/chart.json{suffix}",
        csv_url=f"{base}/export.csv{suffix}", xlsx_url=f"{base}/export.xlsx{suffix}",
        periods=period_options(locale, period), custom=custom, first=first, last=last,
        window_text=window_text(locale, result.window), truncated=result.truncated,
        unavailable=[report.measure(n).label.get(locale) or n for n in
                     sorted(result.unavailable)], compact=compact)


def chart_data(registry: Registry, result: ReportResult, locale: str) -> dict[str, Any]:
    """The JSON a chart is drawn from: categories, series and a list URL per point."""
    report = result.report
    chart = report.chart
    money = money_fields(registry, report)
    names = list(chart.measures) or [m.name for m in report.measures if m.from_rows]
    measures = [report.measure(n) for n in names]
    percent = {m.name: measure_format(m, money) == "percent" for m in measures}

    def point(row: Any, name: str, label: str | None = None) -> dict[str, Any]:
        cell = row.cells[name]
        value = cell.value
        shown: float | int | None = None if value is None else (
            value if isinstance(value, int) else float(value))
        out: dict[str, Any] = {"value": shown, "url": drill_url(cell.drill)}
        if label is not None:
            out["name"] = label
        return out

    if chart.type == "funnel":
        row = result.totals
        data = [point(row, m.name, m.label.get(locale) or m.name) for m in measures]
        return {"type": "funnel", "title": report.label.get(locale),
                "series": [{"name": report.label.get(locale), "data": data}]}
    rows = result.rows or []
    categories = [" · ".join(r.labels) or report.label.get(locale) for r in rows] \
        if report.dimensions else [report.label.get(locale)]
    source = rows if report.dimensions else [result.totals]
    if chart.type == "pie":
        first = measures[0]
        data = [point(r, first.name, c) for r, c in zip(source, categories, strict=True)]
        return {"type": "pie", "title": report.label.get(locale),
                "series": [{"name": first.label.get(locale) or first.name, "data": data}]}
    series = [{"name": m.label.get(locale) or m.name, "percent": percent[m.name],
               "data": [point(r, m.name) for r in source]} for m in measures]
    return {"type": chart.type, "title": report.label.get(locale), "categories": categories,
            "stacked": chart.stacked, "series": series}


@dataclass(frozen=True)
class StandingView:
    rank: int
    name: str
    department: str
    value: str
    target: str
    attainment: str
    me: bool


@dataclass(frozen=True)
class LeaderboardView:
    title: str
    measures: list[Option]
    periods: list[Option]
    scopes: list[Option]
    custom: bool
    first: str
    last: str
    window_text: str
    standings: list[StandingView]
    mine: StandingView | None
    mine_listed: bool
    people: int
    total: str
    value_heading: str


def standing_view(s: Standing, *, money: bool) -> StandingView:
    return StandingView(rank=s.rank, name=s.name, department=s.department,
                        value=number(s.value, money=money),
                        target="—" if s.target is None else number(s.target, money=money),
                        attainment=number(s.attainment, percent=True), me=s.me)


def leaderboard_view(registry: Registry, b: Board, locale: str, *, period: str, custom: bool,
                     first: str, last: str, title: str) -> LeaderboardView:
    entity = registry.entities.get(b.measure.entity)
    money = entity is not None and any(f.name == b.measure.field and f.type is FieldType.MONEY
                                       for f in entity.fields)
    standings = [standing_view(s, money=money) for s in b.standings]
    mine = standing_view(b.mine, money=money) if b.mine else None
    return LeaderboardView(
        title=title,
        measures=[Option(m.name, m.label.get(locale), m.name == b.measure.name)
                  for m in b.measures],
        periods=period_options(locale, period, names=("today", "this_week", "this_month",
                                                      "last_month", "this_quarter",
                                                      "this_year")),
        scopes=[Option("team", i18n.t(locale, "My team"), b.scope == "team"),
                Option("all", i18n.t(locale, "All teams"), b.scope == "all")],
        custom=custom, first=first, last=last, window_text=window_text(locale, b.window),
        standings=standings, mine=mine, mine_listed=any(s.me for s in standings),
        people=b.people, total=number(b.total, money=money),
        value_heading=b.measure.label.get(locale))


@dataclass(frozen=True)
class NumberView:
    label: str
    week: str
    month: str
    target: str
    attainment: str
    bar: int


@dataclass
class TileView:
    kind: str
    title: str
    numbers: list[NumberView] = field(default_factory=list)
    due: list[tuple[str, str]] = field(default_factory=list)
    due_url: str | None = None
    #: about_to_drop: (title, record url, drop time, owner), soonest first
    drop: list[tuple[str, str, str, str]] = field(default_factory=list)
    drop_url: str = ""
    drop_more: int = 0
    rank_text: str = ""
    rank_url: str = ""
    report: ReportView | None = None
    missing: str = ""


@dataclass(frozen=True)
class DashboardView:
    title: str
    tiles: list[TileView]
    has_charts: bool


def percent_bar(value: Decimal | None) -> int:
    if value is None:
        return 0
    return max(0, min(100, int(value * 100)))
