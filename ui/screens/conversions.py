"""The convert screen: review what a conversion makes of a record, edit it, then run it.

A "Convert" button on the source record's page (for users with the convert
grant, on records not converted yet) opens a review page: one card per target
with its mapped values in form widgets, a tick box for optional targets, and
for targets that match existing records (on their unique keys) the choice to
attach to one instead of creating a twin. Posting runs the conversion in one
transaction and lands on the main target's page; any refusal redraws the page
with the user's input and the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.errors import ConversionError, DuplicateError, ValidationError
from engine.metadata.conversions import Conversion
from engine.metadata.model import Entity, Field, FieldType
from engine.records.coerce import CoercionError, InputSource, coerce
from engine.records.conversion import Converter, Proposal, TargetChoice, TargetProposal
from engine.records.record import Record
from engine.runtime import Runtime
from ui.context import ActionButton, UIContext
from ui.limits import whole_number
from ui.screens.records._common import entity_of, record_id_of
from ui.screens.records.display import display, titles
from ui.screens.records.duplicates import duplicate_text, field_message
from ui.screens.records.widgets import (
    NOT_EDITABLE,
    Widget,
    build_widget,
    changed_payload,
    initial_texts,
)

#: Joins a target's name to a field's in input names ("contact--phone"): unique per page,
#: and safe inside an element id that htmx selects by.
SEPARATOR = "--"


@dataclass(frozen=True)
class MatchChoice:
    value: str
    label: str
    url: str
    selected: bool


@dataclass(frozen=True)
class TargetView:
    name: str
    heading: str
    optional: bool
    included: bool
    widgets: list[Widget]
    matches: list[MatchChoice] = field(default_factory=list)
    create_selected: bool = True
    hidden_match: bool = False
    skipped: str = ""
    error: str = ""


@dataclass(frozen=True)
class ConvertView:
    title: str
    source_title: str
    source_url: str
    action: str
    targets: list[TargetView]
    errors: list[str] = field(default_factory=list)
    refused: str = ""
    has_errors: bool = False


def _prefixed(target: str, f: Field) -> Field:
    return dataclasses.replace(f, name=f"{target}{SEPARATOR}{f.name}")


def _editable(runtime: Runtime, actor: Actor, conversion: Conversion,
              proposal: TargetProposal) -> list[Field]:
    """The target's fields on the review page: mapped, constant and required ones the user
    may write; links and the back-reference are the conversion's to fill."""
    entity = proposal.entity
    target = proposal.target
    closed = runtime.policy.readonly_fields(actor, entity) | \
        runtime.policy.hidden_fields(actor, entity) | target.filled_by_engine
    named = {n for n, _ in target.mapping} | {n for n, _ in target.constants}
    return [f for f in entity.fields
            if (f.name in named or f.required) and f.name not in closed
            and f.type not in NOT_EDITABLE and f.type is not FieldType.FILE]


def _initial(fields: list[Field], target: str,
             values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    texts: dict[str, dict[str, Any]] = {}
    for f in fields:
        shown = _prefixed(target, f)
        try:
            value = coerce(f, values.get(f.name)) if values.get(f.name) is not None else None
        except CoercionError:
            value = None
        texts[shown.name] = initial_texts(shown, value)
    return texts


def _view(ui: UIContext, request: Request, runtime: Runtime, actor: Actor, entity: Entity,
          proposal: Proposal, *, posted: Mapping[str, Mapping[str, Any]] | None = None,
          choices: Mapping[str, TargetChoice] | None = None,
          errors: Mapping[str, str] | None = None, refused: str = "") -> ConvertView:
    locale = ui.locale(request)
    conversion = proposal.conversion
    errors = dict(errors or {})
    source = proposal.source
    source_title = display(entity.field(entity.title_field), source.get(entity.title_field),
                           locale) or f"#{source.id}"
    targets = []
    for tp in proposal.targets:
        target = tp.target
        fields = _editable(runtime, actor, conversion, tp)
        texts = posted if posted is not None else _initial(fields, target.name, tp.values)
        widgets = []
        for f in fields:
            shown = _prefixed(target.name, f)
            message = errors.pop(f"{target.name}.{f.name}", "")
            widgets.append(build_widget(
                shown, locale=locale, texts=texts.get(shown.name, {shown.name: ""}),
                error=field_message(ui, request, f, message) if message else ""))
        choice = (choices or {}).get(target.name)
        attach = choice.attach_to if choice is not None else None
        names = titles(runtime, actor, tp.entity.name, tp.matches) if tp.matches else {}
        matches = [MatchChoice(str(i), names.get((tp.entity.name, i), f"#{i}"),
                               f"/e/{tp.entity.name}/{i}", attach == i) for i in tp.matches]
        skipped = [tp.entity.field(n).label.get(locale) for n in tp.skipped
                   if tp.entity.has_field(n)]
        included = choice.include if choice is not None else \
            (target.selected if target.optional else True)
        own = [f"{k.split('.', 1)[1]}: {ui.t(request, v)}" for k, v in list(errors.items())
               if k.startswith(f"{target.name}.")]
        for k in [k for k in errors if k.startswith(f"{target.name}.")]:
            errors.pop(k)
        targets.append(TargetView(
            name=target.name,
            heading=(target.label or tp.entity.label).get(locale),
            optional=target.optional, included=included, widgets=widgets, matches=matches,
            create_selected=attach is None, hidden_match=tp.hidden_match,
            skipped=", ".join(skipped), error="; ".join(own)))
    general = [f"{k}: {ui.t(request, v)}" for k, v in errors.items()]
    url = f"/e/{entity.name}/{source.id}"
    return ConvertView(title=conversion.label.get(locale), source_title=source_title,
                       source_url=url, action=f"{url}/convert/{conversion.name}",
                       targets=targets, errors=general, refused=refused,
                       has_errors=bool(general) or any(
                           t.error or any(w.error for w in t.widgets) for t in targets))


def _posted(runtime: Runtime, actor: Actor, proposal: Proposal, form: FormData
            ) -> tuple[dict[str, TargetChoice], dict[str, dict[str, Any]]]:
    """The user's choices per target, and the posted texts (to redraw the page)."""
    choices: dict[str, TargetChoice] = {}
    texts: dict[str, dict[str, Any]] = {}
    for tp in proposal.targets:
        name = tp.target.name
        fields = [_prefixed(name, f)
                  for f in _editable(runtime, actor, proposal.conversion, tp)]
        payload, posted = changed_payload(fields, form, None)
        texts.update(posted)
        values = {k.split(SEPARATOR, 1)[1]: v for k, v in payload.items()}
        include = form.get(f"include.{name}") == "1" if tp.target.optional else True
        attach = whole_number(str(form.get(f"attach.{name}", "") or ""))
        choices[name] = TargetChoice(include=include, values=values,
                                     attach_to=attach if attach in tp.matches else None)
    return choices, texts


def _duplicate_errors(ui: UIContext, request: Request, runtime: Runtime, proposal: Proposal,
                      exc: DuplicateError) -> dict[str, str]:
    tp = next((t for t in proposal.targets if t.entity.name == exc.entity), None)
    if tp is None:
        return {"": str(exc)}
    entity = runtime.registry.entity(exc.entity)
    return {f"{tp.target.name}.{exc.fields[0]}": duplicate_text(ui, request, entity, exc)}


def routes(ui: UIContext) -> list[BaseRoute]:
    def review(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        converter = Converter(runtime.records)
        proposal = converter.preview(actor, request.path_params["conversion"],
                                     record_id_of(request), source_entity=entity.name)
        view = _view(ui, request, runtime, actor, entity, proposal)
        return ui.render(request, "records/convert.html", view)

    def run(request: Request, form: FormData | None) -> Response:
        assert form is not None
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        converter = Converter(runtime.records)
        name = request.path_params["conversion"]
        proposal = converter.preview(actor, name, record_id_of(request),
                                     source_entity=entity.name)
        choices, posted = _posted(runtime, actor, proposal, form)
        try:
            result = converter.convert(actor, name, proposal.source.id, choices,
                                       source_entity=entity.name,
                                       input_source=InputSource.STRING)
        except (ValidationError, DuplicateError, ConversionError) as exc:
            status, errors, refused = 422, {}, ""
            if isinstance(exc, ValidationError):
                errors = exc.field_errors
            elif isinstance(exc, DuplicateError):
                errors = _duplicate_errors(ui, request, runtime, proposal, exc)
            else:
                status, refused = 409, ui.t(request, exc.message)
            view = _view(ui, request, runtime, actor, entity, proposal, posted=posted,
                         choices=choices, errors=errors, refused=refused)
            return ui.render(request, "records/convert.html", view, status=status)
        main = result.main
        return ui.redirect(request, f"/e/{main.entity}/{main.record_id}")

    def convert_buttons(request: Request, actor: Actor, entity: Entity,
                        record: Record) -> list[ActionButton]:
        converter = Converter(ui.runtime().records)
        locale = ui.locale(request)
        return [ActionButton(c.label.get(locale),
                             f"/e/{entity.name}/{record.id}/convert/{c.name}", method="get")
                for c in converter.for_entity(entity.name)
                if converter.may_convert(actor, c, record)]

    ui.add_detail_actions(convert_buttons)
    path = "/e/{entity}/{record_id:id}/convert/{conversion}"
    return [Route(path, ui.endpoint(review), methods=["GET"], name="convert_review"),
            Route(path, ui.endpoint(run), methods=["POST"], name="convert")]
