"""Report, dashboard and leaderboard metadata as immutable dataclasses.

The documents (schemas/report.schema.json, dashboard.schema.json,
leaderboard.schema.json) are schema-checked by the loader and cross-checked by
``_report_checks``; this module only turns a valid document into values the
report compiler (engine/reports) reads. Nothing here touches SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.metadata.model import Condition, LocalText

#: Measure kinds computed from rows (the others combine two measures).
ROW_MEASURES = frozenset({"count", "count_distinct", "sum", "avg", "min", "max"})
#: Measures read from the stage history of the base entity's records.
STAGE_TIME_MEASURES = frozenset({"stage_days_avg", "stage_days_median"})
#: Measures whose per-owner values add up to a department's (a department
#: dimension folds owners into departments; distinct counts do not add up).
FOLDABLE_MEASURES = frozenset({"count", "sum", "avg", "min", "max"})
DEFAULT_PERIOD = "this_month"
DEFAULT_DATE_FIELD = "created_at"
DEFAULT_LIMIT = 100


def _conditions(raw: Any) -> tuple[Condition, ...]:
    return tuple(Condition(field=c["field"], op=c["op"], value=c.get("value"))
                 for c in raw or ())


@dataclass(frozen=True)
class Measure:
    """One number of a report (see report.schema.json, ``$defs/measure``)."""

    name: str
    kind: str
    label: LocalText
    entity: str | None = None
    field: str | None = None
    weight: str | None = None
    filters: tuple[Condition, ...] = ()
    date_field: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    step_from: str | None = None
    step_to: str | None = None
    format: str | None = None

    @property
    def from_rows(self) -> bool:
        return self.kind in ROW_MEASURES


@dataclass(frozen=True)
class Dimension:
    """One breakdown of a report's numbers."""

    name: str
    kind: str
    label: LocalText
    field: str | None = None
    level: int | None = None
    grain: str | None = None


@dataclass(frozen=True)
class Join:
    name: str
    field: str


@dataclass(frozen=True)
class Chart:
    type: str
    measures: tuple[str, ...] = ()
    stacked: bool = False


@dataclass(frozen=True)
class Report:
    """A declared report: measures by dimensions over a period of a base entity."""

    name: str
    app: str
    label: LocalText
    description: LocalText
    entity: str
    measures: tuple[Measure, ...]
    dimensions: tuple[Dimension, ...] = ()
    joins: tuple[Join, ...] = ()
    filters: tuple[Condition, ...] = ()
    period_field: str = DEFAULT_DATE_FIELD
    default_period: str = DEFAULT_PERIOD
    sort_by: str | None = None
    sort_descending: bool = False
    limit: int = DEFAULT_LIMIT
    chart: Chart = Chart("table")

    def measure(self, name: str) -> Measure:
        return next(m for m in self.measures if m.name == name)


@dataclass(frozen=True)
class Tile:
    kind: str
    report: str | None = None
    period: str | None = None
    entity: str | None = None
    field: str | None = None
    measure: str | None = None
    scope: str = "mine"
    days: int = 3               # about_to_drop: how far ahead


@dataclass(frozen=True)
class Dashboard:
    name: str
    app: str
    label: LocalText
    roles: tuple[str, ...]
    tiles: tuple[Tile, ...]
    priority: int = 0


@dataclass(frozen=True)
class BoardMeasure:
    """A leaderboard measure: one per-owner-per-day rollup."""

    name: str
    label: LocalText
    entity: str
    kind: str
    field: str | None = None
    date_field: str = DEFAULT_DATE_FIELD
    filters: tuple[Condition, ...] = ()
    #: count pool events of this kind (from the ledger) instead of records
    event: str | None = None


@dataclass(frozen=True)
class Leaderboard:
    name: str
    app: str
    label: LocalText
    measures: tuple[BoardMeasure, ...]


def parse_report(doc: Mapping[str, Any], *, app: str = "") -> Report:
    """A schema-valid report document as a ``Report``."""
    measures = tuple(
        Measure(name=m["name"], kind=m["kind"], label=LocalText.of(m.get("label")),
                entity=m.get("entity"), field=m.get("field"), weight=m.get("weight"),
                filters=_conditions(m.get("filters")), date_field=m.get("date_field"),
                numerator=m.get("numerator"), denominator=m.get("denominator"),
                step_from=m.get("from"), step_to=m.get("to"), format=m.get("format"))
        for m in doc["measures"])
    dimensions = tuple(
        Dimension(name=d["name"], kind=d["kind"], label=LocalText.of(d.get("label")),
                  field=d.get("field"), level=d.get("level"), grain=d.get("grain"))
        for d in doc.get("dimensions") or ())
    period = doc.get("period") or {}
    sort = doc.get("sort") or {}
    chart = doc.get("chart") or {"type": "table"}
    return Report(
        name=doc["name"], app=app, label=LocalText.of(doc["label"]),
        description=LocalText.of(doc.get("description")), entity=doc["entity"],
        measures=measures, dimensions=dimensions,
        joins=tuple(Join(j["name"], j["field"]) for j in doc.get("joins") or ()),
        filters=_conditions(doc.get("filters")),
        period_field=period.get("field", DEFAULT_DATE_FIELD),
        default_period=period.get("default", DEFAULT_PERIOD),
        sort_by=sort.get("by"), sort_descending=bool(sort.get("descending", False)),
        limit=int(doc.get("limit", DEFAULT_LIMIT)),
        chart=Chart(chart["type"], tuple(chart.get("measures") or ()),
                    bool(chart.get("stacked", False))))


def parse_dashboard(doc: Mapping[str, Any], *, app: str = "") -> Dashboard:
    """A schema-valid dashboard document as a ``Dashboard``."""
    tiles = tuple(Tile(kind=t["kind"], report=t.get("report"), period=t.get("period"),
                       entity=t.get("entity"), field=t.get("field"), measure=t.get("measure"),
                       scope=t.get("scope", "mine"), days=int(t.get("days", 3)))
                  for t in doc["tiles"])
    return Dashboard(name=doc["name"], app=app, label=LocalText.of(doc["label"]),
                     roles=tuple(doc["roles"]), tiles=tiles,
                     priority=int(doc.get("priority", 0)))


def parse_leaderboard(doc: Mapping[str, Any], *, app: str = "") -> Leaderboard:
    """A schema-valid leaderboard document as a ``Leaderboard``."""
    measures = tuple(
        BoardMeasure(name=m["name"], label=LocalText.of(m["label"]), entity=m["entity"],
                     kind=m["kind"], field=m.get("field"),
                     date_field=m.get("date_field", DEFAULT_DATE_FIELD),
                     filters=_conditions(m.get("filters")), event=m.get("event"))
        for m in doc["measures"])
    return Leaderboard(name=doc["name"], app=app, label=LocalText.of(doc["label"]),
                       measures=measures)


@dataclass(frozen=True)
class ReportCatalog:
    """Every report, dashboard and leaderboard of a registry, by name."""

    reports: Mapping[str, Report]
    dashboards: Mapping[str, Dashboard]
    leaderboards: Mapping[str, Leaderboard]

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ReportCatalog:
        """The catalog of a registry's canonical document (see ``Registry.document``)."""
        apps = document.get("report_apps") or {}
        return cls(
            reports={n: parse_report(d, app=apps.get(f"report:{n}", ""))
                     for n, d in (document.get("reports") or {}).items()},
            dashboards={n: parse_dashboard(d, app=apps.get(f"dashboard:{n}", ""))
                        for n, d in (document.get("dashboards") or {}).items()},
            leaderboards={n: parse_leaderboard(d, app=apps.get(f"leaderboard:{n}", ""))
                          for n, d in (document.get("leaderboards") or {}).items()})

    def board_measure(self, name: str) -> BoardMeasure | None:
        for board in self.leaderboards.values():
            for m in board.measures:
                if m.name == name:
                    return m
        return None

    def board_measures(self) -> list[BoardMeasure]:
        return [m for b in self.leaderboards.values() for m in b.measures]
