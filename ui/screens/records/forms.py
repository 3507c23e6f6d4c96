"""Create and edit forms: a widget per field, per-field errors (422), stale edits (409)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.errors import ConflictError, DuplicateError, ValidationError
from engine.metadata.model import Entity, Field, FieldType
from engine.permissions.directory import search_people
from engine.records.coerce import InputSource
from engine.records.dedup import checked_fields
from engine.records.query import ListQuery
from engine.records.record import Record
from engine.runtime import Runtime
from ui.context import UIContext
from ui.i18n import N_
from ui.limits import whole_number
from ui.screens.records import dedup_warnings, files
from ui.screens.records._common import entity_of, record_id_of
from ui.screens.records.display import display, titles
from ui.screens.records.duplicates import duplicate_text, field_message
from ui.screens.records.listing import Choice
from ui.screens.records.widgets import (
    NOT_EDITABLE,
    Widget,
    build_widget,
    changed_payload,
    initial_texts,
)

REFERENCE_CHOICES = 20
#: The records service's fixed per-field messages, translated when shown.
ENGINE_MESSAGES = (N_("is required"), N_("is read-only for you"), N_("is set by the system"),
                   N_("is numbered automatically"),
                   # engine/records/_scope_checks.py: the owner a write names
                   N_("only you may own the records you create: giving one to someone else "
                      "needs the assign permission"),
                   N_("you may not give records to this owner"),
                   N_("you may not create records you own here"),
                   N_("you may not leave this record without an owner"),
                   N_("already exists (held by a record you cannot see)"),
                   # engine/records/uploads.py: a file value that is not a fresh upload
                   N_("no upload with this upload_id for this field: upload the file first"),
                   N_("a file is set by uploading it: send the upload_id the upload returned"),
                   N_("is not in the expected format"))


@dataclass(frozen=True)
class FormView:
    entity: str
    title: str
    action: str
    cancel_url: str
    widgets: list[Widget]
    is_new: bool
    version: int | None = None
    errors: list[str] = field(default_factory=list)
    conflict: str = ""
    multipart: bool = False
    #: Possible duplicates awaiting "save anyway", and the fingerprint confirming them.
    warnings: list[dedup_warnings.WarningView] = field(default_factory=list)
    confirm: str = ""


def _fields(runtime: Runtime, actor: Actor, entity: Entity) -> tuple[list[Field], frozenset[str]]:
    hidden = runtime.policy.hidden_fields(actor, entity)
    readonly = runtime.policy.readonly_fields(actor, entity)
    shown = [f for f in entity.fields if f.name not in hidden and f.type not in NOT_EDITABLE]
    return shown, readonly


def _reference_choices(runtime: Runtime, actor: Actor, f: Field, current: Any,
                       locale: str) -> list[Choice]:
    """The first records of the target (what works without JavaScript) plus the current one."""
    target = runtime.registry.entities.get(f.target or "")
    if target is None:
        return []
    try:
        page = runtime.records.list(actor, target.name, ListQuery(limit=REFERENCE_CHOICES))
    except Exception:  # noqa: BLE001 - no read access: the picker stays empty
        return []
    title = target.field(target.title_field)
    found = {r.id: display(title, r.get(title.name), locale) or f"#{r.id}" for r in page.rows}
    if whole_number(str(current or "")) is not None and int(current) not in found:
        names = titles(runtime, actor, target.name, [int(current)])
        found[int(current)] = names.get((target.name, int(current)), f"#{current}")
    return [Choice(str(i), label, str(i) == str(current)) for i, label in found.items()]


def form_view(ui: UIContext, request: Request, runtime: Runtime, actor: Actor, entity: Entity,
              *, record: Record | None, texts: Mapping[str, Mapping[str, Any]],
              errors: Mapping[str, str] | None = None, conflict: str = "") -> FormView:
    locale = ui.locale(request)
    fields, readonly = _fields(runtime, actor, entity)
    errors = dict(errors or {})
    people: list[Choice] | None = None
    widgets = []
    for f in fields:
        mine = texts.get(f.name, {f.name: ""})
        options = None
        if f.type is FieldType.REFERENCE:
            options = _reference_choices(runtime, actor, f, mine.get(f.name), locale)
        elif f.type is FieldType.USER:
            if people is None:
                people = [Choice(str(p.id), p.display_name)
                          for p in search_people(runtime.engine, limit=200)]
            options = [Choice(c.value, c.label, c.value == mine.get(f.name)) for c in people]
        file_name = file_url = ""
        if f.type is FieldType.FILE and record is not None and record.get(f.name):
            file_name = str(record[f.name].get("name", ""))
            file_url = f"/e/{entity.name}/{record.id}/files/{f.name}"
        widgets.append(build_widget(
            f, locale=locale, texts=mine, error=field_message(ui, request, f, errors.pop(f.name))
            if f.name in errors else "", readonly=f.name in readonly, options=options,
            file_name=file_name, file_url=file_url))
    general = [f"{k}: {ui.t(request, v)}" for k, v in errors.items()]
    label = entity.label.get(locale)
    multipart = any(w.kind == "file" for w in widgets)
    url = f"/e/{entity.name}/{record.id}" if record is not None else ""
    # Inputs a fuzzy dedup rule reads ask for warnings as the user leaves them.
    similar = f"{url}/edit/similar" if record is not None else f"/e/{entity.name}/new/similar"
    checked = checked_fields(entity) - readonly
    widgets = [replace(w, similar_url=similar) if w.name in checked else w for w in widgets]
    if record is None:
        return FormView(entity.name, ui.t(request, "New %(what)s", what=label),
                        f"/e/{entity.name}/new", f"/e/{entity.name}", widgets, True,
                        errors=general, multipart=multipart)
    return FormView(entity.name, ui.t(request, "Edit %(what)s", what=label), f"{url}/edit", url,
                    widgets, False, version=record.version, errors=general, conflict=conflict,
                    multipart=multipart)


def _uploads(ui: UIContext, runtime: Runtime, actor: Actor, entity: Entity, fields: list[Field],
             readonly: frozenset[str], form: FormData, payload: dict[str, str],
             errors: dict[str, str]) -> list[dict[str, Any]]:
    """Store uploaded files and put their upload ids in ``payload``; returns what was stored
    (to discard on failure). The storage key never leaves the server: the records
    service swaps the upload id for it (engine/records/uploads.py)."""
    stored = []
    for f in fields:
        if f.type is not FieldType.FILE or f.name in readonly:
            continue
        upload = form.get(f.name)
        if isinstance(upload, UploadFile) and upload.filename:
            try:
                value = files.store_upload(
                    ui.settings.upload_dir, entity.name, f, filename=upload.filename,
                    content_type=upload.content_type or "", stream=upload.file,
                    max_bytes=ui.settings.max_upload_bytes)
            except files.UploadRefused as exc:
                errors[f.name] = str(exc)
                continue
            stored.append(value)
            token = runtime.records.register_upload(
                actor, entity.name, f.name, storage_key=value["key"], name=value["name"],
                size=value["size"], content_type=value["content_type"])
            payload[f.name] = json.dumps({"upload_id": token})
        elif form.get(f"{f.name}.remove") == "1":
            payload[f.name] = ""
    return stored


def _field_errors(exc: ValidationError | DuplicateError, ui: UIContext, request: Request,
                  entity: Entity) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        return exc.field_errors
    return {exc.fields[0]: duplicate_text(ui, request, entity, exc)}


def _opened(ui: UIContext, request: Request, *,
            check: bool = True) -> tuple[Runtime, Actor, Entity, Record | None]:
    """A form request's runtime, actor and entity, and the record it edits (None: new).

    The record is read first, so one the actor may not read is a 404 with no hint
    that it exists. ``check``: refuse (403) unless the actor may create (a new record)
    or update (an edited one); otherwise the records service checks it on saving.
    """
    runtime, actor = ui.runtime(), ui.actor(request)
    entity = entity_of(runtime, request)
    record = runtime.records.get(actor, entity.name, record_id_of(request)) \
        if "record_id" in request.path_params else None
    if check:
        runtime.policy.check_action(actor, entity, "create" if record is None else "update")
    return runtime, actor, entity, record


def routes(ui: UIContext) -> list[BaseRoute]:
    def new_form(request: Request, form: FormData | None) -> Response:
        runtime, actor, entity, _ = _opened(ui, request)
        prefill = {f.name: {f.name: request.query_params.get(f.name, "")} for f in entity.fields}
        view = form_view(ui, request, runtime, actor, entity, record=None, texts=prefill)
        return ui.render(request, "records/form.html", view, fragment="records/_form.html")

    def create(request: Request, form: FormData | None) -> Response:
        assert form is not None
        runtime, actor, entity, _ = _opened(ui, request)
        fields, readonly = _fields(runtime, actor, entity)
        payload, posted = changed_payload([f for f in fields if f.name not in readonly], form,
                                          None)
        errors: dict[str, str] = {}
        stored = _uploads(ui, runtime, actor, entity, fields, readonly, form, payload, errors)
        found, mark = dedup_warnings.pending(runtime, actor, entity, payload, form)
        if found and not errors:
            for value in stored:  # nothing is saved yet: files are chosen again on confirm
                files.discard(ui.settings.upload_dir, value)
            view = form_view(ui, request, runtime, actor, entity, record=None, texts=posted)
            view = FormView(**{**view.__dict__, "confirm": mark,
                               "warnings": dedup_warnings.views(ui, request, runtime, found)})
            return ui.render(request, "records/form.html", view,
                             fragment="records/_form.html")
        try:
            if errors:
                raise ValidationError(entity.name, errors)
            record = runtime.records.create(actor, entity.name, payload,
                                            source=InputSource.STRING)
        except (ValidationError, DuplicateError) as exc:
            for value in stored:
                files.discard(ui.settings.upload_dir, value)
            view = form_view(ui, request, runtime, actor, entity, record=None, texts=posted,
                             errors={**errors, **_field_errors(exc, ui, request, entity)})
            return ui.render(request, "records/form.html", view, status=422,
                             fragment="records/_form.html")
        return ui.redirect(request, f"/e/{entity.name}/{record.id}")

    def edit_form(request: Request, form: FormData | None) -> Response:
        runtime, actor, entity, record = _opened(ui, request)
        assert record is not None  # the route names one
        texts = {f.name: initial_texts(f, record.get(f.name)) for f in entity.fields}
        view = form_view(ui, request, runtime, actor, entity, record=record, texts=texts)
        return ui.render(request, "records/form.html", view, fragment="records/_form.html")

    def save(request: Request, form: FormData | None) -> Response:
        assert form is not None
        runtime, actor, entity, record = _opened(ui, request, check=False)
        assert record is not None  # the route names one
        version = str(form.get("version", ""))
        fields, readonly = _fields(runtime, actor, entity)
        payload, posted = changed_payload([f for f in fields if f.name not in readonly], form,
                                          record)
        errors: dict[str, str] = {}
        stored = _uploads(ui, runtime, actor, entity, fields, readonly, form, payload, errors)
        found, mark = dedup_warnings.pending(runtime, actor, entity, payload, form,
                                             exclude_id=record.id)
        if found and not errors:
            for value in stored:
                files.discard(ui.settings.upload_dir, value)
            shown = {f.name: initial_texts(f, record.get(f.name)) for f in entity.fields}
            view = form_view(ui, request, runtime, actor, entity, record=record,
                             texts={**shown, **posted})
            view = FormView(**{**view.__dict__, "version": whole_number(version) or 0,
                               "confirm": mark,
                               "warnings": dedup_warnings.views(ui, request, runtime, found)})
            return ui.render(request, "records/form.html", view,
                             fragment="records/_form.html")
        try:
            if errors:
                raise ValidationError(entity.name, errors)
            runtime.records.update(actor, entity.name, record.id, payload,
                                   version=whole_number(version) or -1,
                                   source=InputSource.STRING)
        except (ValidationError, DuplicateError, ConflictError) as exc:
            for value in stored:
                files.discard(ui.settings.upload_dir, value)
            status, conflict, field_errors = 422, "", {}
            if isinstance(exc, ConflictError):
                status, conflict = 409, ui.t(
                    request, "Someone else changed this record while you were editing it. "
                             "Your changes are below but were not saved: open the record "
                             "again to see the new values, then make your change again.")
            else:
                field_errors = _field_errors(exc, ui, request, entity)
            shown = {f.name: initial_texts(f, record.get(f.name)) for f in entity.fields}
            view = form_view(ui, request, runtime, actor, entity, record=record,
                             texts={**shown, **posted}, errors={**errors, **field_errors},
                             conflict=conflict)
            if status == 409:  # keep the version the user edited: a second save is stale too
                view = FormView(**{**view.__dict__, "version": whole_number(version) or 0})
            return ui.render(request, "records/form.html", view, status=status,
                             fragment="records/_form.html")
        return ui.redirect(request, f"/e/{entity.name}/{record.id}")

    def similar(request: Request, form: FormData | None) -> Response:
        """The possible duplicates of the values typed so far, drawn into the form's
        warning slot as the user leaves a checked field (htmx); nothing is saved.

        The same grants as saving (create, or read and update of the edited record),
        the same payload rules (an edit checks only changed values) and the same
        fingerprint, so a submit of the warned values saves without asking twice.
        """
        assert form is not None
        runtime, actor, entity, record = _opened(ui, request)
        fields, readonly = _fields(runtime, actor, entity)
        checked = checked_fields(entity) - readonly
        payload, _ = changed_payload([f for f in fields if f.name in checked], form, record)
        found = dedup_warnings.unconfirmed(runtime, actor, entity, payload,
                                           exclude_id=record.id if record else None)
        view = FormView(entity.name, "", "", "", [], record is None,
                        confirm=dedup_warnings.fingerprint(entity, payload) if found else "",
                        warnings=dedup_warnings.views(ui, request, runtime, found))
        return ui.render(request, "records/_dedup_live.html", view)

    return [
        Route("/e/{entity}/new/similar", ui.endpoint(similar), methods=["POST"],
              name="similar_new"),
        Route("/e/{entity}/{record_id:id}/edit/similar", ui.endpoint(similar),
              methods=["POST"], name="similar_edit"),
        Route("/e/{entity}/new", ui.endpoint(new_form), methods=["GET"], name="new"),
        Route("/e/{entity}/new", ui.endpoint(create), methods=["POST"], name="create"),
        Route("/e/{entity}/{record_id:id}/edit", ui.endpoint(edit_form), methods=["GET"],
              name="edit"),
        Route("/e/{entity}/{record_id:id}/edit", ui.endpoint(save), methods=["POST"],
              name="save"),
    ]
