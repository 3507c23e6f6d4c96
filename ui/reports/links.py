"""Drill-down links and number formats shared by the report screens."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import urlencode

from engine.metadata.reports import Measure
from engine.reports.result import Drill, StayDrill
from ui.screens.records.state import FILTER_PREFIX

_FLAG_OPS = ("is_empty", "not_empty")


def _param(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def stays_url(drill: StayDrill) -> str:
    """The list of the stays a time-in-stage number averages (the report's window)."""
    w = drill.window
    pairs: list[tuple[str, str]] = [("measure", drill.measure)]
    if w.first is not None and w.end is not None:
        pairs += [("period", "custom"), ("from", w.first.isoformat()),
                  ("to", (w.end - dt.timedelta(days=1)).isoformat())]
    else:
        pairs.append(("period", "all_time"))
    if drill.stage is not None:
        pairs.append(("stage", drill.stage))
    if drill.owner is not None:
        pairs.append(("owner", str(drill.owner)))
    return f"/reports/{drill.report}/stays?{urlencode(pairs)}"


def drill_url(drill: Drill | StayDrill | None) -> str | None:
    """The list screen URL whose filters are exactly the drill's (None: no link)."""
    if drill is None:
        return None
    if isinstance(drill, StayDrill):
        return stays_url(drill)
    pairs: list[tuple[str, str]] = []
    for f in drill.filters:
        key = f"{FILTER_PREFIX}{f.field}.{f.op}"
        if f.op in _FLAG_OPS:
            pairs.append((key, "1"))
        elif isinstance(f.value, (list, tuple)):
            pairs.extend((key, _param(v)) for v in f.value)
        else:
            pairs.append((key, _param(f.value)))
    return f"/e/{drill.entity}?{urlencode(pairs)}"


def number(value: int | Decimal | None, *, percent: bool = False, money: bool = False) -> str:
    """A number as shown in tables: grouped thousands, percentages with one decimal."""
    if value is None:
        return "—"
    if percent:
        return f"{Decimal(value) * 100:.1f}%"
    if isinstance(value, int):
        return f"{value:,}"
    if money or value != value.to_integral_value():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def measure_format(m: Measure, money_fields: frozenset[str]) -> str:
    """number | money | percent for a measure (its declared format, else by kind)."""
    if m.format:
        return m.format
    if m.kind in ("ratio", "conversion"):
        return "percent"
    if m.field is not None and m.field in money_fields and m.kind != "count_distinct":
        return "money"
    return "number"
