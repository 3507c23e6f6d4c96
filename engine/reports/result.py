"""What running a report gives back: rows of cells, each with its drill-down."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.metadata.reports import Dimension, Measure, Report
from engine.records.query import Filter
from engine.reports.periods import Window

Number = int | Decimal | None


@dataclass(frozen=True)
class Drill:
    """The list of exactly the records a number counts: an entity and list filters."""

    entity: str
    filters: tuple[Filter, ...]


@dataclass(frozen=True)
class StayDrill:
    """The stays a time-in-stage number averages (stays, not records: the list grammar
    cannot say them, so they have their own list, ``ReportRunner.stays``)."""

    report: str
    measure: str
    window: Window
    stage: str | None = None
    owner: int | None = None


@dataclass(frozen=True)
class Cell:
    value: Number
    drill: Drill | StayDrill | None = None


@dataclass(frozen=True)
class Row:
    """One row: its dimension keys (raw), their labels, and a cell per measure."""

    keys: tuple[Any, ...]
    labels: tuple[str, ...]
    cells: dict[str, Cell] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportResult:
    report: Report
    window: Window
    measures: tuple[Measure, ...]
    dimensions: tuple[Dimension, ...]
    rows: list[Row]
    totals: Row
    #: measures the reader may not see (no read grant, or a hidden field): shown empty
    unavailable: frozenset[str] = frozenset()
    truncated: bool = False
