"""Manual shares on a record: with a user or a department, read or write, maybe until
a date; listed and revocable (``engine/permissions/shares.py`` keeps the table).

- ``GET /e/{entity}/{id}/shares``: the record's shares and a form to add one.
- ``POST /e/{entity}/{id}/shares``: share (again with the same grantee replaces
  the access and expiry).
- ``POST /e/{entity}/{id}/shares/{share_id}/revoke``: take a share back.

Only someone who may update the record (and is not viewing as someone else) may
see or change its shares; anyone else gets 404 when they cannot read the record,
403 when they can. A department share reaches the department and those below it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.errors import ForbiddenError, NotFoundError, ValidationError
from engine.metadata.model import Entity
from engine.permissions.directory import people_by_id, search_people
from engine.permissions.org import load_org_snapshot
from engine.permissions.shares import (
    ACCESS_LEVELS,
    get_share,
    revoke_share,
    share_record,
    shares_of,
)
from engine.records.record import Record
from engine.storage.database import write_transaction
from ui.context import ActionButton, UIContext
from ui.screens.records.listing import Choice
from ui.vocabulary import vocab
from ui.zones import expiry_after, format_instant, today


@dataclass(frozen=True)
class ShareRow:
    id: int
    grantee: str
    kind: str          # user | department
    access: str
    expires: str
    expired: bool
    revoke_url: str


@dataclass
class SharesPage:
    title: str
    record_title: str
    record_url: str
    action: str
    rows: list[ShareRow]
    users: list[Choice]
    departments: list[Choice]
    accesses: list[Choice]
    min_date: str
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def routes(ui: UIContext) -> list[BaseRoute]:
    def may_share(actor: Actor, entity: Entity, record_id: int) -> bool:
        """Whether the actor may update this very record (the policy's explainer says)."""
        if actor.impersonator_id is not None or actor.user_id is None:
            return False
        runtime = ui.runtime()
        why = getattr(runtime.policy, "why", None)
        if why is None:
            return ui.may(actor, entity, "update")
        with runtime.engine.connect() as conn:
            return bool(why(conn, user_id=actor.user_id, entity=entity,
                            table=runtime.schema.table(entity.name), record_id=record_id,
                            action="update").allowed)

    def target(request: Request) -> tuple[Actor, Entity, Record]:
        actor = ui.actor(request)
        runtime = ui.runtime()
        entity = runtime.registry.entities.get(request.path_params["entity"])
        if entity is None:
            raise NotFoundError("entity", request.path_params["entity"])
        record = runtime.records.get(actor, entity.name, int(request.path_params["record_id"]))
        if not may_share(actor, entity, record.id):
            raise ForbiddenError(entity.name, "share",
                                 ui.t(request, "only someone who may change the record may "
                                               "share it"))
        return actor, entity, record

    def page(request: Request, entity: Entity, record: Record, *, status: int = 200,
             errors: dict[str, str] | None = None,
             values: dict[str, str] | None = None) -> Response:
        runtime = ui.runtime()
        locale = ui.locale(request)
        now = dt.datetime.now(dt.UTC)
        with runtime.engine.connect() as conn:
            shares = shares_of(conn, entity.name, record.id)
            org = load_org_snapshot(conn)
        people = people_by_id(runtime.engine, {s.user_id for s in shares if s.user_id})
        rows = []
        for s in shares:
            if s.user_id is not None:
                person = people.get(s.user_id)
                grantee, kind = (person.display_name if person else f"#{s.user_id}"), "user"
            else:
                dept = org.departments.get(s.department_id or 0)
                grantee, kind = (dept.name if dept else f"#{s.department_id}"), "department"
            rows.append(ShareRow(
                id=s.id, grantee=grantee, kind=kind, access=vocab(locale, s.access),
                expires=format_instant(s.expires_at, locale) if s.expires_at
                else ui.t(request, "never"),
                expired=bool(s.expires_at and s.expires_at <= now),
                revoke_url=f"/e/{entity.name}/{record.id}/shares/{s.id}/revoke"))
        chosen = values or {}
        view = SharesPage(
            title=ui.t(request, "Sharing"),
            record_title=str(record.get(entity.title_field) or f"#{record.id}"),
            record_url=f"/e/{entity.name}/{record.id}",
            action=f"/e/{entity.name}/{record.id}/shares", rows=rows,
            users=[Choice(str(p.id), f"{p.display_name} ({p.login})",
                          str(p.id) == chosen.get("user_id"))
                   for p in search_people(runtime.engine, "", limit=200)],
            departments=[Choice(str(d.id), d.name, str(d.id) == chosen.get("department_id"))
                         for d in sorted(org.departments.values(), key=lambda d: d.path)],
            accesses=[Choice(a, vocab(locale, "update" if a == "write" else a),
                             a == chosen.get("access", "read")) for a in ACCESS_LEVELS],
            min_date=today().isoformat(), errors=errors or {}, values=chosen)
        return ui.render(request, "records/shares.html", view, status=status)

    def shares(request: Request, form: FormData | None) -> Response:
        actor, entity, record = target(request)
        if form is None:
            return page(request, entity, record)
        values = {k: str(form.get(k, "")).strip()
                  for k in ("grantee", "user_id", "department_id", "access", "expires_on")}
        errors: dict[str, str] = {}
        user_id = department_id = None
        key = "user_id" if values["grantee"] != "department" else "department_id"
        if not values[key].isdigit():
            errors[key] = ui.t(request, "Choose one from the list.")
        elif key == "user_id":
            user_id = int(values[key])
        else:
            department_id = int(values[key])
        expires_at, expiry_error = expiry_after(values["expires_on"])
        if expiry_error:
            errors["expires_on"] = ui.t(request, expiry_error)
        if values["access"] not in ACCESS_LEVELS:
            errors["access"] = ui.t(request, "Choose one from the list.")
        if not errors:
            try:
                with write_transaction(ui.runtime().engine) as conn:
                    share_record(conn, ui.runtime().schema.table(entity.name), record.id,
                                 access=values["access"], user_id=user_id,
                                 department_id=department_id, expires_at=expires_at,
                                 created_by=actor.user_id)
            except ValidationError as exc:
                errors = {k: ui.t(request, v) for k, v in exc.field_errors.items()}
            else:
                return ui.redirect(request, f"/e/{entity.name}/{record.id}/shares")
        return page(request, entity, record, status=422, errors=errors, values=values)

    def revoke(request: Request, form: FormData | None) -> Response:
        _actor, entity, record = target(request)
        share_id = int(request.path_params["share_id"])
        with write_transaction(ui.runtime().engine) as conn:
            found = get_share(conn, share_id)
            if found.entity != entity.name or found.record_id != record.id:
                raise NotFoundError("share", share_id)  # a share of another record
            revoke_share(conn, share_id)
        return ui.redirect(request, f"/e/{entity.name}/{record.id}/shares")

    def share_button(request: Request, actor: Actor, entity: Entity,
                     record: Record) -> list[ActionButton]:
        if not ui.may(actor, entity, "update") or not may_share(actor, entity, record.id):
            return []
        return [ActionButton(ui.t(request, "Share"), f"/e/{entity.name}/{record.id}/shares",
                             method="get", style="secondary")]

    ui.add_detail_actions(share_button)
    base = "/e/{entity}/{record_id:int}/shares"
    return [Route(base, ui.endpoint(shares), methods=["GET", "POST"], name="shares"),
            Route(base + "/{share_id:int}/revoke", ui.endpoint(revoke), methods=["POST"],
                  name="revoke_share")]
