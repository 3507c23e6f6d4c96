"""Administrators: "view as user" with a banner and an exit, and "who can see this and
why" on a record.

- ``GET /admin/view-as``: find a user (search by name or login) and start viewing
  as them; the recent starts are listed (the engine logs each one).
- ``POST /admin/view-as``: start (``engine.permissions.view_as.view_as`` checks the
  admin and writes the log row), then every page is what that user sees, read-only,
  under a banner naming them, until
- ``POST /view-as/exit``: back to yourself.
- ``GET /e/{entity}/{id}/why?user=<login>&action=read``: the explainer
  (``engine.permissions.manage.explain``) for any user and action, on the record.

The choice lives in its own signed cookie tied to the session id, so it ends with
the session (sign-out, password change) and cannot be carried to another one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.errors import NotFoundError, ValidationError
from engine.metadata.model import ACTIONS
from engine.permissions.directory import people_by_id, search_people
from engine.permissions.identity import find_user, get_user
from engine.permissions.manage import explain
from engine.permissions.view_as import is_admin, view_as, view_as_log
from engine.storage.database import write_transaction
from ui.auth import is_secure
from ui.context import ActionButton, UIContext
from ui.screens.records.listing import Choice
from ui.vocabulary import vocab
from ui.zones import format_instant

COOKIE = "tp_view_as"
#: A view-as ends by itself after this many seconds (an admin forgetting to exit).
MAX_AGE = 8 * 3600


@dataclass(frozen=True)
class PersonRow:
    id: int
    name: str
    login: str


@dataclass
class ViewAsPage:
    title: str
    q: str
    people: list[PersonRow]
    log: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class WhyPage:
    title: str
    record_title: str
    record_url: str
    action_url: str
    user: str
    action: str
    users: list[Choice]
    actions: list[Choice]
    verdict: str = ""
    allowed: bool = False
    reasons: list[str] = field(default_factory=list)


class ViewAsCookie:
    """Signs ``(session id, admin id, user id)`` into the view-as cookie and back."""

    def __init__(self, secret: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="tidepool.view_as")

    def encode(self, *, sid: str, admin_id: int, user_id: int) -> str:
        return str(self._serializer.dumps({"s": sid, "a": admin_id, "u": user_id}))

    def decode(self, value: str, *, sid: str) -> tuple[int, int] | None:
        try:
            data = self._serializer.loads(value, max_age=MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict) or data.get("s") != sid:
            return None
        admin_id, user_id = data.get("a"), data.get("u")
        if not isinstance(admin_id, int) or not isinstance(user_id, int):
            return None
        return admin_id, user_id


def routes(ui: UIContext) -> list[BaseRoute]:
    cookie = ViewAsCookie(ui.settings.secret_key)

    def impersonate(request: Request, actor: Actor) -> Actor:
        """The actor a request acts as: the viewed user while a valid view-as lasts."""
        raw = request.cookies.get(COOKIE)
        if not raw or actor.user_id is None:
            return actor
        found = cookie.decode(raw, sid=ui.session(request).sid)
        if found is None or found[0] != actor.user_id:
            return actor
        with ui.runtime().engine.connect() as conn:
            if not is_admin(conn, actor.user_id):
                return actor
            target = get_user(conn, found[1])
        if not target.active:
            return actor
        policy = ui.runtime().policy
        actor_for = getattr(policy, "actor_for", None)
        seen = actor_for(target.id, login=target.login, locale=actor.locale) \
            if actor_for is not None else Actor(user_id=target.id, login=target.login)
        request.state.tp_viewing_as = target.display_name
        return replace(seen, locale=actor.locale, time_zone=actor.time_zone,
                       impersonator_id=actor.user_id, impersonator_login=actor.login)

    ui.add_actor_hook(impersonate)

    def page(request: Request, *, error: str = "", status: int = 200) -> Response:
        q = request.query_params.get("q", "").strip()[:100]
        runtime = ui.runtime()
        people = [PersonRow(p.id, p.display_name, p.login)
                  for p in search_people(runtime.engine, q, limit=50)]
        with runtime.engine.connect() as conn:
            entries = view_as_log(conn, limit=20)
        names = people_by_id(runtime.engine, {e.user_id for e in entries}
                             | {e.admin_id for e in entries if e.admin_id is not None})
        locale = ui.locale(request)
        log = [ui.t(request, "%(time)s: %(admin)s viewed as %(user)s",
                    time=format_instant(e.at, locale),
                    admin=names[e.admin_id].display_name if e.admin_id in names else "?",
                    user=names[e.user_id].display_name if e.user_id in names else "?")
               for e in entries]
        view = ViewAsPage(title=ui.t(request, "View as another user"), q=q, people=people,
                          log=log, error=error)
        return ui.render(request, "admin/view_as.html", view, status=status)

    def start(request: Request, form: FormData | None) -> Response:
        admin = ui.require_admin(request)
        if form is None:
            return page(request)
        raw = str(form.get("user_id", "")).strip()
        if not raw.isdigit():
            return page(request, error=ui.t(request, "Choose a user from the list."), status=422)
        try:
            with write_transaction(ui.runtime().engine) as conn:
                target = view_as(conn, admin=admin, user_id=int(raw))
        except (ValidationError, NotFoundError):
            return page(request, error=ui.t(request, "Choose another active user."), status=422)
        assert admin.user_id is not None and target.user_id is not None
        response = ui.redirect(request, "/")
        response.set_cookie(COOKIE, cookie.encode(sid=ui.session(request).sid,
                                                  admin_id=admin.user_id,
                                                  user_id=target.user_id),
                            max_age=MAX_AGE, httponly=True, samesite="lax",
                            secure=is_secure(request, ui.settings.https))
        return response

    def exit_(request: Request, form: FormData | None) -> Response:
        ui.actor(request)  # signed in, or off to the sign-in page
        response = ui.redirect(request, "/admin/view-as")
        response.delete_cookie(COOKIE, httponly=True, samesite="lax")
        return response

    def why(request: Request, form: FormData | None) -> Response:
        actor = ui.require_admin(request)
        runtime = ui.runtime()
        entity = runtime.registry.entities.get(request.path_params["entity"])
        if entity is None:
            raise NotFoundError("entity", request.path_params["entity"])
        record_id = int(request.path_params["record_id"])
        record = runtime.records.get(actor, entity.name, record_id)  # admins see it, or 404
        locale = ui.locale(request)
        login = request.query_params.get("user", "").strip()[:150]
        action = request.query_params.get("action", "read")
        if action not in ACTIONS:
            action = "read"
        people = search_people(runtime.engine, "", limit=200)
        title_field = entity.title_field
        view = WhyPage(
            title=ui.t(request, "Who can see this, and why"),
            record_title=str(record.get(title_field) or f"#{record_id}"),
            record_url=f"/e/{entity.name}/{record_id}", action_url=request.url.path,
            user=login, action=action,
            users=[Choice(p.login, f"{p.display_name} ({p.login})", p.login == login)
                   for p in people],
            actions=[Choice(a, vocab(locale, a), a == action) for a in ACTIONS])
        if login:
            with runtime.engine.connect() as conn:
                if find_user(conn, login) is None:
                    view.verdict = ui.t(request, "There is no user %(login)s.", login=login)
                    return ui.render(request, "admin/why.html", view, status=404)
            found = explain(runtime.engine, runtime.registry, login=login, entity=entity.name,
                            record_id=record_id, action=action)
            view.allowed = found.allowed
            view.verdict = ui.t(request, "%(user)s may %(action)s this record.", user=login,
                                action=vocab(locale, action)) if found.allowed else \
                ui.t(request, "%(user)s may not %(action)s this record.", user=login,
                     action=vocab(locale, action))
            view.reasons = [ui.t(request, r) for r in (found.granted_by or (found.reason,))]
        return ui.render(request, "admin/why.html", view)

    def why_button(request: Request, actor: Actor, entity: object,
                   record: object) -> list[ActionButton]:
        if actor.impersonator_id is not None or "admin" not in actor.roles:
            return []
        name = getattr(entity, "name", "")
        return [ActionButton(ui.t(request, "Who can see this?"),
                             f"/e/{name}/{getattr(record, 'id', 0)}/why", method="get",
                             style="secondary")]

    ui.add_detail_actions(why_button)
    return [Route("/admin/view-as", ui.endpoint(start), methods=["GET", "POST"],
                  name="view_as"),
            Route("/view-as/exit", ui.endpoint(exit_), methods=["POST"], name="view_as_exit"),
            Route("/e/{entity}/{record_id:int}/why", ui.endpoint(why), name="why")]

