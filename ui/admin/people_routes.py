"""Admin routes for users and the org tree: no metadata, so no plan — each form applies.

- ``/admin/users``: the user list and a create form; per user, POSTs to
  ``/admin/users/{id}/active`` (``active`` 1/0), ``/password``, ``/roles``
  (the ticked roles become the user's organisation-wide roles) and ``/department``.
- ``/admin/org``: the department tree and a create form; per department,
  POSTs to ``/admin/org/{id}/parent`` and ``/admin/org/{id}/leader``.

Success redirects back to the list (303); a refusal re-renders it with the
message (422).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.configure.people import Directory, People
from engine.errors import DuplicateError, ValidationError
from ui.context import UIContext
from ui.limits import whole_number


@dataclass
class PeoplePage:
    directory: Directory
    roles: list[str]
    role_labels: dict[str, str] = field(default_factory=dict)  # name -> label (metadata)
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    focus: str = ""  # which form the errors belong to ("create", "user-<id>", "dept-<id>")

    def names(self) -> dict[int, str]:
        return {e.user.id: e.user.display_name for e in self.directory.users}


def _id(raw: Any, key: str) -> int | None:
    text = str(raw or "").strip()
    if text == "":
        return None
    number = whole_number(text)
    if number is None:
        raise ValidationError("form", {key: "choose one from the list"})
    return number


def people_routes(ui: UIContext, admin: Callable[[Any], Any]) -> list[BaseRoute]:
    def people() -> People:
        runtime = ui.runtime()
        return People(runtime.engine, runtime.registry, runtime.records)

    def page(request: Request, template: str, *, form: FormData | None = None,
             errors: dict[str, str] | None = None, focus: str = "",
             status: int = 200) -> Response:
        view = PeoplePage(directory=people().directory(),
                          roles=list(ui.runtime().registry.roles),
                          role_labels={n: r.label.get(ui.locale(request)) or n
                                       for n, r in ui.runtime().registry.roles.items()},
                          values={k: str(v) for k, v in (form or {}).items()
                                  if k not in ("password", "csrf_token")},
                          errors=errors or {}, focus=focus)
        return ui.render(request, template, view, status=status)

    def act(request: Request, template: str, back: str, focus: str,
            work: Callable[[], object], form: FormData) -> Response:
        try:
            work()
        except ValidationError as exc:
            return page(request, template, form=form, errors=exc.field_errors, focus=focus,
                        status=422)
        except DuplicateError as exc:
            return page(request, template, form=form, errors={exc.key: str(exc)},
                        focus=focus, status=422)
        return ui.redirect(request, back)

    def users(request: Request, form: FormData | None, actor: Actor) -> Response:
        if form is None:
            return page(request, "admin/users.html")
        return act(request, "admin/users.html", "/admin/users", "create", lambda: people()
                   .create_user(login=str(form.get("login") or ""),
                                display_name=str(form.get("display_name") or ""),
                                password=str(form.get("password") or ""),
                                email=str(form.get("email") or "") or None,
                                locale=str(form.get("locale") or "en"),
                                department_id=_id(form.get("department_id"), "department_id"),
                                roles=[str(r) for r in form.getlist("role")]), form)

    def user_action(request: Request, form: FormData | None, actor: Actor) -> Response:
        assert form is not None
        user_id = int(request.path_params["user_id"])
        what = request.path_params["what"]
        service = people()
        work: dict[str, Callable[[], object]] = {
            "active": lambda: service.set_active(user_id, form.get("active") == "1"),
            "password": lambda: service.set_password(user_id, str(form.get("password") or "")),
            "roles": lambda: service.set_roles(user_id, [str(r) for r in form.getlist("role")]),
            "department": lambda: service.move_user(
                user_id, _id(form.get("department_id"), "department_id")),
        }
        if what not in work:
            return Response(status_code=404)
        return act(request, "admin/users.html", "/admin/users", f"user-{user_id}", work[what],
                   form)

    def departments(request: Request, form: FormData | None, actor: Actor) -> Response:
        if form is None:
            return page(request, "admin/org.html")
        return act(request, "admin/org.html", "/admin/org", "create", lambda: people()
                   .create_department(code=str(form.get("code") or "").strip(),
                                      name=str(form.get("name") or ""),
                                      parent_id=_id(form.get("parent_id"), "parent_id")), form)

    def department_action(request: Request, form: FormData | None, actor: Actor) -> Response:
        assert form is not None
        dept_id = int(request.path_params["dept_id"])
        what = request.path_params["what"]
        service = people()
        work: dict[str, Callable[[], object]] = {
            "parent": lambda: service.move_department(dept_id,
                                                      _id(form.get("parent_id"), "parent_id")),
            "leader": lambda: service.set_leader(dept_id, _id(form.get("leader_id"),
                                                              "leader_id")),
        }
        if what not in work:
            return Response(status_code=404)
        return act(request, "admin/org.html", "/admin/org", f"dept-{dept_id}", work[what], form)

    both = ["GET", "POST"]
    return [
        Route("/admin/users", admin(users), methods=both),
        Route("/admin/users/{user_id:id}/{what}", admin(user_action), methods=["POST"]),
        Route("/admin/org", admin(departments), methods=both),
        Route("/admin/org/{dept_id:id}/{what}", admin(department_action), methods=["POST"]),
    ]
