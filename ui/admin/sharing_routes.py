"""The admin's sharing-rule editor (/admin/roles/<role>/sharing).

A role's sharing rules share the records of an entity that match a condition with
the role's holders (docs/permissions.md). Here an admin lists them with how many
records each matches now, adds one (entity first, then the form), edits or
removes one. Like every metadata change, a rule is previewed first: the confirm
page names the change, the migration plan (empty: a rule changes no table) and
how many records the rule matches; applying it stores the role as a
customisation and resyncs the policies, so the holders see the change at their
next page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.configure.apps import installed_apps
from engine.configure.people import People
from engine.configure.service import ConfigService
from engine.configure.sharing_changes import RemoveSharingRule, SetSharingRule
from engine.errors import ConflictError, MigrationError, NotFoundError, QueryError, ValidationError
from engine.metadata.model import Entity, Registry
from engine.records.query import Filter, ListQuery
from engine.runtime import Runtime
from ui.admin import forms, views
from ui.admin.sharing_form import (
    ACCESS_LABELS,
    OP_LABELS,
    ConditionRow,
    parse_rule,
    rows_of,
    with_blanks,
)
from ui.context import UIContext
from ui.i18n import t
from ui.screens.records.listing import Choice

#: Matching records counted for a preview (more shows as "10,000+").
COUNT_CAP = 10_000


@dataclass(frozen=True)
class RuleLink:
    name: str
    description: str
    entity: str
    access: str
    conditions: list[str]
    matches: str
    edit_url: str
    remove_url: str


@dataclass(frozen=True)
class SharingPage:
    title: str
    role: str
    role_url: str
    rules: list[RuleLink]
    entities: list[Choice]
    new_url: str


@dataclass(frozen=True)
class RuleForm:
    title: str
    role: str
    back_url: str
    action: str
    is_new: bool
    entity: str
    entity_label: str
    values: Mapping[str, str]
    access: list[Choice]
    fields: list[Choice]
    ops: list[Choice]
    departments: list[views.Check]
    rows: list[ConditionRow]
    errors: Mapping[str, str]


def match_count(runtime: Runtime, rule: Mapping[str, Any]) -> int | None:
    """How many records a rule's condition matches now (None when it cannot be run),
    through the list filters, which compile conditions as the row scope does."""
    filters = tuple(Filter(str(c["field"]), str(c["op"]), c.get("value"))
                    for c in rule.get("where") or ())
    try:
        return runtime.records.count(Actor.system("sharing preview"), str(rule["entity"]),
                                     ListQuery(filters=filters), cap=COUNT_CAP)
    except (QueryError, NotFoundError, KeyError):
        return None


def match_text(locale: str, count: int | None, entity_label: str) -> str:
    if count is None:
        return t(locale, "The condition cannot be counted.")
    shown = f"{COUNT_CAP:,}+" if count >= COUNT_CAP else f"{count:,}"
    return t(locale, "%(n)s records of %(entity)s match this rule now.", n=shown,
             entity=entity_label)


def condition_text(entity: Entity, condition: Mapping[str, Any], locale: str) -> str:
    from ui.admin.sharing_form import value_text

    name = str(condition.get("field", ""))
    label = entity.field(name).label.get(locale) if entity.has_field(name) else name
    op = str(condition.get("op", ""))
    value = value_text(condition.get("value"))
    return " ".join(p for p in (label, t(locale, OP_LABELS.get(op, op)), value) if p)


def sharing_routes(ui: UIContext, admin: Callable[[Any], Any]) -> list[BaseRoute]:
    def service() -> ConfigService:
        runtime = ui.runtime()
        return ConfigService(runtime.engine, apps=installed_apps(runtime.registry))

    def role_doc(registry: Registry, role: str) -> Mapping[str, Any]:
        doc: Mapping[str, Any] | None = registry.document["roles"].get(role)
        if doc is None:
            raise NotFoundError("role", role)
        return doc

    def entity_named(registry: Registry, name: str) -> Entity:
        if name not in registry.entities:
            raise NotFoundError("entity", name)
        return registry.entities[name]

    def rules_page(request: Request, form: FormData | None, actor: Actor) -> Response:
        role = request.path_params["role"]
        registry = service().configured()
        doc, locale, runtime = role_doc(registry, role), ui.locale(request), ui.runtime()
        links = []
        for rule in doc.get("sharing_rules") or ():
            entity = registry.entities.get(rule["entity"])
            if entity is None:
                continue
            label = entity.plural_label.get(locale) or entity.label.get(locale)
            description = rule.get("description") or {}
            links.append(RuleLink(
                name=rule["name"], description=description.get(locale) or
                description.get("en", ""), entity=label,
                access=t(locale, ACCESS_LABELS.get(rule["access"], rule["access"])),
                conditions=[condition_text(entity, c, locale) for c in rule["where"]],
                matches=match_text(locale, match_count(runtime, rule), label),
                edit_url=f"/admin/roles/{role}/sharing/{rule['name']}",
                remove_url=f"/admin/roles/{role}/sharing/{rule['name']}/remove"))
        entities = [Choice(e.name, e.label.get(locale) or e.name)
                    for e in registry.entities.values()]
        view = SharingPage(title=t(locale, "Sharing rules of %(role)s", role=role_label(
            registry, role, locale)), role=role, role_url=f"/admin/roles/{role}", rules=links,
            entities=entities, new_url=f"/admin/roles/{role}/sharing/new")
        return ui.render(request, "admin/sharing.html", view)

    def role_label(registry: Registry, role: str, locale: str) -> str:
        found = registry.roles.get(role)
        return (found.label.get(locale) if found else "") or role

    def form_page(request: Request, *, role: str, entity: Entity, rule: Mapping[str, Any] | None,
                  rows: list[ConditionRow] | None = None, typed: FormData | None = None,
                  errors: Mapping[str, str] | None = None, status: int = 200) -> Response:
        locale = ui.locale(request)
        registry = ui.runtime().registry
        is_new = rule is None and request.path_params.get("rule") is None
        stored = rule or {}
        description = stored.get("description") or {}
        values = {"name": str(stored.get("name", "")), "access": str(stored.get("access", "read")),
                  "description_en": str(description.get("en", "")),
                  "description_zh": str(description.get("zh-CN", ""))}
        chosen = set(stored.get("departments") or ())
        if typed is not None:
            values = {k: str(typed.get(k if k != "description_zh" else "description_zh-CN", ""))
                      for k in values}
            chosen = {str(c) for c in typed.getlist("departments")}
        directory = People(ui.runtime().engine, registry).directory()
        view = RuleForm(
            title=t(locale, "New sharing rule") if is_new else
            t(locale, "Sharing rule %(name)s", name=values["name"]),
            role=role, back_url=f"/admin/roles/{role}/sharing", action=request.url.path,
            is_new=is_new, entity=entity.name,
            entity_label=entity.plural_label.get(locale) or entity.label.get(locale),
            values=values,
            access=[Choice(k, t(locale, v), k == values["access"])
                    for k, v in ACCESS_LABELS.items()],
            fields=[Choice(f.name, f.label.get(locale) or f.name) for f in entity.fields],
            ops=[Choice(k, t(locale, v)) for k, v in OP_LABELS.items()],
            departments=[views.Check(d.code, "\u2003" * (d.depth - 1) + d.name, d.code in chosen)
                         for d in directory.departments],
            rows=rows if rows is not None else rows_of(rule), errors=errors or {})
        return ui.render(request, "admin/sharing_rule.html", view, status=status)

    def new_rule(request: Request, form: FormData | None, actor: Actor) -> Response:
        role = request.path_params["role"]
        registry = ui.runtime().registry
        role_doc(service().configured(), role)
        name = (form.get("entity") if form is not None else
                request.query_params.get("entity")) or ""
        entity = entity_named(registry, str(name))
        if form is None:
            return form_page(request, role=role, entity=entity, rule=None)
        return save(request, form, actor, role=role, entity=entity, replaces=None)

    def edit_rule(request: Request, form: FormData | None, actor: Actor) -> Response:
        role, name = request.path_params["role"], request.path_params["rule"]
        rule = next((r for r in role_doc(service().configured(), role).get("sharing_rules") or ()
                     if r["name"] == name), None)
        if rule is None:
            raise NotFoundError("sharing_rule", name)
        entity = entity_named(ui.runtime().registry, rule["entity"])
        if form is None:
            return form_page(request, role=role, entity=entity, rule=rule)
        return save(request, form, actor, role=role, entity=entity, replaces=name)

    def save(request: Request, form: FormData, actor: Actor, *, role: str, entity: Entity,
             replaces: str | None) -> Response:
        codes = [d.code for d in People(ui.runtime().engine, ui.runtime().registry)
                 .directory().departments]
        parsed = parse_rule(form, entity, department_codes=codes)

        def again(errors: Mapping[str, str], status: int) -> Response:
            return form_page(request, role=role, entity=entity, rule=None,
                             rows=with_blanks(parsed.rows), typed=form, errors=errors,
                             status=status)

        if parsed.errors:
            return again(parsed.errors, 422)
        change = SetSharingRule(role=role, rule=parsed.rule, replaces=replaces)
        label = entity.plural_label.get(ui.locale(request)) or entity.label.get(ui.locale(request))
        notice = match_text(ui.locale(request), match_count(ui.runtime(), parsed.rule), label)
        return flow(request, form, actor, change, again=again, notice=notice,
                    back_url=request.url.path)

    def remove_rule(request: Request, form: FormData | None, actor: Actor) -> Response:
        assert form is not None
        role, name = request.path_params["role"], request.path_params["rule"]

        def again(errors: Mapping[str, str], status: int) -> Response:
            raise ValidationError("sharing_rule", dict(errors))

        return flow(request, form, actor, RemoveSharingRule(role=role, name=name), again=again,
                    notice="", back_url=f"/admin/roles/{role}/sharing")

    def flow(request: Request, form: FormData, actor: Actor,
             change: SetSharingRule | RemoveSharingRule, *,
             again: Callable[[Mapping[str, str], int], Response], notice: str,
             back_url: str) -> Response:
        """Preview (the confirm page with the match count), or apply when confirmed."""
        config = service()
        try:
            if form.get("confirm") != "1":
                return confirm(request, form, config, change, notice=notice, back_url=back_url)
            config.apply(change, actor, expected_version=forms.expected_version(form))
        except ValidationError as exc:  # the role schema or the cross-checks refused it
            return again(exc.field_errors, 422)
        except (MigrationError, ConflictError) as exc:
            moved = ui.t(request, "The metadata changed since you saw this plan; review it "
                                  "again.") if isinstance(exc, ConflictError) else notice
            return confirm(request, form, config, change, notice=moved, back_url=back_url,
                           status=409 if isinstance(exc, ConflictError) else 422)
        ui.live.refresh()
        return ui.redirect(request, f"/admin/roles/{change.role}/sharing")

    def confirm(request: Request, form: FormData, config: ConfigService,
                change: SetSharingRule | RemoveSharingRule, *, notice: str, back_url: str,
                status: int = 200) -> Response:
        shown = config.preview(change)
        view = views.confirm_view(title=ui.t(request, "Review the change"),
                                  summary=change.summary(), plan=shown.plan,
                                  carried=forms.carried(form), action=request.url.path,
                                  back_url=back_url, version=shown.version, notice=notice)
        return ui.render(request, "admin/confirm.html", view, status=status)

    both = ["GET", "POST"]
    return [
        Route("/admin/roles/{role}/sharing", admin(rules_page)),
        Route("/admin/roles/{role}/sharing/new", admin(new_rule), methods=both),
        Route("/admin/roles/{role}/sharing/{rule}", admin(edit_rule), methods=both),
        Route("/admin/roles/{role}/sharing/{rule}/remove", admin(remove_rule), methods=["POST"]),
    ]
