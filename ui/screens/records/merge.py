"""Merge screens: pick the record that stays and each field's value, then the result with Undo.

* ``GET /e/{entity}/merge?ids=1,2,3`` the records side by side, one row per field
  the user may write, a radio per record (defaults: the oldest record stays; each
  field takes the newest non-empty value, as the engine does when not told);
* ``POST /e/{entity}/merge`` runs the merge (engine/records/merge.py) and shows
  ``/e/{entity}/merges/{id}``: what was merged, and an Undo button while it stands;
* ``POST /e/{entity}/merges/{id}/undo``.

The list's bulk action "merge" and the duplicate-candidates screen link here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.errors import (
    DuplicateError,
    MergeConflictError,
    NotFoundError,
    ValidationError,
)
from engine.metadata.model import Entity, FieldType
from engine.records.merge import MAX_MERGED, MergeResult, get_merge, merges_of
from engine.records.record import Record
from engine.runtime import Runtime
from ui.context import UIContext
from ui.limits import whole_number
from ui.screens.records._common import entity_of
from ui.screens.records.display import display, resolve_names
from ui.zones import format_instant


@dataclass(frozen=True)
class Choice:
    record_id: int
    text: str
    checked: bool


@dataclass(frozen=True)
class FieldRow:
    name: str
    label: str
    choices: list[Choice]
    same: bool          # every record holds the same value: nothing to choose


@dataclass(frozen=True)
class Column:
    id: int
    title: str
    url: str
    updated: str
    survivor: bool


@dataclass
class MergePage:
    entity: str
    title: str
    list_url: str
    action: str
    columns: list[Column]
    rows: list[FieldRow]
    ids: list[int]
    error: str = ""
    missing: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class MergeNote:
    """A merge into a record, shown on the record's page."""

    url: str
    text: str


def parse_ids(raw: list[str]) -> list[int]:
    """``ids=1,2,3`` (or repeated ``ids``) as distinct ids, at most one survivor + MAX_MERGED."""
    ids: list[int] = []
    for part in ",".join(raw).split(","):
        number = whole_number(part.strip())
        if number is not None and number > 0 and number not in ids:
            ids.append(number)
    return ids[:MAX_MERGED + 1]


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def merge_page(ui: UIContext, request: Request, runtime: Runtime, actor: Actor, entity: Entity,
               ids: list[int], *, survivor: int | None = None,
               chosen: dict[str, int] | None = None, error: str = "") -> MergePage:
    """The side-by-side page for ``ids`` (records the actor cannot read are left out)."""
    locale = ui.locale(request)
    records: list[Record] = []
    missing: list[int] = []
    for record_id in ids:
        try:
            records.append(runtime.records.get(actor, entity.name, record_id))
        except NotFoundError:
            missing.append(record_id)
    keep = survivor if survivor in {r.id for r in records} else \
        min((r.id for r in records), default=None)
    hidden = runtime.policy.hidden_fields(actor, entity)
    locked = runtime.policy.readonly_fields(actor, entity) | hidden
    names = resolve_names(runtime, actor, entity, records)
    newest = sorted(records, key=lambda r: (r["updated_at"], r.id), reverse=True)
    rows: list[FieldRow] = []
    for f in entity.fields:
        if f.name in locked or f.type is FieldType.AUTO_NUMBER:
            continue
        pick = (chosen or {}).get(f.name)
        if pick not in {r.id for r in records}:
            pick = next((r.id for r in newest if not _empty(r.get(f.name))), keep)
        texts = [display(f, r.get(f.name), locale, names) for r in records]
        rows.append(FieldRow(f.name, f.label.get(locale) or f.name,
                             [Choice(r.id, text, r.id == pick)
                              for r, text in zip(records, texts, strict=True)],
                             same=len(set(texts)) <= 1))
    title_field = entity.field(entity.title_field)
    columns = [Column(r.id, display(title_field, r.get(entity.title_field), locale)
                      or f"#{r.id}", f"/e/{entity.name}/{r.id}",
                      format_instant(r["updated_at"], locale) if r["updated_at"] else "",
                      r.id == keep) for r in records]
    if len(records) < 2 and not error:
        error = ui.t(request, "Choose two or more records you may see to merge.")
    label = entity.plural_label.get(locale) or entity.label.get(locale)
    return MergePage(entity=entity.name, title=ui.t(request, "Merge %(what)s", what=label),
                     list_url=f"/e/{entity.name}", action=f"/e/{entity.name}/merge",
                     columns=columns, rows=rows, ids=[r.id for r in records], error=error,
                     missing=missing)


@dataclass(frozen=True)
class ResultPage:
    entity: str
    title: str
    survivor_url: str
    survivor_title: str
    merged: str
    when: str
    fields: str
    references: int
    undone: str
    can_undo: bool
    undo_url: str
    notice: str = ""
    error: str = ""


def result_page(ui: UIContext, request: Request, runtime: Runtime, actor: Actor, entity: Entity,
                result: MergeResult, *, notice: str = "", error: str = "") -> ResultPage:
    locale = ui.locale(request)
    try:
        survivor = runtime.records.get(actor, entity.name, result.survivor_id,
                                       include_deleted=True)
        title = display(entity.field(entity.title_field), survivor.get(entity.title_field),
                        locale) or f"#{survivor.id}"
    except NotFoundError:
        title = f"#{result.survivor_id}"
    labels = [entity.field(n).label.get(locale) or n for n in result.fields
              if entity.has_field(n)]
    return ResultPage(
        entity=entity.name, title=ui.t(request, "Merge #%(id)s", id=result.id),
        survivor_url=f"/e/{entity.name}/{result.survivor_id}", survivor_title=title,
        merged=", ".join(f"#{i}" for i in result.merged_ids),
        when=format_instant(result.at, locale),
        fields=", ".join(labels) or ui.t(request, "none"), references=result.references,
        undone=format_instant(result.undone_at, locale) if result.undone_at else "",
        can_undo=result.undone_at is None and ui.may(actor, entity, "merge"),
        undo_url=f"/e/{entity.name}/merges/{result.id}/undo", notice=notice, error=error)


def merge_notes(ui: UIContext, request: Request, runtime: Runtime, actor: Actor,
                entity: Entity, record_id: int) -> list[MergeNote]:
    """Merges into this record that still stand (for its page: a link to each, to undo it)."""
    if not ui.may(actor, entity, "merge") or not runtime.records.plan(entity.name).soft_delete:
        return []
    locale = ui.locale(request)
    return [MergeNote(f"/e/{entity.name}/merges/{m.id}",
                      ui.t(request, "%(ids)s merged into this record on %(when)s",
                           ids=", ".join(f"#{i}" for i in m.merged_ids),
                           when=format_instant(m.at, locale)))
            for m in merges_of(runtime.records, actor, entity.name, record_id)
            if m.undone_at is None]


def _reason(ui: UIContext, request: Request, exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{k}: {ui.t(request, v)}" for k, v in exc.field_errors.items())
    if isinstance(exc, DuplicateError):
        return ui.t(request, "A record with these values already exists (#%(id)s).",
                    id=exc.existing_id) if exc.existing_id is not None else \
            ui.t(request, "A record you cannot see already holds these values.")
    if isinstance(exc, MergeConflictError):
        return ui.t(request, exc.message)
    return str(exc)


def _merge_id(request: Request) -> int:
    value = request.path_params["merge_id"]
    if value > 2**63 - 1:
        raise NotFoundError("merge", value)
    return int(value)


def routes(ui: UIContext) -> list[BaseRoute]:
    def choose(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        runtime.policy.check_action(actor, entity, "merge")
        ids = parse_ids(request.query_params.getlist("ids"))
        page = merge_page(ui, request, runtime, actor, entity, ids)
        return ui.render(request, "records/merge.html", page,
                         status=200 if len(page.ids) >= 2 else 422)

    def run(request: Request, form: FormData | None) -> Response:
        assert form is not None
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        runtime.policy.check_action(actor, entity, "merge")
        ids = parse_ids([str(v) for v in form.getlist("ids")])
        survivor = whole_number(str(form.get("survivor", "")))
        chosen = {}
        for key, value in form.multi_items():
            number = whole_number(str(value))
            if key.startswith("f.") and number is not None:
                chosen[key[2:]] = number
        if survivor not in ids:
            page = merge_page(ui, request, runtime, actor, entity, ids, chosen=chosen,
                              error=ui.t(request, "Choose the record that stays."))
            return ui.render(request, "records/merge.html", page, status=422)
        try:
            result = runtime.records.merge(actor, entity.name, survivor,
                                           [i for i in ids if i != survivor],
                                           values={k: v for k, v in chosen.items()
                                                   if entity.has_field(k)})
        except (ValidationError, DuplicateError, MergeConflictError) as exc:
            page = merge_page(ui, request, runtime, actor, entity, ids, survivor=survivor,
                              chosen=chosen, error=_reason(ui, request, exc))
            status = 409 if isinstance(exc, MergeConflictError) else 422
            return ui.render(request, "records/merge.html", page, status=status)
        return ui.redirect(request, f"/e/{entity.name}/merges/{result.id}")

    def show(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        result = get_merge(runtime.records, actor, entity.name, _merge_id(request))
        notice = ui.t(request, "The merge was undone.") \
            if request.query_params.get("undone") == "1" else ""
        return ui.render(request, "records/merged.html",
                         result_page(ui, request, runtime, actor, entity, result,
                                     notice=notice))

    def undo(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        merge_id = _merge_id(request)
        try:
            runtime.records.undo_merge(actor, entity.name, merge_id)
        except MergeConflictError as exc:
            result = get_merge(runtime.records, actor, entity.name, merge_id)
            return ui.render(request, "records/merged.html",
                             result_page(ui, request, runtime, actor, entity, result,
                                         error=_reason(ui, request, exc)), status=409)
        return ui.redirect(request, f"/e/{entity.name}/merges/{merge_id}?undone=1")

    return [
        Route("/e/{entity}/merge", ui.endpoint(choose), methods=["GET"], name="merge"),
        Route("/e/{entity}/merge", ui.endpoint(run), methods=["POST"], name="run_merge"),
        Route("/e/{entity}/merges/{merge_id:id}", ui.endpoint(show), methods=["GET"],
              name="merge_result"),
        Route("/e/{entity}/merges/{merge_id:id}/undo", ui.endpoint(undo), methods=["POST"],
              name="undo_merge"),
    ]


def merged_redirect(path: str, entity: str, record_id: Any, survivor_id: int) -> str:
    """The URL a request for a merged record goes to: the survivor's, with a notice."""
    marker = f"/e/{entity}/{record_id}"
    target = f"/e/{entity}/{survivor_id}"
    if path.startswith(marker):
        target += path[len(marker):]
    return f"{target}?merged_from={record_id}"

