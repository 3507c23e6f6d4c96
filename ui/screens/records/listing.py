"""The list screen's view model: columns, rows, filters, saved views and bulk actions."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from engine.actor import Actor
from engine.metadata.model import Entity, Field, FieldType, Pipeline
from engine.permissions.directory import Person
from engine.records.saved_views import SavedView
from ui.i18n import N_, t
from ui.screens.records.display import LONG_TYPES
from ui.screens.records.state import (
    PAGE_SIZES,
    FilterParam,
    ListState,
    sorted_by,
    toggled_sort,
)
from ui.zones import period_bounds

#: Columns a list shows when the user has not chosen.
DEFAULT_COLUMNS = 6
#: Types a list cell cannot usefully show.
NOT_LISTED = LONG_TYPES | {FieldType.GEO_POINT}


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    sort_url: str | None  # None: not sortable
    sorted: str  # "", "asc" or "desc"


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    selected: bool = False


@dataclass(frozen=True)
class FilterWidget:
    """One field's filter: ``kind`` picks the inputs the template draws."""

    field: str
    label: str
    kind: str  # options | range | boolean | id | text
    input_type: str = "text"  # for range: number | date | datetime-local
    choices: list[Choice] = dataclasses.field(default_factory=list)
    low: str = ""
    high: str = ""
    value: str = ""
    empty: bool = False
    active: bool = False
    op: str = ""  # options: "in" (several) or "contains" (one option of a multi-select)
    periods: list[Choice] = dataclasses.field(default_factory=list)  # range of dates: (url, label)
    picker: object = None  # kind "picker": a ui.screens.pickers.Picker


@dataclass(frozen=True)
class FilterPanel:
    """The filter panel alone (``records/_filters.html``), loaded when it is opened."""

    filters: list[FilterWidget]


@dataclass(frozen=True)
class SavedViewLink:
    id: int
    name: str
    url: str
    shared: bool
    mine: bool


@dataclass(frozen=True)
class BulkForm:
    """The bulk-action form under a list: what ``records/_bulk.html`` reads, hashable so
    its rendering is kept per value (``ui/partials.py``). Built once per page."""

    can_update: bool = False
    can_assign: bool = False
    can_delete: bool = False
    can_export: bool = False
    can_claim: bool = False
    can_recycle: bool = False
    can_merge: bool = False
    bulk_fields: tuple[Choice, ...] = ()
    move_pools: tuple[Choice, ...] = ()
    people: tuple[Choice, ...] = ()


@dataclass(frozen=True)
class ListView:
    entity: str
    title: str
    base_url: str
    state: ListState
    columns: list[Column]
    rows: Markup  # the <tr>s, escaped (row_html.RowDrawer); empty: no rows
    next_url: str | None
    count_text: str = ""
    searchable: bool = False
    filters: list[FilterWidget] = field(default_factory=list)
    column_choices: tuple[Choice, ...] = ()  # a tuple: its rendering is cached per value
    page_sizes: list[Choice] = field(default_factory=list)
    hidden_params: list[tuple[str, str]] = field(default_factory=list)
    saved_views: list[SavedViewLink] = field(default_factory=list)
    saved_state: str = ""
    can_create: bool = False
    can_export: bool = False
    export_csv: str = ""
    export_xlsx: str = ""
    notice: str = ""
    #: Where the count is loaded from after the page (``count_text`` is then empty).
    count_url: str = ""
    #: Where the closed filter panel loads from when opened ("": drawn, ``filters``).
    filters_url: str = ""
    #: The list with its filter panel drawn and open (``panel=filters``): the
    #: ``<noscript>`` fallback of ``filters_url``.
    filters_page_url: str = ""
    tabs: list[Any] = field(default_factory=list)  # ui.pools.tabs.Tab: mine / pool / team
    duplicates_url: str = ""  # merge grantees of an entity with dedup rules: candidates
    #: The bulk actions the actor holds (update, assign, delete, claim, recycle, move...).
    bulk: BulkForm = BulkForm()

    @property
    def can_claim(self) -> bool:
        """Pooled entity and the actor holds claim: a claim column beside the rows. The
        bulk form's claim action holds the answer; one source for both."""
        return self.bulk.can_claim


def visible_fields(entity: Entity, hidden: frozenset[str]) -> list[Field]:
    return [f for f in entity.fields if f.name not in hidden]


def default_columns(entity: Entity, hidden: frozenset[str]) -> list[str]:
    """The title field first, then the next short fields."""
    chosen = [entity.title_field] if entity.title_field not in hidden else []
    for f in visible_fields(entity, hidden):
        if len(chosen) >= DEFAULT_COLUMNS:
            break
        if f.name not in chosen and f.type not in NOT_LISTED:
            chosen.append(f.name)
    return chosen


def filter_widgets(entity: Entity, state: ListState, fields: Sequence[Field],
                   locale: str) -> list[FilterWidget]:
    widgets = []
    for f in fields:
        if f.type in (FieldType.GEO_POINT, FieldType.ADDRESS, FieldType.FILE):
            continue
        label = f.label.get(locale)
        empty = bool(state.filter_values(f.name, "is_empty"))
        if f.type in (FieldType.SELECT, FieldType.MULTI_SELECT):
            op = "in" if f.type is FieldType.SELECT else "contains"
            chosen = set(state.filter_values(f.name, op))
            widgets.append(FilterWidget(f.name, label, "options", choices=[
                Choice(o.value, o.label.get(locale) or o.value, o.value in chosen)
                for o in f.options], empty=empty, active=bool(chosen) or empty, op=op))
        elif f.type in (FieldType.INTEGER, FieldType.DECIMAL, FieldType.MONEY,
                        FieldType.PERCENT, FieldType.RATING, FieldType.DATE, FieldType.DATETIME):
            kind = {FieldType.DATE: "date", FieldType.DATETIME: "datetime-local"}.get(
                f.type, "number")
            low = (state.filter_values(f.name, "gte") or ("",))[0]
            high = (state.filter_values(f.name, "lte") or ("",))[0]
            periods = period_links(state, f, locale) \
                if f.type in (FieldType.DATE, FieldType.DATETIME) else []
            widgets.append(FilterWidget(f.name, label, "range", input_type=kind, low=low,
                                        high=high, empty=empty, active=bool(low or high or empty),
                                        periods=periods))
        elif f.type is FieldType.BOOLEAN:
            value = (state.filter_values(f.name, "eq") or ("",))[0]
            widgets.append(FilterWidget(f.name, label, "boolean", value=value, choices=[
                Choice("", t(locale, "Any"), value == ""),
                Choice("true", t(locale, "Yes"), value == "true"),
                Choice("false", t(locale, "No"), value == "false")], empty=empty,
                active=bool(value or empty)))
        elif f.type in (FieldType.REFERENCE, FieldType.USER):
            value = (state.filter_values(f.name, "eq") or ("",))[0]
            widgets.append(FilterWidget(f.name, label, "id", value=value, empty=empty,
                                        active=bool(value or empty)))
        else:
            value = (state.filter_values(f.name, "contains") or ("",))[0]
            widgets.append(FilterWidget(f.name, label, "text", value=value, empty=empty,
                                        active=bool(value or empty)))
    return widgets


def stage_filter(state: ListState, pipelines: Sequence[Pipeline],
                 locale: str) -> list[FilterWidget]:
    """The stage filter of a pipelined entity: the stages of the pipeline the list is
    narrowed to by its selector field, else of every pipeline (each stage prefixed with
    its pipeline's name when there are several). Stages already chosen stay listed."""
    if not pipelines:
        return []
    selector = next((p.selector.field for p in pipelines if p.selector is not None), None)
    picked = set(state.filter_values(selector, "in")) if selector else set()
    taken = {v for p in pipelines if p.selector is not None for v in p.selector.values}
    shown = [p for p in pipelines
             if picked and ((p.selector is not None and picked & set(p.selector.values))
                            or (p.selector is None and picked - taken))] or list(pipelines)
    chosen = set(state.filter_values("stage", "in"))
    choices = []
    for pipeline in pipelines:
        for stage in sorted(pipeline.stages, key=lambda s: s.order):
            if pipeline not in shown and stage.key not in chosen:
                continue
            label = stage.label.get(locale) or stage.key
            if len(shown) > 1 or pipeline not in shown:
                label = f"{pipeline.label.get(locale)} · {label}"
            choices.append(Choice(stage.key, label, stage.key in chosen))
    empty = bool(state.filter_values("stage", "is_empty"))
    return [FilterWidget("stage", t(locale, "Stage"), "options", choices=choices, empty=empty,
                         active=bool(chosen) or empty, op="in")]


#: Quick ranges of a date or date-time filter, computed in the viewer's zone.
PERIODS = (("today", N_("Today")), ("week", N_("This week")), ("month", N_("This month")))


def period_links(state: ListState, f: Field, locale: str) -> list[Choice]:
    """Links setting the filter of ``f`` to today / this week / this month (the viewer's)."""
    links = []
    for period, label in PERIODS:
        first, last = period_bounds(period)
        low, high = (first.isoformat(), last.isoformat()) if f.type is FieldType.DATE else \
            (f"{first.isoformat()}T00:00", f"{last.isoformat()}T23:59:59")
        kept = tuple(p for p in state.filters if p.field != f.name)
        url = state.url(filters=(*kept, FilterParam(f.name, "gte", (low,)),
                                 FilterParam(f.name, "lte", (high,))))
        chosen = state.filter_values(f.name, "gte") == (low,) and \
            state.filter_values(f.name, "lte") == (high,)
        links.append(Choice(url, t(locale, label), chosen))
    return links


def count_text(count: int, cap: int, locale: str) -> str:
    if count >= cap:
        return t(locale, "%(n)s+ records", n=f"{cap:,}")
    return t(locale, "%(n)s records", n=f"{count:,}")


def columns_of(entity: Entity, state: ListState, fields: Sequence[Field],
               sortable: frozenset[str], locale: str) -> list[Column]:
    return [Column(f.name, f.label.get(locale),
                   state.url(sort=toggled_sort(state, f.name)) if f.name in sortable else None,
                   sorted_by(state, f.name)) for f in fields]


def saved_view_links(views: Sequence[SavedView], actor: Actor) -> list[SavedViewLink]:
    return [SavedViewLink(v.id, v.name, f"/e/{v.entity}/views/{v.id}", v.shared,
                          v.owner_id == actor.user_id) for v in views]


def page_sizes(state: ListState) -> list[Choice]:
    return [Choice(str(n), str(n), n == state.limit) for n in PAGE_SIZES]


def people_choices(people: Sequence[Person]) -> list[Choice]:
    return [Choice(str(p.id), p.display_name) for p in people]
