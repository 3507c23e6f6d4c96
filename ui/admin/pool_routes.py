"""The admin's pool editor (/admin/pools): members, limits, rules and distribution.

Each part is edited as its JSON (the same document the pool's package file holds,
docs/pools.md) and applied through the configuration service like every other
admin change: the first POST previews it — the migration plan, and, from the
rules' dry run against the edited pool, exactly which records the rules would
move now and why — and the confirm page posts it again to apply it live.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.configure.apps import installed_apps
from engine.configure.pool_changes import EDITED_PARTS, SetPool
from engine.configure.service import ConfigService
from engine.errors import ConflictError, MigrationError, NotFoundError, ValidationError
from engine.metadata.model import Registry
from engine.records.service import RecordService
from engine.storage.system_tables import USER_TABLE
from engine.storage.tables import build_schema
from engine.workflow.rule_runner import Move, preview
from ui.admin import forms, views
from ui.context import UIContext

#: Characters one part's JSON may have (a pool with many territories stays well below).
MAX_PART = 200_000
#: Parts that must be a JSON object or array when present.
_SHAPES: dict[str, type] = {"members": dict, "limits": dict, "rules": list,
                            "distribution": dict}


@dataclass(frozen=True)
class PoolLink:
    name: str
    label: str
    entity: str
    url: str


@dataclass(frozen=True)
class PoolPage:
    title: str
    name: str
    entity: str
    parts: dict[str, str]   # part -> its JSON, as stored or as typed
    errors: dict[str, str]


@dataclass(frozen=True)
class MoveRow:
    rule: str
    url: str
    record: str
    owner: str
    action: str
    why: str


def parse_parts(form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """Each part's JSON from the form, and per-part errors (bad JSON, wrong shape, too long)."""
    parts: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for part in EDITED_PARTS:
        raw = form.get(part)
        text = raw.strip() if isinstance(raw, str) else ""
        if len(text) > MAX_PART:
            errors[part] = f"at most {MAX_PART} characters"
            continue
        if not text:
            parts[part] = None
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            errors[part] = f"is not valid JSON ({exc.msg}, line {exc.lineno})"
            continue
        if value is not None and not isinstance(value, _SHAPES[part]):
            errors[part] = "must be a JSON " + ("array" if _SHAPES[part] is list else "object")
            continue
        parts[part] = value
    if not errors and not parts.get("members"):
        errors["members"] = "is required: who may work this pool"
    return parts, errors


def rule_moves(engine: Any, registry: Registry, pool: str, *,
               now: datetime) -> list[Move]:
    """The records the (edited) pool's rules would move at ``now``: their dry run."""
    records = RecordService(engine=engine, schema=build_schema(registry))
    return preview(records, now=now, pool=pool)


def pool_routes(ui: UIContext, admin: Callable[[Any], Any]) -> list[BaseRoute]:
    def service() -> ConfigService:
        runtime = ui.runtime()
        return ConfigService(runtime.engine, apps=installed_apps(runtime.registry))

    def current(name: str) -> dict[str, Any]:
        doc = service().configured().document["pools"].get(name)
        if doc is None:
            raise NotFoundError("pools", name)
        return dict(doc)

    def page(request: Request, name: str, *, form: FormData | None = None,
             errors: dict[str, str] | None = None, status: int = 200) -> Response:
        doc = current(name)
        locale = ui.locale(request)
        parts = {p: json.dumps(doc[p], ensure_ascii=False, indent=2) if p in doc else ""
                 for p in EDITED_PARTS}
        if form is not None:  # show what was typed
            parts.update({p: str(form.get(p, "")) for p in EDITED_PARTS})
        label = doc.get("label", {})
        view = PoolPage(title=label.get(locale) or label.get("en") or name, name=name,
                        entity=str(doc.get("entity", "")), parts=parts, errors=errors or {})
        return ui.render(request, "admin/pool.html", view, status=status)

    def pools(request: Request, form: FormData | None, actor: Actor) -> Response:
        locale = ui.locale(request)
        links = [PoolLink(n, p["label"].get(locale) or p["label"].get("en") or n, p["entity"],
                          f"/admin/pools/{n}")
                 for n, p in service().configured().document["pools"].items()]
        return ui.render(request, "admin/pools.html",
                         {"title": ui.t(request, "Pools"), "pools": links})

    def move_rows(request: Request, registry: Registry, name: str) -> list[MoveRow]:
        runtime = ui.runtime()
        pool = registry.pools[name]
        labels = {r.name: r.label.get(ui.locale(request)) or r.name for r in pool.rules}
        moves = rule_moves(runtime.engine, registry, name, now=datetime.now(UTC))
        people = _people(runtime.engine, runtime.schema.system,
                         {m.owner_id for m in moves if m.owner_id is not None})
        return [MoveRow(rule=labels.get(m.rule, m.rule), url=f"/e/{m.entity}/{m.record_id}",
                        record=f"{m.entity} #{m.record_id}",
                        owner=people.get(m.owner_id, "—") if m.owner_id else "—",
                        action=m.action, why=m.why()) for m in moves]

    def edit(request: Request, form: FormData | None, actor: Actor) -> Response:
        name = request.path_params["pool"]
        if form is None:
            return page(request, name)
        current(name)
        parts, errors = parse_parts(form)
        if errors:
            return page(request, name, form=form, errors=errors, status=422)
        change = SetPool(name=name, members=parts["members"], limits=parts["limits"],
                         rules=parts["rules"] or [], distribution=parts["distribution"])
        config = service()
        try:
            if form.get("confirm") != "1":
                return confirm(request, form, config, change)
            config.apply(change, actor, expected_version=forms.expected_version(form))
        except ValidationError as exc:  # the pool schema or cross-checks refused it
            return page(request, name, form=form, errors=exc.field_errors, status=422)
        except (MigrationError, ConflictError) as exc:
            notice = ui.t(request, "The metadata changed since you saw this plan; review it "
                                   "again.") if isinstance(exc, ConflictError) else ""
            return confirm(request, form, config, change, notice=notice,
                           status=409 if notice else 422)
        ui.live.refresh()
        return ui.redirect(request, f"/admin/pools/{name}")

    def confirm(request: Request, form: FormData, config: ConfigService, change: SetPool, *,
                notice: str = "", status: int = 200) -> Response:
        shown = config.preview(change)
        view = views.confirm_view(title=ui.t(request, "Review the change"),
                                  summary=change.summary(), plan=shown.plan,
                                  carried=forms.carried(form), action=request.url.path,
                                  back_url=f"/admin/pools/{change.name}",
                                  version=shown.version, notice=notice)
        moves = move_rows(request, shown.registry, change.name)
        return ui.render(request, "admin/confirm.html", view, status=status,
                         context={"moves": moves})

    return [Route("/admin/pools", admin(pools)),
            Route("/admin/pools/{pool}", admin(edit), methods=["GET", "POST"])]


def _people(engine: Any, system: Any, ids: set[int]) -> dict[int, str]:
    """Display names of the owners a preview lists."""
    if not ids:
        return {}
    users = system[USER_TABLE]
    with engine.connect() as conn:
        rows = conn.execute(select(users.c.id, users.c.display_name)
                            .where(users.c.id.in_(sorted(ids)[:1000])))
        return {int(i): str(n) for i, n in rows}
