"""List screens: the list page, its rows fragment, exports, bulk actions, saved views.

Handlers parse the request, call the records service (through the helpers in
this package) and render; the list state lives in the URL (``state.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.errors import NotFoundError, QueryError
from engine.memo import GenerationMemo
from engine.metadata.model import Entity, Feature, Field
from engine.permissions.assignable import assignable_owners
from engine.permissions.directory import search_people
from engine.permissions.scopes import CasbinAccessPolicy
from engine.records.query import Filter, ListQuery
from engine.records.saved_views import SavedViews
from engine.records.stages import STAGE
from engine.runtime import Runtime
from ui.context import UIContext
from ui.limits import whole_number
from ui.partials import slot
from ui.pools.badges import drop_badges
from ui.pools.columns import pool_columns
from ui.pools.routes import claimable
from ui.pools.tabs import pool_tabs
from ui.screens.pickers import with_pickers
from ui.screens.records import export
from ui.screens.records._common import entity_of
from ui.screens.records.bulk import MAX_BULK, delete_confirmation, move_choices, run_bulk
from ui.screens.records.display import display, resolve_names
from ui.screens.records.listing import (
    BulkForm,
    Choice,
    Column,
    FilterPanel,
    FilterWidget,
    ListView,
    columns_of,
    count_text,
    default_columns,
    filter_widgets,
    page_sizes,
    people_choices,
    saved_view_links,
    stage_filter,
    visible_fields,
)
from ui.screens.records.row_html import row_drawer
from ui.screens.records.state import ListState, choose_columns
from ui.screens.records.system_columns import system_columns
from ui.zones import zoned_query

COUNT_CAP = 10_000
_BULK_PERMISSION = {"update": "update", "assign": "assign", "delete": "delete",
                    "claim": "claim", "recycle": "recycle", "move": "assign"}


#: ``?panel=filters``: the list with its filter panel drawn (the no-JavaScript way to it).
PANEL_PARAM, FILTERS_PANEL = "panel", "filters"


def build_list(ui: UIContext, request: Request, runtime: Runtime, actor: Actor, entity: Entity,
               state: ListState, *, notice: str = "", filters_open: bool = False) -> ListView:
    """The list page's view. ``filters_open``: draw the filter panel with the page (it is
    drawn anyway when filters are set; closed, it loads when opened)."""
    locale = ui.locale(request)
    hidden = runtime.policy.hidden_fields(actor, entity)
    fields = list_fields(runtime, actor, entity, hidden=hidden)
    by_name = {f.name: f for f in fields}
    names = [f.name for f in fields]
    columns = [by_name[c] for c in choose_columns(state.cols, names,
                                                  default_columns(entity, hidden), entity.name)]
    page = runtime.records.list(actor, entity.name, zoned_query(entity, state.query()))
    labels = resolve_names(runtime, actor, entity, page.rows, fields=columns, owners=False)
    next_url = state.next_url(page.next_token) if page.has_more and page.next_token else None
    # Keyed without the page token: headers never read it, and "load more" sends a new one.
    headers = _headers.get(runtime.registry,
                           (replace(state, after=None), tuple(f.name for f in columns), locale),
                           lambda: columns_of(entity, state, columns,
                                              runtime.records.plan(entity.name).sortable,
                                              locale))
    claim_ids = frozenset(claimable(ui, actor, entity, page.rows))
    can_claim = entity.has(Feature.POOLED) and ui.may(actor, entity, "claim")
    can_recycle = entity.has(Feature.POOLED) and ui.may(actor, entity, "recycle")
    badges = drop_badges(ui, request, runtime, actor, entity, page.rows)
    rows = row_drawer(runtime.registry, entity.name, columns, locale).draw(
        page.rows, labels, claim=can_claim, claim_ids=claim_ids, badges=badges)
    if state.after:  # "load more": only rows are drawn, skip the rest
        return ListView(entity.name, "", f"/e/{entity.name}", state, headers, rows, next_url,
                        notice=notice, bulk=BulkForm(can_claim=can_claim))
    can = {a: ui.may(actor, entity, a)
           for a in ("create", "update", "assign", "delete", "export", "merge")}
    readonly = runtime.policy.readonly_fields(actor, entity)
    shown = {f.name: None for f in columns}  # ordered: a key of the column chooser
    views = SavedViews(runtime.engine, runtime.schema).visible(actor.user_id or 0, entity.name)
    query = urlencode(state.params())
    drawn = bool(state.filters) or filters_open
    # The (capped) count is a second query as costly as the page: it is loaded by
    # htmx right after the page is shown (``count_fragment``), not before.
    count_url = f"/e/{entity.name}/count" + (f"?{query}" if query else "")
    return ListView(
        entity=entity.name, title=entity.plural_label.get(locale) or entity.label.get(locale),
        base_url=f"/e/{entity.name}", state=state,
        columns=headers,
        rows=rows, next_url=next_url, count_text="", count_url=count_url,
        searchable=any(n in names for n in entity.search_fields),
        # The panel is drawn with the page only when filters are set (it opens then);
        # closed, it loads when opened (``filters_fragment``): few page views open it.
        filters=filter_panel(runtime, actor, entity, state, fields, locale) if drawn else [],
        filters_url="" if drawn else f"/e/{entity.name}/filters" + (f"?{query}" if query else ""),
        filters_page_url=f"/e/{entity.name}?" + (f"{query}&" if query else "")
        + f"{PANEL_PARAM}={FILTERS_PANEL}",
        # by name: comparing Field dataclasses compared every attribute of each
        column_choices=_column_choices.get(
            runtime.registry, (entity.name, hidden, tuple(shown), locale),
            lambda: tuple(Choice(f.name, f.label.get(locale), f.name in shown)
                          for f in fields)),
        page_sizes=page_sizes(state),
        hidden_params=[("sort", state.sort)],
        saved_views=saved_view_links(views, actor), saved_state=query,
        can_create=can["create"], can_export=can["export"],
        duplicates_url=f"/e/{entity.name}/duplicates"
        if can["merge"] and (entity.dedup_rules or entity.dedup_keys) else "",
        export_csv=f"/e/{entity.name}/export.csv" + (f"?{query}" if query else ""),
        export_xlsx=f"/e/{entity.name}/export.xlsx" + (f"?{query}" if query else ""),
        notice=notice, tabs=pool_tabs(ui, request, actor, entity, state),
        bulk=BulkForm(
            can_update=can["update"], can_assign=can["assign"], can_delete=can["delete"],
            can_export=can["export"], can_claim=can_claim, can_recycle=can_recycle,
            can_merge=entity.has(Feature.SOFT_DELETE) and can["merge"],
            bulk_fields=_bulk_fields.get(
                runtime.registry, (entity.name, hidden, readonly, locale),
                lambda: tuple(Choice(f.name, f.label.get(locale))
                              for f in visible_fields(entity, hidden)
                              if f.name not in readonly and f.type.value != "auto_number")),
            move_pools=tuple(move_choices(ui, actor, entity, runtime.records, locale)),
            people=tuple(_assignable_people(runtime, actor, entity)) if can["assign"] else ()))


#: The column chooser's and the bulk editor's choices, by (entity, hidden fields, shown
#: columns or read-only fields, locale) under the newest registry: the same tuples on
#: every page, built from the fields each time before.
_column_choices: GenerationMemo[tuple[str, frozenset[str], tuple[str, ...], str],
                                tuple[Choice, ...]] = GenerationMemo(limit=1000)
_bulk_fields: GenerationMemo[tuple[str, frozenset[str], frozenset[str], str],
                             tuple[Choice, ...]] = GenerationMemo(limit=1000)


#: A list's column headers (labels, sort links) by (state, columns, locale) under the
#: newest registry: the same few lists are asked for again and again, and each header's
#: sort link is a URL encoded afresh.
_headers: GenerationMemo[tuple[ListState, tuple[str, ...], str], list[Column]] = \
    GenerationMemo(limit=1000)


#: Where a list page's rows go in its kept shell (``UIContext.render_shell``).
_ROWS = slot("rows")


def render_list(ui: UIContext, request: Request, view: ListView, *, fragment: str) -> Response:
    """The list page (or its ``fragment``), its markup around the rows kept per view.

    Everything but the rows repeats for the same viewer, state and locale, and Jinja
    drew it on every request (a tenth of the page's CPU). The key is the view itself
    with a placeholder for its rows. Not kept: "load more" pages (each has its own
    state), pages without rows and pages with the filter panel drawn (its widgets
    are not hashable values).
    """
    if not view.rows or view.state.after or view.filters:
        return ui.render(request, "records/list.html", view, fragment=fragment)
    # the view's fields, the rows' placeholder for the rows (the shell itself is made
    # only when it is drawn: a new 30-field dataclass per request cost more than the key)
    key = tuple(_ROWS if name == "rows" else tuple(v) if isinstance(v, list) else v
                for name, v in vars(view).items())
    return ui.render_shell(request, "records/list.html", key=key,
                           shell=lambda: replace(view, rows=_ROWS), page=lambda: view,
                           slots=((_ROWS, view.rows),), fragment=fragment)


def filter_panel(runtime: Runtime, actor: Actor, entity: Entity, state: ListState,
                 fields: Sequence[Field], locale: str) -> list[FilterWidget]:
    """The filter panel: a filter per listed field, the stage filter, pickers for
    references and users (their chosen values read as ``actor``)."""
    widgets = [*filter_widgets(entity, state, [f for f in fields if f.name != STAGE], locale),
               *stage_filter(state, runtime.registry.pipelines_of(entity.name), locale)]
    return with_pickers(runtime, actor, entity, widgets)


#: The list fields of the newest registry, by (entity, hidden fields): built per page,
#: the pool's and system's field-like definitions were a tenth of the list's own work.
_list_fields: GenerationMemo[tuple[str, frozenset[str]], tuple[Field, ...]] = \
    GenerationMemo(limit=1000)


def list_fields(runtime: Runtime, actor: Actor, entity: Entity, *,
                hidden: frozenset[str] | None = None) -> tuple[Field, ...]:
    """The fields a list may show and filter on: the entity's own, then its pool's and
    the system's columns, less those hidden from ``actor`` (``hidden``: already known)."""
    if hidden is None:
        hidden = runtime.policy.hidden_fields(actor, entity)
    registry = runtime.registry
    return _list_fields.get(registry, (entity.name, hidden), lambda: (
        *visible_fields(entity, hidden), *pool_columns(registry, entity, hidden),
        *system_columns(registry, entity, hidden)))


def filters_fragment(ui: UIContext, request: Request) -> Response:
    """The filter panel of a list, for the list's state (loaded when the panel opens)."""
    runtime, actor = ui.runtime(), ui.actor(request)
    entity = entity_of(runtime, request)
    runtime.policy.check_action(actor, entity, "read")
    state = ListState.parse(entity.name, request.query_params.multi_items())
    panel = FilterPanel(filter_panel(runtime, actor, entity, state,
                                     list_fields(runtime, actor, entity), ui.locale(request)))
    return ui.render(request, "records/_filters.html", panel,
                     fragment="records/_filters.html")


def _assignable_people(runtime: Runtime, actor: Actor, entity: Entity) -> list[Choice]:
    """The bulk-assign picker: only owners the records service will accept."""
    people = search_people(runtime.engine, limit=200)
    if isinstance(runtime.policy, CasbinAccessPolicy):
        allowed = assignable_owners(runtime.policy, actor, entity.name)
        if allowed is not None:
            people = [p for p in people if p.id in allowed]
    return people_choices(people)


def count_fragment(ui: UIContext, request: Request) -> Response:
    """``<span>N records</span>`` for the list's filters, scoped as the list is."""
    runtime, actor = ui.runtime(), ui.actor(request)
    entity = entity_of(runtime, request)
    state = ListState.parse(entity.name, request.query_params.multi_items())
    count = runtime.records.count(actor, entity.name, zoned_query(entity, state.query()),
                                  cap=COUNT_CAP)
    text = count_text(count, COUNT_CAP, ui.locale(request))
    return ui.render(request, "records/_count.html", text, fragment="records/_count.html")


def _selected_ids(form: FormData) -> list[int]:
    ids = []
    for raw in form.getlist("ids"):
        number = whole_number(raw) if isinstance(raw, str) else None
        if number is not None:
            ids.append(number)
    return list(dict.fromkeys(ids))[:MAX_BULK]


def _download(data: bytes, entity: Entity, fmt: str) -> Response:
    media = {"csv": "text/csv; charset=utf-8", "xlsx":
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}[fmt]
    return Response(data, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{entity.name}.{fmt}"'})


def routes(ui: UIContext) -> list[BaseRoute]:
    def list_page(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        state = ListState.parse(entity.name, request.query_params.multi_items())
        view = build_list(ui, request, runtime, actor, entity, state, filters_open=(
            request.query_params.get(PANEL_PARAM) == FILTERS_PANEL))
        fragment = "records/_rows.html" if state.after else "records/_results.html"
        return render_list(ui, request, view, fragment=fragment)

    def export_file(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        fmt = request.path_params["fmt"]
        if fmt not in ("csv", "xlsx"):
            raise NotFoundError("export", fmt)
        state = ListState.parse(entity.name, request.query_params.multi_items())
        return _export(runtime, actor, entity, zoned_query(entity, state.query()), fmt,
                       ui.locale(request))

    def bulk(request: Request, form: FormData | None) -> Response:
        assert form is not None
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        state = ListState.parse(entity.name, parse_qsl(str(form.get("state", ""))))
        action, ids = str(form.get("action", "")), _selected_ids(form)
        if action in ("export_csv", "export_xlsx"):
            query = ListQuery(filters=(Filter("id", "in", ids or [0]),), sort=state.query().sort)
            return _export(runtime, actor, entity, query, action[7:], ui.locale(request))
        if action in _BULK_PERMISSION:
            runtime.policy.check_action(actor, entity, _BULK_PERMISSION[action])
        if action == "merge":  # the merge screen picks the survivor and the values
            runtime.policy.check_action(actor, entity, "merge")
            return ui.redirect(request, f"/e/{entity.name}/merge?ids="
                               + ",".join(str(i) for i in ids))
        if action == "delete" and ids and form.get("confirmed") != "1":
            confirm = delete_confirmation(runtime, actor, entity, ids, locale=ui.locale(request),
                                          state=str(form.get("state", "")),
                                          back_url=state.url())
            return ui.render(request, "records/bulk_delete.html", confirm)
        owner = str(form.get("owner", ""))
        result = run_bulk(runtime, actor, entity, ids, action=action,
                          field_name=str(form.get("field", "")), value=str(form.get("value", "")),
                          owner=whole_number(owner),
                          to_pool=str(form.get("to_pool", "")))
        notice = ui.t(request, "%(done)s of %(total)s records changed.", done=result.done,
                      total=len(ids))
        if result.failed:
            notice += " " + ui.t(request, "Not changed: %(list)s", list="; ".join(
                f"#{i}: {why}" for i, why in result.failed[:20]))
        view = build_list(ui, request, runtime, actor, entity, state, notice=notice)
        return ui.render(request, "records/list.html", view,
                         status=200 if result.done or not ids else 422)

    def save_view(request: Request, form: FormData | None) -> Response:
        assert form is not None
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        runtime.policy.check_action(actor, entity, "read")
        state = ListState.parse(entity.name, parse_qsl(str(form.get("state", ""))))
        saved = SavedViews(runtime.engine, runtime.schema).save(
            actor.user_id or 0, entity.name, str(form.get("name", "")), state.saved(),
            shared=form.get("shared") == "1")
        return ui.redirect(request, f"/e/{entity.name}/views/{saved.id}")

    def open_view(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        view = SavedViews(runtime.engine, runtime.schema).get(
            actor.user_id or 0, request.path_params["view_id"])
        if view.entity != entity.name:
            raise NotFoundError("saved_view", view.id)
        return ui.redirect(request, ListState.from_saved(entity.name, view.state).url())

    def delete_view(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        SavedViews(runtime.engine, runtime.schema).delete(actor.user_id or 0,
                                                          request.path_params["view_id"])
        return ui.redirect(request, f"/e/{entity.name}")

    def rename_view(request: Request, form: FormData | None) -> Response:
        assert form is not None
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        views = SavedViews(runtime.engine, runtime.schema)
        if views.get(actor.user_id or 0, request.path_params["view_id"]).entity != entity.name:
            raise NotFoundError("saved_view", request.path_params["view_id"])
        views.rename(actor.user_id or 0, request.path_params["view_id"],
                     str(form.get("name", "")).strip())
        return ui.redirect(request, f"/e/{entity.name}")

    def lookup(request: Request, form: FormData | None) -> Response:
        """Options for a reference picker: records of the entity matching ``q``."""
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        picker = request.query_params.get("for", "")
        text = request.query_params.get(f"find.{picker}" if picker else "q", "").strip()
        try:
            page = runtime.records.list(actor, entity.name, ListQuery(search=text, limit=20))
        except QueryError:  # no searchable fields: the newest ones
            page = runtime.records.list(actor, entity.name, ListQuery(limit=20))
        title = entity.field(entity.title_field)
        options = [Choice(str(r.id), display(title, r.get(title.name), ui.locale(request))
                          or f"#{r.id}") for r in page.rows]
        return ui.render(request, "records/_options.html", options,
                         context={"blank": request.query_params.get("required") != "1"})

    return [
        Route("/e/{entity}", ui.endpoint(list_page, inline=True), name="list"),
        Route("/e/{entity}/export.{fmt}", ui.endpoint(export_file), name="export"),
        Route("/e/{entity}/count", ui.endpoint(lambda request, form: count_fragment(ui, request)),
              name="count"),
        Route("/e/{entity}/filters",
              ui.endpoint(lambda request, form: filters_fragment(ui, request)), name="filters"),
        Route("/e/{entity}/bulk", ui.endpoint(bulk), methods=["POST"], name="bulk"),
        Route("/e/{entity}/views", ui.endpoint(save_view), methods=["POST"], name="save_view"),
        Route("/e/{entity}/views/{view_id:id}", ui.endpoint(open_view), name="open_view"),
        Route("/e/{entity}/views/{view_id:id}/rename", ui.endpoint(rename_view),
              methods=["POST"], name="rename_view"),
        Route("/e/{entity}/views/{view_id:id}/delete", ui.endpoint(delete_view),
              methods=["POST"], name="delete_view"),
        Route("/e/{entity}/lookup", ui.endpoint(lookup), name="lookup"),
    ]


def _export(runtime: Runtime, actor: Actor, entity: Entity, query: ListQuery, fmt: str,
            locale: str) -> Response:
    hidden = runtime.policy.hidden_fields(actor, entity)
    fields = visible_fields(entity, hidden)
    records = export.export_records(runtime, actor, entity, query)
    write = export.to_csv if fmt == "csv" else export.to_xlsx
    return _download(write(runtime, actor, entity, fields, records, locale), entity, fmt)
