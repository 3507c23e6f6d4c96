"""Pool actions on the screens: buttons on a record's page, a reason form, the POST routes.

Claim (领取) and lock/unlock post at once; return (退回), recycle (回收) and move
(移动) first ask for a reason (and the target pool when there are several).
Each POST makes one ``PoolService`` call and goes back to the record (or the list
when the actor can no longer see it); a limit that refuses shows its reason (409).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.errors import NotFoundError
from engine.metadata.model import Entity, Feature
from engine.records.record import Record
from engine.workflow.pools import PoolService, is_locked, pools_of
from ui.context import ActionButton, UIContext
from ui.screens.records import dedup_warnings
from ui.screens.records._common import entity_of, record_id_of

#: operation -> whether it asks for a reason first (a form page)
OPERATIONS = {"claim": False, "return": True, "recycle": True, "move": True, "lock": False,
              "unlock": False}


class PoolOperationConvertor(Convertor[str]):
    """A path segment naming a pool operation, and nothing else: a plain ``{operation}``
    would also take the record's other pages (shares, why...) and answer them 404."""

    regex = "|".join(OPERATIONS)

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("pool_operation", PoolOperationConvertor())


@dataclass(frozen=True)
class PoolChoice:
    value: str
    label: str


@dataclass(frozen=True)
class ReasonForm:
    """The reason page of a return, recycle or move."""

    operation: str
    title: str
    action_url: str
    back_url: str
    reason_required: bool
    pools: list[PoolChoice]
    pool_field: str  # "pool" or "to_pool"; "" when there is no choice to make
    error: str = ""
    #: Possible duplicates of the record (fuzzy dedup rules): worth merging before the
    #: record goes back where everyone in the pool can claim it.
    warnings: tuple[Any, ...] = ()


def _held_by_me(actor: Actor, record: Record) -> bool:
    return actor.user_id is not None and record.get("owner_id") == actor.user_id


def pool_buttons(ui: UIContext, request: Request, actor: Actor, entity: Entity,
                 record: Record) -> list[ActionButton]:
    """The pool actions the actor may try on this record (the service decides for good)."""
    if not entity.has(Feature.POOLED) or record.get("deleted_at") is not None:
        return []
    runtime = ui.runtime()
    url = f"/e/{entity.name}/{record.id}"
    in_pool = record.get("owner_id") is None and record.get("pool_id") is not None
    buttons = []
    if in_pool and ui.may(actor, entity, "claim"):
        buttons.append(ActionButton(ui.t(request, "Claim"), f"{url}/claim"))
    if in_pool and ui.may(actor, entity, "assign") and len(pools_of(runtime.records,
                                                                    entity.name)) > 1:
        buttons.append(ActionButton(ui.t(request, "Move to pool"), f"{url}/move", method="get",
                                    style="secondary"))
    if _held_by_me(actor, record) and ui.may(actor, entity, "return"):
        buttons.append(ActionButton(ui.t(request, "Return to pool"), f"{url}/return",
                                    method="get", style="secondary"))
    held = record.get("owner_id") is not None
    if held and not _held_by_me(actor, record) and ui.may(actor, entity, "recycle"):
        buttons.append(ActionButton(ui.t(request, "Recycle to pool"), f"{url}/recycle",
                                    method="get", style="danger"))
    lockable = any(p.limits.max_locked for p in pools_of(runtime.records, entity.name))
    if held and lockable and (_held_by_me(actor, record) or ui.may(actor, entity, "assign")):
        with runtime.engine.connect() as conn:
            locked = is_locked(conn, entity.name, record.id)
        buttons.append(ActionButton(ui.t(request, "Unlock") if locked else ui.t(request, "Lock"),
                                    f"{url}/unlock" if locked else f"{url}/lock",
                                    style="secondary"))
    return buttons


def _reason_form(ui: UIContext, request: Request, entity: Entity, record_id: int,
                 operation: str, *, error: str = "") -> ReasonForm:
    runtime = ui.runtime()
    locale = ui.locale(request)
    choices = [PoolChoice(p.name, p.label.get(locale))
               for p in pools_of(runtime.records, entity.name)]
    titles = {"return": ui.t(request, "Return to pool"),
              "recycle": ui.t(request, "Recycle to pool"),
              "move": ui.t(request, "Move to pool")}
    url = f"/e/{entity.name}/{record_id}"
    field = "to_pool" if operation == "move" else ("pool" if len(choices) > 1 else "")
    return ReasonForm(operation=operation, title=titles[operation],
                      action_url=f"{url}/{operation}", back_url=url,
                      reason_required=operation != "move", pools=choices, pool_field=field,
                      error=error)


def _text(form: FormData | None, name: str) -> str | None:
    value = form.get(name) if form is not None else None
    return value.strip() or None if isinstance(value, str) else None


def routes(ui: UIContext) -> list[BaseRoute]:
    ui.add_detail_actions(lambda request, actor, entity, record:
                          pool_buttons(ui, request, actor, entity, record))

    def ask(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        record_id = record_id_of(request)
        record = runtime.records.get(actor, entity.name, record_id)  # 404 unless readable
        operation = request.path_params["operation"]
        if not OPERATIONS.get(operation):
            raise NotFoundError(entity.name, f"{record_id}/{operation}")
        view = _reason_form(ui, request, entity, record_id, operation)
        if operation in ("return", "recycle") and entity.dedup_rules:
            found = runtime.records.dedup_warnings(actor, entity.name, [dict(record)],
                                                   exclude_id=record_id)
            view = dataclasses.replace(view, warnings=tuple(
                dedup_warnings.views(ui, request, runtime, found)))
        return ui.render(request, "pools/reason.html", view)

    def act(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        record_id = record_id_of(request)
        operation = request.path_params["operation"]
        if operation not in OPERATIONS:
            raise NotFoundError(entity.name, f"{record_id}/{operation}")
        pools = PoolService(runtime.records)
        reason = _text(form, "reason")
        name = entity.name
        if OPERATIONS[operation] and operation != "move" and reason is None:
            view = _reason_form(ui, request, entity, record_id, operation,
                                error=ui.t(request, "A reason is required."))
            return ui.render(request, "pools/reason.html", view, status=422)
        if operation == "claim":
            pools.claim(actor, name, record_id, reason=reason)
        elif operation == "return":
            pools.return_to_pool(actor, name, record_id, reason=reason or "",
                                 pool=_text(form, "pool"))
        elif operation == "recycle":
            pools.recycle(actor, name, record_id, reason=reason or "", pool=_text(form, "pool"))
        elif operation == "move":
            pools.move(actor, name, record_id, to_pool=_text(form, "to_pool") or "",
                       reason=reason)
        elif operation == "lock":
            pools.lock(actor, name, record_id, reason=reason)
        else:
            pools.unlock(actor, name, record_id, reason=reason)
        back = _text(form, "next")
        if operation in ("return", "recycle") or back == "list":
            return ui.redirect(request, f"/e/{name}")
        return ui.redirect(request, f"/e/{name}/{record_id}")

    path = "/e/{entity}/{record_id:id}/{operation:pool_operation}"
    return [Route(path, ui.endpoint(ask), methods=["GET"], name="pool_ask"),
            Route(path, ui.endpoint(act), methods=["POST"], name="pool_act")]


def claimable(ui: UIContext, actor: Actor, entity: Entity, records: Sequence[Record]) -> set[int]:
    """Ids of the listed records the actor may try to claim (for the list rows' buttons)."""
    if not entity.has(Feature.POOLED) or not ui.may(actor, entity, "claim"):
        return set()
    return {r.id for r in records if r.get("owner_id") is None and r.get("pool_id") is not None}
