"""The one report query compiler: a declared report -> permission-filtered SQL -> rows.

Each group of measures on one entity and date field becomes one grouped SELECT
whose WHERE is the records service's ``scoped_where`` for the reader (the
report's filters, the period, the recycle-bin rule and the row scope, exactly as
the list screen builds them), so a rep's report counts only what the rep may
list and a supervisor's rolls up the team. Measure conditions are the same
list-filter clauses, inside CASE. Identifiers come from the registry's tables;
every value is bound. Every number carries the list filters that reproduce it
(``Drill``), which the list screen runs through the same scope.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, distinct, false, func, literal, select

from engine.actor import Actor
from engine.errors import ForbiddenError, QueryError
from engine.messages import M
from engine.metadata.model import FieldType, Registry
from engine.metadata.reports import (
    FOLDABLE_MEASURES,
    STAGE_TIME_MEASURES,
    Dimension,
    Measure,
    Report,
)
from engine.permissions.directory import people_by_id
from engine.permissions.org import OrgSnapshot, load_org_snapshot
from engine.records._plan import EntityPlan
from engine.records.query import Filter, filter_clause
from engine.records.service import RecordService
from engine.reports.periods import Window, bucket_label, buckets
from engine.reports.result import Cell, Drill, ReportResult, Row, StayDrill
from engine.reports.zone import day_start, local_day, sync_company_zone
from engine.storage.identity_tables import DEPARTMENT_TABLE
from engine.storage.stage_tables import STAGE_HISTORY_TABLE

NONE_LABEL = "—"
NO_DEPARTMENT = ("no_department",)


@dataclass(frozen=True)
class _Group:
    entity: str
    date_field: str
    measures: tuple[Measure, ...]


def _date_value(plan: EntityPlan, name: str, day: dt.date) -> Any:
    f = plan.lookup(name)
    if f is not None and f.type is FieldType.DATE:
        return day
    return day_start(day)


def _text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


#: Stays listed at most behind one time-in-stage number.
MAX_STAYS = 500


@dataclass(frozen=True)
class Stay:
    """One stay of a record in a stage (left_at None: still there)."""

    record_id: int
    stage: str
    owner_id: int | None
    entered_at: dt.datetime
    left_at: dt.datetime | None
    days: Decimal


class ReportRunner:
    """Runs reports for actors over one records service (one runtime)."""

    def __init__(self, records: RecordService, registry: Registry) -> None:
        self.records = records
        self.registry = registry

    # --- public ---------------------------------------------------------------

    def run(self, actor: Actor, report: Report, window: Window, *,
            locale: str | None = None) -> ReportResult:
        """The report's rows and totals as ``actor`` may see them over ``window``."""
        locale = locale or actor.locale
        with self.records.engine.connect() as conn:
            sync_company_zone(conn)   # periods and buckets in the company's current zone
        groups = self._groups(report)
        unavailable: set[str] = set()
        org: OrgSnapshot | None = None
        if any(d.kind == "department" for d in report.dimensions):
            with self.records.engine.connect() as conn:
                org = load_org_snapshot(conn)
        buckets_of = self._period_buckets(actor, report, window, groups)
        totals: dict[str, dict[str, Any]] = {}
        per_key: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
        for group in groups:
            try:
                got = self._run_group(actor, report, group, window, buckets_of, dims=True)
                top = got if not report.dimensions else \
                    self._run_group(actor, report, group, window, buckets_of, dims=False)
            except ForbiddenError:
                unavailable.update(m.name for m in group.measures)
                continue
            if got is None or top is None:
                unavailable.update(m.name for m in group.measures)
                continue
            for key, values in got.items():
                key = self._fold_key(report, key, org)
                slot = per_key.setdefault(key, {})
                for name, parts in values.items():
                    slot[name] = _merge(report.measure(name), slot.get(name), parts)
            for values in top.values():
                for name, parts in values.items():
                    totals[name] = _merge(report.measure(name), totals.get(name), parts)
        timed = tuple(m for m in report.measures if m.kind in STAGE_TIME_MEASURES)
        if timed:
            got_times = self._stage_times(actor, report, timed, window, dims=True)
            top_times = got_times if not report.dimensions else \
                self._stage_times(actor, report, timed, window, dims=False)
            if got_times is None or top_times is None:
                unavailable.update(m.name for m in timed)
            else:
                for key, values in got_times.items():
                    slot = per_key.setdefault(self._fold_key(report, key, org), {})
                    for name, parts in values.items():
                        slot[name] = _merge(report.measure(name), slot.get(name), parts)
                for values in top_times.values():
                    for name, parts in values.items():
                        totals[name] = _merge(report.measure(name), totals.get(name), parts)
        self._add_empty_options(report, per_key)
        labels = _Labels(self, report, locale, org, owners={
            value for key in per_key for d, value in zip(report.dimensions, key, strict=False)
            if d.kind == "owner" and isinstance(value, int)})
        rows = [self._row(report, key, values, window, buckets_of, labels, unavailable)
                for key, values in per_key.items()]
        rows = self._sort(report, rows, labels)
        truncated = len(rows) > report.limit
        rows = rows[:report.limit]
        total_row = self._row(report, (), totals, window, buckets_of, labels, unavailable,
                              dims=False)
        return ReportResult(report=report, window=window, measures=report.measures,
                            dimensions=report.dimensions, rows=rows, totals=total_row,
                            unavailable=frozenset(unavailable), truncated=truncated)

    # --- planning -------------------------------------------------------------

    def _groups(self, report: Report) -> list[_Group]:
        found: dict[tuple[str, str], list[Measure]] = {}
        for m in report.measures:
            if not m.from_rows:
                continue
            entity = m.entity or report.entity
            date_field = m.date_field or (report.period_field if entity == report.entity
                                          else "created_at")
            found.setdefault((entity, date_field), []).append(m)
        return [_Group(e, d, tuple(ms)) for (e, d), ms in found.items()]

    def _period_buckets(self, actor: Actor, report: Report, window: Window,
                        groups: Sequence[_Group]) -> list[tuple[dt.date, dt.date]] | None:
        dim = next((d for d in report.dimensions if d.kind == "period"), None)
        if dim is None:
            return None
        assert dim.grain is not None
        first, end = window.first, window.end
        if first is None or end is None:
            first, end = self._data_span(actor, groups)
            if first is None or end is None:
                return []
        return buckets(first, end, dim.grain)

    def _data_span(self, actor: Actor,
                   groups: Sequence[_Group]) -> tuple[dt.date | None, dt.date | None]:
        """All time by period: from the first to the last day any counted record has."""
        lows: list[dt.date] = []
        highs: list[dt.date] = []
        for group in groups:
            plan = self.records.plan(group.entity)
            try:
                where = self.records.scoped_where(actor, group.entity)
            except ForbiddenError:
                continue
            if where is None:
                continue
            col = plan.table.c[group.date_field]
            with self.records.engine.connect() as conn:
                low, high = conn.execute(select(func.min(col), func.max(col))
                                         .where(*where)).one()
            if low is not None:
                lows.append(local_day(_as_time(low)))
                highs.append(local_day(_as_time(high)))
        if not lows:
            return None, None
        return min(lows), max(highs) + dt.timedelta(days=1)

    # --- filters (the drill-down and the WHERE are built from the same ones) --------

    def _base_filters(self, report: Report, group: _Group, window: Window,
                      bucket: tuple[dt.date, dt.date] | None) -> list[Filter]:
        plan = self.records.plan(group.entity)
        filters: list[Filter] = []
        if group.entity == report.entity:
            filters.extend(Filter(c.field, c.op, c.value) for c in report.filters)
        first, end = (bucket if bucket is not None else (window.first, window.end))
        if first is not None:
            filters.append(Filter(group.date_field, "gte",
                                  _text(_date_value(plan, group.date_field, first))))
        if end is not None:
            filters.append(Filter(group.date_field, "lt",
                                  _text(_date_value(plan, group.date_field, end))))
        return filters

    def _run_group(self, actor: Actor, report: Report, group: _Group, window: Window,
                   buckets_of: list[tuple[dt.date, dt.date]] | None, *,
                   dims: bool) -> dict[tuple[Any, ...], dict[str, dict[str, Any]]] | None:
        records = self.records
        plan = records.plan(group.entity)
        period = None
        if buckets_of:
            period = (buckets_of[0][0], buckets_of[-1][1])
        filters = self._base_filters(report, group, window, period)
        where = records.scoped_where(actor, group.entity, filters)
        hidden = records.policy.hidden_fields(actor, plan.entity)
        dimensions = report.dimensions if dims else ()
        if where is None:
            return {}
        if buckets_of == [] and dims:
            return {}
        table = plan.table
        source: Any = table
        group_cols: list[Any] = []
        for dim in dimensions:
            expr, source = self._dimension(actor, report, plan, group, dim, hidden, source,
                                           buckets_of)
            group_cols.append(expr)
        aggregates: list[Any] = []
        names: list[tuple[str, str]] = []
        for m in group.measures:
            for part, expr in self._aggregate(plan, m, hidden):
                aggregates.append(expr.label(f"a{len(aggregates)}"))
                names.append((m.name, part))
        if not aggregates:
            return None
        stmt = select(*(c.label(f"d{i}") for i, c in enumerate(group_cols)), *aggregates) \
            .select_from(source).where(*where)
        if group_cols:
            stmt = stmt.group_by(*group_cols)
        out: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
        with records.engine.connect() as conn:
            for row in conn.execute(stmt):
                key = tuple(row[:len(group_cols)])
                slot = out.setdefault(key, {})
                for (name, part), value in zip(names, row[len(group_cols):], strict=True):
                    slot.setdefault(name, {})[part] = value
        if not group_cols and not out:
            out[()] = {}
        return out

    def _dimension(self, actor: Actor, report: Report, plan: EntityPlan, group: _Group,
                   dim: Dimension, hidden: frozenset[str], source: Any,
                   buckets_of: list[tuple[dt.date, dt.date]] | None) -> tuple[Any, Any]:
        table = plan.table
        if dim.kind in ("owner", "department"):
            return table.c.owner_id, source
        if dim.kind == "stage":
            return table.c.stage, source
        if dim.kind == "period":
            assert buckets_of is not None
            col = table.c[group.date_field]
            whens = [(col < _date_value(plan, group.date_field, end), i)
                     for i, (_, end) in enumerate(buckets_of)]
            return case(*whens, else_=None), source
        assert dim.field is not None
        prefix, _, name = dim.field.rpartition(".")
        if not prefix:
            if plan.lookup(name) is None or name in hidden:
                raise QueryError(report.name, name, M("cannot break down by this field"))
            return table.c[name], source
        join = next(j for j in report.joins if j.name == prefix)
        ref = plan.fields[join.field].field
        assert ref.target is not None
        target = self.records.plan(ref.target)
        target_hidden = self.records.policy.hidden_fields(actor, target.entity)
        if name in target_hidden or target.lookup(name) is None:
            raise QueryError(report.name, dim.field, M("cannot break down by this field"))
        # The referenced record shows its value only when the reader may read it;
        # otherwise the row counts under "none", as if the reference were empty.
        try:
            scope = self.records.scoped_where(actor, ref.target)
        except ForbiddenError:
            scope = None
        on = and_(target.table.c.id == table.c[join.field],
                  *(scope if scope is not None else [false()]))
        return target.table.c[name], source.outerjoin(target.table, on)

    def _aggregate(self, plan: EntityPlan, m: Measure,
                   hidden: frozenset[str]) -> Iterable[tuple[str, Any]]:
        """(part, SQL aggregate) pairs of one measure: count, sum, n (for avg), min, max."""
        if m.field is not None and m.field in hidden or m.weight is not None and \
                m.weight in hidden:
            return []
        cond: ColumnElement[bool] | None = None
        if m.filters:
            cond = and_(*(filter_clause(plan, Filter(c.field, c.op, c.value), hidden)
                          for c in m.filters))
        table = plan.table

        def only(expr: Any) -> Any:
            return expr if cond is None else case((cond, expr), else_=None)

        if m.kind == "count":
            return [("v", func.count() if cond is None else func.count(case((cond, 1))))]
        col: Any = table.c[m.field] if m.field else None
        if m.kind == "count_distinct":
            return [("v", func.count(distinct(only(col))))]
        if m.weight is not None:
            col = col * table.c[m.weight] / 100
        if m.kind == "sum":
            return [("v", func.sum(only(col)))]
        if m.kind == "avg":
            return [("sum", func.sum(only(col))), ("n", func.count(only(col)))]
        if m.kind == "min":
            return [("v", func.min(only(col)))]
        return [("v", func.max(only(col)))]

    def stays(self, actor: Actor, report: Report, measure: str, window: Window, *,
              stage: str | None = None, owner: int | None = None,
              limit: int = MAX_STAYS) -> list[Stay]:
        """The stays one time-in-stage number averages, newest first: the same rows
        ``_stage_times`` reads (the reader's scope on the record, the report's and the
        measure's filters, stays begun in ``window``), narrowed to a stage and an owner."""
        m = next((x for x in report.measures if x.name == measure), None)
        if m is None or m.kind not in STAGE_TIME_MEASURES:
            raise QueryError("report", "measure", M("no time-in-stage measure %(name)s",
                                                    name=repr(measure)))
        records = self.records
        plan = records.plan(report.entity)
        where = records.scoped_where(actor, report.entity,
                                     [Filter(c.field, c.op, c.value) for c in report.filters])
        if where is None:
            return []
        hidden = records.policy.hidden_fields(actor, plan.entity)
        history = records.schema.system[STAGE_HISTORY_TABLE]
        table = plan.table
        stmt = select(history.c.record_id, history.c.stage, table.c.owner_id,
                      history.c.entered_at, history.c.left_at) \
            .select_from(history.join(table, and_(history.c.record_id == table.c.id,
                                                  history.c.entity == plan.name))) \
            .where(*where)
        stmt = stmt.where(*(filter_clause(plan, Filter(c.field, c.op, c.value), hidden)
                            for c in m.filters))
        if window.first is not None:
            stmt = stmt.where(history.c.entered_at >= day_start(window.first))
        if window.end is not None:
            stmt = stmt.where(history.c.entered_at < day_start(window.end))
        if stage is not None:
            stmt = stmt.where(history.c.stage == stage)
        if owner is not None:
            stmt = stmt.where(table.c.owner_id == owner)
        stmt = stmt.order_by(history.c.entered_at.desc(), history.c.record_id).limit(limit)
        now = dt.datetime.now(dt.UTC)
        with records.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        out = []
        for rid, at_stage, who, entered, left in rows:
            start, end = _aware(entered), _aware(left) if left else now
            out.append(Stay(int(rid), str(at_stage), None if who is None else int(who), start,
                            None if left is None else end,
                            Decimal(str(round((end - start).total_seconds() / 86400, 2)))))
        return out

    def _stage_times(self, actor: Actor, report: Report, measures: Sequence[Measure],
                     window: Window, *, dims: bool
                     ) -> dict[tuple[Any, ...], dict[str, dict[str, Any]]] | None:
        """Days per stay in a stage, grouped like the report, for stays begun in ``window``.

        Read through the base entity's ``scoped_where``: a stay counts only when the
        reader may read its record (joined on the record id).
        """
        records = self.records
        plan = records.plan(report.entity)
        filters = [Filter(c.field, c.op, c.value) for c in report.filters]
        try:
            where = records.scoped_where(actor, report.entity, filters)
        except ForbiddenError:
            return None
        if where is None:
            return {}
        hidden = records.policy.hidden_fields(actor, plan.entity)
        history = records.schema.system[STAGE_HISTORY_TABLE]
        table = plan.table
        columns: list[Any] = []
        for dim in (report.dimensions if dims else ()):
            columns.append(history.c.stage if dim.kind == "stage" else table.c.owner_id)
        conds = [and_(*(filter_clause(plan, Filter(c.field, c.op, c.value), hidden)
                        for c in m.filters)) if m.filters else None for m in measures]
        flags = [case((c, 1), else_=0) if c is not None else literal(1) for c in conds]
        stmt = select(*columns, history.c.entered_at, history.c.left_at, *flags) \
            .select_from(history.join(table, and_(history.c.record_id == table.c.id,
                                                  history.c.entity == plan.name))) \
            .where(*where)
        if window.first is not None:
            stmt = stmt.where(history.c.entered_at >= day_start(window.first))
        if window.end is not None:
            stmt = stmt.where(history.c.entered_at < day_start(window.end))
        now = dt.datetime.now(dt.UTC)
        out: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
        n = len(columns)
        with records.engine.connect() as conn:
            for row in conn.execute(stmt):
                entered, left = _aware(row[n]), _aware(row[n + 1]) if row[n + 1] else now
                days = (left - entered).total_seconds() / 86400
                slot = out.setdefault(tuple(row[:n]), {})
                for m, flag in zip(measures, row[n + 2:], strict=True):
                    if flag:
                        slot.setdefault(m.name, {"days": []})["days"].append(days)
        if not dims and not out:
            out[()] = {}
        return out

    # --- shaping --------------------------------------------------------------

    def _fold_key(self, report: Report, key: tuple[Any, ...],
                  org: OrgSnapshot | None) -> tuple[Any, ...]:
        if org is None:
            return key
        out = list(key)
        for i, dim in enumerate(report.dimensions):
            if dim.kind != "department":
                continue
            out[i] = _department_at(org, key[i], dim.level or 1)
        return tuple(out)

    def _add_empty_options(self, report: Report,
                           per_key: dict[tuple[Any, ...], dict[str, dict[str, Any]]]) -> None:
        """A single select or stage breakdown lists every option, even with nothing in it."""
        if len(report.dimensions) != 1:
            return
        for value in self._natural_values(report, report.dimensions[0]):
            per_key.setdefault((value,), {})

    def _natural_values(self, report: Report, dim: Dimension) -> list[Any]:
        if dim.kind == "stage":   # keys are unique across pipelines: pipeline by pipeline
            return [s.key for p in self.registry.pipelines_of(report.entity) for s in p.stages]
        if dim.kind == "field" and dim.field and "." not in dim.field:
            f = next((f for f in self.registry.entity(report.entity).fields
                      if f.name == dim.field), None)
            if f is not None and f.type is FieldType.SELECT:
                return [o.value for o in f.options]
        return []

    def _row(self, report: Report, key: tuple[Any, ...], values: Mapping[str, dict[str, Any]],
             window: Window, buckets_of: list[tuple[dt.date, dt.date]] | None,
             labels: _Labels, unavailable: set[str], *, dims: bool = True) -> Row:
        cells: dict[str, Cell] = {}
        drills: dict[str, Drill | None] = {}
        for m in report.measures:
            if m.kind in ("ratio", "conversion"):
                continue
            if m.kind in STAGE_TIME_MEASURES:
                days = None if m.name in unavailable else _days(m, values.get(m.name) or {})
                stay = None
                if days is not None:   # its own list: the list grammar cannot say stays
                    by = dict(zip((d.kind for d in report.dimensions), key if dims else (),
                                  strict=False))
                    stay = StayDrill(report.name, m.name, window, stage=by.get("stage"),
                                     owner=by.get("owner"))
                cells[m.name] = Cell(days, stay)
                drills[m.name] = None
                continue
            if m.name in unavailable:
                cells[m.name] = Cell(None)
                drills[m.name] = None
                continue
            parts = values.get(m.name) or {}
            drill = self._drill(report, m, key if dims else (), window, buckets_of, labels)
            drills[m.name] = drill
            cells[m.name] = Cell(_value(m, parts), drill)
        for m in report.measures:
            if m.kind not in ("ratio", "conversion"):
                continue
            top, bottom = ((m.numerator, m.denominator) if m.kind == "ratio"
                           else (m.step_to, m.step_from))
            assert top is not None and bottom is not None
            a, b = cells.get(top), cells.get(bottom)
            ratio = None
            if a is not None and b is not None and a.value is not None and b.value:
                ratio = Decimal(a.value) / Decimal(b.value)
            cells[m.name] = Cell(ratio, drills.get(top))
        shown = tuple(labels.label(d, k, buckets_of) for d, k in zip(report.dimensions, key,
                                                                     strict=False))
        return Row(keys=key, labels=shown if dims else (), cells=cells)

    def _drill(self, report: Report, m: Measure, key: tuple[Any, ...], window: Window,
               buckets_of: list[tuple[dt.date, dt.date]] | None,
               labels: _Labels) -> Drill | None:
        entity = m.entity or report.entity
        group = next(g for g in self._groups(report) if m in g.measures)
        bucket = None
        extra: list[Filter] = []
        for dim, value in zip(report.dimensions, key, strict=False):
            if dim.kind == "period":
                if value is None or not buckets_of:
                    return None
                bucket = buckets_of[int(value)]
                continue
            found = _dimension_filter(dim, value, labels.org)
            if found is None:
                return None
            extra.extend(found)
        if key == () and buckets_of:
            bucket = (buckets_of[0][0], buckets_of[-1][1])
        filters = self._base_filters(report, group, window, bucket)
        filters.extend(Filter(c.field, c.op, c.value) for c in m.filters)
        filters.extend(extra)
        return Drill(entity, tuple(filters))

    def _sort(self, report: Report, rows: list[Row], labels: _Labels) -> list[Row]:
        def natural(row: Row) -> tuple[Any, ...]:
            return tuple(labels.order(d, k) for d, k in zip(report.dimensions, row.keys,
                                                            strict=False))
        rows = sorted(rows, key=natural)
        by = report.sort_by
        if by and by != "dimension":
            def measure_key(row: Row) -> tuple[bool, Decimal]:
                value = row.cells[by].value
                missing = value is None
                number = Decimal(0) if value is None else Decimal(value)
                return (missing, -number if report.sort_descending else number)
            rows = sorted(rows, key=measure_key)
        elif by == "dimension" and report.sort_descending:
            rows.reverse()
        return rows


def _as_time(value: Any) -> dt.datetime | dt.date:
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return dt.date.fromisoformat(value[:10])
    assert isinstance(value, (dt.date, dt.datetime))
    return value


def _aware(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _days(m: Measure, parts: Mapping[str, Any]) -> Decimal | None:
    days = sorted(parts.get("days") or [])
    if not days:
        return None
    if m.kind == "stage_days_avg":
        value = sum(days) / len(days)
    else:
        mid = len(days) // 2
        value = days[mid] if len(days) % 2 else (days[mid - 1] + days[mid]) / 2
    return Decimal(str(round(value, 2)))


def _merge(m: Measure, old: dict[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """Combine the parts of one measure from two owners folded into one department."""
    if old is None:
        return dict(new)
    out = dict(old)
    for part, value in new.items():
        if value is None:
            continue
        if out.get(part) is None:
            out[part] = value
        elif m.kind == "min":
            out[part] = min(out[part], value)
        elif m.kind == "max":
            out[part] = max(out[part], value)
        else:
            out[part] = out[part] + value
    return out


def _value(m: Measure, parts: Mapping[str, Any]) -> int | Decimal | None:
    if m.kind in ("count", "count_distinct"):
        return int(parts.get("v") or 0)
    if m.kind == "sum":
        v = parts.get("v")
        return Decimal(str(v)) if v is not None else Decimal(0)
    if m.kind == "avg":
        total, n = parts.get("sum"), parts.get("n")
        if not n or total is None:
            return None
        return Decimal(str(total)) / Decimal(int(n))
    v = parts.get("v")
    return None if v is None else Decimal(str(v))


def _department_at(org: OrgSnapshot, owner: Any, level: int) -> Any:
    if owner is None:
        return None
    dept = org.department_of(int(owner))
    if dept is None:
        return NO_DEPARTMENT
    ancestors = dept.ancestor_ids
    return ancestors[min(level, len(ancestors)) - 1]


def _dimension_filter(dim: Dimension, value: Any,
                      org: OrgSnapshot | None) -> list[Filter] | None:
    if dim.kind in ("owner", "stage") or (dim.kind == "field" and dim.field
                                          and "." not in dim.field):
        name = {"owner": "owner_id", "stage": "stage"}.get(dim.kind, dim.field or "")
        if value is None:
            return [Filter(name, "is_empty")]
        return [Filter(name, "eq", _text(value) if not isinstance(value, (int, bool))
                       else value)]
    if dim.kind == "department":
        if value is None:
            return [Filter("owner_id", "is_empty")]
        assert org is not None
        owners = sorted(u for u in org.user_department
                        if _department_at(org, u, dim.level or 1) == value)
        owners += sorted(u for u in org.user_login
                         if u not in org.user_department and value == NO_DEPARTMENT)
        if not owners:
            return [Filter("id", "eq", 0)]
        return [Filter("owner_id", "in", owners)]
    return None  # a joined entity's field: the list grammar cannot say it


class _Labels:
    """Dimension values as the reader reads them, and their natural order."""

    def __init__(self, runner: ReportRunner, report: Report, locale: str,
                 org: OrgSnapshot | None, *, owners: Iterable[int] = ()) -> None:
        self.runner = runner
        self.owners = frozenset(owners)   # the owner ids on the rows: only they get a name
        self.report = report
        self.locale = locale
        self.org = org
        self._users: dict[int, str] | None = None
        self._departments: dict[int, str] | None = None

    def users(self) -> dict[int, str]:
        if self._users is None:   # the people shown, not the whole directory per render
            found = people_by_id(self.runner.records.engine, self.owners)
            self._users = {i: p.display_name for i, p in found.items()}
        return self._users

    def departments(self) -> dict[int, str]:
        if self._departments is None:
            if self.org is not None:  # the policy's org snapshot already holds every name
                self._departments = {i: d.name for i, d in self.org.departments.items()}
            else:
                schema = self.runner.records.schema
                dept = schema.system[DEPARTMENT_TABLE]
                with self.runner.records.engine.connect() as conn:
                    self._departments = {int(r.id): r.name for r in
                                         conn.execute(select(dept.c.id, dept.c.name))}
        return self._departments

    def _field(self, dim: Dimension) -> Any:
        if not dim.field:
            return None
        prefix, _, name = dim.field.rpartition(".")
        entity = self.runner.registry.entity(self.report.entity)
        if prefix:
            join = next(j for j in self.report.joins if j.name == prefix)
            ref = next(f for f in entity.fields if f.name == join.field)
            assert ref.target is not None
            entity = self.runner.registry.entity(ref.target)
        return next((f for f in entity.fields if f.name == name), None)

    def label(self, dim: Dimension, value: Any,
              buckets_of: list[tuple[dt.date, dt.date]] | None) -> str:
        if value is None:
            return NONE_LABEL
        if dim.kind == "owner":
            return self.users().get(int(value), f"#{value}")
        if dim.kind == "department":
            if value == NO_DEPARTMENT:
                return NONE_LABEL
            return self.departments().get(int(value), f"#{value}")
        if dim.kind == "stage":
            found = self.runner.registry.find_stage(self.report.entity, value)
            return found[1].label.get(self.locale) if found else str(value)
        if dim.kind == "period":
            assert buckets_of is not None and dim.grain is not None
            return bucket_label(buckets_of[int(value)][0], dim.grain)
        f = self._field(dim)
        if f is not None and f.options:
            option = next((o for o in f.options if o.value == value), None)
            if option is not None:
                return str(option.label.get(self.locale))
        if isinstance(value, bool):
            return "✓" if value else "✗"
        return str(value)

    def order(self, dim: Dimension, value: Any) -> tuple[int, Any]:
        if value is None or value == NO_DEPARTMENT:
            return (2, "")
        if dim.kind == "period":
            return (0, int(value))
        if dim.kind == "stage":
            values = self.runner._natural_values(self.report, dim)
            return (0, values.index(value) if value in values else len(values))
        f = self._field(dim) if dim.kind == "field" else None
        if f is not None and f.options:
            keys = [o.value for o in f.options]
            return (0, keys.index(value) if value in keys else len(keys))
        return (1, self.label(dim, value, None).casefold() if dim.kind in
                ("owner", "department") else str(value))


__all__ = ["FOLDABLE_MEASURES", "ReportRunner"]
