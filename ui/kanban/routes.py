"""Kanban routes: the board of a pipelined entity, its columns' pages, and card moves.

- ``GET  /e/{entity}/kanban``: a column per stage (count, amount total, first cards);
  counts stop at a cap ("1,000+", no total) unless ``?exact=1`` asks for them all.
- ``GET  /e/{entity}/kanban/column/{stage}?after=``: the next keyset page of a column.
- ``POST /e/{entity}/kanban/{id}/move`` (``to`` or ``dropped``, ``version``, and values
  of fields the target stage requires): moves through ``RecordService.move_stage``.
  An htmx request gets the card in its new column and every column head
  (``<hx-partial>``); a refusal (409 transition or stale version, 422 missing
  fields, 403, 404) re-renders the card
  where it was, saying why and asking for missing fields. A plain form post is
  redirected on success and gets the card on a page of its own when refused.
- ``GET  /e/{entity}/{id}/stage?to=``: that page, from the record's detail actions.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    QueryError,
    StageTransitionError,
    ValidationError,
)
from engine.metadata.model import Entity, Feature, FieldType
from engine.records import InputSource, Record
from engine.records.stages import STAGE
from ui.auth import safe_next
from ui.context import ActionButton, NavLink, UIContext, is_fragment_request
from ui.kanban.board import DEFAULT_COUNT_CAP, Board, CardView, FieldInput, MovedView, MovePage
from ui.limits import whole_number
from ui.zones import from_input


def _pipelined(ui: UIContext, request: Request) -> Entity:
    name = request.path_params["entity"]
    entity = ui.runtime().registry.entities.get(name)
    if entity is None or not entity.has(Feature.PIPELINED):
        raise NotFoundError("entity", name)
    return entity


def _board(ui: UIContext, request: Request, actor: Actor, entity: Entity, *,
           pipeline: str | None = None, stage: str | None = None) -> Board:
    """The board of ``pipeline`` (an unknown name is not found), else of the pipeline
    holding ``stage`` (a column or a move's target), else the default one."""
    records = ui.runtime().records
    pipelines = records.pipelines(entity.name)
    if pipelines is None:  # pipelined, but the pipeline is missing: nothing to show
        raise NotFoundError("pipeline", entity.name)
    if pipeline is not None:
        rules = pipelines.named(pipeline)
        if rules is None:
            raise NotFoundError("pipeline", pipeline)
    else:
        rules = pipelines.holding(stage) or pipelines.rules[0]
    return Board(records, actor, entity, rules, locale=ui.locale(request),
                 pipelines=pipelines, cap=count_cap())


def count_cap() -> int:
    """Rows a column head counts before "N+": ``TIDEPOOL_KANBAN_COUNT_CAP`` if it is a
    positive whole number, else the default (a bad setting must not break the board)."""
    number = whole_number(os.environ.get("TIDEPOOL_KANBAN_COUNT_CAP", ""))
    return number if number is not None and number >= 1 else DEFAULT_COUNT_CAP


def _version(form: FormData) -> int:
    version = whole_number(str(form.get("version", "")))
    if version is None:
        raise QueryError("record", "version", "the form must send the record's version")
    return version


def _typed_in_zone(entity: Entity, name: str, text: str) -> str:
    """A posted value as the engine reads it: a typed wall-clock time gets the
    viewer's offset (the input shows their zone, the engine reads naive as UTC)."""
    if entity.has_field(name) and entity.field(name).type is FieldType.DATETIME:
        return from_input(text)
    return text


def routes(ui: UIContext) -> list[BaseRoute]:
    def board(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        b = _board(ui, request, actor, _pipelined(ui, request),
                   pipeline=request.query_params.get("pipeline") or None)
        return ui.render(request, "kanban/board.html",
                         b.board(request.query_params.get("q", ""),
                                 exact=request.query_params.get("exact") == "1"))

    def column(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        stage = request.path_params["stage"]
        b = _board(ui, request, actor, _pipelined(ui, request), stage=stage)
        if b.rules.find(stage) is None:
            raise NotFoundError("stage", stage)
        cards, more = b.cards(stage, search=request.query_params.get("q", ""),
                              after=request.query_params.get("after") or None)
        return ui.render(request, "kanban/_more.html", {"stage": stage, "cards": cards,
                                                        "more_url": more})

    def move(request: Request, form: FormData | None) -> Response:
        assert form is not None
        actor = ui.actor(request)
        entity = _pipelined(ui, request)
        to = str(form.get("dropped") or form.get("to") or "")
        b = _board(ui, request, actor, entity, stage=to)
        record_id = int(request.path_params["record_id"])
        stage = b.find(to)
        # Only what the target stage asks for rides along with a move.
        values = {n: _typed_in_zone(entity, n, str(form[n]))
                  for n in (stage.required_fields if stage else ()) if n in form}
        refuse = _refusal(ui, request, b, record_id, next_url=str(form.get("next") or ""))
        try:
            moved = ui.runtime().records.move_stage(
                actor, entity.name, record_id, to=to, version=_version(form), values=values,
                source=InputSource.STRING)
        except StageTransitionError as exc:
            # 409 as in the API: the record's current stage refuses it, not the payload.
            return refuse(409, b.transition_message(exc), None)
        except ValidationError as exc:
            errors = exc.field_errors
            return refuse(422, b.invalid_message(exc, to),
                          lambda r: (b.inputs_for(r, to, values, errors), to))
        except ConflictError:
            return refuse(409, ui.t(request, "Someone else changed this record meanwhile: "
                                             "this is how it is now."), None)
        except ForbiddenError:
            return refuse(403, ui.t(request, "You may not move this record."), None)
        except NotFoundError:
            return refuse(404, "", None)
        if not is_fragment_request(request):
            return ui.redirect(request, safe_next(str(form.get("next") or b.board_url())))
        heads = b.heads()
        return ui.render(request, "kanban/_moved.html",
                         MovedView(card=b.card(moved), heads=list(heads.values())))

    def stage_page(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        entity = _pipelined(ui, request)
        record = ui.runtime().records.get(actor, entity.name, int(request.path_params["record_id"]))
        b = _board(ui, request, actor, entity, stage=str(record.get(STAGE) or ""))
        to = request.query_params.get("to", "")
        card = b.card(record, inputs=b.inputs_for(record, to, {}, {}), target=to) \
            if to in b.rules_of(record).next_stages(record.get(STAGE)) else b.card(record)
        return ui.render(request, "kanban/move.html",
                         MovePage(title=card.title, card=card, board_url=b.board_url()),
                         context={"card": card, "next": f"/e/{entity.name}/{record.id}"})

    ui.add_nav(lambda request, actor: _nav(ui, request, actor), cached=True)
    ui.add_detail_actions(lambda request, actor, entity, record:
                          _stage_buttons(ui, request, actor, entity, record))
    return [
        Route("/e/{entity}/kanban", ui.endpoint(board), name="kanban"),
        Route("/e/{entity}/kanban/column/{stage}", ui.endpoint(column), name="kanban_column"),
        Route("/e/{entity}/kanban/{record_id:id}/move", ui.endpoint(move), methods=["POST"],
              name="kanban_move"),
        Route("/e/{entity}/{record_id:id}/stage", ui.endpoint(stage_page), name="stage_page"),
    ]


Inputs = Callable[[Record], tuple[list[FieldInput], str]]


def _refusal(ui: UIContext, request: Request, b: Board, record_id: int, *,
             next_url: str) -> Callable[[int, str, Inputs | None], Response]:
    """A refused move: the card as it is now, saying why; a gone card if it cannot be read."""
    def refuse(status: int, message: str, inputs: Inputs | None) -> Response:
        try:
            record = ui.runtime().records.get(b.actor, b.entity.name, record_id)
        except NotFoundError:
            status, record = 404, None
        if record is None:
            card = CardView(id=record_id, version=0, title="", url="", amount="", stage="",
                            move_url="", options=[],
                            error=ui.t(request, "This record is gone or no longer yours "
                                                "to see."))
        else:
            fields, target = inputs(record) if inputs is not None else ([], "")
            card = b.card(record, error=message, inputs=fields, target=target)
        return ui.render(request, "kanban/move.html",
                         MovePage(title=card.title or b.entity.label.get(b.locale), card=card,
                                  board_url=b.board_url()),
                         status=status, fragment="kanban/_card.html",
                         context={"card": card, "next": safe_next(next_url) if next_url else ""})
    return refuse


def _nav(ui: UIContext, request: Request, actor: Actor) -> list[NavLink]:
    """A board link for each pipelined entity the actor may read."""
    links = []
    locale = ui.locale(request)
    for entity in ui.runtime().registry.entities.values():
        if entity.has(Feature.PIPELINED) and ui.may(actor, entity, "read"):
            url = f"/e/{entity.name}/kanban"
            label = ui.t(request, "%(entity)s board",
                         entity=entity.plural_label.get(locale) or entity.label.get(locale))
            links.append(NavLink(label, url, active=request.url.path == url))
    return links


def _stage_buttons(ui: UIContext, request: Request, actor: Actor, entity: Entity,
                   record: Record) -> list[ActionButton]:
    """On a record's page: one "move to" link per stage it may go to next."""
    if not entity.has(Feature.PIPELINED) or not ui.may(actor, entity, "update"):
        return []
    pipelines = ui.runtime().records.pipelines(entity.name)
    rules = (pipelines.holding(record.get(STAGE)) or pipelines.of(record)) \
        if pipelines is not None else None
    if rules is None:
        return []
    locale = ui.locale(request)
    buttons = []
    for key in rules.next_stages(record.get(STAGE)):
        stage = rules.find(key)
        assert stage is not None
        buttons.append(ActionButton(
            label=ui.t(request, "Move to %(stage)s", stage=stage.label.get(locale)),
            url=f"/e/{entity.name}/{record.id}/stage?to={key}", method="get",
            style="secondary"))
    return buttons
