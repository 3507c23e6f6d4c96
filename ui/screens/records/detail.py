"""A record's page: fields in sections, related lists, the activity feed, comments,
actions (edit, delete and those other areas contribute), file downloads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.errors import NotFoundError, ValidationError
from engine.metadata.model import Entity, FieldType
from engine.records.query import Filter, ListQuery
from engine.records.record import Record
from engine.runtime import Runtime
from ui.context import ActionButton, UIContext
from ui.limits import whole_number
from ui.pools.badges import drop_badges
from ui.screens.records import files
from ui.screens.records._common import entity_of, record_id_of
from ui.screens.records.display import (
    LONG_TYPES,
    Names,
    display,
    phone_link,
    resolve_names,
    system_display,
    system_label,
)
from ui.screens.records.feed import FeedEntry, feed_entries, people_in
from ui.screens.records.merge import MergeNote, merge_notes
from ui.screens.records.stage_time import stage_times
from ui.zones import format_instant

RELATED_ROWS = 10
RELATED_COUNT_CAP = 1000
SYSTEM_SHOWN = ("owner_id", "pool_id", "stage", "created_by", "created_at", "updated_at",
                "version")


@dataclass(frozen=True)
class Item:
    label: str
    text: str
    url: str | None = None
    multiline: bool = False


@dataclass(frozen=True)
class Section:
    title: str
    items: list[Item]


@dataclass(frozen=True)
class RelatedList:
    title: str
    count: str
    rows: list[Item]
    more_url: str
    new_url: str | None


@dataclass(frozen=True)
class DetailView:
    entity: str
    id: int
    title: str
    list_url: str
    list_label: str
    sections: list[Section]
    related: list[RelatedList]
    feed: list[FeedEntry]
    actions: list[ActionButton]
    can_comment: bool
    comment_error: str = ""
    deleted: bool = False
    extra: list[str] = field(default_factory=list)
    notice: str = ""
    merges: list[MergeNote] = field(default_factory=list)
    drop_badge: str = ""  # "Drops in N days" for the holder (ui/pools/badges.py)


def _labels(runtime: Runtime, entity: Entity, locale: str) -> dict[str, dict[str, str]]:
    labels: dict[str, dict[str, str]] = {
        "pool_id": {p.name: p.label.get(locale) for p in runtime.registry.pools.values()}}
    pipelines = runtime.registry.pipelines_of(entity.name)
    if pipelines:  # keys are unique across an entity's pipelines
        labels["stage"] = {s.key: s.label.get(locale) for p in pipelines for s in p.stages}
    return labels


def _sections(ui: UIContext, request: Request, entity: Entity, record: Record, names: Names,
              labels: dict[str, dict[str, str]]) -> list[Section]:
    locale = ui.locale(request)
    main: list[Item] = []
    long: list[Item] = []
    for f in entity.fields:
        if f.name not in record:
            continue
        value = record.get(f.name)
        url = None
        if f.type is FieldType.REFERENCE and value is not None \
                and names.title(f.target or "", int(value)):
            url = f"/e/{f.target}/{value}"
        elif f.type is FieldType.FILE and value:
            url = f"/e/{entity.name}/{record.id}/files/{f.name}"
        elif f.type is FieldType.URL and isinstance(value, str) \
                and value.lower().startswith(("http://", "https://")):
            url = value
        elif f.type is FieldType.PHONE and isinstance(value, str) and value.strip():
            url = phone_link(value)
        elif f.type is FieldType.EMAIL and isinstance(value, str) and "@" in value:
            url = f"mailto:{value.strip()}"
        text = format_instant(value, locale, with_zone=True) \
            if f.type is FieldType.DATETIME and isinstance(value, datetime) \
            else display(f, value, locale, names)
        item = Item(f.label.get(locale), text, url,
                    multiline=f.type in LONG_TYPES)
        (long if f.type in LONG_TYPES else main).append(item)
    system = [Item(system_label(n, locale), system_display(n, record[n], names, labels,
                                                                 locale=locale))
              for n in SYSTEM_SHOWN if n in record]
    sections = [Section(ui.t(request, "Details"), main)]
    if long:
        sections.append(Section(ui.t(request, "More"), long))
    sections.append(Section(ui.t(request, "Record"), system))
    return sections


def _related(ui: UIContext, request: Request, runtime: Runtime, actor: Actor, entity: Entity,
             record: Record) -> list[RelatedList]:
    """Records of other entities whose reference points here, as the actor may read them."""
    locale = ui.locale(request)
    out = []
    for other in runtime.registry.entities.values():
        for f in other.fields:
            if f.type is not FieldType.REFERENCE or f.target != entity.name \
                    or not ui.may(actor, other, "read") \
                    or f.name in runtime.policy.hidden_fields(actor, other):
                continue
            query = ListQuery(filters=(Filter(f.name, "eq", record.id),), limit=RELATED_ROWS)
            page = runtime.records.list(actor, other.name, query)
            count = runtime.records.count(actor, other.name, query, cap=RELATED_COUNT_CAP)
            title_field = other.field(other.title_field)
            rows = [Item(str(r.id), display(title_field, r.get(title_field.name), locale)
                         or f"#{r.id}", f"/e/{other.name}/{r.id}") for r in page.rows]
            label = other.plural_label.get(locale) or other.label.get(locale)
            if len([o for o in other.fields if o.target == entity.name]) > 1:
                label = f"{label} ({f.label.get(locale)})"
            out.append(RelatedList(
                label, f"{count:,}" + ("+" if count >= RELATED_COUNT_CAP else ""), rows,
                f"/e/{other.name}?f.{f.name}.eq={record.id}",
                f"/e/{other.name}/new?{f.name}={record.id}" if ui.may(actor, other, "create")
                else None))
    return out


def detail_view(ui: UIContext, request: Request, runtime: Runtime, actor: Actor, entity: Entity,
                record_id: int, *, comment_error: str = "") -> DetailView:
    locale = ui.locale(request)
    record = runtime.records.get(actor, entity.name, record_id)
    entries = runtime.records.activity(actor, entity.name, record_id) \
        if runtime.records.plan(entity.name).activity else []
    names = resolve_names(runtime, actor, entity, [record], extra_people=people_in(entries))
    labels = _labels(runtime, entity, locale)
    url = f"/e/{entity.name}/{record.id}"
    actions = []
    if ui.may(actor, entity, "update"):
        actions.append(ActionButton(ui.t(request, "Edit"), f"{url}/edit", method="get"))
    actions += ui.detail_actions(request, actor, entity, record)
    if ui.may(actor, entity, "delete"):
        actions.append(ActionButton(ui.t(request, "Delete"), f"{url}/delete", method="get",
                                    style="danger"))
    title = display(entity.field(entity.title_field), record.get(entity.title_field), locale)
    sections = _sections(ui, request, entity, record, names, labels)
    timing = stage_times(ui, request, runtime, actor, entity, record)
    if timing:
        sections.append(Section(ui.t(request, "Time in stage"),
                                [Item(label, text) for label, text in timing]))
    return DetailView(
        entity=entity.name, id=record.id, title=title or f"#{record.id}",
        list_url=f"/e/{entity.name}",
        list_label=entity.plural_label.get(locale) or entity.label.get(locale),
        sections=sections,
        related=_related(ui, request, runtime, actor, entity, record),
        feed=feed_entries(entity, entries, locale, names, labels), actions=actions,
        can_comment=runtime.records.plan(entity.name).activity, comment_error=comment_error,
        notice=_merged_notice(ui, request),
        merges=merge_notes(ui, request, runtime, actor, entity, record.id),
        drop_badge=drop_badges(ui, request, runtime, actor, entity, [record]).get(record.id, ""))


def _merged_notice(ui: UIContext, request: Request) -> str:
    """Said on the survivor's page when a link to a merged record led here."""
    merged = whole_number(request.query_params.get("merged_from", ""))
    if merged is None:
        return ""
    return ui.t(request, "Record #%(id)s was merged into this one.", id=merged)


def routes(ui: UIContext) -> list[BaseRoute]:
    def show(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        view = detail_view(ui, request, runtime, actor, entity, record_id_of(request))
        return ui.render(request, "records/detail.html", view)

    def comment(request: Request, form: FormData | None) -> Response:
        assert form is not None
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        record_id = record_id_of(request)
        error, status = "", 200
        try:
            runtime.records.comment(actor, entity.name, record_id, str(form.get("body", "")))
        except ValidationError as exc:
            error, status = ui.t(request, exc.field_errors.get("body", "is required")), 422
        if status == 200 and request.headers.get("hx-request") != "true":
            return ui.redirect(request, f"/e/{entity.name}/{record_id}#feed")
        view = detail_view(ui, request, runtime, actor, entity, record_id, comment_error=error)
        return ui.render(request, "records/detail.html", view, status=status,
                         fragment="records/_feed.html")

    def confirm_delete(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        record = runtime.records.get(actor, entity.name, record_id_of(request))
        runtime.policy.check_action(actor, entity, "delete")
        title = display(entity.field(entity.title_field), record.get(entity.title_field),
                        ui.locale(request)) or f"#{record.id}"
        return ui.render(request, "records/delete.html",
                         {"title": title, "url": f"/e/{entity.name}/{record.id}",
                          "version": record.version})

    def delete(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        version = str(form.get("version", "")) if form is not None else ""
        runtime.records.delete(actor, entity.name, record_id_of(request),
                               version=whole_number(version))
        return ui.redirect(request, f"/e/{entity.name}")

    def download(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        record = runtime.records.get(actor, entity.name, record_id_of(request))
        name = request.path_params["field"]
        value = record.get(name) if entity.has_field(name) else None
        path = files.stored_path(ui.settings.upload_dir, value)
        if path is None or entity.field(name).type is not FieldType.FILE:
            raise NotFoundError(entity.name, f"{record.id}/{name}")
        return FileResponse(path, filename=files.clean_name(str(value["name"])),  # type: ignore[index]
                            media_type="application/octet-stream",
                            content_disposition_type="attachment")

    return [
        Route("/e/{entity}/{record_id:id}", ui.endpoint(show), methods=["GET"], name="detail"),
        Route("/e/{entity}/{record_id:id}", ui.endpoint(delete), methods=["DELETE"],
              name="delete_record"),
        Route("/e/{entity}/{record_id:id}/comments", ui.endpoint(comment), methods=["POST"],
              name="comment"),
        Route("/e/{entity}/{record_id:id}/delete", ui.endpoint(confirm_delete),
              methods=["GET"], name="confirm_delete"),
        Route("/e/{entity}/{record_id:id}/delete", ui.endpoint(delete), methods=["POST"],
              name="delete"),
        Route("/e/{entity}/{record_id:id}/files/{field}", ui.endpoint(download),
              name="download"),
    ]
