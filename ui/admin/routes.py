"""The admin area (/admin): metadata with a migration plan before each change, users, org.

Every route starts with ``ui.require_admin`` (403 for anyone without the admin
role); every POST carries the CSRF token (checked by the app's middleware).

A metadata change is posted twice: first without ``confirm``, which previews it
and shows its migration plan (steps, blocking problems such as values that would
not convert, with row counts) on a confirm page that carries the same inputs
again; then with ``confirm=1`` and the metadata ``version`` the plan was made
against, which applies it (``ConfigService.apply``) and refreshes this
process's runtime — other processes notice the new version by themselves.
A refused change re-renders its form with the messages (422).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.configure.apps import installed_apps
from engine.configure.changes import Change
from engine.configure.history import config_history
from engine.configure.service import ConfigService
from engine.configure.specs import FieldSpec
from engine.errors import ConflictError, MigrationError, NotFoundError, ValidationError
from ui.admin import forms, views
from ui.admin.people_routes import people_routes
from ui.admin.pool_routes import pool_routes
from ui.admin.sharing_routes import sharing_routes
from ui.context import NavLink, UIContext

AdminHandler = Callable[[Request, FormData | None, Actor], Response]
ErrorPage = Callable[[dict[str, str]], Response]


def routes(ui: UIContext) -> list[BaseRoute]:
    def admin(handler: AdminHandler) -> Any:
        def run(request: Request, form: FormData | None) -> Response:
            return handler(request, form, ui.require_admin(request))
        run.__name__ = handler.__name__
        return ui.endpoint(run)

    def service() -> ConfigService:
        runtime = ui.runtime()
        return ConfigService(runtime.engine, apps=installed_apps(runtime.registry))

    def t(request: Request, message: str, **values: object) -> str:
        return ui.t(request, message, **values)

    def change_flow(request: Request, form: FormData, actor: Actor, *,
                    change: Callable[[], Change], on_error: ErrorPage, back_url: str,
                    done_url: str) -> Response:
        """Preview (confirm page), or apply when confirmed; errors back to the form."""
        config = service()
        try:
            made = change()
            if form.get("confirm") != "1":
                preview = config.preview(made)
                return confirm(request, form, made, preview.plan, preview.version, back_url)
            config.apply(made, actor, expected_version=forms.expected_version(form))
        except ValidationError as exc:  # a bad form or a refused change (ChangeRefused)
            return on_error(exc.field_errors)
        except (MigrationError, ConflictError) as exc:
            preview = config.preview(made)
            notice = t(request, "The metadata changed since you saw this plan; review it "
                                "again.") if isinstance(exc, ConflictError) else ""
            return confirm(request, form, made, preview.plan, preview.version, back_url,
                           notice=notice, status=409 if notice else 422)
        ui.live.refresh()  # this process at once; the others at their next check
        return ui.redirect(request, done_url)

    def confirm(request: Request, form: FormData, change: Change, plan: Any,
                version: int | None, back_url: str, *, notice: str = "",
                status: int = 200) -> Response:
        view = views.confirm_view(title=t(request, "Review the change"),
                                  summary=change.summary(), plan=plan,
                                  carried=forms.carried(form), action=request.url.path,
                                  back_url=back_url, version=version, notice=notice)
        return ui.render(request, "admin/confirm.html", view, status=status)

    def configured(name: str, kind: str = "entities") -> tuple[ConfigService, dict[str, Any]]:
        config = service()
        doc = config.configured().document[kind].get(name)
        if doc is None:
            raise NotFoundError(kind, name)
        return config, doc

    # --- overview and history -----------------------------------------------------------------

    def home(request: Request, form: FormData | None, actor: Actor) -> Response:
        registry = service().configured()
        view = views.home_view(registry.document, registry, ui.locale(request))
        return ui.render(request, "admin/home.html", view)

    def history(request: Request, form: FormData | None, actor: Actor) -> Response:
        return ui.render(request, "admin/history.html",
                         views.HistoryPage(config_history(ui.runtime().engine)))

    # --- entities -----------------------------------------------------------------------------

    def entity_page(request: Request, errors: dict[str, str] | None = None,
                    status: int = 200) -> Response:
        name = request.path_params["entity"]
        config, doc = configured(name)
        packages = config.packages()
        base = packages.document["entities"].get(name)
        view = views.entity_view(
            doc, registry=config.configured(), locale=ui.locale(request),
            package_fields=[f["name"] for f in base["fields"]] if base else [],
            package_entity=base is not None, errors=errors)
        return ui.render(request, "admin/entity.html", view, status=status)

    def entity_get(request: Request, form: FormData | None, actor: Actor) -> Response:
        return entity_page(request)

    def entity_post(request: Request, form: FormData | None, actor: Actor) -> Response:
        assert form is not None
        name = request.path_params["entity"]
        config, _ = configured(name)
        editable = name not in config.packages().entities
        return change_flow(
            request, form, actor,
            change=lambda: forms.edit_entity(name, form, features_editable=editable),
            on_error=lambda errors: entity_page(request, errors, 422),
            back_url=f"/admin/entities/{name}", done_url=f"/admin/entities/{name}")

    def entity_order(request: Request, form: FormData | None, actor: Actor) -> Response:
        assert form is not None
        name = request.path_params["entity"]
        _, doc = configured(name)
        return change_flow(
            request, form, actor,
            change=lambda: forms.reorder(name, form, [f["name"] for f in doc["fields"]]),
            on_error=lambda errors: entity_page(request, errors, 422),
            back_url=f"/admin/entities/{name}", done_url=f"/admin/entities/{name}")

    def entity_new(request: Request, form: FormData | None, actor: Actor) -> Response:
        def page(errors: dict[str, str] | None = None, status: int = 200) -> Response:
            view = views.NewEntityPage(
                values={k: str(v) for k, v in (form or {}).items()},
                roles=list(ui.runtime().registry.roles),
                granted=[str(r) for r in form.getlist("grant_role")] if form else ["admin"],
                errors=errors or {})
            return ui.render(request, "admin/entity_new.html", view, status=status)
        if form is None:
            return page()
        return change_flow(request, form, actor, change=lambda: forms.add_entity(form),
                           on_error=lambda errors: page(errors, 422),
                           back_url="/admin/entities/new",
                           done_url=f"/admin/entities/{form.get('name', '')}")

    # --- fields -------------------------------------------------------------------------------

    def field_page(request: Request, spec: FieldSpec | None, *, form: FormData | None = None,
                   errors: dict[str, str] | None = None, status: int = 200) -> Response:
        name = request.path_params["entity"]
        config, doc = configured(name)
        base = config.packages().document["entities"].get(name)
        base_field = next((f for f in (base or {}).get("fields", ())
                           if spec is not None and f["name"] == spec.name), None)
        view = views.field_view(
            doc, spec, locale=ui.locale(request), registry=config.configured(),
            package_owned=base_field is not None,
            package_options=[o["value"] for o in (base_field or {}).get("options", ())],
            errors=errors)
        if form is not None:  # show what was typed, not what is stored
            view.values.update({k: str(v) for k, v in form.items() if k in view.values})
            view.values["required"] = form.get("required") in ("1", "on")
            view.values["unique"] = form.get("unique") in ("1", "on")
        return ui.render(request, "admin/field.html", view, status=status)

    def current_field(request: Request) -> FieldSpec:
        name, field = request.path_params["entity"], request.path_params["field"]
        _, doc = configured(name)
        found = next((f for f in doc["fields"] if f["name"] == field), None)
        if found is None:
            raise NotFoundError(f"{name} field", field)
        return FieldSpec.from_document(found)

    def field_new(request: Request, form: FormData | None, actor: Actor) -> Response:
        name = request.path_params["entity"]
        if form is None:
            configured(name)
            return field_page(request, None)
        return change_flow(
            request, form, actor, change=lambda: forms.add_field(name, form),
            on_error=lambda errors: field_page(request, None, form=form, errors=errors,
                                               status=422),
            back_url=f"/admin/entities/{name}/fields/new", done_url=f"/admin/entities/{name}")

    def field_edit(request: Request, form: FormData | None, actor: Actor) -> Response:
        name = request.path_params["entity"]
        current = current_field(request)
        if form is None:
            return field_page(request, current)
        return change_flow(
            request, form, actor, change=lambda: forms.edit_field(name, form, current),
            on_error=lambda errors: field_page(request, current, form=form, errors=errors,
                                               status=422),
            back_url=request.url.path, done_url=f"/admin/entities/{name}")

    def field_remove(request: Request, form: FormData | None, actor: Actor) -> Response:
        assert form is not None
        name = request.path_params["entity"]
        current = current_field(request)
        return change_flow(
            request, form, actor, change=lambda: forms.remove_field(name, current.name),
            on_error=lambda errors: entity_page(request, errors, 422),
            back_url=f"/admin/entities/{name}", done_url=f"/admin/entities/{name}")

    # --- pipelines ----------------------------------------------------------------------------

    def posted_selector(form: FormData | None) -> dict[str, Any] | None:
        """The selector the form posted, to show it again ({}: the default pipeline)."""
        if form is None or "selector_field" not in form:
            return None
        spec = forms.selector(form)
        return spec.to_document() if spec else {}

    def pipeline_page(request: Request, errors: dict[str, str] | None = None,
                      status: int = 200, form: FormData | None = None) -> Response:
        config, doc = configured(request.path_params["pipeline"], "pipelines")
        registry = config.configured()
        entity = registry.document["entities"][doc["entity"]]
        view = views.pipeline_view(doc, entity, locale=ui.locale(request), registry=registry,
                                   selector=posted_selector(form),
                                   package_owned=doc["name"] in config.packages().pipelines,
                                   errors=errors)
        return ui.render(request, "admin/pipeline.html", view, status=status)

    def pipeline_get(request: Request, form: FormData | None, actor: Actor) -> Response:
        return pipeline_page(request)

    def stage_set(request: Request, form: FormData | None, actor: Actor) -> Response:
        assert form is not None
        name = request.path_params["pipeline"]
        configured(name, "pipelines")
        return change_flow(request, form, actor, change=lambda: forms.set_stage(name, form),
                           on_error=lambda errors: pipeline_page(request, errors, 422),
                           back_url=f"/admin/pipelines/{name}",
                           done_url=f"/admin/pipelines/{name}")

    def selector_set(request: Request, form: FormData | None, actor: Actor) -> Response:
        assert form is not None
        name = request.path_params["pipeline"]
        configured(name, "pipelines")
        return change_flow(request, form, actor, change=lambda: forms.set_selector(name, form),
                           on_error=lambda errors: pipeline_page(request, errors, 422, form),
                           back_url=f"/admin/pipelines/{name}",
                           done_url=f"/admin/pipelines/{name}")

    def stage_remove(request: Request, form: FormData | None, actor: Actor) -> Response:
        assert form is not None
        name, key = request.path_params["pipeline"], request.path_params["key"]
        configured(name, "pipelines")
        return change_flow(request, form, actor, change=lambda: forms.remove_stage(name, key),
                           on_error=lambda errors: pipeline_page(request, errors, 422),
                           back_url=f"/admin/pipelines/{name}",
                           done_url=f"/admin/pipelines/{name}")

    def pipeline_new(request: Request, form: FormData | None, actor: Actor) -> Response:
        def page(errors: dict[str, str] | None = None, status: int = 200) -> Response:
            view = views.new_pipeline_view(
                service().configured(), ui.locale(request), errors=errors,
                entity=str((form.get("entity") if form is not None else None)
                           or request.query_params.get("entity", "")),
                selector=posted_selector(form))
            if form is not None:
                view.values.update({k: str(v) for k, v in form.items()})
            return ui.render(request, "admin/pipeline_new.html", view, status=status)
        if form is None:
            return page()
        return change_flow(request, form, actor, change=lambda: forms.add_pipeline(form),
                           on_error=lambda errors: page(errors, 422),
                           back_url="/admin/pipelines/new",
                           done_url=f"/admin/pipelines/{form.get('name', '')}")

    # --- roles --------------------------------------------------------------------------------

    def role_page(request: Request, name: str | None, *, errors: dict[str, str] | None = None,
                  status: int = 200) -> Response:
        registry = service().configured()
        doc = registry.document["roles"].get(name) if name else None
        if name and doc is None:
            raise NotFoundError("role", name)
        view = views.role_view(doc, registry, locale=ui.locale(request), errors=errors)
        return ui.render(request, "admin/role.html", view, status=status)

    def roles_list(request: Request, form: FormData | None, actor: Actor) -> Response:
        registry = service().configured()
        view = views.home_view(registry.document, registry, ui.locale(request))
        return ui.render(request, "admin/roles.html", view)

    def role_edit(request: Request, form: FormData | None, actor: Actor) -> Response:
        name = request.path_params.get("role")
        if form is None:
            return role_page(request, name)
        role = name or str(form.get("name") or "").strip()
        registry = service().configured()
        return change_flow(
            request, form, actor, change=lambda: forms.set_role(role, form, registry),
            on_error=lambda errors: role_page(request, name, errors=errors, status=422),
            back_url=request.url.path, done_url=f"/admin/roles/{role}")

    def admin_nav(request: Request, actor: Actor) -> list[NavLink]:
        if "admin" not in actor.roles:
            return []
        return [NavLink(ui.t(request, "Admin"), "/admin",
                        active=request.url.path.startswith("/admin"))]

    ui.add_nav(admin_nav, cached=True)  # by role only
    both = ["GET", "POST"]
    return [
        Route("/admin", admin(home)),
        Route("/admin/history", admin(history)),
        Route("/admin/entities/new", admin(entity_new), methods=both),
        Route("/admin/entities/{entity}", admin(entity_get)),
        Route("/admin/entities/{entity}", admin(entity_post), methods=["POST"]),
        Route("/admin/entities/{entity}/order", admin(entity_order), methods=["POST"]),
        Route("/admin/entities/{entity}/fields/new", admin(field_new), methods=both),
        Route("/admin/entities/{entity}/fields/{field}", admin(field_edit), methods=both),
        Route("/admin/entities/{entity}/fields/{field}/remove", admin(field_remove),
              methods=["POST"]),
        Route("/admin/pipelines/new", admin(pipeline_new), methods=both),
        Route("/admin/pipelines/{pipeline}", admin(pipeline_get)),
        Route("/admin/pipelines/{pipeline}/stages", admin(stage_set), methods=["POST"]),
        Route("/admin/pipelines/{pipeline}/selector", admin(selector_set), methods=["POST"]),
        Route("/admin/pipelines/{pipeline}/stages/{key}/remove", admin(stage_remove),
              methods=["POST"]),
        Route("/admin/roles", admin(roles_list)),
        Route("/admin/roles/new", admin(role_edit), methods=both),
        Route("/admin/roles/{role}", admin(role_edit), methods=both),
        *people_routes(ui, admin),
        *pool_routes(ui, admin),
        *sharing_routes(ui, admin),
    ]
